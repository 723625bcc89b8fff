"""Atomic-resolution analysis against ground truth: models, projection, fits, tracing, species, counting, files."""

import numpy as np
import pytest

from chemtomo.atomic import (
    atoms_from_volume,
    classify_species,
    column_cross_sections,
    core_shell_particle,
    count_atoms,
    fcc_alloy,
    fit_columns,
    fit_gaussians,
    fit_mixture,
    l10_particle,
    lensing_cross_section,
    place,
    project_atoms,
    pure_column_scs,
    radius_for,
    render_atoms,
    score_atoms,
    select_mixture,
    simulate_columns,
    to_angstrom,
    trace_atoms,
    unscramble_columns,
)
from chemtomo.atomic.fit import render_peaks, suppress, Peaks
from chemtomo.atomic.models import fcc_sites
from chemtomo.core.atoms import Atoms
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.physics.scattering import SCATTERING_CONSTANT

V = 0.5   # voxel size, Angstrom


def test_fcc_sphere_holds_four_atoms_per_cell():
    a, r = 4.0, 20.0
    n = len(fcc_sites(r, a))
    assert abs(n / (16 * np.pi * r**3 / (3 * a**3)) - 1) < 0.05
    assert abs(radius_for(n, a) / r - 1) < 0.03


def test_l10_planes_alternate_and_order_parameter_mixes():
    atoms = l10_particle(10.0, rotation=None, rng=0)
    on_integer_planes = np.isclose(np.mod(atoms.positions[:, 2] / 3.85, 1.0), 0.0, atol=1e-6) | \
        np.isclose(np.mod(atoms.positions[:, 2] / 3.85, 1.0), 1.0, atol=1e-6)
    assert (atoms.species[on_integer_planes] == "Fe").all() and (atoms.species[~on_integer_planes] == "Pt").all()
    mixed = l10_particle(10.0, order=0.0, rotation=None, rng=0)
    frac = np.mean(mixed.species[on_integer_planes] == "Fe")
    assert 0.35 < frac < 0.65


def test_core_shell_and_random_alloy_compositions():
    cs = core_shell_particle(15.0, 8.0, rotation=None)
    r = np.linalg.norm(cs.positions, axis=1)
    assert (cs.species[r <= 8.0] == "Au").all() and (cs.species[r > 8.0] == "Ag").all()
    alloy = fcc_alloy(15.0, {"Au": 0.3, "Ag": 0.7}, rng=1)
    assert abs(alloy.counts()["Au"] / len(alloy) - 0.3) < 0.05
    rot = fcc_alloy(15.0, {"Au": 1.0}, rng=2)     # a rotation keeps every distance
    assert np.allclose(np.sort(np.linalg.norm(rot.positions, axis=1)),
                       np.sort(np.linalg.norm(fcc_sites(15.0, 4.078), axis=1)))


def test_place_checks_the_volume_is_large_enough():
    atoms = l10_particle(10.0, rng=0)
    placed = place(atoms, (64, 64, 64), V)
    assert np.allclose(placed.positions.mean(axis=0), 31.5 * V)
    with pytest.raises(ChemtomoError, match="does not fit"):
        place(atoms, (32, 32, 32), V)


def test_projection_is_exact_and_matches_the_voxel_projector():
    atoms = place(l10_particle(8.0, rng=3), (56, 56, 56), V)
    geom = TiltGeometry(angles=[-60, -20, 0, 35, 70], volume_shape=(56, 56, 56))
    p = project_atoms(atoms, geom, V, sigma=0.8, dose=2.0)
    total = 2.0 * SCATTERING_CONSTANT * np.sum([{"Fe": 26, "Pt": 78}[s] ** 1.7 for s in atoms.species])
    assert np.allclose(p.sum(axis=(1, 2)), total, rtol=1e-6)           # every electron lands on the detector
    vol = render_atoms(atoms, (56, 56, 56), V, sigma=0.8, dose=2.0)
    assert np.isclose(vol.sum(), total, rtol=1e-4)                     # cut at 4 sigma
    q = Projector(geom)(vol.astype(np.float32))
    assert np.linalg.norm(q - p) / np.linalg.norm(p) < 0.02             # same convention as the projector


