"""Noise2Noise training on the data itself: binomial splitting and repeated-scan frames."""

import json

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.denoise import choose_sigma, denoise, gaussian
from chemtomo.denoise.n2n import n2n, n2n_frames
from chemtomo.denoise.unet import unet
from chemtomo.io import read_stack, write_stack
from chemtomo.testing import disc_images


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.mark.slow
def test_fine_tuned_n2n_beats_the_gaussian_filter_and_is_reproducible(projection):
    lam = projection(1.0)
    counts = np.random.default_rng(7).poisson(lam).astype(np.float64)
    before = counts.copy()
    out = n2n(counts, minutes=None, steps=30, tile=32, batch=8, every=10)
    np.testing.assert_array_equal(counts, before)
    assert out.shape == counts.shape and out.dtype == np.float32 and (out >= 0).all()
    g = gaussian(counts, sigma=choose_sigma(counts))
    assert rmse(out, lam) < rmse(g, lam) < rmse(counts, lam)
    again = denoise(counts, "n2n", minutes=None, steps=30, tile=32, batch=8, every=10)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_noisy_data_only_training_learns_to_denoise():
    """From random weights, pairs of binomial halves of ten noisy disks teach the network to halve the error."""
    yy, xx = np.mgrid[:32, :32]
    rng = np.random.default_rng(3)
    lam = np.stack([4.0 * ((yy - 16 - d) ** 2 + (xx - 15 + d) ** 2 < 81) + 0.2 for d in range(-5, 5)])
    counts = rng.poisson(lam).astype(np.float64)
    out = n2n(counts, init="scratch", minutes=None, steps=250, tile=32, batch=8, lr=3e-3, holdout=0.0)
    assert rmse(out, lam) < 0.5 * rmse(counts, lam)


def test_saved_weights_reproduce_the_output(tmp_path, projection):
    counts = np.random.default_rng(2).poisson(projection(3.0))
    out = n2n(counts, minutes=None, steps=10, tile=32, batch=4, every=5, save=tmp_path / "mine.pt")
    info = json.loads((tmp_path / "mine.json").read_text())
    assert info["n2n"]["pairs"] == "binomial splitting" and info["n2n"]["steps"] == 10
    assert info["curve"][0]["step"] == 0 and "holdout_mse" in info["curve"][0]
    assert 0 <= info["n2n"]["best_step"] <= 10
    again = unet(counts, weights=tmp_path / "mine.pt")  # one pass of the saved network over all the counts
    if info["n2n"]["inference"] == "whole":
        np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-5)
    else:  # n2n's output is the mean of passes over thinned counts: close to the one pass, not equal
        assert info["n2n"]["inference"] == "averaged" and rmse(again, out) < 0.1 * rmse(counts, out)


def test_repeated_frames_give_a_better_mean_than_averaging(projection):
    lam = projection(0.3)
    frames = np.random.default_rng(4).poisson(np.broadcast_to(lam, (6,) + lam.shape)).astype(np.float64)
    mean, info = n2n_frames(frames, minutes=None, steps=20, tile=32, batch=4, every=10)
    assert mean.shape == lam.shape and info["n2n"]["pairs"] == "random halves of 6 frames"
    assert rmse(mean, lam) < 0.5 * rmse(frames.mean(0), lam)
    one, _ = n2n_frames(frames[:, 0], minutes=None, steps=2, tile=32, batch=2, every=1)
    assert one.shape == lam.shape[1:]


def test_bad_input_is_refused():
    img = np.random.default_rng(0).poisson(1.0, (16, 16)).astype(float)
    with pytest.raises(ChemtomoError, match="not counts"):
        n2n(img / img.max() * 0.99 + 1e-3, steps=1)
    with pytest.raises(ShapeError, match="at least 2 frames"):
        n2n_frames(img[None], steps=1)
    with pytest.raises(ChemtomoError, match="init"):
        n2n(img, steps=1, init="imagenet")
    with pytest.raises(ChemtomoError, match="holdout"):
        n2n(img, steps=1, holdout=0.7)
    with pytest.raises(ChemtomoError, match="minutes"):
        n2n(img, minutes=-1)


