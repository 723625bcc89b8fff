import json

import pytest

from chemtomo.batch import read_manifest, run_batch
from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError

RECIPE = """\
inputs:
  simulate:
    phantom: "core-shell:sphere,ratio=0.6,rotation=none,position=centre,size=0.7"
    elements: [Au, Ag]
    size: 20
    dose: {dose}
reconstruct:
  method: mlem
  iterations: 10
quantify:
  core: Au
"""


@pytest.fixture()
def recipes(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    for i, dose in enumerate(("1.0e+7", "3.0e+7", "1.0e+8")):
        (folder / f"p{i}.yaml").write_text(RECIPE.format(dose=dose))
    return folder


def test_batch_runs_skips_and_survives_a_failure(recipes, tmp_path):
    out = tmp_path / "out"
    rec = run_batch(recipes, out, workers=2, log=lambda *_: None)
    assert [r["status"] for r in rec["particles"]] == ["done"] * 3
    assert (out / "p1" / "3-reconstruct" / "Au.mrc").exists()
    assert (out / "particles.parquet").exists() and rec["particles_per_hour"] > 0
    # rerun: everything finished before is skipped
    rec = run_batch(recipes, out, workers=1, log=lambda *_: None)
    assert [r["status"] for r in rec["particles"]] == ["skipped"] * 3
    # a manifest with a failing particle: the others still finish
    (tmp_path / "m.csv").write_text("name,recipe\np0,recipes/p0.yaml\nbad,recipes/bad.yaml\n")
    (recipes / "bad.yaml").write_text(RECIPE.format(dose="1.0e+7").replace("size: 20", "size: 20\n    seed: -1"))
    rec = run_batch(tmp_path / "m.csv", out, workers=1, log=lambda *_: None)
    status = {r["name"]: r["status"] for r in rec["particles"]}
    assert status == {"p0": "skipped", "bad": "failed"}
    assert json.loads((out / "batch.json").read_text())["particles"][0]["name"] == "bad"


def test_manifest_errors(tmp_path, recipes, capsys):
    (tmp_path / "m.csv").write_text("id,path\nx,y\n")
    with pytest.raises(ChemtomoError, match="columns name and recipe"):
        read_manifest(tmp_path / "m.csv")
    with pytest.raises(ChemtomoError, match="does not exist"):
        read_manifest(tmp_path / "none.csv")
    (recipes / "p0.yaml").write_text(RECIPE.format(dose="1e7").replace("  iterations: 10", "  iterations: 10\n  colour: red"))
    assert main(["batch", str(recipes), "--out", str(tmp_path / "o")]) == 2
    assert "colour" in capsys.readouterr().err
