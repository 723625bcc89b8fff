"""Finite differences on volumes ``v[y, z, x]``: gradient and divergence for TV, symmetrised gradient for TGV.

The gradient is the forward difference along each of the three volume axes
with a Neumann boundary (the difference leaving the last voxel is zero). The
divergence is its exact negative adjoint, ``<grad x, g> = -<x, div g>``, so
``Gradient(shape).T`` is ``-divergence``. Leading axes (channels) are carried
along: ``x[..., ny, nz, nx]`` gives ``g[..., 3, ny, nz, nx]`` with the
derivative index in the order (y, z, x).

The symmetrised gradient of a vector field ``w[..., 3, ny, nz, nx]`` is
``E w = (J + J^T) / 2`` with ``J[i, j] = d_j w_i`` (forward differences, as
above), stored as its six unique components ``(yy, zz, xx, yz, yx, zx)`` with
the off-diagonal ones multiplied by sqrt(2): the Euclidean norm of the six
numbers is then the Frobenius norm of the symmetric 3x3 matrix, and the
adjoint is the plain one.
"""

from __future__ import annotations

import math

import torch

from .errors import ChemtomoError, ShapeError
from .operators import Operator, like_input, to_tensor


def _axis_slices(ndim: int, axis: int):
    """Index tuples ``(hi, lo)`` selecting ``[1:]`` and ``[:-1]`` along `axis` (negative, from the end)."""
    hi, lo = [slice(None)] * ndim, [slice(None)] * ndim
    hi[axis], lo[axis] = slice(1, None), slice(None, -1)
    return tuple(hi), tuple(lo)


def _diff_into(x: torch.Tensor, axis: int, out: torch.Tensor) -> None:
    """``out = D x`` along `axis`: forward difference, 0 on the last index (Neumann)."""
    hi, lo = _axis_slices(x.ndim, axis)
    torch.sub(x[hi], x[lo], out=out[lo])
    last = [slice(None)] * x.ndim
    last[axis] = -1
    out[tuple(last)] = 0.0


def _diff_adjoint_add(g: torch.Tensor, axis: int, out: torch.Tensor, alpha: float) -> None:
    """``out += alpha D^T g`` along `axis`, in place and without temporaries."""
    hi, lo = _axis_slices(g.ndim, axis)
    out[hi].add_(g[lo], alpha=alpha)
    out[lo].add_(g[lo], alpha=-alpha)