def test_batched_gaussian_fit_recovers_parameters():
    rng = np.random.default_rng(0)
    centres = np.stack(np.meshgrid(*(np.arange(6, 40, 8),) * 3, indexing="ij"), -1).reshape(-1, 3).astype(float)
    centres += rng.uniform(-0.5, 0.5, centres.shape)
    sig = rng.uniform(0.9, 1.4, centres.shape)
    h = rng.uniform(5, 20, len(centres))
    truth = Peaks(centres, h, sig, np.zeros(len(h)), np.zeros(len(h)))
    vol = render_peaks((46, 46, 46), truth, radius=6) + 0.3
    fit = fit_gaussians(vol + rng.normal(0, 0.02, vol.shape), np.rint(centres), radius=3, sigma=1.0)
    assert np.abs(fit.positions - centres).max() < 0.03
    assert np.abs(fit.sigma / sig - 1).max() < 0.03
    assert np.abs(fit.height / h - 1).max() < 0.03
    assert np.allclose(fit.background, 0.3, atol=0.05)


def test_suppress_is_the_greedy_rule():
    rng = np.random.default_rng(1)
    pts, score = rng.uniform(0, 10, (300, 3)), rng.random(300)
    kept = set(suppress(pts, score, 1.0).tolist())
    ref = []
    for i in np.argsort(-score):
        if all(np.linalg.norm(pts[i] - pts[j]) >= 1.0 for j in ref):
            ref.append(i)
    assert kept == set(ref)


def test_mixture_recovers_components_and_icl_counts_them():
    rng = np.random.default_rng(2)
    x = np.r_[rng.normal(1, 0.1, 300), rng.normal(2, 0.1, 300), rng.normal(3, 0.1, 300)]
    m = fit_mixture(x, 3)
    assert np.allclose(m.means, [1, 2, 3], atol=0.03) and np.allclose(m.weights, 1 / 3, atol=0.03)
    assert len(select_mixture(x, range(1, 7)).means) == 3
    assert len(select_mixture(x, range(1, 7), criterion="bic").means) == 3
    with pytest.raises(ChemtomoError, match="criterion"):
        select_mixture(x, [2], criterion="aic")


@pytest.fixture(scope="module")
def fept():
    """An L1_0 FePt particle (about 700 atoms), its truth volume and an MLEM reconstruction from 60 tilts."""
    from chemtomo.atomic import atomic_tilt_series
    from chemtomo.recon import mlem

    shape = (72, 72, 72)
    atoms = place(l10_particle(radius_for(700, 3.85), rng=4), shape, V)
    geom = TiltGeometry(angles=np.linspace(-70, 70, 60), volume_shape=shape)
    series = atomic_tilt_series(atoms, geom, V, dose=7e4, rng=5)
    recon = mlem(Projector(geom), series.astype(np.float32), 400)
    return atoms, render_atoms(atoms, shape, V, dose=7e4), recon, series, geom


@pytest.mark.slow
def test_tracing_the_true_volume_finds_every_atom_precisely(fept):
    atoms, truth_vol, *_ = fept
    peaks = trace_atoms(truth_vol, V, threshold=0.05 * truth_vol.max())
    found = Atoms(to_angstrom(peaks.positions, V), np.full(len(peaks), "X"))
    s = score_atoms(found, atoms, max_distance=1.0, voxel_size=V)
    assert s["recall"] == 1.0 and s["precision"] == 1.0
    assert s["rmsd_voxels"] < 0.05


@pytest.mark.slow
def test_trace_and_classify_a_reconstruction(fept):
    atoms, _, recon, *_ = fept
    found, cols = atoms_from_volume(recon, V, ["Fe", "Pt"])
    s = score_atoms(found, atoms, max_distance=1.0, voxel_size=V)
    assert s["recall"] > 0.98 and s["precision"] > 0.98
    assert s["rmsd_voxels"] < 0.3
    assert s["species_accuracy"] > 0.97
    assert set(cols) == {"intensity", "height", "sigma", "rfactor", "info"} and len(cols["height"]) == len(found)


@pytest.mark.slow
def test_refinement_against_the_series_lowers_the_position_error(fept):
    atoms, _, recon, series, geom = fept
    plain, _ = atoms_from_volume(recon, V, ["Fe", "Pt"])
    refined, cols = atoms_from_volume(recon, V, ["Fe", "Pt"], series=series, angles=geom.angles)
    before = score_atoms(plain, atoms, max_distance=1.0, voxel_size=V)
    after = score_atoms(refined, atoms, max_distance=1.0, voxel_size=V)
    assert after["rmsd_voxels"] < 0.8 * before["rmsd_voxels"]
    assert after["recall"] >= before["recall"] - 0.002 and after["species_accuracy"] > 0.97
    mis = cols["info"]["refinement"]["misfit"]
    assert mis[1] < mis[0]


