"""--method auto: candidates scored on the data (no ground truth), checked here against the ground truth."""

import json

import numpy as np
import pytest

from chemtomo.core.data import TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.pipeline import auto
from chemtomo.recon import mlem, reconstruct_series, sirt
from chemtomo.testing import core_shell, nrmse

SHAPE = (8, 32, 32)
ANGLES = np.linspace(-70, 70, 15)


@pytest.fixture(scope="module")
def counts():
    """Au@Ag counts at about one count per pixel: where the choice of pipeline matters."""
    parts = core_shell(SHAPE, 5, 11)
    op = Projector(TiltGeometry(ANGLES, SHAPE))
    rng = np.random.default_rng(3)
    scale = {"Au": 0.25, "Ag": 0.15}
    data = {e: rng.poisson(scale[e] * op(parts[k])).astype(np.float32) for e, k in (("Au", "core"), ("Ag", "shell"))}
    truth = {"Au": scale["Au"] * parts["core"], "Ag": scale["Ag"] * parts["shell"]}
    return TiltSeries.from_arrays(data, ANGLES), truth, op


def _oracle(method, op, b, truth, iterations):
    errs = []
    method(op, b, iterations, callback=lambda i, x: errs.append(nrmse(np.asarray(x), truth)) or False)
    return min(errs), int(np.argmin(errs)) + 1


def test_scores_are_zero_for_a_perfect_prediction_and_grow_with_the_error():
    t = np.array([3.0, 0.0, 5.0])
    assert auto.poisson_deviance(t, t) < 1e-5 < auto.poisson_deviance(t, t + 1) < auto.poisson_deviance(t, t + 2)
    assert auto.squared_error(t, t) == 0 < auto.squared_error(t, t + 1) < auto.squared_error(t, t + 2)
    assert auto.relative_error(t, t) == 0 and auto.relative_error(t, 2 * t) == pytest.approx(1.0)
    assert auto.whole_counts(np.array([0, 2.0])) and not auto.whole_counts(np.array([0.5]))
    assert not auto.whole_counts(np.array([-1.0]))


@pytest.mark.slow
def test_auto_on_counts_is_close_to_the_best_oracle_and_far_better_than_plain_sirt(counts):
    series, truth, op = counts
    vs = auto.run(series)
    rec = vs.provenance["auto"]["counts"]
    assert rec["signals"] == ["Au", "Ag"] and rec["chosen"] == rec["ranking"][0]
    assert len(rec["ranking"]) >= len(auto.COUNT_CANDIDATES)  # and the best per element when they differ
    err = {e: nrmse(vs[e], truth[e]) for e in truth}
    for e in truth:
        b = series[e].data
        plain = nrmse(np.asarray(sirt(op, b, 100)), truth[e])
        best_mlem, _ = _oracle(mlem, op, b, truth[e], 100)  # MLEM stopped at the iteration the truth picks
        assert err[e] < 0.6 * plain, (e, err, plain)
        assert err[e] < 1.1 * best_mlem, (e, err, best_mlem)


def test_views_choose_the_iterations_the_truth_would():
    """Non-count data (a HAADF-like signal with Gaussian noise): SIRT's iterations by held-out views."""
    parts = core_shell(SHAPE, 5, 11)
    vol = 3 * parts["core"] + parts["shell"]
    angles = np.linspace(-70, 70, 29)
    op = Projector(TiltGeometry(angles, SHAPE))
    data = op(vol) + np.random.default_rng(0).normal(0, 2.0, op.range_shape).astype(np.float32)
    series = TiltSeries.from_arrays({"HAADF": data}, angles, units={"HAADF": "electrons"})
    choice = auto.select(series, candidates=["sirt"])
    its = choice["views"]["HAADF"]["chosen"]["iterations"]["HAADF"]
    best, best_it = _oracle(sirt, op, data, vol, 300)
    chosen = nrmse(np.asarray(sirt(op, data, its)), vol)
    assert chosen < 1.1 * best, (its, best_it, chosen, best)
    assert "counts" not in choice  # not whole counts: scored by held-out views


def test_candidates_are_checked_and_restrict_the_choice(counts):
    series, _, _ = counts
    for bad, words in (("art", "unknown method"), ("blur+sirt", "unknown denoiser"), ("a+b+c", "METHOD or"),
                       ("gaussian+dtv", "raw counts")):
        with pytest.raises(ChemtomoError, match=words):
            auto.Candidate.parse(bad)
    choice = auto.select(series, candidates=["mlem", "gaussian+sirt"])
    named = {r["candidate"] for r in choice["counts"]["ranking"]}
    assert named - {"best per element"} == {"mlem", "gaussian+sirt"}  # each, and maybe each element's best
    assert all(m["candidate"] in ("mlem", "gaussian+sirt") for r in choice["counts"]["ranking"]
               for ms in r.get("members", {}).values() for m in ms)
    # ranked by the summed squared error per held-out count; the deviance is recorded beside it
    ranking = choice["counts"]["ranking"]
    assert [r["score"] for r in ranking] == sorted(r["score"] for r in ranking)
    for r in ranking:
        assert r["score"] == pytest.approx(sum(r["per_signal"].values()), rel=1e-5)
        assert set(r["deviance"]) == {"Au", "Ag"} and all(v > 0 for v in r["deviance"].values())
        assert all(0.9 < v < 3 for v in r["per_signal"].values())  # about 1 (the counts' noise) plus the error
    one = TiltSeries({"Au": series["Au"]})
    with pytest.raises(ChemtomoError, match="no candidate applies"):
        auto.select(one, candidates=["dtv"])  # joint methods need HAADF or two element maps
    assert "dtv" not in {c.name for c in auto.default_candidates(one)["counts"]}
    assert "dtv" in {c.name for c in auto.default_candidates(series)["counts"]}  # Au and Ag without HAADF


