import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.simulate.eels import detect, eels_expected_maps, eels_expected_spectra
from chemtomo.physics.eels import collection_fraction, edge_cross_section, edge_onset, edge_shape


def test_edge_onsets_from_xraylib():
    assert edge_onset("Fe_L3") == pytest.approx(708, abs=2)
    assert edge_onset("Fe_L23") == edge_onset("Fe_L3")
    assert edge_onset("O_K") == pytest.approx(532, abs=2)
    with pytest.raises(ChemtomoError):
        edge_onset("O_Q")


def test_edge_shape_sawtooth_and_delayed_maximum():
    e = np.array([500.0, 531.0, 532.0, 1064.0])
    np.testing.assert_allclose(edge_shape(e, 532.0), [0, 0, 1, 0.125])
    d = edge_shape(np.array([708.0, 718.0, 728.0, 1456.0]), 708.0, delay=20.0)
    np.testing.assert_allclose(d, [0, 0.5, 1.0, 0.125])


def test_edge_integral_equals_collected_cross_section():
    from chemtomo.physics.xray import ionisation_cross_section

    e = np.arange(400.0, 60000.0, 0.5)
    for delay in (0.0, 15.0):
        total = edge_cross_section("O_K", e, delay=delay).sum() * 0.5
        want = ionisation_cross_section("O", "K") * collection_fraction(edge_onset("O_K"))
        assert total == pytest.approx(want, rel=0.01)
    assert 0 < collection_fraction(532.0, 200.0, 5.0) < collection_fraction(532.0, 200.0, 20.0) <= 1


def test_spectrum_has_power_law_background_and_edges():
    e = np.arange(300.0, 1000.0, 1.0)
    s = eels_expected_spectra({"Fe": np.array(2.0), "O": np.array(3.0)}, e, ["O_K", ("Fe_L23", 10.0)],
                              dose=1e3, pixel_size=1.0)
    pre = (e > 350) & (e < 520)
    r = -np.polyfit(np.log(e[pre]), np.log(s[pre]), 1)[0]
    assert r == pytest.approx(3.0, abs=1e-6)
    i = np.searchsorted(e, 532.0)
    assert s[i + 1] > 2 * s[i - 2]  # O K jump
    jump = s[np.searchsorted(e, 718.0)] / s[np.searchsorted(e, 705.0)]
    assert jump > 1.2


def test_edge_maps_linear_in_dose():
    v = np.zeros((4, 10, 10), np.float32)
    v[:, 3:7, 3:7] = 1.0
    g = TiltGeometry([0.0, 45.0], (4, 10, 10))
    a = eels_expected_maps({"TiO2": v}, g, ["O_K"], voxel_size=1.0, dose=10.0)["O_K"]
    b = eels_expected_maps({"TiO2": v}, g, ["O_K"], voxel_size=1.0, dose=[20.0, 20.0])["O_K"]
    np.testing.assert_allclose(b, 2 * a, rtol=1e-12)
    assert a.max() > 0 and a.shape == (2, 4, 10)


def test_counting_detector_variance_equals_mean_ccd_adds_read_noise():
    lam = np.full(200_000, 6.0)
    c = detect(lam, "counting", rng=0)
    assert abs(c.mean() - 6.0) < 0.03 and abs(c.var() / c.mean() - 1.0) < 0.02
    ccd = detect(lam, "ccd", gain=1.0, read_noise=3.0, rng=0)
    assert abs(ccd.mean() - 6.0) < 0.05
    assert ccd.var() == pytest.approx(6.0 + 9.0, rel=0.03)
    g2 = detect(lam, "ccd", gain=2.0, read_noise=0.0, rng=0)
    assert g2.var() == pytest.approx(4 * 6.0, rel=0.03)
    with pytest.raises(ChemtomoError):
        detect(lam, "film")
