import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.recon.channels import Channel, Identity, Mix, mix_weights
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
