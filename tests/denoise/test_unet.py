"""The supervised U-Net denoiser: shapes, shipped weights, training, CLI."""

import json

import numpy as np
import pytest
import torch

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError
from chemtomo.denoise import choose_sigma, denoise, gaussian
from chemtomo.denoise.train import _noisy_batch, loss_fn, train_unet
from chemtomo.denoise.unet import WEIGHTS, build, load_model, unet
from chemtomo.io import read_stack, write_stack


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.mark.parametrize("shape", [(3, 37, 29), (13, 21), (1, 3, 5), (2, 2)])
def test_any_shape_round_trips(shape):
    counts = np.random.default_rng(0).poisson(1.0, shape).astype(np.float64)
    before = counts.copy()
    out = unet(counts)
    np.testing.assert_array_equal(counts, before)
    assert out.shape == shape and out.dtype == np.float32
    assert np.isfinite(out).all() and (out >= 0).all()


def test_empty_map_gives_zeros_and_stack_matches_images():
    assert not unet(np.zeros((8, 8))).any()
    counts = np.random.default_rng(1).poisson(0.5, (3, 24, 24))
    np.testing.assert_allclose(unet(counts, batch=2)[1], unet(counts[1]), rtol=1e-5, atol=1e-6)


def test_shipped_weights_beat_raw_counts_and_the_gaussian_filter(projection):
    assert WEIGHTS.exists() and WEIGHTS.with_suffix(".json").exists()
    meta = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert {"architecture", "training", "seeds", "validation"} <= set(meta)
    lam = projection(1.0)
    counts = np.random.default_rng(5).poisson(lam)
    out = denoise(counts, "unet")
    assert (out >= 0).all()
    g = gaussian(counts, sigma=choose_sigma(counts))
    assert rmse(out, lam) < rmse(g, lam) < rmse(counts, lam)


def test_a_few_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    maps = np.stack([((yy - 16 + d) ** 2 + (xx - 16) ** 2 < 100).astype(np.float32) * (1 + 0.1 * d)
                     for d in range(4)])
    maps /= maps.mean(axis=(1, 2), keepdims=True) * 3
    counts, lam = _noisy_batch(maps, rng, torch.Generator().manual_seed(0))
    model = build({"channels": [8, 16]})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = loss_fn(model, counts, lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_train_unet_writes_loadable_weights(tmp_path):
    out = tmp_path / "u.pt"
    model, info = train_unet(out, steps=2, batch=2, tile=32, buffer=16, val_particles=0, progress=False,
                             arch={"channels": [8, 16]})
    assert info["training"]["steps"] == 2 and info["architecture"]["channels"] == [8, 16]
    assert json.loads(out.with_suffix(".json").read_text())["seeds"]["train"].startswith("default_rng([2026")
    loaded = load_model(out, "cpu")
    assert loaded.levels == 1
    img = np.random.default_rng(2).poisson(2.0, (10, 10))
    np.testing.assert_allclose(unet(img, weights=out), unet(img, weights=model), rtol=1e-6)
    with pytest.raises(ChemtomoError, match="benchmark"):
        train_unet(None, steps=1, seed=1000)
    with pytest.raises(ChemtomoError, match="not found"):
        unet(img, weights=tmp_path / "missing.pt")


def test_cli_denoise_with_unet(tmp_path, projection, capsys):
    counts = np.random.default_rng(3).poisson(projection(1.0)).astype(np.float32)
    write_stack(tmp_path / "au.mrc", counts, [-50.0, 30.0], pixel_size=0.5)
    assert main(["denoise", str(tmp_path / "au.mrc"), str(tmp_path / "au_u.mrc"), "--method", "unet"]) == 0
    assert "unet" in capsys.readouterr().out
    data, _ = read_stack(tmp_path / "au_u.mrc")
    np.testing.assert_allclose(data, unet(counts), rtol=1e-5, atol=1e-6)


def test_reconstruct_with_denoise_unet(tmp_path, projection, capsys):
    counts = np.random.default_rng(4).poisson(np.concatenate([projection(1.0)] * 2)).astype(np.float32)
    write_stack(tmp_path / "au.mrc", counts, [-60.0, -20.0, 20.0, 60.0], pixel_size=0.5)
    code = main(["reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--denoise", "unet", "--iterations", "3",
                 "--out", str(tmp_path / "rec")])
    assert code == 0, capsys.readouterr().err
    prov = json.loads((tmp_path / "rec" / "chemtomo.json").read_text())["provenance"]
    assert prov["denoise"]["method"] == "unet" and prov["denoise"]["signals"]["Au"]["options"]["batch"] == 8


def test_train_unet_continues_from_weights(tmp_path):
    first = tmp_path / "a.pt"
    train_unet(first, steps=1, batch=2, tile=32, buffer=16, val_particles=0, progress=False, arch={"channels": [8, 16]})
    _, info = train_unet(tmp_path / "b.pt", steps=1, batch=2, tile=32, buffer=16, val_particles=0, progress=False,
                         init=first, seed=7, dose_range=(1.0, 2.0))
    assert info["architecture"]["channels"] == [8, 16] and info["training"]["init"] == str(first)
    assert info["training"]["dose_range_counts_per_px"] == [1.0, 2.0]