def test_cli_rank_only_writes_the_ranking_and_no_volume(counts, tmp_path, capsys):
    from chemtomo.cli import main
    from chemtomo.io import write_stack

    series, _, _ = counts
    write_stack(tmp_path / "au.mrc", series["Au"].data, ANGLES)
    out = tmp_path / "rank"
    code = main(["reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--method", "auto", "--rank-only",
                 "--candidates", "mlem,sirt", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "->" in stdout
    ranking = json.loads((out / "auto.json").read_text())["counts"]["ranking"]
    assert {r["candidate"] for r in ranking} == {"mlem", "sirt"} and not list(out.glob("*.mrc"))
    assert main(["reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--method", "sirt", "--candidates", "tv",
                 "--out", str(out)]) == 2


def test_an_auto_run_is_written_and_reported_with_its_ranking(counts, tmp_path, capsys):
    from chemtomo.cli import main
    from chemtomo.io import write_stack
    from chemtomo.report.html import build_report

    series, _, _ = counts
    write_stack(tmp_path / "au.mrc", series["Au"].data, ANGLES)
    out = tmp_path / "run"
    assert main(["reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--candidates", "mlem,gaussian+sirt",
                 "--out", str(out)]) == 0
    prov = json.loads((out / "chemtomo.json").read_text())["provenance"]
    chosen = prov["auto"]["counts"]["chosen"]
    assert prov["signals"]["Au"]["candidate"] == chosen["candidate"]
    assert prov["signals"]["Au"]["iterations"] == chosen["iterations"]["Au"]  # the iterations it was chosen with
    page = build_report(out).read_text()
    assert "Method choice (auto)" in page and f"{chosen['candidate']}, best of 2 candidates" in page


def test_named_count_candidates_leave_haadf_to_the_image_defaults(counts):
    series, truth, op = counts
    haadf = op(3 * truth["Au"] + truth["Ag"])
    both = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, ANGLES).signals})
    choice = auto.select(both, candidates=["gaussian+sirt"])
    assert [r["candidate"] for r in choice["counts"]["ranking"]] == ["gaussian+sirt"]
    assert {r["candidate"] for r in choice["views"]["HAADF"]["ranking"]} == set(auto.IMAGE_CANDIDATES)


def test_an_element_may_take_the_mean_of_two_candidates_scored_like_them():
    # two predictions wrong in opposite directions: their mean predicts the held-out counts exactly
    held = {"Au": np.full(4, 2.0), "Ag": np.full(4, 2.0)}
    low, high = np.array([1.0, 3, 1, 3]), np.array([3.0, 1, 3, 1])
    scores = [auto.Score(c, 0.0, {"Au": it, "Ag": it}, filters={"Au": w, "Ag": w},
                         per_signal={"Au": auto.squared_error(held["Au"], p),
                                     "Ag": auto.squared_error(held["Ag"], low if c != "tv" else held["Ag"])},
                         predictions={"Au": p, "Ag": low if c != "tv" else held["Ag"]})
              for c, it, w, p in (("mlem", 7, 1.0, low), ("sirt", 20, 0.0, high), ("tv", 200, 0.0, 1.5 * high))]
    for s in scores:
        s.score = sum(s.per_signal.values())
    (entry,) = auto._per_element(scores, ["Au", "Ag"], held)
    assert entry["candidate"] == "best per element" and entry["per_signal"] == pytest.approx({"Au": 0, "Ag": 0})
    assert entry["per_signal_candidate"] == {"Au": "mlem & sirt", "Ag": "tv"}
    assert entry["members"]["Au"] == [{"candidate": "mlem", "iterations": 7, "filter_voxels": 1.0},
                                      {"candidate": "sirt", "iterations": 20, "filter_voxels": 0.0}]
    assert any("Au mlem & sirt 7/20" in line for line in auto.table({"counts": {
        "signals": ["Au", "Ag"], "rule": "r", "ranking": [entry], "chosen": entry}, "views": {}}))
    # one candidate best for every element: nothing to add
    assert auto._per_element(scores[1:2], ["Au", "Ag"], held) == []


def _sum_scores(au_plain=1.02, au_sum=1.0):
    """Scores of mlem and mlem+sum predicting held-out counts of mean 5 as that many times 5: for Au the +sum
    variant is better by 1.6 standard errors (defaults), for Ag by far."""
    rng = np.random.default_rng(2)
    held = {n: rng.poisson(5.0, 4000).astype(float) for n in ("Au", "Ag")}
    pred = {"mlem": {"Au": np.full(4000, 5.0 * au_plain), "Ag": np.full(4000, 7.5)},
            "mlem+sum": {"Au": np.full(4000, 5.0 * au_sum), "Ag": np.full(4000, 5.0)}}
    scores = []
    for c, p in pred.items():
        per = {n: auto.squared_error(held[n], p[n]) for n in p}
        scores.append(auto.Score(c, sum(per.values()), {"Au": 5, "Ag": 5}, per_signal=per, predictions=p,
                                 filters={"Au": 0.0, "Ag": 0.0}))
    return scores, held


def test_a_sum_variant_is_taken_only_by_a_clear_margin():
    scores, held = _sum_scores()
    better = (held["Au"], scores[1].predictions["Au"], scores[0].predictions["Au"])
    assert auto.clearly_better(*better) and not auto.clearly_better(*better, margin=auto.SUM_MARGIN)
    (entry,) = auto._per_element(scores, ["Au", "Ag"], held)
    assert entry["per_signal_candidate"] == {"Au": "mlem", "Ag": "mlem+sum"}
    assert entry["sum_margin"] == auto.SUM_MARGIN
    assert entry["score"] > scores[1].score  # mlem+sum alone scores lower, and is not the choice
    # without a plain candidate there is nothing to gate: the +sum variant is taken as scored
    assert auto._per_element(scores[1:], ["Au", "Ag"], held) == []


