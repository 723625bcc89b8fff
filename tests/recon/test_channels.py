import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.recon.channels import Channel, Identity, Mix, mix_weights, partition
from chemtomo.testing import check_operator

SHAPE = (3, 4, 5, 6)


def _composed():
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector

    return -2.0 * Projector(TiltGeometry([-40.0, 10.0, 55.0], SHAPE[1:])) @ Channel(SHAPE, 1)


@pytest.mark.parametrize("op", [Channel(SHAPE, 0), Channel(SHAPE, 2), Mix([0.5, 2.0, 1.5], SHAPE), Identity(SHAPE),
                                _composed()])
def test_adjoints(op):
    assert check_operator(op) < 1e-6


def test_channel_and_mix_values():
    x = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    assert np.array_equal(Channel(SHAPE, 1)(x), x[1])
    assert np.allclose(Mix([1.0, 2.0, 3.0], SHAPE)(x), x[0] + 2 * x[1] + 3 * x[2])
    assert Mix([3.0, 4.0, 0.0], SHAPE).norm() == pytest.approx(5.0)
    assert Mix([3.0, 4.0, 0.0], SHAPE).T.norm(iterations=50) == pytest.approx(5.0, rel=1e-3)  # power method agrees


def test_bad_arguments():
    with pytest.raises(ChemtomoError, match="outside"):
        Channel(SHAPE, 3)
    with pytest.raises(ChemtomoError, match="3 finite weights"):
        Mix([1.0, 2.0], SHAPE)


def test_mix_weights_recover_known_ratio():
    rng = np.random.default_rng(1)
    y, u = np.mgrid[:32, :32]
    shift = np.arange(5)[:, None, None]
    a = 40 * np.exp(-((u - 10 - shift) ** 2 + (y - 16) ** 2) / 40.0)  # two overlapping blobs, tens of counts
    b = 20 * np.exp(-((u - 20 + shift) ** 2 + (y - 14) ** 2) / 60.0)
    h = 3.0 * a + 0.5 * b
    counts = [rng.poisson(a).astype(np.float32), rng.poisson(b).astype(np.float32)]
    r = mix_weights(h, counts, smooth=1.0)
    assert r == pytest.approx([3.0, 0.5], rel=0.1)
    assert np.allclose(mix_weights(h, [a, b], smooth=0, poisson=False), [3.0, 0.5], rtol=1e-6)


def test_mix_weights_poisson_correction_removes_the_low_count_bias():
    # at well under one count per pixel the noise of the maps biases plain least squares towards zero
    y, u = np.mgrid[:32, :32]
    shift = np.arange(30)[:, None, None]
    a = 0.5 * np.exp(-((u - 10 - shift / 5) ** 2 + (y - 16) ** 2) / 30.0)
    b = 0.4 * np.exp(-((u - 20 + shift / 5) ** 2 + (y - 14) ** 2) / 50.0)
    h = 3.0 * a + 0.5 * b + np.random.default_rng(2).normal(0, 0.02, a.shape)
    plain, corrected = [], []
    for seed in range(8):
        counts = [np.random.default_rng(seed).poisson(m).astype(np.float32) for m in (a, b)]
        plain.append(mix_weights(h, counts, poisson=False))
        corrected.append(mix_weights(h, counts))
    plain, corrected = np.mean(plain, 0), np.mean(corrected, 0)
    assert plain[0] < 0.9 * 3.0  # attenuated (2.59)
    assert corrected[0] == pytest.approx(3.0, rel=0.05)  # 3.01
    assert corrected[1] == pytest.approx(0.5, abs=0.1)  # 0.46


def test_partition_recovers_the_elements_from_the_haadf_and_their_proportions():
    rng = np.random.default_rng(0)
    au, ag = rng.uniform(0, 2, (2, 6, 7, 8))
    au[0] = 0.0
    r = (3.0, 1.0)
    h = r[0] * au + r[1] * ag
    # volumes off by a common factor per voxel (the noise of a shared support, a blur) keep their fractions
    field = rng.uniform(0.3, 3.0, au.shape)
    out = partition(h, [au * field, ag * field], r, keep_totals=False)
    np.testing.assert_allclose(out[0], au, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], ag, rtol=1e-5, atol=1e-6)
    # keeping totals: only the ratio of the weights matters, and each result has its volume's total
    kept = partition(5 * h, [au * 2, ag * 2], (30.0, 10.0))
    np.testing.assert_allclose(kept[0], 2 * au, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([k.sum() for k in kept], [2 * au.sum(), 2 * ag.sum()], rtol=1e-5)
    # a voxel no element volume holds stays empty; negative inputs count as zero
    empty = partition(np.ones((2, 2, 2)), [np.zeros((2, 2, 2)), -np.ones((2, 2, 2))], (1.0, 1.0))
    assert all(np.all(e == 0) for e in empty)
    # an element invisible in the HAADF (weight 0) keeps its own volume; the others share out all of h
    light = rng.uniform(0, 1, au.shape)
    out = partition(r[0] * au, [au * field, light], (r[0], 0.0), keep_totals=False)
    np.testing.assert_allclose(out[0], au, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1], light, rtol=1e-6)


def test_partition_smooths_the_fractions_not_the_haadf():
    h = np.zeros((5, 9, 9))
    h[2, 4, 4] = 7.0  # one voxel of matter: smoothing the fractions cannot spread it
    x = np.zeros((5, 9, 9))
    x[2, 3:6, 3:6] = 1.0
    out = partition(h, [x, 0.5 * x], (2.0, 2.0), smooth=1.5, keep_totals=False)
    assert np.count_nonzero(out[0]) == 1 and out[0][2, 4, 4] == pytest.approx(7.0 / 2 * 2 / 3, rel=1e-5)


def test_partition_refuses_bad_input():
    v = np.ones((2, 2, 2))
    with pytest.raises(ChemtomoError, match="one weight per element"):
        partition(v, [v, v], (1.0,))
    with pytest.raises(ChemtomoError, match="at least one positive"):
        partition(v, [v, v], (0.0, 0.0))
    with pytest.raises(ChemtomoError, match=">= 0"):
        partition(v, [v, v], (1.0, -1.0))
    with pytest.raises(ChemtomoError, match="shape"):
        partition(v, [v, np.ones((2, 2, 3))], (1.0, 1.0))

