import json

import mrcfile
import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.io import write_stack
from chemtomo.testing import core_shell, nrmse

NY, N = 6, 32


@pytest.fixture()
def data(tmp_path):
    """HAADF at 29 tilts, Au and Ag counts at 15 tilts, written as MRC + .tlt files."""
    parts = core_shell((NY, N, N), 6, 12)
    au, ag = parts["core"], parts["shell"]
    dense, sparse = np.linspace(-70, 70, 29), np.linspace(-70, 70, 15)
    rng = np.random.default_rng(0)
    haadf = Projector(TiltGeometry(dense, au.shape))(3 * au + ag)
    edx = Projector(TiltGeometry(sparse, au.shape))
    files = {
        "HAADF": write_stack(tmp_path / "haadf.mrc", haadf),
        "Au": write_stack(tmp_path / "au.mrc", rng.poisson(5 * edx(au)).astype(np.float32)),
        "Ag": write_stack(tmp_path / "ag.mrc", rng.poisson(5 * edx(ag)).astype(np.float32)),
    }
    (tmp_path / "dense.tlt").write_text("\n".join(f"{a:g}" for a in dense))
    (tmp_path / "sparse.tlt").write_text("\n".join(f"{a:g}" for a in sparse))
    return tmp_path, files, {"Au": au, "Ag": ag, "HAADF": 3 * au + ag}


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_reconstruct_contract_per_signal_angles(data, capsys):
    tmp, files, truth = data
    out = tmp / "recon"
    code, stdout, _ = run(["reconstruct", "--angles", f"HAADF={tmp / 'dense.tlt'}", "--angles", f"Au={tmp / 'sparse.tlt'}",
                           "--angles", f"Ag={tmp / 'sparse.tlt'}", "--signal", f"HAADF={files['HAADF']}",
                           "--signal", f"Au={files['Au']}", "--signal", f"Ag={files['Ag']}", "--method", "sirt",
                           "--iterations", "30", "--out", out], capsys)
    assert code == 0, stdout
    for name in ("HAADF", "Au", "Ag"):
        with mrcfile.open(out / f"{name}.mrc") as m:
            vol = m.data.copy()
        assert vol.shape == (NY, N, N) and vol.dtype == np.float32
        scale = 5.0 if name != "HAADF" else 1.0
        assert nrmse(vol / scale, truth[name]) < 0.5
    meta = json.loads((out / "chemtomo.json").read_text())
    assert meta["provenance"]["signals"]["HAADF"]["angles_deg"][1] == pytest.approx(-65.0)
    assert len(meta["provenance"]["signals"]["Au"]["angles_deg"]) == 15
    assert meta["provenance"]["signals"]["Au"]["method"] == "sirt"


def test_reconstruct_thickness_and_auto(data, capsys):
    tmp, files, _ = data
    out = tmp / "recon"
    code, stdout, _ = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                           "--method", "auto", "--thickness", 20, "--out", out], capsys)
    assert code == 0
    with mrcfile.open(out / "Au.mrc") as m:
        assert m.data.shape == (NY, 20, N)
    prov = json.loads((out / "chemtomo.json").read_text())["provenance"]
    ranking = prov["auto"]["counts"]["ranking"]
    assert prov["method"] == "auto" and len(ranking) >= 5 and prov["auto"]["counts"]["signals"] == ["Au"]
    assert [r["score"] for r in ranking] == sorted(r["score"] for r in ranking)  # best first
    assert prov["signals"]["Au"]["candidate"] == ranking[0]["candidate"]
    assert "auto, counts: Au" in stdout and "->" in stdout


@pytest.mark.parametrize("method", ["fbp", "sirt", "sart", "cgls", "mlem", "tv"])
def test_every_method_runs_from_the_cli(data, capsys, method):
    tmp, files, truth = data
    out = tmp / method
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", method, "--iterations", 20, "--out", out] if method != "fbp" else
                       ["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", method, "--out", out], capsys)
    assert code == 0, err
    with mrcfile.open(out / "Au.mrc") as m:
        assert nrmse(m.data / 5.0, truth["Au"]) < (1.2 if method == "fbp" else 0.7)


def test_methods_lists_every_method(capsys):
    code, stdout, _ = run(["methods"], capsys)
    assert code == 0
    import re

    from chemtomo.recon.registry import METHODS

    text = " ".join(stdout.split())  # rich may wrap long lines
    for name in ("auto", *METHODS):
        assert f" {name} " in f" {text} "
    for name, m in METHODS.items():
        haadf_only = bool(re.search(rf"(^| ){name} +\(joint: HAADF \+ all element maps\)", text))
        assert haadf_only == (m.joint and not m.alone)
        assert bool(re.search(rf"(^| ){name} +\(joint: all element maps, with HAADF or without\)", text)) == m.alone