def test_refine_atoms_recovers_perturbed_positions():
    from chemtomo.atomic import atomic_tilt_series
    from chemtomo.physics.scattering import atom_cross_section as cross_section
    from chemtomo.atomic.refine import refine_atoms

    shape = (48, 48, 48)
    atoms = place(l10_particle(7.0, rng=8), shape, V)
    geom = TiltGeometry(angles=np.linspace(-70, 70, 25), volume_shape=shape)
    dose = 1e5
    series = atomic_tilt_series(atoms, geom, V, dose=dose, rng=9)
    rng = np.random.default_rng(10)
    start = atoms.positions / V + rng.normal(0, 0.2, atoms.positions.shape)
    amp = dose * cross_section(atoms.species) * rng.uniform(0.7, 1.3, len(atoms))
    res = refine_atoms(start, amp, series, geom, sigma=0.45 / V)
    err = np.sqrt(np.mean(np.sum((res["positions"] - atoms.positions / V) ** 2, axis=1)))
    assert err < 0.1              # from 0.35 voxel; refining from the truth itself ends 0.07 away (Poisson noise)
    assert np.allclose(res["amplitudes"], dose * cross_section(atoms.species), rtol=0.2)
    with pytest.raises(ChemtomoError, match="shape"):
        refine_atoms(start, amp, series[:3], geom, sigma=1.0)


@pytest.mark.slow
def test_classification_marks_spurious_peaks_as_non_atoms(fept):
    atoms, _, recon, *_ = fept
    peaks = trace_atoms(recon, V, threshold=0.01 * recon.max())
    rng = np.random.default_rng(0)
    empty = np.argwhere(recon < 1e-3 * recon.max())
    fake = empty[rng.choice(len(empty), 40, replace=False)].astype(float)
    both = Peaks.concat([peaks, Peaks(fake, np.full(40, 1e-3), np.ones((40, 3)), np.zeros(40), np.zeros(40))])
    labels, info = classify_species(recon, both, 2)
    assert (labels[-40:] == -1).all()
    assert info["non_atoms"] >= 40


def test_tracing_rejects_bad_input():
    with pytest.raises(ChemtomoError, match="3D"):
        trace_atoms(np.zeros((4, 4)), V)
    vol = np.zeros((8, 8, 8))
    vol[2, 2, 2] = np.nan
    with pytest.raises(ChemtomoError, match="NaN"):
        trace_atoms(vol, V)
    with pytest.raises(ChemtomoError, match="positive"):
        trace_atoms(np.zeros((8, 8, 8)), -1.0)
    with pytest.raises(ChemtomoError, match="peaks above"):
        atoms_from_volume(np.zeros((16, 16, 16)), V, ["Fe", "Pt"], threshold=1.0)


def _column_counts(size=12, radius=5.8):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    return np.clip(np.rint(2 * np.sqrt(np.maximum(0, radius**2 - yy**2 - xx**2)) / 1.5), 0, None).astype(int)


@pytest.mark.slow
def test_column_fit_gives_cross_sections_and_counts():
    counts = _column_counts()
    sim = simulate_columns(counts, dose=5e4, rng=3)
    peaks = fit_columns(sim["image"], pixel_size=sim["pixel_size"])
    assert len(peaks) == len(sim["counts"])
    from scipy.spatial import cKDTree

    d, j = cKDTree(sim["positions"]).query(peaks.positions)
    assert d.max() < 0.5
    scs = column_cross_sections(peaks, dose=5e4)
    assert np.median(np.abs(scs / sim["scs"][j] - 1)) < 0.03
    n, mix = count_atoms(scs)
    assert np.mean(n == sim["counts"][j]) > 0.95
    n_lib, _ = count_atoms(scs, library=pure_column_scs("Au", 30))
    assert np.mean(n_lib == sim["counts"][j]) > 0.95


