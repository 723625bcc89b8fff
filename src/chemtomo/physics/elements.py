"""Elements: atomic numbers and number densities of the pure elements."""

from __future__ import annotations

from ..core.errors import ChemtomoError
from ..core.names import ELEMENTS

_AVOGADRO = 6.02214076e23


def atomic_number(element: str) -> int:
    """Atomic number Z of an element symbol (``"Au"`` -> 79).

    >>> atomic_number("Au")
    79
    """
    if element not in ELEMENTS:
        raise ChemtomoError(f"unknown element {element!r}; phantom keys must be element symbols such as Au or Ag")
    return ELEMENTS.index(element) + 1


def number_density(element: str) -> float:
    """Atomic number density of the pure element, in atoms/nm^3.

    ``n = rho N_A / M * 1e-21`` with the density ``rho`` (g/cm^3) from
    ``xraylib.ElementDensity`` and the atomic weight ``M`` (g/mol) from
    ``xraylib.AtomicWeight``.

    >>> round(number_density("Au"), 1)
    59.0
    """
    import xraylib

    z = atomic_number(element)
    return float(xraylib.ElementDensity(z) / xraylib.AtomicWeight(z) * _AVOGADRO * 1e-21)
