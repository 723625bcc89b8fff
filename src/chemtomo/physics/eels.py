"""EELS core-loss edges: names, onsets, shapes and cross-sections.

Edge model (an approximation, not a Hartree-Slater or full hydrogenic
calculation): a saw-tooth with optional delayed maximum. The shape is 0 below
the onset ``E_c`` (``xraylib.EdgeEnergy``), rises linearly to 1 at
``E_c + delay`` (``delay = 0``: sharp saw-tooth, as for K edges; L2,3 and M4,5
edges of transition metals and rare earths use 10-50 eV) and decays as
``(E / (E_c + delay))^-s`` with ``s = 3`` (hydrogenic-like). It is normalised so
that its integral equals ``sigma_s f_beta`` (A^2 per atom): the relativistic
Bethe ionisation cross-section of the subshell
(:func:`~chemtomo.physics.xray.ionisation_cross_section`) times the fraction
collected by a spectrometer of semi-angle ``beta``,
``f_beta = ln(1 + beta^2/theta_E^2) / ln(1 + theta_c^2/theta_E^2)`` with
``theta_E = E_c / (gamma m0 v^2)`` and ``theta_c = sqrt(2 theta_E)``.
Energy losses are in eV (the spectrometer's unit), beam energies in keV.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from .elements import atomic_number
from .xray import _M0C2, ionisation_cross_section

#: edge name suffix -> xraylib subshell whose edge energy is the onset
EDGE_SHELLS = {"K": "K", "L1": "L1", "L2": "L2", "L3": "L3", "L23": "L3", "M4": "M4", "M5": "M5", "M45": "M5"}


#: delayed maximum (eV) of each edge family in simulations that name edges only: K edges are sharp
#: saw-tooths, L2,3 and M4,5 edges of transition metals and heavier elements peak above their onset
EDGE_DELAY = {"K": 0.0, "L1": 0.0, "L2": 10.0, "L3": 10.0, "L23": 10.0, "M4": 30.0, "M5": 30.0, "M45": 30.0}


def is_edge(name: str) -> bool:
    """True for edge names such as ``"Fe_L23"`` or ``"O_K"`` (X-ray lines like ``"Fe_Ka"`` are not)."""
    return name.partition("_")[2] in EDGE_SHELLS


def default_edge(element: str) -> str:
    """The edge usually mapped for `element`: K up to Mg, L2,3 from Al to Sr, M4,5 from Y on (e.g. O_K, Fe_L23, Au_M45)."""
    z = atomic_number(element)
    return f"{element}_{'K' if z <= 12 else 'L23' if z <= 38 else 'M45'}"


def parse_edge(edge: str) -> tuple[str, str]:
    """Split ``"Fe_L23"`` into ``("Fe", "L3")`` (element, onset subshell)."""
    el, _, name = edge.partition("_")
    if name not in EDGE_SHELLS:
        raise ChemtomoError(f"unknown edge {edge!r}; use Element_Edge with edge in {', '.join(EDGE_SHELLS)}")
    atomic_number(el)
    return el, EDGE_SHELLS[name]


def edge_onset(edge: str) -> float:
    """Onset energy of an edge in eV (``xraylib.EdgeEnergy`` x 1000), e.g. Fe_L3 708, O_K 532."""
    import xraylib

    el, shell = parse_edge(edge)
    return float(xraylib.EdgeEnergy(atomic_number(el), getattr(xraylib, f"{shell}_SHELL")) * 1000.0)


def pre_edge_start(onset: float) -> float:
    """Start (eV) of the background window below an edge at `onset` eV: ``onset - max(20, 0.12 onset)``."""
    return onset - max(20.0, 0.12 * onset)


def edge_shape(energy, onset: float, *, delay: float = 0.0, decay: float = 3.0) -> np.ndarray:
    """Saw-tooth edge shape with delayed maximum, peak value 1 (see module notes); `energy`, `onset`, `delay` in eV."""
    e = np.asarray(energy, dtype=np.float64)
    peak = onset + delay
    rise = np.clip((e - onset) / delay, 0.0, 1.0) if delay > 0 else (e >= onset).astype(np.float64)
    tail = np.where(e > peak, (np.maximum(e, 1e-9) / peak) ** -decay, 1.0)
    return np.where(e >= onset, rise * tail, 0.0)


def collection_fraction(onset: float, beam_energy: float = 200.0, beta: float = 20.0) -> float:
    """Fraction ``f_beta`` of inner-shell scattering collected within `beta` mrad (onset in eV, beam in keV)."""
    gamma = 1.0 + beam_energy / _M0C2
    mv2 = _M0C2 * (1.0 - 1.0 / gamma**2) * 1000.0  # m0 v^2 in eV
    theta_e = onset / (gamma * mv2)
    theta_c = np.sqrt(2.0 * theta_e)
    b = beta * 1e-3
    return float(min(1.0, np.log1p((b / theta_e) ** 2) / np.log1p((theta_c / theta_e) ** 2)))


def edge_cross_section(edge: str, energy, *, beam_energy: float = 200.0, beta: float = 20.0,
                       delay: float = 0.0) -> np.ndarray:
    """Differential cross-section ``d sigma / dE`` of one edge, in A^2/eV per atom, at `energy` eV."""
    el, shell = parse_edge(edge)
    onset = edge_onset(edge)
    peak = onset + delay
    decay = 3.0
    area = delay / 2.0 + peak / (decay - 1.0)  # integral of edge_shape from onset to infinity, eV
    total = ionisation_cross_section(el, shell, beam_energy) * collection_fraction(onset, beam_energy, beta)
    return total / area * edge_shape(energy, onset, delay=delay, decay=decay)
