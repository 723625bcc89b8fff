import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm, poisson

from chemtomo.denoise.vst import anscombe, anscombe_variance, inverse_anscombe


def exact_expectation(lam, gain=1.0, read_noise=0.0):
    """E[f(z)] by direct summation (and adaptive quadrature over the read-out noise), independent of the module."""
    if read_noise == 0:
        k = np.arange(0, int(lam + 15 * np.sqrt(lam) + 50))
        pk = poisson.pmf(k, lam)
        return float(pk @ anscombe(gain * k, gain=gain))
    k = np.arange(0, int(lam + 10 * np.sqrt(lam) + 15))
    pk = poisson.pmf(k, lam)
    kink = -0.375 * gain - read_noise**2 / gain  # f is clipped at 0 below this detector value
    fk = [quad(lambda n: anscombe(gain * kk + n, gain=gain, read_noise=read_noise) * norm.pdf(n, scale=read_noise),
               -12 * read_noise, 12 * read_noise, points=[kink - gain * kk], limit=200)[0] for kk in k]
    return float(pk @ np.array(fk))


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 60.0, 199.0, 400.0])
def test_inverse_of_the_exact_expectation_is_exact(lam):
    assert inverse_anscombe(exact_expectation(lam)) == pytest.approx(lam, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("lam,gain,read_noise", [(0.5, 2.0, 1.5), (5.0, 2.0, 1.5), (2.0, 1.0, 0.5)])
def test_generalized_inverse_with_gain_and_read_noise(lam, gain, read_noise):
    d = exact_expectation(lam, gain, read_noise)
    assert inverse_anscombe(d, gain=gain, read_noise=read_noise) == pytest.approx(gain * lam, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("lam", [0.1, 0.3, 1.0, 10.0])
def test_round_trip_on_constant_images_is_unbiased(lam):
    """The ideal denoiser of a constant image is its mean in the Anscombe domain; the exact inverse then
    returns the count level within 2 % + 0.002 counts (256 x 256 pixels: sampling error well below that),
    where the algebraic inverse is off by 0.03-0.18 counts."""
    counts = np.random.default_rng(4).poisson(lam, (256, 256))
    d = anscombe(counts).mean()
    tol = 0.02 * lam + 0.002
    assert abs(inverse_anscombe(d) - lam) < tol
    if lam <= 1:
        assert abs((d / 2) ** 2 - 0.375 - lam) > 3 * tol  # the naive inverse fails the same bar


@pytest.mark.parametrize("lam", [0.3, 3.0, 30.0])
def test_variance_matches_sampling(lam):
    counts = np.random.default_rng(5).poisson(lam, 400_000)
    assert anscombe_variance(lam) == pytest.approx(anscombe(counts).var(), rel=0.02)


def test_inputs_are_not_modified_and_shapes_kept():
    x = np.arange(12.0).reshape(3, 4)
    before = x.copy()
    assert inverse_anscombe(anscombe(x)).shape == (3, 4)
    np.testing.assert_array_equal(x, before)
