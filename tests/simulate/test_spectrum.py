import warnings

import numpy as np
import pytest
import xraylib

from chemtomo.physics.xray import EDXDetector, line_energy, xray_cross_section
from chemtomo.simulate.spectrum import expected_spectra, spectrum_image, to_exspy
from chemtomo.physics.xray import energy_axis, fwhm


def _peak_fwhm(spec, e, centre, half_window=0.4):
    """Background-subtracted FWHM (eV) and position (keV) of the peak nearest `centre`."""
    sel = np.abs(e - centre) < half_window
    x, y = e[sel], spec[sel]
    edge = np.r_[y[:20], y[-20:]]
    xe = np.r_[x[:20], x[-20:]]
    y = y - np.polyval(np.polyfit(xe, edge, 1), x)
    k = np.argmax(y)
    above = x[y >= y[k] / 2]
    return (above[-1] - above[0]) * 1000 + (x[1] - x[0]) * 1000, x[k]


def test_fano_resolution_model():
    assert fwhm(5.899) == pytest.approx(130.0)
    assert fwhm(10.0, 125.0) == pytest.approx(np.sqrt(125.0**2 + 2.5 * 4101))


def _doublet_fwhm(element, macros):
    """FWHM (eV) of the xraylib-weighted sum of Gaussians of the given component lines."""
    z = xraylib.SymbolToAtomicNumber(element)
    x = np.linspace(0, 20, 400_001)
    y = 0.0
    for m in macros:
        e0 = xraylib.LineEnergy(z, getattr(xraylib, m))
        y = y + xraylib.RadRate(z, getattr(xraylib, m)) * np.exp(-0.5 * ((x - e0) / (fwhm(e0) / 2354.82)) ** 2)
    above = x[y >= y.max() / 2]
    return (above[-1] - above[0]) * 1000


@pytest.mark.parametrize("element,line,macros", [("Fe", "Fe_Ka", ("KL3_LINE", "KL2_LINE")),
                                                 ("Au", "Au_La", ("L3M5_LINE", "L3M4_LINE"))])
def test_peaks_at_line_energies_with_right_fwhm(element, line, macros):
    e = energy_axis(7000, 0.002)
    spec = expected_spectra({element: np.array(10.0)}, e, dose=1e6, pixel_size=1.0)
    width, pos = _peak_fwhm(spec, e, line_energy(line))
    assert abs(pos - line_energy(line)) < 0.01
    assert width == pytest.approx(_doublet_fwhm(element, macros), abs=5.0)  # 2 eV channels
    assert width == pytest.approx(fwhm(line_energy(line)), rel=0.12)  # doublet: at most a little broader


def test_peak_counts_and_solid_angle_scaling():
    e = energy_axis(2048, 0.01)
    a = expected_spectra({"Fe": np.array(5.0)}, e, dose=1e4, pixel_size=1.0)
    b = expected_spectra({"Fe": np.array(5.0)}, e, dose=1e4, pixel_size=1.0, detector=EDXDetector(solid_angle=4.5))
    np.testing.assert_allclose(b, a * 4.5 / 0.7, rtol=1e-12)
    window = np.abs(e - 6.4) < 0.25
    want = 1e4 * 100 * 0.7 / (4 * np.pi) * 5.0 * xray_cross_section("Fe_Ka")
    background = np.interp(e[window], e[[window.argmax() - 30, len(e) - window[::-1].argmax() + 30]],
                           a[[window.argmax() - 30, len(e) - window[::-1].argmax() + 30]])
    assert (a[window] - background).sum() == pytest.approx(want, rel=0.05)
    # peak-to-background of about 100 at Fe Ka (thin film, 200 kV)
    assert 30 < a[window].max() / background.mean() < 300


def test_escape_and_sum_peaks():
    e = energy_axis(2048, 0.01)
    det = EDXDetector(escape=0.05, pileup=0.02)
    plain = expected_spectra({"Fe": np.array(5.0)}, e, dose=1e4, pixel_size=1.0)
    art = expected_spectra({"Fe": np.array(5.0)}, e, dose=1e4, pixel_size=1.0, detector=det)
    esc, summ = np.argmin(np.abs(e - (6.404 - 1.74))), np.argmin(np.abs(e - 2 * 6.404))
    assert art[esc] > 2 * plain[esc]
    assert art[summ] > 2 * plain[summ]
    assert art.sum() == pytest.approx(plain.sum(), rel=1e-6)  # counts are moved, not created


def test_spectrum_image_is_poisson_and_seeded():
    e = energy_axis(256, 0.05)
    rho = {"Au": np.full((3, 4), 10.0)}
    a = spectrum_image(rho, e, dose=1e4, pixel_size=1.0, rng=3)
    assert a.shape == (3, 4, 256) and a.dtype.kind == "i"
    assert np.array_equal(a, spectrum_image(rho, e, dose=1e4, pixel_size=1.0, rng=3))


@pytest.mark.slow
def test_exspy_reads_the_spectrum_image():
    e = energy_axis(2048, 0.01)
    au = np.zeros((6, 8))
    au[:, :4] = 10.0
    fe = np.full((6, 8), 5.0)
    lam = expected_spectra({"Au": au, "Fe": fe}, e, dose=1e5, pixel_size=1.0)
    counts = np.random.default_rng(0).poisson(lam)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = to_exspy(counts, e, lines=["Au_La", "Fe_Ka"], beam_energy=200.0, pixel_size=0.5)
        assert s.axes_manager.signal_axes[0].units == "keV"
        assert s.metadata.Acquisition_instrument.TEM.beam_energy == 200.0
        assert list(s.metadata.Sample.xray_lines) == ["Au_La", "Fe_Ka"]
        maps = {m.metadata.Sample.xray_lines[0]: m.data for m in s.get_lines_intensity()}
    assert maps["Au_La"].shape == (6, 8)
    s_au = 1e5 * 100 * 0.7 / (4 * np.pi) * 10.0 * xray_cross_section("Au_La")
    # exSpy integrates a window of the peak without background subtraction
    assert maps["Au_La"][:, :4].mean() == pytest.approx(s_au, rel=0.15)
    assert maps["Au_La"][:, 4:].mean() < 0.1 * s_au
    s_fe = 1e5 * 100 * 0.7 / (4 * np.pi) * 5.0 * xray_cross_section("Fe_Ka")
    assert maps["Fe_Ka"].mean() == pytest.approx(s_fe, rel=0.15)
