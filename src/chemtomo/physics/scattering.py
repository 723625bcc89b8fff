"""HAADF (Z-contrast) scattering: cross-sections per atom and per unit concentration, Gaussian atom images.

Every atom of element ``e`` scatters an electron onto the annular detector
with cross-section ``sigma_e = k Z_e^gamma`` (A^2); ``k`` is
:data:`SCATTERING_CONSTANT`, an order-of-magnitude value from the screened
Rutherford cross-section at 200 kV and an inner detector angle of about
60 mrad (Au: ~0.02 A^2 per atom). The model is linear in thickness (no
channelling or saturation), as tomography assumes.
"""

from __future__ import annotations

import numpy as np

from .elements import atomic_number, number_density

#: HAADF scattering cross-section per atom divided by Z^gamma, in A^2 (see module notes).
SCATTERING_CONSTANT = 1.2e-5


def haadf_weight(element: str, gamma: float = 1.7) -> float:
    """Relative HAADF signal per unit concentration and path length: ``n_e Z_e^gamma`` (nm^-3)."""
    return number_density(element) * atomic_number(element) ** gamma


def atom_cross_section(species, gamma: float = 1.7) -> np.ndarray:
    """HAADF cross-section per atom, ``k Z^gamma`` in A^2, for each symbol in `species`."""
    species = np.atleast_1d(np.asarray(species, dtype=str))
    table = {s: SCATTERING_CONSTANT * atomic_number(s) ** gamma for s in np.unique(species)}
    return np.array([table[s] for s in species])


def pixel_weights(centres: np.ndarray, n: int, sigma: float) -> np.ndarray:
    """Fraction of a unit Gaussian (centre, sd in pixels) falling into each of `n` pixels: shape (len(centres), n)."""
    from scipy.special import erf

    edges = np.arange(n + 1) - 0.5
    c = erf((edges[None, :] - centres[:, None]) / (np.sqrt(2) * sigma))
    return 0.5 * np.diff(c, axis=1)
