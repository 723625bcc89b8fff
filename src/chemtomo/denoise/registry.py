"""Denoiser names, their functions and one-line help; dispatch by name.

A new denoiser is one line in :data:`DENOISERS`: a function
``fn(stack, *, option=default, ...) -> denoised`` (count image or stack in,
float32 expected counts of the same shape out), its help line and, if one of
its options is chosen from the data when left as None, that option's name and
the function that chooses it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from ..core.errors import ChemtomoError
from ._common import as_stack
from .classical import bm3d, choose_sigma, choose_tv_weight, gaussian, median, tv
from .patch_pca import pca
from .n2n import n2n
from .unet import unet


@dataclass(frozen=True)
class DenoiserInfo:
    """A denoiser as listed in :data:`DENOISERS`.

    Attributes
    ----------
    function : callable
        ``function(stack, **options) -> ndarray``, options keyword-only with defaults.
    help : str
        One line for listings.
    auto : str, optional
        The option chosen from the data when it is None (e.g. ``"sigma"``).
    chooser : callable, optional
        ``chooser(stack, **options) -> value`` for `auto`; it gets the options it accepts.
    """

    function: Callable
    help: str
    auto: str | None = None
    chooser: Callable | None = None


DENOISERS: dict[str, DenoiserInfo] = {
    "gaussian": DenoiserInfo(gaussian, "Gaussian filter; width sigma (px) by count splitting", "sigma", choose_sigma),
    "median": DenoiserInfo(median, "median filter, size x size px (3); biased low below ~1 count/px"),
    "tv": DenoiserInfo(tv, "Chambolle TV on Anscombe counts; weight by count splitting", "weight", choose_tv_weight),
    "bm3d": DenoiserInfo(bm3d, "BM3D on Anscombe counts, exact unbiased inverse (bm3d package)"),
    "pca": DenoiserInfo(pca, "patch PCA on Anscombe counts, Wiener weights from the Poisson noise level"),
    "unet": DenoiserInfo(unet, "U-Net trained on simulated particles, 0.05-20 counts/px (shipped weights)"),
    "n2n": DenoiserInfo(n2n, "U-Net fine-tuned on the input itself by binomial splitting (Noise2Noise), ~1 min"),
}


def _info(method: str) -> DenoiserInfo:
    if method not in DENOISERS:
        raise ChemtomoError(f"unknown denoiser {method!r}; choose one of {', '.join(DENOISERS)}")
    return DENOISERS[method]


def _keyword_options(fn: Callable) -> dict:
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.kind == inspect.Parameter.KEYWORD_ONLY}


def denoiser_options(method: str) -> dict:
    """The keyword options of denoiser `method` and their defaults (None: chosen from the data or unset).

    >>> denoiser_options("median")
    {'size': 3}
    """
    return _keyword_options(_info(method).function)


def resolve_options(stack, method: str, **options) -> dict:
    """Every option of denoiser `method` for this stack: given ones, defaults, and the automatic one chosen.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0.
    method : str
        A key of :data:`DENOISERS`.
    **options
        Options of the denoiser (e.g. ``sigma=1.5``).

    Returns
    -------
    options : dict
        Name to value for every keyword option, with the automatic option
        (``DenoiserInfo.auto``) replaced by the chosen value if it was None;
        ``denoise(stack, method, **options)`` with it repeats the run exactly.

    Raises
    ------
    ChemtomoError
        For an unknown method or option (the message lists the valid ones),
        or a stack that is not a count image or stack.
    """
    info = _info(method)
    accepted = denoiser_options(method)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ChemtomoError(f"denoiser {method} has no option {', '.join(unknown)}; its options are "
                            f"{', '.join(accepted) or 'none'}")
    resolved = {**accepted, **options}
    if info.auto is not None and resolved.get(info.auto) is None:
        x = as_stack(stack)
        takes = _keyword_options(info.chooser)
        resolved[info.auto] = float(info.chooser(x, **{k: v for k, v in resolved.items() if k in takes}))
    return resolved


def denoise(stack, method: str, **options):
    """Denoise a count image or stack with the denoiser called `method`.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts (EDX or EELS maps), >= 0; never modified.
    method : str
        A key of :data:`DENOISERS`.
    **options
        Keyword options of that denoiser; see :func:`resolve_options`.

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts.

    Raises
    ------
    ChemtomoError
        For an unknown method or option, or invalid input (wrong shape, NaN, negative counts).

    Examples
    --------
    >>> denoise([[1.0]], "wiener")
    Traceback (most recent call last):
    ...
    chemtomo.core.errors.ChemtomoError: unknown denoiser 'wiener'; choose one of gaussian, median, tv, bm3d, pca, unet, n2n
    """
    info = _info(method)
    return info.function(stack, **resolve_options(stack, method, **options))
