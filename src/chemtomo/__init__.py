"""chemtomo: 3D elemental maps of nanoparticles from electron tomography.

Public names are imported lazily so that ``import chemtomo`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "TiltGeometry": "chemtomo.core.geometry",
    "Projector": "chemtomo.core.projector",
    "ChemtomoError": "chemtomo.core.errors",
    "TiltSeries": "chemtomo.core.data",
    "VolumeSet": "chemtomo.core.data",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'chemtomo' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
