"""EDX elemental maps: X-ray line counts per pixel from dose, cross-section and detector.

Expected counts of line ``l`` of element ``e`` in pixel ``(a, y, u)``::

    E = d_a * A_pix * sigma_x(l) * Omega / (4 pi) * eta * rho_e[a, y, u] * T

* ``d_a``: dose of tilt ``a`` in e-/A^2; ``A_pix = (10 voxel_size)^2`` in A^2;
* ``rho_e``: areal density in atoms/A^2 (:func:`~chemtomo.simulate.haadf.areal_density`);
* ``Omega``: detector solid angle in sr; ``eta``: detector efficiency (0..1);
* ``T``: mean self-absorption transmission (1 without absorption);
* ``sigma_x(l)``: the X-ray production cross-section of the line (A^2 per atom), from the
  vacancy cross-section, fluorescence yield and radiative rates of :mod:`chemtomo.physics.xray`.
"""

from __future__ import annotations


import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError
from ..physics.xray import EDXDetector, default_line, line_energy, parse_line, xray_cross_section
from .acquisition import SweptProjector, as_projector, project
from ..physics.counts import as_rng, poisson
from .haadf import _dose_vector, areal_density
from ..physics.elements import AVOGADRO, atomic_number, material_densities, material_elements


def detector_direction(angle: float, takeoff_angle: float, azimuth: float) -> np.ndarray:
    """Unit vector from the specimen to the detector in volume coordinates ``(y, z, x)`` at tilt `angle` (deg).

    In the lab frame (u, y, w; beam along +w) the detector lies at
    ``(cos a cos phi, cos a sin phi, -sin a)`` for takeoff ``a`` and azimuth
    ``phi``; the volume is rotated by the tilt as in the projector
    (``u = x cos t + z sin t``).
    """
    t, a, p = np.deg2rad([angle, takeoff_angle, azimuth])
    du, dy, dw = np.cos(a) * np.cos(p), np.cos(a) * np.sin(p), -np.sin(a)
    return np.array([dy, du * np.sin(t) + dw * np.cos(t), du * np.cos(t) - dw * np.sin(t)])


