"""Thin-film quantification of line intensities: Cliff-Lorimer and zeta-factor methods.

Cliff-Lorimer (Cliff and Lorimer 1975), with k-factors that turn counts into
atomic proportions::

    x_i = k_i I_i / sum_j k_j I_j

Theory k-factors (:func:`theory_k_factors`) are ``k_i = 1 / sigma_x(l_i)``,
the inverse X-ray production cross-section of the line
(:func:`chemtomo.physics.xray.xray_cross_section`; thin film, no absorption,
energy-independent detector). Ratios of measured k-factors to a reference line
(``k_AB`` of the literature, for atomic fractions) can be given instead.

Zeta factor (Watanabe and Williams 2006)::

    rho t C_i = zeta_i I_i / D_e,   rho t = sum_i zeta_i I_i / D_e,   C_i = zeta_i I_i / sum_j zeta_j I_j

with ``D_e`` electrons per pixel (dose in e-/A^2 times the pixel area), ``rho t``
the mass thickness in kg/m^2 and ``C_i`` mass fractions. Theory zeta factors are
``zeta_i = A_i / (N_A sigma_x(l_i) Omega / (4 pi) eta)`` (kg/m^2 per count per electron)
with ``A_i`` the molar mass in kg/mol.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.xray import parse_line, xray_cross_section

_AVOGADRO = 6.02214076e23


def theory_k_factors(lines, beam_energy: float = 200.0) -> dict:
    """``k_i = 1 / sigma_x`` (1 / A^2) for each line: counts to atomic proportions (see module notes)."""
    return {line: 1.0 / xray_cross_section(line, beam_energy) for line in lines}


def _intensities(intensities):
    if not intensities:
        raise ChemtomoError("no line intensities given; pass {line: counts} for at least one line")
    for line in intensities:
        parse_line(line)
    return {k: np.asarray(v, dtype=np.float64) for k, v in intensities.items()}


def cliff_lorimer(intensities: dict, k_factors: dict | None = None, *, beam_energy: float = 200.0) -> dict:
    """Atomic fractions from line intensities by the Cliff-Lorimer ratio method.

    Parameters
    ----------
    intensities : dict of str to array
        Counts per line (``"Fe_Ka"``), maps or scalars of one common shape.
    k_factors : dict of str to float, optional
        ``x_i proportional to k_i I_i``; :func:`theory_k_factors` if omitted.
    beam_energy : float, default 200
        Beam energy in keV, for theory k-factors.

    Returns
    -------
    fractions : dict of str to ndarray
        Atomic fraction (0..1) of each line's element; NaN where all intensities are <= 0.
    """
    inten = _intensities(intensities)
    k = theory_k_factors(inten, beam_energy) if k_factors is None else dict(k_factors)
    missing = [l for l in inten if l not in k]
    if missing:
        raise ChemtomoError(f"no k-factor for {', '.join(missing)}; give one per line or omit k_factors")
    weighted = {l: k[l] * np.clip(v, 0, None) for l, v in inten.items()}
    total = sum(weighted.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {l: np.where(total > 0, v / np.where(total > 0, total, 1.0), np.nan) for l, v in weighted.items()}


def zeta_factor(intensities: dict, dose: float, pixel_size: float, zeta: dict | None = None, *,
                solid_angle: float = 0.7, efficiency: float = 1.0, beam_energy: float = 200.0) -> dict:
    """Mass thickness, mass and atomic fractions and areal densities by the zeta-factor method.

    Parameters
    ----------
    intensities : dict of str to array
        Counts per line per pixel.
    dose : float
        Dose in e-/A^2 of the acquisition.
    pixel_size : float
        Pixel size in nm.
    zeta : dict of str to float, optional
        Zeta factors in kg/m^2 per (count / electron); theory values if omitted.
    solid_angle, efficiency : float
        Detector solid angle (sr) and efficiency (0..1) for theory zeta factors.
    beam_energy : float, default 200
        Beam energy in keV.

    Returns
    -------
    result : dict
        ``mass_thickness`` (kg/m^2), ``mass_fractions``, ``atomic_fractions`` (dicts per line) and
        ``areal_density`` (dict per line, atoms/A^2).
    """
    import xraylib

    from ..physics.elements import atomic_number

    inten = _intensities(intensities)
    if not (dose > 0 and pixel_size > 0):
        raise ChemtomoError(f"dose (e-/A^2) and pixel_size (nm) must be > 0, got {dose} and {pixel_size}")
    electrons = dose * (10.0 * pixel_size) ** 2
    molar = {l: xraylib.AtomicWeight(atomic_number(parse_line(l)[0])) * 1e-3 for l in inten}  # kg/mol
    if zeta is None:
        zeta = {l: molar[l] / (_AVOGADRO * xray_cross_section(l, beam_energy) * 1e-20 * solid_angle / (4 * np.pi)
                                * efficiency) for l in inten}
    missing = [l for l in inten if l not in zeta]
    if missing:
        raise ChemtomoError(f"no zeta factor for {', '.join(missing)}; give one per line or omit zeta")
    mass = {l: zeta[l] * np.clip(v, 0, None) / electrons for l, v in inten.items()}  # kg/m^2 per element
    rho_t = sum(mass.values())
    atoms = {l: m / molar[l] * _AVOGADRO * 1e-20 for l, m in mass.items()}  # atoms/A^2
    n_tot = sum(atoms.values())
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "mass_thickness": rho_t,
            "mass_fractions": {l: m / rho_t for l, m in mass.items()},
            "atomic_fractions": {l: a / n_tot for l, a in atoms.items()},
            "areal_density": atoms,
        }
