"""Tilt series of elemental maps: one spectrum image per tilt -> :class:`~chemtomo.core.data.TiltSeries`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError, ShapeError, as_angles

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")

#: Whole-image significance below which a line or edge counts as not detected in a spectrum image
#: (Currie's detection limit is about 3 standard deviations of the net counts).
DETECTION_Z = 3.0


def angles_from_names(paths) -> np.ndarray:
    """Tilt angles in degrees from file names: the last signed number in each stem (``-35.bcf`` -> -35.0).

    Raises
    ------
    ChemtomoError
        If a stem holds no number.
    """
    out = []
    for p in paths:
        found = _NUMBER.findall(Path(p).stem)
        if not found:
            raise ChemtomoError(f"{Path(p).name} has no number in its name to read a tilt angle from; pass angles")
        out.append(float(found[-1]))
    return np.array(out)


def _read(path, downsample):
    from ..io.instrument import read_spectrum_image

    kwargs = {"downsample": int(downsample)} if Path(path).suffix.lower() == ".bcf" and downsample != 1 else {}
    return read_spectrum_image(path, **kwargs)


def _bin_image(img, shape):
    if img is None:
        return None
    img = np.asarray(img, dtype=np.float64)
    if img.shape == tuple(shape):
        return img
    fy, fx = img.shape[0] // shape[0], img.shape[1] // shape[1]
    if fy < 1 or fx < 1 or img.shape != (shape[0] * fy, shape[1] * fx):
        return None
    return img.reshape(shape[0], fy, shape[1], fx).sum(axis=(1, 3))


def detection(si, energy, lines, **options) -> dict:
    """Whole-image significance of each line or edge in one spectrum image: its net counts over their noise.

    X-ray lines: the unbiased whole-spectrum estimates of :func:`.learned.line_estimates` summed over all
    pixels, over their standard deviation (:func:`.learned.significance`). EELS edges:
    :func:`.learned.edge_detection`, whose edge delays are fitted to the summed spectrum (with the
    model's delays, a present O K edge above Ti L2,3 read -13 at 1000 edge counts). Below
    :data:`DETECTION_Z` the line is not detected, and any map of it says little. `options` with the
    names of :func:`.learned.line_estimates` (``fwhm_mnka``, ``beam_energy``, ``width``,
    ``energy_window``) are used, others ignored. Returns ``{}`` when the lines cannot be fitted jointly
    (e.g. two that the model cannot tell apart).
    """
    from .learned import edge_detection, is_eels, line_estimates, significance

    keys = ("fwhm_mnka", "beam_energy", "width", "energy_window")
    kw = {k: v for k, v in options.items() if k in keys}
    try:
        if is_eels(lines):
            z = edge_detection(si, energy, lines, **{k: v for k, v in kw.items() if k in ("width", "energy_window")})
            return dict(zip(lines, z["significance"].tolist()))
        est = line_estimates(si, energy, lines, **kw)
    except (ChemtomoError, np.linalg.LinAlgError):
        return {}
    return dict(zip(lines, significance(est["estimate"], est["sigma"]).tolist()))


def maps_series(files, elements, *, method: str = "window", angles=None, fwhm_mnka: float = 130.0,
                downsample: int = 1, return_std: bool = False, **options):
    """Elemental maps of every tilt, as a tilt series with one signal per line (plus ``HAADF``).

    Parameters
    ----------
    files : sequence of str or Path
        One spectrum-image file per tilt (``.bcf``, ``.emd``, ``.hspy``, ...).
    elements : sequence of str or str
        Elements or lines, e.g. ``["Fe", "Pt"]``, ``"Fe,Pt_Ma"``; lines per :func:`.lines.resolve_lines`.
    method : {"window", "fit", "regularised", "learned"}, default "window"
        :func:`.maps.window_maps`, :func:`.maps.fit_maps`, :func:`.regularised.regularised_maps`
        (low dose; its weight chosen by count splitting per tilt) or :func:`.learned.learned_maps`
        (low dose, with a per-pixel standard deviation). EELS edges (``"O_K,Fe_L23"``, energies in eV)
        take ``"window"`` (:func:`.eels.eels_maps`), ``"regularised"`` or ``"learned"``. Every tilt is mapped on its own.
    angles : sequence of float, "names" or None
        Tilt angles in degrees, one per file, or ``"names"`` to read them from the file names
        (:func:`angles_from_names`). Required for more than one file (one file: 0 degrees).
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    downsample : int, default 1
        Bin Bruker spectrum images `downsample` x `downsample` on reading (HAADF binned to match).
    return_std : bool, default False
        With ``method="learned"``, also return the maps' standard deviations.
    **options
        Passed to the map function (e.g. ``width=``, ``background=``).

    Returns
    -------
    series : TiltSeries
        Signals named by line (``Fe_Ka``) in counts, and ``HAADF`` if every file carries an image,
        sorted by angle; ``metadata`` holds the files, lines, method, energy calibration and
        ``significance`` (per line, one whole-image significance per tilt, :func:`detection`).
    std : TiltSeries
        Only with `return_std`: the standard deviation of each line's map, counts.

    Raises
    ------
    ChemtomoError
        Unknown method, missing or mismatched angles, or files that disagree in size or energy calibration.
    """
    from .eels import eels_maps
    from .learned import is_eels, learned_maps
    from .maps import fit_maps, window_maps
    from .regularised import regularised_maps

    eels = is_eels(elements)
    funcs = ({"window": eels_maps, "regularised": regularised_maps, "learned": learned_maps} if eels else
             {"window": window_maps, "fit": fit_maps, "regularised": regularised_maps, "learned": learned_maps})
    if method not in funcs:
        raise ChemtomoError(f"unknown map method {method!r} for {'EELS edges' if eels else 'EDX'}; "
                            f"use {', '.join(repr(m) for m in funcs)}")
    if return_std and method != "learned":
        raise ChemtomoError("only method='learned' gives standard deviations; drop return_std")
    if not eels:
        options = {"fwhm_mnka": fwhm_mnka, **options}
    files = [Path(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
    if not files:
        raise ChemtomoError("no spectrum-image files given; pass one file per tilt")
    if isinstance(angles, str) and angles == "names":
        angles = angles_from_names(files)
    elif angles is None and len(files) == 1:
        angles = [0.0]  # one spectrum image: a single projection, no tilt series
    elif angles is None:
        raise ChemtomoError("no tilt angles given; pass one angle per file, or angles='names' to read them from file names")
    angles = as_angles(angles)
    if angles.size != len(files):
        raise ShapeError(f"angles has {angles.size} entries but {len(files)} files were given; give one angle per file")
    if np.unique(angles).size != angles.size:
        raise ChemtomoError(f"tilt angles repeat ({sorted(angles.tolist())}); give each file its own angle")
    order = np.argsort(angles, kind="stable")
    maps, stds, images, ref, lines, beam, zs = {}, {}, [], None, None, None, {}
    for i in order:
        path = files[i]
        d = _read(path, downsample)
        si, energy = d["spectrum_image"], np.asarray(d["energy"])
        if ref is None:
            ref = (path, si.shape, energy, d.get("pixel_size"))
            beam = d.get("beam_energy") or 200.0
            from .lines import resolve_lines, split_names

            lines = split_names(elements) if eels else resolve_lines(elements, energy, beam_energy=beam)
            if not eels:
                options = {"beam_energy": beam, **options}
        else:
            if si.shape != ref[1]:
                raise ShapeError(
                    f"{path.name} has a spectrum image of shape {si.shape} but {ref[0].name} has {ref[1]}; "
                    "give files of one acquisition size"
                )
            step = ref[2][1] - ref[2][0]
            if abs(energy[0] - ref[2][0]) > 0.5 * step or abs((energy[1] - energy[0]) - step) > 1e-3 * step:
                raise ChemtomoError(
                    f"{path.name} has energy offset {energy[0]:.4f} keV and {1e3 * (energy[1] - energy[0]):.3f} eV "
                    f"per channel but {ref[0].name} has {ref[2][0]:.4f} keV and {1e3 * step:.3f} eV; "
                    "recalibrate the files to one energy axis"
                )
        extra = {"return_std": True} if method == "learned" else {}
        e = energy * 1e3 if eels else energy  # EELS maps take eV
        result = funcs[method](si, e, lines, **extra, **options)
        z = detection(si, e, lines, **options)
        for line in lines:
            zs.setdefault(line, []).append(z.get(line))
        if method == "learned":
            result, std = result
            for line in lines:
                stds.setdefault(line, []).append(std[line])
        for line in lines:
            maps.setdefault(line, []).append(result[line])
        images.append(_bin_image(d.get("image"), si.shape[:2]))
    sorted_angles = angles[order]
    signals = {line: Signal(np.stack(m), sorted_angles, "counts") for line, m in maps.items()}
    if all(img is not None for img in images):
        signals["HAADF"] = Signal(np.stack(images), sorted_angles, "detector units")
    meta = {
        "files": [str(files[i]) for i in order], "lines": lines, "method": method,
        "energy_offset_keV": float(ref[2][0]), "energy_scale_keV": float(ref[2][1] - ref[2][0]),
        "beam_energy_keV": float(beam), "fwhm_mnka_eV": float(fwhm_mnka), "kind": "eels" if eels else "edx",
        "significance": zs,
    }
    series = TiltSeries(signals, pixel_size=float(ref[3] or 1.0), metadata=meta)
    if not return_std:
        return series
    std = {line: Signal(np.stack(m), sorted_angles, "counts") for line, m in stds.items()}
    return series, TiltSeries(std, pixel_size=series.pixel_size, metadata={**meta, "quantity": "standard deviation"})


def write_maps(series: TiltSeries, out_dir) -> list[Path]:
    """Write ``DIR/<signal>.mrc`` (float32 stacks), ``DIR/angles.tlt`` and ``DIR/maps.json``.

    All signals must share one set of angles (as :func:`maps_series` makes them).

    Returns
    -------
    paths : list of Path
        The stacks, the angle file and the JSON summary.
    """
    from ..io.write import atomic_write, to_json, write_angles, write_stack

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


def maps_to_directory(inputs, elements, out_dir, *, method: str = "window", angles=None,
                      angles_from_names: bool = False, fwhm_mnka: float = 130.0, downsample: int = 1,
                      weights=None, keep_undetected: bool = False) -> dict:
    """Everything ``chemtomo maps INPUT... --elements Fe,Pt --out DIR`` does: read, map, write.

    Parameters
    ----------
    inputs : sequence of str or Path
        Spectrum-image files, one per tilt.
    elements : str or sequence of str
        ``"Fe,Pt"`` or ``["Fe", "Pt_Ma"]``.
    out_dir : str or Path
        Output folder, created if missing.
    method : {"window", "fit", "regularised", "learned"}, default "window"
        ``"learned"`` also writes each map's standard deviation to ``DIR/std/<line>.mrc``.
    angles : str, Path or sequence of float, optional
        Angle file (one angle in degrees per line, IMOD ``.tlt``) or the angles themselves.
    angles_from_names : bool, default False
        Read each angle from its file name instead (``-35.bcf`` -> -35).
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    downsample : int, default 1
        Bin Bruker spectrum images on reading.
    weights : path or sequence of paths, optional
        With ``method="learned"``: the network(s) to use (:func:`.learned.learned_maps`); default the
        shipped ensemble.
    keep_undetected : bool, default False
        With ``method="learned"``: keep the network's maps of EELS edges below detection instead of
        empty ones (``min_significance=None`` of :func:`.learned.learned_maps`).

    Returns
    -------
    summary : dict
        ``out_dir``, ``files`` (written), ``lines``, ``signals``, ``angles``, ``n_tilts``,
        ``image_shape``, ``pixel_size`` (nm), ``method``, ``counts`` (total per signal) and
        ``undetected``: for each line below :data:`DETECTION_Z` in some tilt, the angles of those tilts.
    """
    if angles_from_names and angles is not None:
        raise ChemtomoError("give either --angles FILE or --angles-from-names, not both")
    options = {}
    if weights is not None:  # checked and loaded by learned_maps
        if method != "learned":
            raise ChemtomoError(f"weights are for method 'learned', not {method!r}; drop --weights or use --method learned")
        options["weights"] = weights
    if keep_undetected:
        if method != "learned":
            raise ChemtomoError(f"keep_undetected is for method 'learned', not {method!r}; drop it or use --method learned")
        options["min_significance"] = None
    if angles_from_names:
        angles = "names"
    elif isinstance(angles, (str, Path)):
        from ..io.mrc import read_angles

        if not Path(angles).is_file():
            raise ChemtomoError(f"angle file {angles} does not exist; give a text file with one angle per line")
        angles = read_angles(angles)
    series = maps_series(inputs, elements, method=method, angles=angles, fwhm_mnka=fwhm_mnka, downsample=downsample,
                         return_std=method == "learned", **options)
    if method == "learned":
        series, std = series
        paths = write_maps(std, Path(out_dir) / "std")
    else:
        paths = []
    paths = write_maps(series, out_dir) + paths
    first = next(iter(series.signals.values()))
    return {
        "out_dir": str(out_dir), "files": [str(p) for p in paths], "lines": series.metadata["lines"],
        "signals": series.names, "angles": first.angles.tolist(), "n_tilts": int(first.angles.size),
        "image_shape": list(series.image_shape), "pixel_size": series.pixel_size, "method": method,
        "counts": {n: float(np.sum(s.data)) for n, s in series.signals.items()},
        "undetected": undetected(series),
    }


def undetected(series: TiltSeries, threshold: float = DETECTION_Z) -> dict:
    """Angles (degrees) of the tilts where each line's significance (``metadata["significance"]``) is below `threshold`.

    Lines detected in every tilt, or without a significance, are left out.
    """
    angles = next(iter(series.signals.values())).angles
    out = {}
    for line, z in series.metadata.get("significance", {}).items():
        low = [float(a) for a, v in zip(angles, z) if v is not None and v < threshold]
        if low:
            out[line] = low
    return out
