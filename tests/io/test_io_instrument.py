"""HyperSpy and instrument files via RosettaSciIO; real data skip when absent."""

from pathlib import Path

import numpy as np
import pytest

from chemtomo.core.errors import FileFormatError
from chemtomo.io import read_bruker_spectrum_image, read_spectrum_image, read_stack, read_tilt_series

DATA = Path("/work/shared/data")
BCF = DATA / "edx-tilt-L2083" / "0.bcf"
FEPT = DATA / "edx-si-FePt" / "core_shell.hdf5"


def _hspy_stack(path, data, *, tilts=None, nav_deg=None, scale=0.5, units="nm"):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal2D(data)
    if tilts is not None:
        s.metadata.set_item("Tomography.tilts", list(tilts))
    for ax in s.axes_manager.signal_axes:
        ax.units, ax.scale = units, scale
    if nav_deg is not None:
        nav = s.axes_manager.navigation_axes[0]
        nav.units, nav.offset, nav.scale = "deg", nav_deg[0], nav_deg[1]
    s.metadata.Signal.quantity = "Intensity"
    tmp = Path(path).with_suffix(".hspy")  # .hdf5 is ambiguous to hyperspy's writer
    s.save(tmp, overwrite=True)
    if tmp != Path(path):
        tmp.rename(path)


def test_hspy_stack_with_tomography_tilts(tmp_path):
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    _hspy_stack(tmp_path / "s.hspy", data, tilts=[-12.5, 40.0], scale=5.0, units="Å")
    stack, meta = read_stack(tmp_path / "s.hspy")
    np.testing.assert_array_equal(stack, data)
    np.testing.assert_array_equal(meta["angles"], [-12.5, 40.0])
    assert meta["pixel_size"] == pytest.approx(0.5) and meta["units"] == "Intensity"


def test_hspy_navigation_axis_in_degrees_and_tilt_series(tmp_path):
    data = np.ones((3, 2, 2), dtype=np.float32)
    _hspy_stack(tmp_path / "n.hdf5", data, nav_deg=(-30.0, 30.0), scale=0.002, units="µm")
    stack, meta = read_stack(tmp_path / "n.hdf5")
    np.testing.assert_allclose(meta["angles"], [-30, 0, 30])
    assert meta["pixel_size"] == pytest.approx(2.0)
    ts = read_tilt_series({"HAADF": tmp_path / "n.hdf5"})
    np.testing.assert_allclose(ts["HAADF"].angles, [-30, 0, 30])
    assert ts.pixel_size == pytest.approx(2.0) and ts["HAADF"].units == "Intensity"


def test_tilt_series_to_hyperspy_roundtrip(tmp_path):
    pytest.importorskip("hyperspy.api")
    from chemtomo.core.data import TiltSeries

    ts = TiltSeries.from_arrays({"Au": np.full((3, 2, 4), 7.0)}, [-10.0, 5.0, 20.0], pixel_size=0.3)
    ts.to_hyperspy("Au").save(tmp_path / "au.hspy")
    back = read_tilt_series({"Au": tmp_path / "au.hspy"})
    np.testing.assert_array_equal(back["Au"].angles, [-10, 5, 20])
    np.testing.assert_array_equal(back["Au"].data, ts["Au"].data)
    assert back.pixel_size == pytest.approx(0.3)


def test_spectrum_image_only_file_is_not_a_stack(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    s = hs.signals.Signal1D(np.zeros((2, 3, 5), dtype=np.float32))
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.scale, ax.offset = "Energy", "eV", 10.0, 100.0
    s.save(tmp_path / "si.hspy")
    with pytest.raises(FileFormatError, match=r"no image or image stack.*read_spectrum_image"):
        read_stack(tmp_path / "si.hspy")
    out = read_spectrum_image(tmp_path / "si.hspy")
    assert out["spectrum_image"].shape == (2, 3, 5) and out["image"] is None
    np.testing.assert_allclose(out["energy"], [0.10, 0.11, 0.12, 0.13, 0.14])  # keV
    with pytest.raises(FileFormatError, match=r"not a Bruker \.bcf"):
        read_bruker_spectrum_image(tmp_path / "si.hspy")


@pytest.mark.slow
@pytest.mark.skipif(not BCF.is_file(), reason="shared L2083 .bcf data (GPL) not present")
def test_real_bruker_bcf():
    out = read_bruker_spectrum_image(BCF)
    assert out["image"].shape == (256, 256) and out["image_title"] == "HAADF"
    assert out["spectrum_image"].shape == (256, 256, 2048)
    assert out["energy"].shape == (2048,)
    assert out["energy"][1] - out["energy"][0] == pytest.approx(0.010003, rel=1e-4)  # 10 eV channels, keV
    assert out["pixel_size"] == pytest.approx(13.08, rel=1e-3)  # nm
    assert out["beam_energy"] == pytest.approx(200.0)
    assert 1e5 < out["spectrum_image"].sum() < 1e8  # about a million counts
    stack, meta = read_stack(BCF)  # the HAADF image as a one-image stack
    assert stack.shape == (1, 256, 256) and meta["pixel_size"] == pytest.approx(13.08, rel=1e-3)
    np.testing.assert_array_equal(stack[0], out["image"])
    small = read_bruker_spectrum_image(BCF, downsample=2, cutoff_at_kv=10.0)
    assert small["spectrum_image"].shape[:2] == (128, 128) and small["energy"][-1] <= 10.05


@pytest.mark.skipif(not FEPT.is_file(), reason="shared FePt EDX data (NIST) not present")
def test_real_fept_hspy_spectrum_image():
    out = read_spectrum_image(FEPT)
    assert out["spectrum_image"].shape == (64, 64, 992)
    assert out["pixel_size"] == pytest.approx(0.5)
    assert out["energy"][0] == pytest.approx(0.16) and out["energy"][1] - out["energy"][0] == pytest.approx(0.02)
    assert out["signal_type"] == "EDS_TEM"
    fe_ka = np.argmin(np.abs(out["energy"] - 6.40))
    spectrum = out["spectrum_image"].sum(axis=(0, 1))
    assert spectrum[fe_ka - 2 : fe_ka + 3].sum() > spectrum[fe_ka + 10 : fe_ka + 15].sum()  # an Fe Ka peak
