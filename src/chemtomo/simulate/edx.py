"""EDX elemental maps: X-ray line counts per pixel from dose, cross-section and detector.

Expected counts of line ``l`` of element ``e`` in pixel ``(a, y, u)``::

    E = d_a * A_pix * sigma_x(l) * Omega / (4 pi) * eta * rho_e[a, y, u] * T

* ``d_a``: dose of tilt ``a`` in e-/A^2; ``A_pix = (10 voxel_size)^2`` in A^2;
* ``rho_e``: areal density in atoms/A^2 (:func:`~chemtomo.simulate.haadf.areal_density`);
* ``Omega``: detector solid angle in sr; ``eta``: detector efficiency (0..1);
* ``T``: mean self-absorption transmission (1 without absorption);
* ``sigma_x(l) = sum_i V_s * omega_s * R_i`` (A^2 per atom), the X-ray production
  cross-section of the line family: the vacancy cross-section ``V_s`` of its
  initial subshell ``s`` times the fluorescence yield ``omega_s``
  (``xraylib.FluorYield``) times the radiative rate ``R_i`` of each component
  line (``xraylib.RadRate``; e.g. La = L3M5 + L3M4).

Electron-impact ionisation (xraylib only tabulates photon cross-sections) uses
the relativistic Bethe formula (Powell 1976 constants ``b = 0.9``,
``c = 0.65`` per shell electron, applied to every subshell; an approximation
good to tens of percent at TEM voltages)::

    sigma_s = 6.51e-20 n_s b / (E_b E_s) [ln(c E_b / E_s) - ln(1 - beta^2) - beta^2]  cm^2

with ``E_b = m0 c^2 beta^2 / 2`` (keV), ``n_s`` the subshell occupancy and
``E_s`` the edge energy (``xraylib.EdgeEnergy``, keV). L3 and L2 vacancies
include Coster-Kronig transfers (``xraylib.CosKronTransProb``); M-shell
Coster-Kronig transfers are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError
from .acquisition import SweptProjector, as_projector, project
from .noise import as_rng, poisson
from .haadf import _dose_vector, _z, areal_density, number_density

#: line family -> (initial subshell, xraylib component line macros, first = principal line)
LINE_FAMILIES = {
    "Ka": ("K", ("KL3_LINE", "KL2_LINE")),
    "Kb": ("K", ("KM3_LINE", "KM2_LINE")),
    "La": ("L3", ("L3M5_LINE", "L3M4_LINE")),
    "Lb": ("L2", ("L2M4_LINE",)),
    "Ma": ("M5", ("M5N7_LINE", "M5N6_LINE")),
}
_OCCUPANCY = {"K": 2, "L1": 2, "L2": 2, "L3": 4, "M1": 2, "M2": 2, "M3": 4, "M4": 4, "M5": 6}
_M0C2 = 510.99895  # keV
_BETHE_B, _BETHE_C = 0.9, 0.65


@dataclass(frozen=True)
class EDXDetector:
    """EDX detector settings.

    Parameters
    ----------
    solid_angle : float, default 0.7
        Total collection solid angle in sr (0.7 classic SDD, ~4.5 for four-quadrant systems).
    efficiency : float, default 1.0
        Detection efficiency, 0..1, energy independent.
    fwhm_mnka : float, default 130.0
        Energy resolution at Mn Ka (5.899 keV) in eV.
    takeoff_angle : float, default 18.0
        Elevation of the detector above the specimen plane, towards the gun, in degrees.
    azimuths : tuple of float, default (0.0,)
        Detector azimuths in degrees from +u towards +y; the solid angle is split equally.
    escape : float, default 0.0
        Fraction of counts above the Si K edge (1.839 keV) moved to the Si escape peak at ``E - 1.74`` keV.
    pileup : float, default 0.0
        Fraction of line counts lost to pile-up and recorded at the sum of two line energies.
    """

    solid_angle: float = 0.7
    efficiency: float = 1.0
    fwhm_mnka: float = 130.0
    takeoff_angle: float = 18.0
    azimuths: tuple = (0.0,)
    escape: float = 0.0
    pileup: float = 0.0

    def __post_init__(self):
        if not (0 < self.solid_angle <= 4 * np.pi):
            raise ChemtomoError(f"solid_angle must be in (0, 4 pi] sr, got {self.solid_angle}")
        if not (0 < self.efficiency <= 1):
            raise ChemtomoError(f"efficiency must be in (0, 1], got {self.efficiency}")
        if not (self.fwhm_mnka > 0 and 0 <= self.escape < 1 and 0 <= self.pileup < 1 and len(self.azimuths)):
            raise ChemtomoError("fwhm_mnka must be > 0 eV, escape and pileup in [0, 1), azimuths non-empty")


def parse_line(line: str) -> tuple[str, str]:
    """Split ``"Au_La"`` into ``("Au", "La")`` and check the family is known."""
    el, _, fam = line.partition("_")
    if fam not in LINE_FAMILIES:
        families = ", ".join(LINE_FAMILIES)
        raise ChemtomoError(f"unknown X-ray line {line!r}; use Element_Family with family in {families}")
    _z(el)
    return el, fam


def line_energy(line: str) -> float:
    """Energy in keV of the principal component of an X-ray line (``xraylib.LineEnergy``).

    ``Ka`` -> Ka1 (KL3), ``Kb`` -> Kb1 (KM3), ``La`` -> La1 (L3M5),
    ``Lb`` -> Lb1 (L2M4), ``Ma`` -> Ma1 (M5N7).

    >>> line_energy("Au_La")
    9.713
    """
    import xraylib

    el, fam = parse_line(line)
    return float(xraylib.LineEnergy(_z(el), getattr(xraylib, LINE_FAMILIES[fam][1][0])))


def default_line(element: str) -> str:
    """The line mapped by default: Ka up to Z = 32 (Ge), La above."""
    return f"{element}_Ka" if _z(element) <= 32 else f"{element}_La"


def ionisation_cross_section(element: str, shell: str, beam_energy: float = 200.0) -> float:
    """Electron-impact ionisation cross-section of one subshell, in A^2 per atom (relativistic Bethe).

    Parameters
    ----------
    element : str
        Element symbol.
    shell : str
        Subshell: K, L1, L2, L3, M1..M5.
    beam_energy : float, default 200
        Beam energy in keV.
    """
    import xraylib

    if shell not in _OCCUPANCY:
        raise ChemtomoError(f"unknown subshell {shell!r}; use one of {', '.join(_OCCUPANCY)}")
    try:
        e_s = xraylib.EdgeEnergy(_z(element), getattr(xraylib, f"{shell}_SHELL"))
    except ValueError:
        return 0.0
    gamma = 1.0 + beam_energy / _M0C2
    beta2 = 1.0 - 1.0 / gamma**2
    e_b = _M0C2 * beta2 / 2.0
    if e_s <= 0 or beam_energy <= e_s:
        return 0.0
    bracket = np.log(_BETHE_C * e_b / e_s) - np.log(1.0 - beta2) - beta2
    sigma_cm2 = 6.51e-20 * _OCCUPANCY[shell] * _BETHE_B / (e_b * e_s) * max(bracket, 0.0)
    return float(sigma_cm2 * 1e16)


def vacancy_cross_section(element: str, shell: str, beam_energy: float = 200.0) -> float:
    """Vacancies per atom per (electron/A^2) in `shell`, in A^2, with L Coster-Kronig transfers."""
    import xraylib

    z = _z(element)
    sig = {s: ionisation_cross_section(element, s, beam_energy) for s in ("L1", "L2")} if shell[0] == "L" else {}
    own = ionisation_cross_section(element, shell, beam_energy)

    def ck(name):
        try:
            return xraylib.CosKronTransProb(z, getattr(xraylib, name))
        except ValueError:
            return 0.0

    if shell == "L3":
        return own + ck("FL23_TRANS") * sig["L2"] + (ck("FL13_TRANS") + ck("FL12_TRANS") * ck("FL23_TRANS")) * sig["L1"]
    if shell == "L2":
        return own + ck("FL12_TRANS") * sig["L1"]
    return own


@lru_cache(maxsize=None)
def _line_macros() -> tuple:
    import xraylib

    pat = re.compile(r"^(K|L1|L2|L3|M1|M2|M3|M4|M5)([KLMNOPQ]\d+)_LINE$")
    return tuple(sorted((m.group(1), name) for name in dir(xraylib) if (m := pat.match(name))))


def emission_lines(element: str, beam_energy: float = 200.0, *, min_rate: float = 0.005) -> list:
    """All X-ray lines of an element with their production cross-sections.

    Returns
    -------
    lines : list of (name, energy_keV, sigma_x_A2)
        One entry per transition (e.g. ``"L3M5"``) with radiative rate >= `min_rate`;
        ``sigma_x = V_s omega_s R`` in A^2 per atom (see module notes).
    """
    import xraylib

    z, out = _z(element), []
    for shell, name in _line_macros():
        macro = getattr(xraylib, name)
        try:
            rate, energy = xraylib.RadRate(z, macro), xraylib.LineEnergy(z, macro)
            omega = xraylib.FluorYield(z, getattr(xraylib, f"{shell}_SHELL"))
        except ValueError:
            continue
        if rate >= min_rate and 0 < energy < beam_energy:
            out.append((name[:-5], float(energy), vacancy_cross_section(element, shell, beam_energy) * omega * rate))
    return out


def xray_cross_section(line: str, beam_energy: float = 200.0) -> float:
    """X-ray production cross-section of a line family, in A^2 per atom (``sum V_s omega_s R_i``)."""
    import xraylib

    el, fam = parse_line(line)
    z = _z(el)
    shell, comps = LINE_FAMILIES[fam]
    omega = xraylib.FluorYield(z, getattr(xraylib, f"{shell}_SHELL"))
    rates = 0.0
    for c in comps:
        try:
            rates += xraylib.RadRate(z, getattr(xraylib, c))
        except ValueError:
            pass
    return float(vacancy_cross_section(el, shell, beam_energy) * omega * rates)


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
    """Linear attenuation per voxel length at `energy` keV: ``sum_e c_e rho_e mu_e(E) voxel_size 1e-7``.

    ``rho_e`` is ``xraylib.ElementDensity`` (g/cm^3), ``mu_e`` is
    ``xraylib.CS_Total`` (cm^2/g); 1e-7 converts 1/cm to 1/nm.
    """
    import xraylib

    mu = 0.0
    for el, c in phantom.items():
        z = _z(el)
        per_voxel = xraylib.ElementDensity(z) * xraylib.CS_Total(z, energy) * 1e-7 * voxel_size
        mu = mu + np.asarray(c, dtype=np.float64) * per_voxel
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
        Concentration (volume fraction, 0..1) per element.
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
    lines = [default_line(el) for el in phantom] if lines is None else list(lines)
    proj = as_projector(geometry)
    geom = proj.geometry
    d = _dose_vector(dose, geom.n_tilts)
    scale = d * (10.0 * voxel_size) ** 2 * detector.solid_angle / (4 * np.pi) * detector.efficiency
    areal = None if absorption else areal_density(phantom, proj, voxel_size)
    out = {}
    for line in lines:
        el, _ = parse_line(line)
        if el not in phantom:
            raise ChemtomoError(f"line {line} needs element {el} in the phantom, which has {', '.join(phantom)}")
        sig = xray_cross_section(line, beam_energy)
        rho = areal[el] if areal is not None else _absorbed_areal(phantom, el, proj, voxel_size, line, detector)
        out[line] = sig * rho * scale[:, None, None]
    return out


def _absorbed_areal(phantom, el, proj, voxel_size, line, detector):
    geom = proj.geometry
    mu = linear_attenuation(phantom, line_energy(line), voxel_size)
    dens = np.asarray(phantom[el], dtype=np.float64)
    out = np.empty(geom.projection_shape)
    for a, angle in enumerate(geom.angles):
        sub = geom[a : a + 1]
        p = SweptProjector(sub, proj.sweep, proj.n_sub) if isinstance(proj, SweptProjector) else as_projector(sub)
        trans = np.mean([np.exp(-attenuation(mu, detector_direction(angle, detector.takeoff_angle, az)))
                         for az in detector.azimuths], axis=0)
        out[a] = project(p, dens * trans)[0]
    return out * (voxel_size * number_density(el) / 100.0)


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
