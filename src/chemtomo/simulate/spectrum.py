"""EDX spectrum images: a full X-ray spectrum per pixel, and export to exSpy.

Expected counts in channel ``k`` of a pixel with areal densities ``rho_e``
(atoms/A^2) and incident dose ``d`` (e-/A^2)::

    S = d A_pix Omega / (4 pi) eta
    E[k] = S sum_e rho_e [ sum_l sigma_l G_k(E_l) + K_B Z_e (E0 - E_k) / E_k W(E_k) dE ]

* lines ``l``: every transition of :func:`~chemtomo.physics.xray.emission_lines`
  (xraylib energies, fluorescence yields and radiative rates, Bethe ionisation);
* ``G_k(E_l)``: a Gaussian of ``FWHM(E)^2 = FWHM_MnKa^2 + 2.5 eV (E - 5899 eV)``
  (Fano model, eV), integrated over the channel;
* Kramers bremsstrahlung ``K_B Z (E0 - E)/E`` per atom, ``K_B =``
  :data:`KRAMERS_CONSTANT` A^2/keV, chosen so Fe Ka has a peak-to-background
  ratio of about 100 at 200 kV (thin film), times a detector window roll-off
  ``W(E) = 1 - exp(-(E / 0.3 keV)^2)``;
* optional Si escape peaks (fraction ``detector.escape`` of each line above
  1.839 keV moved to ``E - 1.74`` keV) and sum peaks (fraction
  ``detector.pileup`` of the line counts of a pixel recorded at ``E_i + E_j``
  with probability ``I_i I_j / I^2``: a linear-in-rate approximation).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from ..core.errors import ChemtomoError
from ..physics.xray import fwhm
from ..physics.xray import EDXDetector, emission_lines
from ..physics.elements import atomic_number
from ..physics.counts import poisson

#: Kramers bremsstrahlung constant per atom and unit Z, in A^2/keV (see module notes).
KRAMERS_CONSTANT = 1e-10
_SI_K_EDGE, _SI_KA = 1.839, 1.74


def _profiles(centres, energy, fwhm_mnka):
    """Channel-integrated unit Gaussians, shape (len(centres), n_channels)."""
    c = np.asarray(centres, dtype=np.float64)[:, None]
    half = (energy[1] - energy[0]) / 2.0
    sig = fwhm(c, fwhm_mnka) / 1000.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    z = lambda x: erf((x - c) / (np.sqrt(2.0) * sig))  # noqa: E731
    return 0.5 * (z(energy[None, :] + half) - z(energy[None, :] - half))


def _bremsstrahlung(z, energy, beam_energy):
    e = np.clip(energy, 1e-3, None)
    window = 1.0 - np.exp(-((e / 0.3) ** 2))
    shape = np.where((energy > 0) & (energy < beam_energy), (beam_energy - e) / e, 0.0)
    return KRAMERS_CONSTANT * z * shape * window * (energy[1] - energy[0])


def expected_spectra(areal: dict, energy, *, dose: float, pixel_size: float, beam_energy: float = 200.0,
                     detector: EDXDetector = EDXDetector()) -> np.ndarray:
    """Noise-free spectrum per pixel, in counts per channel.

    Parameters
    ----------
    areal : dict of str to array
        Areal density in atoms/A^2 per element, any common shape ``P`` (e.g. ``(ny, nu)``).
    energy : array (n_channels,)
        Uniform channel centres in keV (:func:`energy_axis`).
    dose : float
        Dose of this image in e-/A^2.
    pixel_size : float
        Pixel size in nm.
    beam_energy : float, default 200
        Beam energy in keV.
    detector : EDXDetector
        Solid angle, efficiency, resolution, escape and pile-up fractions.

    Returns
    -------
    spectra : ndarray, shape ``P + (n_channels,)``, float64.
    """
    energy = np.asarray(energy, dtype=np.float64)
    if energy.ndim != 1 or energy.size < 2 or not np.allclose(np.diff(energy), energy[1] - energy[0]):
        raise ChemtomoError("energy must be a uniform axis of channel centres in keV; build it with energy_axis()")
    scale = dose * (10.0 * pixel_size) ** 2 * detector.solid_angle / (4 * np.pi) * detector.efficiency
    maps = {el: np.asarray(r, dtype=np.float64) for el, r in areal.items()}
    shape = np.broadcast_shapes(*(m.shape for m in maps.values()))
    centres, amps = [], []
    for el, rho in maps.items():
        for _, e_line, sig in emission_lines(el, beam_energy):
            centres.append(e_line)
            amps.append(np.broadcast_to(rho * (scale * sig), shape).ravel())
    centres, amps = np.array(centres), np.array(amps)  # (L,), (L, P)
    if detector.escape > 0:
        esc = centres > _SI_K_EDGE
        centres = np.concatenate([centres, centres[esc] - _SI_KA])
        amps = np.concatenate([amps * np.where(esc, 1.0 - detector.escape, 1.0)[:, None], amps[esc] * detector.escape])
    if detector.pileup > 0:
        centres, amps = _pileup(centres, amps, detector.pileup)
    out = amps.T @ _profiles(centres, energy, detector.fwhm_mnka)  # (P, n_channels)
    for el, rho in maps.items():
        brems = _bremsstrahlung(atomic_number(el), energy, beam_energy)
        out += np.broadcast_to(rho * scale, shape).ravel()[:, None] * brems[None, :]
    return out.reshape(shape + (energy.size,))


def _pileup(centres, amps, fraction, n_major=8):
    major = np.argsort(amps.sum(axis=1))[::-1][:n_major]
    total = amps.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    new_c, new_a = [], []
    for i_pos, i in enumerate(major):
        for j in major[i_pos:]:
            factor = 1.0 if i == j else 2.0
            new_c.append(centres[i] + centres[j])
            new_a.append(fraction * factor * amps[i] * amps[j] / safe)
    lost = np.sum(new_a, axis=0)
    # remove the piled-up counts proportionally from all lines, keeping the total unchanged
    keep = np.where(total > 0, 1.0 - lost / safe, 1.0)
    return np.concatenate([centres, new_c]), np.concatenate([amps * keep[None, :], np.array(new_a)])


def spectrum_image(areal: dict, energy, *, dose: float, pixel_size: float, beam_energy: float = 200.0,
                   detector: EDXDetector = EDXDetector(), rng=None) -> np.ndarray:
    """Poisson-noisy EDX spectrum image; see :func:`expected_spectra` for the parameters.

    Returns
    -------
    counts : ndarray of int64, shape ``P + (n_channels,)``.
    """
    lam = expected_spectra(areal, energy, dose=dose, pixel_size=pixel_size, beam_energy=beam_energy,
                           detector=detector)
    return poisson(lam, rng)


def to_exspy(counts, energy, *, lines, beam_energy: float = 200.0, pixel_size: float = 1.0,
             detector: EDXDetector = EDXDetector()):
    """Wrap a spectrum image as an exSpy ``EDSTEMSpectrum``.

    Parameters
    ----------
    counts : array, shape (..., n_channels)
        Spectra; up to two leading axes become navigation axes ``y, x`` in nm.
    energy : array (n_channels,)
        Uniform channel centres in keV.
    lines : sequence of str
        X-ray lines in exSpy names (``"Au_La"``, ``"Fe_Ka"``); their elements are set too.
    beam_energy : float, default 200
        Beam energy in keV, stored in ``Acquisition_instrument.TEM.beam_energy``.
    pixel_size : float, default 1
        Navigation scale in nm.
    detector : EDXDetector
        Stores the Mn Ka resolution (eV) and solid angle (sr) in the metadata.

    Returns
    -------
    exspy.signals.EDSTEMSpectrum
        Ready for ``get_lines_intensity()``.
    """
    import exspy

    data = np.asarray(counts)
    energy = np.asarray(energy, dtype=np.float64)
    if data.shape[-1] != energy.size:
        raise ChemtomoError(
            f"counts has {data.shape[-1]} channels but energy has {energy.size}; give one energy per channel"
        )
    s = exspy.signals.EDSTEMSpectrum(data)
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = "Energy", "keV", float(energy[0]), float(energy[1] - energy[0])
    for nav, name in zip(s.axes_manager.navigation_axes, ("x", "y")):
        nav.name, nav.units, nav.scale = name, "nm", pixel_size
    s.set_microscope_parameters(beam_energy=beam_energy, energy_resolution_MnKa=detector.fwhm_mnka)
    s.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.solid_angle", detector.solid_angle)
    s.add_elements(sorted({line.split("_")[0] for line in lines}))
    s.add_lines(list(lines))
    return s
