"""regularised_maps: joint Poisson fit with a spatial prior against the simulator's ground truth."""

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, DataError, ShapeError
from chemtomo.physics.xray import energy_axis, xray_cross_section
from chemtomo.simulate.spectrum import expected_spectra, to_exspy
from chemtomo.spectral import regularised_maps
from chemtomo.spectral.maps import fit_maps, window_maps
from chemtomo.testing import nrmse


E = energy_axis(1024, 0.01)
PIX = 5.0
N = 32
YY, XX = np.mgrid[:N, :N] / (N - 1.0)
DISC = ((YY - 0.4) ** 2 + (XX - 0.4) ** 2 < 0.09).astype(float)
SQUARE = ((abs(YY - 0.65) < 0.2) & (abs(XX - 0.65) < 0.2)).astype(float)


def _simulate(areal, lines, rho, seed):
    """Poisson SI scaled so that each line's mean expected count on its footprint is about `rho`."""
    lam = expected_spectra(areal, E, dose=1.0, pixel_size=PIX)
    scale = (10 * PIX) ** 2 * 0.7 / (4 * np.pi)  # default EDXDetector, dose 1
    truth = {l: areal[l.split("_")[0]] * scale * xray_cross_section(l) for l in lines}
    level = np.mean([t[t > 0.01 * t.max()].mean() for t in truth.values()])
    f = rho / level
    return np.random.default_rng(seed).poisson(lam * f), {l: t * f for l, t in truth.items()}


def _errors(maps, truth):
    return {l: nrmse(maps[l], truth[l]) for l in truth}


@pytest.mark.slow
def test_low_dose_beats_fit_and_windows():
    lines = ["Fe_Ka", "Pt_Ma"]
    si, truth = _simulate({"Fe": 2 * DISC + 0.05, "Pt": 2 * SQUARE + 0.05}, lines, 0.5, seed=1)
    reg, info = regularised_maps(si, E, lines)
    fit, win = _errors(fit_maps(si, E, lines), truth), _errors(window_maps(si, E, lines), truth)
    err = _errors(reg, truth)
    for line in lines:
        assert err[line] < 0.6 * min(fit[line], win[line]), (err, fit, win)
        assert (reg[line] >= 0).all() and reg[line].shape == (N, N)
    assert info["lines"] == lines and info["prior"] == "tv" and info["weight"] > 0


def test_high_dose_agrees_with_fit():
    lines = ["Fe_Ka", "Pt_Ma"]
    areal = {"Fe": 2 * DISC + 0.05, "Pt": np.full((N, N), 1.0)}  # Pt flat: no structure to invent
    si, truth = _simulate(areal, lines, 100.0, seed=2)
    reg, _ = regularised_maps(si, E, lines, weight=0.5)
    fit = fit_maps(si, E, lines)
    err, err_fit = _errors(reg, truth), _errors(fit, truth)
    for line in lines:
        assert err[line] <= err_fit[line] + 0.01, (err, err_fit)
        assert nrmse(reg[line], fit[line]) < 2 * err_fit[line] + 0.01
    pt = reg["Pt_Ma"]
    assert pt.std() / pt.mean() < 0.5 * fit["Pt_Ma"].std() / fit["Pt_Ma"].mean()  # flatter than the fit, no edges
    assert abs(pt.mean() / truth["Pt_Ma"].mean() - 1) < 0.03


def test_separates_overlapping_lines():
    lines = ["Au_Ma", "Pt_Ma"]  # 70 eV apart
    si, truth = _simulate({"Au": 2 * DISC + 0.05, "Pt": 2 * SQUARE + 0.05}, lines, 3.0, seed=3)
    reg, _ = regularised_maps(si, E, lines, weight=0.7)
    err, win = _errors(reg, truth), _errors(window_maps(si, E, lines), truth)
    for line, other in zip(lines, lines[::-1]):
        assert err[line] < 0.25 < win[line], (err, win)
        c_own = np.corrcoef(reg[line].ravel(), truth[line].ravel())[0, 1]
        c_other = np.corrcoef(reg[line].ravel(), truth[other].ravel())[0, 1]
        assert c_own > 0.95 and c_other < 0.3