def one_line_error(code, err, *words):
    assert code == 2
    assert "Traceback" not in err
    text = " ".join(err.split())
    assert text.startswith("error: ")
    for w in words:
        assert w in text, text


def test_mismatched_angle_count(data, capsys):
    tmp, files, _ = data
    code, _, err = run(["reconstruct", "--angles", tmp / "dense.tlt", "--signal", f"Au={files['Au']}",
                        "--method", "sirt", "--out", tmp / "o"], capsys)
    one_line_error(code, err, "29 angles", "15 images")


def test_negative_counts_to_poisson_method(data, capsys):
    tmp, _, _ = data
    bad = write_stack(tmp / "neg.mrc", -np.ones((15, NY, N), np.float32))
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={bad}",
                        "--method", "mlem", "--out", tmp / "o"], capsys)
    one_line_error(code, err, "negative")


def test_non_finite_values(data, capsys):
    tmp, _, _ = data
    arr = np.ones((15, NY, N), np.float32)
    arr[3, 2, 1] = np.nan
    bad = write_stack(tmp / "nan.mrc", arr)
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={bad}",
                        "--method", "sirt", "--out", tmp / "o"], capsys)
    one_line_error(code, err, "NaN")


def test_empty_and_unreadable_files(data, capsys):
    tmp, _, _ = data
    (tmp / "empty.mrc").write_bytes(b"")
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={tmp / 'empty.mrc'}",
                        "--out", tmp / "o"], capsys)
    one_line_error(code, err, "empty.mrc")
    (tmp / "junk.mrc").write_bytes(b"not an mrc file at all" * 10)
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={tmp / 'junk.mrc'}",
                        "--out", tmp / "o"], capsys)
    one_line_error(code, err, "junk.mrc")
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={tmp / 'missing.mrc'}",
                        "--out", tmp / "o"], capsys)
    one_line_error(code, err, "missing.mrc")


def test_image_size_mismatch(data, capsys):
    tmp, files, _ = data
    other = write_stack(tmp / "small.mrc", np.ones((15, NY, N - 2), np.float32))
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--signal", f"Ag={other}", "--out", tmp / "o"], capsys)
    one_line_error(code, err, f"{NY}x{N}", f"{NY}x{N - 2}")


def test_bad_names_and_methods(data, capsys):
    tmp, files, _ = data
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Xx={files['Au']}",
                        "--out", tmp / "o"], capsys)
    one_line_error(code, err, "Xx")
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", "magic", "--out", tmp / "o"], capsys)
    one_line_error(code, err, "magic", "sirt")


def test_failed_run_leaves_earlier_results_intact(data, capsys):
    tmp, files, _ = data
    out = tmp / "recon"
    assert run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}", "--method", "sirt",
                "--iterations", 5, "--out", out], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, _ = run(["reconstruct", "--angles", tmp / "dense.tlt", "--signal", f"Au={files['Au']}",
                      "--method", "sirt", "--out", out], capsys)
    assert code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_simulate_then_reconstruct(tmp_path, capsys):
    out = tmp_path / "sim"
    args = ["simulate", "--phantom", "core-shell:sphere", "--elements", "Au,Ag", "--dose", "1e8", "--tilts",
            "-60:60:20", "--signals", "HAADF,EDX", "--size", 24, "--out", out, "--seed", 3]
    assert run(args, capsys)[0] == 0
    for f in ("HAADF.mrc", "Au.mrc", "Ag.mrc", "angles.tlt", "truth/Au.mrc", "truth/Ag.mrc", "simulation.json"):
        assert (out / f).exists(), f
    with mrcfile.open(out / "Au.mrc") as m:
        assert m.data.shape == (7, 24, 24)
        first = m.data.copy()
    assert run(args[:-4] + ["--out", tmp_path / "again", "--seed", 3], capsys)[0] == 0
    with mrcfile.open(tmp_path / "again" / "Au.mrc") as m:
        np.testing.assert_array_equal(m.data, first)
    code, _, _ = run(["reconstruct", "--angles", out / "angles.tlt", "--signal", f"Au={out / 'Au.mrc'}",
                      "--signal", f"HAADF={out / 'HAADF.mrc'}", "--out", out / "recon"], capsys)
    assert code == 0
    with mrcfile.open(out / "recon" / "Au.mrc") as m, mrcfile.open(out / "truth" / "Au.mrc") as t:
        assert m.data.shape == t.data.shape
        # the reconstruction correlates with the truth
        assert np.corrcoef(m.data.ravel(), t.data.ravel())[0, 1] > 0.7


