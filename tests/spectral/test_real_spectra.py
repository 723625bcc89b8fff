"""Real spectrum images from ../shared/data (skipped when absent; GPL data are never copied here)."""

from pathlib import Path

import numpy as np
import pytest

from chemtomo.spectral.maps import fit_maps, integration_windows, window_maps

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
FEPT = DATA / "edx-si-FePt" / "core_shell.hdf5"
L2083 = DATA / "edx-tilt-L2083"


def _corr(a, b):
    return np.corrcoef(np.ravel(a), np.ravel(b))[0, 1]


@pytest.mark.skipif(not FEPT.is_file(), reason="needs ../shared/data/edx-si-FePt (NIST FePt spectrum image)")
def test_window_maps_match_exspy_on_fept():
    import hyperspy.api as hs

    s = hs.load(str(FEPT), reader="hspy")
    res = s.metadata.Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa
    ax = s.axes_manager.signal_axes[0]
    energy = ax.offset + ax.scale * np.arange(ax.size)
    lines = ["Fe_Ka", "Pt_La"]
    ours = window_maps(s.data, energy, lines, fwhm_mnka=res)
    win, bg = integration_windows(energy, lines, width=1.2, fwhm_mnka=res)
    s.add_lines(lines)
    theirs = s.get_lines_intensity(lines, integration_windows=win.tolist(), background_windows=bg)
    for line, img in zip(lines, theirs):
        assert _corr(ours[line], img.data) > 0.99
        assert np.allclose(ours[line], img.data)
    # exSpy's own defaults (its line energies and windows) agree too
    default = s.get_lines_intensity(lines, integration_windows=1.2, background_windows=s.estimate_background_windows())
    for line, img in zip(lines, default):
        assert _corr(ours[line], img.data) > 0.99


@pytest.mark.skipif(not (L2083 / "-35.bcf").is_file(), reason="needs ../shared/data/edx-tilt-L2083 (GPL, not copied)")
def test_l2083_window_and_fit_maps_agree(tmp_path):
    from chemtomo.spectral.series import maps_series

    elements = ["O", "Mg", "Si", "S", "Fe", "Ni", "Pt_Ma", "Ga"]  # Pt cap and FIB Ga are in the spectra too
    series = {m: maps_series([L2083 / "-35.bcf", L2083 / "0.bcf"], elements, angles="names", method=m)
              for m in ("window", "fit")}
    for s in series.values():
        assert s.names == [f"{e}_Ka" for e in elements[:6]] + ["Pt_Ma", "Ga_Ka", "HAADF"]
        assert list(s["Fe_Ka"].angles) == [-35.0, 0.0] and s["Fe_Ka"].data.shape == (2, 256, 256)
        assert s.pixel_size == pytest.approx(13.08, abs=0.01)
    for line in ("Fe_Ka", "O_Ka", "Mg_Ka", "Si_Ka", "Pt_Ma"):
        # 2x2-binned maps: the raw maps hold ~1-20 counts per pixel
        a, b = (s[line].data.reshape(2, 128, 2, 128, 2).sum(axis=(2, 4)) for s in series.values())
        assert _corr(a, b) > 0.9, line
    for s in series.values():  # Fe-rich grains: a few per cent of the pixels hold most of the Fe counts
        fe = s["Fe_Ka"].data[1]
        assert fe[fe > np.percentile(fe, 95)].sum() > 0.2 * fe.sum()
    assert all((v.data >= 0).all() for k, v in series["fit"].signals.items() if k != "HAADF")
