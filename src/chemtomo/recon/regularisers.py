"""Regularisers for :func:`chemtomo.recon.pdhg.pdhg`: TV, TNV and TGV with closed-form dual projections.

A regulariser is a sum ``sum_k R_k(K_k (x, w...))`` of convex functions of
linear maps of the primal blocks: the volume ``x`` (block 0) and, for TGV,
an auxiliary vector field ``w`` (block 1). It tells the engine

* ``aux_shapes(shape)``: shapes of its extra primal blocks (none for TV, TNV);
* ``blocks(shape)``: a list of ``(part, {block index: Operator})``, where
  ``part.prox_conj(q, sigma)`` is the prox of the convex conjugate of R_k.

Every R_k here is a weighted sum over voxels of a norm of a small per-voxel
matrix (channels x derivatives), so its conjugate's prox is the projection
onto the dual-norm ball of radius `weight`, whatever sigma. No part hides an
inner solver.

Couplings of the per-voxel matrix ``G[c, d]`` (channel c, derivative d):

* ``"none"``: ``sum_c |G[c, :]|_2``, channels independent (channel-wise TV);
* ``"frobenius"``: ``|G|_F``, joint sparsity of the edges (vectorial TV);
* ``"nuclear"``: ``|G|_*``, sum of singular values (TNV, Rigie & La Riviere 2015;
  Zhong et al. 2018); its dual ball is the spectral-norm ball.
"""

from __future__ import annotations

import torch

from ..core.diff import Gradient, SymGradient
from ..core.errors import ChemtomoError
from .channels import Identity

COUPLINGS = ("none", "frobenius", "nuclear")


def _check_weight(value, name):
    value = float(value)
    if not value >= 0:
        raise ChemtomoError(f"{name} must be a non-negative weight (larger regularises more), got {value!r}")
    return value


def _check_coupling(coupling):
    if coupling not in COUPLINGS:
        raise ChemtomoError(f"unknown coupling {coupling!r}; choose one of {', '.join(COUPLINGS)}")
    return coupling


def _norm_dims(q: torch.Tensor, coupling: str):
    """Axes the per-voxel norm runs over: the derivative axis, or every leading axis."""
    return (-4,) if coupling == "none" else tuple(range(q.ndim - 3))


def project_l2(q: torch.Tensor, radius: float, dims) -> torch.Tensor:
    """Project the vectors formed by axes `dims` of `q` onto the l2 ball of `radius`."""
    if radius == 0:
        return torch.zeros_like(q)
    scale = (torch.linalg.vector_norm(q, dim=dims, keepdim=True) / radius).clamp(min=1.0)
    return q / scale


def project_spectral(q: torch.Tensor, radius: float) -> torch.Tensor:
    """Project each voxel's matrix ``q[c, d, v]`` onto the spectral-norm ball of `radius`.

    `q` has shape ``(c, d, ny, nz, nx)`` (or ``(d, ny, nz, nx)``, one channel).
    Voxels with Frobenius norm <= radius are inside the ball (spectral <= Frobenius)
    and left alone; the others are clipped by a batched SVD ``M = U S V^T``
    of their ``(c, d)`` matrices: ``U min(S, radius) V^T``.
    """
    if radius == 0:
        return torch.zeros_like(q)
    if q.ndim == 4:
        return project_l2(q, radius, (0,))
    c, d = q.shape[0], q.shape[1]
    if c == 1:
        return project_l2(q, radius, (0, 1))
    if c == 2:
        return _project_spectral_two(q, radius)
    m = q.reshape(c, d, -1).permute(2, 0, 1)  # (N, c, d) view
    active = torch.linalg.matrix_norm(m) > radius
    if not bool(active.any()):
        return q
    sub = m[active].double()
    u, s, vh = torch.linalg.svd(sub, full_matrices=False)
    clipped = (u * s.clamp(max=radius).unsqueeze(-2)) @ vh
    out = m.clone()
    out[active] = clipped.to(q.dtype)
    return out.permute(1, 2, 0).reshape(q.shape)


def _project_spectral_two(q: torch.Tensor, radius: float) -> torch.Tensor:
    """Closed form for two channels: ``M' = f(M M^T) M`` with ``f(l) = min(1, radius / sqrt(l))``.

    For the 2x2 Gram matrix with eigenvalues ``l1 >= l2``, ``f(G) = a I + b G`` with
    ``b = (f(l1) - f(l2)) / (l1 - l2)`` and ``a = f(l2) - b l2`` (Lagrange interpolation;
    ``b = 0`` for equal eigenvalues).
    """
    p, r = q[0], q[1]  # (d, ...)
    ga, gb, gc = (p * p).sum(0), (p * r).sum(0), (r * r).sum(0)
    mean, half = 0.5 * (ga + gc), torch.sqrt((0.5 * (ga - gc)) ** 2 + gb**2)
    l1, l2 = mean + half, (mean - half).clamp(min=0)
    f1 = (radius / l1.clamp(min=1e-30).sqrt()).clamp(max=1.0)
    f2 = (radius / l2.clamp(min=1e-30).sqrt()).clamp(max=1.0)
    gap = l1 - l2
    b = torch.where(gap > 1e-7 * l1.clamp(min=1e-30), (f1 - f2) / gap.clamp(min=1e-30), torch.zeros_like(gap))
    a = f2 - b * l2
    return torch.stack([(a + b * ga) * p + b * gb * r, b * gb * p + (a + b * gc) * r])