def test_the_sum_rule_choice_is_the_chosen_one(counts, monkeypatch):
    series, _, _ = counts
    scored = _sum_scores()
    monkeypatch.setattr(auto, "score_counts", lambda *a, **k: scored)
    choice = auto.select(series, candidates=["mlem", "mlem+sum"])["counts"]
    assert choice["chosen"]["candidate"] == "best per element" and choice["ranking"][0] is choice["chosen"]
    assert "standard errors" in choice["rule"]
    assert auto.table({"counts": choice, "views": {}})[1].lstrip().startswith("-> best per element")
    # a +sum variant clearly better for every element is chosen as its own entry, not a copy of it
    scored = _sum_scores(au_plain=1.4)
    choice = auto.select(series, candidates=["mlem", "mlem+sum"])["counts"]
    assert choice["chosen"]["candidate"] == "mlem+sum"
    assert [r["candidate"] for r in choice["ranking"]].count("mlem+sum") == 1


def test_a_mean_is_taken_only_by_the_mean_margin():
    # two candidates off by +-delta of held-out counts of mean 5: their mean is exact; it is taken where it
    # beats the better one by MEAN_MARGIN (one) standard error
    rng = np.random.default_rng(4)
    held = {"Au": rng.poisson(5.0, 4000).astype(float)}

    def members(delta, copies=0):
        offsets = [("a", delta), ("b", -delta)] + [(f"b{i}", -delta) for i in range(copies)]  # b is the better
        scores = [auto.Score(c, 0.0, {"Au": 5}, predictions={"Au": np.full(4000, 5.0 + s)}) for c, s in offsets]
        for sc in scores:
            sc.per_signal = {"Au": auto.squared_error(held["Au"], sc.predictions["Au"])}
        return sorted(s.candidate for s in auto._pick(scores, "Au", held)[0])

    assert auto.MEAN_MARGIN == 1.0
    assert members(0.15) == ["b"]  # the mean better by 0.7 standard errors
    assert members(0.2) == ["a", "b"]  # by 1.4
    # candidates with the same prediction (SIRT and MLEM where all views coincide) count once among the best
    assert members(0.2, copies=4) == ["a", "b"]


def test_a_mean_of_two_is_run_as_the_mean_of_its_members(counts, monkeypatch):
    series, _, _ = counts
    one = TiltSeries({"Au": series["Au"]})
    singles = {c: np.asarray(auto.run(one, candidates=[c])["Au"]) for c in ("mlem", "gaussian+sirt")}
    real = auto._per_element

    def pair(scores, names, test_rows):  # the mean of the two, whatever the held-out counts say
        out = real(scores, names, {n: 0.5 * (s0 + s1) for n, s0, s1 in
                                   [(n, scores[0].predictions[n], scores[1].predictions[n]) for n in names]})
        for e in out:
            e["score"] = -1.0
        return out

    monkeypatch.setattr(auto, "_per_element", pair)
    vs = auto.run(one, candidates=["mlem", "gaussian+sirt"])
    rec = vs.provenance["signals"]["Au"]
    assert set(vs.provenance["auto"]["counts"]["chosen"]["candidate"].split(" & ")) == {"mlem", "gaussian+sirt"}
    assert rec["combine"] == "mean" and {m["candidate"] for m in rec["members"]} == {"mlem", "gaussian+sirt"}
    np.testing.assert_allclose(vs["Au"], 0.5 * (singles["mlem"] + singles["gaussian+sirt"]), rtol=1e-5, atol=1e-6)


def test_a_best_at_the_last_checkpoint_is_said():
    assert auto._max_iterations("mlem", None) == auto.CHECKPOINTS[-1] and auto._max_iterations("tv", None) == 200
    assert auto._at_edge("sirt", 20, 20) and auto._at_edge("sirt", 20, 27) and not auto._at_edge("sirt", 14, 20)
    assert not auto._at_edge("tv", 200, 200)  # regularised: converges, no path
    rec = auto.Score("sirt", 1.0, {"Au": 20}, note=auto._edge_note({"Au": 20})).record()
    line = auto.table({"views": {"Au": {"rule": "r", "ranking": [rec], "chosen": rec}}})[1]
    assert "best at the last checkpoint (20 iterations)" in line


def test_a_mean_must_win_by_more_than_the_noise_of_the_score():
    rng = np.random.default_rng(0)
    held = rng.poisson(5.0, 20000).astype(float)
    truth, biased = np.full(held.size, 5.0), np.full(held.size, 4.0)
    assert auto.clearly_better(held, truth, biased) and not auto.clearly_better(held, biased, truth)
    # two predictions equally wrong in different pixels: neither wins by more than the noise of the score
    one, two = (truth * (1 + 0.1 * rng.standard_normal(held.size)) for _ in range(2))
    assert not auto.clearly_better(held, one, two) and not auto.clearly_better(held, two, one)
    assert auto.poisson_deviance(held, truth) == pytest.approx(auto.deviance_terms(held, truth).sum() / held.sum())


def test_candidates_are_ranked_as_their_squared_error_against_the_noise_free_counts():
    # E[(t - mu)^2] = (m - mu)^2 + m for Poisson t of mean m: the score is 1 + MSE / mean count
    rng = np.random.default_rng(1)
    m = np.concatenate([np.full(100000, 0.1), np.full(100000, 10.0)])  # background and particle
    held = rng.poisson(m).astype(float)
    for mu in (m, m + 0.5, m * 1.2):
        assert auto.squared_error(held, mu) == pytest.approx(1 + ((m - mu) ** 2).sum() / m.sum(), abs=0.01)
    # a prediction exact in the background but 10 % off in the particle, against one exact in the particle
    # that misses most of the faint background: the deviance prefers the first (it weights a pixel by
    # 1 / its mean), the squared error the second, whose error against the truth is 60 times smaller
    off_particle = np.where(m > 1, 11.0, 0.1)
    off_background = np.where(m > 1, 10.0, 0.02)
    assert ((off_background - m) ** 2).sum() * 60 < ((off_particle - m) ** 2).sum()
    assert auto.poisson_deviance(held, off_particle) < auto.poisson_deviance(held, off_background)
    assert auto.squared_error(held, off_background) < auto.squared_error(held, off_particle)
    assert auto.clearly_better(held, off_background, off_particle)
    assert auto.clearly_better(held, off_particle, off_background, terms=auto.deviance_terms)


