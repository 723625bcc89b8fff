"""Issue 27, EELS defaults: edges on one another's tails (Ti L2,3 + Fe L2,3), CCD spectra with read noise."""

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, DataError
from chemtomo.physics.counts import estimate_read_noise, read_noise_variance, resolve_read_noise, shifted_counts
from chemtomo.spectral import eels_maps, fit_maps, learned_maps, regularised_maps
from chemtomo.spectral.eels import overlapping_edges
from chemtomo.training.spectral import simulate_eels

EDGES = ("Ti_L23", "Fe_L23")  # Fe L2,3 (708 eV) on the tail of Ti L2,3 (456 eV)
MIXED = ("alloy", "gradient", "core-shell", "multi-shell")


def _sim(counts, seed=0, n=32):
    return simulate_eels(np.random.default_rng([2027, seed]), n, edges=EDGES, counts=counts, dispersion=0.5,
                         compositions=MIXED)


def _ccd(sim, sigma, seed=1):
    """A CCD reading of the simulated counts (gain 1): Poisson + Gaussian read noise, as simulate.eels.detect."""
    return sim["si"] + np.random.default_rng(seed).normal(0.0, sigma, sim["si"].shape)


def _nrmse(m, t):
    return float(np.sqrt(np.mean((m - t) ** 2) / np.mean(t ** 2)))


def test_window_refuses_edges_on_a_tail_and_names_fit():
    sim = _sim(370.0)
    assert [(a, b) for a, b, _ in overlapping_edges(EDGES)] == [("Ti_L23", "Fe_L23")]
    assert overlapping_edges(["C_K", "Fe_L23"]) == []  # 284 eV edge's tail is under 10 % at 620 eV
    with pytest.raises(ChemtomoError, match="Fe_L23's pre-edge window sits on the tail of Ti_L23.*'fit'"):
        eels_maps(sim["si"], sim["energy"], EDGES)
    maps = eels_maps(sim["si"], sim["energy"], EDGES, check=False)  # still possible, explicitly
    assert set(maps) == set(EDGES)


@pytest.mark.parametrize("counts, tol", [(37.0, 0.1), (370.0, 0.03)])
def test_fit_totals_on_overlapping_edges(counts, tol):
    """The window method's totals were -0.04 x and -1.55 x the truth at 37 edge counts (docs/benchmarks.md)."""
    sim = _sim(counts)
    maps = fit_maps(sim["si"], sim["energy"], EDGES)
    for edge, truth in zip(EDGES, sim["truth"]):
        assert maps[edge].min() >= 0
        assert maps[edge].sum() / truth.sum() == pytest.approx(1.0, abs=tol)
        assert _nrmse(maps[edge], truth) < (0.5 if counts < 100 else 0.15)
    window = eels_maps(sim["si"], sim["energy"], EDGES, check=False)
    total = sum(window[x].sum() for x in EDGES) / sim["truth"].sum()
    assert (abs(total - 1) > 0.5) == (counts < 100)  # the failing case the default no longer takes


def test_negative_readings_refused_with_a_message_naming_read_noise():
    sim = _sim(370.0)
    ccd = _ccd(sim, 3.0)
    with pytest.raises(DataError, match="read.noise"):
        fit_maps(ccd, sim["energy"], EDGES)
    with pytest.raises(DataError, match="read.noise"):
        learned_maps(ccd, sim["energy"], EDGES)
    with pytest.raises(DataError, match="read.noise"):
        regularised_maps(ccd, sim["energy"], EDGES, weight=0.5, iterations=1)


def test_read_noise_estimate_and_model():
    sim = _sim(370.0)
    for sigma in (1.0, 3.0, 8.0):
        assert estimate_read_noise(_ccd(sim, sigma)) == pytest.approx(sigma, rel=0.05)
    assert estimate_read_noise(sim["si"]) < 0.3  # counting data: about 0
    assert resolve_read_noise("auto", _ccd(sim, 3.0)) == pytest.approx(3.0, rel=0.05)
    assert resolve_read_noise(None) == 0.0 and resolve_read_noise("2.5") == 2.5
    for bad in (-1.0, "loud", float("nan")):
        with pytest.raises(ChemtomoError, match="read noise"):
            resolve_read_noise(bad)
    y = np.random.default_rng(0).poisson(4.0, 200_000) + np.random.default_rng(1).normal(0, 3.0, 200_000)
    assert y.var() == pytest.approx(read_noise_variance(4.0, 3.0), rel=0.02)
    shifted = shifted_counts(y, 3.0)
    assert shifted.min() >= 0 and shifted.mean() == pytest.approx(13.0, rel=0.01)
    assert shifted.var() == pytest.approx(shifted.mean(), rel=0.03)  # shifted Poisson: variance = mean


