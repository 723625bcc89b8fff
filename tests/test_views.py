"""Missing-view synthesis: accuracy against the noiseless truth of a known phantom, merging, validation."""

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, DataError, ShapeError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.views import fill_angles, synthesize_views
from chemtomo.recon import sirt
from chemtomo.simulate import phantom_from_spec
from chemtomo.testing import nrmse

N = 32
RHO = 3.0  # mean counts/px on the footprint per view
ANGLES = np.arange(-60.0, 60.5, 20.0)  # 7 measured views
NEW = fill_angles(ANGLES, 10.0)  # the 6 views between them


@pytest.fixture(scope="module")
def case():
    """Ag shell of a core-shell sphere: truth, count scale, noisy measured counts, noiseless views at NEW."""
    vol = phantom_from_spec("core-shell:sphere,ratio=0.6,rotation=none,position=centre", ["Au", "Ag"], (N, N, N),
                            seed=1)["Ag"]
    p = np.asarray(Projector(TiltGeometry(ANGLES, (N, N, N)))(vol), dtype=np.float64)
    scale = RHO / p[p > 0.01 * p.max()].mean()
    bg = 0.02 * RHO
    counts = np.random.default_rng(3).poisson(p * scale + bg).astype(np.float64)
    expected_new = np.asarray(Projector(TiltGeometry(NEW, (N, N, N)))(vol), dtype=np.float64) * scale + bg
    before = counts.copy()
    merged, merged_angles, info = synthesize_views(counts, ANGLES, NEW, background=bg, steps=60, minutes=None,
                                                   batch=8, every=10, seed=0)
    np.testing.assert_array_equal(counts, before)
    plain, _, plain_info = synthesize_views(counts, ANGLES, NEW, background=bg, refine=False)
    return dict(vol=vol, scale=scale, bg=bg, counts=counts, expected_new=expected_new, merged=merged,
                angles=merged_angles, info=info, plain=plain, plain_info=plain_info)


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


@pytest.mark.slow
def test_merged_stack_keeps_measured_views_and_sorts_by_angle(case):
    merged, angles, info = case["merged"], case["angles"], case["info"]
    syn = np.asarray(info["synthesized"])
    assert merged.shape == (len(ANGLES) + len(NEW), N, N) and merged.dtype == np.float32
    np.testing.assert_allclose(angles, np.sort(np.concatenate([ANGLES, NEW])))
    np.testing.assert_allclose(angles[syn], NEW)
    np.testing.assert_array_equal(merged[~syn], case["counts"].astype(np.float32))
    assert np.isfinite(merged).all() and (merged >= 0).all()
    assert info["recon"]["method"] == "mlem"  # whole counts
    assert info["holdout"]["used"] in ("network", "reprojection")
    assert info["training"]["steps"] == 60 and len(info["holdout"]["angles"]) == 1


def test_synthesized_views_beat_interpolation_and_are_not_worse_than_the_reprojection(case):
    syn = np.asarray(case["info"]["synthesized"])
    net, plain, truth = case["merged"][syn], case["plain"][syn], case["expected_new"]
    counts = case["counts"]
    interp = 0.5 * (counts[:-1] + counts[1:])  # each new angle lies halfway between two measured ones
    e_net, e_plain, e_interp = rmse(net, truth), rmse(plain, truth), rmse(interp, truth)
    assert e_net < 0.5 * e_interp
    assert e_plain < 0.5 * e_interp
    assert e_net <= 1.05 * e_plain
    h = case["info"]["holdout"]
    if h["used"] == "reprojection":  # the network only replaces the reprojection when it wins on held-out views
        np.testing.assert_array_equal(net, plain)
    else:
        assert h["mse_network"] < h["mse_reprojection"]


@pytest.mark.slow
def test_reconstruction_with_synthesized_views_is_not_worse(case):
    bg, scale, vol = case["bg"], case["scale"], case["vol"]

    def error(angles, data):
        op = Projector(TiltGeometry(angles, (N, N, N)))
        best = []
        sirt(op, (np.asarray(data) - bg).astype(np.float32), 60,
             callback=lambda i, x: best.append(nrmse(np.asarray(x) / scale, vol)) or False)
        return min(best)

    e_meas = error(ANGLES, case["counts"])
    e_merged = error(case["angles"], case["merged"])
    assert e_merged <= 1.02 * e_meas


def test_refine_false_gives_the_plain_reprojection_of_the_chosen_reconstruction(case):
    info = case["plain_info"]
    assert info["training"] is None and info["holdout"]["used"] == "reprojection"
    assert info["recon"]["iterations"] == case["info"]["recon"]["iterations"]
    assert info["recon"]["sigma"] == case["info"]["recon"]["sigma"]


def test_float_maps_use_sirt_and_unsorted_angles_are_sorted():
    rng = np.random.default_rng(0)
    stack = rng.uniform(0.5, 1.5, (6, 8, 8))
    order = [3, 0, 5, 1, 4, 2]
    angles = np.linspace(-50, 50, 6)
    merged, merged_angles, info = synthesize_views(stack[order], angles[order], [5.0, 35.0], refine=False,
                                                   iterations=5)
    assert info["recon"]["method"] == "sirt"
    assert np.all(np.diff(merged_angles) > 0)
    np.testing.assert_array_equal(merged[~np.asarray(info["synthesized"])], stack.astype(np.float32))