def test_a_guide_with_more_angles_gives_its_images_at_the_maps_angles():
    from chemtomo.core.data import Signal
    from chemtomo.denoise.series import guide_images

    dense = np.linspace(-70, 70, 71)
    guide = Signal(np.arange(71, dtype=np.float32)[:, None, None] * np.ones((71, 4, 4), np.float32), dense)
    np.testing.assert_array_equal(guide_images(guide, ANGLES)[:, 0, 0], np.arange(0, 71, 5))
    with pytest.raises(ChemtomoError, match="no image at 1 degrees"):
        guide_images(guide, [0.0, 1.0])


def test_the_guided_unet_is_a_candidate_where_haadf_has_the_maps_angles(counts):
    series, truth, op = counts
    cand = auto.Candidate.parse("guided-unet+mlem")
    assert (cand.denoise, cand.guide, cand.method) == ("unet", "HAADF", "mlem")
    with pytest.raises(ChemtomoError, match="takes no guide"):
        auto.Candidate.parse("guided-gaussian+mlem")
    haadf = op(3 * truth["Au"] + truth["Ag"])
    with_haadf = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, ANGLES).signals})
    assert "guided-unet+mlem" in {c.name for c in auto.default_candidates(with_haadf)["counts"]}
    assert "guided-unet+mlem" not in {c.name for c in auto.default_candidates(series)["counts"]}
    dense = np.linspace(-70, 70, 29)  # HAADF every 5 degrees, the maps every 10
    more = Projector(TiltGeometry(dense, SHAPE))(3 * truth["Au"] + truth["Ag"])
    with_more = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": more}, dense).signals})
    assert "guided-unet+mlem" in {c.name for c in auto.default_candidates(with_more)["counts"]}
    elsewhere = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, ANGLES + 1).signals})
    assert "guided-unet+mlem" not in {c.name for c in auto.default_candidates(elsewhere)["counts"]}
    with pytest.raises(ChemtomoError, match="guided candidates need a HAADF signal"):
        auto.select(elsewhere, candidates=["guided-unet+mlem"])


def test_the_guided_candidate_denoises_with_the_haadf_in_its_final_run(counts):
    from chemtomo.denoise.unet import unet

    series, truth, op = counts
    haadf = op(3 * truth["Au"] + truth["Ag"])
    both = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, ANGLES).signals})
    vs = auto.run(both, candidates=["guided-unet+mlem"])
    rec = vs.provenance["signals"]["Au"]
    assert rec["candidate"] == "guided-unet+mlem" and rec["denoise"]["options"]["guide"] == "HAADF"
    expected = mlem(op, unet(series["Au"].data, guide=haadf), rec["iterations"])
    np.testing.assert_allclose(vs["Au"], expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    # the guide helps here: closer to the truth than the unguided U-Net at its own chosen iterations
    plain = auto.run(TiltSeries({"Au": series["Au"]}), candidates=["unet+mlem"])
    assert nrmse(np.asarray(vs["Au"]), truth["Au"]) < nrmse(np.asarray(plain["Au"]), truth["Au"])


def test_the_sum_guided_unet_is_a_candidate_for_two_maps_without_haadf_images(counts):
    series, truth, op = counts
    cand = auto.Candidate.parse("sum-guided-unet+mlem")
    assert (cand.denoise, cand.guide, cand.method) == ("unet", auto.SUMMED, "mlem")
    with pytest.raises(ChemtomoError, match="takes no guide"):
        auto.Candidate.parse("sum-guided-gaussian+mlem")
    assert "sum-guided-unet+mlem" in {c.name for c in auto.default_candidates(series)["counts"]}
    haadf = op(3 * truth["Au"] + truth["Ag"])
    with_haadf = TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, ANGLES).signals})
    names = {c.name for c in auto.default_candidates(with_haadf)["counts"]}
    assert "guided-unet+mlem" in names and "sum-guided-unet+mlem" not in names  # the HAADF guides instead
    one = TiltSeries({"Au": series["Au"]})
    assert "sum-guided-unet+mlem" not in {c.name for c in auto.default_candidates(one)["counts"]}
    with pytest.raises(ChemtomoError, match="sum-guided candidates need two or more count maps"):
        auto.select(one, candidates=["sum-guided-unet+mlem"])


def test_the_test_halves_summed_guide_is_made_only_where_the_split_width_uses_it(counts, monkeypatch):
    series, _, _ = counts
    calls = []
    real = auto.summed_guide
    monkeypatch.setattr(auto, "summed_guide", lambda maps: calls.append(len(maps)) or real(maps))

    def guides(s, cands):
        calls.clear()
        auto.score_counts(s, s.names, [auto.Candidate.parse(c) for c in cands], thickness=None, axis_offset=0.0,
                          iterations=5)
        return len(calls)

    assert guides(series, ["sum-guided-unet+mlem"]) == 2  # training halves, and test halves for the width
    few = TiltSeries.from_arrays({n: np.asarray(series[n].data)[::3] for n in series.names}, ANGLES[::3])
    assert auto.held_views(5).size == 0
    assert guides(few, ["sum-guided-unet+mlem"]) == 1  # 5 views: no views to leave out, no split width


def test_the_sum_guided_candidate_is_guided_by_the_denoised_sum_of_the_maps_in_its_final_run(counts):
    from chemtomo.denoise.unet import unet

    series, truth, op = counts
    vs = auto.run(series, candidates=["sum-guided-unet+mlem"])
    rec = vs.provenance["signals"]["Ag"]
    assert rec["candidate"] == "sum-guided-unet+mlem" and rec["denoise"]["options"]["guide"] == auto.SUMMED
    assert rec["denoise"]["guide_of"] == ["Au", "Ag"]
    json.dumps(vs.provenance)  # the record names the guide, it does not hold it
    guide = unet(series["Au"].data + series["Ag"].data)
    np.testing.assert_allclose(auto.summed_guide([series["Au"].data, series["Ag"].data]), guide, rtol=1e-5,
                               atol=1e-5 * float(guide.max()))
    expected = mlem(op, unet(series["Ag"].data, guide=guide), rec["iterations"])
    if rec["filter_voxels"]:  # the width of the two halves' volumes (decision 37)
        from scipy.ndimage import gaussian_filter

        expected = gaussian_filter(np.asarray(expected, dtype=np.float32), rec["filter_voxels"])
    np.testing.assert_allclose(vs["Ag"], expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))
    assert nrmse(np.asarray(vs["Ag"]), truth["Ag"]) < 0.45  # the truth-stopped unguided U-Net + MLEM: 0.37