def _gradient_into(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    for d in range(3):
        _diff_into(x, d - 3, out[..., d, :, :, :])
    return out


def _gradient_adjoint_add(g: torch.Tensor, out: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    for d in range(3):
        _diff_adjoint_add(g[..., d, :, :, :], d - 3, out, alpha)
    return out


def _gradient(x: torch.Tensor) -> torch.Tensor:
    return _gradient_into(x, x.new_empty(x.shape[:-3] + (3,) + x.shape[-3:]))


def _divergence(g: torch.Tensor) -> torch.Tensor:
    return _gradient_adjoint_add(g, g.new_zeros(g.shape[:-4] + g.shape[-3:]), -1.0)


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
        return _gradient_adjoint_add(g, g.new_zeros(self.domain_shape))

    def _apply_into(self, x, out):
        return _gradient_into(x, out)

    def _adjoint_add(self, g, out, alpha=1.0):
        return _gradient_adjoint_add(g, out, alpha)

    def norm(self, iterations: int = 30, *, rng=0, device=None) -> float:
        d = sum(n > 1 for n in self.domain_shape[-3:])
        return 2.0 * math.sqrt(max(d, 1))

    def __repr__(self):
        return f"Gradient({self.domain_shape})"


#: (i, j) index pairs of the six stored components of the symmetrised gradient
_SYM_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
_R2 = 1.0 / math.sqrt(2.0)


def _sym_gradient_into(w: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    tmp = None
    for k, (a, b) in enumerate(_SYM_PAIRS):
        o = out[..., k, :, :, :]
        if a == b:
            _diff_into(w[..., a, :, :, :], a - 3, o)
        else:
            if tmp is None:
                tmp = torch.empty_like(o)
            _diff_into(w[..., a, :, :, :], b - 3, o)
            _diff_into(w[..., b, :, :, :], a - 3, tmp)
            o.add_(tmp).mul_(_R2)
    return out


def _sym_gradient_adjoint_add(e: torch.Tensor, out: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    for k, (a, b) in enumerate(_SYM_PAIRS):
        ek = e[..., k, :, :, :]
        if a == b:
            _diff_adjoint_add(ek, a - 3, out[..., a, :, :, :], alpha)
        else:
            _diff_adjoint_add(ek, b - 3, out[..., a, :, :, :], alpha * _R2)
            _diff_adjoint_add(ek, a - 3, out[..., b, :, :, :], alpha * _R2)
    return out


def _sym_gradient(w: torch.Tensor) -> torch.Tensor:
    return _sym_gradient_into(w, w.new_empty(w.shape[:-4] + (6,) + w.shape[-3:]))


def _sym_gradient_adjoint(e: torch.Tensor) -> torch.Tensor:
    return _sym_gradient_adjoint_add(e, e.new_zeros(e.shape[:-4] + (3,) + e.shape[-3:]))


def sym_gradient(w):
    """Symmetrised forward-difference gradient of a vector field (for TGV).

    Parameters
    ----------
    w : array, shape (..., 3, ny, nz, nx)
        Vector field; component order (y, z, x).

    Returns
    -------
    e : array, shape (..., 6, ny, nz, nx), float32, same type and device as `w`
        Components ``(yy, zz, xx, sqrt(2) yz, sqrt(2) yx, sqrt(2) zx)`` of
        ``(J + J^T) / 2``, ``J[i, j] = d_j w_i``; ``sum(e**2)`` is the squared
        Frobenius norm of the symmetric matrix.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.zeros((3, 1, 1, 3), np.float32); w[2, 0, 0] = [0, 1, 2]  # w_x = x
    >>> sym_gradient(w)[:, 0, 0, 0].tolist()
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    """
    if w.ndim < 4 or w.shape[-4] != 3:
        raise ShapeError(f"sym_gradient takes fields of shape (..., 3, ny, nz, nx), got {tuple(w.shape)}")
    return like_input(_sym_gradient(to_tensor(w)), w)


def sym_gradient_adjoint(e):
    """The exact adjoint of :func:`sym_gradient` (minus a symmetrised divergence).

    Parameters
    ----------
    e : array, shape (..., 6, ny, nz, nx)

    Returns
    -------
    w : array, shape (..., 3, ny, nz, nx), float32, same type and device as `e`
    """
    if e.ndim < 4 or e.shape[-4] != 6:
        raise ShapeError(f"sym_gradient_adjoint takes fields of shape (..., 6, ny, nz, nx), got {tuple(e.shape)}")
    return like_input(_sym_gradient_adjoint(to_tensor(e)), e)


class SymGradient(Operator):
    """The symmetrised gradient :func:`sym_gradient` as an :class:`Operator`.

    Parameters
    ----------
    shape : tuple of int
        Domain shape ``(..., 3, ny, nz, nx)``; the range is ``(..., 6, ny, nz, nx)``.

    Notes
    -----
    :meth:`norm` returns the bound ``2 sqrt(d)`` of the gradient (symmetrising
    and packing do not increase the Frobenius norm).
    """

    def __init__(self, shape):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 4 or shape[-4] != 3:
            raise ShapeError(f"SymGradient needs a shape (..., 3, ny, nz, nx), got {shape}")
        super().__init__(shape, shape[:-4] + (6,) + shape[-3:])

    def _apply(self, w):
        return _sym_gradient(w)

    def _apply_adjoint(self, e):
        return _sym_gradient_adjoint(e)

    def _apply_into(self, w, out):
        return _sym_gradient_into(w, out)

    def _adjoint_add(self, e, out, alpha=1.0):
        return _sym_gradient_adjoint_add(e, out, alpha)

    def norm(self, iterations: int = 30, *, rng=0, device=None) -> float:
        d = sum(n > 1 for n in self.domain_shape[-3:])
        return 2.0 * math.sqrt(max(d, 1))

    def __repr__(self):
        return f"SymGradient({self.domain_shape})"


def edge_directions(guide, *, smooth: float = 1.0, eta: float | None = None, relative_eta: float = 0.1) -> torch.Tensor:
    """Edge normals of a guide volume for directional TV: ``xi = grad g / sqrt(|grad g|^2 + eta^2)``.

    Parameters
    ----------
    guide : array, shape (ny, nz, nx)
        Reference volume (e.g. a HAADF reconstruction), any linear units.
    smooth : float, default 1.0
        Gaussian sigma in voxels applied to the guide first, so that its noise
        does not mark edges; 0 turns it off.
    eta : float, optional
        Edge threshold in guide units per voxel: gradients much larger than
        eta give unit normals (an edge), much smaller ones give ``|xi| ~ 0``
        (no edge). Default: `relative_eta` times the largest gradient
        magnitude of the smoothed guide.
    relative_eta : float, default 0.1
        See `eta`.

    Returns
    -------
    xi : torch.Tensor, shape (3, ny, nz, nx), float32, ``|xi| < 1``
        On the guide's device (CPU for NumPy input).
    """
    from scipy.ndimage import gaussian_filter

    g = to_tensor(guide)
    if g.ndim != 3:
        raise ShapeError(f"the guide must be one volume (ny, nz, nx), got shape {tuple(g.shape)}")
    if not bool(torch.isfinite(g).all()):
        raise ChemtomoError("the guide volume contains NaN or infinite values; reconstruct it from finite data")
    if smooth > 0:
        g = torch.as_tensor(gaussian_filter(g.cpu().numpy(), float(smooth)), device=g.device)
    grad = _gradient(g.float())
    mag = torch.linalg.vector_norm(grad, dim=0)
    if eta is None:
        eta = relative_eta * float(mag.max())
    eta = max(float(eta), 1e-12)
    return grad / torch.sqrt(mag**2 + eta**2)


class DirectionalGradient(Operator):
    """The gradient with the component along a guide's edge normals damped: ``(I - gamma xi xi^T) grad``.

    Parameters
    ----------
    shape : tuple of int
        Domain shape ``(..., ny, nz, nx)``; the range is ``(..., 3, ny, nz, nx)``.
    xi : torch.Tensor, shape (3, ny, nz, nx)
        Edge normals with ``|xi| <= 1`` (:func:`edge_directions`), shared by all channels.
    gamma : float, default 0.98
        How much of the normal component is removed, in [0, 1]; 0 gives the plain gradient.

    Notes
    -----
    The per-voxel map ``P = I - gamma xi xi^T`` is symmetric with eigenvalues in
    [1 - gamma, 1], so the adjoint is ``grad^T P`` and the norm is at most the
    gradient's (:meth:`norm` returns that bound). The norm of ``P grad x`` is
    directional TV (Ehrhardt & Betcke 2016): edges of x parallel to the guide's
    edges cost (almost) nothing, all others cost as in TV.
    """

    def __init__(self, shape, xi: torch.Tensor, gamma: float = 0.98):
        shape = tuple(int(s) for s in shape)
        if len(shape) < 3 or tuple(xi.shape) != (3,) + shape[-3:]:
            raise ShapeError(f"edge normals of shape {tuple(xi.shape)} do not fit volumes of shape {shape}; "
                             f"they need (3,) + {shape[-3:]}")
        if not 0 <= gamma <= 1:
            raise ChemtomoError(f"gamma must lie in [0, 1], got {gamma!r}")
        super().__init__(shape, shape[:-3] + (3,) + shape[-3:])
        self.xi, self.gamma = xi.float(), float(gamma)

    def _normal_part(self, g: torch.Tensor) -> torch.Tensor:
        """``xi . g`` per voxel and channel, shape ``(..., ny, nz, nx)``: one temporary, no (.., 3, ..) one."""
        xi = self.xi.to(g.device)
        d = g[..., 0, :, :, :] * xi[0]
        d.addcmul_(g[..., 1, :, :, :], xi[1])
        return d.addcmul_(g[..., 2, :, :, :], xi[2])

    def _apply(self, x):
        return self._apply_into(x, x.new_empty(self.range_shape))

    def _apply_into(self, x, out):
        _gradient_into(x, out)
        d, xi = self._normal_part(out), self.xi.to(out.device)
        for k in range(3):
            out[..., k, :, :, :].addcmul_(xi[k], d, value=-self.gamma)
        return out

    def _apply_adjoint(self, g):
        return self._adjoint_add(g, g.new_zeros(self.domain_shape))

    def _adjoint_add(self, g, out, alpha=1.0):
        # out += alpha grad^T P g, one derivative at a time so that g is left alone and one temporary serves
        d, xi = self._normal_part(g), self.xi.to(g.device)
        tmp = torch.empty_like(d)
        for k in range(3):
            torch.addcmul(g[..., k, :, :, :], xi[k], d, value=-self.gamma, out=tmp)
            _diff_adjoint_add(tmp, k - 3, out, alpha)
        return out

    def norm(self, iterations: int = 30, *, rng=0, device=None) -> float:
        return Gradient(self.domain_shape).norm()

    def __repr__(self):
        return f"DirectionalGradient({self.domain_shape}, gamma={self.gamma:g})"
