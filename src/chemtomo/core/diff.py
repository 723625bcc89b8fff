"""Finite differences on volumes ``v[y, z, x]``: gradient and divergence for TV.

The gradient is the forward difference along each of the three volume axes
with a Neumann boundary (the difference leaving the last voxel is zero). The
divergence is its exact negative adjoint, ``<grad x, g> = -<x, div g>``, so
``Gradient(shape).T`` is ``-divergence``. Leading axes (channels) are carried
along: ``x[..., ny, nz, nx]`` gives ``g[..., 3, ny, nz, nx]`` with the
derivative index in the order (y, z, x).
"""

from __future__ import annotations

import math

import torch

from .errors import ShapeError
from .operators import Operator, like_input, to_tensor


def _gradient(x: torch.Tensor) -> torch.Tensor:
    g = x.new_zeros(x.shape[:-3] + (3,) + x.shape[-3:])
    g[..., 0, :-1, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
    g[..., 1, :, :-1, :] = x[..., :, 1:, :] - x[..., :, :-1, :]
    g[..., 2, :, :, :-1] = x[..., :, :, 1:] - x[..., :, :, :-1]
    return g


def _divergence(g: torch.Tensor) -> torch.Tensor:
    d = g.new_zeros(g.shape[:-4] + g.shape[-3:])
    gy, gz, gx = g[..., 0, :, :, :], g[..., 1, :, :, :], g[..., 2, :, :, :]
    d[..., :-1, :, :] += gy[..., :-1, :, :]
    d[..., 1:, :, :] -= gy[..., :-1, :, :]
    d[..., :, :-1, :] += gz[..., :, :-1, :]
    d[..., :, 1:, :] -= gz[..., :, :-1, :]
    d[..., :, :, :-1] += gx[..., :, :, :-1]
    d[..., :, :, 1:] -= gx[..., :, :, :-1]
    return d


def gradient(x):
    """Forward-difference gradient with a Neumann boundary.

    Parameters
    ----------
    x : array, shape (..., ny, nz, nx)
        Volume(s); NumPy array or torch tensor.

    Returns
    -------
    g : array, shape (..., 3, ny, nz, nx), float32, same type and device as `x`
        ``g[..., 0] = x[y+1] - x[y]`` (0 on the last y), likewise for z and x.

    Examples
    --------
    >>> import numpy as np
    >>> gradient(np.arange(3.0).reshape(1, 1, 3))[2].ravel().tolist()
    [1.0, 1.0, 0.0]
    """
    if x.ndim < 3:
        raise ShapeError(f"gradient takes volumes of shape (..., ny, nz, nx), got {tuple(x.shape)}")
    return like_input(_gradient(to_tensor(x)), x)


def divergence(g):
    """Divergence, the exact negative adjoint of :func:`gradient`.

    Parameters
    ----------
    g : array, shape (..., 3, ny, nz, nx)
        Vector field; component order (y, z, x).

    Returns
    -------
    d : array, shape (..., ny, nz, nx), float32, same type and device as `g`

    Notes
    -----
    Backward differences with ``d = g[0]`` on the first voxel and
    ``d = -g[n-2]`` on the last, so that ``<gradient(x), g> = -<x, divergence(g)>``.
    """
    if g.ndim < 4 or g.shape[-4] != 3:
        raise ShapeError(f"divergence takes fields of shape (..., 3, ny, nz, nx), got {tuple(g.shape)}")
    return like_input(_divergence(to_tensor(g)), g)


class Gradient(Operator):
    """The forward-difference gradient as an :class:`Operator`.

    Parameters
    ----------
    shape : tuple of int
        Domain shape ``(..., ny, nz, nx)``; the range is ``(..., 3, ny, nz, nx)``.

    Notes
    -----
    ``Gradient(shape).T(g) == -divergence(g)``. :meth:`norm` returns the
    analytic bound ``2 sqrt(d)``, with d the number of axes longer than one
    (``sqrt(12)`` for a 3D volume), instead of a power-method estimate.

    Examples
    --------
    >>> D = Gradient((2, 4, 4))
    >>> D.range_shape
    (3, 2, 4, 4)
    """

    def __init__(self, shape):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 3:
            raise ShapeError(f"Gradient needs a shape (..., ny, nz, nx), got {shape}")
        super().__init__(shape, shape[:-3] + (3,) + shape[-3:])

    def _apply(self, x):
        return _gradient(x)

    def _apply_adjoint(self, g):
        return -_divergence(g)

    def norm(self, iterations: int = 30, *, rng=0, device=None) -> float:
        d = sum(n > 1 for n in self.domain_shape[-3:])
        return 2.0 * math.sqrt(max(d, 1))

    def __repr__(self):
        return f"Gradient({self.domain_shape})"
