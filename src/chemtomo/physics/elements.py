"""Elements and compounds: atomic numbers, number densities of the pure solid elements and of compounds.

A phantom's materials are element symbols (the pure solid element, density
``xraylib.ElementDensity``) or compounds of :data:`COMPOUNDS` (``"TiO2"``), whose
elements get their stoichiometric number densities in the solid
(:func:`compound_densities`): TiO2 (rutile, 4.23 g/cm^3) holds 31.9 Ti and 63.8 O
atoms/nm^3, where oxygen as an element would be the gas at 0.054 atoms/nm^3.
Elements that are gases at room temperature (:data:`GASES`) are therefore refused
as pure materials (:func:`material_densities`): give their compound.
"""

from __future__ import annotations

import re

from ..core.errors import ChemtomoError
from ..core.names import ELEMENTS

#: Avogadro constant, 1/mol.
AVOGADRO = 6.02214076e23

#: Elements that are gases at room temperature: xraylib's density is that of the gas.
GASES = ("H", "He", "N", "O", "F", "Ne", "Cl", "Ar", "Kr", "Xe", "Rn")

#: Solid densities (g/cm^3, room temperature; crystalline phase named) of common compounds of
#: nanoparticle and support materials (CRC Handbook of Chemistry and Physics).
COMPOUNDS = {
    "TiO2": 4.23,     # rutile (anatase 3.89)
    "Fe2O3": 5.24,    # hematite
    "Fe3O4": 5.17,    # magnetite
    "FeO": 5.74,
    "Al2O3": 3.95,    # corundum
    "SiO2": 2.65,     # quartz (amorphous ~2.2)
    "CeO2": 7.22,
    "ZnO": 5.61,
    "MgO": 3.58,
    "NiO": 6.67,
    "CuO": 6.31,
    "Cu2O": 6.0,
    "CoO": 6.44,
    "Co3O4": 6.11,
    "MnO": 5.37,
    "Mn3O4": 4.86,
    "MnO2": 5.03,
    "Cr2O3": 5.22,
    "V2O5": 3.36,
    "ZrO2": 5.68,
    "HfO2": 9.68,
    "Y2O3": 5.01,
    "La2O3": 6.51,
    "Gd2O3": 7.41,
    "SnO2": 6.95,
    "In2O3": 7.18,
    "Ga2O3": 5.88,
    "WO3": 7.16,
    "MoO3": 4.69,
    "Ta2O5": 8.2,
    "BaTiO3": 6.02,
    "SrTiO3": 5.12,
    "Ag2O": 7.14,
    "PdO": 8.3,
    "NiFe2O4": 5.37,
    "CoFe2O4": 5.29,
    "MoS2": 5.06,
    "WS2": 7.5,
    "ZnS": 4.09,
    "CdS": 4.82,
    "CdSe": 5.82,
    "PbS": 7.6,
    "Ag2S": 7.23,
    "GaN": 6.15,
    "AlN": 3.26,
    "TiN": 5.22,
    "BN": 2.1,
    "Si3N4": 3.17,
    "CaF2": 3.18,
    "NaCl": 2.165,
}

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*(?:\.\d+)?)")
_FORMULA = re.compile(r"(?:[A-Z][a-z]?\d*(?:\.\d+)?)+")


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
    ``xraylib.AtomicWeight``. For the :data:`GASES` this is the gas (O: 0.054);
    :func:`material_densities` refuses them as solids.

    >>> round(number_density("Au"), 1)
    59.0
    """
    import xraylib

    z = atomic_number(element)
    return float(xraylib.ElementDensity(z) / xraylib.AtomicWeight(z) * AVOGADRO * 1e-21)


def parse_formula(formula: str) -> dict[str, float]:
    """Atoms per formula unit of each element: ``"Fe2O3"`` -> ``{"Fe": 2, "O": 3}``.

    >>> parse_formula("BaTiO3")
    {'Ba': 1.0, 'Ti': 1.0, 'O': 3.0}
    """
    tokens = _TOKEN.findall(formula)
    if not formula or "".join(el + n for el, n in tokens) != formula:
        raise ChemtomoError(f"{formula!r} is not a chemical formula; write it like TiO2 or Fe2O3")
    out: dict[str, float] = {}
    for el, n in tokens:
        atomic_number(el)
        out[el] = out.get(el, 0.0) + (float(n) if n else 1.0)
    return out


def compound_densities(formula: str, density: float | None = None) -> dict[str, float]:
    """Number density of each element of a solid compound, in atoms/nm^3.

    ``n_e = rho N_A / M * nu_e * 1e-21`` with the compound's density ``rho`` (g/cm^3; default
    :data:`COMPOUNDS`), its formula mass ``M = sum_e nu_e M_e`` (g/mol, ``xraylib.AtomicWeight``)
    and ``nu_e`` atoms of element ``e`` per formula unit.

    >>> {el: round(n, 1) for el, n in compound_densities("TiO2").items()}
    {'Ti': 31.9, 'O': 63.8}
    """
    import xraylib

    nu = parse_formula(formula)
    if density is None:
        if formula not in COMPOUNDS:
            raise ChemtomoError(f"no solid density known for {formula}; give density (g/cm^3) or use one of "
                                f"{', '.join(COMPOUNDS)}")
        density = COMPOUNDS[formula]
    if not density > 0:
        raise ChemtomoError(f"density must be > 0 g/cm^3, got {density}")
    mass = sum(n * xraylib.AtomicWeight(atomic_number(el)) for el, n in nu.items())
    return {el: float(density / mass * n * AVOGADRO * 1e-21) for el, n in nu.items()}


def material_densities(material: str) -> dict[str, float]:
    """Number density (atoms/nm^3) of each element of a phantom material: a solid element or a compound.

    An element symbol is the pure solid element (:func:`number_density`); a formula of :data:`COMPOUNDS`
    gives every element its stoichiometric density (:func:`compound_densities`).

    Raises
    ------
    ChemtomoError
        For a gas given as a pure element (``"O"``: give its compound, e.g. TiO2), an unknown element
        or a compound without a known density.
    """
    if material in GASES:
        examples = [c for c in COMPOUNDS if material in parse_formula(c)][:4] or list(COMPOUNDS)[:4]
        raise ChemtomoError(
            f"{material} is a gas at room temperature ({number_density(material):.3g} atoms/nm^3), not a solid "
            f"phase; give the compound it is in, e.g. {', '.join(examples)} (physics.elements.COMPOUNDS)")
    if material in ELEMENTS:
        return {material: number_density(material)}
    if material in COMPOUNDS:
        return compound_densities(material)
    if _FORMULA.fullmatch(material):
        parse_formula(material)  # an unknown element symbol raises here
        raise ChemtomoError(f"no solid density known for compound {material}; use one of {', '.join(COMPOUNDS)}")
    raise ChemtomoError(f"unknown material {material!r}; give an element symbol such as Au or a compound such as TiO2")


def material_elements(materials) -> list[str]:
    """The elements of phantom materials (elements or compounds), each once, in order: ``["TiO2", "Au"]`` -> Ti, O, Au."""
    out: list[str] = []
    for m in materials:
        for el in (parse_formula(m) if m in COMPOUNDS else [m]):
            if el not in out:
                out.append(el)
    return out
