"""Reconstruction methods: one function per method, arrays in and out.

``fbp``, ``sirt``, ``sart``, ``cgls``, ``mlem`` and ``tv`` take a projector
and a tilt series and return a volume of the same array type on the same
device. :data:`~chemtomo.recon.registry.METHODS` lists them by name.
"""

from .cgls import cgls
from .fbp import fbp
from .mlem import mlem
from .pdhg import KL, L2, TV, pdhg
from .registry import METHODS, MethodInfo, auto_method, reconstruct
from .series import reconstruct_series
from .sirt import sart, sirt
from .stopping import Discrepancy
from .tv import tv

__all__ = ["fbp", "sirt", "sart", "cgls", "mlem", "tv", "pdhg", "L2", "KL", "TV", "METHODS", "MethodInfo",
           "reconstruct", "auto_method", "reconstruct_series", "Discrepancy"]
