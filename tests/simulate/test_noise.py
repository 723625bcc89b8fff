import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, DataError
from chemtomo.physics.counts import as_rng, gaussian, poisson, split_counts


def test_poisson_mean_and_variance():
    lam = np.full(200_000, 3.7)
    c = poisson(lam, rng=1)
    assert c.dtype.kind == "i"
    assert abs(c.mean() - 3.7) < 0.02
    assert abs(c.var() - 3.7) < 0.05


def test_same_seed_same_draws_and_generator_passthrough():
    lam = np.linspace(0, 5, 100)
    assert np.array_equal(poisson(lam, 7), poisson(lam, 7))
    g = np.random.default_rng(0)
    assert as_rng(g) is g


def test_poisson_rejects_negative():
    with pytest.raises(DataError):
        poisson([-1.0, 2.0], 0)


def test_gaussian_std():
    n = gaussian(np.zeros(100_000), 2.0, rng=3)
    assert abs(n.std() - 2.0) < 0.03
    assert np.array_equal(gaussian(np.ones(3), 0.0), np.ones(3))
    with pytest.raises(ChemtomoError):
        gaussian(np.ones(3), -1.0)


def test_split_counts_gives_independent_poisson_halves():
    c = poisson(np.full(200_000, 4.0), rng=2)
    a, b = split_counts(c, 0.5, rng=5)
    assert np.array_equal(a + b, c)
    for half in (a, b):
        assert abs(half.mean() - 2.0) < 0.02
        assert abs(half.var() - 2.0) < 0.04
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.01  # independent, unlike a fixed split
    a3, _ = split_counts(c, 0.25, rng=5)
    assert abs(a3.mean() - 1.0) < 0.02


def test_split_counts_rejects_fractional():
    with pytest.raises(DataError):
        split_counts([1.5, 2.0])
