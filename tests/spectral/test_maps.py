import numpy as np
import pytest

from chemtomo.cli import main
from chemtomo.core.errors import ChemtomoError
from chemtomo.physics.xray import xray_cross_section
from chemtomo.simulate.spectrum import expected_spectra, spectrum_image, to_exspy
from chemtomo.physics.xray import energy_axis
from chemtomo.pipeline.maps import maps_to_directory
from chemtomo.spectral.decompose import denoise_pca, pca_rank
from chemtomo.spectral.maps import fit_maps, window_maps
from chemtomo.spectral.quant import cliff_lorimer, zeta_factor
from chemtomo.spectral.series import angles_from_names, maps_series, undetected

E = energy_axis(1024, 0.01)
YY, XX = np.mgrid[:24, :24] / 23.0
DOSE, PIX = 2e6, 5.0
SCALE = DOSE * (10 * PIX) ** 2 * 0.7 / (4 * np.pi)  # default EDXDetector


def _truth(areal, line):
    return areal[line.split("_")[0]] * SCALE * xray_cross_section(line)


def _corr(a, b):
    return np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]


def test_window_and_fit_maps_follow_true_line_counts():
    areal = {"Fe": 3 * XX + 0.1, "Pt": 3 * YY + 0.1}
    si = spectrum_image(areal, E, dose=DOSE, pixel_size=PIX, rng=0)
    win = window_maps(si, E, ["Fe", "Pt"])
    fit = fit_maps(si, E, ["Fe", "Pt"])
    assert list(fit) == ["Fe_Ka", "Pt_La", "Pt_Ma"]
    for line in fit:
        truth = _truth(areal, line)
        assert _corr(win[line], truth) > 0.99 and _corr(fit[line], truth) > 0.99
        assert abs(np.median(fit[line] / truth) - 1) < 0.03  # fit amplitudes are counts in the family
        assert (fit[line] >= 0).all()


def test_fit_separates_overlapping_lines_where_windows_cannot():
    areal = {"Au": 3 * XX + 0.1, "Pt": 3 * YY + 0.1}  # Au Ma 2.12 keV, Pt Ma 2.05 keV: 70 eV apart
    si = spectrum_image(areal, E, dose=DOSE, pixel_size=PIX, rng=1)
    lines = ["Au_Ma", "Pt_Ma"]
    win = window_maps(si, E, lines)
    fit = fit_maps(si, E, lines)
    err = {}
    for line in lines:
        truth = _truth(areal, line)
        err[line] = (np.sqrt(np.mean((win[line] - truth) ** 2)) / truth.mean(),
                     np.sqrt(np.mean((fit[line] - truth) ** 2)) / truth.mean())
        assert _corr(fit[line], truth) > 0.99
        assert err[line][1] < 0.1 < err[line][0], err
    for bg in ("polynomial", "kramers"):  # both backgrounds work
        m = fit_maps(si, E, lines, background=bg)
        assert all((v >= 0).all() for v in m.values())


def test_nnls_maps_non_negative_without_the_element():
    areal = {"Fe": 3 * XX + 0.1, "Pt": np.zeros_like(XX)}
    si = spectrum_image(areal, E, dose=DOSE / 20, pixel_size=PIX, rng=2)
    fit = fit_maps(si, E, ["Fe_Ka", "Pt_La"])
    assert (fit["Pt_La"] >= 0).all() and fit["Pt_La"].mean() < 0.02 * fit["Fe_Ka"].mean()


def test_cliff_lorimer_and_zeta_recover_composition():
    areal = {"Fe": np.array([1.0, 2.0]), "Pt": np.array([1.0, 0.5])}
    counts = {l: _truth(areal, l) for l in ("Fe_Ka", "Pt_La")}
    x = cliff_lorimer(counts)
    assert np.allclose(x["Fe_Ka"], [0.5, 0.8]) and np.allclose(x["Pt_La"], [0.5, 0.2])
    z = zeta_factor(counts, DOSE, PIX)
    assert np.allclose(z["areal_density"]["Fe_Ka"], areal["Fe"]) and np.allclose(z["atomic_fractions"]["Fe_Ka"], [0.5, 0.8])
    mass = (areal["Fe"] * 55.845 + areal["Pt"] * 195.08) / 6.02214076e23 * 1e20 * 1e-3  # kg/m^2
    assert np.allclose(z["mass_thickness"], mass, rtol=1e-3)
    with pytest.raises(ChemtomoError, match="no k-factor"):
        cliff_lorimer(counts, {"Fe_Ka": 1.0})


