"""The method contract, checked for every entry of METHODS (per-signal and joint alike), on small problems."""

import math

import numpy as np
import pytest
import torch

from chemtomo.core.data import Signal, TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.registry import METHODS, check_method, method_options
from chemtomo.recon.selection import choose_weight
from chemtomo.recon.series import reconstruct_series
from chemtomo.recon.stopping import Discrepancy
from chemtomo.testing import core_shell, nrmse

SHAPE = (4, 24, 24)
HAADF_ANGLES = np.linspace(-64.0, 64.0, 17)
EDX_ANGLES = HAADF_ANGLES[::2]  # 9 tilts, co-acquired with HAADF
COUNTS = 3.0  # counts per unit concentration and voxel length
OFFSET = 3.0
ALL = list(METHODS)
SINGLE = [n for n, m in METHODS.items() if not m.joint]
JOINT = [n for n, m in METHODS.items() if m.joint]
ITERATIVE = [n for n, m in METHODS.items() if m.iterations is not None]
#: options that keep the runs short (regularisation weights given: no count-splitting search)
FAST = {"tv": {"weight": 1.0}, "tnv": {"weight": 0.3}, "tgv": {"weight": 0.3}, "tv_joint": {"weight": 0.3},
        "dtv": {"weight": 0.3}, "fused": {"weight": 1.0, "init_iterations": 3}}
ITERATIONS = {"sart": 3, "cgls": 5}


def _iterations(name):
    return None if METHODS[name].iterations is None else ITERATIONS.get(name, 10)


@pytest.fixture(scope="module")
def truth():
    cs = core_shell(SHAPE, 4, 8)
    return {"Au": cs["core"], "Ag": cs["shell"]}


def _series(truth, offset):
    """HAADF (17 tilts) and Au, Ag counts (9 tilts) projected with the tilt axis `offset` pixels from the centre."""
    rng = np.random.default_rng(0)
    a_h = Projector(TiltGeometry(HAADF_ANGLES, SHAPE, SHAPE[2], offset))
    a_e = Projector(TiltGeometry(EDX_ANGLES, SHAPE, SHAPE[2], offset))
    h = a_h(2.0 * truth["Au"] + truth["Ag"])
    signals = {"HAADF": Signal(rng.poisson(50 * h).astype(np.float32) / 50, HAADF_ANGLES, "electrons")}
    for e in ("Au", "Ag"):
        signals[e] = Signal(rng.poisson(COUNTS * a_e(truth[e])).astype(np.float32), EDX_ANGLES, "counts")
    return TiltSeries(signals)


@pytest.fixture(scope="module")
def centred(truth):
    return _series(truth, 0.0)


@pytest.fixture(scope="module")
def shifted(truth):
    return _series(truth, OFFSET)


def _input(series, name):
    """The series a method takes: HAADF + elements for a joint method, the Au counts for a per-signal one."""
    return series if METHODS[name].joint else TiltSeries({"Au": series["Au"]})


def _direct_inputs(series, name, kind):
    """(args, data arrays) for calling the method's function directly, with numpy or torch data."""
    conv = (lambda a: torch.from_numpy(np.array(a))) if kind == "torch" else (lambda a: np.array(a))
    if METHODS[name].joint:
        ops = {n: Projector(series.geometry(n)) for n in series.names}
        data = {n: conv(series[n].data) for n in series.names}
        return (ops, data, ["Au", "Ag"]), list(data.values())
    data = conv(series["Au"].data)
    return (Projector(series.geometry("Au")), data), [data]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("name", ALL)
def test_inputs_untouched_and_array_type_kept(centred, name, kind):
    args, arrays = _direct_inputs(centred, name, kind)
    before = [a.clone() if kind == "torch" else a.copy() for a in arrays]
    m = METHODS[name]
    its = () if m.iterations is None else (_iterations(name),)
    out = m.function(*args, *its, **FAST.get(name, {}))
    for a, b in zip(arrays, before):
        assert (torch.equal(a, b) if kind == "torch" else np.array_equal(a, b))
    vols = out.values() if m.joint else [out]
    array_type = torch.Tensor if kind == "torch" else np.ndarray
    assert all(isinstance(v, array_type) and tuple(v.shape) == SHAPE for v in vols)
    if m.joint:
        assert set(out) == {"HAADF", "Au", "Ag"}


