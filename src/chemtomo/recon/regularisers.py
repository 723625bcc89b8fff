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

import math

import torch

from ..core.diff import DirectionalGradient, Gradient, SymGradient
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


def _rows(q: torch.Tensor, dims) -> tuple[int, int] | None:
    """``(L, K)`` such that ``q.reshape(L, K, N)`` puts the norm axes `dims` on K, or None if they do not."""
    dims = tuple(d % q.ndim for d in dims)
    lead = q.ndim - 3
    if dims == tuple(range(len(dims))) and len(dims) <= lead:
        return 1, math.prod(q.shape[: len(dims)])
    if len(dims) == 1 and dims[0] == lead - 1:
        return math.prod(q.shape[: lead - 1]), q.shape[lead - 1]
    return None


def _working(q: torch.Tensor, inplace: bool) -> torch.Tensor:
    """A contiguous tensor to write the projection into: `q` itself when allowed, else a copy."""
    return q if inplace and q.is_contiguous() else q.clone(memory_format=torch.contiguous_format)


def _result(q: torch.Tensor, out: torch.Tensor, inplace: bool) -> torch.Tensor:
    """`out`, copied back into `q` when `q` must hold it and is another tensor."""
    return q.copy_(out) if inplace and out is not q else out


def _squared_norms(flat: torch.Tensor) -> torch.Tensor:
    """``sum_k flat[:, k] ** 2`` of ``flat[L, K, N]``, accumulated without a full-size temporary."""
    sq = flat[:, 0] * flat[:, 0]
    for k in range(1, flat.shape[1]):
        sq.addcmul_(flat[:, k], flat[:, k])
    return sq


def project_l2(q: torch.Tensor, radius: float, dims, *, inplace: bool = False) -> torch.Tensor:
    """Project the vectors formed by axes `dims` of `q` onto the l2 ball of `radius`.

    `dims` are either the leading axes (coupled channels and derivatives) or the
    axis just before the three spatial ones (one vector per channel). With
    ``inplace=True`` `q` is overwritten (the solver's own buffer) and returned.
    """
    if radius == 0:
        return q.zero_() if inplace else torch.zeros_like(q)
    rows = _rows(q, dims)
    if rows is None:  # general axes: plain (allocating) form
        scale = (torch.linalg.vector_norm(q, dim=dims, keepdim=True) / radius).clamp(min=1.0)
        return q.div_(scale) if inplace else q / scale
    out = _working(q, inplace)
    flat = out.view(rows[0], rows[1], -1)
    factor = _squared_norms(flat).sqrt_().clamp_(min=radius).reciprocal_().mul_(radius)
    flat.mul_(factor.unsqueeze(1))
    return _result(q, out, inplace)


def project_spectral(q: torch.Tensor, radius: float, *, inplace: bool = False) -> torch.Tensor:
    """Project each voxel's matrix ``q[c, d, v]`` onto the spectral-norm ball of `radius`.

    `q` has shape ``(c, d, ny, nz, nx)`` (or ``(d, ny, nz, nx)``, one channel).
    Voxels with Frobenius norm <= radius are inside the ball (spectral <= Frobenius)
    and left alone; the others are clipped, ``M -> U min(S, radius) V^T``
    for ``M = U S V^T``, in closed form for two channels or three derivatives
    (:func:`_spectral_clip_three`, in float64), by a batched SVD otherwise.
    With ``inplace=True`` `q` is overwritten and returned.
    """
    if radius == 0:
        return q.zero_() if inplace else torch.zeros_like(q)
    if q.ndim == 4:
        return project_l2(q, radius, (0,), inplace=inplace)
    c, d = q.shape[0], q.shape[1]
    if c == 1:
        return project_l2(q, radius, (0, 1), inplace=inplace)
    if c == 2:
        out = _project_spectral_two(q, radius)
        return q.copy_(out) if inplace else out
    out = _working(q, inplace)
    m = out.view(c, d, -1)
    active = _squared_norms(out.view(1, c * d, -1))[0] > radius**2  # Frobenius norm outside the ball
    for start in range(0, m.shape[2], _CHUNK):  # blocks of voxels: the temporaries stay in cache
        blk, act = m[:, :, start:start + _CHUNK], active[start:start + _CHUNK]
        n_act = int(act.sum())
        if n_act == 0:
            continue
        if n_act < act.numel() // 4:
            idx = torch.nonzero(act).squeeze(1)
            blk[:, :, idx] = _clip_unit(blk[:, :, idx] / radius) * radius
        else:  # inside the ball the clip is the identity up to rounding; keep those voxels exactly
            blk.copy_(torch.where(act, _clip_unit(blk / radius) * radius, blk))
    return _result(q, out, inplace)


