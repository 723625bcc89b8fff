import json

import pytest

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError
from chemtomo.pipeline.recipe import load_recipe
from chemtomo.pipeline.run import run_recipe

RECIPE = """\
inputs:
  simulate:
    phantom: "core-shell:sphere,ratio=0.6,rotation=none,position=centre,size=0.7"
    elements: [Au, Ag]
    size: 24
    dose: 3.0e+7
    tilts: "-70:70:10"
align:
  reference: HAADF
  method: xcorr
  centre: false
reconstruct:
  method: mlem
  iterations: 20
quantify:
  core: Au
report: true
"""


@pytest.mark.slow
def test_run_resume_and_rerun_after_a_change(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    out = tmp_path / "out"
    logs = []
    rec = run_recipe(path, out, log=logs.append)
    assert set(rec["steps"]) == {"1-inputs", "2-align", "3-reconstruct", "4-quantify", "5-report"}
    assert "<h2>Particles</h2>" in (out / "5-report" / "report.html").read_text()
    assert (out / "3-reconstruct" / "Au.mrc").exists() and (out / "4-quantify" / "particles.parquet").exists()
    resolved = json.loads((out / "recipe.resolved.json").read_text())
    assert resolved["reconstruct"]["thickness"] is None and resolved["outputs"]["formats"] == ["mrc"]
    assert json.loads((out / "run.json").read_text())["versions"]["chemtomo"]
    # resume: nothing recomputed
    logs.clear()
    rec = run_recipe(path, out, resume=True, log=logs.append)
    assert all(s.get("skipped") for s in rec["steps"].values()), logs
    # a changed reconstruction reruns it and what follows, not the inputs or the alignment
    path.write_text(RECIPE.replace("iterations: 20", "iterations: 10"))
    rec = run_recipe(path, out, resume=True, log=logs.append)
    skipped = {k for k, s in rec["steps"].items() if s.get("skipped")}
    assert skipped == {"1-inputs", "2-align"} and "5-report" in rec["steps"]


def test_validation_names_the_line_and_the_allowed_values(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(RECIPE.replace("  method: mlem", "  method: magic").replace("  core: Au", "  core: Au\n  colour: red"))
    with pytest.raises(ChemtomoError) as err:
        load_recipe(path)
    text = str(err.value)
    assert "line 13: reconstruct.method" in text and "choose one of auto, fbp" in text
    assert "line 17: quantify.colour: unknown key; allowed: core, core_rule, coverage_threshold" in text
    path.write_text("inputs:\n  files: {signals: {Au: a.mrc}}\n  simulate: {phantom: x, elements: [Au], dose: 1}\n")
    with pytest.raises(ChemtomoError, match="exactly one of simulate, files, spectra"):
        load_recipe(path)


def test_run_from_the_cli(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.replace("quantify:\n  core: Au\nreport: true\n", ""))
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "3-reconstruct" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]) == 2
