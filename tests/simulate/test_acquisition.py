import numpy as np
import pytest

from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.simulate.acquisition import SweptProjector, damage_factors, dose_from_time, dwell_time, random_shifts, time_from_dose
from chemtomo.core.shifts import apply_shifts


def test_swept_projector_averages_sub_angles():
    v = np.zeros((2, 16, 16), np.float32)
    v[:, 4, 12] = 1.0
    g = TiltGeometry([0.0, 30.0], (2, 16, 16))
    sp = SweptProjector(g, 10.0, n_sub=2)
    want = Projector(TiltGeometry([-2.5, 2.5, 27.5, 32.5], (2, 16, 16)))(v).reshape(2, 2, 2, 16).mean(axis=1)
    np.testing.assert_allclose(sp(v), want, rtol=1e-6)
    np.testing.assert_allclose(SweptProjector(g, 0.0)(v), Projector(g)(v), rtol=1e-6)
    assert sp(v).sum() == pytest.approx(Projector(g)(v).sum(), rel=3e-3)  # mass conserved (Joseph: to interpolation)


def test_shifts_are_seeded_and_applied_subpixel():
    s = random_shifts(5, 1.0, rng=3)
    assert s.shape == (5, 2) and np.array_equal(s, random_shifts(5, 1.0, rng=3))
    walk = random_shifts(5, 1.0, walk=True, rng=3)
    np.testing.assert_allclose(walk, np.cumsum(s, axis=0))
    img = np.zeros((1, 9, 9))
    img[0, 4, 4] = 1.0
    out = apply_shifts(img, [[1.0, 0.5]])
    assert out[0, 5, 4] == pytest.approx(0.5) and out[0, 5, 5] == pytest.approx(0.5)
    y, u = np.indices((9, 9))
    assert (out[0] * u).sum() == pytest.approx(4.5)


def test_damage_factors_exponential_mass_loss():
    d = np.full(4, 100.0)
    f = damage_factors(d, 1000.0)
    assert np.all(np.diff(f) < 0) and f[0] < 1
    # exact average of exp(-D/Dc) over the first exposure
    assert f[0] == pytest.approx((1 - np.exp(-0.1)) / 0.1)
    assert f[2] == pytest.approx(np.exp(-0.2) * (1 - np.exp(-0.1)) / 0.1)
    np.testing.assert_array_equal(damage_factors(d, None), 1.0)


def test_dose_time_round_trip():
    # 100 pA for 1 s on 100 x 100 pixels of 1 nm: 6.24e8 e- over 1e6 A^2
    dose = dose_from_time(1.0, beam_current=100.0, n_pixels=10_000, pixel_size=1.0)
    assert dose == pytest.approx(100e-12 / 1.602176634e-19 / 1e6)
    assert time_from_dose(dose, beam_current=100.0, n_pixels=10_000, pixel_size=1.0) == pytest.approx(1.0)
    assert dwell_time(10.0, 10_000, 10) == pytest.approx(1e-4)
