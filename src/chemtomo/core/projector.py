"""Batched single-axis parallel-beam projector (Joseph's method, exact adjoint).

Every slice perpendicular to the tilt axis sees the same 2D geometry, so the
projector is one sparse matrix ``W`` of shape ``(n_tilts * nu, nz * nx)``
applied to all ``ny`` slices at once: a sparse-times-dense product whose
inner dimension is the slice index. ``W`` holds Joseph's weights: each ray
is sampled once per row (or column) along its major direction with linear
interpolation along the other one, times the path length per step. The back
projection multiplies by the stored transpose, so the adjoint is exact to
rounding. The same code runs on CPU and CUDA (torch sparse CSR).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from .geometry import TiltGeometry
from .operators import Operator

#: slices processed together on the CPU; keeps one chunk of the volume in cache.
_CPU_CHUNK_BYTES = 8 * 2**20
_MIN_CHUNK = 32


def joseph_matrix(geometry: TiltGeometry) -> sp.csr_matrix:
    """The 2D projection matrix of `geometry` as SciPy CSR, float32.

    Rows index ``a * nu + i`` (tilt, detector pixel), columns ``k * nx + j``
    (z row, x column) of one slice ``v[y]``.
    """
    _, nz, nx = geometry.volume_shape
    nu = geometry.n_u
    u = np.arange(nu, dtype=np.float64) - (nu - 1) / 2 - geometry.axis_offset
    rows, cols, vals = [], [], []
    for a, theta in enumerate(np.deg2rad(geometry.angles)):
        c, s = np.cos(theta), np.sin(theta)
        if abs(c) >= abs(s):  # step along z, interpolate in x
            major = np.arange(nz, dtype=np.float64) - (nz - 1) / 2
            minor = (u[:, None] - major[None, :] * s) / c + (nx - 1) / 2
            n_minor, length = nx, 1.0 / abs(c)
            to_col = lambda k, j: k * nx + j  # noqa: E731
        else:  # step along x, interpolate in z
            major = np.arange(nx, dtype=np.float64) - (nx - 1) / 2
            minor = (u[:, None] - major[None, :] * c) / s + (nz - 1) / 2
            n_minor, length = nz, 1.0 / abs(s)
            to_col = lambda j, k: k * nx + j  # noqa: E731
        lo = np.floor(minor)
        frac = minor - lo
        lo = lo.astype(np.int64)
        ray = np.broadcast_to(a * nu + np.arange(nu)[:, None], minor.shape)
        step = np.broadcast_to(np.arange(major.size)[None, :], minor.shape)
        for idx, w in ((lo, 1.0 - frac), (lo + 1, frac)):
            ok = (idx >= 0) & (idx < n_minor) & (w > 0)
            rows.append(ray[ok])
            cols.append(to_col(step[ok], idx[ok]))
            vals.append((w[ok] * length).astype(np.float32))
    shape = (geometry.n_tilts * nu, nz * nx)
    m = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape, dtype=np.float32
    )
    m.sum_duplicates()
    return m


def _to_torch_csr(m: sp.csr_matrix, device) -> torch.Tensor:
    # 32-bit indices halve the index traffic of the product (measured 10-30 % faster on CPU)
    idx = np.int32 if m.nnz < 2**31 - 1 else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        return _csr(m, idx, device)


def _csr(m, idx, device):
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(idx)),
        torch.from_numpy(m.indices.astype(idx)),
        torch.from_numpy(m.data),
        size=m.shape,
        dtype=torch.float32,
        check_invariants=False,
    ).to(device)


class Projector(Operator):
    """Parallel-beam tilt-series projector ``v[y, z, x] -> p[a, y, u]``.

    Parameters
    ----------
    geometry : TiltGeometry
        Angles (degrees), volume shape, detector width and axis offset.

    Notes
    -----
    Values are line integrals in voxel lengths: a one-voxel slab of value 1
    projects to 1 at 0 degrees. The device follows the input: NumPy arrays
    and CPU tensors run on the CPU, CUDA tensors on their GPU.

    Examples
    --------
    >>> import numpy as np
    >>> A = Projector(TiltGeometry([0.0, 90.0], (2, 5, 5)))
    >>> p = A(np.ones((2, 5, 5), np.float32))
    >>> p.shape, float(p[0, 0, 2]), float(p[1, 0, 2])
    ((2, 2, 5), 5.0, 5.0)
    """

    def __init__(self, geometry: TiltGeometry):
        super().__init__(geometry.volume_shape, geometry.projection_shape)
        self.geometry = geometry
        self._scipy = None
        self._mats: dict = {}

    def __repr__(self):
        return f"Projector({self.geometry!r})"

    def matrix(self) -> sp.csr_matrix:
        """The 2D projection matrix (SciPy CSR), built on first use."""
        if self._scipy is None:
            self._scipy = joseph_matrix(self.geometry)
        return self._scipy

    def _matrices(self, device):
        key = str(device)
        if key not in self._mats:
            m = self.matrix()
            self._mats[key] = (_to_torch_csr(m, device), _to_torch_csr(m.T.tocsr(), device))
        return self._mats[key]

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        ny, nz, nx = self.domain_shape
        n_t, _, nu = self.range_shape
        w, _ = self._matrices(x.device)
        out = torch.empty((n_t, ny, nu), dtype=torch.float32, device=x.device)
        flat = x.reshape(ny, nz * nx)
        for sl in _chunks(ny, max(nz * nx, n_t * nu), x.device):
            res = torch.sparse.mm(w, flat[sl].T.contiguous())  # (n_t * nu, chunk)
            out[:, sl, :] = res.reshape(n_t, nu, -1).transpose(1, 2)
        return out

    def _apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        ny, nz, nx = self.domain_shape
        n_t, _, nu = self.range_shape
        _, wt = self._matrices(y.device)
        out = torch.empty((ny, nz * nx), dtype=torch.float32, device=y.device)
        for sl in _chunks(ny, max(nz * nx, n_t * nu), y.device):
            cols = y[:, sl, :].transpose(1, 2).reshape(n_t * nu, -1)  # (n_t * nu, chunk), one copy
            out[sl] = torch.sparse.mm(wt, cols).T
        return out.reshape(ny, nz, nx)


def _chunks(ny: int, n_per_slice: int, device) -> list[slice]:
    """Slabs of slices whose larger side stays in cache on the CPU; one slab on a GPU."""
    if device.type != "cpu":
        return [slice(0, ny)]
    # at least 32 slices, so that streaming the matrix once per slab stays cheap next to the products
    chunk = min(ny, max(_MIN_CHUNK, _CPU_CHUNK_BYTES // (4 * n_per_slice)))
    return [slice(s, min(s + chunk, ny)) for s in range(0, ny, chunk)]
