import numpy as np
import pytest

from chemtomo.core.data import Signal, TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.mlem import mlem
from chemtomo.recon.multimodal import bimodal, dtv, tgv, tnv
from chemtomo.recon.registry import METHODS
from chemtomo.recon.series import reconstruct_series
from chemtomo.testing import core_shell, nrmse

SHAPE = (6, 40, 40)
HAADF_ANGLES = np.arange(-70, 71, 5.0)  # 29 tilts
EDX_ANGLES = np.arange(-70, 71, 10.0)  # 15 tilts, a subset: co-acquired HAADF images exist
COUNTS = {"Au": 0.2, "Ag": 0.08}  # counts per unit concentration and voxel length
HAADF_W = {"Au": 2.0, "Ag": 1.0}


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    cs = core_shell(SHAPE, 7, 14)
    truth = {"Au": cs["core"].astype(np.float32), "Ag": cs["shell"].astype(np.float32)}
    ops = {"HAADF": Projector(TiltGeometry(HAADF_ANGLES, SHAPE))}
    h = sum(HAADF_W[e] * ops["HAADF"](truth[e]) for e in truth)
    data = {"HAADF": rng.poisson(50 * h).astype(np.float32) / 50}
    for e in truth:
        ops[e] = Projector(TiltGeometry(EDX_ANGLES, SHAPE))
        data[e] = rng.poisson(COUNTS[e] * ops[e](truth[e])).astype(np.float32)
    return truth, ops, data


def _errors(vols, truth):
    return {e: nrmse(vols[e] / COUNTS[e], truth[e]) for e in truth}


def _mlem_oracle(truth, ops, data):
    best = {}
    for e in truth:
        curve = []
        mlem(ops[e], data[e], 30, callback=lambda i, x, e=e, c=curve: c.append(nrmse(x / COUNTS[e], truth[e])) and False)
        best[e] = min(curve)
    return best


def test_counts_are_low(problem):
    _, _, data = problem
    assert data["Au"].mean() <= 1 and data["Ag"].mean() <= 1


def test_bimodal_weights_and_result(problem):
    truth, ops, data = problem
    vols = bimodal(ops, data, ["Au", "Ag"], 60)
    assert set(vols) == {"Au", "Ag", "HAADF"} and isinstance(vols["Au"], np.ndarray)
    assert vols["Au"].shape == SHAPE and vols["Au"].min() >= 0
    r = vols.info["haadf_weights"]
    # HAADF per count: 2 / 0.2 for Au, 1 / 0.08 for Ag
    assert r["Au"] / r["Ag"] == pytest.approx((2 / 0.2) / (1 / 0.08), rel=0.15)
    assert vols.info["weights_source"] == "co-acquired"
    # the HAADF term helps: alpha = 0 is separate unregularised EDX fits, same iterations
    err, alone = _errors(vols, truth), _errors(bimodal(ops, data, ["Au", "Ag"], 60, alpha=0), truth)
    assert all(err[e] < alone[e] for e in truth), (err, alone)  # measured Au 0.60 vs 0.78, Ag 0.69 vs 0.73


# measured (Au, Ag) NRMSE; MLEM at its oracle iteration: (0.494, 0.640)
@pytest.mark.parametrize("method, options, slack", [(tnv, {}, 1.0),  # (0.186, 0.203)
                                                    (tgv, {}, 1.0),  # (0.327, 0.338)
                                                    (tgv, {"coupling": "none"}, 1.0),  # (0.327, 0.338)
                                                    (dtv, {}, 1.0)])  # (0.205, 0.212)
def test_regularised_methods_beat_mlem(problem, method, options, slack):
    truth, ops, data = problem
    vols = method(ops, data, ["Au", "Ag"], 100, weight=0.3, **options)
    err, base = _errors(vols, truth), _mlem_oracle(truth, ops, data)
    assert all(err[e] < slack * base[e] for e in truth), (err, base)
    assert vols["HAADF"].shape == SHAPE and vols.info["weight_rule"] == "given"


def test_automatic_weight_by_count_splitting(problem):
    truth, ops, data = problem
    vols = tnv(ops, data, ["Au", "Ag"], 30, search_iterations=20)
    hist = vols.info["weight_search"]
    assert vols.info["weight_rule"] == "count-splitting" and 5 <= len(hist) <= 11
    weights = [w for w, _ in hist]
    assert weights == sorted(weights)
    best = min(hist, key=lambda t: t[1])[0]
    assert vols.info["weight"] == best
    # an end is accepted only after the search went 6 steps past the grid, and then it is said so
    assert vols.info["weight_interior"] == (weights[0] < best < weights[-1])
    assert vols.info["weight_interior"] or len(hist) == 11


