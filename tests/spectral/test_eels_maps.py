import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.eels import eels_expected_spectra
from chemtomo.physics.eels import edge_cross_section, edge_onset
from chemtomo.physics.counts import poisson
from chemtomo.spectral.eels import eels_maps, powerlaw_background

E = np.arange(300.0, 900.0, 1.0)
AREAL = {"O": np.linspace(0.2, 1.0, 16).reshape(4, 4), "Fe": np.full((4, 4), 0.2)}
SCALE = 1e6 * 400  # dose e-/A^2 times pixel area (2 nm)^2 in A^2


def _truth(width=50.0):
    on = edge_onset("O_K")
    sel = (E >= on) & (E < on + width)
    return AREAL["O"] * edge_cross_section("O_K", E)[sel].sum() * SCALE


def test_power_law_subtraction_recovers_edge_integral():
    lam = eels_expected_spectra(AREAL, E, ["O_K"], dose=1e6, pixel_size=2.0)
    amp, r = powerlaw_background(lam, E, (460, 520))
    assert np.allclose(r, 3.0, atol=1e-6)
    assert np.allclose(eels_maps(lam, E, ["O_K"])["O_K"], _truth(), rtol=1e-6)
    noisy = poisson(lam, 0).astype(float)
    got = eels_maps(noisy, E, ["O_K"])["O_K"]
    assert abs(got.sum() / _truth().sum() - 1) < 0.03


def test_fourier_ratio_removes_plural_scattering():
    el = np.arange(-50.0, 250.0, 1.0)
    zl = np.exp(-0.5 * (el / 0.8) ** 2)
    pl = np.exp(-0.5 * ((el - 22) / 4) ** 2)
    zl, pl = zl / zl.sum(), pl / pl.sum()
    t, p, cur, fact = 0.5, zl.copy(), zl.copy(), 1.0
    for n in range(1, 6):
        cur = np.convolve(cur, pl)[50:350]
        fact *= n
        p = p + t**n / fact * cur
    p *= np.exp(-t)  # total area 1, zero loss exp(-t)
    lam = eels_expected_spectra(AREAL, E, ["O_K"], dose=1e6, pixel_size=2.0)
    plural = np.stack([np.convolve(s, p)[50:50 + E.size] for s in lam.reshape(-1, E.size)]).reshape(lam.shape)
    low = np.broadcast_to(1e6 * p, (4, 4, el.size))
    raw = eels_maps(plural, E, ["O_K"])["O_K"]
    fr = eels_maps(plural, E, ["O_K"], low_loss=low, low_loss_energy_ev=el)["O_K"]
    expected = _truth() * np.exp(-t)  # J1 = I0 * single scattering per electron
    assert np.abs(raw / expected - 1).max() > 0.2
    assert np.abs(fr / expected - 1).max() < 0.03


def test_bad_eels_input():
    lam = eels_expected_spectra(AREAL, E, ["O_K"], dose=1e6, pixel_size=2.0)
    with pytest.raises(ChemtomoError, match="energy-loss axis"):
        eels_maps(lam, None, ["O_K"])
    with pytest.raises(ChemtomoError, match="covers"):
        eels_maps(lam, E, ["Fe_L23"], width=300)
