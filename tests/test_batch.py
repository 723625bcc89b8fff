import json

import pytest

from chemtomo.pipeline.batch import read_manifest, run_batch
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_slabs_match_the_whole_volume_and_resume(tmp_path):
    import numpy as np
    import zarr

    from chemtomo.pipeline.batch import reconstruct_slabs
    from chemtomo.pipeline.recipe import Reconstruct
    from chemtomo.core.data import TiltSeries
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.recon.series import reconstruct_series
    from chemtomo.testing import core_shell

    shape = (20, 24, 24)
    parts = core_shell(shape, 5, 10)
    angles = np.linspace(-70, 70, 15)
    op = Projector(TiltGeometry(angles, shape))
    rng = np.random.default_rng(0)
    series = TiltSeries.from_arrays({"Au": rng.poisson(4 * op(parts["core"])).astype(np.float32),
                                     "Ag": rng.poisson(4 * op(parts["shell"])).astype(np.float32)}, angles)
    whole = reconstruct_series(series, "mlem", iterations=15)
    store = tmp_path / "vol.zarr"
    info = reconstruct_slabs(series, Reconstruct(method="mlem", iterations=15), store, slab=6, workers=2, log=lambda *_: None)
    assert info["slabs"] == 4 and info["computed"] == 4 and info["arrays"] == ["Ag", "Au"]
    got = zarr.open_group(str(store), mode="r")
    for name in ("Au", "Ag"):  # slice-separable: slab by slab is the whole-volume result
        assert np.allclose(got[name][:], whole[name], rtol=1e-4, atol=1e-5)
    # a finished store with the same settings: nothing to do
    info = reconstruct_slabs(series, Reconstruct(method="mlem", iterations=15), store, slab=6, workers=1, log=lambda *_: None)
    assert info["computed"] == 0 and info["skipped"] == 4
    # a killed run: its unfinished store lists two slabs; the rerun computes only the other two
    import shutil

    partial = tmp_path / ".vol.partial.zarr"
    shutil.copytree(store, partial)
    zarr.open_group(str(partial), mode="a").attrs["done"] = [0, 2]
    info = reconstruct_slabs(series, Reconstruct(method="mlem", iterations=15), store, slab=6, workers=1, log=lambda *_: None)
    assert info["computed"] == 2 and info["skipped"] == 2 and not partial.exists()
    # a killed run of other settings does not block a new run, and the finished store is kept until it is replaced
    shutil.copytree(store, partial)
    zarr.open_group(str(partial), mode="a").attrs["chemtomo_slabs"] = {"method": "other"}
    info = reconstruct_slabs(series, Reconstruct(method="sirt"), store, slab=6, workers=1, log=lambda *_: None)
    assert info["computed"] == 4
    assert zarr.open_group(str(store), mode="r").attrs["chemtomo_slabs"]["method"] == "sirt"


@pytest.mark.slow
def test_tv_slabs_with_halo_approach_the_whole_volume(tmp_path):
    import numpy as np
    import zarr

    from chemtomo.pipeline.batch import reconstruct_slabs
    from chemtomo.pipeline.recipe import Reconstruct
    from chemtomo.core.data import TiltSeries
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.recon.series import reconstruct_series
    from chemtomo.testing import core_shell

    shape = (24, 20, 20)
    parts = core_shell(shape, 5, 9)
    angles = np.linspace(-70, 70, 15)
    op = Projector(TiltGeometry(angles, shape))
    series = TiltSeries.from_arrays({"Au": np.random.default_rng(1).poisson(3 * op(parts["core"])).astype(np.float32)},
                                    angles)
    whole = reconstruct_series(series, "tv", iterations=60)["Au"]
    diff = {}
    for halo in (0, 8):
        store = tmp_path / f"h{halo}.zarr"
        reconstruct_slabs(series, Reconstruct(method="tv", iterations=60), store, slab=6, halo=halo, workers=2, log=lambda *_: None)
        got = zarr.open_group(str(store), mode="r")["Au"][:]
        diff[halo] = np.linalg.norm(got - whole) / np.linalg.norm(whole)
    # measured 0.025 with the halo, 0.076 without (the rest: the data-term scale is set per slab)
    assert diff[8] < 0.04 and diff[8] < 0.5 * diff[0], diff


@pytest.mark.slow
def test_slabs_from_the_cli(tmp_path, capsys):
    import numpy as np
    import zarr

    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.io import write_stack
    from chemtomo.testing import core_shell

    shape = (12, 16, 16)
    angles = np.linspace(-70, 70, 15)
    stack = np.random.default_rng(0).poisson(4 * Projector(TiltGeometry(angles, shape))(core_shell(shape, 4, 7)["core"]))
    path = write_stack(tmp_path / "au.mrc", stack.astype(np.float32), angles)
    assert main(["reconstruct", "--signal", f"Au={path}", "--method", "sirt", "--slab", "4", "--workers", "1",
                 "--out", str(tmp_path / "o")]) == 0
    assert "3 slabs computed" in capsys.readouterr().out
    assert zarr.open_group(str(tmp_path / "o" / "volumes.zarr"), mode="r")["Au"].shape == (12, 16, 16)
