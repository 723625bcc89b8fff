"""Boundary validation shared by the denoisers: one image or a stack of count maps."""

from __future__ import annotations

import numpy as np

from ..core.errors import DataError, ShapeError


def as_stack(stack, name: str = "stack") -> np.ndarray:
    """Check a count image ``(ny, nu)`` or stack ``(n, ny, nu)``; return a float64 stack (a copy).

    Raises
    ------
    ShapeError
        If `stack` is not 2D or 3D or has an empty axis.
    DataError
        If it holds NaN, infinite or negative values.
    """
    if hasattr(stack, "detach"):  # torch tensor
        stack = stack.detach().cpu().numpy()
    x = np.array(stack, dtype=np.float64)
    if x.ndim not in (2, 3) or 0 in x.shape:
        raise ShapeError(f"{name} must be an image (ny, nu) or a stack of images (n_tilts, ny, nu), got shape "
                         f"{x.shape}; pass one count map or a tilt series of them")
    bad = int((~np.isfinite(x)).sum())
    if bad:
        raise DataError(f"{name} contains {bad} NaN or infinite values; replace or mask them before denoising")
    neg = int((x < 0).sum())
    if neg:
        raise DataError(f"{name} has {neg} negative values (minimum {x.min():g}) but the denoisers model Poisson "
                        "counts; denoise the raw counts, before any background subtraction")
    return x if x.ndim == 3 else x[None]


def like_input(out: np.ndarray, stack) -> np.ndarray:
    """`out` (a float stack) as float32 in the shape of `stack` (an image stays an image)."""
    return np.asarray(out, dtype=np.float32).reshape(np.shape(stack))