def test_fill_angles():
    np.testing.assert_allclose(fill_angles([-20, -10, 0, 10, 20], 5), [-15, -5, 5, 15])
    np.testing.assert_allclose(fill_angles([10, -10, 0], 5, limits=(-20, 20)), [-20, -15, -5, 5, 15, 20])
    np.testing.assert_allclose(fill_angles(np.arange(-60, 61, 10.0), 5), np.arange(-55, 56, 10.0))
    assert fill_angles([0, 10], 10).size == 0
    with pytest.raises(ChemtomoError, match="step"):
        fill_angles([0, 10], 0)
    with pytest.raises(ChemtomoError, match="limits"):
        fill_angles([0, 10], 5, limits=(10, -10))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(angles=np.arange(5.0)), ShapeError, "6 views but 5 angles"),
    (dict(angles=[0, 1, 1, 2, 3, 4]), ChemtomoError, "twice"),
    (dict(new_angles=[0.5, 0.5]), ChemtomoError, "twice"),
    (dict(new_angles=[2.0, 2.5]), ChemtomoError, "measured already"),
    (dict(folds=4), ShapeError, "too few"),
    (dict(folds=1), ChemtomoError, "folds"),
    (dict(holdout=0.6), ChemtomoError, "holdout"),
    (dict(recon="fbp"), ChemtomoError, "recon"),
    (dict(init="no/such/file.pt"), ChemtomoError, "init"),
    (dict(minutes=None, steps=None), ChemtomoError, "budget"),
    (dict(background=-1.0), ChemtomoError, "background"),
    (dict(sigmas=[-1.0]), ChemtomoError, "sigmas"),
])
def test_invalid_options(kwargs, error, match):
    args = dict(stack=np.ones((6, 8, 8)), angles=np.arange(6.0), new_angles=[0.5])
    args.update(kwargs)
    with pytest.raises(error, match=match):
        synthesize_views(args.pop("stack"), args.pop("angles"), args.pop("new_angles"), **args)


@pytest.mark.parametrize("stack, error, match", [
    (np.ones((8, 8)), ShapeError, "tilt series"),
    (np.full((6, 8, 8), np.nan), DataError, "NaN"),
    (-np.ones((6, 8, 8)), DataError, "negative"),
    (np.zeros((6, 8, 8)), DataError, "no counts"),
])
def test_invalid_stacks(stack, error, match):
    with pytest.raises(error, match=match):
        synthesize_views(stack, np.arange(6.0), [0.5], refine=False)


@pytest.mark.slow
def test_cli_reconstructs_with_synthesized_views(tmp_path, case, capsys):
    import json

    from chemtomo.cli import main
    from chemtomo.io import read_volume, write_stack

    write_stack(tmp_path / "ag.mrc", case["counts"], ANGLES)
    assert 0 == main(["reconstruct", "--signal", f"Ag={tmp_path / 'ag.mrc'}", "--views-synthesis", "10", "--views-range",
                      "-70:70", "--views-minutes", "0.02", "--iterations", "20", "--out", str(tmp_path / "rec")])
    meta = json.loads((tmp_path / "rec" / "chemtomo.json").read_text())
    rec = meta["provenance"]["views_synthesis"]["signals"]["Ag"]
    assert sorted(rec["new_angles"]) == [-70.0, -50.0, -30.0, -10.0, 10.0, 30.0, 50.0, 70.0]
    assert meta["provenance"]["signals"]["Ag"]["method"] == "sirt"
    main(["reconstruct", "--signal", f"Ag={tmp_path / 'ag.mrc'}", "--method", "sirt", "--iterations", "20",
          "--out", str(tmp_path / "plain")])
    vol = read_volume(tmp_path / "rec" / "Ag.mrc")[0]
    plain = read_volume(tmp_path / "plain" / "Ag.mrc")[0]
    assert vol.shape == (N, N, N)
    assert nrmse(vol / case["scale"], case["vol"]) < 0.9 * nrmse(plain / case["scale"], case["vol"])
    assert main(["reconstruct", "--signal", f"Ag={tmp_path / 'ag.mrc'}", "--views-synthesis", "10", "--views-range",
                 "70:-70", "--out", str(tmp_path / "bad")]) == 2
    assert "--views-range: the range must be LO:HI" in capsys.readouterr().err


def test_two_elements_one_sparse_report_finite_losses_and_views(capsys):
    """Issue 27: one element's bar ended on `loss nan` (its step budget ended on a held-out check)."""
    vols = phantom_from_spec("core-shell:sphere,ratio=0.3,position=centre,size=0.6,interface=0", ["Au", "Ag"],
                             (16, 16, 16))
    angles = np.arange(-60.0, 60.5, 15.0)
    proj = Projector(TiltGeometry(angles, (16, 16, 16)))
    rng = np.random.default_rng(0)
    for element, dose, steps in (("Au", 0.02, 20), ("Ag", 3.0, 23)):  # Au: 99 % of the pixels hold no count
        counts = rng.poisson(np.asarray(proj(vols[element])) * dose).astype(np.float64)
        merged, _, info = synthesize_views(counts, angles, fill_angles(angles, 7.5), steps=steps, minutes=None,
                                           every=10, batch=4, progress=True)
        bar = capsys.readouterr().out.strip().splitlines()[-1]
        assert "nan" not in bar and np.isfinite(float(bar.split("loss ")[1].split()[0])), (element, bar)
        assert all(np.isfinite(c["train_loss"]) for c in info["training"]["curve"][1:])
        assert np.isfinite(merged).all() and (merged >= 0).all()
