"""chemtomo: 3D elemental maps of nanoparticles from electron tomography.

Public names are imported lazily so that ``import chemtomo`` stays cheap.
"""

from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "TiltGeometry": "core.geometry",
    "Projector": "core.projector",
    "ChemtomoError": "core.errors",
    "TiltSeries": "core.data",
    "VolumeSet": "core.data",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
__all__ += ["__version__"]
