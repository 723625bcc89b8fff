"""One-dimensional Gaussian mixtures fitted by EM, with the number of components chosen by ICL or BIC.

Used for species classification (integrated intensities of traced atoms) and
for atom counting (scattering cross-sections of columns, equal widths as in
De Backer et al. 2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ..core.errors import ChemtomoError


@dataclass(frozen=True)
class Mixture:
    """A fitted 1D Gaussian mixture, components sorted by mean."""

    means: np.ndarray
    sds: np.ndarray
    weights: np.ndarray
    loglik: float
    n_params: int
    n: int
    entropy: float           # -sum_i sum_k t_ik log t_ik of the fitted responsibilities

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.n_params * np.log(self.n)

    @property
    def icl(self) -> float:
        """BIC plus twice the classification entropy (Biernacki et al. 2000): lower is better."""
        return self.bic + 2 * self.entropy

    def log_resp(self, x) -> np.ndarray:
        """Log posterior probability of each component, shape (len(x), k)."""
        x = np.asarray(x, float)[:, None]
        lp = np.log(self.weights) - np.log(self.sds) - 0.5 * np.log(2 * np.pi) - 0.5 * ((x - self.means) / self.sds) ** 2
        return lp - logsumexp(lp, axis=1, keepdims=True)

    def predict(self, x) -> np.ndarray:
        """Index of the most probable component (0 = lowest mean)."""
        return np.argmax(self.log_resp(x), axis=1)


def fit_mixture(values, k: int, *, equal_variance: bool = False, means=None, init: str = "quantile",
                iterations: int = 500, tol: float = 1e-8, min_sd: float | None = None) -> Mixture:
    """Fit a k-component Gaussian mixture to `values` by expectation-maximisation.

    Parameters
    ----------
    values : array (n,)
    k : int
        Number of components.
    equal_variance : bool, default False
        One common standard deviation for all components.
    means : array (k,), optional
        Starting means; overrides `init`.
    init : {"quantile", "linspace"}, default "quantile"
        Starting means when `means` is not given: the (i + 0.5)/k quantiles,
        or k evenly spaced values from the smallest to the largest value (for
        near-regular components such as atom counts).
    iterations : int, default 500
    tol : float, default 1e-8
        Stop when the mean log-likelihood improves by less than this.
    min_sd : float, optional
        Floor on the standard deviations (default 1e-3 of the data's sd).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(2, 1, 500), rng.normal(10, 1, 500)]
    >>> np.round(fit_mixture(x, 2).means).tolist()
    [2.0, 10.0]
    """
    x = np.asarray(values, float).ravel()
    if x.size < 2 * k or not np.isfinite(x).all():
        raise ChemtomoError(f"a {k}-component mixture needs at least {2 * k} finite values, got {x.size}")
    spread = x.std() or 1.0
    floor = min_sd if min_sd is not None else 1e-3 * spread
    if means is not None:
        mu = np.asarray(means, float).copy()
    elif init == "quantile":
        mu = np.quantile(x, (np.arange(k) + 0.5) / k)
    elif init == "linspace":
        mu = np.linspace(x.min(), x.max(), k)
    else:
        raise ChemtomoError(f"init {init!r} is not known; use 'quantile' or 'linspace'")
    sd = np.full(k, max(spread / k, floor))
    w = np.full(k, 1.0 / k)
    prev = -np.inf
    for _ in range(iterations):
        lp = np.log(w) - np.log(sd) - 0.5 * np.log(2 * np.pi) - 0.5 * ((x[:, None] - mu) / sd) ** 2
        norm = logsumexp(lp, axis=1, keepdims=True)
        ll = float(norm.sum())
        r = np.exp(lp - norm)
        nk = r.sum(axis=0) + 1e-12
        w = nk / x.size
        mu = (r * x[:, None]).sum(axis=0) / nk
        var = (r * (x[:, None] - mu) ** 2).sum(axis=0)
        sd = np.full(k, np.sqrt(var.sum() / x.size)) if equal_variance else np.sqrt(var / nk)
        sd = np.maximum(sd, floor)
        w = np.maximum(w, 1e-12)
        if ll - prev < tol * x.size:
            break
        prev = ll
    order = np.argsort(mu)
    mu, sd, w = mu[order], sd[order], w[order] / w.sum()
    n_params = 2 * k - 1 + (1 if equal_variance else k)
    m = Mixture(mu, sd, w, 0.0, n_params, x.size, 0.0)
    lr = m.log_resp(x)
    lp = np.log(w) - np.log(sd) - 0.5 * np.log(2 * np.pi) - 0.5 * ((x[:, None] - mu) / sd) ** 2
    return Mixture(mu, sd, w, float(logsumexp(lp, axis=1).sum()), n_params, x.size,
                   float(-(np.exp(lr) * lr).sum()))


def select_mixture(values, ks, *, criterion: str = "icl", **options) -> Mixture:
    """The mixture with the lowest ICL (or BIC) among ``k in ks``; options go to :func:`fit_mixture`."""
    if criterion not in ("icl", "bic"):
        raise ChemtomoError(f"criterion {criterion!r} is not known; use 'icl' or 'bic'")
    fits = [fit_mixture(values, k, **options) for k in ks if np.size(values) >= 2 * k]
    if not fits:
        raise ChemtomoError(f"too few values ({np.size(values)}) for mixtures of {list(ks)} components")
    return min(fits, key=lambda m: getattr(m, criterion))
