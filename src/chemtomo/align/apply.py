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
from .orientation import orient
from .tilt_axis import rotate_stack, rotation_estimate, rotation_from_com
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


def _centre(stack, angles, shifts):
    """Add the volume translation that puts the object's centre of mass on the tilt axis (across the axis
    only: along the axis the object stays where it is). Returns the shifts and the constant of the fit: how
    far (pixels along u) the axis was from the detector centre before, now folded into the shifts."""
    com = centre_of_mass(stack) - shifts  # COM of the aligned images
    (x_c, z_c, c), _ = sinusoid_fit(com[:, 1], angles)
    theta = np.deg2rad(angles)
    out = shifts.copy()
    out[:, 1] += x_c * np.cos(theta) + z_c * np.sin(theta) + c
    return out, float(c)


#: profile spread ratio above which the profiles' angle is taken (compact particles: hundreds to thousands;
#: needles and field-filling sections: below 3, where the profiles find confident wrong angles)
PROFILES_CLEAR = 20.0
#: the centres-of-mass estimate must have converged to this last step (degrees)
COM_CONVERGED = 0.2


def _estimate_rotation(stack, angles, lowpass) -> tuple[float, dict]:
    """The tilt-axis angle (degrees) and how it was found: from the profiles' tilt invariance
    (:func:`~chemtomo.align.tilt_axis.rotation_estimate`) where they pin it clearly (compact particles), else
    from where the axis crosses each band of rows (:func:`_rotation_by_com`: needles, rods along the axis)
    where that converged; ``clear`` False (with ``why``) otherwise."""
    from .matching import bin_stack

    factor = max(1, int(np.ceil(max(np.shape(stack)[1:]) / 128)))  # an angle does not need more pixels
    profiles = rotation_estimate(bin_stack(stack, factor))
    if profiles["ratio"] >= PROFILES_CLEAR and not profiles["at_edge"]:
        return profiles["angle"], dict(profiles, method="profiles")
    angle, com = _rotation_by_com(stack, angles, lowpass)
    ok = com["clear"] and abs(com["last_step"]) < COM_CONVERGED
    why = (f"profiles: spread ratio {profiles['ratio']:.2g}, clear from {PROFILES_CLEAR:g}; centres of mass: "
           + (f"standard error {com['standard_error']:.2g} deg over {com['bands']} bands" if not com["clear"] else
              f"not converged (last step {com['last_step']:.2g} deg)"))
    return angle, dict(com, method="centres of mass", profiles=profiles, clear=ok, why="" if ok else why)


def _rotation_by_com(stack, angles, lowpass, rounds=4, tol=0.05):
    """Tilt-axis angle (degrees) by :func:`~chemtomo.align.tilt_axis.rotation_from_com` on the registered
    images, repeated on the images turned back by the angle so far (the band centres mix neighbouring
    rows while the axis is turned, which shrinks each estimate; at the true angle they do not)."""
    total, est = 0.0, None
    for _ in range(rounds):
        q = rotate_stack(stack, -total) if total else np.asarray(stack, np.float32)
        try:
            est = rotation_from_com(apply_shifts(q, -xcorr_shifts(q, angles, lowpass=lowpass)), angles)
        except ChemtomoError:  # the object in fewer than 2 bands of rows: nothing to fit
            return 0.0, {"angle": 0.0, "standard_error": float("inf"), "bands": 0, "offset": 0.0, "clear": False,
                         "last_step": 0.0}
        total += est["angle"]
        if abs(est["angle"]) < tol:
            break
    return float(total), dict(est, angle=float(total), last_step=est["angle"])


def _frame(p: np.ndarray) -> np.ndarray:
    """The outermost pixel ring of every image of `p` (n, ny, nu), shape (n, ring pixels)."""
    return np.concatenate([p[:, 0, :], p[:, -1, :], p[:, 1:-1, 0], p[:, 1:-1, -1]], axis=1)


def background_level(stack) -> np.ndarray:
    """Each image's vacuum level, shape (n_tilts,): the median of its outermost pixel frame, or the image's
    5th percentile where that is lower (a specimen that fills the field, such as a FIB section, has
    material, not vacuum, in its frame; its holes and thinnest parts are the darkest pixels)."""
    p = np.asarray(stack, dtype=np.float64)
    return np.minimum(np.median(_frame(p), axis=1), np.percentile(p.reshape(p.shape[0], -1), 5, axis=1))


#: share of the images' outer frame at the vacuum level above which the specimen counts as isolated (centred
#: by ``centre="auto"``): simulated particles 1.0, etspy's needle 0.93, the L2083 FIB section 0.16
ISOLATED = 0.5


