"""The supervised U-Net denoiser: shapes, shipped weights, CLI (its training: tests/training/test_denoise.py)."""

import json

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError
from chemtomo.denoise import choose_sigma, denoise, gaussian
from chemtomo.denoise.unet import WEIGHTS, unet
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
    assert np.isfinite(out).all()  # non-negative by construction (softplus): nothing to test there


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
    g = gaussian(counts, sigma=choose_sigma(counts))
    assert rmse(out, lam) < rmse(g, lam) < rmse(counts, lam)


def test_augment_averages_the_flips_and_quarter_turns_and_lowers_the_error(projection):
    counts = np.random.default_rng(2).poisson(0.8, (2, 20, 28)).astype(np.float64)
    turned = [(k, f) for k in range(4) for f in (False, True)]
    by_hand = np.mean([np.rot90(np.flip(t, 2) if f else t, -k, axes=(1, 2)) for k, f in turned
                       for t in [unet(np.ascontiguousarray(np.flip(np.rot90(counts, k, axes=(1, 2)), 2) if f
                                                           else np.rot90(counts, k, axes=(1, 2))))]], axis=0)
    out = unet(counts, augment=True)
    np.testing.assert_allclose(out, by_hand, rtol=1e-5, atol=1e-6)
    # the average commutes with a mirror image of the input, which the plain network need not
    np.testing.assert_allclose(unet(counts[:, ::-1].copy(), augment=True), out[:, ::-1], rtol=1e-5, atol=1e-6)
    assert denoise(counts, "unet", augment=True).shape == counts.shape
    with pytest.raises(ChemtomoError, match="augment must be true or false"):
        unet(counts, augment="false")
    lam = projection(0.5)
    noisy = np.random.default_rng(6).poisson(lam)
    assert rmse(unet(noisy, augment=True), lam) < rmse(unet(noisy), lam)


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
    assert prov["denoise"]["signals"]["Au"]["options"]["augment"] is False
    code = main(["reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--denoise", "unet", "--iterations", "3",
                 "--denoise-option", "augment=true", "--out", str(tmp_path / "aug")])
    assert code == 0, capsys.readouterr().err
    prov = json.loads((tmp_path / "aug" / "chemtomo.json").read_text())["provenance"]
    assert prov["denoise"]["signals"]["Au"]["options"]["augment"] is True


def test_shipped_guided_network_uses_the_haadf_image():
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.training.denoise import haadf_guide
    from chemtomo.denoise.unet import GUIDED_WEIGHTS
    from chemtomo.simulate import phantom_from_spec

    meta = json.loads(GUIDED_WEIGHTS.with_suffix(".json").read_text())
    assert meta["architecture"]["in_channels"] == 3 and meta["training"]["guide"]
    n = 48
    vols = phantom_from_spec("core-shell:cube,ratio=0.5,rotation=random,core=random", ["Au", "Ag"], (n, n, n), seed=4)
    op = Projector(TiltGeometry([-40.0, 0.0, 50.0], (n, n, n)))
    errs = {"plain": [], "guided": []}
    for el in ("Au", "Ag"):
        p = np.asarray(op(vols[el]), dtype=np.float64)
        lam = p / p[p > 0.01 * p.max()].mean() + 0.02  # 1 count/px on the footprint
        counts = np.random.default_rng(3).poisson(lam)
        errs["plain"].append(rmse(unet(counts), lam))
        errs["guided"].append(rmse(unet(counts, guide=haadf_guide(vols, op) * 37.0), lam))  # any HAADF scale
    assert np.mean(errs["guided"]) < 0.9 * np.mean(errs["plain"]), errs  # 19 % lower here



def test_cli_denoise_with_a_guide_runs_the_guided_network(tmp_path):
    counts = np.random.default_rng(2).poisson(1.0, (2, 32, 32)).astype(np.float32)
    guide = np.random.default_rng(3).uniform(1, 2, (2, 32, 32)).astype(np.float32)
    write_stack(tmp_path / "c.mrc", counts)
    write_stack(tmp_path / "h.mrc", guide)
    assert 0 == main(["denoise", "--method", "unet", "--guide", str(tmp_path / "h.mrc"), str(tmp_path / "c.mrc"),
                      str(tmp_path / "out.mrc")])
    np.testing.assert_allclose(read_stack(tmp_path / "out.mrc")[0], unet(counts, guide=guide), rtol=1e-4, atol=1e-5)
