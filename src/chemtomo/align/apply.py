"""Align every signal of a tilt series with the shifts found on a reference signal.

HAADF and EDX are recorded in the same scan, so drift measured on the
well-exposed HAADF images applies to the low-count element maps taken at the
same tilts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError, as_angles
from ..core.shifts import apply_shifts
from .com import centre_of_mass, com_shifts, sinusoid_fit
from .matching import projection_matching
from .tilt_axis import rotate_stack, tilt_axis_angle
from .xcorr import xcorr_shifts

METHODS = ("xcorr", "com", "matching", "xcorr+matching", "com+matching")

__all__ = ["METHODS", "align_series", "align_to_directory", "apply_shifts", "shifts_for_angles"]


def shifts_for_angles(reference_angles, shifts, angles, *, tol=0.01) -> np.ndarray:
    """Pick the shifts of `angles` from those found at `reference_angles` (match within `tol` degrees).

    Raises
    ------
    ChemtomoError
        If an angle has no reference angle within `tol`.
    """
    ref = as_angles(reference_angles, name="reference angles")
    a = as_angles(angles)
    dist = np.abs(a[:, None] - ref[None, :])
    idx = dist.argmin(axis=1)
    bad = dist[np.arange(a.size), idx] > tol
    if np.any(bad):
        missing = ", ".join(f"{v:g}" for v in a[bad][:5])
        raise ChemtomoError(f"tilt angles {missing} deg have no reference image within {tol:g} deg; "
                            "align on a signal recorded at every tilt or drop those images")
    return np.asarray(shifts, dtype=np.float64)[idx]


def _centre(stack, angles, shifts, fold_offset):
    """Add the volume translation that puts the object's centre of mass on the tilt axis."""
    com = centre_of_mass(stack) - shifts  # COM of the aligned images
    (x_c, z_c, c), _ = sinusoid_fit(com[:, 1], angles)
    theta = np.deg2rad(angles)
    out = shifts.copy()
    out[:, 0] += com[:, 0].mean()
    out[:, 1] += x_c * np.cos(theta) + z_c * np.sin(theta) + (c if fold_offset else 0.0)
    return out, (0.0 if fold_offset else float(c))


def align_series(series: TiltSeries, *, reference="HAADF", method="xcorr+matching", iterations=5, lowpass=1.0,
                 rotation=0.0, binning=1, centre=True, progress=None):
    """Align all signals of a tilt series on one reference signal.

    Parameters
    ----------
    series : TiltSeries
        Signals ``p[a, y, u]``; each may have its own subset of the reference tilts.
    reference : str, default "HAADF"
        Signal the shifts are measured on (recorded at every tilt, good counts).
    method : {"xcorr", "com", "matching", "xcorr+matching", "com+matching"}, default "xcorr+matching"
        Cross-correlation (:func:`~chemtomo.align.xcorr.xcorr_shifts`, running
        reference), centre of mass (:func:`~chemtomo.align.com.com_shifts`),
        projection matching (:func:`~chemtomo.align.matching.projection_matching`)
        alone or started from one of the first two.
    iterations : int, default 5
        Projection-matching rounds.
    lowpass : float, default 1.0
        Gaussian sigma in pixels of the correlation low-pass.
    rotation : float or "estimate", default 0.0
        In-plane angle of the tilt axis in degrees (see
        :func:`~chemtomo.align.tilt_axis.tilt_axis_angle`); all images are
        rotated by ``-rotation`` first. ``"estimate"`` measures it on the reference.
    binning : int, default 1
        Binning of the projection-matching reconstructions.
    centre : bool, default True
        Put the object's centre of mass on the tilt axis (an isolated particle).
        False keeps the measured shifts with zero mean: for specimens that fill
        the field of view (FIB sections, films), whose centre of mass is not
        the object's.
    progress : callable(name, done, total), optional
        Rounds of projection matching (:func:`~chemtomo.align.matching.projection_matching`).

    Returns
    -------
    aligned : TiltSeries
        Every signal rotated and moved by minus its shifts (linear
        interpolation, float32); ``metadata["alignment"]`` records reference,
        method, rotation, axis offset and the reference shifts.
    shifts : dict of str to ndarray (n_tilts_signal, 2)
        ``(dy, du)`` in pixels per image of each signal. Gauge: the aligned
        object's centre of mass lies on the tilt axis, which is at the detector
        centre (for xcorr and com; after matching the axis offset that makes
        the data consistent is kept and reported as ``axis_offset``).

    Raises
    ------
    ChemtomoError
        For an unknown reference or method, or a signal angle missing from the reference.
    """
    if reference not in series:
        raise ChemtomoError(f"reference signal {reference!r} not found; this tilt series has {', '.join(series.names)}")
    if method not in METHODS:
        raise ChemtomoError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    ref = series[reference]
    theta = ref.angles
    if isinstance(rotation, str):
        if rotation != "estimate":
            raise ChemtomoError(f"rotation must be an angle in degrees or 'estimate', got {rotation!r}")
        rotation = tilt_axis_angle(ref.data)
    rotation = float(rotation)
    rotated = {n: (rotate_stack(s.data, -rotation) if rotation else np.asarray(s.data, np.float32))
               for n, s in series.signals.items()}
    p = rotated[reference]
    first, _, refine = method.partition("+")
    info = {}
    if first == "xcorr":
        shifts = xcorr_shifts(p, theta, lowpass=lowpass)
    elif first == "com":
        shifts = com_shifts(p, theta, offset=False)[0]
    else:
        shifts, info = projection_matching(p, theta, iterations=iterations, lowpass=lowpass, binning=binning,
                                           progress=progress)
    if refine:
        shifts, info = projection_matching(p, theta, iterations=iterations, lowpass=lowpass, shifts0=shifts,
                                           binning=binning, progress=progress)
    if centre:
        shifts, offset = _centre(p, theta, shifts, fold_offset="matching" not in method)
    else:
        shifts, offset = shifts - shifts.mean(axis=0), 0.0
    out, signals = {}, {}
    for name, s in series.signals.items():
        sh = shifts if name == reference else shifts_for_angles(theta, shifts, s.angles)
        out[name] = sh
        signals[name] = Signal(apply_shifts(rotated[name], -sh).astype(np.float32), s.angles, s.units)
    meta = dict(series.metadata)
    meta["alignment"] = {"reference": reference, "method": method, "rotation": rotation, "axis_offset": offset,
                         "shifts": shifts.tolist(), "updates": info.get("updates", []),
                         "converged": info.get("converged")}
    aligned = TiltSeries(signals, pixel_size=series.pixel_size, dose=series.dose,
                         acquisition_time=series.acquisition_time, metadata=meta)
    return aligned, out


