"""Batched Gaussian peak fitting in 2D and 3D: many peaks at once, no Python loop per peak.

Each peak is an axis-aligned Gaussian on a constant background,
``b + h exp(-sum_d (p_d - c_d)^2 / (2 s_d^2))``, fitted by Levenberg-Marquardt
to the pixels (voxels) of a ``(2r+1)^D`` box around its starting position. All
boxes are fitted together: the normal equations are ``(n, P, P)`` arrays solved
in one :func:`numpy.linalg.solve` per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..core.errors import ChemtomoError


@dataclass(frozen=True)
class Peaks:
    """Fitted Gaussian peaks; positions in array-index coordinates (``(n, ndim)``, pixels or voxels)."""

    positions: np.ndarray
    height: np.ndarray
    sigma: np.ndarray        # (n, ndim), pixels
    background: np.ndarray
    rfactor: np.ndarray      # sum |residual| / sum |data| over each box

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def volume(self) -> np.ndarray:
        """Integrated intensity of each Gaussian above its background: ``h (2 pi)^(D/2) prod(s)``."""
        d = self.positions.shape[1]
        return self.height * (2 * np.pi) ** (d / 2) * np.prod(self.sigma, axis=1)

    def take(self, index) -> "Peaks":
        return Peaks(self.positions[index], self.height[index], self.sigma[index], self.background[index],
                     self.rfactor[index])

    @staticmethod
    def concat(parts) -> "Peaks":
        parts = list(parts)
        return Peaks(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                       ("positions", "height", "sigma", "background", "rfactor")))


def local_maxima(image: np.ndarray, threshold: float, *, size: int = 3) -> np.ndarray:
    """Integer positions ``(n, ndim)`` of the local maxima (in a `size`-wide box) above `threshold`."""
    image = np.asarray(image)
    mx = ndimage.maximum_filter(image, size=size, mode="constant", cval=-np.inf)
    return np.argwhere((image == mx) & (image > threshold))


def _offsets(radius: int, ndim: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return np.stack(np.meshgrid(*(r,) * ndim, indexing="ij"), -1).reshape(-1, ndim).astype(float)


def boxes(image: np.ndarray, centres: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(n, (2r+1)^D)`` of the boxes around the nearest pixels of `centres`, zero outside; and those pixels."""
    base = np.clip(np.rint(centres).astype(int), 0, np.array(image.shape) - 1)
    padded = np.pad(image, radius)
    offs = _offsets(radius, image.ndim).astype(int)
    idx = base[:, None, :] + offs[None] + radius
    return padded[tuple(np.moveaxis(idx, -1, 0))], base


def gaussian_values(offsets: np.ndarray, centre, height, sigma) -> np.ndarray:
    """``h exp(-sum (p - c)^2 / 2 s^2)`` at `offsets` (m, D) for n peaks: shape (n, m)."""
    d = (offsets[None] - centre[:, None, :]) / sigma[:, None, :]
    return height[:, None] * np.exp(-0.5 * np.sum(d * d, axis=-1))


