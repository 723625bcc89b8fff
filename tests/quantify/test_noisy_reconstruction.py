"""Quantify on an ordinary noisy reconstruction: the defaults find the real particles, not the noise, and
lengths are in voxels when the run has no pixel size."""

import csv
import json

import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.data import VolumeSet
from chemtomo.io import read_tilt_series
from chemtomo.io.write import write_volume_set
from chemtomo.recon.series import reconstruct_series
from chemtomo.simulate.command import simulate_to_directory


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """SIRT (50 iterations) of four separated Au30Ag70 spheres, 48^3 voxels, 15 EDX tilts at 3e6 e-/A^2
    (about 0.1 counts per pixel per element map)."""
    sim = tmp_path_factory.mktemp("sim")
    simulate_to_directory(sim, "alloy:sphere,n=4,size=0.25", ["Au", "Ag"], tilts="-70:70:10", signals=("EDX",),
                          dose=3e6, size=48, seed=1)
    series = read_tilt_series({e: sim / f"{e}.mrc" for e in ("Au", "Ag")}, None)
    return reconstruct_series(series, "sirt", iterations=50)


def _rows(folder):
    with open(folder / "quantify" / "particles.csv") as f:
        return list(csv.DictReader(f))


def test_defaults_count_the_particles_of_a_noisy_reconstruction(noisy, tmp_path, capsys):
    run = tmp_path / "run"
    write_volume_set(noisy, run)
    assert main(["quantify", str(run)]) == 0
    rows = _rows(run)
    assert len(rows) == 4 and all(int(r["voxels"]) > 500 for r in rows)  # each sphere holds about 1150 voxels
    meta = json.loads((run / "quantify" / "quantify.json").read_text())
    assert meta["voxel_size_nm"] == 0.5 and meta["length_unit"] == "nm" and "diameter_nm" in rows[0]
    assert meta["smooth_voxels"] == 1.0 and meta["min_size_voxels"] > 27
    # without smoothing and with the old fixed minimum size the noise is counted as particles
    capsys.readouterr()
    assert main(["quantify", str(run), "--smooth", "0", "--min-size", "27", "--out", str(tmp_path / "raw")]) == 0
    with open(tmp_path / "raw" / "particles.csv") as f:
        assert len(list(csv.DictReader(f))) > 8
    assert main(["quantify", str(run), "--smooth", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--smooth" in capsys.readouterr().err
    assert main(["quantify", str(run), "--min-size", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--min-size" in capsys.readouterr().err


def test_lengths_are_in_voxels_without_a_pixel_size(noisy, tmp_path, capsys):
    run = tmp_path / "run"
    # files that carry no pixel size are recorded with 1.0 (chemtomo.io.read_tilt_series)
    write_volume_set(VolumeSet(dict(noisy.volumes), voxel_size=1.0, provenance={"pixel_size_nm": 1.0}), run)
    capsys.readouterr()
    assert main(["quantify", str(run)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    rows = _rows(run)
    assert len(rows) == 4
    assert "diameter_vox" in rows[0] and not any(k.endswith("_nm") or k.endswith("_nm3") for k in rows[0])
    assert float(rows[0]["diameter_vox"]) == pytest.approx((6 * int(rows[0]["voxels"]) / np.pi) ** (1 / 3))
    assert "voxels," in printed and " nm" not in printed.replace("--pixel-size NM gives nm", "")
    meta = json.loads((run / "quantify" / "quantify.json").read_text())
    assert meta["voxel_size_nm"] is None and meta["length_unit"] == "vox"
    assert "radius_vox" in next(iter(meta["radial_profiles"].values()))
    # a pixel size given on the command line gives nm again
    assert main(["quantify", str(run), "--pixel-size", "0.5", "--out", str(tmp_path / "nm")]) == 0
    with open(tmp_path / "nm" / "particles.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["diameter_nm"]) == pytest.approx(0.5 * (6 * int(row["voxels"]) / np.pi) ** (1 / 3))
