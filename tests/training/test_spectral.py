"""Training of the learned spectral extractor: weights that load, continued training, the simulator's options."""

import json

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.physics.xray import energy_axis
from chemtomo.nn.unet import build, save_weights
from chemtomo.spectral.learned import N_FEATURES, learned_maps
from chemtomo.spectral.lines import auto_lines, line_energy
from chemtomo.training.spectral import HELD_OUT, simulate_edx, simulate_eels, train_extractor


def test_train_extractor_writes_loadable_weights(tmp_path):
    out = tmp_path / "net.pt"
    model, info = train_extractor(steps=2, size=16, batch_images=2, n_val=2, progress=False, out=out,
                                  arch={"channels": [4, 8]})
    assert out.is_file() and info["training"]["steps"] == 2
    assert info["training"]["minutes"] is None  # a step budget, not a time budget
    assert json.loads(out.with_suffix(".json").read_text())["architecture"]["channels"] == [4, 8]
    sim = simulate_edx(np.random.default_rng(1), 16, elements=["Cu"], counts=5.0)
    maps, _ = learned_maps(sim["si"], sim["energy"], sim["lines"], weights=out)
    assert maps["Cu_Ka"].shape == (16, 16) and np.all(np.isfinite(maps["Cu_Ka"]))
    _, again = train_extractor(steps=1, size=16, batch_images=2, n_val=2, progress=False, init=out,
                               overlap_fraction=1.0)
    assert again["architecture"]["channels"] == [4, 8] and again["training"]["init"] == str(out)
    old = tmp_path / "old.pt"  # weights of the earlier 5-input feature set continue with the new inputs at zero
    arch = {"channels": [4, 8], "in_channels": 5, "out_channels": 2, "softplus": False}
    save_weights(build(arch), old, {"architecture": arch})
    _, grown = train_extractor(steps=1, size=16, batch_images=2, n_val=2, progress=False, init=old)
    assert grown["architecture"]["in_channels"] == N_FEATURES


def test_overlapping_pairs_are_heavy_overlaps_of_training_elements():
    from chemtomo.training.spectral import overlapping_pairs

    pairs = overlapping_pairs()
    assert len(pairs) > 10 and not {el for p in pairs for el in p} & set(HELD_OUT)
    e = energy_axis(2000, 0.01)
    for a, b in pairs:
        gap = min(abs(line_energy(x) - line_energy(y)) for x in auto_lines(a, e) for y in auto_lines(b, e))
        assert gap <= 0.12


@pytest.mark.parametrize("kind", ["edx", "eels"])
def test_dilute_scales_one_element_of_the_truth(kind):
    """A minor element: one element's truth falls by the factor against the other's, nothing else changes."""
    sim = (lambda **kw: simulate_edx(np.random.default_rng(5), 24, elements=["S_Ka", "Mo_La"], counts=2.0, **kw)) \
        if kind == "edx" else \
        (lambda **kw: simulate_eels(np.random.default_rng(5), 24, edges=["Ti_L23", "O_K"], counts=2.0,
                                    delay_spread=0.0, **kw))
    full, minor = sim(), sim(dilute=0.1)
    ratio = minor["truth"].sum(axis=(1, 2)) / full["truth"].sum(axis=(1, 2))
    assert sorted(ratio / ratio.max()) == pytest.approx([0.1, 1.0], rel=1e-9)
    with pytest.raises(ChemtomoError, match="dilute"):
        sim(dilute=1.5)
    from chemtomo.training.spectral import example

    x, y, c = example(np.random.default_rng(0), 16, eels_fraction=1.0, minor_fraction=1.0, eels_minor=True)
    assert x.shape[1] == N_FEATURES and y.shape == (x.shape[0], 16, 16) and np.all(np.isfinite(y.numpy()))


def test_eels_minor_range_sets_the_dilution_of_eels_images(monkeypatch):
    """`eels_minor_range` is the range EELS minor edges are diluted in (nearly absent edges down to 0.001)."""
    import chemtomo.training.spectral as train

    seen = []
    real = train.simulate_eels
    monkeypatch.setattr(train, "simulate_eels", lambda rng, n, dilute=None: seen.append(dilute) or real(rng, n, dilute=dilute))
    train.example(np.random.default_rng(0), 16, eels_fraction=1.0, minor_fraction=1.0, eels_minor=True,
                  eels_minor_range=(0.002, 0.002))
    assert seen and seen[0] == pytest.approx(0.002)