def fit_gaussians(image: np.ndarray, centres, *, radius: int = 2, sigma: float | np.ndarray = 1.0,
                  background: bool = True, iterations: int = 30, data=None) -> Peaks:
    """Fit one Gaussian per starting position, all at once.

    Parameters
    ----------
    image : ndarray, 2D or 3D
    centres : array (n, ndim)
        Starting positions in index coordinates; the box is centred on the nearest pixel.
    radius : int, default 2
        Box half-width in pixels: the fit sees ``(2 radius + 1)^ndim`` values.
    sigma : float or array (n, ndim), default 1
        Starting standard deviation in pixels.
    background : bool, default True
        Fit a constant background per box; otherwise it is fixed at 0.
    iterations : int, default 30
        Levenberg-Marquardt iterations.
    data : array (n, m), optional
        Box values to fit instead of reading them from `image` (used for
        fitting each peak with its neighbours' models removed).

    Returns
    -------
    Peaks
        Positions are bounded to the box (``|c - centre| <= radius``), sigmas to
        ``[0.3, radius]`` pixels, heights to be positive.
    """
    image = np.asarray(image, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, image.ndim)
    n, dim = centres.shape
    vals, base = boxes(image, centres, radius)
    if data is not None:
        vals = np.asarray(data, dtype=np.float64)
    offs = _offsets(radius, dim)
    c = centres - base
    s = np.broadcast_to(np.asarray(sigma, float), (n, dim)).copy()
    b = np.minimum(vals.min(axis=1), np.median(vals, axis=1)) if background else np.zeros(n)
    centre_val = vals[:, len(offs) // 2]
    h = np.maximum(centre_val - b, 1e-12 * np.abs(vals).max(initial=1.0) + 1e-30)
    lam = np.full(n, 1e-2)

    def evaluate(b, h, c, s):
        d = offs[None] - c[:, None, :]
        e = np.exp(-0.5 * np.sum((d / s[:, None, :]) ** 2, axis=-1))
        return b[:, None] + h[:, None] * e, e, d

    model, e, d = evaluate(b, h, c, s)
    cost = np.sum((model - vals) ** 2, axis=1)
    for _ in range(iterations):
        he = h[:, None] * e
        cols = ([np.ones_like(e)] if background else []) + [e]
        cols += [he * d[..., k] / s[:, None, k] ** 2 for k in range(dim)]
        cols += [he * d[..., k] ** 2 / s[:, None, k] ** 3 for k in range(dim)]
        J = np.stack(cols, axis=-1)                          # (n, m, P)
        JtJ = np.einsum("nmp,nmq->npq", J, J)
        g = np.einsum("nmp,nm->np", J, model - vals)
        diag = np.einsum("npp->np", JtJ)
        A = JtJ + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(J.shape[-1])
        step = -np.linalg.solve(A, g[..., None])[..., 0]
        k = 0
        nb = b + step[:, 0] if background else b
        k = 1 if background else 0
        nh = np.maximum(h + step[:, k], 1e-30)
        nc = np.clip(c + step[:, k + 1:k + 1 + dim], -radius, radius)
        ns = np.clip(s + step[:, k + 1 + dim:], 0.3, float(radius))
        nmodel, ne, nd = evaluate(nb, nh, nc, ns)
        ncost = np.sum((nmodel - vals) ** 2, axis=1)
        better = ncost < cost
        lam = np.where(better, lam * 0.3, lam * 10.0)
        b, h = np.where(better, nb, b), np.where(better, nh, h)
        c, s = np.where(better[:, None], nc, c), np.where(better[:, None], ns, s)
        model = np.where(better[:, None], nmodel, model)
        e = np.where(better[:, None], ne, e)
        d = np.where(better[:, None, None], nd, d)
        cost = np.where(better, ncost, cost)
    rfac = np.sum(np.abs(model - vals), axis=1) / np.maximum(np.sum(np.abs(vals), axis=1), 1e-30)
    return Peaks(base + c, h, s, b, rfac)


def render_peaks(shape, peaks: Peaks, *, radius: int | None = None) -> np.ndarray:
    """Sum of the fitted Gaussians (without backgrounds) sampled at pixel centres, each cut to a box."""
    out = np.zeros(shape)
    if len(peaks) == 0:
        return out
    radius = radius if radius is not None else int(np.ceil(3 * peaks.sigma.max()))
    base = np.rint(peaks.positions).astype(int)
    offs = _offsets(radius, len(shape))
    vals = gaussian_values(offs, peaks.positions - base, peaks.height, peaks.sigma)
    idx = base[:, None, :] + offs.astype(int)[None]
    ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=-1)
    flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
    return np.bincount(flat, weights=vals[ok], minlength=out.size).reshape(shape)


def suppress(points: np.ndarray, scores: np.ndarray, min_distance: float, *, fixed=None) -> np.ndarray:
    """Greedy non-maximum suppression: indices of points kept, highest score first, none closer than `min_distance`.

    Points within `min_distance` of any of the `fixed` points are dropped. The
    greedy order is resolved in rounds over the neighbour pairs (vectorised).
    """
    points = np.asarray(points, float)
    alive = np.ones(len(points), bool)
    if len(points) == 0:
        return np.zeros(0, int)
    if fixed is not None and len(fixed):
        dist, _ = cKDTree(fixed).query(points, distance_upper_bound=min_distance)
        alive &= ~(dist < min_distance)
    pairs = cKDTree(points).query_pairs(min_distance, output_type="ndarray")
    rank = np.empty(len(points), int)
    rank[np.argsort(-np.asarray(scores), kind="stable")] = np.arange(len(points))
    i, j = pairs.T if len(pairs) else (np.zeros(0, int), np.zeros(0, int))
    hi = np.where(rank[i] < rank[j], i, j)
    lo = np.where(rank[i] < rank[j], j, i)
    kept = np.zeros(len(points), bool)
    while alive.any():
        live = alive[hi] & alive[lo]
        dominated = np.zeros(len(points), bool)
        dominated[lo[live]] = True
        accept = alive & ~dominated
        kept |= accept
        alive &= ~accept
        kill = np.zeros(len(points), bool)
        kill[lo[accept[hi]]] = True
        kill[hi[accept[lo]]] = True
        alive &= ~kill
    return np.flatnonzero(kept)


def check_image(image, ndim: tuple, name: str = "volume") -> np.ndarray:
    """`image` as a finite float array of one of the dimensionalities `ndim`, or a clear error."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim not in ndim:
        raise ChemtomoError(f"{name} must be {' or '.join(f'{d}D' for d in ndim)}, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ChemtomoError(f"{name} contains NaN or infinite values; replace them (e.g. by 0) first")
    return a