def test_a_views_candidate_scores_and_runs_with_synthesized_views_between_the_measured(counts, monkeypatch):
    series, truth, _ = counts
    cand = auto.Candidate.parse("views+mlem")
    assert cand.views and cand.denoise is None and cand.method == "mlem"
    with pytest.raises(ChemtomoError, match="drop the views"):
        auto.Candidate.parse("views+dtv")
    assert auto.views_step(ANGLES) == pytest.approx(5.0)
    monkeypatch.setattr(auto, "VIEWS_MINUTES", 0.02)
    one = TiltSeries({"Au": series["Au"]})
    choice = auto.select(one, candidates=["views+mlem"])
    (entry,) = choice["counts"]["ranking"]
    assert entry["candidate"] == "views+mlem" and np.isfinite(entry["score"])  # scored at the measured angles
    vs = auto.run(one, candidates=["views+mlem"])
    rec = vs.provenance["signals"]["Au"]
    assert len(rec["angles_deg"]) == 2 * len(ANGLES) - 1 and "views_synthesis" in rec
    # the network's prior helps even after a second of training (0.42/0.55), against plain MLEM stopped the same
    # way, by the held-out half at the measured angles (views+ candidates are: their synthesized views are not data)
    monkeypatch.setattr(auto, "held_views", lambda n: np.array([], dtype=int))
    plain = auto.run(one, candidates=["mlem"])
    assert nrmse(np.asarray(vs["Au"]), truth["Au"]) < 0.9 * nrmse(np.asarray(plain["Au"]), truth["Au"])


def _with_haadf(series, truth, angles=ANGLES):
    """`series` with a noise-free HAADF series in which a count of Au weighs 3 and one of Ag 1."""
    op = Projector(TiltGeometry(angles, SHAPE))
    haadf = op(3 * truth["Au"] + truth["Ag"])
    return TiltSeries({**series.signals, **TiltSeries.from_arrays({"HAADF": haadf}, angles).signals})


def test_a_haadf_variant_is_parsed_and_offered_only_with_haadf_and_two_maps(counts):
    series, truth, _ = counts
    cand = auto.Candidate.parse("unet+mlem+haadf")
    assert cand.partition and (cand.denoise, cand.method, cand.base) == ("unet", "mlem", "unet+mlem")
    joint = auto.Candidate.parse("dtv+haadf")  # a joint method's element volumes share out the HAADF volume too
    assert (joint.method, joint.partition, joint.base) == ("dtv", "haadf", "dtv")
    both = _with_haadf(series, truth)
    names = {c.name for c in auto.default_candidates(both)["counts"]}
    assert {"mlem+haadf", "unet+mlem+haadf", "guided-unet+mlem+haadf", "dtv+haadf", "tnv+haadf"} <= names
    assert not any(c.partition == "haadf" for c in auto.default_candidates(series)["counts"])  # no HAADF
    one = TiltSeries({"Au": series["Au"], "HAADF": both["HAADF"]})
    assert not any(c.partition for c in auto.default_candidates(one)["counts"])  # one map: nothing to share out
    with pytest.raises(ChemtomoError, match=r"\+haadf candidates need a HAADF signal"):
        auto.select(series, candidates=["mlem+haadf"])


def test_the_haadf_split_among_the_elements_is_scored_and_run_and_beats_their_own_volumes(counts):
    series, truth, _ = counts
    both = _with_haadf(series, truth, np.linspace(-70, 70, 29))  # HAADF at more angles than the maps
    choice = auto.select(both, candidates=["mlem", "mlem+haadf"])
    entries = {e["candidate"]: e for e in choice["counts"]["ranking"]}
    split = entries["mlem+haadf"]
    assert split["iterations"] == entries["mlem"]["iterations"]  # the variant reuses its candidate's run
    w = split["partition"]["weights"]
    assert w["Au"] / w["Ag"] == pytest.approx(3.0, rel=0.25)  # from the training halves and the HAADF images
    # noise-free HAADF: sharing it out predicts the held-out counts better than the maps' own volumes
    assert split["score"] < entries["mlem"]["score"]
    vs = auto.run(both, candidates=["mlem+haadf"])
    rec = vs.provenance["signals"]["Au"]
    assert rec["candidate"] == "mlem+haadf"
    scored = vs.provenance["auto"]["counts"]["chosen"]["partition"]
    assert rec["partition"]["smooth_voxels"] == scored["smooth_voxels"]  # the width it was scored with ...
    final = rec["partition"]["weights"]  # ... and weights fitted again to all the counts (twice the half's)
    assert final["Au"] / final["Ag"] == pytest.approx(3.0, rel=0.25) and final["Au"] < scored["weights"]["Au"]
    # HAADF at none of the maps' angles: the weights come from the HAADF volume's reprojection there
    elsewhere = _with_haadf(series, truth, np.linspace(-69, 69, 24))
    w = auto.select(elsewhere, candidates=["mlem+haadf"])["counts"]["chosen"]["partition"]["weights"]
    assert w["Au"] / w["Ag"] == pytest.approx(3.0, rel=0.25)
    plain = auto.run(series, candidates=["mlem"])
    err = {e: (nrmse(np.asarray(vs[e]), truth[e]), nrmse(np.asarray(plain[e]), truth[e])) for e in truth}
    assert err["Au"][0] < 0.6 * err["Au"][1] and err["Ag"][0] < 0.95 * err["Ag"][1], err  # 0.23/0.55, 0.38/0.42