def attenuation(mu, direction) -> np.ndarray:
    """Optical depth from every voxel to outside the volume along `direction`.

    ``tau(r) = int_0^inf mu(r + s d) ds`` sampled on a grid aligned with `d`
    (trilinear interpolation, unit steps, trapezoid rule).

    Parameters
    ----------
    mu : array (ny, nz, nx)
        Linear attenuation coefficient per voxel length.
    direction : array (3,)
        Direction ``(dy, dz, dx)``; normalised here.
    """
    mu = np.asarray(mu, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    helper = np.eye(3)[np.argmin(np.abs(d))]
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(d, e1)
    centre = (np.array(mu.shape) - 1) / 2.0
    r = int(np.ceil(0.5 * np.linalg.norm(mu.shape))) + 1
    t = np.arange(-r, r + 1, dtype=np.float64)
    t1, t2, s = np.meshgrid(t, t, t, indexing="ij")
    col = (slice(None), None, None, None)
    pts = centre[col] + e1[col] * t1 + e2[col] * t2 + d[col] * s
    samples = ndimage.map_coordinates(mu, pts, order=1, mode="constant", cval=0.0)
    tau_grid = np.cumsum(samples[:, :, ::-1], axis=2)[:, :, ::-1] - 0.5 * samples
    idx = np.indices(mu.shape).reshape(3, -1).astype(np.float64) - centre[:, None]
    coords = np.stack([e1 @ idx, e2 @ idx, d @ idx]) + r
    return ndimage.map_coordinates(tau_grid, coords, order=1, mode="nearest").reshape(mu.shape)


def linear_attenuation(phantom: dict, energy: float, voxel_size: float) -> np.ndarray:
    """Linear attenuation per voxel length at `energy` keV: ``sum_m c_m sum_e rho_em mu_e(E) voxel_size 1e-7``.

    ``rho_em`` is the mass density (g/cm^3) of element ``e`` in material ``m`` (the pure element's
    ``xraylib.ElementDensity``, or its share of a compound: :func:`chemtomo.physics.elements.material_densities`
    times the atomic weight), ``mu_e`` is ``xraylib.CS_Total`` (cm^2/g); 1e-7 converts 1/cm to 1/nm.
    """
    import xraylib

    mu = 0.0
    for name, c in phantom.items():
        for el, n in material_densities(name).items():
            z = atomic_number(el)
            rho = n * xraylib.AtomicWeight(z) / AVOGADRO * 1e21  # g/cm^3
            mu = mu + np.asarray(c, dtype=np.float64) * (rho * xraylib.CS_Total(z, energy) * 1e-7 * voxel_size)
    return mu


def holder_shadow(angles, shadow_angle: float | None, *, side: int = 1, ramp: float = 0.0) -> np.ndarray:
    """Per-tilt transmission of the holder shadow (1 = unshadowed, 0 = fully shadowed).

    Tilts with ``side * angle >= shadow_angle`` are fully shadowed (0 counts);
    below ``shadow_angle - ramp`` they are free (1); in between the factor falls
    linearly. ``shadow_angle=None`` means no shadowing.
    """
    a = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    if shadow_angle is None:
        return np.ones_like(a)
    if side not in (1, -1) or ramp < 0:
        raise ChemtomoError(f"side must be +1 or -1 and ramp >= 0 degrees, got side={side}, ramp={ramp}")
    x = side * a
    if ramp == 0:
        return (x < shadow_angle).astype(np.float64)
    return np.clip((shadow_angle - x) / ramp, 0.0, 1.0)


def edx_expected(phantom: dict, geometry, lines=None, *, voxel_size: float, dose, detector: EDXDetector = EDXDetector(),
                 beam_energy: float = 200.0, absorption: bool = False) -> dict:
    """Noise-free EDX line maps in counts per pixel (see module notes for the equation).

    Parameters
    ----------
    phantom : dict of str to array (ny, nz, nx)
        Volume fraction (0..1) per material: element or compound (:func:`.haadf.areal_density`).
    geometry : TiltGeometry or projector
        Tilt geometry (degrees) or a projector with ``.geometry`` (e.g. ``SweptProjector``).
    lines : sequence of str, optional
        Lines to map, e.g. ``["Au_La", "Ag_La"]``; :func:`default_line` of every element if omitted.
    voxel_size : float
        Voxel edge and pixel size in nm.
    dose : float or array (n_tilts,)
        Dose per tilt in e-/A^2.
    detector : EDXDetector
        Solid angle, efficiency, takeoff angle and azimuths.
    beam_energy : float, default 200
        Beam energy in keV.
    absorption : bool, default False
        Apply Beer-Lambert self-absorption towards each detector azimuth, per tilt,
        at the principal line energy (slow: one 3D attenuation map per tilt, line and azimuth).

    Returns
    -------
    maps : dict of str to ndarray (n_tilts, ny, nu)
        Expected counts per pixel for each line.
    """
    elements = material_elements(phantom)
    lines = [default_line(el) for el in elements] if lines is None else list(lines)
    proj = as_projector(geometry)
    geom = proj.geometry
    d = _dose_vector(dose, geom.n_tilts)
    scale = d * (10.0 * voxel_size) ** 2 * detector.solid_angle / (4 * np.pi) * detector.efficiency
    areal = None if absorption else areal_density(phantom, proj, voxel_size)
    out = {}
    for line in lines:
        el, _ = parse_line(line)
        if el not in elements:
            raise ChemtomoError(f"line {line} needs element {el} in the phantom, which has {', '.join(elements)}")
        sig = xray_cross_section(line, beam_energy)
        rho = areal[el] if areal is not None else _absorbed_areal(phantom, el, proj, voxel_size, line, detector)
        out[line] = sig * rho * scale[:, None, None]
    return out


def _absorbed_areal(phantom, el, proj, voxel_size, line, detector):
    geom = proj.geometry
    mu = linear_attenuation(phantom, line_energy(line), voxel_size)
    dens = sum(np.asarray(c, dtype=np.float64) * material_densities(name).get(el, 0.0)
               for name, c in phantom.items())  # atoms/nm^3
    out = np.empty(geom.projection_shape)
    for a, angle in enumerate(geom.angles):
        sub = geom[a : a + 1]
        p = SweptProjector(sub, proj.sweep, proj.n_sub) if isinstance(proj, SweptProjector) else as_projector(sub)
        trans = np.mean([np.exp(-attenuation(mu, detector_direction(angle, detector.takeoff_angle, az)))
                         for az in detector.azimuths], axis=0)
        out[a] = project(p, dens * trans)[0]
    return out * (voxel_size / 100.0)


def edx_counts(expected: dict, *, background: float = 0.0, rng=None) -> dict:
    """Poisson EDX maps from expected counts, with an optional uniform background.

    Parameters
    ----------
    expected : dict of str to array
        Expected counts per pixel, e.g. from :func:`edx_expected`.
    background : float, default 0
        Uniform background added before the draw, as a fraction of the mean
        expected count inside the particle footprint (pixels above 5 % of the map's maximum).
    rng : None, int or numpy.random.Generator
        One generator is used for all maps, in the order of `expected`.

    Returns
    -------
    counts : dict of str to ndarray of int64
    """
    if not (np.isfinite(background) and background >= 0):
        raise ChemtomoError(f"background must be a fraction >= 0 of the particle signal, got {background}")
    gen = as_rng(rng)
    out = {}
    for name, lam in expected.items():
        lam = np.clip(np.asarray(lam, dtype=np.float64), 0, None)
        if background > 0 and lam.max() > 0:
            lam = lam + background * lam[lam > 0.05 * lam.max()].mean()
        out[name] = poisson(lam, gen)
    return out
