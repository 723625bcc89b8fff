import json
from pathlib import Path

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


def _stacks(folder):
    """Au and Ag count stacks (7 tilts, 6 x 16 px) with a shared angle file, written into `folder`."""
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.io import write_stack
    from chemtomo.testing import core_shell

    import numpy as np

    folder.mkdir(parents=True)
    parts = core_shell((6, 16, 16), 3, 6)
    angles = np.linspace(-60, 60, 7)
    op = Projector(TiltGeometry(angles, (6, 16, 16)))
    for name, key in (("au", "core"), ("ag", "shell")):
        write_stack(folder / f"{name}.mrc", np.random.default_rng(0).poisson(5 * op(parts[key])).astype(np.float32))
    (folder / "tilts.tlt").write_text("\n".join(f"{a:g}" for a in angles))


FILES_RECIPE = """\
inputs:
  files: {signals: {Au: ../data/au.mrc, Ag: ABSOLUTE}, angles: ../data/tilts.tlt}
reconstruct: {method: fbp}
"""


def test_relative_input_paths_name_files_beside_the_recipe(tmp_path, monkeypatch, capsys):
    _stacks(tmp_path / "project" / "data")
    recipes = tmp_path / "project" / "recipes"
    recipes.mkdir()
    path = recipes / "r.yaml"
    absolute = tmp_path / "project" / "data" / "ag.mrc"
    path.write_text(FILES_RECIPE.replace("ABSOLUTE", str(absolute)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the current folder holds none of the files
    files = load_recipe(path).inputs.files
    data = tmp_path / "project" / "data"
    assert Path(files.signals["Au"]).resolve() == (data / "au.mrc").resolve()
    assert files.signals["Ag"] == str(absolute)  # absolute paths are kept
    assert Path(files.angles).resolve() == (data / "tilts.tlt").resolve()
    # the run reads them, from the CLI with a relative recipe path and a relative --out (current folder)
    assert main(["run", str(Path("..") / "project" / "recipes" / "r.yaml"), "--out", "out"]) == 0, \
        capsys.readouterr().err
    assert (elsewhere / "out" / "3-reconstruct" / "Au.mrc").is_file()
    assert (elsewhere / "out" / "3-reconstruct" / "Ag.mrc").is_file()


def test_spectra_patterns_and_recipes_built_in_python(tmp_path):
    from chemtomo.pipeline.recipe import Recipe

    folder = tmp_path / "odd [name]"  # glob characters in the recipe's folder are not a pattern
    folder.mkdir()
    path = folder / "s.yaml"
    path.write_text("inputs:\n  spectra: {files: ['tilts/*.hspy', /abs/t0.hspy], elements: [Fe]}\n")
    spectra = load_recipe(path).inputs.spectra.files
    import glob

    (folder / "tilts").mkdir()
    (folder / "tilts" / "t_10.hspy").write_bytes(b"x")
    assert glob.glob(spectra[0]) == [str(folder / "tilts" / "t_10.hspy")]
    assert spectra[1] == "/abs/t0.hspy"
    # without a file there is no recipe folder: paths stay as given (the current folder)
    rec = Recipe.model_validate({"inputs": {"files": {"signals": {"Au": "au.mrc"}}}})
    assert rec.inputs.files.signals == {"Au": "au.mrc"}


def test_align_settings_take_the_rotation_and_tilt_axis_of_the_cli():
    from chemtomo.pipeline.recipe import Align

    assert (Align().method, Align().rotation, Align().tilt_axis, Align().centre) == ("xcorr", "estimate", "auto", "auto")
    assert Align(rotation=1.5, tilt_axis="x").rotation == 1.5
    for bad in ({"rotation": "guess"}, {"tilt_axis": "z"}):
        with pytest.raises(Exception, match="rotation|tilt_axis"):
            Align(**bad)
