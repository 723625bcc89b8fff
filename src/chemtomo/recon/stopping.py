"""Early stopping by the discrepancy principle: stop when the data are fitted to the noise level.

Iterative methods fit noise once they run long enough (semi-convergence). The
discrepancy principle stops them when the misfit between the data ``b`` and
the reprojection ``A x`` falls to what the noise alone would leave: for
Poisson counts, the deviance ``D = 2 sum(b log(b / Ax) - (b - Ax))`` reaches
its expected value ``sum E[D | lambda = Ax]``; for Gaussian noise of standard
deviation sigma, ``||Ax - b||^2`` reaches ``N sigma^2``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ChemtomoError
from ..core.operators import Operator, to_tensor

_LAMBDA = np.concatenate([np.linspace(0.0, 2.0, 201)[1:], np.linspace(2.0, 60.0, 581)[1:]])


def _expected_deviance_table() -> np.ndarray:
    """E[D(b; lam)] for b ~ Poisson(lam) on the grid `_LAMBDA` (exact sums over b)."""
    from scipy.special import xlogy
    from scipy.stats import poisson

    k = np.arange(0, 200)[:, None]
    lam = _LAMBDA[None, :]
    dev = 2 * (xlogy(k, k / lam) - (k - lam))
    return (poisson.pmf(k, lam) * dev).sum(axis=0)


_TABLE: np.ndarray | None = None


def expected_poisson_deviance(expected: torch.Tensor) -> torch.Tensor:
    """Expected Poisson deviance per pixel for the mean counts `expected` (tensor, >= 0).

    Tabulated exactly up to 60 counts; ``1 + 1/(6 lam)`` above (its asymptotic form).
    """
    global _TABLE
    if _TABLE is None:
        _TABLE = _expected_deviance_table()
    lam = expected.detach().clamp(min=0).cpu().numpy().astype(np.float64)
    values = np.where(lam > _LAMBDA[-1], 1 + 1 / (6 * np.maximum(lam, 1.0)), np.interp(lam, _LAMBDA, _TABLE))
    return torch.from_numpy(values.astype(np.float32)).to(expected.device)


def poisson_deviance(counts: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Poisson deviance ``2 (b log(b / lam) - (b - lam))`` per pixel."""
    lam = expected.clamp(min=1e-12)
    return 2 * (torch.xlogy(counts, counts / lam) - (counts - lam))


class Discrepancy:
    """Callback that stops an iterative method at the noise level (discrepancy principle).

    Parameters
    ----------
    op : Operator
        The projector the method uses.
    data : array
        The measured tilt series.
    noise : "poisson" or float, default "poisson"
        Poisson counts, or the standard deviation of Gaussian noise in data units.
    factor : float, default 1.0
        Stop when the misfit is below ``factor`` times its expected value.
    every : int, default 1
        Check every `every` iterations (each check costs one projection).

    Attributes
    ----------
    stopped_at : int or None
        The iteration (from 0) at which it asked to stop.
    history : list of (iteration, misfit / expected misfit)

    Examples
    --------
    >>> from chemtomo.recon import mlem
    >>> stop = Discrepancy(A, counts)            # doctest: +SKIP
    >>> x = mlem(A, counts, 200, callback=stop)  # doctest: +SKIP
    """

    def __init__(self, op: Operator, data, *, noise="poisson", factor: float = 1.0, every: int = 1):
        if noise != "poisson" and not (isinstance(noise, (int, float)) and noise > 0):
            raise ChemtomoError(f"noise must be 'poisson' or a positive standard deviation, got {noise!r}")
        self.op, self.noise, self.factor, self.every = op, noise, float(factor), int(every)
        self.data = to_tensor(data)
        self.stopped_at = None
        self.history: list[tuple[int, float]] = []

    def __call__(self, iteration: int, x) -> bool:
        if (iteration + 1) % self.every:
            return False
        xt = to_tensor(x)
        ax = self.op._apply(xt)
        b = self.data.to(ax.device)
        if self.noise == "poisson":
            ratio = float(poisson_deviance(b, ax).sum() / expected_poisson_deviance(ax).sum())
        else:
            ratio = float(((ax - b) ** 2).sum() / (b.numel() * self.noise**2))
        self.history.append((iteration, ratio))
        if ratio <= self.factor:
            self.stopped_at = iteration
            return True
        return False


class Convergence:
    """Callback that records the relative update ``||x_k - x_{k-m}|| / ||x_k||`` every `every` iterations.

    Keeps one copy of the iterate (float32), so it costs one volume of memory.
    Never stops the run. :meth:`record` gives ``{"iteration": [...],
    "relative_change": [...]}`` for the provenance and the report.
    """

    def __init__(self, every: int = 5):
        if every < 1:
            raise ChemtomoError(f"every must be at least 1, got {every}")
        self.every, self.prev = int(every), None
        self.iterations: list[int] = []
        self.changes: list[float] = []

    def __call__(self, i: int, x) -> bool:
        if (i + 1) % self.every:
            return False
        a = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        a = a.astype(np.float32, copy=True)
        if self.prev is not None:
            self.iterations.append(i + 1)
            self.changes.append(float(np.linalg.norm(a - self.prev) / max(float(np.linalg.norm(a)), 1e-30)))
        self.prev = a
        return False

    def record(self) -> dict:
        return {"iteration": list(self.iterations), "relative_change": list(self.changes)}
