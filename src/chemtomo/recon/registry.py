"""Every reconstruction method by name: function, one-line help, kind and defaults; option checks.

Two kinds of method share one record, :class:`Method`, and one entry point,
:func:`chemtomo.recon.series.reconstruct_series`:

* per-signal methods reconstruct one signal at a time::

      function(op, data, [iterations,] *, <options>, callback=None) -> volume

* joint methods (``joint=True``) reconstruct every element map together with
  the HAADF signal, each signal on its own tilts (those with ``alone=True`` also two
  or more element maps without HAADF, coupled by their regulariser)::

      function(ops: dict, data: dict, elements: list, iterations, *, <options>, callback=None)
          -> JointVolumes  ({element: volume, "HAADF": volume}, chosen parameters in ``.info``)
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.errors import ChemtomoError
from .cgls import cgls
from .fbp import fbp
from .fused import fused
from .mlem import mlem
from .multimodal import bimodal, dtv, tgv, tnv, tv_joint
from .sirt import sart, sirt
from .tv import tv


@dataclass(frozen=True)
class Method:
    """A reconstruction method as listed by ``chemtomo methods``.

    Attributes
    ----------
    function : callable
        The method (see the module notes for the two signatures).
    help : str
        One line for ``chemtomo methods``.
    joint : bool
        True if it reconstructs all element maps with HAADF at once.
    counts : bool
        True if it models Poisson counts (for joint methods: the element
        maps), so those data must be non-negative.
    iterations : int or None
        Default number of iterations; None for a direct method (FBP).
    stoppable : bool
        True if it semi-converges, so that the discrepancy rule
        (``stop="discrepancy"``) applies.
    alone : bool
        For joint methods: True if it also takes two or more element maps
        without HAADF (its regulariser couples them).
    """

    function: Callable
    help: str
    joint: bool
    counts: bool
    iterations: int | None
    stoppable: bool
    alone: bool = False


METHODS: dict[str, Method] = {
    "fbp": Method(fbp, "filtered back projection (ramp, Shepp-Logan, Hann); direct, fast, noisy", False, False, None,
                  False),
    "sirt": Method(sirt, "SIRT least squares with non-negativity; robust default for HAADF", False, False, 100, True),
    "sart": Method(sart, "ordered-subsets SIRT: SIRT quality in about a tenth of the sweeps", False, False, 10, True),
    "cgls": Method(cgls, "conjugate-gradient least squares; fast, unconstrained (may go negative)", False, False, 30,
                   True),
    "mlem": Method(mlem, "Poisson maximum likelihood (OSEM with subsets); for X-ray counts", False, True, 50, True),
    "tv": Method(tv, "total variation, L2 or Poisson data (PDHG); few, noisy tilts; weight by count splitting (Poisson) "
                 "or held-out views (L2)",
                 False, False, 200, False),
    "bimodal": Method(bimodal, "HAADF as NNLS-weighted sum of elements + EDX data (Zhong 2017); no prior", True, True,
                      100, True),
    "tnv": Method(tnv, "total nuclear variation over elements (Zhong 2018), KL data; auto weight", True, True, 300,
                  False, True),
    "tgv": Method(tgv, "coupled second-order TGV (Huber 2019), KL data; auto weight", True, True, 300, False, True),
    "tv_joint": Method(tv_joint, "vectorial TV over elements, KL data; auto weight", True, True, 300, False, True),
    "dtv": Method(dtv, "directional TV along the edges of the HAADF volume (Ehrhardt 2016), without HAADF of the summed "
                  "counts; auto weight", True, True, 300, False, True),
    "fused": Method(fused, "fused multimodal: HAADF as weighted sum of elements, Poisson EDX, TV (Schwartz 2024)",
                    True, True, 100, False),
}

#: keyword parameters that are not user options: the callbacks, and ``stop`` (the `stop` argument of the entry point)
_NOT_OPTIONS = ("callback", "stop")
#: options that take a number >= 0 (where the default is None, None means "chosen automatically")
_NON_NEGATIVE = ("weight", "alpha", "ratio", "tol", "relaxation", "smooth", "relative_eta", "edge_fraction",
                 "z_exponent", "exponent", "background")
#: options that take a whole number >= 0
_INTEGERS = ("subsets", "search_iterations", "init_iterations")


def method_options(name: str) -> list[str]:
    """The keyword options a user may pass to the method `name`, in signature order.

    Examples
    --------
    >>> method_options("fbp")
    ['filter', 'bounds', 'mask']
    """
    _check_name(name)
    return [p.name for p in inspect.signature(METHODS[name].function).parameters.values()
            if p.kind == inspect.Parameter.KEYWORD_ONLY and p.name not in _NOT_OPTIONS]


MAX_ITERATIONS = 100_000  #: more is a typing error, not a reconstruction


def check_method(name: str, options: dict, *, iterations=None, stop=None) -> None:
    """Refuse a method call that cannot run as asked, before any work is done.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`, or ``"auto"`` (the pipeline's selection,
        :mod:`chemtomo.pipeline.auto`; then only `iterations` and `stop` are checked).
    options : dict
        Keyword options for the method.
    iterations : int, optional
        Iterations asked for; must be left unset for a direct method.
    stop : {None, "none", "discrepancy"}, optional
        Stopping rule asked for; ``"discrepancy"`` needs a stoppable method.

    Raises
    ------
    ChemtomoError
        With one line naming what to fix: an unknown method (the valid ones
        are listed), unknown options (the valid ones are listed), an option
        value of the wrong kind, iterations for a direct method, or the
        discrepancy rule for a method that does not semi-converge.

    Examples
    --------
    >>> check_method("sirt", {"tol": 1e-3}, iterations=50, stop="discrepancy")
    >>> check_method("fbp", {}, iterations=10)
    Traceback (most recent call last):
    ...
    chemtomo.core.errors.ChemtomoError: fbp is a direct method without iterations; leave --iterations unset
    """
    if name != "auto":
        _check_name(name)
    if stop not in (None, "none", "discrepancy"):
        raise ChemtomoError(f"unknown stopping rule {stop!r}; use none or discrepancy")
    if iterations is not None and (isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer))
                                   or iterations < 0):
        raise ChemtomoError(f"iterations must be a non-negative whole number, got {iterations!r}")
    if iterations is not None and iterations > MAX_ITERATIONS:
        raise ChemtomoError(f"{iterations} iterations would run for days; give at most {MAX_ITERATIONS} "
                            "(a few hundred is usually plenty; --stop discrepancy stops at the noise level)")
    if name == "auto":
        return
    method = METHODS[name]
    if method.iterations is None and iterations is not None:
        raise ChemtomoError(f"{name} is a direct method without iterations; leave --iterations unset")
    if stop == "discrepancy" and not method.stoppable:
        stoppable = ", ".join(n for n, m in METHODS.items() if m.stoppable)
        raise ChemtomoError(f"{name} does not semi-converge, so the discrepancy rule does not apply; "
                            f"--stop discrepancy is for {stoppable}: leave --stop unset")
    valid = method_options(name)
    if not isinstance(options, dict):
        raise ChemtomoError(f"options must be a dict of option name to value, got {type(options).__name__}")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ChemtomoError(f"{name} has no option {', '.join(unknown)}; its options are {', '.join(valid)}")
    defaults = {p.name: p.default for p in inspect.signature(method.function).parameters.values()}
    for key, value in options.items():
        _check_value(name, key, value, defaults[key])


def _check_name(name) -> None:
    if name not in METHODS:
        raise ChemtomoError(f"unknown method {name!r}; choose one of auto, {', '.join(METHODS)}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_value(name: str, key: str, value, default) -> None:
    """Refuse an option value of the wrong kind (the method checks the rest)."""
    if key == "rng":
        return  # a seed or a numpy Generator
    if key in _INTEGERS:
        if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) or value < 0:
            raise ChemtomoError(f"{name} option {key} must be a whole number >= 0, got {value!r}")
    elif key in _NON_NEGATIVE:
        if value is None and default is None:
            return
        if key == "background" and hasattr(value, "shape"):
            return  # an array of expected background counts: the method checks it
        values = list(value.values()) if key == "weight" and name == "fused" and isinstance(value, dict) else [value]
        for v in values:
            if not _is_number(v) or not math.isfinite(float(v)) or v < 0:
                auto = " or unset for the automatic choice" if default is None else ""
                raise ChemtomoError(f"{name} option {key} must be a finite number >= 0{auto}, got {value!r}")
    elif isinstance(default, str) and not isinstance(value, str):
        raise ChemtomoError(f"{name} option {key} must be a name such as {default!r}, got {value!r}")
    elif _is_number(default) and not _is_number(value):
        raise ChemtomoError(f"{name} option {key} must be a number such as {default!r}, got {value!r}")