def vacuum_frame_share(stack, level=None) -> float:
    """Share of the outer pixel frame of all images near the vacuum level (below it plus a tenth of the
    way to the image's 99th percentile): about 1 for an isolated particle, low for a specimen that fills
    the field of view."""
    p = np.asarray(stack, dtype=np.float64)
    lv = (background_level(p) if level is None else np.asarray(level, dtype=np.float64))[:, None, None]
    top = np.percentile(p.reshape(p.shape[0], -1), 99, axis=1)[:, None, None]
    return float(_frame(p < lv + 0.1 * np.maximum(top - lv, 1e-12)).mean())


def _moved(stack, shifts, rotation, level):
    """`stack` turned by -`rotation` degrees and moved by -`shifts`, the pixels brought in from outside set to
    each image's background `level` (not 0, which would draw a frame into the aligned images)."""
    q = np.asarray(stack, dtype=np.float32) - level[:, None, None].astype(np.float32)
    if rotation:
        q = rotate_stack(q, -rotation)
    if shifts is not None:
        q = apply_shifts(q, -shifts)
    return (q + level[:, None, None]).astype(np.float32)


def _signal_name_ok(name: str) -> bool:
    from ..core.names import parse_signal_name

    try:
        parse_signal_name(name)
    except ChemtomoError:
        return False
    return True


def _check_reference(reference: str, names) -> None:
    """Refuse a reference that is not one of `names` or whose aligned stack ``chemtomo reconstruct`` would refuse."""
    from ..core.names import IMAGE_SIGNALS

    usable = [n for n in names if _signal_name_ok(n)]
    choices = (f"choose one of {', '.join(usable)}" if usable else
               f"name the signals {', '.join(IMAGE_SIGNALS)}, an element (Au) or an X-ray line (Au_La)")
    if not _signal_name_ok(str(reference)):
        raise ChemtomoError(f"reference signal {reference!r} is not a signal chemtomo reconstructs (HAADF, ADF, BF, "
                            f"ABF, DF, an element such as Au or an X-ray line such as Au_La); {choices}")
    if reference not in names:
        raise ChemtomoError(f"reference signal {reference!r} not found; this tilt series has {', '.join(names)}: "
                            f"{choices}")


def _check_names(names) -> None:
    """Refuse signal names whose aligned stacks ``chemtomo reconstruct`` would refuse (before any work)."""
    from ..core.names import parse_signal_name

    for name in names:
        parse_signal_name(name)


