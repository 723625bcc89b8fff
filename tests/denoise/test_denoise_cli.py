import json

import mrcfile
import numpy as np
import pytest
import tifffile

from chemtomo.cli import main
from chemtomo.denoise import gaussian
from chemtomo.io import read_angles, read_stack, write_stack

ANGLES = [-60.0, -20.0, 20.0, 60.0]


@pytest.fixture()
def stack(tmp_path, projection):
    counts = np.random.default_rng(2).poisson(np.concatenate([projection(1.0)] * 2)).astype(np.float32)
    write_stack(tmp_path / "au.mrc", counts, ANGLES, pixel_size=0.5)
    return tmp_path, counts


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_denoise_round_trip_through_files(stack, capsys):
    tmp, counts = stack
    code, out, _ = run(["denoise", tmp / "au.mrc", tmp / "au_g.mrc", "--method", "gaussian", "--option", "sigma=1.5"],
                       capsys)
    assert code == 0 and "sigma=1.5" in out
    data, meta = read_stack(tmp / "au_g.mrc")
    np.testing.assert_allclose(data, gaussian(counts, sigma=1.5), rtol=1e-6)
    assert meta["pixel_size"] == pytest.approx(0.5)
    np.testing.assert_allclose(read_angles(tmp / "au_g.tlt"), ANGLES)
    # TIFF out, the width chosen from the data and printed
    code, out, _ = run(["denoise", tmp / "au.mrc", tmp / "au_g.tif", "--method", "gaussian"], capsys)
    assert code == 0 and "sigma=" in out
    assert tifffile.imread(tmp / "au_g.tif").shape == counts.shape
    assert not list(tmp.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_denoise_cli_errors(stack, capsys):
    tmp, _ = stack
    code, _, err = run(["denoise", tmp / "au.mrc", tmp / "o.mrc", "--method", "nlm"], capsys)
    assert code == 2 and "unknown denoiser 'nlm'" in err
    code, _, err = run(["denoise", tmp / "au.mrc", tmp / "o.png", "--method", "median"], capsys)
    assert code == 2 and "must end in .mrc" in err and ".tif" in err
    code, _, err = run(["denoise", tmp / "au.mrc", tmp / "o.mrc", "--method", "median", "--option", "size=2"], capsys)
    assert code == 2 and "odd" in err
    assert not (tmp / "o.mrc").exists()


def test_reconstruct_with_denoise_records_provenance(stack, capsys):
    tmp, counts = stack
    haadf = np.asarray(counts, dtype=np.float32) * 3.7 + 0.25  # not counts: must stay untouched
    write_stack(tmp / "haadf.mrc", haadf, ANGLES, pixel_size=0.5)
    code, out, err = run(["reconstruct", "--signal", f"HAADF={tmp / 'haadf.mrc'}", "--signal", f"Au={tmp / 'au.mrc'}",
                          "--denoise", "gaussian", "--iterations", "5", "--out", tmp / "rec"], capsys)
    assert code == 0, err
    prov = json.loads((tmp / "rec" / "chemtomo.json").read_text())["provenance"]
    assert prov["denoise"]["method"] == "gaussian" and list(prov["denoise"]["signals"]) == ["Au"]
    assert 0.5 < prov["denoise"]["signals"]["Au"]["options"]["sigma"] < 8
    assert prov["method"] == "sirt"  # auto after denoising
    # denoising changes the Au volume but not the HAADF one
    code, _, _ = run(["reconstruct", "--signal", f"HAADF={tmp / 'haadf.mrc'}", "--signal", f"Au={tmp / 'au.mrc'}",
                      "--method", "sirt", "--iterations", "5", "--out", tmp / "plain"], capsys)
    assert code == 0
    vol = {}
    for d in ("rec", "plain"):
        for n in ("HAADF", "Au"):
            with mrcfile.open(tmp / d / f"{n}.mrc") as m:
                vol[d, n] = m.data.copy()
    np.testing.assert_array_equal(vol["rec", "HAADF"], vol["plain", "HAADF"])
    assert not np.allclose(vol["rec", "Au"], vol["plain", "Au"])
    code, _, err = run(["reconstruct", "--signal", f"Au={tmp / 'au.mrc'}", "--denoise", "gaussian",
                        "--denoise-signal", "Ag", "--out", tmp / "x"], capsys)
    assert code == 2 and "cannot denoise Ag" in err
