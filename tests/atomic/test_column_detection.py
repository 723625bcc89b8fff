"""Column detection for atom counting on the inputs that broke the old threshold (issue 27).

A field filled with columns (no vacuum) and a lattice with a vacuum margin,
1-10 Au atoms per column, Poisson counts: every column must be found and
counted exactly; and the species list of ``chemtomo atoms``.
"""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from chemtomo.atomic import (check_species, column_cross_sections, count_atoms, fit_columns, noise_variance,
                             simulate_columns)
from chemtomo.core.errors import ChemtomoError

DOSE = 5e4
STEP = 2.04 / 0.2      # column spacing in pixels


def full_field(n=16, ring=2, seed=0):
    """A field of view filled with columns: an (n+2 ring)^2 lattice cropped half a spacing outside its inner n x n."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 11, (n + 2 * ring, n + 2 * ring))
    sim = simulate_columns(counts, dose=DOSE, rng=seed)
    inner = np.zeros(counts.shape, bool)
    inner[ring:ring + n, ring:ring + n] = True
    keep = inner.ravel()                       # every site holds a column, so sites and columns align
    pos = sim["positions"][keep]
    lo = np.floor(pos.min(0) - STEP / 2).astype(int)
    hi = np.ceil(pos.max(0) + STEP / 2).astype(int) + 1
    return sim["image"][lo[0]:hi[0], lo[1]:hi[1]], pos - lo, sim["counts"][keep]


def found_and_exact(image, positions, truth, **options):
    peaks = fit_columns(image, pixel_size=0.2, **options)
    d, j = cKDTree(positions).query(peaks.positions)
    assert d.max() < 1.0, "no spurious columns"
    n, _ = count_atoms(column_cross_sections(peaks, dose=DOSE))
    return len(np.unique(j)), int(np.sum(n == truth[j]))


def test_full_lattice_field_finds_and_counts_every_column():
    image, pos, truth = full_field()
    assert np.mean(image == 0) < 0.05                 # no vacuum: hardly a pixel without counts
    found, exact = found_and_exact(image, pos, truth)
    assert found == 256 and exact >= 254


def test_vacuum_margin_keeps_the_one_atom_columns():
    rng = np.random.default_rng(1)
    sim = simulate_columns(rng.integers(1, 11, (16, 16)), dose=DOSE, rng=1)
    found, exact = found_and_exact(sim["image"], sim["positions"], sim["counts"])
    assert found == 256 and exact >= 254


def test_threshold_options_and_pure_noise():
    image, pos, truth = full_field(n=6, seed=2)
    # an absolute threshold above every column finds nothing; one below the thinnest finds them all
    with pytest.raises(ChemtomoError, match="no column above"):
        fit_columns(image, pixel_size=0.2, threshold=1e6)
    assert found_and_exact(image, pos, truth, threshold=5.0)[0] == 36
    # the same field rescaled (not counts) learns its noise from the fit residual
    assert found_and_exact(image * 0.37, pos, truth, noise="fit")[0] == 36
    noise = np.random.default_rng(3).poisson(20.0, (80, 80)).astype(float)
    with pytest.raises(ChemtomoError, match="no column above"):
        fit_columns(noise, pixel_size=0.2)


def test_noise_variance_models():
    rng = np.random.default_rng(4)
    lam = np.linspace(0, 400, 40000).reshape(200, 200)
    counts = rng.poisson(lam).astype(float)
    assert np.allclose(noise_variance(counts, lam), np.maximum(lam, 1))              # auto: counts -> Poisson
    scaled = 3.0 * counts + rng.normal(0, 5.0, lam.shape)                            # gain 3, read noise 5
    var = noise_variance(scaled, 3.0 * lam)                                          # auto: fit a + b * level
    assert var[-1, -1] == pytest.approx(25 + 9 * 400, rel=0.1) and var[100, 0] == pytest.approx(25 + 9 * 200, rel=0.1)
    assert np.allclose(noise_variance(scaled, 3.0 * lam, noise=2.0), 4.0)
    with pytest.raises(ChemtomoError, match="noise must be"):
        noise_variance(counts, lam, noise="gaussian")


def test_species_order_and_names_are_checked():
    assert check_species("Fe, Pt") == ["Fe", "Pt"] and check_species(["Ag", "Au"]) == ["Ag", "Au"]
    with pytest.raises(ChemtomoError, match="give Fe,Pt"):
        check_species("Pt,Fe")
    with pytest.raises(ChemtomoError, match="twice"):
        check_species("Fe,Fe")
    with pytest.raises(ChemtomoError, match="unknown element 'Xx'"):
        check_species("Fe,Xx")
    with pytest.raises(ChemtomoError, match="at least one"):
        check_species(" , ")


def test_cli_count_atoms_threshold_and_species_errors(tmp_path, capsys):
    import tifffile

    from chemtomo.cli import main

    image, pos, truth = full_field(n=6, seed=5)
    tifffile.imwrite(tmp_path / "field.tif", image.astype(np.float32))
    assert main(["count-atoms", str(tmp_path / "field.tif"), "--pixel-size", "0.2", "--dose", str(DOSE),
                 "--out", str(tmp_path / "cols.csv")]) == 0
    table = np.loadtxt(tmp_path / "cols.csv", delimiter=",", skiprows=1)
    d, j = cKDTree(pos).query(table[:, :2])
    assert len(table) == 36 and d.max() < 1.0 and np.mean(table[:, 3] == truth[j]) >= 35 / 36
    assert main(["count-atoms", str(tmp_path / "field.tif"), "--pixel-size", "0.2", "--threshold", "1e6",
                 "--out", str(tmp_path / "none.csv")]) == 2
    assert "no column above the threshold of 1e+06" in capsys.readouterr().err
    assert main(["count-atoms", str(tmp_path / "field.tif"), "--pixel-size", "0.2", "--noise", "loud",
                 "--out", str(tmp_path / "none.csv")]) == 2
    np.save(tmp_path / "v.npy", np.zeros((4, 4, 4)))
    assert main(["atoms", str(tmp_path / "v.npy"), "--voxel-size", "0.5", "--species", "Pt,Fe",
                 "--out", str(tmp_path / "a.csv")]) == 2
    assert "give Fe,Pt" in capsys.readouterr().err