def align_series(series: TiltSeries, *, reference="HAADF", method="xcorr", iterations=5, lowpass=1.0,
                 rotation="estimate", binning=1, centre="auto", tilt_axis="auto", progress=None):
    """Align all signals of a tilt series on one reference signal.

    Parameters
    ----------
    series : TiltSeries
        Signals ``p[a, y, u]``; each may have its own subset of the reference tilts.
    reference : str, default "HAADF"
        Signal the shifts are measured on (recorded at every tilt, good counts).
    method : {"xcorr", "com", "matching", "xcorr+matching", "com+matching"}, default "xcorr"
        Cross-correlation (:func:`~chemtomo.align.xcorr.xcorr_shifts`, running
        reference), centre of mass (:func:`~chemtomo.align.com.com_shifts`),
        projection matching (:func:`~chemtomo.align.matching.projection_matching`)
        alone or started from one of the first two. On etspy's raw needle series (77 views,
        256 px) ``xcorr`` with the estimated rotation predicts held-out views better than etspy
        in 2 s; ``+matching`` improves that by 1 % in 100 s (``benchmarks/bench_align.py``).
    iterations : int, default 5
        Projection-matching rounds.
    lowpass : float, default 1.0
        Gaussian sigma in pixels of the correlation low-pass.
    rotation : float or "estimate", default "estimate"
        In-plane angle of the tilt axis in degrees (see
        :func:`~chemtomo.align.tilt_axis.tilt_axis_angle`); all images are
        rotated by ``-rotation`` first. ``"estimate"`` measures it on the reference: from the
        profiles' tilt invariance (:func:`~chemtomo.align.tilt_axis.rotation_estimate`) where
        they pin it clearly (spread ratio >= :data:`PROFILES_CLEAR`: compact particles), else from
        where the axis crosses each band of rows (:func:`~chemtomo.align.tilt_axis.rotation_from_com`
        on the registered images, repeated until it converges: needles). An estimate that
        neither pins (a FIB section filling the field) is not applied and is flagged in
        ``metadata["alignment"]["warnings"]``.
    binning : int, default 1
        Binning of the projection-matching reconstructions.
    centre : bool or "auto", default "auto"
        Put the object's centre of mass on the tilt axis, across the axis (an isolated particle).
        False keeps the measured shifts with zero mean: for specimens that fill
        the field of view (FIB sections, films), whose centre of mass is not
        the object's. ``"auto"``: True when at least :data:`ISOLATED` of the images' outer frame is
        vacuum (:func:`vacuum_frame_share`; centring the L2083 FIB section raised its held-out
        view error from 0.212 to 0.255).
    tilt_axis : {"auto", "y", "x"}, default "auto"
        Direction of the tilt axis in the images (:func:`~chemtomo.align.orientation.orient`): ``"x"``
        (HyperSpy, etspy, tomviz) transposes every image first; ``"auto"`` does so when the data clearly
        say so; a stated direction the data contradict is flagged.
    progress : callable(name, done, total), optional
        Rounds of projection matching (:func:`~chemtomo.align.matching.projection_matching`).

    Returns
    -------
    aligned : TiltSeries
        Every signal transposed if needed, rotated and moved by minus its shifts (linear
        interpolation, float32; pixels brought in from outside take the image's background level,
        :func:`background_level`), with the tilt axis on the detector centre: reconstruct them with
        no axis offset. ``metadata["alignment"]`` records every estimated parameter: orientation,
        rotation (and its search), ``axis_found_at`` (pixels from the detector centre along u where
        the axis was, folded into the shifts), the reference shifts and ``warnings``.
    shifts : dict of str to ndarray (n_tilts_signal, 2)
        ``(dy, du)`` in pixels per image of each signal (after the transposition). Gauge: with
        `centre`, the aligned object's centre of mass across the axis lies on the tilt axis at the
        detector centre; along the axis the shifts have zero mean.

    Raises
    ------
    ChemtomoError
        For an unknown reference or method, a reference name ``chemtomo reconstruct`` refuses (the
        message lists the usable signals), or a signal angle missing from the reference.
    """
    _check_reference(reference, series.names)
    if method not in METHODS:
        raise ChemtomoError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    series, orientation = orient(series, tilt_axis, reference=reference)
    warnings = [orientation["warning"]] if orientation["warning"] else []
    ref = series[reference]
    theta = ref.angles
    level = {n: background_level(s.data) for n, s in series.signals.items()}
    search = None
    if isinstance(rotation, str):
        if rotation != "estimate":
            raise ChemtomoError(f"rotation must be an angle in degrees or 'estimate', got {rotation!r}")
        ref0 = np.asarray(ref.data, np.float32) - level[reference][:, None, None]
        rotation, search = _estimate_rotation(ref0, theta, lowpass)
        if not search["clear"]:
            warnings.append(f"the data do not pin the tilt-axis rotation ({search['why']}), as for specimens that "
                            f"fill the field of view: the estimate {rotation:.2f} deg was not applied; give "
                            "--rotation in degrees")
            rotation = 0.0
    rotation = float(rotation)
    # measured on the reference without its background (a bright support would pull the centres of mass)
    p = _moved(ref.data, None, rotation, level[reference]) - level[reference][:, None, None].astype(np.float32)
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
    frame_share = vacuum_frame_share(ref.data, level[reference])
    if centre == "auto":
        centre = frame_share >= ISOLATED
    elif not isinstance(centre, (bool, np.bool_)):
        raise ChemtomoError(f"centre must be True, False or 'auto', got {centre!r}")
    if centre:
        shifts, found = _centre(p, theta, shifts)
        shifts[:, 0] -= shifts[:, 0].mean()  # along the axis: no net move of the specimen
    else:
        shifts, found = shifts - shifts.mean(axis=0), None
    out, signals = {}, {}
    for name, s in series.signals.items():
        sh = shifts if name == reference else shifts_for_angles(theta, shifts, s.angles)
        out[name] = sh
        signals[name] = Signal(_moved(s.data, sh, rotation, level[name]), s.angles, s.units)
    meta = dict(series.metadata)
    meta["alignment"] = {"reference": reference, "method": method, "orientation": orientation, "rotation": rotation,
                         "centred": bool(centre), "vacuum_frame_share": round(frame_share, 3),
                         "rotation_search": search, "axis_found_at": found, "axis_offset": 0.0,
                         "shifts": shifts.tolist(), "updates": info.get("updates", []),
                         "converged": info.get("converged"), "warnings": warnings}
    aligned = TiltSeries(signals, pixel_size=series.pixel_size, dose=series.dose,
                         acquisition_time=series.acquisition_time, metadata=meta)
    return aligned, out


