import csv
import json

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.data import VolumeSet
from chemtomo.io.write import write_volume_set
from chemtomo.pipeline.quantify import quantify_run, read_table, rows_to_csv


@pytest.mark.slow
def test_quantify_run_writes_table_json_and_figure(particle_field, tmp_path):
    run_dir = tmp_path / "run"
    write_volume_set(VolumeSet({k: v.astype(np.float32) for k, v in particle_field.items()}, voxel_size=0.5), run_dir)
    res = quantify_run(run_dir, core="Au")
    out = run_dir / "quantify"
    assert [p.name for p in res["paths"]] == ["particles.csv", "particles.parquet", "quantify.json", "particles.png"]
    assert all(p.parent == out and p.is_file() for p in res["paths"])
    text = rows_to_csv(res["rows"])
    assert text.splitlines()[0].startswith("particle,voxels") and len(text.splitlines()) == 3
    assert (out / "particles.csv").read_text() == text
    assert [r["particle"] for r in read_table(out / "particles.parquet")] == [1, 2]


def test_quantify_from_the_cli(particle_field, tmp_path, capsys):
    run_dir = tmp_path / "run"
    write_volume_set(VolumeSet({k: v.astype(np.float32) for k, v in particle_field.items()}, voxel_size=0.5,
                               provenance={"method": "test"}), run_dir)
    assert main(["quantify", str(run_dir), "--core", "Au"]) == 0
    printed = capsys.readouterr().out
    assert "particle 1" in printed and "coverage 1.00" in printed
    with open(run_dir / "quantify" / "particles.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    shells = [float(r["shell_mean_nm"]) for r in rows if r.get("shell_mean_nm")]
    assert len(shells) == 1 and shells[0] == pytest.approx(2.5, abs=0.5)
    meta = json.loads((run_dir / "quantify" / "quantify.json").read_text())
    assert meta["core"] == "Au" and meta["voxel_size_nm"] == 0.5 and len(meta["particles"]) == 2
    assert main(["quantify", str(tmp_path / "nowhere")]) == 2
    assert "chemtomo.json" in capsys.readouterr().err


@pytest.mark.slow
def test_batch_of_runs_parquet_and_figure(particle_field, tmp_path, capsys):
    runs = []
    for i in range(2):
        runs.append(tmp_path / f"run{i}")
        write_volume_set(VolumeSet({k: v.astype(np.float32) for k, v in particle_field.items()}, voxel_size=0.5), runs[-1])
    assert main(["quantify", *map(str, runs), "--core", "Au", "--out", str(tmp_path / "b")]) == 0
    rows = read_table(tmp_path / "b" / "batch.parquet")
    assert len(rows) == 4 and {r["run"] for r in rows} == {str(r) for r in runs}
    assert isinstance(rows[0]["particle"], int) and isinstance(rows[0]["touches_border"], bool)
    shells = [r["shell_mean_nm"] for r in rows if r["shell_mean_nm"] is not None]
    assert len(shells) == 2 and all(abs(s - 2.5) < 0.5 for s in shells)
    assert (tmp_path / "b" / "batch.png").stat().st_size > 10_000
    assert (tmp_path / "b" / "run0" / "particles.parquet").exists()
    capsys.readouterr()
    assert main(["quantify", *map(str, runs)]) == 2  # several runs need --out


def test_uncertainties_of_a_mean_of_pipelines_are_refused_with_the_way_out(particle_field, tmp_path):
    from chemtomo.core.data import TiltSeries
    from chemtomo.core.errors import ChemtomoError

    run_dir = tmp_path / "run"
    members = [{"method": "mlem", "candidate": "mlem"}, {"method": "tv", "candidate": "tv"}]
    prov = {"method": "auto", "signals": {k: {"method": "mlem & tv", "combine": "mean", "members": members}
                                          for k in particle_field}}
    write_volume_set(VolumeSet({k: v.astype(np.float32) for k, v in particle_field.items()}, voxel_size=0.5,
                               provenance=prov), run_dir)
    some = next(iter(particle_field.values()))
    series = TiltSeries.from_arrays({k: np.ones((3, some.shape[0], some.shape[2]), np.float32) for k in particle_field},
                                    np.array([-30.0, 0.0, 30.0]))
    with pytest.raises(ChemtomoError, match="averaged several pipelines .* --method NAME"):
        quantify_run(run_dir, core="Au", series=series, n_splits=2)