def align_to_directory(signals, angles, out_dir, *, reference="HAADF", method="xcorr+matching", iterations=5,
                       rotation=0.0, pixel_size=None, centre=True, progress=None) -> dict:
    """Read stacks, align them on `reference`, and write the aligned stacks, shifts and angles.

    Parameters
    ----------
    signals : dict of str to path
        ``{"HAADF": "haadf.mrc", "Au": "au.tif"}`` (read with :func:`chemtomo.io.read_tilt_series`).
    angles : path, sequence or dict, optional
        Tilt angles in degrees as accepted by :func:`chemtomo.io.read_tilt_series`.
    out_dir : str or Path
        Created if missing. Receives ``<name>.mrc`` (+ ``<name>.tlt``) per signal,
        ``shifts.txt`` (angle, dy, du of the reference, pixels) and ``angles.tlt``
        (reference angles).
    reference, method, iterations, rotation, centre, progress
        As in :func:`align_series`.
    pixel_size : float, optional
        Pixel size in nm; from the files if omitted.

    Returns
    -------
    summary : dict
        ``reference``, ``method``, ``files`` (name -> path), ``shifts_file``,
        ``angles_file``, ``rms_shift`` and ``max_shift`` (pixels), ``rotation``
        (degrees), ``axis_offset`` (pixels), ``converged``.
    """
    from ..io import read_tilt_series, write_angles, write_stack

    series = read_tilt_series(signals, angles, pixel_size=pixel_size)
    aligned, shifts = align_series(series, reference=reference, method=method, iterations=iterations,
                                   rotation=rotation, centre=centre, progress=progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, s in aligned.signals.items():
        files[name] = str(write_stack(out / f"{name}.mrc", s.data, s.angles, pixel_size=aligned.pixel_size))
    theta = aligned[reference].angles
    sh = shifts[reference]
    table = np.column_stack([theta, sh])
    shifts_file = out / "shifts.txt"
    np.savetxt(shifts_file, table, fmt="%.4f", header="angle_deg dy_px du_px (content moved by; aligned = moved by minus)")
    angles_file = write_angles(out / "angles.tlt", theta)
    meta = aligned.metadata["alignment"]
    return {"reference": reference, "method": method, "files": files, "shifts_file": str(shifts_file),
            "angles_file": str(angles_file), "rms_shift": float(np.sqrt((sh**2).sum(axis=1).mean())),
            "max_shift": float(np.abs(sh).max()), "rotation": meta["rotation"], "axis_offset": meta["axis_offset"],
            "converged": meta["converged"]}
