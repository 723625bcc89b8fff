"""Count statistics and detector noise: Poisson, Gaussian, binomial count splitting.

Every function takes ``rng``: ``None`` (fresh entropy), an integer seed or a
:class:`numpy.random.Generator`. The same seed always gives the same draws.
Inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError, DataError, check_finite


def as_rng(rng=None) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for a seed, a generator or None.

    >>> int(as_rng(3).integers(10)) == int(as_rng(3).integers(10))
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise ChemtomoError(f"rng must be None, an integer seed or numpy.random.Generator, got {type(rng).__name__}")


def poisson(expected, rng=None) -> np.ndarray:
    """Draw Poisson counts with the given expected values.

    Parameters
    ----------
    expected : array_like
        Expected counts per pixel (or channel), finite and >= 0.
    rng : None, int or numpy.random.Generator
        Random source.

    Returns
    -------
    counts : ndarray of int64, same shape as `expected`.

    Raises
    ------
    DataError
        If `expected` holds negative or non-finite values.
    """
    lam = np.asarray(expected, dtype=np.float64)
    check_finite(lam, "expected counts")
    if lam.size and lam.min() < 0:
        raise DataError(f"expected counts must be >= 0, got a minimum of {lam.min():g}; clip the noiseless signal at 0")
    return as_rng(rng).poisson(lam)


def gaussian(image, sigma: float, rng=None) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation `sigma`.

    Parameters
    ----------
    image : array_like
        Noise-free (or Poisson) image in detector units.
    sigma : float
        Standard deviation in the units of `image` (read-out noise), >= 0.
    rng : None, int or numpy.random.Generator
        Random source.

    Returns
    -------
    noisy : ndarray of float64, same shape as `image`.
    """
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ChemtomoError(f"sigma must be a finite standard deviation >= 0, got {sigma}")
    img = np.asarray(image, dtype=np.float64)
    if sigma == 0:
        return img.copy()
    return img + as_rng(rng).normal(0.0, sigma, size=img.shape)


def split_counts(counts, p: float = 0.5, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Split Poisson counts into two independent Poisson images (binomial thinning).

    Each detected count goes to the first image with probability `p`, else to
    the second. If ``counts ~ Poisson(lam)`` the halves are independent with
    ``Poisson(p lam)`` and ``Poisson((1 - p) lam)``.

    Parameters
    ----------
    counts : array_like of non-negative integers
        Measured counts.
    p : float, default 0.5
        Probability that a count goes to the first image, in [0, 1].
    rng : None, int or numpy.random.Generator
        Random source.

    Returns
    -------
    first, second : ndarray of int64
        ``first + second == counts`` exactly.

    Raises
    ------
    DataError
        If `counts` are negative or not whole numbers.
    """
    c = np.asarray(counts)
    if not 0.0 <= p <= 1.0:
        raise ChemtomoError(f"p must be a probability in [0, 1], got {p}")
    check_finite(c, "counts")
    ci = np.rint(c).astype(np.int64)
    if c.size and (ci.min() < 0 or not np.array_equal(ci, c)):
        raise DataError("split_counts needs raw counts (non-negative integers); got negative or fractional values")
    first = as_rng(rng).binomial(ci, p)
    return first, ci - first
