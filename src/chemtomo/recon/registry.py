"""Method names, their functions and one-line help; dispatch by name; the ``auto`` rule."""

from __future__ import annotations

import inspect

from dataclasses import dataclass
from typing import Callable

from ..core.errors import ChemtomoError
from ..core.names import is_counts
from .cgls import cgls
from .fbp import fbp
from .mlem import mlem
from .sirt import sart, sirt
from .tv import tv


@dataclass(frozen=True)
class MethodInfo:
    """A reconstruction method as listed by ``chemtomo methods``.

    Attributes
    ----------
    function : callable
        ``function(op, data, [iterations,] **options) -> volume``.
    help : str
        One line for ``chemtomo methods``.
    counts : bool
        True if the method models Poisson counts (non-negative data required).
    iterations : int or None
        Default number of iterations; None for a direct method (FBP).
    """

    function: Callable
    help: str
    counts: bool
    iterations: int | None


METHODS: dict[str, MethodInfo] = {
    "fbp": MethodInfo(fbp, "filtered back projection (ramp, Shepp-Logan, Hann); direct, fast, noisy", False, None),
    "sirt": MethodInfo(sirt, "SIRT least squares with non-negativity; robust default for HAADF", False, 100),
    "sart": MethodInfo(sart, "ordered-subsets SIRT: SIRT quality in about a tenth of the sweeps", False, 10),
    "cgls": MethodInfo(cgls, "conjugate-gradient least squares; fast, unconstrained (may go negative)", False, 30),
    "mlem": MethodInfo(mlem, "Poisson maximum likelihood (OSEM with subsets); for X-ray counts", True, 50),
    "tv": MethodInfo(tv, "total variation, L2 or Poisson data (PDHG); few, noisy tilts", False, 200),
}


def reconstruct(name: str, op, data, iterations: int | None = None, **options):
    """Reconstruct `data` with the method called `name`.

    Parameters
    ----------
    name : str
        A key of :data:`METHODS`.
    op : Operator
        Projector from ``v[y, z, x]`` to ``p[a, y, u]``.
    data : array, shape op.range_shape
        Tilt series (counts for methods with ``counts=True``).
    iterations : int, optional
        Iterations of an iterative method; its default if omitted. Must be
        omitted for ``fbp``, which is direct.
    **options
        Keyword options of the method (e.g. ``weight=0.05`` for ``tv``).
        ``callback=None`` is accepted and ignored by ``fbp``.

    Returns
    -------
    volume : array, shape op.domain_shape, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        For an unknown name (the message lists the valid ones), iterations
        given to ``fbp``, or anything the method itself rejects.

    Examples
    --------
    >>> reconstruct("art", None, None)
    Traceback (most recent call last):
    ...
    chemtomo.core.errors.ChemtomoError: unknown method 'art'; choose one of fbp, sirt, sart, cgls, mlem, tv
    """
    if name not in METHODS:
        raise ChemtomoError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    info = METHODS[name]
    if info.iterations is None and options.get("callback", 0) is None:
        options.pop("callback")
    accepted = [p.name for p in inspect.signature(info.function).parameters.values()
                if p.kind == inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ChemtomoError(f"{name} has no option {', '.join(unknown)}; its options are {', '.join(accepted)}")
    if info.iterations is None:
        if iterations is not None:
            raise ChemtomoError(f"{name} is a direct method without iterations; leave iterations unset")
        return info.function(op, data, **options)
    n = info.iterations if iterations is None else iterations
    return info.function(op, data, n, **options)


def auto_method(signal_names: list[str]) -> str:
    """The method ``--method auto`` picks for a reconstruction of these signals.

    Rule for one signal at a time (a whole series of HAADF plus element maps
    goes to a joint method instead: :data:`chemtomo.recon.series.AUTO_JOINT`):

    * only image signals (HAADF, ADF, BF, ...; linear in projected mass,
      roughly Gaussian noise) -> ``"sirt"``;
    * only count signals (elements such as ``Au`` or X-ray lines such as
      ``Au_La``; Poisson noise) -> ``"mlem"``;
    * a mix -> error: signals of both kinds are reconstructed together by a
      joint method (:func:`chemtomo.recon.series.reconstruct_series`), or each
      on its own.

    Parameters
    ----------
    signal_names : list of str
        Signal names as in :func:`chemtomo.core.names.parse_signal_name`.

    Returns
    -------
    str
        A key of :data:`METHODS`.

    Raises
    ------
    ChemtomoError
        For an empty list, an unknown signal name or a mix of image and count signals.

    Examples
    --------
    >>> auto_method(["HAADF"]), auto_method(["Au_La", "Ag"])
    ('sirt', 'mlem')
    """
    names = list(signal_names)
    if not names:
        raise ChemtomoError("auto_method needs at least one signal name, e.g. ['HAADF'] or ['Au_La']")
    kinds = {is_counts(n) for n in names}
    if kinds == {False}:
        return "sirt"
    if kinds == {True}:
        return "mlem"
    raise ChemtomoError(
        f"signals {names} mix images and X-ray counts; reconstruct them with a joint method (chemtomo methods lists "
        "them) or each signal on its own"
    )


def check_method(name, options, *, iterations=None, stop=None):  # replaced by the one-registry version
    from .joint import JOINT_METHODS

    if name not in METHODS and name not in JOINT_METHODS:
        raise ChemtomoError(f"unknown method {name!r}; choose one of auto, {', '.join([*METHODS, *JOINT_METHODS])}")
