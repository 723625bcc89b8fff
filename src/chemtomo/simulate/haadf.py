"""HAADF-STEM (Z-contrast) projections with dose-dependent counting noise.

Model: every atom of element ``e`` scatters an electron onto the annular
detector with cross-section ``sigma_e = k Z_e^gamma`` (A^2). With ``N`` electrons
per pixel and areal density ``rho_e`` (atoms/A^2, the projected number density)
the expected detected count is ``N sum_e sigma_e rho_e``. The scattering
constant ``k`` (:data:`SCATTERING_CONSTANT`, A^2) is an order-of-magnitude
value from the screened Rutherford cross-section at 200 kV and an inner
detector angle of about 60 mrad (Au: ~0.02 A^2 per atom). The model is linear
in thickness (no channelling or saturation), as tomography assumes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError
from ..physics.elements import atomic_number, material_densities
from ..physics.scattering import SCATTERING_CONSTANT
from .acquisition import as_projector, project
from ..physics.counts import as_rng, gaussian


def areal_density(phantom: dict, geometry, voxel_size: float) -> dict:
    """Projected areal density of each element, in atoms/A^2, ``rho[a, y, u]``.

    ``rho_e = sum_m (A c_m) * voxel_size * n_em / 100``: the projection ``A c_m`` of each material's
    volume fraction is in voxel lengths, times the voxel edge (nm) and the number density of element
    ``e`` in material ``m`` (nm^-3, :func:`chemtomo.physics.elements.material_densities`: the pure solid
    element, or its stoichiometric share of a compound such as TiO2) gives atoms/nm^2, divided by 100
    for atoms/A^2.

    Parameters
    ----------
    phantom : dict of str to array (ny, nz, nx)
        Volume fraction (0..1) per material: an element symbol (the pure solid element) or a compound of
        :data:`chemtomo.physics.elements.COMPOUNDS` (``"TiO2"``); gases as elements (``"O"``) are refused.
    geometry : TiltGeometry or projector
        Tilt geometry, or a projector with ``.geometry`` (e.g. ``SweptProjector``).
    voxel_size : float
        Voxel edge in nm (also the detector pixel size).
    """
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ChemtomoError(f"voxel_size must be a positive size in nm, got {voxel_size}")
    proj = as_projector(geometry)
    out = {}
    for name, vol in phantom.items():
        if np.shape(vol) != tuple(proj.geometry.volume_shape):
            raise ChemtomoError(
                f"phantom[{name!r}] has shape {np.shape(vol)} but the geometry expects {proj.geometry.volume_shape}"
            )
        dens = material_densities(name)
        p = project(proj, vol)
        for el, n in dens.items():
            out[el] = out.get(el, 0.0) + p * (voxel_size * n / 100.0)
    return out


def haadf_expected(phantom: dict, geometry, *, voxel_size: float, dose, gamma: float = 1.7,
                   probe_sigma: float = 0.0) -> np.ndarray:
    """Noise-free HAADF tilt series in detected electrons per pixel.

    ``E[a, y, u] = d_a (10 voxel_size)^2 sum_e k Z_e^gamma rho_e[a, y, u]`` with
    the dose per tilt ``d_a`` (e-/A^2), the pixel area in A^2, the scattering
    constant ``k`` and areal densities ``rho_e`` from :func:`areal_density`,
    then blurred by a Gaussian probe of `probe_sigma` pixels (in y and u).

    Parameters
    ----------
    phantom : dict of str to array (ny, nz, nx)
        Concentration per element, 0..1.
    geometry : TiltGeometry or projector
        Tilt geometry (angles in degrees) or a projector with ``.geometry``.
    voxel_size : float
        Voxel edge and pixel size in nm.
    dose : float or array (n_tilts,)
        Dose per tilt in e-/A^2.
    gamma : float, default 1.7
        Z exponent of the HAADF cross-section.
    probe_sigma : float, default 0
        Standard deviation of the Gaussian probe in pixels.

    Returns
    -------
    expected : ndarray (n_tilts, ny, nu), float64, detected electrons per pixel.
    """
    areal = areal_density(phantom, geometry, voxel_size)
    n_t = as_projector(geometry).geometry.n_tilts
    d = _dose_vector(dose, n_t)
    total = 0.0
    for el, rho in areal.items():
        total = total + SCATTERING_CONSTANT * atomic_number(el) ** gamma * rho
    total = np.broadcast_to(np.asarray(total, dtype=np.float64), (n_t,) + next(iter(areal.values())).shape[1:])
    out = total * (d * (10.0 * voxel_size) ** 2)[:, None, None]
    if probe_sigma > 0:
        out = ndimage.gaussian_filter(out, sigma=(0, probe_sigma, probe_sigma), mode="constant")
    return out


def haadf(phantom: dict, geometry, *, voxel_size: float, dose, gamma: float = 1.7,
          probe_sigma: float = 0.0, read_noise: float = 0.0, rng=None) -> np.ndarray:
    """HAADF tilt series with Poisson counting and Gaussian detector noise.

    Draws ``Poisson(haadf_expected(...))`` and adds ``N(0, read_noise^2)``; see
    :func:`haadf_expected` for the parameters. `read_noise` is in detected
    electrons per pixel.

    Returns
    -------
    image : ndarray (n_tilts, ny, nu), float64, detected electrons per pixel.
    """
    gen = as_rng(rng)
    lam = haadf_expected(phantom, geometry, voxel_size=voxel_size, dose=dose, gamma=gamma, probe_sigma=probe_sigma)
    return gaussian(gen.poisson(np.clip(lam, 0, None)), read_noise, gen)


def _dose_vector(dose, n_tilts: int) -> np.ndarray:
    d = np.asarray(dose, dtype=np.float64)
    if d.ndim == 0:
        d = np.full(n_tilts, float(d))
    if d.shape != (n_tilts,) or not np.all(np.isfinite(d)) or d.min() < 0:
        raise ChemtomoError(
            f"dose must be a dose per tilt >= 0 in e-/A^2, scalar or {n_tilts} values, got shape {np.shape(dose)}"
        )
    return d