def _rank3_si():
    e = energy_axis(256, 0.04)
    maps = {"Fe": 2 * XX + 0.1, "Pt": 2 * YY + 0.1, "Cu": 2 * (1 - XX) * YY + 0.1}
    return e, expected_spectra(maps, e, dose=2e5, pixel_size=PIX)


@pytest.mark.slow
def test_pca_denoising_and_rank_rule():
    e, lam = _rank3_si()
    noisy = np.random.default_rng(3).poisson(lam)
    assert pca_rank(noisy) == 3
    assert pca_rank(noisy, criterion="cv", rng=4) == 3
    err0 = np.linalg.norm(noisy - lam)
    for method in ("pca", "nmf"):
        den = denoise_pca(noisy, method=method, rng=5)
        assert den.shape == noisy.shape and np.linalg.norm(den - lam) < 0.5 * err0


def test_bad_input():
    si = spectrum_image({"Fe": XX + 0.1}, E, dose=DOSE, pixel_size=PIX, rng=0)
    with pytest.raises(ChemtomoError, match="no usable energy axis"):
        window_maps(si, None, ["Fe"])
    with pytest.raises(ChemtomoError, match="channels"):
        fit_maps(si[..., :-1], E, ["Fe"])
    with pytest.raises(ChemtomoError, match="unknown element"):
        fit_maps(si, E, ["Qq"])
    with pytest.raises(ChemtomoError, match="Pt_La at 9.44 keV is outside"):
        window_maps(si[..., :800], E[:800], ["Pt_La"])


def _save(path, counts, energy):
    s = to_exspy(counts, energy, lines=["Fe_Ka"], pixel_size=PIX)
    s.save(str(path), overwrite=True)


@pytest.mark.slow
def test_maps_series_from_files(tmp_path, capsys):
    areal = {"Fe": 3 * XX + 0.1}
    for a in (-20, 0, 20):
        _save(tmp_path / f"tilt_{a}.hspy", spectrum_image(areal, E, dose=DOSE, pixel_size=PIX, rng=a + 50), E)
    files = sorted(tmp_path.glob("*.hspy"))
    assert sorted(angles_from_names(files)) == [-20.0, 0.0, 20.0]
    seen = []
    series = maps_series(files, ["Fe"], angles="names", method="fit", progress=lambda *a: seen.append(a))
    assert seen == [("maps", i, 3) for i in range(4)]  # one progress step per tilt
    assert series.names == ["Fe_Ka"] and series["Fe_Ka"].data.shape == (3, 24, 24)
    assert list(series["Fe_Ka"].angles) == [-20.0, 0.0, 20.0] and series.pixel_size == PIX
    summary = maps_to_directory(files, "Fe", tmp_path / "out", angles_from_names=True)
    assert summary["n_tilts"] == 3 and (tmp_path / "out" / "Fe_Ka.mrc").is_file()
    assert (tmp_path / "out" / "angles.tlt").is_file()
    assert summary["undetected"] == {}
    # an absent line: its whole-image significance is noise (|z| < 3) in every tilt, and it is flagged
    both = maps_series(files, ["Fe", "Ni"], angles="names", method="fit")
    z = both.metadata["significance"]
    assert min(z["Fe_Ka"]) > 50 and max(abs(v) for v in z["Ni_Ka"]) < 3
    assert undetected(both) == {"Ni_Ka": [-20.0, 0.0, 20.0]}
    assert main(["maps", *map(str, files), "--elements", "Fe,Ni", "--method", "fit", "--angles-from-names",
                 "--out", str(tmp_path / "both")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "Ni_Ka is below detection" in printed and "in 3 of 3 tilts" in printed and "Fe_Ka is below" not in printed
    with pytest.raises(ChemtomoError, match="no tilt angles"):
        maps_series(files, ["Fe"])
    _save(tmp_path / "bad_40.hspy", spectrum_image(areal, E, dose=DOSE, pixel_size=PIX, rng=9)[:20], E)
    with pytest.raises(ChemtomoError, match="bad_40.hspy has a spectrum image of shape"):
        maps_series(files + [tmp_path / "bad_40.hspy"], ["Fe"], angles="names")
    _save(tmp_path / "cal_40.hspy", spectrum_image(areal, E, dose=DOSE, pixel_size=PIX, rng=9), E + 0.05)
    with pytest.raises(ChemtomoError, match="cal_40.hspy has energy offset"):
        maps_series(files + [tmp_path / "cal_40.hspy"], ["Fe"], angles="names")
