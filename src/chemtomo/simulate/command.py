"""``chemtomo simulate``: a phantom and its noisy tilt series, written where ``chemtomo reconstruct`` reads them.

Output folder layout::

    DIR/HAADF.mrc, DIR/<element>.mrc   tilt series p[a, y, u] (float32), each with a .tlt of its angles
    DIR/angles.tlt                     the tilt angles (degrees), one per line
    DIR/truth/<element>.mrc            ground-truth concentration volumes v[y, z, x] (0..1)
    DIR/simulation.json                phantom spec, dose, time, lines, true drift shifts, version
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError
from ..core.memory import check_angle_count, check_memory
from ..core.names import parse_signal_name


def parse_tilts(text: str) -> np.ndarray:
    """Tilt angles from ``start:stop:step`` (inclusive, degrees), a comma list, or a text file.

    >>> parse_tilts("-60:60:30").tolist()
    [-60.0, -30.0, 0.0, 30.0, 60.0]
    >>> parse_tilts("-10,0,12.5").tolist()
    [-10.0, 0.0, 12.5]
    """
    if Path(text).is_file():
        from ..io import read_angles

        return read_angles(text)
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if not (step > 0 and stop >= start and abs(start) <= 360 and abs(stop) <= 360):
                raise ValueError
            check_angle_count((stop - start) / step + 1, f"--tilts {text}")
            return np.arange(start, stop + step / 2, step)
        return np.array([float(v) for v in text.split(",") if v.strip()])
    except ChemtomoError:
        raise
    except ValueError:
        raise ChemtomoError(
            f"--tilts {text!r} must be start:stop:step in degrees with step > 0 (e.g. -70:70:10), "
            "a comma list of angles, or a file with one angle per line"
        ) from None


def simulate_to_directory(
    out_dir,
    phantom: str,
    elements: list[str],
    *,
    tilts: str = "-70:70:10",
    signals: tuple[str, ...] = ("HAADF", "EDX"),
    dose: float | None = None,
    time: float | None = None,
    size: int = 64,
    seed: int = 0,
    voxel_size: float = 0.5,
    solid_angle: float = 0.7,
    acquisition=None,
    eels_detector: str = "counting",
) -> dict:
    """Simulate phantom `phantom` (grammar of :func:`~chemtomo.simulate.phantoms.phantom_from_spec`)
    and write its tilt series, angles and ground truth to `out_dir`; return the JSON record.

    `dose` (total e-/A^2) or `time` (total s) sets the exposure; `voxel_size` is in nm,
    `solid_angle` in sr.
    """
    from .. import __version__
    from ..io import atomic_write, write_angles, write_stack, write_volume
    from ..io.write import to_json
    from .phantoms import phantom_from_spec
    from .series import Acquisition, simulate_series

    from ..physics.elements import COMPOUNDS, material_densities

    repeated = sorted({e for e in elements if list(elements).count(e) > 1})
    if repeated:
        raise ChemtomoError(f"--elements names {', '.join(repeated)} more than once; give each element once")
    for e in elements:
        if e not in COMPOUNDS and (parse_signal_name(e)[0] in ("HAADF", "ADF", "BF", "ABF", "DF")
                                   or parse_signal_name(e)[1]):
            raise ChemtomoError(f"--elements takes element symbols or compounds such as Au,Ag or TiO2; got {e!r}")
        material_densities(e)  # gases as elements and unknown compounds are refused here
    bad = [s for s in signals if s not in ("HAADF", "EDX", "EELS") and "_" not in s]
    if bad:
        raise ChemtomoError(f"--signals {','.join(bad)} is not known; use HAADF, EDX, EELS, X-ray lines such as Au_La "
                            "or EELS edges such as Fe_L23")
    if dose is None and time is None:
        raise ChemtomoError("give --dose (total e-/A^2) or --time (total s) to set the exposure")
    angles = parse_tilts(tilts)
    n_maps = len(elements) + len(signals) + 2
    check_memory(4.0 * size ** 3 * (2 * len(elements) + 6) + 4.0 * len(angles) * size ** 2 * n_maps * 3,
                 f"simulating {size}^3 voxels and {len(angles)} tilts", "use a smaller --size or fewer --tilts")
    truth = phantom_from_spec(phantom, list(elements), (size, size, size), seed=seed)
    series = simulate_series(truth, angles, signals=tuple(signals), dose=dose, time=time, voxel_size=voxel_size,
                             solid_angle=solid_angle, acquisition=acquisition or Acquisition(),
                             eels_detector=eels_detector, rng=seed)
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for name in series.names:
        write_stack(out / f"{name}.mrc", series[name].data, series[name].angles, pixel_size=voxel_size)
    write_angles(out / "angles.tlt", angles)
    for element, volume in truth.items():
        write_volume(out / "truth" / f"{element}.mrc", volume, voxel_size=voxel_size)
    record = {
        "software": f"chemtomo {__version__}",
        "phantom": phantom,
        "elements": list(elements),
        "seed": seed,
        "shape": [size, size, size],
        "voxel_size_nm": voxel_size,
        "solid_angle_sr": solid_angle,
        "angles_deg": angles,
        "signals": series.names,
        "dose_e_per_A2": series.dose,
        "acquisition_time_s": series.acquisition_time,
        "metadata": series.metadata,
    }
    with atomic_write(out / "simulation.json") as tmp:
        Path(tmp).write_text(json.dumps(to_json(record), indent=2))
    return record