def test_simulate_bad_tilts(tmp_path, capsys):
    code, _, err = run(["simulate", "--tilts", "70:-70:10", "--dose", 1e6, "--out", tmp_path], capsys)
    one_line_error(code, err, "start:stop:step")


@pytest.mark.slow
def test_demo_small(tmp_path, capsys, monkeypatch):
    import chemtomo.cli

    calls = []
    monkeypatch.setattr(chemtomo.cli, "_bar_progress", lambda bar: lambda *a: calls.append(a))
    code, stdout, _ = run(["demo", "--out", tmp_path, "--size", 32], capsys)
    assert code == 0
    assert calls[0] == ("demo", 0, 10) and calls[-1] == ("demo", 10, 10) and len(calls) == 11  # one step per run
    assert (tmp_path / "orthoslices.png").stat().st_size > 10_000
    table = (tmp_path / "table.md").read_text().splitlines()
    scores = {row.split("|")[1].strip(): [float(c) for c in row.split("|")[2:4]] for row in table[2:]}
    auto_row = next(k for k in scores if k.startswith("auto (chose "))
    assert set(scores) - {auto_row} == {"fbp", "sirt", "sart", "cgls", "mlem", "tv", "tnv (joint, HAADF)",
                                        "dtv (joint, HAADF)"}
    # the default, chosen without ground truth, is far better than the untuned classical methods
    assert max(scores[auto_row]) < min(scores["sirt"]) and max(scores[auto_row]) < min(scores["mlem"])
    # on low-dose counts the Poisson and TV methods beat least squares, and HAADF lifts the joint method further
    assert max(scores["tv"]) < min(scores["sirt"])
    assert max(scores["tnv (joint, HAADF)"]) < min(scores["sirt"])
    assert max(scores["dtv (joint, HAADF)"]) < min(scores["sirt"])
    assert (tmp_path / "tnv-joint" / "Au.mrc").exists() and (tmp_path / "dtv-joint" / "Au.mrc").exists()
    assert (tmp_path / "tv" / "Au.mrc").exists() and (tmp_path / "HAADF-sirt" / "HAADF.mrc").exists()


def test_method_options_and_stop(data, capsys):
    tmp, files, truth = data
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", "tv", "--option", "weight=2", "--option", "data_term=kl", "--iterations", 50,
                        "--out", tmp / "tv"], capsys)
    assert code == 0, err
    meta = json.loads((tmp / "tv" / "chemtomo.json").read_text())
    assert meta["provenance"]["signals"]["Au"]["options"] == {"weight": 2, "data_term": "kl"}
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", "mlem", "--stop", "discrepancy", "--out", tmp / "s"], capsys)
    assert code == 0, err
    meta = json.loads((tmp / "s" / "chemtomo.json").read_text())
    assert meta["provenance"]["signals"]["Au"]["iterations"] < 50
    code, _, err = run(["reconstruct", "--angles", tmp / "sparse.tlt", "--signal", f"Au={files['Au']}",
                        "--method", "fbp", "--option", "colour=red", "--out", tmp / "f"], capsys)
    one_line_error(code, err, "colour", "filter")


@pytest.mark.parametrize("method", ["bimodal", "tnv", "tgv", "dtv", "fused"])
def test_joint_methods_from_the_cli(data, capsys, method):
    tmp, files, truth = data
    out = tmp / method
    code, _, err = run(["reconstruct", "--angles", f"HAADF={tmp / 'dense.tlt'}", "--angles", f"Au={tmp / 'sparse.tlt'}",
                        "--angles", f"Ag={tmp / 'sparse.tlt'}", "--signal", f"HAADF={files['HAADF']}",
                        "--signal", f"Au={files['Au']}", "--signal", f"Ag={files['Ag']}", "--method", method,
                        "--iterations", 40, "--option", {"bimodal": "alpha=1.0", "fused": "z_exponent=1.7"}.get(method, "weight=0.1"),
                        "--out", out], capsys)
    assert code == 0, err
    for name in ("Au", "Ag", "HAADF"):
        with mrcfile.open(out / f"{name}.mrc") as m:
            assert m.data.shape == (NY, N, N)
    with mrcfile.open(out / "Au.mrc") as m:
        assert np.corrcoef(m.data.ravel(), truth["Au"].ravel())[0, 1] > 0.8
    meta = json.loads((out / "chemtomo.json").read_text())
    assert meta["provenance"]["method"] == method


