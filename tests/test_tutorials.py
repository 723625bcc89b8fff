"""The computations of docs/tutorials/figures.py at a reduced size, checked against ground truth.

The tutorials (docs/tutorials/*.md) quote the numbers that script prints at full size; these
checks run the same functions small (32^3) so that a change in the package that breaks a
tutorial's claim shows up here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script runs; two threads on a shared 2-core machine can be much slower
    spec = importlib.util.spec_from_file_location("chemtomo_tutorial_figures", REPO / "docs" / "tutorials" / "figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod
    torch.set_num_threads(threads)


def test_haadf_unmixing(script):
    r = script.haadf_tutorial(32)
    # the histogram calibration finds the pure intensities that the simulation puts in
    assert r["I_Au"] == pytest.approx(r["I_Au_expected"], rel=0.15)
    assert r["I_Ag"] == pytest.approx(r["I_Ag_expected"], rel=0.15)
    assert r["dice"] > 0.95
    assert r["mae"] < 0.1
    assert abs(r["au_fraction_measured"] - r["au_fraction_true"]) < 0.05
    conc = r["conc"]
    assert np.allclose((conc["Au"] + conc["Ag"])[r["mask"]], 1.0)


@pytest.mark.slow
def test_multimodal_joint_beats_separate(script):
    r = script.multimodal_tutorial(32, methods=("mlem", "dtv"))
    for el in ("Au", "Ag"):
        assert r["errors"]["dtv"][el] < 0.5 * r["errors"]["mlem"][el]
        assert r["errors"]["dtv"][el] < 0.5 * r["errors"]["sirt+filter (tuned)"][el]
        assert r["errors"]["dtv"][el] < 0.2


def test_spectral_maps(script):
    r = script.spectral_tutorial(32, doses=(1e6, 1e8), solid_angles=(0.7, 4.5), real=False)
    # the fit recovers the line-family counts without bias, window integration misses the tails
    for line in script.LINES:
        assert r["recovered"]["fit"][line] == pytest.approx(1.0, abs=0.1)
        assert 0.7 < r["recovered"]["window"][line] < 0.9
    assert r["cliff_lorimer"]["Pt_La"] == pytest.approx(r["pt_fraction_true"], abs=0.02)
    rows = {(s["solid_angle"], s["dose"]): s for s in r["sweep"]}
    for line in script.LINES:
        # more counts (dose or solid angle) -> smaller error for the fit
        assert rows[(0.7, 1e8)][f"fit_{line}"] < rows[(0.7, 1e6)][f"fit_{line}"]
        assert rows[(4.5, 1e6)][f"fit_{line}"] < rows[(0.7, 1e6)][f"fit_{line}"]
        # at high dose the window maps keep their bias, the fit does not
        assert rows[(0.7, 1e8)][f"fit_{line}"] < 0.5 * rows[(0.7, 1e8)][f"window_{line}"]


@pytest.mark.slow
def test_figures_are_written(script, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    r = script.haadf_tutorial(24)
    path = script.draw_haadf(r, None, path=tmp_path / "haadf.png")
    assert path.stat().st_size > 10_000
