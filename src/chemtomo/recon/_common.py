"""Boundary validation and small helpers shared by the reconstruction methods.

Everything here works on torch float32 tensors on the data's device; the
public methods convert back with :func:`chemtomo.core.operators.like_input`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..core.errors import ChemtomoError, DataError, ShapeError, check_counts, check_finite
from ..core.operators import Operator, to_tensor

#: row or column sums below this are treated as zero (rays or voxels the geometry never sees)
EPS = 1e-6


def check_op(op) -> None:
    if not isinstance(op, Operator):
        raise ChemtomoError(f"op must be a chemtomo Operator such as Projector(geometry), got {type(op).__name__}")


def prepare_data(op: Operator, data, *, name: str = "data", counts: bool = False) -> torch.Tensor:
    """Check `data` against ``op.range_shape`` and its values; return a float32 tensor.

    The tensor may share memory with `data`: callers must not modify it in place.
    """
    check_op(op)
    if tuple(data.shape) != tuple(op.range_shape):
        raise ShapeError(
            f"{name} has shape {tuple(data.shape)} but the operator gives projections of shape "
            f"{tuple(op.range_shape)} (tilts, ny, nu); pass one image per tilt angle of the geometry"
        )
    (check_counts if counts else check_finite)(data, name)
    return to_tensor(data)


def prepare_volume(x, shape, device, *, name: str) -> torch.Tensor:
    """A float32 copy of `x` (shape checked), or zeros of `shape` if `x` is None."""
    if x is None:
        return torch.zeros(shape, dtype=torch.float32, device=device)
    if tuple(x.shape) != tuple(shape):
        raise ShapeError(f"{name} has shape {tuple(x.shape)} but the volume has shape {tuple(shape)}")
    check_finite(x, name)
    return to_tensor(x, device=device).clone()


def prepare_mask(mask, shape, device) -> torch.Tensor | None:
    """`mask` as a bool tensor on `device`, or None."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(shape):
        raise ShapeError(f"mask has shape {tuple(mask.shape)} but the volume has shape {tuple(shape)}")
    if isinstance(mask, torch.Tensor):
        return mask.to(device=device, dtype=torch.bool)
    return torch.from_numpy(np.asarray(mask, dtype=bool)).to(device)


def check_bounds(bounds) -> tuple[float | None, float | None]:
    """Validate ``(lower, upper)``, either side None for open."""
    try:
        lo, hi = bounds
    except (TypeError, ValueError):
        raise ChemtomoError(f"bounds must be a pair (lower, upper), None for an open side; got {bounds!r}") from None
    lo = None if lo is None else float(lo)
    hi = None if hi is None else float(hi)
    if lo is not None and hi is not None and lo > hi:
        raise ChemtomoError(f"bounds have lower {lo:g} above upper {hi:g}; give (lower, upper)")
    return lo, hi


def project_feasible(x: torch.Tensor, bounds, mask: torch.Tensor | None) -> torch.Tensor:
    """Clip `x` to `bounds` and zero it outside `mask`, in place; returns `x`."""
    lo, hi = bounds
    if lo is not None or hi is not None:
        x.clamp_(min=lo, max=hi)
    if mask is not None:
        x.masked_fill_(~mask, 0.0)
    return x


def safe_reciprocal(s: torch.Tensor) -> torch.Tensor:
    """``1 / s`` where ``s > EPS``, else 0."""
    return torch.where(s > EPS, 1.0 / s.clamp(min=EPS), torch.zeros_like(s))


def check_iterations(iterations, name: str = "iterations") -> int:
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ChemtomoError(f"{name} must be a non-negative integer, got {iterations!r}")
    return int(iterations)


def callback_runner(callback, like) -> Callable[[int, torch.Tensor], bool]:
    """Turn `callback` (None, a callable or a sequence of callables) into ``run(i, x) -> stop``.

    Every callback is called with ``(iteration, x)``, ``x`` converted to the
    type of `like` (a NumPy view of the current iterate on the CPU: copy it
    to keep it). Then the run stops if any callback returned True.
    """
    if callback is None:
        return lambda i, x: False
    callbacks: Sequence = list(callback) if isinstance(callback, (list, tuple)) else [callback]
    for cb in callbacks:
        if not callable(cb):
            raise ChemtomoError(f"callback must be callable(iteration, x) -> bool, got {type(cb).__name__}")
    as_numpy = not isinstance(like, torch.Tensor)

    def run(i: int, x: torch.Tensor) -> bool:
        view = x.detach().cpu().numpy() if as_numpy else x
        stops = [bool(cb(i, view)) for cb in callbacks]
        return any(stops)

    return run