@pytest.mark.slow
def test_weight_choice_is_deterministic_and_inside_the_grid():
    lines = ["Fe_Ka"]
    si, _ = _simulate({"Fe": 2 * DISC + 0.05}, lines, 2.0, seed=4)
    si = si[:, :, :800]
    kwargs = dict(iterations=4, grid=(0.25, 0.5, 1.0, 2.0))
    _, a = regularised_maps(si, E[:800], lines, rng=5, **kwargs)
    _, b = regularised_maps(si, E[:800], lines, rng=5, **kwargs)
    assert a["weight"] == b["weight"] and a["history"] == b["history"]
    tried = [w for w, _ in a["history"]]
    assert min(tried) < a["weight"] < max(tried)
    scores = dict(a["history"])
    best = min(scores, key=scores.get)
    assert best not in (min(tried), max(tried))


def test_bad_input():
    si = np.ones((8, 8, E.size), dtype=np.int64)
    with pytest.raises(DataError, match="NaN"):
        bad = si.astype(float)
        bad[0, 0, 10] = np.nan
        regularised_maps(bad, E, ["Fe"], weight=1.0)
    with pytest.raises(DataError, match="negative"):
        bad = si.copy()
        bad[1, 1, 5] = -1
        regularised_maps(bad, E, ["Fe"], weight=1.0)
    with pytest.raises(ShapeError, match="channels"):
        regularised_maps(si[..., :-1], E, ["Fe"], weight=1.0)
    with pytest.raises(ShapeError, match=r"\(ny, nx, n_channels\)"):
        regularised_maps(si[0], E, ["Fe"], weight=1.0)
    with pytest.raises(ChemtomoError, match="unknown element"):
        regularised_maps(si, E, ["Qq"], weight=1.0)
    with pytest.raises(ChemtomoError, match="outside"):
        regularised_maps(si, E, ["U_Ka"], weight=1.0)
    with pytest.raises(ChemtomoError, match="unknown prior"):
        regularised_maps(si, E, ["Fe"], prior="l1")
    with pytest.raises(ChemtomoError, match="weight must be"):
        regularised_maps(si, E, ["Fe"], weight=-1.0)


@pytest.mark.slow
def test_cli_maps_regularised(tmp_path):
    from chemtomo.cli import main

    areal = {"Fe": 2 * DISC[:16, :16] + 0.05}
    lam = expected_spectra(areal, E, dose=2e5, pixel_size=PIX)
    for i, a in enumerate((-10, 10)):
        s = to_exspy(np.random.default_rng(i).poisson(lam), E, lines=["Fe_Ka"], pixel_size=PIX)
        s.save(str(tmp_path / f"tilt_{a}.hspy"), overwrite=True)
    files = sorted(str(p) for p in tmp_path.glob("*.hspy"))
    out = tmp_path / "maps"
    assert main(["maps", *files, "--elements", "Fe", "--method", "regularised", "--angles-from-names",
                 "--out", str(out)]) == 0
    assert (out / "Fe_Ka.mrc").is_file() and (out / "angles.tlt").is_file()
    assert main(["maps", *files, "--elements", "Fe", "--method", "nope", "--angles-from-names",
                 "--out", str(out)]) == 2


@pytest.mark.slow
def test_eels_edges_with_a_wrong_edge_delay():
    """EELS: the Poisson fit with the edge delays fitted to the summed spectrum beats the per-pixel fit."""
    from chemtomo.simulate.eels import eels_expected_spectra
    from chemtomo.physics.eels import edge_cross_section, edge_onset
    from chemtomo.spectral.estimates import line_estimates

    e = np.arange(380.0, 700.0, 0.5)
    areal = {"Ti": 0.02 * DISC + 0.001, "O": 0.03 * SQUARE + 0.001}
    dose = 2e4  # a few edge counts per pixel
    lam = eels_expected_spectra(areal, e, [("Ti_L23", 14.0), ("O_K", 0.0)], dose=dose, pixel_size=1.0)
    si = np.random.default_rng(3).poisson(lam)
    truth = {}
    for edge, delay in (("Ti_L23", 14.0), ("O_K", 0.0)):
        o = edge_onset(edge)
        xs = edge_cross_section(edge, e, delay=delay)
        truth[edge] = areal[edge.split("_")[0]] * dose * 100 * 0.5 * xs[(e >= o) & (e < o + 50)].sum()
    maps, info = regularised_maps(si, e, "Ti_L23,O_K")
    est = line_estimates(si, e, ["Ti_L23", "O_K"])
    for k, edge in enumerate(["Ti_L23", "O_K"]):
        per_pixel = nrmse(np.clip(est["estimate"][k], 0, None), truth[edge])
        assert nrmse(maps[edge], truth[edge]) < 0.5 * per_pixel, (edge, nrmse(maps[edge], truth[edge]), per_pixel)
    assert nrmse(maps["Ti_L23"], truth["Ti_L23"]) < 0.3 and info["lines"] == ["Ti_L23", "O_K"]
