import json

import pytest

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
    tilts: "-60:60:30"
denoise:
  method: gaussian
  options: {sigma: 1.0}
reconstruct:
  method: auto
  iterations: 10
"""


def test_denoise_step_runs_records_and_resumes(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    out = tmp_path / "out"
    rec = run_recipe(path, out, log=lambda *_: None)
    assert list(rec["steps"]) == ["1-inputs", "2b-denoise", "3-reconstruct"]
    prov = json.loads((out / "3-reconstruct" / "chemtomo.json").read_text())["provenance"]
    assert prov["method"] == "sirt"  # auto after denoising
    assert set(prov["denoise"]["signals"]) == {"Au", "Ag"}  # count signals only, HAADF untouched
    assert prov["denoise"]["signals"]["Au"]["options"]["sigma"] == 1.0
    # resume: nothing reruns
    rec = run_recipe(path, out, resume=True, log=lambda *_: None)
    assert all(s.get("skipped") for s in rec["steps"].values())
    # a changed denoiser reruns it and the reconstruction, not the inputs
    path.write_text(RECIPE.replace("options: {sigma: 1.0}", "options: {sigma: 2.0}"))
    rec = run_recipe(path, out, resume=True, log=lambda *_: None)
    assert {k for k, s in rec["steps"].items() if s.get("skipped")} == {"1-inputs"}
    prov = json.loads((out / "3-reconstruct" / "chemtomo.json").read_text())["provenance"]
    assert prov["denoise"]["signals"]["Au"]["options"]["sigma"] == 2.0
    # removing the step reruns the reconstruction on the raw maps (sirt: auto would be a slow joint method)
    path.write_text(RECIPE.replace("denoise:\n  method: gaussian\n  options: {sigma: 1.0}\n", "")
                    .replace("method: auto", "method: sirt"))
    rec = run_recipe(path, out, resume=True, log=lambda *_: None)
    assert list(rec["steps"]) == ["1-inputs", "3-reconstruct"] and not rec["steps"]["3-reconstruct"].get("skipped")
    assert "denoise" not in json.loads((out / "3-reconstruct" / "chemtomo.json").read_text())["provenance"]


def test_denoise_step_is_validated(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(RECIPE.replace("method: gaussian", "method: nlm"))
    with pytest.raises(ChemtomoError, match="line 9: denoise.method: unknown denoiser 'nlm'; allowed: gaussian"):
        load_recipe(path)
    path.write_text(RECIPE.replace("{sigma: 1.0}", "{size: 3}"))
    with pytest.raises(ChemtomoError, match="denoiser gaussian has no option size; its options are sigma"):
        load_recipe(path)


@pytest.mark.slow
def test_views_step_adds_synthesized_views_and_is_validated(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(RECIPE.replace("reconstruct:", "views:\n  step: 15\n  minutes: 0.02\nreconstruct:"))
    out = tmp_path / "out"
    rec = run_recipe(path, out, log=lambda *_: None)
    assert list(rec["steps"]) == ["1-inputs", "2b-denoise", "2c-views", "3-reconstruct"]
    prov = json.loads((out / "3-reconstruct" / "chemtomo.json").read_text())["provenance"]
    assert prov["method"] == "sirt"
    assert sorted(prov["views_synthesis"]["signals"]["Au"]["new_angles"]) == [-45.0, -15.0, 15.0, 45.0]
    assert json.loads((out / "2c-views" / "views.json").read_text())["step"] == 15.0
    rec = run_recipe(path, out, resume=True, log=lambda *_: None)
    assert all(s.get("skipped") for s in rec["steps"].values())
    path.write_text(RECIPE.replace("reconstruct:", "views:\n  step: 15\n  range: [30, -30]\nreconstruct:"))
    with pytest.raises(ChemtomoError, match="range must be"):
        load_recipe(path)
