"""Count statistics and detector noise: Poisson, Gaussian, binomial count splitting, Poisson + Gaussian read noise.

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


def read_noise_variance(mean, read_noise: float = 0.0) -> np.ndarray:
    """Variance of a detector reading with Poisson counts and Gaussian read-out noise: ``mean + read_noise^2``.

    The noise model of a CCD (or any counting camera read through an amplifier) in electrons: a reading
    ``y = Poisson(mu) + N(0, s^2)`` has mean ``mu`` and variance ``mu + s^2``; counting detectors are
    ``s = 0``. Spectra recorded in detector units are divided by the gain first (:func:`chemtomo.simulate.eels.detect`
    uses gain 1).

    Parameters
    ----------
    mean : array_like
        Expected electrons per pixel or channel (``mu``, >= 0).
    read_noise : float, default 0
        Read-out noise standard deviation ``s`` in electrons.
    """
    return np.asarray(mean, dtype=np.float64) + float(read_noise) ** 2


def shifted_counts(signal, read_noise: float = 0.0) -> np.ndarray:
    """Readings ``y + s^2`` clipped at 0: treated as Poisson counts of mean ``mu + s^2`` (the shifted-Poisson model).

    ``y + s^2`` has mean and variance both ``mu + s^2`` (:func:`read_noise_variance`), so a Poisson
    likelihood of ``y + s^2`` with the model ``mu + s^2`` has the right mean-variance relation
    (Snyder, Hammoud & White, J. Opt. Soc. Am. A 10, 1014, 1993); binomial thinning of it
    (:func:`split_counts` after rounding) gives halves that are uncorrelated, because thinning adds
    ``p (1 - p) (var - mean) = 0`` covariance. Clipping at 0 matters only where ``y < -s^2``
    (below ``-s`` standard deviations for ``mu = 0``).
    """
    return np.clip(np.asarray(signal, dtype=np.float64) + float(read_noise) ** 2, 0.0, None)


def estimate_read_noise(spectra) -> float:
    """Read-out noise standard deviation ``s`` (electrons) of spectra with Poisson + Gaussian noise (gain 1).

    For neighbouring channels ``k, k + 1`` of one spectrum, ``d = y_k - y_k+1`` has mean
    ``mu_k - mu_k+1`` and variance ``mu_k + mu_k+1 + 2 s^2`` (:func:`read_noise_variance`), so
    ``s^2 = (mean_p d^2 - (mean_p d)^2 - mean_p (y_k + y_k+1)) / 2`` over the pixels ``p``; the median
    over channel pairs keeps edges and peaks (where ``mu`` changes between pixels) out. Counting data
    give about 0.

    Parameters
    ----------
    spectra : array (..., n_channels)
        Raw readings (electrons), energy last, at least 2 spectra of 2 channels.

    Returns
    -------
    read_noise : float, >= 0
    """
    y = np.asarray(spectra, dtype=np.float64)
    check_finite(y, "spectra")
    if y.ndim < 2 or y.shape[-1] < 2 or y.size // y.shape[-1] < 2:
        raise ChemtomoError(f"estimating read noise needs several spectra of 2+ channels, got shape {y.shape}")
    y = y.reshape(-1, y.shape[-1])
    d = np.diff(y, axis=1)
    pair = y[:, 1:] + y[:, :-1]
    var = d.var(axis=0) - pair.mean(axis=0)
    return float(np.sqrt(max(float(np.median(var)) / 2.0, 0.0)))


def resolve_read_noise(read_noise, spectra=None) -> float:
    """`read_noise` as a number of electrons: a number >= 0 as given, None as 0, ``"auto"`` from `spectra`.

    ``"auto"`` is :func:`estimate_read_noise`. Raises ChemtomoError for anything else.
    """
    if read_noise is None:
        return 0.0
    if isinstance(read_noise, str):
        if read_noise.strip().lower() == "auto":
            if spectra is None:
                raise ChemtomoError("read_noise='auto' needs the spectra to estimate it from")
            return estimate_read_noise(spectra)
        try:
            read_noise = float(read_noise)
        except ValueError:
            raise ChemtomoError(f"read noise {read_noise!r} is not a number; give SIGMA (electrons, >= 0) or auto") from None
    if isinstance(read_noise, bool) or not np.isfinite(read_noise) or read_noise < 0:
        raise ChemtomoError(f"read noise must be a standard deviation >= 0 (electrons) or 'auto', got {read_noise!r}")
    return float(read_noise)
