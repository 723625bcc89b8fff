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


@pytest.mark.slow
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


def _binned(img, b=4):
    ny, nx = (np.array(img.shape[-2:]) // b) * b
    x = np.asarray(img)[..., :ny, :nx]
    return x.reshape(x.shape[:-2] + (ny // b, b, nx // b, b)).sum(axis=(-3, -1))


@pytest.mark.slow
@pytest.mark.skipif(not FEPT.is_file(), reason="needs ../shared/data/edx-si-FePt (NIST FePt spectrum image)")
def test_learned_maps_agree_with_the_high_count_fit_on_fept():
    from chemtomo.io.instrument import read_spectrum_image
    from chemtomo.physics.counts import split_counts
    from chemtomo.spectral.learned import learned_maps

    d = read_spectrum_image(FEPT)
    si, e = np.asarray(d["spectrum_image"]).astype(np.int64), d["energy"]
    lines = ["Fe_Ka", "Pt_La"]
    ref = fit_maps(si, e, lines)
    learned, _ = learned_maps(si, e, lines)
    low = split_counts(si, 0.05, rng=1)[0]  # a twentieth of the counts
    learned_low, fit_low = learned_maps(low, e, lines)[0], fit_maps(low, e, lines)
    for line in lines:
        assert _corr(_binned(learned[line]), _binned(ref[line])) > 0.95  # no invented structure at high counts
        # at low counts the learned map is closer to the full-count fit than the fit of the same counts
        assert _corr(learned_low[line], ref[line]) > _corr(fit_low[line], ref[line])


@pytest.mark.slow
@pytest.mark.skipif(not L2083.is_dir(), reason="needs ../shared/data/edx-tilt-L2083")
def test_learned_maps_agree_with_the_high_count_fit_on_l2083():
    """Each tilt mapped alone; the reference is the fit of the spectra summed over 8 x 8 px (high counts)."""
    from chemtomo.io.instrument import read_spectrum_image
    from chemtomo.spectral.estimates import line_estimates
    from chemtomo.spectral.learned import learned_maps

    lines = ["O_Ka", "Si_Ka", "S_Ka", "Fe_Ka", "Ni_Ka", "Pt_Ma"]
    got = {k: {line: [] for line in lines} for k in ("learned", "ref", "fit", "estimate")}
    for path in sorted(L2083.glob("*.bcf"))[::4]:
        d = read_spectrum_image(path, downsample=2)
        si, e = np.asarray(d["spectrum_image"]), np.asarray(d["energy"])
        summed = np.moveaxis(_binned(np.moveaxis(si, -1, 0), 8), 0, -1)
        maps = {"learned": learned_maps(si, e, lines)[0], "ref": fit_maps(summed, e, lines), "fit": fit_maps(si, e, lines),
                "estimate": dict(zip(lines, line_estimates(si, e, lines)["estimate"]))}
        for k, m in maps.items():
            for line in lines:
                got[k][line].append(m[line])
    total = {k: {line: np.sum(v) for line, v in d.items()} for k, d in got.items()}
    for line in ["O_Ka", "Si_Ka", "S_Ka", "Fe_Ka", "Pt_Ma"]:
        learned = sum(_binned(m, 8) for m in got["learned"][line])
        assert _corr(learned, sum(got["ref"][line])) > 0.95, line  # no invented structure
        assert 0.8 < total["learned"][line] / total["ref"][line] < 1.5, line
    # Ni holds a few counts per 8 x 8 px per tilt: the per-pixel NNLS fit clips its noise to a positive bias
    # (several times the counts of the same fit on summed spectra), which the learned map does not copy
    assert total["fit"]["Ni_Ka"] > 3 * total["ref"]["Ni_Ka"]
    assert total["learned"]["Ni_Ka"] < 0.5 * total["fit"]["Ni_Ka"]
    assert abs(total["estimate"]["Ni_Ka"]) < 0.5 * total["fit"]["Ni_Ka"]  # no non-negativity, no such bias
