"""Training of the U-Net denoiser: the loss falls, weights load back, continued and guided training."""

import json

import numpy as np
import pytest
import torch

from chemtomo.core.errors import ChemtomoError
from chemtomo.denoise.unet import unet
from chemtomo.nn.unet import build, load_model
from chemtomo.training.denoise import _noisy_batch, loss_fn, train_unet


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


def test_train_unet_continues_from_weights(tmp_path):
    first = tmp_path / "a.pt"
    train_unet(first, steps=1, batch=2, tile=32, buffer=16, val_particles=0, progress=False, arch={"channels": [8, 16]})
    _, info = train_unet(tmp_path / "b.pt", steps=1, batch=2, tile=32, buffer=16, val_particles=0, progress=False,
                         init=first, seed=7, dose_range=(1.0, 2.0))
    assert info["architecture"]["channels"] == [8, 16] and info["training"]["init"] == str(first)
    assert info["training"]["dose_range_counts_per_px"] == [1.0, 2.0]


def test_guided_training_writes_a_three_input_network_and_refuses_a_mismatch(tmp_path):
    model, info = train_unet(tmp_path / "g.pt", steps=1, guide=True, init="unet", val_particles=0, batch=2, tile=32,
                             progress=False, seed=5)
    assert info["architecture"]["in_channels"] == 3 and (tmp_path / "g.json").is_file()
    counts = np.random.default_rng(0).poisson(1.0, (2, 32, 32)).astype(np.float64)
    out = unet(counts, guide=counts + 1.0, weights=tmp_path / "g.pt")
    assert out.shape == counts.shape and np.isfinite(out).all()
    with pytest.raises(ChemtomoError, match="guide"):
        train_unet(None, steps=1, guide=False, init=tmp_path / "g.pt", val_particles=0, progress=False, seed=5)