def test_a_joint_candidates_haadf_variant_shares_out_the_haadf_volume_in_its_fractions(counts):
    from chemtomo.recon.channels import partition

    series, truth, _ = counts
    both = _with_haadf(series, truth, np.linspace(-70, 70, 29))
    choice = auto.select(both, candidates=["dtv", "dtv+haadf"])
    entries = {e["candidate"]: e for e in choice["counts"]["ranking"]}
    assert entries["dtv+haadf"]["partition"]["source"] == "HAADF"
    assert entries["dtv"]["score"] is not None and entries["dtv+haadf"]["score"] is not None  # both ranked
    vs = auto.run(both, candidates=["dtv+haadf"])
    rec = vs.provenance["signals"]["Au"]
    assert rec["candidate"] == "dtv+haadf" and vs.provenance["joint"]["method"] == "dtv"
    # the final run: dtv on all the data, its element volumes splitting the HAADF volume with the scored width
    joint = reconstruct_series(TiltSeries({k: both[k] for k in ("HAADF", "Au", "Ag")}), "dtv")
    w = rec["partition"]["weights"]
    parts = partition(np.asarray(vs["HAADF"]), [np.asarray(joint[e]) for e in ("Au", "Ag")], [w["Au"], w["Ag"]],
                      smooth=rec["partition"]["smooth_voxels"])
    assert np.allclose(np.asarray(vs["Au"]), parts[0], atol=1e-4 * float(parts[0].max()))
    err = {e: (nrmse(np.asarray(vs[e]), truth[e]), nrmse(np.asarray(joint[e]), truth[e])) for e in truth}
    # the core (Au) sharper from the HAADF volume, the shell as good: 0.19 against 0.24, 0.287 against 0.280
    assert err["Au"][0] < 0.85 * err["Au"][1] and err["Ag"][0] < 1.05 * err["Ag"][1], err


def test_a_sum_variant_splits_the_volume_of_the_summed_counts_without_haadf(counts):
    from scipy.ndimage import gaussian_filter

    from chemtomo.denoise.unet import unet
    from chemtomo.recon.channels import partition

    series, truth, op = counts
    cand = auto.Candidate.parse("sum-guided-unet+mlem+sum")
    assert (cand.partition, cand.base, cand.guide) == ("sum", "sum-guided-unet+mlem", auto.SUMMED)
    with pytest.raises(ChemtomoError, match="couple the elements"):
        auto.Candidate.parse("dtv+sum")
    # without HAADF, every per-signal candidate comes with its +sum variant (taken by a clear margin only)
    names = {c.name for c in auto.default_candidates(series)["counts"]}
    assert {"unet+mlem+sum", "sum-guided-unet+mlem+sum"} <= names and not any(n.endswith("+haadf") for n in names)
    one = TiltSeries({"Au": series["Au"]})
    assert not any(c.partition for c in auto.default_candidates(one)["counts"])
    with pytest.raises(ChemtomoError, match=r"\+sum candidates need two or more count maps"):
        auto.select(one, candidates=["mlem+sum"])

    choice = auto.select(series, candidates=["mlem", "mlem+sum"])
    entries = {e["candidate"]: e for e in choice["counts"]["ranking"]}
    split = entries["mlem+sum"]
    assert split["iterations"] == entries["mlem"]["iterations"]  # the variant reuses its candidate's run
    assert split["partition"]["source"] == auto.SUMMED and split["partition"]["weights"] == {"Au": 1.0, "Ag": 1.0}
    assert split["partition"]["total_iterations"] >= 1
    vs = auto.run(series, candidates=["mlem+sum"])
    rec = vs.provenance["signals"]["Au"]
    scored = vs.provenance["auto"]["counts"]["chosen"]["partition"]
    assert rec["candidate"] == "mlem+sum"
    for key in ("smooth_voxels", "total_iterations", "total_filter_voxels"):  # run as scored
        assert rec["partition"][key] == scored[key]
    # the final run is exactly: MLEM of the denoised summed counts split in the elements' MLEM proportions
    chosen = vs.provenance["auto"]["counts"]["chosen"]
    total = np.asarray(mlem(op, unet(series["Au"].data + series["Ag"].data), scored["total_iterations"]))
    total = gaussian_filter(total, scored["total_filter_voxels"]) if scored["total_filter_voxels"] else total
    own = []
    for e in ("Au", "Ag"):
        x = np.asarray(mlem(op, series[e].data, chosen["iterations"][e]))
        w = chosen["filter_voxels"][e]
        own.append(gaussian_filter(x, w) if w else x)
    expected = partition(total, own, [1.0, 1.0], smooth=scored["smooth_voxels"])
    for e, x in zip(("Au", "Ag"), expected):
        np.testing.assert_allclose(vs[e], x, rtol=1e-3, atol=1e-3 * float(np.abs(x).max()))
    plain = auto.run(series, candidates=["mlem"])
    err = {e: (nrmse(np.asarray(vs[e]), truth[e]), nrmse(np.asarray(plain[e]), truth[e])) for e in truth}
    # the summed counts are the better-determined volume: splitting it beats Ag's own (0.36/0.41) and costs Au
    # little (0.42/0.39; Au's own MLEM, its run chosen by held-out views, is already good here)
    assert err["Ag"][0] < 0.9 * err["Ag"][1] and err["Au"][0] < 1.1 * err["Au"][1], err


def test_the_cli_runs_a_haadf_split_and_records_it(counts, tmp_path):
    from chemtomo.cli import main
    from chemtomo.io import write_stack

    series, truth, _ = counts
    both = _with_haadf(series, truth)
    for n in ("Au", "Ag", "HAADF"):
        write_stack(tmp_path / f"{n}.mrc", both[n].data, ANGLES)
    out = tmp_path / "run"
    assert main(["reconstruct", *[a for n in ("Au", "Ag", "HAADF") for a in ("--signal", f"{n}={tmp_path / n}.mrc")],
                 "--candidates", "mlem+haadf", "--out", str(out)]) == 0
    prov = json.loads((out / "chemtomo.json").read_text())["provenance"]
    assert prov["auto"]["counts"]["chosen"]["candidate"] == "mlem+haadf"
    assert prov["signals"]["Ag"]["partition"]["weights"]["Au"] > prov["signals"]["Ag"]["partition"][
        "weights"]["Ag"] > 0


