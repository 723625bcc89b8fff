"""Reconstruct every signal of a tilt series: the step behind ``chemtomo reconstruct``."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..core.data import TiltSeries, VolumeSet
from ..core.errors import ChemtomoError, check_counts, check_finite
from ..core.names import is_counts
from ..core.projector import Projector
from .stopping import Convergence, Discrepancy

#: the joint method ``auto`` picks for HAADF plus element maps (best in docs/benchmarks.md)
AUTO_JOINT = "dtv"

#: methods that semi-converge, so that the discrepancy principle can stop them
_STOPPABLE = ("sirt", "sart", "cgls", "mlem")


def reconstruct_series(
    series: TiltSeries,
    method: str = "auto",
    *,
    iterations: int | None = None,
    thickness: int | None = None,
    axis_offset: float = 0.0,
    progress: Callable[[str, int, int], None] | None = None,
    stop: str | None = None,
    options: dict | None = None,
) -> VolumeSet:
    """Reconstruct each signal of `series` on its own tilt angles.

    Parameters
    ----------
    series : TiltSeries
        Signals ``p[a, y, u]`` with their angles in degrees.
    method : str, default "auto"
        A name from ``chemtomo methods``: a per-signal method, or a joint multimodal
        one (``bimodal``, ``tnv``, ``tgv``, ``dtv``, ``fused``: all element maps with HAADF at once,
        see :mod:`chemtomo.recon.joint`); ``"auto"`` picks per signal by the rule of
        :func:`chemtomo.recon.registry.auto_method`, with SIRT instead of MLEM for count
        signals that hold negative values (background-subtracted maps); a series of
        HAADF plus non-negative element maps goes to the joint method :data:`AUTO_JOINT`.
    iterations : int, optional
        Iterations of iterative methods; each method's default if omitted.
    thickness : int, optional
        Volume thickness nz in voxels; the detector width nu if omitted.
    axis_offset : float, default 0
        Tilt-axis position on the detector relative to its centre, in pixels.
    progress : callable(name, iteration, total), optional
        Called after each iteration of each signal, for progress bars.
    stop : {None, "discrepancy"}, optional
        ``"discrepancy"`` stops SIRT, SART, CGLS and MLEM on count signals (no negative values) when the
        reprojection fits the data to the Poisson noise level
        (:class:`~chemtomo.recon.stopping.Discrepancy`); `iterations` is then the
        maximum (default 500). ``method="auto"`` turns it on for count signals.
    options : dict, optional
        Extra keyword options for the method (e.g. ``{"weight": 0.05}`` for TV).
        For TV on count signals the defaults are ``data_term="kl", weight=1.0``.

    Returns
    -------
    VolumeSet
        One volume ``v[y, z, x]`` per signal, voxel size = pixel size, with
        provenance (method per signal, parameters, angles, timings, version).
    """
    from .. import __version__
    from .registry import METHODS, auto_method, reconstruct

    from .joint import JOINT_METHODS, reconstruct_joint

    if method == "auto" and _joint_ready(series):
        method = AUTO_JOINT
    if method in JOINT_METHODS:
        callback = None
        if progress is not None:
            total = iterations or JOINT_METHODS[method].iterations
            callback = lambda i, x: progress(method, i + 1, total) or False  # noqa: E731
        return reconstruct_joint(method, series, iterations=iterations, thickness=thickness, options=options,
                                 callback=callback)
    if method != "auto" and method not in METHODS:
        raise ChemtomoError(
            f"unknown method {method!r}; choose one of auto, {', '.join(METHODS)}, {', '.join(JOINT_METHODS)}"
        )
    if stop not in (None, "none", "discrepancy"):
        raise ChemtomoError(f"unknown stopping rule {stop!r}; use none or discrepancy")
    plan = {}
    for name in series.names:  # choose and validate everything before the first long run
        data = np.asarray(series[name].data, dtype=np.float32)
        counts = is_counts(name)
        chosen = auto_method([name]) if method == "auto" else method
        if method == "auto" and METHODS[chosen].counts and (data < 0).any():
            chosen = "sirt"  # background-subtracted maps are not Poisson counts
        if METHODS[chosen].counts:
            check_counts(data, f"signal {name}")
        else:
            check_finite(data, f"signal {name}")
        plan[name] = (chosen, counts and not (data < 0).any(), data)
    volumes, record = {}, {}
    for name, (chosen, poisson, data) in plan.items():
        sig = series[name]
        info = METHODS[chosen]
        opts = dict(options or {})
        if chosen == "tv" and poisson:
            opts.setdefault("data_term", "kl")
            opts.setdefault("weight", 1.0)
        early = (stop == "discrepancy" or (method == "auto" and stop is None)) and poisson and chosen in _STOPPABLE
        n_iter = iterations if iterations is not None else (500 if early else info.iterations)
        op = Projector(series.geometry(name, thickness, axis_offset=axis_offset))
        callbacks = []
        rule = Discrepancy(op, data) if early else None
        if rule is not None:
            callbacks.append(rule)
        if progress is not None and n_iter:
            callbacks.append(lambda i, x, _n=name, _t=n_iter: progress(_n, i + 1, _t) or False)
        # early-stopped runs end after a few iterations: record every one of them
        conv = Convergence(every=1 if early else max(1, (n_iter or 1) // 50)) if info.iterations else None
        if conv is not None:
            callbacks.append(conv)
        start = time.perf_counter()
        vol = reconstruct(chosen, op, data, n_iter, callback=callbacks or None, **opts)
        elapsed = time.perf_counter() - start
        if rule is not None and progress is not None:
            progress(name, n_iter, n_iter)
        volumes[name] = np.asarray(vol, dtype=np.float32)
        record[name] = {
            "method": chosen,
            "iterations": (rule.stopped_at + 1 if rule and rule.stopped_at is not None else n_iter),
            "stop": "discrepancy" if rule else None,
            "options": opts,
            "angles_deg": sig.angles.tolist(),
            "seconds": round(elapsed, 3),
            "units": sig.units,
        }
        if conv is not None:
            record[name]["convergence"] = conv.record()
    provenance = {
        "software": f"chemtomo {__version__}",
        "method": method,
        "thickness": thickness if thickness is not None else series.image_shape[1],
        "axis_offset": axis_offset,
        "options": options or {},
        "signals": record,
        "pixel_size_nm": series.pixel_size,
        "dose_e_per_A2": series.dose,
    }
    return VolumeSet(volumes, voxel_size=series.pixel_size, provenance=provenance)


def _joint_ready(series: TiltSeries) -> bool:
    """True if `series` has HAADF and only non-negative count maps besides it (a joint method applies)."""
    others = [n for n in series.names if n != "HAADF"]
    return ("HAADF" in series and bool(others)
            and all(is_counts(n) and not (np.asarray(series[n].data) < 0).any() for n in others))