@pytest.mark.parametrize("method", ["fit", "regularised", "learned"])
def test_ccd_spectra_with_known_read_noise(method):
    sim = _sim(370.0, seed=1, n=24)
    ccd = _ccd(sim, 3.0)
    e = sim["energy"]
    if method == "fit":
        maps = fit_maps(ccd, e, EDGES, read_noise=3.0)
    elif method == "regularised":
        maps, info = regularised_maps(ccd, e, EDGES, read_noise=3.0)
        assert info["read_noise"] == 3.0
    else:
        maps, _ = learned_maps(ccd, e, EDGES, read_noise="auto", augment=False)
    for edge, truth in zip(EDGES, sim["truth"]):
        assert maps[edge].sum() / truth.sum() == pytest.approx(1.0, abs=0.05)
        assert _nrmse(maps[edge], truth) < 0.2


def _save(path, counts, energy):
    from chemtomo.simulate.spectrum import to_exspy

    s = to_exspy(counts, energy, lines=["Fe_Ka"], pixel_size=1.0)
    s.axes_manager.signal_axes[0].units = "eV"
    s.save(str(path), overwrite=True)


def test_cli_maps_eels_default_is_fit_window_refused_ccd_read_noise(tmp_path, capsys):
    import json

    from chemtomo.cli import main
    from chemtomo.io import read_stack

    sim = _sim(1000.0, seed=3, n=16)
    sims = {-20: sim, 20: sim}  # one energy axis for both tilts
    for a, sim in sims.items():
        _save(tmp_path / f"p_{a}.hspy", sim["si"], sim["energy"])
        _save(tmp_path / f"c_{a}.hspy", _ccd(sim, 3.0, seed=a + 50), sim["energy"])
    counting = sorted(str(p) for p in tmp_path.glob("p_*.hspy"))
    ccd = sorted(str(p) for p in tmp_path.glob("c_*.hspy"))
    args = ["--elements", "Ti_L23,Fe_L23", "--angles-from-names"]
    assert main(["maps", *counting, *args, "--out", str(tmp_path / "fit")]) == 0
    assert json.loads((tmp_path / "fit" / "maps.json").read_text())["method"] == "fit"
    fe = read_stack(tmp_path / "fit" / "Fe_L23.mrc")[0]
    truth = np.stack([sims[-20]["truth"][1], sims[20]["truth"][1]])
    assert fe.sum() / truth.sum() == pytest.approx(1.0, abs=0.05)
    capsys.readouterr()
    assert main(["maps", *counting, *args, "--method", "window", "--out", str(tmp_path / "win")]) == 2
    assert "use method 'fit'" in " ".join(capsys.readouterr().err.split())
    assert main(["maps", *ccd, *args, "--out", str(tmp_path / "bad")]) == 2
    assert "--read-noise" in " ".join(capsys.readouterr().err.split())
    assert main(["maps", *ccd, *args, "--read-noise", "auto", "--out", str(tmp_path / "ccd")]) == 0
    meta = json.loads((tmp_path / "ccd" / "maps.json").read_text())
    assert meta["read_noise"] == pytest.approx([3.0, 3.0], rel=0.05)
    fe = read_stack(tmp_path / "ccd" / "Fe_L23.mrc")[0]
    assert fe.sum() / truth.sum() == pytest.approx(1.0, abs=0.2)  # 16 x 16 px: clipping at 0 in the empty pixels
    assert main(["maps", *ccd, *args, "--method", "window", "--read-noise", "3", "--out", str(tmp_path / "x")]) == 2


def test_recipe_spectra_read_noise():
    from chemtomo.pipeline.recipe import Spectra

    assert Spectra(files=["a.hspy"], elements=["Ti_L23"], read_noise="auto").read_noise == "auto"
    assert Spectra(files=["a.hspy"], elements=["Ti_L23"], read_noise=2.5).method == "fit"
    for bad in ({"read_noise": -1.0}, {"read_noise": 3.0, "method": "window"}):
        with pytest.raises(Exception, match="read_noise|greater than or equal"):
            Spectra(files=["a.hspy"], elements=["Ti_L23"], **bad)


def test_cli_simulate_compound(tmp_path, capsys):
    from chemtomo.cli import main
    from chemtomo.io import read_stack

    out = tmp_path / "sim"
    common = ["--phantom", "sphere", "--signals", "HAADF,EELS", "--dose", "1e6", "--size", "16", "--tilts",
              "-30:30:30", "--voxel-size", "0.5"]
    assert main(["simulate", "--elements", "TiO2", *common, "--out", str(out)]) == 0
    o, ti = (read_stack(out / f"{n}.mrc")[0].sum() for n in ("O_K", "Ti_L23"))
    assert o > 0.5 * ti and (out / "truth" / "TiO2.mrc").is_file()
    capsys.readouterr()
    assert main(["simulate", "--elements", "Ti,O", *common, "--out", str(tmp_path / "gas")]) == 2
    assert "O is a gas" in capsys.readouterr().err