def test_a_count_candidates_run_is_chosen_by_held_out_views(counts, monkeypatch):
    from scipy.ndimage import gaussian_filter

    from chemtomo.physics.counts import split_counts

    series, truth, _ = counts
    assert auto.held_views(15).tolist() == [2, 6, 10] and auto.held_views(5).size == 0
    au = np.asarray(series["Au"].data)
    train, _ = split_counts(au.astype(np.int64), auto.TRAIN_SHARE, rng=np.random.default_rng(0))
    train = train.astype(np.float32)
    held = auto.held_views(au.shape[0])
    it, width = auto._views_path("mlem", series.geometry("Au"), train, held, au, 20)
    # brute force: MLEM on the training half of the other views, every checkpoint and filter width, predicting
    # all the counts of the held-out views
    kept = np.setdiff1d(np.arange(au.shape[0]), held)
    op_kept = Projector(TiltGeometry(ANGLES[kept], SHAPE))
    op_held = Projector(TiltGeometry(ANGLES[held], SHAPE))
    runs = {}
    mlem(op_kept, train[kept], 20, callback=lambda i, x: runs.__setitem__(i + 1, np.array(x)) or False)
    dev = {(c, w): auto.poisson_deviance(au[held], np.asarray(op_held(gaussian_filter(runs[c], w) if w else runs[c]))
                                         / auto.TRAIN_SHARE)
           for c in auto.CHECKPOINTS if c <= 20 for w in auto.FILTERS}
    assert (it, width) == min(dev, key=dev.get)
    # auto's mlem candidate takes these iterations, then fits all the views of its training half with them; its
    # filter width is that of the volumes of the two halves (decision 37)
    choice = auto.select(TiltSeries({"Au": series["Au"]}), candidates=["mlem"], iterations=20)["counts"]
    (rec,) = choice["ranking"]
    assert "held-out views" in choice["rule"] and "volumes of both halves" in choice["rule"]
    op = Projector(TiltGeometry(ANGLES, SHAPE))
    halves = [np.asarray(mlem(op, h.astype(np.float32), it)) for h in (train, au - train)]
    assert rec["iterations"]["Au"] == it
    assert rec["filter_voxels"]["Au"] == auto.split_width(*halves) > 0
    # and it is the better choice: against MLEM stopped and filtered by the held-out half at the measured angles
    one = TiltSeries({"Au": series["Au"]})
    by_views = nrmse(np.asarray(auto.run(one, candidates=["mlem"])["Au"]), truth["Au"])
    monkeypatch.setattr(auto, "held_views", lambda n: np.array([], dtype=int))
    by_half = nrmse(np.asarray(auto.run(one, candidates=["mlem"])["Au"]), truth["Au"])
    assert by_views < 0.8 * by_half, (by_views, by_half)  # 0.39 against 0.55


def test_the_split_width_is_the_truths_best_width():
    # two volumes with independent noise: the width chosen from them alone is the one of its grid that brings
    # their mean closest to the noise-free volume
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    truth = gaussian_filter(sum(core_shell((24, 32, 32), 6, 12).values()).astype(float), 1.0)
    errors = {}
    for sigma in (0.05, 0.3, 1.0):
        a, b = (truth + rng.normal(0, sigma, truth.shape) for _ in range(2))
        width = auto.split_width(a, b)
        err = {w: np.linalg.norm(gaussian_filter((a + b) / 2, w) - truth) for w in auto.SPLIT_FILTERS + (4.5, 6.75)}
        best = min(err, key=err.get)
        assert err[width] <= 1.02 * err[best], (sigma, width, best)
        errors[sigma] = width
    assert errors[0.05] < errors[0.3] < errors[1.0]  # more noise, wider
    # past the grid's last width while that one is the best
    a, b = (truth + rng.normal(0, 20.0, truth.shape) for _ in range(2))
    assert auto.split_width(a, b) > auto.SPLIT_FILTERS[-1]
    # the filter stays within each run of neighbouring slices
    rows = np.r_[0:12, 40:52]
    a = np.zeros((24, 8, 8)); a[:12] = 1.0
    assert np.allclose(auto._blur(a, 2.0, rows), a)


def test_an_image_signal_of_four_or_five_views_leaves_out_its_middle_view(counts):
    series, truth, _ = counts
    h = 3 * truth["Au"] + truth["Ag"]
    for n_views in (4, 5):
        angles = np.linspace(-60, 60, n_views)
        op = Projector(TiltGeometry(angles, SHAPE))
        data = np.random.default_rng(1).poisson(80 * np.asarray(op(h))).astype(np.float32) / 80
        vs = auto.run(TiltSeries.from_arrays({"HAADF": data}, angles))
        assert f"one view of {n_views} left out" in vs.provenance["auto"]["views"]["HAADF"]["rule"]
        # tv needs 4 kept views to choose its weight by: left out with 4 views, scored with 5; none failed
        scores = {r["candidate"]: r["score"] for r in vs.provenance["auto"]["views"]["HAADF"]["ranking"]}
        assert ("tv" in scores) == (n_views == 5) and None not in scores.values()
        errs = []
        sirt(op, data, 200, callback=lambda i, x: errs.append(nrmse(np.asarray(x), h)) or False)
        assert nrmse(np.asarray(vs["HAADF"]), h) < 1.05 * min(errs)  # the SIRT oracle tuned on the truth
    # with element maps of as few views (scored by the held-out half)
    few = TiltSeries({**TiltSeries.from_arrays({"HAADF": data}, angles).signals,
                      **TiltSeries.from_arrays({n: np.asarray(series[n].data)[::3] for n in series.names},
                                               ANGLES[::3]).signals})
    assert set(auto.run(few, candidates=["mlem", "dtv"]).names) == {"HAADF", "Au", "Ag"}
    three = np.linspace(-60, 60, 3)
    with pytest.raises(ChemtomoError, match="at least 4 .* --method sirt"):
        auto.select(TiltSeries.from_arrays({"HAADF": np.asarray(op(h))[:3]}, three))