#: voxels per block of the spectral projection (its 60-odd temporaries then fit in the cache)
_CHUNK = 65536


def _clip_unit(m: torch.Tensor) -> torch.Tensor:
    """Singular values of each ``m[:, :, k]`` clipped at 1: closed form for 3 columns, SVD otherwise."""
    if m.shape[1] == 3:  # float64: in float32 the closed form loses all digits for matrices far outside the ball
        return _spectral_clip_three(m.double()).to(m.dtype)
    u, sv, vh = torch.linalg.svd(m.permute(2, 0, 1), full_matrices=False)
    return ((u * sv.clamp(max=1.0).unsqueeze(-2)) @ vh).permute(1, 2, 0)


def _spectral_clip_three(m: torch.Tensor) -> torch.Tensor:
    """``M f(M^T M)`` with ``f(l) = min(1, 1/sqrt(l))`` for matrices ``m[c, 3, K]``: singular values clipped at 1.

    Closed form on the 3x3 Gram matrix S (Smith's trigonometric eigenvalues;
    the eigenvector w of the best-separated eigenvalue l_s from cross products
    of the rows of ``S - l_s I``)::

        f(S) = a I + b S + (f(l_s) - a - b l_s) w w^T

    where ``a + b l = f(l)`` on the other two eigenvalues (Lagrange
    interpolation, b bounded by max|f'| = 1/2, so near-equal eigenvalues are
    harmless). Exact for every eigenvalue pattern up to rounding, but the
    trigonometric eigenvalues lose half the digits at double roots: in float64
    (as :func:`project_spectral` runs it) within 1e-5 of an SVD for matrices up
    to 1e3 times the radius; float32 is only good near the ball (errors of
    order one at 10 times the radius).
    """
    # every quantity is a (K,) tensor: no stacking, no reductions over short axes (slow in torch on the CPU)
    col = [m[:, i] for i in range(3)]  # (c, K) each
    s00, s11, s22 = [(v * v).sum(0) for v in col]
    s01, s02, s12 = (col[0] * col[1]).sum(0), (col[0] * col[2]).sum(0), (col[1] * col[2]).sum(0)
    qm = (s00 + s11 + s22) / 3
    d00, d11, d22 = s00 - qm, s11 - qm, s22 - qm
    p = torch.sqrt((d00 * d00 + d11 * d11 + d22 * d22 + 2 * (s01 * s01 + s02 * s02 + s12 * s12)) / 6)
    inv = torch.where(p > 0, p, torch.ones_like(p)).reciprocal_()
    det = (d00 * (d11 * d22 - s12 * s12) - s01 * (s01 * d22 - s12 * s02) + s02 * (s01 * s12 - d11 * s02)) * inv**3
    phi = torch.acos((det / 2).clamp_(-1.0, 1.0)) / 3
    l1 = qm + 2 * p * torch.cos(phi)
    l3 = qm + 2 * p * torch.cos(phi + 2 * torch.pi / 3)
    l2 = 3 * qm - l1 - l3
    top = (l1 - l2) >= (l2 - l3)
    ls = torch.where(top, l1, l3)
    hi, lo = torch.where(top, l2, l1), torch.where(top, l3, l2)

    def f(lam):
        return lam.clamp(min=1.0).rsqrt_()

    gap = hi - lo
    pos = gap > 0
    b = torch.where(pos, (f(hi) - f(lo)) / torch.where(pos, gap, torch.ones_like(gap)), torch.zeros_like(gap))
    a = f(lo) - b * lo
    k = f(ls) - a - b * ls
    # eigenvector of ls: the largest of the cross products of two rows of S - ls I
    t00, t11, t22 = s00 - ls, s11 - ls, s22 - ls
    rows = ((t00, s01, s02), (s01, t11, s12), (s02, s12, t22))
    best, bn = None, None
    for i, j in ((0, 1), (0, 2), (1, 2)):
        u, v = rows[i], rows[j]
        cr = (u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0])
        n2 = cr[0] * cr[0] + cr[1] * cr[1] + cr[2] * cr[2]
        if best is None:
            best, bn = cr, n2
        else:
            take = n2 > bn
            best = tuple(torch.where(take, x, y) for x, y in zip(cr, best))
            bn = torch.where(take, n2, bn)
    ok = bn > 0
    scale = torch.where(ok, bn, torch.ones_like(bn)).rsqrt_()
    k = torch.where(ok, k, torch.zeros_like(k)) * scale * scale  # S = l_s I: f(S) = a I + b S already
    w = best
    # rows of M times F = a I + b S + k w w^T (symmetric), w unnormalised (k carries 1 / |w|^2)
    S = ((s00, s01, s02), (s01, s11, s12), (s02, s12, s22))
    F = [[b * S[i][j] + k * w[i] * w[j] + (a if i == j else 0.0) for j in range(3)] for i in range(3)]
    return torch.stack([col[0] * F[0][i] + col[1] * F[1][i] + col[2] * F[2][i] for i in range(3)], dim=1)


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
        """Projection onto the dual ball; overwrites `q` (the solver's buffer)."""
        if self.coupling == "nuclear":
            return project_spectral(q, self.radius, inplace=True)
        return project_l2(q, self.radius, _norm_dims(q, self.coupling), inplace=True)

    def value(self, g) -> float:
        if self.coupling == "nuclear" and g.ndim > 4:
            c, d = g.shape[0], g.shape[1]
            m = g.reshape(c, d, -1).permute(2, 0, 1)
            return self.radius * float(torch.linalg.svdvals(m).sum())
        return self.radius * float(torch.linalg.vector_norm(g, dim=_norm_dims(g, self.coupling)).sum())