def test_lensing_model_and_unscrambling():
    pure = {"Au": pure_column_scs("Au", 20), "Ag": pure_column_scs("Ag", 20)}
    assert np.isclose(lensing_cross_section(["Au"] * 7, pure), pure["Au"][7])
    # a heavier atom adds more, and the same atoms in another order give another SCS
    assert lensing_cross_section(["Ag", "Au", "Ag"], pure) > lensing_cross_section(["Ag"] * 3, pure)
    assert not np.isclose(lensing_cross_section(["Au", "Ag", "Ag"], pure), lensing_cross_section(["Ag", "Ag", "Au"], pure))
    rng = np.random.default_rng(4)
    lengths = rng.integers(4, 16, 200)
    n_core = np.array([rng.integers(0, n + 1) for n in lengths])
    from chemtomo.atomic.counting import _core_shell_sequence

    scs = np.array([lensing_cross_section(_core_shell_sequence(L, m, "Au", "Ag"), pure) for L, m in zip(lengths, n_core)])
    assert (unscramble_columns(scs, lengths, pure) == n_core).all()
    noisy = scs * (1 + 0.005 * rng.standard_normal(len(scs)))
    assert np.mean(unscramble_columns(noisy, lengths, pure) == n_core) > 0.9


def test_atom_tables_round_trip_and_ase_reads_xyz(tmp_path):
    from chemtomo.io.atoms import read_atoms_csv, write_atoms_csv, write_atoms_xyz

    atoms = Atoms([[0.0, 1.0, 2.0], [3.5, 4.25, 5.0]], ["Fe", "Pt"])
    write_atoms_csv(tmp_path / "a.csv", atoms, intensity=[1.5, 7.0], sigma=np.ones((2, 3)))
    back, extra = read_atoms_csv(tmp_path / "a.csv")
    assert np.allclose(back.positions, atoms.positions) and list(back.species) == ["Fe", "Pt"]
    assert np.allclose(extra["intensity"], [1.5, 7.0]) and "sigma_z" in extra
    ase_io = pytest.importorskip("ase.io")
    write_atoms_xyz(tmp_path / "a.xyz", atoms, intensity=[1.5, 7.0])
    read = ase_io.read(tmp_path / "a.xyz")
    assert read.get_chemical_symbols() == ["Fe", "Pt"]
    assert np.allclose(read.positions, atoms.positions) and np.allclose(read.arrays["intensity"], [1.5, 7.0])


@pytest.mark.slow
def test_cli_atoms_and_count_atoms(tmp_path, fept):
    import tifffile

    from chemtomo.cli import main
    from chemtomo.io import write_volume
    from chemtomo.io.atoms import read_atoms_csv

    atoms, _, recon, series, geom = fept
    write_volume(tmp_path / "rec.mrc", recon, voxel_size=V / 10)
    assert main(["atoms", str(tmp_path / "rec.mrc"), "--voxel-size", str(V), "--species", "Fe,Pt",
                 "--out", str(tmp_path / "atoms.csv")]) == 0
    found, _ = read_atoms_csv(tmp_path / "atoms.csv")
    s = score_atoms(found, atoms, max_distance=1.0)
    assert s["recall"] > 0.98 and s["species_accuracy"] > 0.97
    assert main(["atoms", str(tmp_path / "rec.mrc"), "--voxel-size", "0.5", "--species", "Fe,Pt",
                 "--out", str(tmp_path / "atoms.pdb")]) != 0
    from chemtomo.io import write_stack

    write_stack(tmp_path / "series.mrc", series.astype(np.float32), geom.angles)
    assert main(["atoms", str(tmp_path / "rec.mrc"), "--voxel-size", "0.5", "--species", "Fe,Pt", "--series",
                 str(tmp_path / "series.mrc"), "--out", str(tmp_path / "refined.xyz")]) == 0
    ase_io = pytest.importorskip("ase.io")
    refined = ase_io.read(tmp_path / "refined.xyz")
    assert "amplitude" in refined.arrays
    s2 = score_atoms(Atoms(refined.positions, refined.get_chemical_symbols()), atoms, max_distance=1.0)
    assert s2["rmsd_A"] < s["rmsd_A"]
    sim = simulate_columns(_column_counts(), dose=5e4, rng=6)
    tifffile.imwrite(tmp_path / "cols.tif", sim["image"].astype(np.float32))
    assert main(["count-atoms", str(tmp_path / "cols.tif"), "--pixel-size", "0.2", "--dose", "5e4",
                 "--out", str(tmp_path / "cols.csv")]) == 0
    table = np.loadtxt(tmp_path / "cols.csv", delimiter=",", skiprows=1)
    assert len(table) == len(sim["counts"])
    from scipy.spatial import cKDTree

    _, j = cKDTree(sim["positions"]).query(table[:, :2])
    assert np.mean(table[:, 3].astype(int) == sim["counts"][j]) > 0.95
