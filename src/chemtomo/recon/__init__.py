"""Reconstruction methods: one function per method, arrays in and out.

``fbp``, ``sirt``, ``sart``, ``cgls``, ``mlem`` and ``tv`` take a projector
and a tilt series and return a volume of the same array type on the same
device; the joint methods (``bimodal``, ``tnv``, ``tgv``, ``tv_joint``,
``dtv``, ``fused``) take a projector and data per signal and return one
volume per element plus HAADF. :data:`~chemtomo.recon.registry.METHODS` lists
them all by name; :func:`~chemtomo.recon.series.reconstruct_series` runs any
of them on a tilt series.
"""

from .cgls import cgls
from .fbp import fbp
from .mlem import mlem
from .pdhg import KL, L2, TV, pdhg
from .registry import METHODS, Method, check_method, method_options
from .selection import choose_weight
from .series import reconstruct_series
from .sirt import sart, sirt
from .stopping import Discrepancy
from .tv import tv

__all__ = ["fbp", "sirt", "sart", "cgls", "mlem", "tv", "pdhg", "L2", "KL", "TV", "METHODS", "Method",
           "method_options", "check_method", "reconstruct_series", "choose_weight", "Discrepancy"]