class _GradientBall(_Ball):
    """A norm of the gradient, ``weight * sum_v ||grad x (v)||``: one block, no auxiliary variable."""

    def __init__(self, weight: float, coupling: str, name: str):
        super().__init__(_check_weight(weight, f"{name} weight"), coupling)
        self.weight = self.radius

    def operator(self, shape):
        return Gradient(shape)

    def aux_shapes(self, shape):
        return []

    def blocks(self, shape):
        return [(self, {0: self.operator(shape)})]


class TV(_GradientBall):
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
        super().__init__(weight, coupling, "TV")

    def __repr__(self):
        return f"TV({self.weight:g}, coupling={self.coupling!r})"


class TNV(_GradientBall):
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
        super().__init__(weight, "nuclear", "TNV")

    def __repr__(self):
        return f"TNV({self.weight:g})"


class DTV(_GradientBall):
    """Directional TV ``weight * sum_v |(I - f xi xi^T) grad x (v)|`` per channel, guided by edge normals xi.

    Parameters
    ----------
    weight : float
        Regularisation weight >= 0, as for :class:`TV`.
    xi : torch.Tensor, shape (3, ny, nz, nx)
        Edge normals of a guide volume, ``|xi| <= 1``
        (:func:`~chemtomo.core.diff.edge_directions`), shared by all channels.
    edge_fraction : float, default 0.98
        Fraction f of the normal component removed at the guide's edges.

    Notes
    -----
    Ehrhardt & Betcke (2016), used for multi-channel and spectral CT: a
    channel's edge parallel to a guide edge is (almost) free, so the element
    maps may jump where the HAADF volume jumps without the contrast loss of
    TV, while noise away from guide edges is penalised as by TV. The
    conjugate's prox is the TV one (l2 ball per channel and voxel).
    """

    def __init__(self, weight: float, xi: torch.Tensor, edge_fraction: float = 0.98):
        super().__init__(weight, "none", "DTV")
        self.xi, self.edge_fraction = xi, float(edge_fraction)

    def operator(self, shape):
        return DirectionalGradient(shape, self.xi, self.edge_fraction)

    def __repr__(self):
        return f"DTV({self.weight:g}, edge_fraction={self.edge_fraction:g})"


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
