"""Tilt series of elemental maps: one spectrum image per tilt -> :class:`~chemtomo.core.data.TiltSeries`.

Writing them to a folder (``chemtomo maps``) is :func:`chemtomo.pipeline.maps.maps_to_directory`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError, ShapeError, as_angles
from ..physics.counts import resolve_read_noise
from .estimates import DETECTION_Z, detection

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


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


def _read(path, downsample, signal=None):
    from ..io.instrument import read_spectrum_image

    kwargs = {"downsample": int(downsample)} if Path(path).suffix.lower() == ".bcf" and downsample != 1 else {}
    return read_spectrum_image(path, signal=signal, **kwargs)


def file_elements(path, signal=None) -> list[str]:
    """The element list a spectrum-image file stores (a Bruker ``.bcf``: the user's selection in Esprit).

    Raises
    ------
    ChemtomoError
        If the file stores none: the elements must then be given.
    """
    from ..io.instrument import stored_elements

    found = stored_elements(path, signal)  # from the metadata: the data are read once, by the maps
    if not found:
        raise ChemtomoError(f"no elements given and {Path(path).name} stores none; give them, e.g. --elements Fe,Pt")
    return found


def _check_calibration(si, energy, lines, fwhm_mnka, beam, name, notes) -> dict | None:
    """:func:`.calibration.energy_offset` of the first file; a note with the correction when it is off."""
    from .calibration import energy_offset

    try:
        check = energy_offset(si, energy, lines, fwhm_mnka=fwhm_mnka, beam_energy=beam)
    except ChemtomoError:  # no line inside the range: the map methods say so themselves
        return None
    if check["off"]:
        notes.append(f"the known lines of {', '.join(lines)} sit {1e3 * check['offset']:+.0f} eV from their "
                     f"energies in {name} (significance {check['significance']:.0f}): its energy axis looks off; "
                     f"--energy-correction {-check['offset']:.3f} (keV, added to every file's axis) corrects it")
    return check


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


def maps_series(files, elements, *, method: str | None = None, angles=None, fwhm_mnka: float = 130.0,
                downsample: int = 1, progress=None, **options):
    """Elemental maps of every tilt, as a tilt series with one signal per line (plus ``HAADF``).

    Parameters
    ----------
    files : sequence of str or Path
        One spectrum-image file per tilt (``.bcf``, ``.emd``, ``.hspy``, ...).
    elements : sequence of str or str
        Elements or lines, e.g. ``["Fe", "Pt"]``, ``"Fe,Pt_Ma"``; lines per :func:`.lines.resolve_lines`.
    method : {"window", "fit", "regularised", "learned"}, optional
        :func:`.maps.window_maps`, :func:`.maps.fit_maps`, :func:`.regularised.regularised_maps`
        (low dose; its weight chosen by count splitting per tilt) or :func:`.learned.learned_maps`
        (low dose; :func:`learned_maps_series` also gives their standard deviations). EELS edges
        (``"O_K,Fe_L23"``, energies in eV) take the same names, ``"window"`` being :func:`.eels.eels_maps`
        (which refuses edges on one another's tails). Default: ``"fit"`` for EELS edges, ``"window"`` for
        X-ray lines. Every tilt is mapped on its own.
    angles : sequence of float, "names" or None
        Tilt angles in degrees, one per file, or ``"names"`` to read them from the file names
        (:func:`angles_from_names`). Required for more than one file (one file: 0 degrees).
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    downsample : int, default 1
        Bin Bruker spectrum images `downsample` x `downsample` on reading (HAADF binned to match).
    progress : callable(name, done, total), optional
        Called as ``("maps", tilts done, tilts)`` before the first tilt and after each.
    **options
        Passed to the map function (e.g. ``width=``, ``background=``, ``read_noise=`` for every method but
        ``"window"``: a number, or ``"auto"`` estimated per tilt), except ``signal``: the spectrum image to
        read from files holding several (Velox ``.emd`` with EDS and EELS), by title or index
        (:func:`chemtomo.io.instrument.list_signals`); and ``energy_correction`` (keV), added to every file's
        energy axis. The first file's calibration is checked against the known lines
        (:func:`.calibration.energy_offset`): ``metadata["energy_check"]``, and a note with the correction
        when the lines sit off their energies.

    `elements` may be None or empty: the element list stored in the first file (a Bruker ``.bcf``'s
    selection in Esprit) is used then, and recorded as ``metadata["elements_from_file"]``.

    Returns
    -------
    series : TiltSeries
        Signals named by line (``Fe_Ka``) in counts, and ``HAADF`` if every file carries an image,
        sorted by angle; ``metadata`` holds the files, lines, method, energy calibration and
        ``significance`` (per line, one whole-image significance per tilt, :func:`detection`).

    Raises
    ------
    ChemtomoError
        Unknown method, missing or mismatched angles, or files that disagree in size or energy calibration.
    """
    return _series(files, elements, method, angles, fwhm_mnka, downsample, options, progress)[0]


def learned_maps_series(files, elements, *, angles=None, fwhm_mnka: float = 130.0, downsample: int = 1,
                        progress=None, **options):
    """Learned maps of every tilt (:func:`.learned.learned_maps`) and their standard deviations, as two tilt series.

    Parameters
    ----------
    files, elements, angles, fwhm_mnka, downsample, progress
        As for :func:`maps_series`.
    **options
        Passed to :func:`.learned.learned_maps` (e.g. ``weights=``, ``min_significance=``).

    Returns
    -------
    series : TiltSeries
        The maps, as ``maps_series(..., method="learned")`` returns them.
    std : TiltSeries
        The standard deviation of each line's map, counts; ``metadata`` as `series`' plus
        ``quantity: "standard deviation"``.

    Raises
    ------
    ChemtomoError
        As :func:`maps_series`.
    """
    return _series(files, elements, "learned", angles, fwhm_mnka, downsample, options, progress)


def _series(files, elements, method, angles, fwhm_mnka, downsample, options, progress=None):
    """:func:`maps_series` and, with ``method="learned"``, the standard deviations as a second series (else None)."""
    from .eels import eels_maps
    from .eels_model import is_eels
    from .learned import learned_maps
    from .maps import fit_maps, window_maps
    from .regularised import regularised_maps

    options = dict(options)
    signal = options.pop("signal", None)
    correction = float(options.pop("energy_correction", 0.0) or 0.0)  # keV added to every file's energy axis
    from_file = None
    if not elements:
        elements = from_file = file_elements(files if isinstance(files, (str, Path)) else (list(files) or [""])[0],
                                             signal)
    eels = is_eels(elements)
    funcs = {"window": eels_maps if eels else window_maps, "fit": fit_maps, "regularised": regularised_maps,
             "learned": learned_maps}
    if method is None:
        method = "fit" if eels else "window"
    if method == "window" and options.get("read_noise") not in (None, 0, 0.0):
        raise ChemtomoError("read noise is for methods fit, regularised and learned; the window method takes raw "
                            "counts only: use --method fit")
    if method == "window" or options.get("read_noise") is None:
        options = {k: v for k, v in options.items() if k != "read_noise"}
    if method not in funcs:
        raise ChemtomoError(f"unknown map method {method!r} for {'EELS edges' if eels else 'EDX'}; "
                            f"use {', '.join(repr(m) for m in funcs)}")
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
    maps, stds, images, ref, lines, beam, zs, noises = {}, {}, [], None, None, None, {}, []
    if progress is not None:
        progress("maps", 0, len(files))
    for i in order:
        path = files[i]
        d = _read(path, downsample, signal)
        si, energy = d["spectrum_image"], np.asarray(d["energy"]) + correction
        if ref is None:
            first_notes = list(d.get("notes") or [])
            ref = (path, si.shape, energy, d.get("pixel_size"))
            beam = d.get("beam_energy") or 200.0
            from .lines import resolve_lines, split_names

            lines = split_names(elements) if eels else resolve_lines(elements, energy, beam_energy=beam)
            if not eels:
                options = {"beam_energy": beam, **options}
                calibration = _check_calibration(si, energy, lines, fwhm_mnka, beam, path.name, first_notes)
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
        e = energy * 1e3 if eels else energy  # EELS maps take eV
        kw = options
        if "read_noise" in options:  # resolved once per tilt ("auto": estimated from this spectrum image)
            kw = {**options, "read_noise": resolve_read_noise(options["read_noise"], si)}
            noises.append(kw["read_noise"])
        result = funcs[method](si, e, lines, **kw)
        z = detection(si, e, lines, **kw)
        for line in lines:
            zs.setdefault(line, []).append(z.get(line))
        if method == "learned":
            result, std = result
            for line in lines:
                stds.setdefault(line, []).append(std[line])
        elif method == "regularised":
            result, _ = result
        for line in lines:
            maps.setdefault(line, []).append(result[line])
        images.append(_bin_image(d.get("image"), si.shape[:2]))
        if progress is not None:
            progress("maps", len(images), len(files))
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
    if noises:
        meta["read_noise"] = noises  # electrons per channel, per tilt (sorted by angle)
    if from_file:
        meta["elements_from_file"] = from_file
    if not eels:
        meta["energy_check"] = calibration
    if correction:
        meta["energy_correction_keV"] = correction
    if first_notes:
        meta["notes"] = first_notes
    series = TiltSeries(signals, pixel_size=float(ref[3] or 1.0), metadata=meta)
    if method != "learned":
        return series, None
    std = {line: Signal(np.stack(m), sorted_angles, "counts") for line, m in stds.items()}
    return series, TiltSeries(std, pixel_size=series.pixel_size, metadata={**meta, "quantity": "standard deviation"})


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