def test_joint_method_on_a_series(problem):
    _, ops, data = problem
    series = TiltSeries({"HAADF": Signal(data["HAADF"], HAADF_ANGLES, "electrons"),
                         "Au": Signal(data["Au"], EDX_ANGLES, "counts"),
                         "Ag": Signal(data["Ag"], EDX_ANGLES, "counts")})
    vs = reconstruct_series(series, "tgv", iterations=20, thickness=40, options={"weight": 0.3})
    assert set(vs.names) == {"HAADF", "Au", "Ag"} and vs["Au"].shape == SHAPE
    assert vs.provenance["info"]["haadf_weights"]["Au"] > 0
    assert {n for n, m in METHODS.items() if m.joint} == {"bimodal", "tnv", "tgv", "tv_joint", "dtv", "fused"}


def test_errors(problem):
    _, ops, data = problem
    with pytest.raises(ChemtomoError, match="HAADF"):
        bimodal({k: v for k, v in ops.items() if k != "HAADF"}, data, ["Au", "Ag"])
    with pytest.raises(ChemtomoError, match="data_term"):
        tnv(ops, data, ["Au", "Ag"], 1, weight=1.0, data_term="l1")
    with pytest.raises(ChemtomoError, match="edge_fraction"):
        dtv(ops, data, ["Au", "Ag"], 1, weight=1.0, edge_fraction=1.5)
    series = TiltSeries({"Au": Signal(data["Au"], EDX_ANGLES, "counts")})
    with pytest.raises(ChemtomoError, match="needs a HAADF signal"):
        reconstruct_series(series, "tnv")


@pytest.mark.parametrize("method", ["dtv", "tnv"])
def test_element_maps_without_haadf_are_coupled_and_beat_mlem(problem, method):
    # no HAADF: the regulariser alone ties the maps (dtv: guided by the edges of the summed counts)
    truth, _, data = problem
    series = TiltSeries({e: Signal(data[e], EDX_ANGLES, "counts") for e in ("Au", "Ag")})
    ops = {e: Projector(TiltGeometry(EDX_ANGLES, SHAPE)) for e in ("Au", "Ag")}
    vs = reconstruct_series(series, method, iterations=100, thickness=40, options={"search_iterations": 30})
    info = vs.provenance["info"]
    assert set(vs.names) == {"Au", "Ag"} and info["weight_rule"] == "count-splitting" and info["alpha"] == 0
    err, base = _errors(vs, truth), _mlem_oracle(truth, ops, data)
    # measured dtv (0.28, 0.30), tnv (0.21, 0.30); MLEM at its oracle iteration (0.49, 0.64)
    assert all(err[e] < 0.6 * base[e] for e in truth), (err, base)
    if method == "dtv":
        assert info["guide"] == "TV-KL of the summed counts of Au, Ag"


def test_without_haadf_what_needs_it_is_refused(problem):
    _, ops, data = problem
    maps = {e: data[e] for e in ("Au", "Ag")}
    with pytest.raises(ChemtomoError, match="bimodal .* needs a HAADF signal"):
        bimodal(ops, maps, ["Au", "Ag"])
    with pytest.raises(ChemtomoError, match="need a HAADF signal"):
        tnv(ops, maps, ["Au", "Ag"], 5, weight=0.1, haadf="channel")
    with pytest.raises(ChemtomoError, match="need a HAADF signal"):
        tnv(ops, maps, ["Au", "Ag"], 5, weight=0.1, alpha=1.0)
    with pytest.raises(ChemtomoError, match="holds no counts"):
        tnv(ops, {"Au": maps["Au"], "Ag": 0 * maps["Ag"]}, ["Au", "Ag"], 5, weight=0.1)
    series = TiltSeries({e: Signal(data[e], EDX_ANGLES, "counts") for e in ("Au", "Ag")})
    with pytest.raises(ChemtomoError, match="needs a HAADF signal"):
        reconstruct_series(series, "fused")


