"""Reconstruct every signal of a tilt series: the step behind ``chemtomo reconstruct``."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..core.data import TiltSeries, VolumeSet
from ..core.errors import ChemtomoError
from ..core.projector import Projector


def reconstruct_series(
    series: TiltSeries,
    method: str = "auto",
    *,
    iterations: int | None = None,
    thickness: int | None = None,
    axis_offset: float = 0.0,
    progress: Callable[[str, int, int], None] | None = None,
    options: dict | None = None,
) -> VolumeSet:
    """Reconstruct each signal of `series` on its own tilt angles.

    Parameters
    ----------
    series : TiltSeries
        Signals ``p[a, y, u]`` with their angles in degrees.
    method : str, default "auto"
        A name from ``chemtomo methods``; ``"auto"`` picks per signal by the rule of
        :func:`chemtomo.recon.registry.auto_method`.
    iterations : int, optional
        Iterations of iterative methods; each method's default if omitted.
    thickness : int, optional
        Volume thickness nz in voxels; the detector width nu if omitted.
    axis_offset : float, default 0
        Tilt-axis position on the detector relative to its centre, in pixels.
    progress : callable(name, iteration, total), optional
        Called after each iteration of each signal, for progress bars.
    options : dict, optional
        Extra keyword options for the method (e.g. ``{"weight": 0.05}`` for TV).

    Returns
    -------
    VolumeSet
        One volume ``v[y, z, x]`` per signal, voxel size = pixel size, with
        provenance (method per signal, parameters, angles, timings, version).
    """
    from .. import __version__
    from .registry import METHODS, auto_method, reconstruct

    if method != "auto" and method not in METHODS:
        raise ChemtomoError(f"unknown method {method!r}; choose one of auto, {', '.join(METHODS)}")
    volumes, record = {}, {}
    for name in series.names:
        sig = series[name]
        chosen = auto_method([name]) if method == "auto" else method
        info = METHODS[chosen]
        n_iter = iterations if iterations is not None else info.iterations
        op = Projector(series.geometry(name, thickness, axis_offset=axis_offset))
        callback = None
        if progress is not None and n_iter:
            callback = lambda i, x, _n=name, _t=n_iter: progress(_n, i + 1, _t) or False  # noqa: E731
        start = time.perf_counter()
        vol = reconstruct(chosen, op, np.asarray(sig.data, dtype=np.float32), n_iter, callback=callback,
                          **(options or {}))
        elapsed = time.perf_counter() - start
        volumes[name] = np.asarray(vol, dtype=np.float32)
        record[name] = {
            "method": chosen,
            "iterations": n_iter,
            "angles_deg": sig.angles.tolist(),
            "seconds": round(elapsed, 3),
            "units": sig.units,
        }
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
