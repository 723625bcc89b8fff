import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, DataError, ShapeError
from chemtomo.denoise import DENOISERS, choose_sigma, denoise, gaussian, resolve_options, split_folds

DOSES = (0.3, 1.0, 10.0)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def noisy(projection):
    """Poisson counts of the phantom projections at each dose, with their expectation."""
    rng = np.random.default_rng(11)
    return {rho: (projection(rho), rng.poisson(projection(rho))) for rho in DOSES}


@pytest.mark.slow
@pytest.mark.parametrize("method", list(DENOISERS))
def test_every_denoiser_reduces_the_error_at_every_dose(noisy, method):
    """Against the noiseless expectation: at most half the raw error (median: 80 %, it is biased at low counts)."""
    bar = 0.8 if method == "median" else 0.5
    for rho, (lam, counts) in noisy.items():
        if method == "bm3d":  # about 0.5 s per image
            lam, counts = lam[:1], counts[:1]
        before = counts.copy()
        budget = {"minutes": None, "steps": 10, "tile": 32} if method == "n2n" else {}  # training is tested in test_n2n
        out = denoise(counts, method, **budget)
        np.testing.assert_array_equal(counts, before)  # input untouched
        assert out.shape == counts.shape and out.dtype == np.float32
        ratio = rmse(out, lam) / rmse(counts, lam)
        assert ratio < bar, f"{method} at {rho} counts/px: error ratio {ratio:.3f}"


def test_auto_sigma_decreases_with_dose_and_is_near_the_oracle(noisy):
    sigmas = {rho: choose_sigma(counts) for rho, (lam, counts) in noisy.items()}
    assert sigmas[0.3] > sigmas[1.0] > sigmas[10.0], sigmas
    for rho, (lam, counts) in noisy.items():
        best = min(rmse(gaussian(counts, sigma=s), lam) for s in np.geomspace(0.5, 8, 25))
        assert rmse(gaussian(counts, sigma=sigmas[rho]), lam) < 1.15 * best, rho


def test_single_image_and_stack_agree(noisy):
    lam, counts = noisy[1.0]
    for method in ("gaussian", "median", "tv"):
        opts = resolve_options(counts, method)
        one = denoise(counts[1], method, **opts)
        assert one.shape == counts.shape[1:]
        np.testing.assert_allclose(one, denoise(counts, method, **opts)[1], rtol=1e-5, atol=1e-6)


def test_resolved_options_repeat_the_run(noisy):
    counts = noisy[1.0][1]
    opts = resolve_options(counts, "tv")
    assert set(opts) == {"weight", "iterations", "rng"} and opts["weight"] > 0
    np.testing.assert_array_equal(denoise(counts, "tv"), denoise(counts, "tv", **opts))
    assert resolve_options(counts, "gaussian", sigma=1.5)["sigma"] == 1.5  # given values are kept


def test_split_folds_are_thinned_copies():
    counts = np.random.default_rng(0).poisson(4.0, (2, 50, 50))
    folds = split_folds(counts, 5, rng=1)
    np.testing.assert_array_equal(sum(folds), counts)
    for f in folds:
        assert f.mean() == pytest.approx(0.8, rel=0.05)


@pytest.mark.parametrize("bad,error,text", [
    (np.full((4, 4), np.nan), DataError, "NaN"),
    (-np.ones((4, 4)), DataError, "negative"),
    (np.ones(5), ShapeError, "(ny, nu)"),
    (np.ones((2, 2, 3, 3)), ShapeError, "(n_tilts, ny, nu)"),
])
def test_invalid_input_says_what_to_fix(bad, error, text):
    for method in DENOISERS:
        with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
            denoise(bad, method)


def test_invalid_method_and_options():
    img = np.ones((8, 8))
    with pytest.raises(ChemtomoError, match="unknown denoiser 'nlm'; choose one of gaussian, median, tv, bm3d, pca"):
        denoise(img, "nlm")
    with pytest.raises(ChemtomoError, match="median has no option sigma; its options are size"):
        denoise(img, "median", sigma=2)
    with pytest.raises(ChemtomoError, match="sigma must be a positive number"):
        denoise(img, "gaussian", sigma=-1)
    with pytest.raises(ChemtomoError, match="odd"):
        denoise(img, "median", size=4)
    with pytest.raises(ChemtomoError, match="patch"):
        denoise(img, "pca", patch=20)