@pytest.fixture(scope="module")
def subtracted():
    """Background-subtracted Fe and O maps (Gaussian noise, negative values) of a core-shell particle with a HAADF
    series of 41 views: no counts to split, so auto scores everything by held-out views."""
    parts = core_shell(SHAPE, 5, 11)
    rng = np.random.default_rng(0)
    dense = np.linspace(-70, 70, 41)
    h = Projector(TiltGeometry(dense, SHAPE))(3 * parts["core"] + parts["shell"])
    data = {"HAADF": (h + rng.normal(0, 0.02 * h.max(), h.shape)).astype(np.float32)}
    op = Projector(TiltGeometry(ANGLES, SHAPE))
    for e, k in (("Fe", "core"), ("O", "shell")):
        p = op(parts[k])
        data[e] = (p + rng.normal(0, 0.3 * p.max(), p.shape)).astype(np.float32)
    series = TiltSeries.from_arrays(data, {"HAADF": dense, "Fe": ANGLES, "O": ANGLES})
    return series, {"Fe": parts["core"], "O": parts["shell"]}, op


def test_maps_that_are_not_counts_get_joint_candidates_with_haadf_and_beat_the_tuned_pipeline(subtracted):
    from scipy.ndimage import gaussian_filter

    series, truth, op = subtracted
    assert auto.groups(series)["maps"] == ["Fe", "O"]
    vs = auto.run(series, rng=0)
    choice = vs.provenance["auto"]
    for e in truth:
        names = {r["candidate"] for r in choice["views"][e]["ranking"]}
        assert set(auto.JOINT_CANDIDATES) | {"sirt", "cgls"} <= names  # mlem cannot fit negative values
        # the conventional pipeline with its iterations and filter width tuned on the truth
        best = min(nrmse(gaussian_filter(x, w) if w else x, truth[e])
                   for x in (sirt(op, series[e].data, it) for it in (5, 10, 20, 50)) for w in (0, 1, 2))
        assert nrmse(vs[e], truth[e]) < 0.75 * best
    assert auto.Candidate.parse(choice["views"]["Fe"]["chosen"]["candidate"]).method in auto.JOINT_CANDIDATES
    info = vs.provenance["joint"]["info"]
    assert info["maps"] == "images" and info["data_term"] == "l2"
    assert info["weight_rule"] == "held-out views, one standard error"
    assert not auto._applies(auto.Candidate.parse("dtv+haadf"), "maps", series, [])  # +haadf is for count maps
    json.dumps(vs.provenance)  # all of it can be written
    # named per-signal candidates keep the joint ones out
    only = auto.select(series, candidates=["sirt"])
    assert {r["candidate"] for r in only["views"]["Fe"]["ranking"]} == {"sirt"}


def test_haadf_and_maps_that_are_not_counts_run_from_files_and_are_reported(subtracted, tmp_path, capsys):
    from chemtomo.cli import main
    from chemtomo.io import write_stack
    from chemtomo.report.html import build_report

    series, _, _ = subtracted
    args = []
    for n in series.names:
        write_stack(tmp_path / f"{n}.mrc", series[n].data, series[n].angles)
        args += ["--signal", f"{n}={tmp_path / (n + '.mrc')}"]
    out = tmp_path / "run"
    assert main(["reconstruct", *args, "--candidates", "tnv,sirt", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    prov = json.loads((out / "chemtomo.json").read_text())["provenance"]
    assert prov["auto"]["views"]["Fe"]["chosen"]["candidate"] == "tnv"  # far better than SIRT here
    assert prov["joint"]["method"] == "tnv" and prov["joint"]["options"] == {"data_term": "l2"}
    assert "Fe, O: tnv jointly" in printed
    assert "joint run" in build_report(out).read_text()


def test_two_maps_that_are_not_counts_without_haadf_get_tnv_and_tv(subtracted):
    from scipy.ndimage import gaussian_filter

    series, truth, op = subtracted
    alone = TiltSeries({e: series[e] for e in truth})
    vs = auto.run(alone, rng=0)
    for e in truth:
        ranking = vs.provenance["auto"]["views"][e]["ranking"]
        assert {"tnv", "tv", "sirt", "cgls"} <= {r["candidate"] for r in ranking}
        assert "dtv" not in {r["candidate"] for r in ranking}  # its guide needs counts without HAADF
        best = min(nrmse(gaussian_filter(x, w) if w else x, truth[e])
                   for x in (sirt(op, series[e].data, it) for it in (5, 10, 20, 50)) for w in (0, 1, 2))
        assert nrmse(vs[e], truth[e]) < 0.9 * best
    one = auto.select(TiltSeries({"Fe": series["Fe"]}))  # one map alone: nothing to couple
    assert "tnv" not in {r["candidate"] for r in one["views"]["Fe"]["ranking"]}


def test_tv_for_haadf_keeps_the_weight_it_was_scored_with_and_beats_tuned_sirt(subtracted):
    from scipy.ndimage import gaussian_filter

    series, _, _ = subtracted
    haadf = TiltSeries({"HAADF": series["HAADF"]})
    parts = core_shell(SHAPE, 5, 11)
    truth = 3 * parts["core"] + parts["shell"]
    vs = auto.run(haadf)
    chosen = vs.provenance["auto"]["views"]["HAADF"]["chosen"]
    assert chosen["candidate"] == "tv" and chosen["weight"]["HAADF"] > 0
    assert vs.provenance["signals"]["HAADF"]["options"] == {"data_term": "l2", "weight": chosen["weight"]["HAADF"]}
    op = Projector(TiltGeometry(series["HAADF"].angles, SHAPE))
    best = min(nrmse(gaussian_filter(x, w) if w else x, truth)
               for x in (sirt(op, series["HAADF"].data, it) for it in (10, 20, 50, 100, 200)) for w in (0, 0.5, 1))
    assert nrmse(vs["HAADF"], truth) < 0.7 * best  # measured: 0.076 against 0.158
