"""Joint multimodal methods by name, and the step that runs one on a :class:`TiltSeries`.

A joint method reconstructs every element of a series at once from the HAADF
signal and the elemental maps, each on its own tilts. Contract::

    method(ops: dict[str, Operator], data: dict[str, array], elements: list[str],
           iterations, *, <options>, callback=None) -> dict[str, volume]

with ``ops`` and ``data`` keyed by signal name ("HAADF", "Au", ...). The
result holds one volume per element (EDX counts per voxel length) and
"HAADF"; its ``info`` attribute records the parameters chosen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.data import TiltSeries, VolumeSet
from ..core.errors import ChemtomoError
from ..core.names import is_counts
from .fused import fused
from .multimodal import bimodal, dtv, tgv, tnv


@dataclass(frozen=True)
class JointMethod:
    """A joint method as listed by ``chemtomo methods``: function, one-line help, default iterations."""

    function: Callable
    help: str
    iterations: int


JOINT_METHODS: dict[str, JointMethod] = {
    "bimodal": JointMethod(bimodal, "HAADF as NNLS-weighted sum of elements + EDX data (Zhong 2017); no prior", 100),
    "tnv": JointMethod(tnv, "total nuclear variation over elements, with HAADF data (Zhong 2018); auto weight", 300),
    "tgv": JointMethod(tgv, "coupled second-order TGV, KL data, HAADF (Huber 2019); auto weight", 300),
    "dtv": JointMethod(dtv, "HAADF term + directional TV guided by the HAADF volume's edges (Ehrhardt 2016); auto weight",
                       300),
    "fused": JointMethod(fused, "fused multimodal: HAADF as weighted sum of elements, Poisson EDX, TV (Schwartz 2024)",
                         100),
}


def reconstruct_joint(name: str, series: TiltSeries, *, iterations: int | None = None, thickness: int | None = None,
                      options: dict | None = None, callback=None) -> VolumeSet:
    """Reconstruct all elements of `series` jointly with HAADF by the method `name`.

    Parameters
    ----------
    name : str
        A key of :data:`JOINT_METHODS`.
    series : TiltSeries
        A ``"HAADF"`` signal and at least one count signal (element maps);
        each keeps its own angles (degrees).
    iterations : int, optional
        Iterations; the method's default if omitted.
    thickness : int, optional
        Volume thickness nz in voxels; the detector width if omitted.
    options : dict, optional
        Keyword options of the method (e.g. ``{"weight": 0.2}``).
    callback : callable(iteration, u) -> bool, or a list, optional
        Passed to the method.

    Returns
    -------
    VolumeSet
        One volume per element and "HAADF"; provenance holds the method, its
        options and the chosen parameters (``info``).

    Raises
    ------
    ChemtomoError
        For an unknown name, a series without HAADF or without element maps,
        or anything the method rejects.
    """
    from .. import __version__
    from ..core.projector import Projector

    if name not in JOINT_METHODS:
        raise ChemtomoError(f"unknown joint method {name!r}; choose one of {', '.join(JOINT_METHODS)}")
    if "HAADF" not in series:
        raise ChemtomoError(f"joint methods need a HAADF signal; this series has {', '.join(series.names)}")
    elements = [n for n in series.names if n != "HAADF" and is_counts(n)]
    if not elements:
        raise ChemtomoError(f"joint methods need element maps (counts) besides HAADF; got {', '.join(series.names)}")
    method = JOINT_METHODS[name]
    n_iter = method.iterations if iterations is None else iterations
    names = ["HAADF"] + elements
    ops = {n: Projector(series.geometry(n, thickness)) for n in names}
    data = {n: np.asarray(series[n].data, dtype=np.float32) for n in names}
    from .stopping import Convergence

    conv = Convergence(every=max(1, n_iter // 50))
    callbacks = [conv] + (list(callback) if isinstance(callback, (list, tuple)) else [callback] if callback else [])
    start = time.perf_counter()
    result = method.function(ops, data, elements, n_iter, callback=callbacks, **dict(options or {}))
    seconds = time.perf_counter() - start
    info = dict(getattr(result, "info", {}))
    provenance = {
        "software": f"chemtomo {__version__}",
        "method": name,
        "iterations": n_iter,
        "thickness": thickness if thickness is not None else series.image_shape[1],
        "options": dict(options or {}),
        "info": _jsonable(info),
        "angles_deg": {n: series[n].angles.tolist() for n in names},
        "seconds": round(seconds, 3),
        "pixel_size_nm": series.pixel_size,
        "convergence": conv.record(),
    }
    volumes = {k: np.asarray(v, dtype=np.float32) for k, v in result.items()}
    return VolumeSet(volumes, voxel_size=series.pixel_size, provenance=provenance)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