def align_to_directory(signals, angles, out_dir, *, reference="HAADF", method="xcorr", iterations=5,
                       rotation="estimate", pixel_size=None, centre="auto", tilt_axis="auto", progress=None) -> dict:
    """Read stacks, align them on `reference`, and write the aligned stacks, shifts and angles.

    Parameters
    ----------
    signals : dict of str to path
        ``{"HAADF": "haadf.mrc", "Au": "au.tif"}`` (read with :func:`chemtomo.io.read_tilt_series`).
    angles : path, sequence or dict, optional
        Tilt angles in degrees as accepted by :func:`chemtomo.io.read_tilt_series`.
    out_dir : str or Path
        Created if missing. Receives ``<name>.mrc`` (+ ``<name>.tlt``) per signal,
        ``shifts.txt`` (angle, dy, du of the reference, pixels), ``angles.tlt``
        (reference angles) and ``alignment.json`` (every estimated parameter, as
        ``metadata["alignment"]`` of :func:`align_series`).
    reference, method, iterations, rotation, centre, tilt_axis, progress
        As in :func:`align_series`.
    pixel_size : float, optional
        Pixel size in nm; from the files if omitted.

    Returns
    -------
    summary : dict
        ``reference``, ``method``, ``files`` (name -> path), ``shifts_file``,
        ``angles_file``, ``rms_shift`` and ``max_shift`` (pixels), ``rotation``
        (degrees), ``rotation_search``, ``orientation``, ``axis_found_at`` (pixels),
        ``converged``, ``warnings``.
    """
    import json

    from ..io import read_tilt_series, write_angles, write_stack

    _check_reference(reference, list(signals))
    _check_names(signals)  # every stack written must be one reconstruct reads
    series = read_tilt_series(signals, angles, pixel_size=pixel_size)
    aligned, shifts = align_series(series, reference=reference, method=method, iterations=iterations,
                                   rotation=rotation, centre=centre, tilt_axis=tilt_axis, progress=progress)
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
    (out / "alignment.json").write_text(json.dumps({**meta, "angles": theta.tolist()}, indent=1), encoding="utf-8")
    return {"reference": reference, "method": method, "files": files, "shifts_file": str(shifts_file),
            "angles_file": str(angles_file), "rms_shift": float(np.sqrt((sh**2).sum(axis=1).mean())),
            "max_shift": float(np.abs(sh).max()), "rotation": meta["rotation"],
            "rotation_search": meta["rotation_search"], "orientation": meta["orientation"],
            "axis_found_at": meta["axis_found_at"], "centred": meta["centred"],
            "vacuum_frame_share": meta["vacuum_frame_share"], "converged": meta["converged"], "warnings": meta["warnings"],
            "notes": dict(series.metadata.get("notes", {}))}


def align_lines(summary: dict) -> list[str]:
    """What :func:`align_to_directory` estimated, one line each, for the CLI."""
    o, search = summary["orientation"], summary["rotation_search"]
    lines = [f"aligned on {summary['reference']} ({summary['method']}): RMS shift {summary['rms_shift']:.2f} px, "
             f"max {summary['max_shift']:.2f} px",
             (f"tilt axis along {o['measured']} in the images (profile spread ratio {o['ratio']:.3g}"
              + (", clear" if o["clear"] else ", not clear") + ")" if o["measured"] else
              f"tilt-axis direction not measured (kept along {o['stated'] if o['stated'] != 'auto' else 'y'})")
             + ("; images transposed to chemtomo's y axis" if o["transposed"] else "")]
    rot = f"in-plane rotation {summary['rotation']:.2f} deg"
    if search is not None and not search["clear"]:
        rot += f" (NOT CLEAR: the estimate {search['angle']:.2f} deg was not applied; {search['why']})"
    elif search is not None and search["method"] == "profiles":
        rot += f", estimated from the profiles' tilt invariance (spread ratio {search['ratio']:.3g})"
    elif search is not None:
        rot += (f", estimated from centres of mass in {search['bands']} bands of rows (standard error "
                f"{search['standard_error']:.2g} deg)")
    else:
        rot += " (given)"
    lines.append(rot)
    lines.append(("centred: the object's centre of mass put on the tilt axis" if summary["centred"] else
                  "not centred (shifts with zero mean)")
                 + f" ({100 * summary['vacuum_frame_share']:.0f} % of the image frame is vacuum"
                 + (")" if summary["vacuum_frame_share"] >= ISOLATED else ": a specimen filling the field)"))
    if summary["axis_found_at"] is not None:
        lines.append(f"tilt axis found {summary['axis_found_at']:+.2f} px from the detector centre along x; the aligned "
                     "stacks are centred on it: reconstruct them without --axis-offset")
    return lines

