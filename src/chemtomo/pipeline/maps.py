"""Elemental maps of a tilt series of spectrum images written to a folder: everything ``chemtomo maps`` does.

The maps themselves are :func:`chemtomo.spectral.series.maps_series` (learned maps with their
standard deviations: :func:`chemtomo.spectral.series.learned_maps_series`); this module
writes ``DIR/<signal>.mrc`` (float32 stacks), ``DIR/angles.tlt``, ``DIR/maps.json``
and, for learned maps, their standard deviations in ``DIR/std/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.data import TiltSeries
from ..core.errors import ChemtomoError
from ..io.mrc import read_angles
from ..io.write import atomic_write, to_json, write_angles, write_stack
from ..spectral.eels_model import is_eels
from ..spectral.series import learned_maps_series, maps_series, undetected


def write_maps(series: TiltSeries, out_dir) -> list[Path]:
    """Write ``DIR/<signal>.mrc`` (float32 stacks), ``DIR/angles.tlt`` and ``DIR/maps.json``.

    All signals must share one set of angles (as :func:`chemtomo.spectral.series.maps_series` makes them).

    Returns
    -------
    paths : list of Path
        The stacks, the angle file and the JSON summary.
    """
    out_dir = Path(out_dir)
    first = next(iter(series.signals.values())).angles
    for name, s in series.signals.items():
        if s.angles.shape != first.shape or not np.allclose(s.angles, first):
            raise ChemtomoError(f"signal {name} has its own tilt angles; write_maps needs one angle list for all signals")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_stack(out_dir / f"{name}.mrc", s.data.astype(np.float32), pixel_size=series.pixel_size)
             for name, s in series.signals.items()]
    paths.append(write_angles(out_dir / "angles.tlt", first))
    summary = {"signals": series.names, "angles": first, "pixel_size_nm": series.pixel_size,
               "image_shape": list(series.image_shape), **series.metadata}
    with atomic_write(out_dir / "maps.json") as tmp:
        tmp.write_text(json.dumps(to_json(summary), indent=2) + "\n", encoding="utf-8")
    paths.append(out_dir / "maps.json")
    return paths


def maps_to_directory(inputs, elements, out_dir, *, method: str | None = None, angles=None,
                      angles_from_names: bool = False, fwhm_mnka: float = 130.0, downsample: int = 1,
                      weights=None, keep_undetected: bool = False, progress=None, read_noise=None,
                      signal=None, energy_correction: float = 0.0) -> dict:
    """Everything ``chemtomo maps INPUT... --elements Fe,Pt --out DIR`` does: read, map, write.

    Parameters
    ----------
    inputs : sequence of str or Path
        Spectrum-image files, one per tilt.
    elements : str or sequence of str, optional
        ``"Fe,Pt"`` or ``["Fe", "Pt_Ma"]``; None or empty: the list the first file stores (a Bruker ``.bcf``).
    out_dir : str or Path
        Output folder, created if missing.
    method : {"window", "fit", "regularised", "learned"}, optional
        ``"learned"`` also writes each map's standard deviation to ``DIR/std/<line>.mrc``. Default
        ``"fit"`` for EELS edges (the model fit; the window method refuses edges on one another's tails),
        ``"window"`` for X-ray lines.
    angles : str, Path or sequence of float, optional
        Angle file (one angle in degrees per line, IMOD ``.tlt``) or the angles themselves.
    angles_from_names : bool, default False
        Read each angle from its file name instead (``-35.bcf`` -> -35).
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    downsample : int, default 1
        Bin Bruker spectrum images on reading.
    weights : path or sequence of paths, optional
        With ``method="learned"``: the network(s) to use (:func:`chemtomo.spectral.learned.learned_maps`); default the
        shipped ensemble.
    keep_undetected : bool, default False
        With ``method="learned"`` or ``"fit"``: keep the maps of EELS edges below detection instead of
        empty ones (``min_significance=None`` of :func:`chemtomo.spectral.learned.learned_maps` and
        :func:`chemtomo.spectral.maps.fit_maps`).
    progress : callable(name, done, total), optional
        Called as ``("maps", tilts done, tilts)`` (:func:`chemtomo.spectral.series.maps_series`).
    signal : str or int, optional
        The spectrum image to read from files holding several (Velox ``.emd`` with EDS and EELS), by title
        or index (:func:`chemtomo.io.instrument.list_signals`); default the first.
    energy_correction : float, default 0
        keV added to every file's energy axis (the correction a note suggests when the known lines sit off
        their energies, :func:`chemtomo.spectral.calibration.energy_offset`).
    read_noise : float or "auto", optional
        Gaussian read-out noise per channel in electrons (CCD spectra, negative readings allowed), for
        methods fit, regularised and learned; ``"auto"`` estimates it per tilt
        (:func:`chemtomo.physics.counts.estimate_read_noise`). Default none (counting detector).

    Returns
    -------
    summary : dict
        ``out_dir``, ``files`` (written), ``lines``, ``signals``, ``angles``, ``n_tilts``,
        ``image_shape``, ``pixel_size`` (nm), ``method``, ``counts`` (total per signal) and
        ``undetected``: for each line below :data:`chemtomo.spectral.estimates.DETECTION_Z` in some tilt (:func:`chemtomo.spectral.series.undetected`), the angles of those tilts.
    """
    if angles_from_names and angles is not None:
        raise ChemtomoError("give either --angles FILE or --angles-from-names, not both")
    given = bool(elements)
    if not elements:  # the list the first file stores (a Bruker .bcf's selection)
        from ..spectral.series import file_elements

        elements = file_elements(list(inputs)[0], signal)
    if method is None:
        method = "fit" if is_eels(elements) else "window"
    options = {"signal": signal} if signal is not None else {}
    if energy_correction:
        options["energy_correction"] = float(energy_correction)
    if read_noise is not None:
        if method == "window":
            raise ChemtomoError("read noise is for methods fit, regularised and learned; drop --read-noise or use "
                                "--method fit")
        options["read_noise"] = read_noise
    if weights is not None:  # checked and loaded by learned_maps
        if method != "learned":
            raise ChemtomoError(f"weights are for method 'learned', not {method!r}; drop --weights or use --method learned")
        options["weights"] = weights
    if keep_undetected:
        if method not in ("learned", "fit") or (method == "fit" and not is_eels(elements)):
            raise ChemtomoError(f"keep_undetected is for EELS edges with method 'fit' or 'learned', not {method!r}; "
                                "drop it or use --method fit or learned")
        options["min_significance"] = None
    if angles_from_names:
        angles = "names"
    elif isinstance(angles, (str, Path)):
        if not Path(angles).is_file():
            raise ChemtomoError(f"angle file {angles} does not exist; give a text file with one angle per line")
        angles = read_angles(angles)
    if method == "learned":
        series, std = learned_maps_series(inputs, elements, angles=angles, fwhm_mnka=fwhm_mnka, downsample=downsample,
                                          progress=progress, **options)
        paths = write_maps(std, Path(out_dir) / "std")
    else:
        series = maps_series(inputs, elements, method=method, angles=angles, fwhm_mnka=fwhm_mnka,
                             downsample=downsample, progress=progress, **options)
        paths = []
    paths = write_maps(series, out_dir) + paths
    first = next(iter(series.signals.values()))
    return {
        "out_dir": str(out_dir), "files": [str(p) for p in paths], "lines": series.metadata["lines"],
        "signals": series.names, "angles": first.angles.tolist(), "n_tilts": int(first.angles.size),
        "image_shape": list(series.image_shape), "pixel_size": series.pixel_size, "method": method,
        "counts": {n: float(np.sum(s.data)) for n, s in series.signals.items()},
        "elements_from_file": None if given else list(elements), "notes": series.metadata.get("notes", []),
        "read_noise": series.metadata.get("read_noise"),
        "undetected": undetected(series),
    }