class _Ball:
    """Conjugate of ``radius * sum_v ||G(v)||`` for one coupling: projection onto the dual ball."""

    def __init__(self, radius: float, coupling: str):
        self.radius, self.coupling = radius, coupling

    def prox_conj(self, q, sigma):
        if self.coupling == "nuclear":
            return project_spectral(q, self.radius)
        return project_l2(q, self.radius, _norm_dims(q, self.coupling))

    def value(self, g) -> float:
        if self.coupling == "nuclear" and g.ndim > 4:
            c, d = g.shape[0], g.shape[1]
            m = g.reshape(c, d, -1).permute(2, 0, 1)
            return self.radius * float(torch.linalg.svdvals(m).sum())
        return self.radius * float(torch.linalg.vector_norm(g, dim=_norm_dims(g, self.coupling)).sum())


class TV(_Ball):
    """Isotropic total variation ``weight * sum_v |grad x (v)|``, channel-wise or joint.

    Parameters
    ----------
    weight : float
        Regularisation weight >= 0 (larger regularises more), in data units
        per unit of voxel value.
    coupling : {"none", "frobenius"}, default "none"
        ``"none"``: the sum of each channel's TV; ``"frobenius"``: vectorial
        TV, the per-voxel l2 norm over all channels and derivatives.

    Notes
    -----
    ``prox_{sigma R*}`` is the projection of each voxel's gradient (vector or
    channel x 3 matrix) onto the l2 ball of radius `weight`, whatever sigma.
    """

    def __init__(self, weight: float, coupling: str = "none"):
        if coupling not in ("none", "frobenius"):
            raise ChemtomoError(f"TV coupling must be 'none' or 'frobenius', got {coupling!r}; use TNV for nuclear")
        super().__init__(_check_weight(weight, "TV weight"), coupling)
        self.weight = self.radius

    def operator(self, shape):
        return Gradient(shape)

    def aux_shapes(self, shape):
        return []

    def blocks(self, shape):
        return [(self, {0: Gradient(shape)})]

    def __repr__(self):
        return f"TV({self.weight:g}, coupling={self.coupling!r})"


class TNV(_Ball):
    """Total nuclear variation ``weight * sum_v ||J x (v)||_*`` of a multichannel volume.

    Parameters
    ----------
    weight : float
        Regularisation weight >= 0 (larger regularises more).

    Notes
    -----
    ``J x (v)`` is the (channels x 3) Jacobian at voxel v. Its nuclear norm
    favours parallel gradients: shared edges, free contrast per channel. For
    one channel TNV is isotropic TV. ``prox_{sigma R*}`` projects every
    voxel's matrix onto the spectral-norm ball of radius `weight`
    (:func:`project_spectral`).

    References
    ----------
    D. S. Rigie and P. J. La Riviere, Phys. Med. Biol. 60 (2015) 1741-1762;
    Z. Zhong et al., EDS tomography regularised by TNV joined with HAADF, Ultramicroscopy (2018).
    """

    def __init__(self, weight: float):
        super().__init__(_check_weight(weight, "TNV weight"), "nuclear")
        self.weight = self.radius

    def operator(self, shape):
        return Gradient(shape)

    def aux_shapes(self, shape):
        return []

    def blocks(self, shape):
        return [(self, {0: Gradient(shape)})]

    def __repr__(self):
        return f"TNV({self.weight:g})"


class TGV:
    """Second-order total generalised variation, optionally coupled across channels.

    ``TGV(x) = min_w  alpha1 sum_v |grad x - w|_{n1} + alpha0 sum_v |E w|_{n2}``

    Parameters
    ----------
    alpha1 : float
        Weight of the first-order term (edges), >= 0.
    alpha0 : float
        Weight of the second-order term (smooth ramps), >= 0; large values
        force ``E w`` to zero and give TV-like results. Huber et al. use
        ``alpha0 = 4 alpha1``.
    coupling : {"frobenius", "nuclear", "none"}, default "frobenius"
        Norm n1 over the per-voxel (channels x 3) matrix ``grad x - w``
        (see module notes); n2 over the (channels x 6) ``E w`` is Frobenius
        for "frobenius" and "nuclear" and per channel for "none".

    Notes
    -----
    The auxiliary field ``w[..., 3, ny, nz, nx]`` is a second primal block,
    with blocks ``(grad, -I)`` and ``(0, E)``; E is
    :class:`~chemtomo.core.diff.SymGradient`.

    References
    ----------
    K. Bredies, K. Kunisch and T. Pock, SIAM J. Imaging Sci. 3 (2010) 492-526;
    R. Huber et al., Nanoscale 11 (2019) 5617-5632.
    """

    def __init__(self, alpha1: float, alpha0: float, coupling: str = "frobenius"):
        self.alpha1 = _check_weight(alpha1, "TGV alpha1")
        self.alpha0 = _check_weight(alpha0, "TGV alpha0")
        self.coupling = _check_coupling(coupling)
        self.first = _Ball(self.alpha1, self.coupling)
        self.second = _Ball(self.alpha0, "none" if self.coupling == "none" else "frobenius")

    def aux_shapes(self, shape):
        shape = tuple(shape)
        return [shape[:-3] + (3,) + shape[-3:]]

    def blocks(self, shape):
        (wshape,) = self.aux_shapes(shape)
        return [(self.first, {0: Gradient(shape), 1: -1.0 * Identity(wshape)}),
                (self.second, {1: SymGradient(wshape)})]

    def __repr__(self):
        return f"TGV({self.alpha1:g}, {self.alpha0:g}, coupling={self.coupling!r})"