def test_dtv_lets_the_maps_jump_at_haadf_edges(problem):
    # with the true volume's edges as the guide, directional TV keeps the core/shell contrast that TV flattens
    truth, ops, data = problem
    guide = 2.0 * truth["Au"] + truth["Ag"]
    guided = dtv(ops, data, ["Au", "Ag"], 100, weight=1.0, guide=guide, smooth=0.5)
    plain = dtv(ops, data, ["Au", "Ag"], 100, weight=1.0, guide=guide, smooth=0.5, edge_fraction=0.0)  # = channel TV
    eg, ep = _errors(guided, truth), _errors(plain, truth)
    assert all(eg[e] < 0.8 * ep[e] for e in truth), (eg, ep)
    assert guided.info["guide"] == "given" and guided.info["edge_fraction"] == 0.98
    with pytest.raises(ChemtomoError, match="guide has shape"):
        dtv(ops, data, ["Au", "Ag"], 5, weight=1.0, guide=guide[:3])


def test_dtv_on_haadf_plus_maps_chooses_its_weight_and_beats_mlem(problem):
    truth, _, data = problem
    series = TiltSeries({"HAADF": Signal(data["HAADF"], HAADF_ANGLES, "electrons"),
                         "Au": Signal(data["Au"], EDX_ANGLES, "counts"),
                         "Ag": Signal(data["Ag"], EDX_ANGLES, "counts")})
    vs = reconstruct_series(series, "dtv", iterations=100, thickness=40, options={"search_iterations": 30})
    assert vs.provenance["method"] == "dtv" and vs.provenance["info"]["weight_rule"] == "count-splitting"
    err = _errors(vs, truth)
    assert all(err[e] < 0.3 for e in truth), err  # measured (0.21, 0.21); MLEM at its oracle: (0.49, 0.64)


def test_convergence_is_recorded(problem):
    _, _, data = problem
    series = TiltSeries({"HAADF": Signal(data["HAADF"], HAADF_ANGLES, "electrons"),
                         "Au": Signal(data["Au"], EDX_ANGLES, "counts"),
                         "Ag": Signal(data["Ag"], EDX_ANGLES, "counts")})
    vs = reconstruct_series(series, "tnv", iterations=100, thickness=40, options={"weight": 0.3})
    c = vs.provenance["convergence"]
    assert c["iteration"][0] == 4 and len(c["iteration"]) == 49
    assert c["relative_change"][-1] < 0.1 * c["relative_change"][0]  # the updates shrink