def check_subsets(subsets, n_tilts: int) -> int:
    if isinstance(subsets, bool) or not isinstance(subsets, (int, np.integer)) or subsets < 1:
        raise ChemtomoError(f"subsets must be a positive integer, got {subsets!r}")
    return min(int(subsets), n_tilts)


def subset_indices(angles: np.ndarray, subsets: int) -> list[np.ndarray]:
    """Interleaved tilt subsets: every `subsets`-th tilt in order of angle."""
    order = np.argsort(angles, kind="stable")
    return [np.sort(order[s::subsets]) for s in range(subsets)]


def sub_projectors(op, subsets: int, method: str):
    """``[(index, Projector), ...]`` for interleaved tilt subsets of a Projector `op`."""
    from ..core.projector import Projector

    if not isinstance(op, Projector):
        raise ChemtomoError(
            f"{method} with subsets needs a Projector (it splits the tilts), got {type(op).__name__}; "
            "use subsets=1 or sirt for other operators"
        )
    if subsets == 1:
        return [(None, op)]
    return [(idx, Projector(op.geometry[idx])) for idx in subset_indices(op.geometry.angles, subsets)]


def take_tilts(t: torch.Tensor, idx) -> torch.Tensor:
    if idx is None:
        return t
    return t[torch.as_tensor(idx, device=t.device)]


def check_nonnegative(x: torch.Tensor, name: str) -> None:
    n = int((x < 0).sum())
    if n:
        raise DataError(f"{name} has {n} negative values; give a non-negative {name}")


def noise_variance(b: torch.Tensor, on: torch.Tensor | None = None) -> float:
    """Robust noise variance of projections `b` (white noise): the median of squared second differences along u
    over 6 x 0.4549 (a second difference of white noise has variance 6 s^2; the median of chi2(1) is 0.4549).

    `on`: a bool mask of the pixels ``b[..., 1:-1]`` to measure on (e.g. the particle); by default where the
    second difference is not exactly 0 (flat, e.g. clipped, areas carry no noise to measure). An empty mask
    measures on every pixel.
    """
    d = b[..., 2:] - 2 * b[..., 1:-1] + b[..., :-2]
    if d.numel() == 0:
        return 1e-12
    on = d != 0 if on is None else on
    d = d[on] if bool(on.any()) else d.ravel()
    return max(float(torch.median(d**2)) / (6 * 0.4549), 1e-12)


def whole_counts(data) -> bool:
    """True for non-negative whole numbers: counts that can be split binomially."""
    d = np.asarray(data.detach().cpu() if isinstance(data, torch.Tensor) else data)
    return bool(d.size) and bool((d >= 0).all()) and bool(np.array_equal(d, np.rint(d)))


def split_half(counts: torch.Tensor, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """Count splitting: `counts` rounded to whole counts, each split binomially (p = 1/2) into two halves.

    The halves are independent Poisson data with half the expectation (thinning);
    float32 tensors on the device of `counts`. `rng`: a seed or a numpy Generator
    (consumed, so successive calls draw independent splits).
    """
    from ..physics.counts import split_counts

    n = np.rint(counts.detach().cpu().numpy().astype(np.float64)).clip(min=0)
    first, second = split_counts(n, 0.5, rng=rng)
    return (torch.from_numpy(first.astype(np.float32)).to(counts.device),
            torch.from_numpy(second.astype(np.float32)).to(counts.device))


def squared_error_per_slice(predicted: torch.Tensor, measured: torch.Tensor):
    """Squared error of `predicted` against `measured` views ``p[a, y, u]``, summed over each slice ``y``
    (float64 array): the units of the one-standard-error rule (:func:`~chemtomo.recon.selection.within_one_se`)."""
    return ((predicted - measured) ** 2).sum(dim=(0, 2)).double().cpu().numpy()


def heldout_nll(expected: torch.Tensor, counts: torch.Tensor) -> float:
    """Poisson negative log-likelihood ``sum(lambda - b log lambda)`` of held-out `counts` at `expected`."""
    lam = expected.clamp(min=1e-12)
    return float((lam - counts * torch.log(lam)).sum())

