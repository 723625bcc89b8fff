"""X-ray lines for elemental mapping: automatic choice, range checks, line families.

Line names are ``Element_Family`` (``Fe_Ka``, ``Pt_La``, ``Pt_Ma``) with the
families of :data:`chemtomo.physics.xray.LINE_FAMILIES`; energies come from
xraylib through :func:`chemtomo.physics.xray.line_energy` (keV).

Automatic choice (:func:`auto_lines`): the K line (``Ka``) if it lies inside
the spectrum, otherwise the L (``La``) and M (``Ma``) lines that do. So Fe ->
``Fe_Ka``, Pt -> ``Pt_La`` and ``Pt_Ma`` on a 0-20 keV spectrum, ``Pt_Ma``
alone on 0-8 keV.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.xray import LINE_FAMILIES, emission_lines, line_energy, parse_line

__all__ = ["LINE_FAMILIES", "parse_line", "line_energy", "energy_range", "check_line", "auto_lines",
           "resolve_lines", "line_components"]

#: lowest line energy in keV that is mapped automatically (below it the detector window absorbs)
MIN_LINE_ENERGY = 0.1


def energy_range(energy) -> tuple[float, float]:
    """First and last channel energy of a uniform energy axis, in keV.

    Raises
    ------
    ChemtomoError
        If `energy` is not a 1D increasing axis with at least 2 channels.
    """
    e = np.asarray(energy, dtype=np.float64) if energy is not None else None
    if e is None or e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        shape = None if e is None else e.shape
        raise ChemtomoError(
            f"the spectrum has no usable energy axis (got {shape}); give channel energies in keV, increasing, "
            "one per channel (read_spectrum_image returns them as 'energy')"
        )
    return float(e[0]), float(e[-1])


def check_line(line: str, energy, *, beam_energy: float = 200.0) -> float:
    """Check that `line` is a known X-ray line inside the spectrum; return its energy in keV.

    Raises
    ------
    ChemtomoError
        If the line is unknown or lies outside the spectrum (or above the beam energy).
    """
    lo, hi = energy_range(energy)
    e = line_energy(line)
    if not (lo <= e <= hi) or e >= beam_energy:
        raise ChemtomoError(
            f"{line} at {e:.2f} keV is outside the spectrum's {max(lo, 0.0):.3g}-{hi:.3g} keV; "
            "choose another line or element"
        )
    return e


def auto_lines(element: str, energy, *, beam_energy: float = 200.0) -> list[str]:
    """Lines mapped for `element` on a spectrum with channel energies `energy` (keV).

    ``Ka`` if inside the range (and above :data:`MIN_LINE_ENERGY`), else every
    one of ``La`` and ``Ma`` inside the range.

    Raises
    ------
    ChemtomoError
        If the element is unknown or none of its lines lies inside the spectrum.
    """
    lo, hi = energy_range(energy)
    lo = max(lo, MIN_LINE_ENERGY)
    if not isinstance(element, str) or "_" in element:
        raise ChemtomoError(f"expected an element symbol such as Fe, got {element!r}")
    parse_line(f"{element}_Ka")  # unknown element -> ChemtomoError

    def inside(fam):
        try:
            e = line_energy(f"{element}_{fam}")
        except ValueError:  # xraylib has no such line for this element
            return False
        return lo <= e <= hi and e < beam_energy

    if inside("Ka"):
        return [f"{element}_Ka"]
    found = [f"{element}_{fam}" for fam in ("La", "Ma") if inside(fam)]
    if not found:
        raise ChemtomoError(
            f"no K, L or M line of {element} lies inside the spectrum's {max(lo, 0):.3g}-{hi:.3g} keV; "
            "remove the element or give a line explicitly"
        )
    return found


def split_names(names) -> list[str]:
    """``"Fe, Pt_Ma"`` or ``["Fe", " Pt_Ma"]`` -> ``["Fe", "Pt_Ma"]``: split at commas, strip, drop empty items."""
    items = names.split(",") if isinstance(names, str) else list(names)
    return [str(i).strip() for i in items if str(i).strip()]


def resolve_lines(lines_or_elements, energy, *, beam_energy: float = 200.0) -> list[str]:
    """Turn ``["Fe", "Pt_Ma", ...]`` into checked line names (elements through :func:`auto_lines`).

    A string ``"Fe,Pt"`` is split at commas. Duplicates are dropped, order kept.
    """
    items = split_names(lines_or_elements)
    if not items:
        raise ChemtomoError("no elements or lines given; pass e.g. ['Fe', 'Pt'] or ['Fe_Ka', 'Pt_La']")
    out = []
    for item in items:
        if "_" in item:
            check_line(item, energy, beam_energy=beam_energy)
            new = [item]
        else:
            new = auto_lines(item, energy, beam_energy=beam_energy)
        out += [n for n in new if n not in out]
    return out


def line_components(line: str, beam_energy: float = 200.0) -> tuple[np.ndarray, np.ndarray]:
    """All transitions of the shell (K, L or M) that `line` belongs to, weighted for a fit.

    The weights are xraylib production cross-sections (vacancy cross-section x
    fluorescence yield x radiative rate, :func:`chemtomo.physics.xray.emission_lines`)
    normalised so that the components of the named family (e.g. Ka = KL3 + KL2)
    sum to 1: a fitted amplitude is then the counts in that family.

    Returns
    -------
    energies : ndarray (n,)
        Transition energies in keV.
    weights : ndarray (n,)
        Relative intensities (dimensionless).
    """
    el, fam = parse_line(line)
    shell, principal = LINE_FAMILIES[fam]
    principal = {p[:-5] for p in principal}
    comps = [(n, e, s) for n, e, s in emission_lines(el, beam_energy) if n[0] == shell[0]]
    norm = sum(s for n, _, s in comps if n in principal)
    if not comps or norm <= 0:
        raise ChemtomoError(f"{line} is not excited at {beam_energy:g} keV (or has no xraylib data); choose another line")
    return np.array([e for _, e, _ in comps]), np.array([s / norm for _, _, s in comps])
