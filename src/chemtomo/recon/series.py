"""Reconstruct a tilt series by any method of the registry: the step behind ``chemtomo reconstruct``."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..core.data import TiltSeries, VolumeSet
from ..core.errors import ChemtomoError, check_counts, check_finite
from ..core.memory import check_memory
from ..core.names import is_counts
from ..core.projector import Projector
from .registry import METHODS, check_method
from .stopping import Convergence, Discrepancy

#: most iterations of a run the discrepancy rule stops, when `iterations` is not given
DISCREPANCY_MAX_ITERATIONS = 500


def reconstruct_series(
    series: TiltSeries,
    method: str,
    *,
    iterations: int | None = None,
    thickness: int | None = None,
    axis_offset: float = 0.0,
    stop: str | None = None,
    options: dict | None = None,
    progress: Callable[[str, int, int], bool | None] | None = None,
) -> VolumeSet:
    """Reconstruct `series` by a per-signal method (each signal on its own tilts) or a joint one.

    Parameters
    ----------
    series : TiltSeries
        Signals ``p[a, y, u]`` with their angles in degrees; never modified.
    method : str
        A key of :data:`~chemtomo.recon.registry.METHODS` (``chemtomo methods``):
        a per-signal method, or a joint one (``joint=True``: all element maps
        with HAADF at once, each signal on its own tilts). ``auto``, a choice
        among whole pipelines scored on the data, is
        :func:`chemtomo.pipeline.auto.run` (``chemtomo reconstruct --method auto``).
    iterations : int, optional
        Iterations of an iterative method; its default if omitted (with the
        discrepancy rule: at most :data:`DISCREPANCY_MAX_ITERATIONS`). Must be
        omitted for a direct method (``fbp``).
    thickness : int, optional
        Volume thickness nz in voxels; the detector width nu if omitted.
    axis_offset : float, default 0
        Tilt-axis position on the detector relative to its centre, in pixels;
        every method reconstructs on this geometry.
    stop : {None, "none", "discrepancy"}, optional
        ``"discrepancy"`` stops a method that semi-converges (``stoppable``:
        SIRT, SART, CGLS and MLEM on count signals without negative values,
        :class:`~chemtomo.recon.stopping.Discrepancy`; ``bimodal`` by its own
        EDX deviance rule) when the fit reaches the Poisson noise level; it is
        refused for other methods.
    options : dict, optional
        Keyword options of the method (``method_options(name)`` lists them),
        e.g. ``{"weight": 0.05}``; checked before any work. Per-signal TV on
        count signals (Poisson, no negative values) gets ``data_term="kl"``
        unless given, so its weight is then chosen by count splitting unless given.
    progress : callable(name, iteration, total) -> bool, optional
        Called after each iteration (the signal's name, or the joint method's);
        returning True stops that run (e.g. a cancel button).

    Returns
    -------
    VolumeSet
        One volume ``v[y, z, x]`` per signal (joint methods: per element and
        "HAADF"), voxel size = pixel size, with provenance: ``method``,
        ``thickness``, ``axis_offset``, ``stop``, ``options``, and per signal
        (``provenance["signals"][name]``) or for the joint run (top level) the
        method, the iterations actually run, the effective options, timings
        and a convergence record; joint runs add the method's ``info``.

    Raises
    ------
    ChemtomoError
        Before any work, for an unknown method, option, option value or
        stopping rule, iterations for a direct method, or data the method
        cannot take (e.g. negative counts for a Poisson method).
    """
    options = dict(options or {})
    stop = None if stop == "none" else stop
    if method == "auto":
        raise ChemtomoError("method auto chooses among whole pipelines (denoiser, method, iterations) on the data: "
                            "call chemtomo.pipeline.auto.run, or chemtomo reconstruct --method auto")
    check_method(method, options, iterations=iterations, stop=stop)
    nu = series.image_shape[1]
    if axis_offset is not None and not abs(float(axis_offset)) < nu / 2:
        raise ChemtomoError(f"axis offset {axis_offset} px puts the tilt axis outside the {nu} px wide images; give "
                            f"an offset between {-nu / 2:g} and {nu / 2:g} px (the axis's shift from the image centre)")
    check_recon_memory(series, thickness, joint=METHODS[method].joint)
    if METHODS[method].joint:
        return _reconstruct_joint(series, method, iterations=iterations, thickness=thickness,
                                  axis_offset=axis_offset, stop=stop, options=options, progress=progress)
    return _reconstruct_signals(series, method, iterations=iterations, thickness=thickness, axis_offset=axis_offset,
                                stop=stop, options=options, progress=progress)


def check_recon_memory(series: TiltSeries, thickness: int | None, *, joint: bool = False) -> None:
    """Refuse before allocating when the volumes and the solver's work arrays would not fit in memory.

    Estimate: per signal about eight float32 volumes (estimate, gradient, dual and
    scratch arrays) and four copies of its tilt series; joint methods hold all signals at once.
    """
    n_tilts = max(len(series[name].angles) for name in series.names)
    ny, nu = series.image_shape
    nz = int(thickness or nu)
    volume = 4.0 * nz * ny * nu
    per_signal = 8 * volume + 4 * 4.0 * n_tilts * ny * nu
    held = per_signal * (len(series.names) if joint else 1) + 4.0 * n_tilts * ny * nu * len(series.names)
    check_memory(held, f"reconstructing {len(series.names)} signal(s) on a {nz} x {ny} x {nu} voxel grid",
                 "bin or crop the tilt series, give a smaller --thickness, or reconstruct in slabs (--slab)")


class _Counter:
    """Callback that records how many iterations ran (the last index + 1); never stops the run."""

    def __init__(self):
        self.iterations = 0

    def __call__(self, i, x) -> bool:
        self.iterations = i + 1
        return False


def _progress_callback(progress, name, total):
    return lambda i, x: bool(progress(name, i + 1, total))


def _reconstruct_signals(series, method, *, iterations, thickness, axis_offset, stop, options, progress):
    from .. import __version__
    from .selection import VIEWS_WEIGHT_RULE
    from .tv import split_weight, views_weight

    plan = {}
    for name in series.names:  # choose and validate everything before the first long run
        data = np.asarray(series[name].data, dtype=np.float32)
        chosen = method
        check_method(chosen, options, iterations=iterations, stop=stop)
        if METHODS[chosen].counts:
            check_counts(data, f"signal {name}")
        else:
            check_finite(data, f"signal {name}")
        poisson = is_counts(name) and not (data < 0).any()
        opts = dict(options)
        if chosen == "tv" and poisson:
            opts.setdefault("data_term", "kl")
        plan[name] = (chosen, poisson, data, opts)
    volumes, record = {}, {}
    for name, (chosen, poisson, data, opts) in plan.items():
        sig, m = series[name], METHODS[chosen]
        early = stop == "discrepancy" and poisson and m.stoppable
        n_iter = iterations if iterations is not None else (DISCREPANCY_MAX_ITERATIONS if early else m.iterations)
        op = Projector(series.geometry(name, thickness, axis_offset=axis_offset))
        entry = {"method": chosen}
        start = time.perf_counter()
        if m.iterations is None:
            vol = m.function(op, data, **opts)
            entry["iterations"] = None
        else:
            if chosen == "tv" and opts.get("weight") is None:
                # the rule tv applies for weight=None, run here so that the choice is recorded
                kl = opts.get("data_term", "l2") == "kl"
                kw = {k: opts[k] for k in (("background",) if kl else ()) + ("bounds", "mask") if k in opts}
                weight, table, interior = (split_weight if kl else views_weight)(op, data, n_iter, **kw)
                opts = dict(opts, weight=weight)
                entry.update(weight_rule="count-splitting" if kl else VIEWS_WEIGHT_RULE, weight_search=table,
                             weight_interior=interior)
            counter = _Counter()
            rule = Discrepancy(op, data) if early else None
            # early-stopped runs end after a few iterations: record every one of them
            conv = Convergence(every=1 if early else max(1, n_iter // 50))
            callbacks = [counter, conv] + ([rule] if rule is not None else [])
            if progress is not None:
                callbacks.append(_progress_callback(progress, name, n_iter))
            vol = m.function(op, data, n_iter, callback=callbacks, **opts)
            if rule is not None and progress is not None:
                progress(name, n_iter, n_iter)
            entry.update(iterations=counter.iterations, convergence=conv.record())
        entry.update(stop="discrepancy" if early else None, options=opts, angles_deg=sig.angles.tolist(),
                     seconds=round(time.perf_counter() - start, 3), units=sig.units)
        volumes[name] = np.asarray(vol, dtype=np.float32)
        record[name] = entry
    provenance = _provenance(__version__, series, method, thickness, axis_offset, stop, options)
    provenance["signals"] = record
    return VolumeSet(volumes, voxel_size=series.pixel_size, provenance=provenance)


def _reconstruct_joint(series, method, *, iterations, thickness, axis_offset, stop, options, progress):
    from .. import __version__

    m = METHODS[method]
    elements = [n for n in series.names if n != "HAADF" and is_counts(n)]
    if "HAADF" not in series and not (m.alone and len(elements) >= 2):
        alone = [k for k, v in METHODS.items() if v.alone]
        raise ChemtomoError(f"{method} is a joint method and needs a HAADF signal; this series has "
                            f"{', '.join(series.names)}: add HAADF, choose a per-signal method, or with two or more "
                            f"element maps one of {', '.join(alone)}")
    if not elements:
        raise ChemtomoError(f"{method} is a joint method and needs element maps (counts) besides HAADF; got "
                            f"{', '.join(series.names)}")
    n_iter = m.iterations if iterations is None else iterations
    names = (["HAADF"] if "HAADF" in series else []) + elements
    ops = {n: Projector(series.geometry(n, thickness, axis_offset=axis_offset)) for n in names}
    data = {n: np.asarray(series[n].data, dtype=np.float32) for n in names}
    counter, conv = _Counter(), Convergence(every=max(1, n_iter // 50))
    callbacks = [counter, conv]
    if progress is not None:
        callbacks.append(_progress_callback(progress, method, n_iter))
    kw = dict(options)
    if m.stoppable and stop == "discrepancy":
        kw["stop"] = "discrepancy"
    start = time.perf_counter()
    result = m.function(ops, data, elements, n_iter, callback=callbacks, **kw)
    seconds = time.perf_counter() - start
    provenance = _provenance(__version__, series, method, thickness, axis_offset, stop, options)
    provenance.update(iterations=counter.iterations, info=_jsonable(dict(getattr(result, "info", {}))),
                      angles_deg={n: series[n].angles.tolist() for n in names}, seconds=round(seconds, 3),
                      convergence=conv.record())
    volumes = {k: np.asarray(v, dtype=np.float32) for k, v in result.items()}
    return VolumeSet(volumes, voxel_size=series.pixel_size, provenance=provenance)


def _provenance(version, series, method, thickness, axis_offset, stop, options) -> dict:
    return {
        "software": f"chemtomo {version}",
        "method": method,
        "thickness": thickness if thickness is not None else series.image_shape[1],
        "axis_offset": float(axis_offset),
        "stop": stop,
        # an array option (a guide volume) is recorded by its shape, not its values
        "options": {k: f"array of shape {tuple(np.shape(v))}" if np.ndim(v) > 0 and not isinstance(v, (list, tuple))
                    else v for k, v in options.items()},
        "pixel_size_nm": series.pixel_size,
        "dose_e_per_A2": series.dose,
    }



def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    return obj