def test_element_maps_without_haadf_from_the_cli(problem, tmp_path):
    import json

    from chemtomo.cli import main
    from chemtomo.io import write_stack

    _, _, data = problem
    for e in ("Au", "Ag"):
        write_stack(tmp_path / f"{e}.mrc", data[e], EDX_ANGLES)
    args = ["reconstruct", "--signal", f"Au={tmp_path / 'Au.mrc'}", "--signal", f"Ag={tmp_path / 'Ag.mrc'}",
            "--method", "dtv", "--iterations", "20", "--option", "weight=0.3", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    prov = json.loads((tmp_path / "run" / "chemtomo.json").read_text())["provenance"]
    assert prov["method"] == "dtv" and prov["info"]["guide"].startswith("TV-KL of the summed counts")
    assert sorted(p.name for p in (tmp_path / "run").glob("*.mrc")) == ["Ag.mrc", "Au.mrc"]


def test_without_haadf_maps_on_different_tilts_share_a_guide_at_their_common_tilts(problem):
    truth, _, data = problem
    sub = slice(None, None, 2)  # Ag on every other tilt of Au's
    ops = {"Au": Projector(TiltGeometry(EDX_ANGLES, SHAPE)), "Ag": Projector(TiltGeometry(EDX_ANGLES[sub], SHAPE))}
    vols = dtv(ops, {"Au": data["Au"], "Ag": data["Ag"][sub]}, ["Au", "Ag"], 60, weight=0.3)
    assert set(vols) == {"Au", "Ag"} and vols["Ag"].shape == SHAPE
    full = {e: Projector(TiltGeometry(EDX_ANGLES, SHAPE)) for e in truth}
    err, base = _errors(vols, truth), _mlem_oracle(truth, full, data)  # MLEM at its oracle iteration, all tilts
    assert all(err[e] < 0.7 * base[e] for e in truth), (err, base)  # measured (0.28, 0.33) and (0.49, 0.64)


def test_without_haadf_the_guide_does_not_depend_on_the_order_of_the_tilts(problem):
    _, _, data = problem
    maps = {e: data[e] for e in ("Au", "Ag")}
    ops = {e: Projector(TiltGeometry(EDX_ANGLES, SHAPE)) for e in maps}
    back = {e: Projector(TiltGeometry(EDX_ANGLES[::-1], SHAPE)) for e in maps}  # the same tilts, descending
    a = dtv(ops, maps, ["Au", "Ag"], 30, weight=0.3)
    b = dtv(back, {e: d[::-1] for e, d in maps.items()}, ["Au", "Ag"], 30, weight=0.3)
    for e in maps:
        np.testing.assert_allclose(b[e], a[e], rtol=1e-3, atol=1e-3 * float(a[e].max()))


@pytest.fixture(scope="module")
def subtracted():
    """Background-subtracted maps (Gaussian noise, negative values) of a core-shell particle with a HAADF series."""
    rng = np.random.default_rng(3)
    cs = core_shell(SHAPE, 7, 14)
    truth = {"Fe": cs["core"].astype(np.float32), "O": cs["shell"].astype(np.float32)}
    ops = {"HAADF": Projector(TiltGeometry(HAADF_ANGLES, SHAPE))}
    h = ops["HAADF"](3 * truth["Fe"] + truth["O"])
    data = {"HAADF": (h + rng.normal(0, 0.02 * h.max(), h.shape)).astype(np.float32)}
    for e in truth:
        ops[e] = Projector(TiltGeometry(EDX_ANGLES, SHAPE))
        p = ops[e](truth[e])
        data[e] = (p + rng.normal(0, 0.3 * p.max(), p.shape)).astype(np.float32)
    return truth, ops, data


def _sirt_oracle(truth, ops, data):
    """Gaussian-filtered SIRT with its iterations and filter width tuned on the truth, per element."""
    from scipy.ndimage import gaussian_filter

    from chemtomo.recon.sirt import sirt

    best = {}
    for e in truth:
        for it in (5, 10, 20, 50):
            x = sirt(ops[e], data[e], it)
            for w in (0, 1, 2, 3):
                best[e] = min(best.get(e, np.inf), nrmse(gaussian_filter(x, w) if w else x, truth[e]))
    return best


@pytest.mark.parametrize("method", [dtv, tnv])
def test_maps_that_are_not_counts_take_the_l2_term_and_a_weight_by_held_out_views(subtracted, method):
    truth, ops, data = subtracted
    assert (data["Fe"] < 0).any()
    vols = method(ops, data, ["Fe", "O"], data_term="l2")
    assert vols.info["maps"] == "images" and vols.info["weight_rule"] == "held-out views, one standard error"
    assert vols.info["weight_interior"]
    # the weights' ratio (HAADF per unit of each map) is found despite the noise in the maps: 3 for Fe, 1 for O
    assert vols.info["haadf_weights"]["Fe"] / vols.info["haadf_weights"]["O"] == pytest.approx(3, rel=0.2)
    oracle = _sirt_oracle(truth, ops, data)
    for e in truth:  # in the maps' own units, and far better than the conventional pipeline tuned on the truth
        assert nrmse(vols[e], truth[e]) < 0.7 * oracle[e]


def test_maps_with_negative_values_are_refused_by_the_poisson_term_with_what_to_do(subtracted):
    _, ops, data = subtracted
    with pytest.raises(ChemtomoError, match="data_term='l2'"):
        tnv(ops, data, ["Fe", "O"])
    with pytest.raises(ChemtomoError, match="not counts"):
        dtv({e: ops[e] for e in ("Fe", "O")}, {e: data[e] for e in ("Fe", "O")}, ["Fe", "O"], data_term="l2")


def test_a_guide_given_through_the_series_is_recorded_by_its_shape(problem):
    import json

    truth, ops, data = problem
    series = TiltSeries({n: Signal(data[n], ops[n].geometry.angles) for n in ("HAADF", "Au", "Ag")})
    guide = (2 * truth["Au"] + truth["Ag"]).astype(np.float32)
    vs = reconstruct_series(series, "dtv", iterations=10, options={"guide": guide, "weight": 0.1})
    assert vs.provenance["options"] == {"guide": f"array of shape {SHAPE}", "weight": 0.1}
    assert vs.provenance["info"]["guide"] == "given"
    json.dumps(vs.provenance)