def test_quantify_with_uncertainty_after_a_joint_reconstruction(data, capsys):
    import csv

    tmp, files, truth = data
    ang = ["--angles", f"HAADF={tmp / 'dense.tlt'}", "--angles", f"Au={tmp / 'sparse.tlt'}",
           "--angles", f"Ag={tmp / 'sparse.tlt'}"]
    sig = ["--signal", f"HAADF={files['HAADF']}", "--signal", f"Au={files['Au']}", "--signal", f"Ag={files['Ag']}"]
    out = tmp / "joint"
    code, _, err = run(["reconstruct", *ang, *sig, "--method", "dtv", "--iterations", 60, "--option", "weight=0.2",
                        "--out", out], capsys)
    assert code == 0, err
    code, printed, err = run(["quantify", out, "--core", "Au", "--uncertainty", 1, *sig, *ang], capsys)
    assert code == 0, err
    assert "+-" in printed
    with open(out / "quantify" / "particles.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    core_share = truth["Au"].sum() / (truth["Au"].sum() + truth["Ag"].sum())
    assert float(rows[0]["at_Au"]) == pytest.approx(core_share, abs=0.05)
    assert 0 < float(rows[0]["at_Au_sd"]) < 0.05
    code, _, err = run(["quantify", out, "--uncertainty", 1], capsys)
    one_line_error(code, err, "--signal")


@pytest.mark.parametrize("args", [["reconstruct", "--bogus"], ["simulate", "--size", "7", "--out", "x"], ["nothing"],
                                  ["reconstruct", "--iterations", "-3", "--signal", "Au=a.mrc", "--out", "x"]])
def test_usage_errors_are_one_line_with_exit_status_2(args, capsys):
    code, stdout, stderr = run(args, capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr


def test_align_refuses_a_reference_reconstruct_would_refuse_and_its_output_reconstructs(data, capsys):
    """align used to write SUM.mrc for --signal SUM=... --reference SUM, which reconstruct then refused."""
    tmp, files, _ = data
    sig = ["--signal", f"SUM={files['HAADF']}", "--signal", f"Au={files['HAADF']}"]
    code, _, err = run(["align", *sig, "--angles", tmp / "dense.tlt", "--reference", "SUM", "--method", "xcorr",
                        "--out", tmp / "bad"], capsys)
    one_line_error(code, err, "'SUM'", "HAADF", "choose one of Au")
    assert not (tmp / "bad").exists()
    code, _, err = run(["align", "--signal", f"HAADF={files['HAADF']}", "--angles", tmp / "dense.tlt",
                        "--reference", "SUM", "--method", "xcorr", "--out", tmp / "bad"], capsys)
    one_line_error(code, err, "'SUM'", "choose one of HAADF")
    # a usable reference: what align writes, reconstruct reads
    out = tmp / "aligned"
    code, _, err = run(["align", "--signal", f"HAADF={files['HAADF']}", "--angles", tmp / "dense.tlt",
                        "--reference", "HAADF", "--method", "xcorr", "--no-centre", "--out", out], capsys)
    assert code == 0, err
    stacks = sorted(p.stem for p in out.glob("*.mrc"))
    assert stacks == ["HAADF"]
    code, _, err = run(["reconstruct", *[a for n in stacks for a in ("--signal", f"{n}={out / (n + '.mrc')}")],
                        "--method", "sirt", "--iterations", 5, "--out", tmp / "recon"], capsys)
    assert code == 0, err
    assert (tmp / "recon" / "HAADF.mrc").is_file()


def test_maps_eels_edge_outside_the_spectrum_names_what_to_do(tmp_path, capsys):
    """The advice names options `chemtomo maps` has (--elements), not a width the command cannot set."""
    from chemtomo.simulate.spectrum import to_exspy
    from chemtomo.training.spectral import simulate_eels

    sim = simulate_eels(np.random.default_rng(1), 8, edges=("Ti_L23", "Fe_L23"), counts=300.0, dispersion=1.0)
    keep = sim["energy"] < 740.0  # Fe L2,3 (708 eV) needs 50 eV above its onset
    s = to_exspy(sim["si"][..., keep], sim["energy"][keep], lines=["Fe_Ka"], pixel_size=1.0)
    s.axes_manager.signal_axes[0].units = "eV"
    s.save(str(tmp_path / "t_0.hspy"), overwrite=True)
    code, _, err = run(["maps", tmp_path / "t_0.hspy", "--elements", "Ti_L23,Fe_L23", "--out", tmp_path / "m"],
                       capsys)
    one_line_error(code, err, "too little for Fe_L23", "--elements Ti_L23", "energy range that covers Fe_L23")
    assert "width" not in err