@pytest.mark.slow
def test_cli_trains_on_the_input_and_on_frames(tmp_path, projection):
    lam = projection(1.0)
    rng = np.random.default_rng(5)
    write_stack(tmp_path / "in.mrc", rng.poisson(lam), [-50.0, 30.0])
    assert 0 == main(["denoise", "--method", "n2n", "--option", "steps=3", "--option", "tile=32", str(tmp_path / "in.mrc"),
          str(tmp_path / "out.mrc")])
    out, meta = read_stack(tmp_path / "out.mrc")
    assert out.shape == lam.shape and list(meta["angles"]) == [-50.0, 30.0]
    write_stack(tmp_path / "frames.mrc", rng.poisson(np.broadcast_to(lam[0] / 4, (4,) + lam.shape[1:])))
    assert 0 == main(["denoise", "--method", "n2n", "--option", "steps=2", "--guide", str(tmp_path / "in.mrc"),
          str(tmp_path / "in.mrc"), str(tmp_path / "guided.mrc")])
    assert read_stack(tmp_path / "guided.mrc")[0].shape == lam.shape
    for method in ("n2n", "gaussian"):
        assert 0 == main(["denoise", "--frames", "--method", method, "--option", "steps=3" if method == "n2n" else "sigma=1",
              str(tmp_path / "frames.mrc"), str(tmp_path / f"mean_{method}.mrc")])
        mean, _ = read_stack(tmp_path / f"mean_{method}.mrc")
        assert mean.shape == (1,) + lam.shape[1:]
        assert rmse(mean[0], lam[0] / 4) < 0.6 * rmse(np.zeros_like(lam[0]), lam[0] / 4)


def test_guide_channel_starts_as_the_plain_network_and_is_checked(projection):
    lam = projection(1.0)
    counts = np.random.default_rng(8).poisson(lam)
    guide = lam + 0.5
    start = n2n(counts, guide=guide, minutes=None, steps=0)
    np.testing.assert_allclose(start, unet(counts), rtol=1e-4, atol=1e-5)
    out = n2n(counts, guide=guide[0], minutes=None, steps=10, tile=32, batch=4, holdout=0.0)
    assert out.shape == counts.shape and np.isfinite(out).all()
    with pytest.raises(ShapeError, match="guide"):
        n2n(counts, guide=guide[:, :10], steps=1)


def test_series_denoising_takes_the_haadf_signal_as_guide(projection):
    from chemtomo.core.data import Signal, TiltSeries
    from chemtomo.denoise import denoise_series

    lam = projection(1.0)
    rng = np.random.default_rng(9)
    series = TiltSeries({"Ag": Signal(rng.poisson(lam).astype(float), [-50.0, 30.0]),
                         "HAADF": Signal(lam * 10, [-50.0, 30.0])})
    out, record = denoise_series(series, "n2n", options={"guide": "HAADF", "steps": 3, "tile": 32, "minutes": None})
    assert record["signals"]["Ag"]["options"]["guide"] == "HAADF"
    np.testing.assert_array_equal(out["HAADF"].data, series["HAADF"].data)
    assert rmse(out["Ag"].data, lam) < rmse(series["Ag"].data, lam)
    with pytest.raises(ChemtomoError, match="no such signal"):
        denoise_series(series, "n2n", options={"guide": "Au", "steps": 1})


@pytest.mark.slow
def test_fine_tuning_improves_on_its_start_for_images_unlike_the_training_set():
    """Issue 27: from the shipped U-Net, n2n kept its starting weights (best step 0); on a field of small blobs
    (not a particle projection) the averaged inference must now beat its start and the Gaussian filter."""
    p = disc_images(15, 64, rng=5)
    lam = p / p[p > 0.01 * p.max()].mean() + 0.02
    counts = np.random.default_rng(1).poisson(lam).astype(np.float64)
    out = n2n(counts, minutes=None, steps=300, tile=32, batch=8, save=None)
    start = unet(counts)
    g = gaussian(counts, sigma=choose_sigma(counts))
    assert rmse(out, lam) < 0.95 * rmse(start, lam) and rmse(out, lam) < rmse(g, lam)
    assert np.isfinite(out).all() and (out >= 0).all()