@pytest.mark.parametrize("name", ALL)
def test_series_is_untouched(centred, name):
    series = _input(centred, name)
    before = {n: np.array(series[n].data) for n in series.names}
    vs = reconstruct_series(series, name, iterations=_iterations(name), options=FAST.get(name))
    assert all(np.array_equal(series[n].data, before[n]) for n in series.names)
    assert all(isinstance(v, np.ndarray) and v.shape == SHAPE for v in vs.volumes.values())


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_refused_in_one_line_naming_the_valid_ones(centred, name):
    valid = method_options(name)
    for call in (lambda: check_method(name, {"colour": "red"}),
                 lambda: reconstruct_series(_input(centred, name), name, options={"colour": "red"})):
        with pytest.raises(ChemtomoError) as err:
            call()
        text = str(err.value)
        assert "\n" not in text and "colour" in text
        assert all(v in text for v in valid), (text, valid)


def test_options_are_checked_before_any_work(centred):
    # the series lacks HAADF, which the joint run would refuse; the option is refused first
    with pytest.raises(ChemtomoError, match="tnv has no option colour"):
        reconstruct_series(TiltSeries({"Au": centred["Au"]}), "tnv", options={"colour": 1})
    with pytest.raises(ChemtomoError, match="weight must be a finite number >= 0"):
        reconstruct_series(centred, "dtv", options={"weight": -1.0})


@pytest.mark.parametrize("name", ALL)
def test_axis_offset_is_honoured_and_recorded(truth, shifted, name):
    series = _input(shifted, name)
    errors = {}
    for offset in (0.0, OFFSET):
        vs = reconstruct_series(series, name, iterations=_iterations(name), axis_offset=offset,
                                options=FAST.get(name))
        errors[offset] = sum(nrmse(vs[e] / COUNTS, truth[e]) for e in ("Au", "Ag") if e in vs.names)
        assert vs.provenance["axis_offset"] == offset
    assert errors[OFFSET] < 0.8 * errors[0.0], errors


@pytest.mark.parametrize("name", ITERATIVE)
def test_a_callback_returning_true_stops_the_run(centred, name):
    seen = []

    def progress(signal, i, total):
        seen.append((signal, i, total))
        return i == 3  # stop after the third iteration (index 2)

    vs = reconstruct_series(_input(centred, name), name, iterations=20, progress=progress, options=FAST.get(name))
    p = vs.provenance
    run = p if METHODS[name].joint else p["signals"]["Au"]
    assert run["iterations"] == 3 and p["stop"] is None
    assert [i for _, i, _ in seen] == [1, 2, 3]
    assert {(s, t) for s, _, t in seen} == {(name if METHODS[name].joint else "Au", 20)}


def test_fbp_with_iterations_is_refused(centred):
    with pytest.raises(ChemtomoError) as err:
        reconstruct_series(_input(centred, "fbp"), "fbp", iterations=5)
    assert str(err.value) == "fbp is a direct method without iterations; leave --iterations unset"
    vs = reconstruct_series(_input(centred, "fbp"), "fbp")
    assert vs.provenance["signals"]["Au"]["iterations"] is None


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if not m.stoppable])
def test_discrepancy_stop_refused_where_it_does_not_apply(centred, name):
    with pytest.raises(ChemtomoError) as err:
        reconstruct_series(_input(centred, name), name, stop="discrepancy", options=FAST.get(name))
    text = str(err.value)
    assert "\n" not in text and name in text and "does not semi-converge" in text
    assert all(n in text for n, m in METHODS.items() if m.stoppable)


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if m.stoppable and not m.joint])
def test_discrepancy_stop_honoured_and_recorded(centred, name):
    series = _input(centred, name)
    vs = reconstruct_series(series, name, iterations=60, stop="discrepancy")
    run = vs.provenance["signals"]["Au"]
    assert vs.provenance["stop"] == "discrepancy" and run["stop"] == "discrepancy"
    # the same rule applied by hand stops at the same iteration
    op = Projector(series.geometry("Au"))
    rule = Discrepancy(op, series["Au"].data)
    METHODS[name].function(op, np.asarray(series["Au"].data), 60, callback=rule)
    assert run["iterations"] == (60 if rule.stopped_at is None else rule.stopped_at + 1)
    if name == "mlem":
        assert run["iterations"] < 60


def test_discrepancy_stop_of_the_joint_bimodal(centred):
    vs = reconstruct_series(centred, "bimodal", iterations=200, stop="discrepancy")
    p = vs.provenance
    assert p["stop"] == "discrepancy" and p["info"]["stop"] == "discrepancy"
    assert p["iterations"] == p["info"]["iterations"] < 200 and p["iterations"] % 5 == 0  # checked every 5
    assert p["info"]["deviance_ratio"] <= 1.0


