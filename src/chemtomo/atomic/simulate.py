"""Atomic-resolution HAADF tilt series of an atomic model (incoherent Gaussian-atom model).

Every atom scatters ``dose * k Z^gamma`` electrons onto the annular detector
(``k`` = :data:`chemtomo.physics.scattering.SCATTERING_CONSTANT`, A^2), spread as an
isotropic Gaussian of standard deviation `sigma` (probe size and thermal
vibration together) and integrated exactly over each pixel. Channelling and
dynamical effects are left out, as atomic electron tomography assumes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from ..core.errors import ChemtomoError
from ..core.geometry import TiltGeometry
from ..core.atoms import Atoms
from ..physics.counts import poisson
from ..physics.scattering import atom_cross_section, pixel_weights


def _voxel_coords(atoms: Atoms, voxel_size: float) -> np.ndarray:
    return atoms.positions / voxel_size                    # x, y, z in voxels from voxel (0, 0, 0)


def project_atoms(atoms: Atoms, geometry: TiltGeometry, voxel_size: float, *, sigma: float = 0.45,
                  gamma: float = 1.7, dose: float = 1.0) -> np.ndarray:
    """Expected HAADF counts of `atoms` at every tilt of `geometry`, shape ``(n_tilts, ny, nu)``.

    Parameters
    ----------
    atoms : Atoms
        Positions in Angstrom from the centre of voxel (0, 0, 0) (see :func:`~chemtomo.atomic.place`).
    geometry : TiltGeometry
        Angles and sizes; pixel size = `voxel_size`.
    voxel_size : float
        Voxel and pixel edge in Angstrom.
    sigma : float, default 0.45
        Standard deviation of the projected atom (probe and vibration), Angstrom.
    gamma : float, default 1.7
        Z-contrast exponent.
    dose : float, default 1
        Electron dose per projection in e/A^2; with 1 the result is the
        scattering cross-section density (A^2 per pixel).

    Notes
    -----
    Exact for the model: each atom is a separable Gaussian, so one tilt is the
    matrix product ``Gy.T @ (w * Gu)`` of per-atom pixel weights; no voxel grid
    is involved. It matches :class:`~chemtomo.core.projector.Projector` applied
    to :func:`render_atoms` up to the projector's interpolation error.
    """
    if voxel_size <= 0 or sigma <= 0 or dose <= 0:
        raise ChemtomoError(f"voxel_size ({voxel_size}), sigma ({sigma}) and dose ({dose}) must be positive")
    ny, nz, nx = geometry.volume_shape
    nu = geometry.n_u or nx
    x, y, z = _voxel_coords(atoms, voxel_size).T
    w = dose * atom_cross_section(atoms.species, gamma)
    s = sigma / voxel_size
    gy = pixel_weights(y, ny, s)
    xc, zc = x - (nx - 1) / 2, z - (nz - 1) / 2
    out = np.empty(geometry.projection_shape)
    for a, theta in enumerate(np.deg2rad(geometry.angles)):
        u = xc * np.cos(theta) + zc * np.sin(theta) + geometry.axis_offset + (nu - 1) / 2
        out[a] = gy.T @ (w[:, None] * pixel_weights(u, nu, s))
    return out


def render_atoms(atoms: Atoms, shape, voxel_size: float, *, sigma: float = 0.45, gamma: float = 1.7,
                 dose: float = 1.0) -> np.ndarray:
    """The volume ``v[y, z, x]`` whose projections :func:`project_atoms` gives: each atom a voxel-integrated Gaussian.

    Every atom adds ``dose * k Z^gamma`` in total (sum over its voxels), so the
    volume is the ground truth that a reconstruction of the counts estimates.
    """
    ny, nz, nx = shape
    coords = _voxel_coords(atoms, voxel_size)
    w = dose * atom_cross_section(atoms.species, gamma)
    s = sigma / voxel_size
    r = int(np.ceil(4 * s))
    offs = np.arange(-r, r + 1)
    base = np.rint(coords).astype(int)                     # nearest voxel, x y z
    idx = base[:, :, None] + offs                          # (n, 3, 2r+1)
    edges = idx - 0.5
    g = 0.5 * (erf((edges + 1 - coords[:, :, None]) / (np.sqrt(2) * s)) - erf((edges - coords[:, :, None]) / (np.sqrt(2) * s)))
    vals = w[:, None, None, None] * g[:, 1, :, None, None] * g[:, 2, None, :, None] * g[:, 0, None, None, :]
    iy = np.broadcast_to(idx[:, 1, :, None, None], vals.shape)
    iz = np.broadcast_to(idx[:, 2, None, :, None], vals.shape)
    ix = np.broadcast_to(idx[:, 0, None, None, :], vals.shape)
    ok = (iy >= 0) & (iy < ny) & (iz >= 0) & (iz < nz) & (ix >= 0) & (ix < nx)
    flat = np.ravel_multi_index((iy[ok], iz[ok], ix[ok]), shape)
    return np.bincount(flat, weights=vals[ok], minlength=int(np.prod(shape))).reshape(shape)


def atomic_tilt_series(atoms: Atoms, geometry: TiltGeometry, voxel_size: float, *, dose: float = 1e5,
                       sigma: float = 0.45, gamma: float = 1.7, background: float = 0.0, rng=None) -> np.ndarray:
    """Poisson-noisy HAADF counts of `atoms`: :func:`project_atoms` at `dose` (e/A^2 per projection).

    `background` adds a uniform expected count per pixel before the noise.
    """
    expected = project_atoms(atoms, geometry, voxel_size, sigma=sigma, gamma=gamma, dose=dose) + background
    return poisson(expected, rng=rng)
