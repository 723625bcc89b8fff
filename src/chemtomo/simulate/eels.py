"""EELS core-loss: edge maps and spectrum images with power-law background.

Edges: the saw-tooth model with delayed maximum and Bethe cross-section of
:mod:`chemtomo.physics.eels`.

Background per pixel and eV: ``d A_pix sum_e rho_e K Z_e (E / 100 eV)^-r`` with
``K`` = `background` (A^2/eV, default 1e-6, giving an O K jump ratio near 5)
and ``r`` = `exponent` (default 3): the ``A E^-r`` power law with ``A``
proportional to the projected mass.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.eels import edge_cross_section, edge_onset, parse_edge
from .haadf import _dose_vector, areal_density
from ..physics.elements import atomic_number
from ..physics.counts import as_rng, gaussian


def eels_expected_spectra(areal: dict, energy, edges, *, dose: float, pixel_size: float, beam_energy: float = 200.0,
                          beta: float = 20.0, background: tuple = (1e-6, 3.0)) -> np.ndarray:
    """Noise-free core-loss spectrum per pixel, in electrons per channel.

    Parameters
    ----------
    areal : dict of str to array
        Areal density in atoms/A^2 per element, common shape ``P``.
    energy : array (n_channels,)
        Energy-loss channel centres in eV (uniform).
    edges : sequence of str or (str, float)
        Edges such as ``"O_K"`` or ``("Fe_L23", 15.0)`` with a delay in eV.
    dose : float
        Dose of this image in e-/A^2.
    pixel_size : float
        Pixel size in nm.
    beam_energy : float, default 200
        Beam energy in keV.
    beta : float, default 20
        Collection semi-angle in mrad.
    background : (float, float), default (1e-6, 3.0)
        ``(K, r)`` of the power-law background (see module notes).

    Returns
    -------
    spectra : ndarray, shape ``P + (n_channels,)``.
    """
    e = np.asarray(energy, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or e[0] <= 0:
        raise ChemtomoError("energy must be a uniform axis of energy-loss channel centres in eV, all > 0")
    width = e[1] - e[0]
    n_e = dose * (10.0 * pixel_size) ** 2
    maps = {el: np.asarray(r, dtype=np.float64) for el, r in areal.items()}
    shape = np.broadcast_shapes(*(m.shape for m in maps.values()))
    k, r = background
    out = np.zeros(shape + (e.size,))
    for el, rho in maps.items():
        out += np.broadcast_to(rho, shape)[..., None] * (k * atomic_number(el) * (e / 100.0) ** -r)
    for item in edges:
        edge, delay = (item, 0.0) if isinstance(item, str) else item
        el = parse_edge(edge)[0]
        if el not in maps:
            raise ChemtomoError(f"edge {edge} needs element {el} in the areal densities, which have {', '.join(maps)}")
        out += np.broadcast_to(maps[el], shape)[..., None] * edge_cross_section(
            edge, e, beam_energy=beam_energy, beta=beta, delay=delay)
    return out * (n_e * width)


def eels_expected_maps(phantom: dict, geometry, edges, *, voxel_size: float, dose, window: float = 50.0,
                       beam_energy: float = 200.0, beta: float = 20.0) -> dict:
    """Noise-free background-subtracted edge maps: electrons in ``[onset, onset + window]`` eV per pixel.

    ``E = d_a A_pix rho_e int_window d sigma/dE dE`` with the dose per tilt ``d_a``
    (e-/A^2, scalar or per tilt) and areal densities from the phantom (0..1
    concentrations, `voxel_size` nm). `edges` as in :func:`eels_expected_spectra`.

    Returns
    -------
    maps : dict of edge name to ndarray (n_tilts, ny, nu)
    """
    areal = areal_density(phantom, geometry, voxel_size)
    n_t = next(iter(areal.values())).shape[0]
    d = _dose_vector(dose, n_t) * (10.0 * voxel_size) ** 2
    out = {}
    for item in edges:
        edge, delay = (item, 0.0) if isinstance(item, str) else item
        el = parse_edge(edge)[0]
        onset = edge_onset(edge)
        grid = onset + (np.arange(2000) + 0.5) * (window / 2000)
        sig = edge_cross_section(edge, grid, beam_energy=beam_energy, beta=beta, delay=delay).sum() * window / 2000
        out[edge] = areal[el] * sig * d[:, None, None]
    return out


def detect(expected, detector: str = "counting", *, gain: float = 1.0, read_noise: float = 3.0, rng=None) -> np.ndarray:
    """Record expected electron counts with an EELS camera.

    ``"counting"``: direct electron counting, pure Poisson (variance = mean).
    ``"ccd"``: scintillator-coupled CCD, ``gain * Poisson(expected) + N(0, read_noise^2)``
    in detector units (variance = gain^2 mean + read_noise^2).

    Parameters
    ----------
    expected : array
        Expected electrons per pixel or channel, >= 0.
    detector : {"counting", "ccd"}
    gain : float, default 1
        Detector units per electron (CCD only).
    read_noise : float, default 3
        Read-out noise standard deviation in detector units (CCD only).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    signal : ndarray, float64
    """
    gen = as_rng(rng)
    lam = np.clip(np.asarray(expected, dtype=np.float64), 0, None)
    if detector == "counting":
        return gen.poisson(lam).astype(np.float64)
    if detector == "ccd":
        if gain <= 0 or read_noise < 0:
            raise ChemtomoError(f"CCD needs gain > 0 and read_noise >= 0, got gain={gain}, read_noise={read_noise}")
        return gaussian(gain * gen.poisson(lam), read_noise, gen)
    raise ChemtomoError(f"detector must be 'counting' or 'ccd', got {detector!r}")
