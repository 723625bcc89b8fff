"""Choose a denoiser's parameter from the data alone, by count splitting (cross-validation).

Binomial thinning makes independent copies of Poisson data: if ``y ~ Poisson(lam)``,
dealing each count at random to one of ``K`` folds gives ``K`` independent maps
``y_k ~ Poisson(lam / K)`` (:func:`chemtomo.physics.counts.split_counts`, applied
``K - 1`` times). For every candidate value ``t`` and every fold ``k`` the
denoiser runs on the other folds, ``y - y_k`` (expectation ``(K - 1) lam / K``),
its output ``mu_k`` is scaled to the held-out fold's expectation, ``m_k = mu_k / (K - 1)``,
and scored against the held-out counts ``y_k``, which are independent of it:

* ``score="mse"`` (default): ``sum_k sum_pixels (m_k - y_k)^2``, in expectation
  the squared error of ``m_k`` against the unknown ``lam / K`` plus a constant;
* ``score="poisson"``: the Poisson negative log-likelihood
  ``sum_k sum_pixels (m_k - y_k log m_k)``, in expectation the Kullback-Leibler
  error plus a constant. It weighs errors by ``1 / lam``, so it favours flat,
  dark backgrounds and chooses about 1.5 times wider Gaussian filters than the
  squared error does (docs/denoise.md); the error measures of the benchmarks
  (PSNR, SSIM, NRMSE) are squared errors, hence the default.

The value with the smallest total wins (refined by a parabola through the best
grid value and its neighbours, in log scale). The denoiser sees ``(K - 1) / K`` of the dose while choosing (80 % for
the default ``K = 5``), so the choice is made close to the dose it is used at;
a parameter whose best value changes with dose (a Gaussian filter's width) is
then off by a few percent at most, where two halves (``K = 2``) would choose it
at half the dose. No ground truth is used.

Fractional maps (from a spectral fit) are rounded to whole counts for the split
only.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..core.errors import ChemtomoError

#: expected counts below this are scored as this (a held-out count where the denoiser predicts 0)
_FLOOR = 1e-6


def split_folds(counts, folds: int = 5, rng=0) -> list[np.ndarray]:
    """Deal every count at random to one of `folds` maps (multinomial thinning).

    Parameters
    ----------
    counts : array_like
        Counts, >= 0; rounded to whole numbers.
    folds : int, default 5
        Number of maps, >= 2.
    rng : None, int or numpy.random.Generator, default 0
        Random source; the same seed gives the same split.

    Returns
    -------
    maps : list of ndarray of int64
        `folds` maps, each Poisson with ``1 / folds`` of the expectation, summing to the rounded counts.
    """
    from ..physics.counts import as_rng, split_counts

    if int(folds) != folds or folds < 2:
        raise ChemtomoError(f"folds must be a whole number >= 2, got {folds!r}")
    gen = as_rng(rng)
    rest = np.rint(np.clip(np.asarray(counts, dtype=np.float64), 0, None)).astype(np.int64)
    maps = []
    for i in range(int(folds) - 1):
        first, rest = split_counts(rest, 1.0 / (folds - i), rng=gen)
        maps.append(first)
    return maps + [rest]


def split_select(stack, apply: Callable[[np.ndarray, float], np.ndarray], grid: Sequence[float], *,
                 folds: int = 5, score: str = "mse", rng=0, extend: float = 2.0,
                 history: list | None = None) -> float:
    """The parameter value of `apply` that best predicts held-out counts (module notes).

    Parameters
    ----------
    stack : ndarray, shape (n, ny, nu)
        Counts, >= 0 (validated by the caller).
    apply : callable(counts, value) -> ndarray
        The denoiser with its parameter set to `value`; returns the estimated
        expected counts of its input, same shape.
    grid : sequence of float
        Positive candidate values, increasing.
    folds : int, default 5
        Folds of the count split (the denoiser sees ``(folds - 1) / folds`` of the counts).
    score : {"mse", "poisson"}, default "mse"
        Held-out squared error or Poisson negative log-likelihood (module notes).
    rng : None, int or numpy.random.Generator, default 0
        Random source of the split.
    extend : float, default 2.0
        While the best value is at an end of the grid, the grid grows by this
        factor at that end (at most 3 times).
    history : list, optional
        Receives ``(value, held-out score)`` pairs, sorted by value.

    Returns
    -------
    value : float
        The chosen value.
    """
    if score not in ("poisson", "mse"):
        raise ChemtomoError(f"unknown score {score!r}; use mse or poisson")
    maps = split_folds(stack, folds, rng)
    total = sum(maps).astype(np.float64)
    trains = [total - m for m in maps]
    from ..recon.selection import choose_weight, vertex

    def run(v, _start):
        acc = 0.0
        for train, test in zip(trains, maps):
            mu = np.asarray(apply(train, v), dtype=np.float64) / (folds - 1)
            if score == "poisson":
                mu = np.maximum(mu, _FLOOR)
                acc += float((mu - test * np.log(mu)).sum())
            else:
                acc += float(((mu - test) ** 2).sum())
        return acc, None

    _, table, _ = choose_weight(run, grid, factor=extend, max_extend=3)
    if history is not None:
        history.extend(table)
    return vertex(table)
