import numpy as np
import pytest

from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.simulate.haadf import haadf, haadf_expected
from chemtomo.physics.scattering import SCATTERING_CONSTANT, haadf_weight
from chemtomo.physics.elements import number_density

N = 24


def _slab(thick=6):
    v = np.zeros((4, N, N), np.float32)
    v[:, N // 2 - thick // 2 : N // 2 + thick // 2, :] = 1.0
    return v


def test_number_density_matches_literature():
    assert number_density("Au") == pytest.approx(59.0, rel=0.01)  # 19.32 g/cm3 / 196.97 g/mol
    assert number_density("Ag") == pytest.approx(58.6, rel=0.01)


def test_contrast_ratio_au_ag_slabs():
    g = TiltGeometry([0.0], (4, N, N))
    au = haadf_expected({"Au": _slab()}, g, voxel_size=0.5, dose=100.0)
    ag = haadf_expected({"Ag": _slab()}, g, voxel_size=0.5, dose=100.0)
    ratio = au[0, 2, N // 2] / ag[0, 2, N // 2]
    expected = number_density("Au") * 79**1.7 / (number_density("Ag") * 47**1.7)
    assert ratio == pytest.approx(expected, rel=1e-5)
    assert haadf_weight("Au") / haadf_weight("Ag") == pytest.approx(expected)


def test_absolute_scale_and_linearity_in_dose():
    g = TiltGeometry([0.0], (4, N, N))
    e1 = haadf_expected({"Au": _slab(6)}, g, voxel_size=0.5, dose=100.0)
    e2 = haadf_expected({"Au": _slab(6)}, g, voxel_size=0.5, dose=300.0)
    np.testing.assert_allclose(e2, 3 * e1, rtol=1e-12)
    # 3 nm of Au, 25 A^2 pixel, 100 e-/A^2
    want = 100 * 25 * SCATTERING_CONSTANT * 79**1.7 * 3.0 * number_density("Au") / 100
    assert e1[0, 2, N // 2] == pytest.approx(want, rel=1e-5)


def test_point_lands_where_projector_puts_it():
    v = np.zeros((3, N, N), np.float32)
    v[1, 5, 17] = 1.0  # off-axis point
    g = TiltGeometry([-50.0, 0.0, 35.0], (3, N, N))
    img = haadf_expected({"Pt": v}, g, voxel_size=1.0, dose=10.0)
    ref = Projector(g)(v)
    for a in range(3):
        assert np.unravel_index(np.argmax(img[a]), img[a].shape) == np.unravel_index(np.argmax(ref[a]), ref[a].shape)
    np.testing.assert_allclose(img / img.max(), ref / ref.max(), rtol=1e-5, atol=1e-7)


def test_probe_blur_conserves_counts_and_noise_is_seeded():
    v = np.zeros((8, N, N), np.float32)
    v[3:5, 10:14, 10:14] = 1.0
    g = TiltGeometry([0.0, 30.0], (8, N, N))
    sharp = haadf_expected({"Au": v}, g, voxel_size=1.0, dose=50.0)
    blur = haadf_expected({"Au": v}, g, voxel_size=1.0, dose=50.0, probe_sigma=1.0)
    assert blur.sum() == pytest.approx(sharp.sum(), rel=1e-3)
    assert blur.max() < sharp.max()
    a = haadf({"Au": v}, g, voxel_size=1.0, dose=50.0, read_noise=2.0, rng=4)
    b = haadf({"Au": v}, g, voxel_size=1.0, dose=50.0, read_noise=2.0, rng=4)
    assert np.array_equal(a, b)
