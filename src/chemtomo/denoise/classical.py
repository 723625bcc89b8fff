"""Classical denoisers of count maps: Gaussian, median, total variation, BM3D.

Every function takes one count image ``(ny, nu)`` or a stack ``(n_tilts, ny, nu)``
(each image denoised on its own, in 2D), returns float32 expected counts of the
same shape and never modifies its input. ``gaussian`` and ``median`` work on the
counts; ``tv`` and ``bm3d`` work on the Anscombe-transformed counts
(:mod:`chemtomo.denoise.vst`), where the noise has a standard deviation of about
1 at any count level, and return through the exact unbiased inverse. A
parameter left as None is chosen from the data by count splitting
(:mod:`chemtomo.denoise.splitting`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, check_positive
from ._common import as_stack, like_input
from .splitting import split_select
from .vst import anscombe, inverse_anscombe

#: Gaussian widths (pixels) tried by :func:`choose_sigma`, extended while the best is at an end
SIGMA_GRID = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0)
#: TV weights (Anscombe units) tried by :func:`choose_tv_weight`, extended while the best is at an end
TV_WEIGHT_GRID = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def _gauss(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    return ndimage.gaussian_filter(x, (0.0, sigma, sigma), mode="reflect", truncate=truncate)


def gaussian(stack, *, sigma: float | None = None, truncate: float = 4.0, rng=0) -> np.ndarray:
    """Gaussian filter of count maps, each image in 2D.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0; never modified.
    sigma : float, optional
        Standard deviation of the Gaussian in pixels. None chooses it from the
        data by count splitting (:func:`choose_sigma`): about 3 px at 0.3 counts
        per pixel, 2 px at 1 and 1.1-1.4 px at 10 on 64-pixel particle projections.
    truncate : float, default 4.0
        The kernel is cut at this many standard deviations.
    rng : None, int or numpy.random.Generator, default 0
        Random source of the count split (``sigma=None`` only).

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts; the filter is linear, so they are unbiased for the
        blurred expectation and the total is kept (reflecting borders).

    Raises
    ------
    ShapeError
        If `stack` is not 2D or 3D.
    DataError
        If it holds NaN, infinite or negative values.
    """
    x = as_stack(stack)
    if sigma is None:
        sigma = choose_sigma(x, rng=rng)
    sigma = check_positive(sigma, "sigma", "pixels")
    return like_input(_gauss(x, sigma, check_positive(truncate, "truncate", "standard deviations")), stack)


def choose_sigma(stack, *, grid=SIGMA_GRID, folds: int = 5, score: str = "mse", rng=0,
                 history: list | None = None) -> float:
    """Width of the Gaussian filter for these counts, by count splitting (no ground truth).

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0 (fractional maps are rounded for the split); one width for the whole stack.
    grid : sequence of float, default :data:`SIGMA_GRID`
        Candidate widths in pixels, extended while the best is at an end.
    folds : int, default 5
        Folds of the count split; the filter is tried on ``(folds - 1) / folds`` of the counts.
    score : {"mse", "poisson"}, default "mse"
        Held-out score (:func:`chemtomo.denoise.splitting.split_select`).
    rng : None, int or numpy.random.Generator, default 0
        Random source of the split.
    history : list, optional
        Receives ``(sigma, held-out score)`` pairs.

    Returns
    -------
    sigma : float
        In pixels; it decreases as the dose grows.

    Examples
    --------
    >>> yy, xx = np.mgrid[:32, :32]
    >>> blob = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 50.0)
    >>> rng = np.random.default_rng(0)
    >>> low, high = (rng.poisson(c * blob, (4, 32, 32)) for c in (1.0, 100.0))
    >>> choose_sigma(low) > choose_sigma(high)
    True
    """
    x = as_stack(stack)
    return split_select(x, _gauss, grid, folds=folds, score=score, rng=rng, history=history)


def median(stack, *, size: int = 3) -> np.ndarray:
    """Median filter of count maps, each image in 2D (``size x size`` window, reflecting borders).

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0; never modified.
    size : int, default 3
        Window edge in pixels, odd, >= 1.

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`

    Notes
    -----
    The median of a window of Poisson counts is biased low where the mean is
    below about 1 count per pixel (it is 0 where most pixels are empty), so at
    those doses it removes signal with the noise; prefer ``gaussian``, ``tv``,
    ``bm3d`` or ``pca`` there (docs/denoise.md).
    """
    x = as_stack(stack)
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ChemtomoError(f"size must be an odd whole number of pixels >= 1, got {size!r}")
    return like_input(ndimage.median_filter(x, size=(1, int(size), int(size)), mode="reflect"), stack)


def _tv(x: np.ndarray, weight: float, iterations: int = 200) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    d = denoise_tv_chambolle(anscombe(x), weight=weight, max_num_iter=iterations, channel_axis=0)
    return inverse_anscombe(d)


def tv(stack, *, weight: float | None = None, iterations: int = 200, rng=0) -> np.ndarray:
    """Total-variation (ROF) denoising of count maps by Chambolle's algorithm, on Anscombe-transformed counts.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0; never modified.
    weight : float, optional
        TV weight in Anscombe units (noise standard deviation 1), larger
        regularises more: ``min_u 1/2 ||u - f(counts)||^2 + weight TV(u)`` per
        image. None chooses it by count splitting (:func:`choose_tv_weight`).
    iterations : int, default 200
        Maximum iterations of Chambolle's projection algorithm
        (:func:`skimage.restoration.denoise_tv_chambolle`, which also stops when
        the energy changes by less than 2e-4 of its start).
    rng : None, int or numpy.random.Generator, default 0
        Random source of the count split (``weight=None`` only).

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts (exact unbiased inverse of the Anscombe transform).

    Notes
    -----
    Why the Anscombe domain rather than a weight scaled by the count level: the
    ROF model's squared-error data term is the likelihood of Gaussian noise of
    one standard deviation everywhere. Poisson noise has a variance equal to the
    mean, so on raw counts one weight over-smooths dark pixels and under-smooths
    bright ones in the same image, and a weight scaled by the mean count only
    fixes the average. After the transform the noise is close to unit Gaussian
    in every pixel, the weight means the same at any dose (so a weight chosen on
    part of the counts carries over to all of them), and the exact unbiased
    inverse removes the low-count bias of the transform.
    """
    x = as_stack(stack)
    _check_iterations(iterations)
    if weight is None:
        weight = choose_tv_weight(x, iterations=iterations, rng=rng)
    weight = check_positive(weight, "weight", "Anscombe units")
    return like_input(_tv(x, weight, int(iterations)), stack)


def _check_iterations(iterations) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, (int, float, np.integer)) or not (
            np.isfinite(iterations) and int(iterations) == iterations and iterations >= 1):
        raise ChemtomoError(f"iterations must be a whole number >= 1, got {iterations!r}")


def choose_tv_weight(stack, *, grid=TV_WEIGHT_GRID, iterations: int = 200, folds: int = 5, score: str = "mse",
                     rng=0, history: list | None = None) -> float:
    """TV weight (Anscombe units) for these counts by count splitting; arguments as :func:`choose_sigma`."""
    _check_iterations(iterations)
    x = as_stack(stack)
    return split_select(x, lambda c, w: _tv(c, w, iterations), grid, folds=folds, score=score, rng=rng,
                        history=history)


def bm3d(stack, *, sigma: float = 1.0, profile: str = "np") -> np.ndarray:
    """BM3D of count maps with the Anscombe transform and its exact unbiased inverse, one image at a time.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0; never modified.
    sigma : float, default 1.0
        Noise standard deviation in the Anscombe domain (1 is the transform's
        limit for many counts; below about 1 count per pixel the actual noise
        is smaller, and a smaller value keeps more detail).
    profile : {"np", "refilter", "vn", "high", "vn_old", "deb"}, default "np"
        Parameter profile of the ``bm3d`` package (``"np"``: its normal profile).

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts.

    References
    ----------
    K. Dabov, A. Foi, V. Katkovnik and K. Egiazarian, "Image denoising by sparse
    3-D transform-domain collaborative filtering", IEEE Trans. Image Process. 16
    (2007) 2080-2095; Y. Makinen, L. Azzari and A. Foi, IEEE Trans. Image
    Process. 29 (2020) 8339 (the ``bm3d`` package); Makitalo and Foi (2011) for
    the inverse (:mod:`chemtomo.denoise.vst`).
    """
    import bm3d as _bm3d

    x = as_stack(stack)
    sigma = check_positive(sigma, "sigma", "Anscombe units")
    profiles = ("np", "refilter", "vn", "high", "vn_old", "deb")
    if profile not in profiles:
        raise ChemtomoError(f"unknown BM3D profile {profile!r}; use one of {', '.join(profiles)}")
    f = anscombe(x)
    out = np.stack([_bm3d.bm3d(image, sigma, profile=profile) for image in f])
    return like_input(inverse_anscombe(out), stack)
