import numpy as np
import pytest
import xraylib

from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.simulate.edx import attenuation, detector_direction, edx_counts, edx_expected, holder_shadow
from chemtomo.physics.xray import EDXDetector, ionisation_cross_section, line_energy, xray_cross_section
from chemtomo.physics.elements import number_density

N = 24


def _sphere(r=6.0, n=N):
    c = (n - 1) / 2
    z, y, x = np.mgrid[:n, :n, :n] - c
    return (x**2 + y**2 + z**2 <= r**2).astype(np.float32)


@pytest.mark.parametrize("line,lit,macro", [("Au_La", 9.713, "LA1_LINE"), ("Ag_La", 2.984, "LA1_LINE"),
                                            ("Fe_Ka", 6.404, "KA1_LINE"), ("Pt_La", 9.442, "LA1_LINE")])
def test_line_energies_match_xraylib_and_literature(line, lit, macro):
    z = xraylib.SymbolToAtomicNumber(line.split("_")[0])
    assert line_energy(line) == xraylib.LineEnergy(z, getattr(xraylib, macro))
    assert abs(line_energy(line) - lit) < 0.01


def test_other_lines_and_errors():
    assert abs(line_energy("Cu_Ka") - 8.048) < 0.01
    assert abs(line_energy("Au_Ma") - 2.123) < 0.01
    with pytest.raises(ChemtomoError):
        line_energy("Au_Xy")


def test_bethe_cross_section_order_of_magnitude():
    # Fe K at 200 kV: ~2.5-4e-22 cm^2 in the literature (Bote-Salvat, Powell)
    assert 2e-22 < ionisation_cross_section("Fe", "K", 200.0) * 1e-16 < 5e-22
    assert ionisation_cross_section("Au", "K", 50.0) == 0.0  # edge above the beam energy


def _expected(dose=1e3, solid_angle=0.7, angles=(0.0,)):
    g = TiltGeometry(list(angles), (N, N, N))
    det = EDXDetector(solid_angle=solid_angle)
    return edx_expected({"Au": _sphere()}, g, ["Au_La"], voxel_size=1.0, dose=dose, detector=det)["Au_La"]


def test_expected_counts_linear_in_dose_and_solid_angle():
    base = _expected()
    np.testing.assert_allclose(_expected(dose=3e3), 3 * base, rtol=1e-12)
    np.testing.assert_allclose(_expected(solid_angle=4.5), base * 4.5 / 0.7, rtol=1e-12)


def test_expected_counts_formula():
    lam = _expected(dose=1e3)
    proj_len = 2 * 6.0  # chord through the centre, nm (approximately, on the voxel grid)
    rho = proj_len * number_density("Au") / 100  # atoms/A^2
    want = 1e3 * 100 * xray_cross_section("Au_La") * 0.7 / (4 * np.pi) * rho
    assert lam[0].max() == pytest.approx(want, rel=0.1)
    assert lam.sum() == pytest.approx(
        1e3 * 100 * xray_cross_section("Au_La") * 0.7 / (4 * np.pi) * _sphere().sum() * number_density("Au") / 100,
        rel=1e-4)


def test_counts_are_poisson_and_seeded():
    lam = {"Au_La": np.full((1, 300, 300), 2.5)}
    c = edx_counts(lam, rng=1)["Au_La"]
    assert abs(c.mean() - 2.5) < 0.02 and abs(c.var() - 2.5) < 0.05
    assert np.array_equal(c, edx_counts(lam, rng=1)["Au_La"])
    bg = edx_counts(lam, background=0.1, rng=1)["Au_La"]
    assert abs(bg.mean() - 2.75) < 0.02


def test_attenuation_through_uniform_sphere():
    mu = 0.05 * _sphere(8.0, 32)
    tau = attenuation(mu, [0.0, 0.0, 1.0])  # towards +x
    c = 16  # the grid centre is 15.5; use a voxel next to it
    assert tau[c, c, c] == pytest.approx(0.05 * (8.0 - 0.5), rel=0.1)
    assert tau[c, c, 28] == pytest.approx(0.0, abs=1e-9)  # outside the sphere, downstream


def test_absorption_lowers_soft_lines_more():
    g = TiltGeometry([0.0, 40.0], (N, N, N))
    ph = {"Au": _sphere(8.0), "Ag": _sphere(8.0) * 0.0 + _sphere(4.0)}
    kw = dict(voxel_size=2.0, dose=1e3)
    free = edx_expected(ph, g, ["Au_La", "Ag_La"], **kw)
    absd = edx_expected(ph, g, ["Au_La", "Ag_La"], absorption=True, **kw)
    t_au = absd["Au_La"].sum() / free["Au_La"].sum()
    t_ag = absd["Ag_La"].sum() / free["Ag_La"].sum()
    assert 0 < t_ag < t_au < 1


def test_detector_direction_is_unit_and_tilts_with_specimen():
    d0 = detector_direction(0.0, 18.0, 0.0)
    assert np.linalg.norm(d0) == pytest.approx(1.0)
    assert d0[1] < 0 and d0[2] > 0  # towards the gun (-z) and +u (= +x at 0 deg)
    d90 = detector_direction(90.0, 0.0, 0.0)
    np.testing.assert_allclose(d90, [0.0, 1.0, 0.0], atol=1e-12)  # u = z at 90 deg


def test_holder_shadow():
    a = np.array([-60.0, 0.0, 50.0, 65.0])
    np.testing.assert_array_equal(holder_shadow(a, 55.0), [1, 1, 1, 0])
    np.testing.assert_array_equal(holder_shadow(a, 55.0, side=-1), [0, 1, 1, 1])
    np.testing.assert_allclose(holder_shadow(a, 60.0, ramp=20.0), [1, 1, 0.5, 0])
    np.testing.assert_array_equal(holder_shadow(a, None), 1)