def test_provenance_records_the_run(centred):
    vs = reconstruct_series(centred, "tnv", iterations=10, thickness=20, options={"weight": 0.3})
    p = vs.provenance
    assert (p["method"], p["iterations"], p["thickness"], p["axis_offset"], p["stop"]) == ("tnv", 10, 20, 0.0, None)
    assert p["options"] == {"weight": 0.3} and p["info"]["weight_rule"] == "given" and "convergence" in p
    vs = reconstruct_series(TiltSeries({"Au": centred["Au"]}), "tv", iterations=10, thickness=20)
    run = vs.provenance["signals"]["Au"]
    # TV on counts: Poisson data term, weight chosen by count splitting and recorded with its search
    assert run["options"]["data_term"] == "kl" and run["weight_rule"] == "count-splitting"
    assert run["options"]["weight"] == min(run["weight_search"], key=lambda t: t[1])[0]
    assert isinstance(run["weight_interior"], bool) and vs.provenance["thickness"] == 20


# -- choosing a weight by count splitting -------------------------------------------------------------------


def _log_distance(optimum):
    calls = []

    def score(w, start):
        calls.append((w, start))
        return (math.log(w) - math.log(optimum)) ** 2, f"fit at {w:g}"

    return score, calls


def test_choose_weight_extends_the_grid_until_the_optimum_is_interior():
    score, calls = _log_distance(500.0)
    best, table, interior = choose_weight(score, [0.3, 1, 3, 10, 30])
    assert [w for w, _ in table] == [0.3, 1.0, 3.0, 10.0, 30.0, 90.0, 270.0, 810.0, 2430.0]
    assert best == 810.0 and interior
    # the grid is swept from strong to weak, each fit warm-started from its neighbour; extensions from the end
    assert calls[:3] == [(30.0, None), (10.0, "fit at 30"), (3.0, "fit at 10")]
    assert calls[5] == (90.0, "fit at 30") and calls[-1] == (2430.0, "fit at 810")
    score, _ = _log_distance(1e-3)
    best, table, interior = choose_weight(score, [0.3, 1, 3, 10, 30])
    assert interior and table[0][0] < best < 0.3 and best == pytest.approx(0.3 / 3**5)
    score, _ = _log_distance(50.0)  # interior on the start grid after one step: as before the extension rule
    best, table, interior = choose_weight(score, [0.3, 1, 3, 10, 30])
    assert best == 30.0 and interior and len(table) == 6


def test_choose_weight_says_when_the_optimum_is_not_interior():
    score, _ = _log_distance(1e6)
    best, table, interior = choose_weight(score, [0.3, 1, 3, 10, 30], max_extend=2)
    assert best == 270.0 and not interior and len(table) == 7
    best, table, interior = choose_weight(lambda w, s: (w, None), [0.0, 1.0])  # nothing below 0 can be tried
    assert best == 0.0 and not interior and len(table) == 2
    with pytest.raises(ChemtomoError, match="factor"):
        choose_weight(score, [1.0], factor=1.0)
    with pytest.raises(ChemtomoError, match="start_grid"):
        choose_weight(score, [])


def test_one_standard_error_rule_takes_the_largest_weight_within_the_noise_of_the_best():
    # per-slice scores (50 slices) with an optimum at weight 1 and paired slice-to-slice noise of zero sum (SD 3
    # per slice, so the standard error of a paired difference is about 30): weight 3 (5 more in all) lies within
    # one standard error of the lowest, weight 10 (250 more) does not
    base = 100 + np.random.default_rng(0).normal(0, 10, 50)
    shift = {0.1: 2.0, 0.3: 1.0, 1.0: 0.0, 3.0: 0.1, 10.0: 5.0, 30.0: 20.0, 90.0: 40.0}

    def score(w, start):
        z = np.random.default_rng(int(w * 10)).normal(0, 3, 50)
        return base + shift[w] + z - z.mean(), None

    best, table, interior = choose_weight(score, [0.1, 0.3, 1.0, 3.0, 10.0])
    assert best == 1.0 and interior  # the lowest sum
    best, table, interior = choose_weight(score, [0.1, 0.3, 1.0, 3.0, 10.0], rule="one-se")
    assert best == 3.0 and interior and [w for w, _ in table] == [0.1, 0.3, 1.0, 3.0, 10.0]
    # the pick stays among the weights the search for the lowest needed: no extension beyond them
    shift.update({10.0: 0.05})
    best, table, interior = choose_weight(score, [0.1, 0.3, 1.0, 3.0, 10.0], rule="one-se")
    assert best == 10.0 and table[-1][0] == 10.0
    with pytest.raises(ChemtomoError, match="rule"):
        choose_weight(score, [1.0], rule="smallest")
