"""Readers on the conventions of real microscope files: etspy/HyperSpy tilts, several signals, error causes,
raw MRC offsets and default pixel sizes, and the Bruker element list (real data skip when absent)."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, FileFormatError
from chemtomo.io import instrument, read_stack, read_tilt_series, write_stack
from chemtomo.io.instrument import (list_signals, read_bruker_spectrum_image, read_instrument, read_spectrum_image,
                                    stored_elements)
from chemtomo.io.mrc import int16_offset, read_mrc

DATA = Path(os.environ.get("CHEMTOMO_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
L2083 = DATA / "edx-tilt-L2083"
TILTS = np.array([-60.0, -25.0, 0.0, 30.0, 65.0])  # uneven steps: no uniform axis can hold them


# --- etspy / HyperSpy tilt storage ---------------------------------------------------------------------------------

def _etspy_file(path, *, tilts_signal=None, tilts_list=None, stage=None, nav=("Projections", 0.0, 1.0)):
    """An .hspy laid out as etspy saves a TomoStack: nav axis 'Projections' in degrees (etspy's placeholder
    0, 1, 2, ... unless `nav` calibrates it), tilts as a TomoTilts signal (n, 1) and shifts as a signal (n, 2)
    under metadata.Tomography, the per-image stage tilt as an array."""
    hs = pytest.importorskip("hyperspy.api")
    n = len(TILTS)
    s = hs.signals.Signal2D(np.arange(n * 4 * 6, dtype=np.float32).reshape(n, 4, 6))
    ax = s.axes_manager.navigation_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = nav[0], "degrees", nav[1], nav[2]
    for a, name in zip(s.axes_manager.signal_axes, ("x", "y")):
        a.name, a.units, a.scale = name, "nm", 0.8
    s.metadata.set_item("Tomography.tiltaxis", 0.0)
    s.metadata.set_item("Tomography.cropped", False)
    if tilts_signal is not None:
        t = hs.signals.Signal1D(np.asarray(tilts_signal, dtype=np.float64).reshape(n, 1))
        t.metadata.General.title = "Image tilt values"
        t.axes_manager[0].name, t.axes_manager[0].units = "Projections", "degrees"
        t.axes_manager[1].name, t.axes_manager[1].units = "Tilt values", "degrees"
        s.metadata.set_item("Tomography.tilts", t)
        s.metadata.set_item("Tomography.shifts", hs.signals.Signal1D(np.zeros((n, 2))))
    if tilts_list is not None:
        s.metadata.set_item("Tomography.tilts", list(tilts_list))
    if stage is not None:
        s.metadata.set_item("Acquisition_instrument.TEM.Stage.tilt_alpha", stage)
    s.save(path, overwrite=True)
    return s


def test_per_image_stage_tilt_array_gives_the_angles(tmp_path):
    _etspy_file(tmp_path / "fei.hspy", stage=TILTS)  # etspy on an FEI MRC: a_tilt per frame, no Tomography.tilts
    stack, meta = read_stack(tmp_path / "fei.hspy")
    assert stack.shape == (5, 4, 6)
    np.testing.assert_array_equal(meta["angles"], TILTS)  # not the placeholder axis 0..4
    assert "tilt_alpha" in meta["angles_source"]
    np.testing.assert_array_equal(meta["stage_tilt"], TILTS)
    assert meta["pixel_size"] == pytest.approx(0.8)
    ts = read_tilt_series({"HAADF": tmp_path / "fei.hspy"})
    np.testing.assert_array_equal(ts["HAADF"].angles, TILTS)


def test_scalar_stage_tilt_stays_informational(tmp_path):
    _etspy_file(tmp_path / "s.hspy", tilts_list=TILTS, stage=12.5)
    _, meta = read_stack(tmp_path / "s.hspy")
    np.testing.assert_array_equal(meta["angles"], TILTS)
    assert meta["angles_source"] == "metadata.Tomography.tilts"
    assert meta["stage_tilt"] == 12.5 and isinstance(meta["stage_tilt"], float)
    # a constant per-image stage tilt is no tilt series either
    _etspy_file(tmp_path / "c.hspy", stage=np.full(5, 3.0), nav=("Tilt", -40.0, 20.0))
    _, meta = read_stack(tmp_path / "c.hspy")
    np.testing.assert_array_equal(meta["angles"], [-40, -20, 0, 20, 40])  # the calibrated navigation axis
    assert any("every image" in note for note in meta["notes"])


def test_etspy_tilts_signal_in_metadata(tmp_path):
    _etspy_file(tmp_path / "tomo.hspy", tilts_signal=TILTS, stage=np.zeros(5) + 1.0)
    _, meta = read_instrument(tmp_path / "tomo.hspy")
    np.testing.assert_array_equal(meta["angles"], TILTS)
    assert "etspy" in meta["angles_source"]


def test_etspy_placeholders_are_not_angles(tmp_path):
    _etspy_file(tmp_path / "none.hspy", tilts_signal=np.zeros(5))  # etspy's defaults: zero tilts, axis 0, 1, 2, ...
    _, meta = read_instrument(tmp_path / "none.hspy")
    assert "angles" not in meta
    assert any("all 0" in note for note in meta["notes"]) and any("placeholder" in note for note in meta["notes"])
    with pytest.raises(ChemtomoError, match="no tilt angles for signal HAADF"):
        read_tilt_series({"HAADF": tmp_path / "none.hspy"})
    ts = read_tilt_series({"HAADF": tmp_path / "none.hspy"}, TILTS)
    assert "HAADF" in ts.metadata["notes"]


def test_from_hyperspy_accepts_the_etspy_tilts_signal(tmp_path):
    hs = pytest.importorskip("hyperspy.api")
    from chemtomo.core.data import TiltSeries

    _etspy_file(tmp_path / "tomo.hspy", tilts_signal=TILTS)
    loaded = hs.load(tmp_path / "tomo.hspy")
    assert hasattr(loaded.metadata.Tomography.tilts, "axes_manager")  # a signal, as etspy stores it
    ts = TiltSeries.from_hyperspy({"HAADF": loaded})
    np.testing.assert_array_equal(ts["HAADF"].angles, TILTS)
    assert ts.pixel_size == pytest.approx(0.8)
    # the tilt signal itself as angles=, and the per-image stage tilt when Tomography holds none
    tilts = loaded.metadata.Tomography.tilts
    np.testing.assert_array_equal(TiltSeries.from_hyperspy({"HAADF": loaded}, angles=tilts)["HAADF"].angles, TILTS)
    _etspy_file(tmp_path / "fei.hspy", stage=TILTS)
    np.testing.assert_array_equal(TiltSeries.from_hyperspy({"A": hs.load(tmp_path / "fei.hspy")})["A"].angles, TILTS)
    _etspy_file(tmp_path / "none.hspy", tilts_signal=np.zeros(5))
    with pytest.raises(ChemtomoError, match="carries no tilt angles"):
        TiltSeries.from_hyperspy({"A": hs.load(tmp_path / "none.hspy")})


# --- several signals in one file ---------------------------------------------------------------------------------

def _axis(name, size, units, scale=1.0, offset=0.0, navigate=False):
    return {"name": name, "size": size, "units": units, "scale": scale, "offset": offset, "navigate": navigate}


def _velox_signals():
    """What rsciio.emd returns for a Velox file with HAADF, DF4, an EELS and an EDS spectrum image."""
    def sig(title, data, axes, **md):
        return {"data": data, "axes": axes, "metadata": {"General": {"title": title}, **md}, "original_metadata": {}}

    xy = [_axis("y", 4, "nm", 0.5, navigate=True), _axis("x", 6, "nm", 0.5, navigate=True)]
    return [
        sig("HAADF", np.full((8, 12), 1.0), [_axis("y", 8, "nm", 0.25), _axis("x", 12, "nm", 0.25)]),
        sig("DF4", np.full((8, 12), 2.0), [_axis("y", 8, "nm", 0.25), _axis("x", 12, "nm", 0.25)]),
        sig("EELS", np.ones((4, 6, 5)), xy + [_axis("Energy loss", 5, "eV", 0.5, 280.0)],
            Signal={"signal_type": "EELS"}),
        sig("EDS", np.ones((4, 6, 3)), xy + [_axis("Energy", 3, "keV", 0.01, 6.40)],
            Signal={"signal_type": "EDS_TEM"}, Sample={"xray_lines": ["Fe_Ka", "Pt_La", "Fe_Kb"]},
            Acquisition_instrument={"TEM": {"beam_energy": 300.0}}),
    ]


@pytest.fixture
def velox(tmp_path, monkeypatch):
    calls = []

    def file_reader(filename, **kwargs):
        calls.append(kwargs)
        return _velox_signals()

    monkeypatch.setitem(sys.modules, "rsciio.emd", types.SimpleNamespace(file_reader=file_reader))
    path = tmp_path / "velox.emd"
    path.write_bytes(b"EMD placeholder")
    return path, calls


def test_list_signals(velox):
    path, calls = velox
    infos = list_signals(path)
    assert [(i.index, i.title, i.kind, i.energy_unit) for i in infos] == [
        (0, "HAADF", "image", None), (1, "DF4", "image", None),
        (2, "EELS", "spectrum image", "eV"), (3, "EDS", "spectrum image", "keV")]
    assert infos[3].shape == (4, 6, 3) and tuple(infos[3]) == (3, "EDS", (4, 6, 3), "spectrum image", "keV")
    assert calls[-1] == {"lazy": True}  # listing loads no data


def test_spectrum_image_choice_and_energy_units(velox):
    path, _ = velox
    first = read_spectrum_image(path)  # the first spectrum image; the other named
    assert first["title"] == "EELS" and first["signal_index"] == 2
    np.testing.assert_allclose(first["energy"], [0.280, 0.2805, 0.281, 0.2815, 0.282])  # eV -> keV
    assert [(c["index"], c["title"]) for c in first["other_candidates"]] == [(3, "EDS")]
    assert "3 'EDS'" in first["notes"][0]
    assert first["image_title"] == "HAADF" and first["elements"] == []
    for choice in ("eds", " EDS ", 3, "3"):
        eds = read_spectrum_image(path, signal=choice)
        assert eds["title"] == "EDS" and eds["other_candidates"] == [] and eds["notes"] == []
        np.testing.assert_allclose(eds["energy"], [6.40, 6.41, 6.42])  # keV stays keV
        assert eds["elements"] == ["Fe", "Pt"] and eds["beam_energy"] == 300.0
    np.testing.assert_allclose(read_spectrum_image(path, signal="EELS")["energy"], first["energy"])


def test_image_choice_and_pass_through_read_stack(velox, tmp_path):
    path, _ = velox
    data, meta = read_instrument(path)
    assert meta["title"] == "HAADF" and data[0, 0] == 1.0
    assert meta["other_candidates"] == [{"index": 1, "title": "DF4", "shape": (8, 12), "kind": "image"}]
    assert meta["other_signals"] == ["DF4", "EELS", "EDS"] and "signal=" in meta["notes"][0]
    stack, meta = read_stack(path, signal="df4")
    assert stack.shape == (1, 8, 12) and stack[0, 0, 0] == 2.0 and meta["signal_index"] == 1
    assert "other_candidates" not in meta and "notes" not in meta
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 3)))
    with pytest.raises(FileFormatError, match="holds one stack"):
        read_stack(tmp_path / "a.npy", signal=1)


def test_signal_that_matches_none_lists_the_file(velox):
    path, _ = velox
    with pytest.raises(FileFormatError, match=r"no signal titled 'BF'.*0 'HAADF' image 8x12.*3 'EDS' spectrum image "
                                              r"4x6x3 \(keV\)") as info:
        read_instrument(path, signal="BF")
    assert "\n" not in str(info.value)
    with pytest.raises(FileFormatError, match=r"has no signal 7: it holds 4"):
        read_spectrum_image(path, signal=7)
    with pytest.raises(FileFormatError, match=r"signal 0 'HAADF' image 8x12 of .* is not a spectrum image"):
        read_spectrum_image(path, signal="haadf")
    with pytest.raises(FileFormatError, match=r"is not an image; read it with read_spectrum_image"):
        read_instrument(path, signal="EELS")
    with pytest.raises(ChemtomoError, match="title or an index"):
        read_instrument(path, signal=1.5)


# --- errors that name the cause ----------------------------------------------------------------------------------

def test_missing_package_is_named_with_its_install(tmp_path, monkeypatch):
    path = tmp_path / "velox.emd"
    path.write_bytes(b"EMD placeholder")
    real = instrument.importlib.import_module

    def no_plugin(name, *args):
        if name.startswith("rsciio."):
            raise ModuleNotFoundError("No module named 'skimage'", name="skimage")
        return real(name, *args)

    monkeypatch.setattr(instrument.importlib, "import_module", no_plugin)
    with pytest.raises(FileFormatError, match=r"package 'scikit-image' is not installed.*pip install scikit-image"):
        read_spectrum_image(path)
    monkeypatch.setattr(instrument.importlib, "import_module", real)

    def velox_reader(filename, **kwargs):  # RosettaSciIO's own words for a Velox EDS map without sparse
        raise ModuleNotFoundError("The 'sparse' library was not found. To load EDS spectrum image data from Velox "
                                  "EMD files, 'sparse' must be installed.")

    monkeypatch.setitem(sys.modules, "rsciio.emd", types.SimpleNamespace(file_reader=velox_reader))
    with pytest.raises(FileFormatError, match=r"'sparse' is not installed \(rsciio\.emd needs it for Velox \.emd "
                                              r"spectrum images\); install it with: pip install sparse$") as info:
        read_stack(path)
    assert "check the file is complete" not in str(info.value)

    def old_numpy(filename, **kwargs):
        raise ImportError("cannot import name 'trapz' from 'numpy'", name="numpy")

    monkeypatch.setitem(sys.modules, "rsciio.emd", types.SimpleNamespace(file_reader=old_numpy))
    with pytest.raises(FileFormatError, match=r"incompatible version: pip install --upgrade numpy"):
        read_spectrum_image(path)


def test_missing_unreadable_and_damaged_files(tmp_path, monkeypatch):
    with pytest.raises(FileFormatError, match=r"does not exist; check the path"):
        list_signals(tmp_path / "gone.emd")
    (tmp_path / "folder.emd").mkdir()
    with pytest.raises(FileFormatError, match=r"is a folder, not a file"):
        read_spectrum_image(tmp_path / "folder.emd")
    path = tmp_path / "locked.emd"
    path.write_bytes(b"EMD placeholder")

    def locked(filename, **kwargs):
        raise PermissionError(13, "Permission denied", filename)

    monkeypatch.setitem(sys.modules, "rsciio.emd", types.SimpleNamespace(file_reader=locked))
    with pytest.raises(FileFormatError, match=r"cannot open .*locked\.emd \(PermissionError: .*may read the file"):
        read_instrument(path)
    hs = pytest.importorskip("hyperspy.api")
    hs.signals.Signal2D(np.ones((3, 64, 64), dtype=np.float32)).save(tmp_path / "whole.hspy")
    raw = (tmp_path / "whole.hspy").read_bytes()
    (tmp_path / "cut.hspy").write_bytes(raw[: len(raw) // 3])  # a transfer that stopped
    with pytest.raises(FileFormatError, match=r"damaged or truncated, or is not a HyperSpy HDF5 file") as info:
        read_stack(tmp_path / "cut.hspy")
    assert "cut.hspy" in str(info.value) and "\n" not in str(info.value)


def test_sparse_is_installed_for_velox_spectrum_images():
    pytest.importorskip("sparse")  # a declared dependency (pyproject.toml); the message above covers its absence
    import sparse

    assert sparse.COO.from_numpy(np.eye(3)).nnz == 3


# --- MRC raw detector conventions ----------------------------------------------------------------------------------

def _mrc(path, data, voxel=None):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
        if voxel is not None:
            m.voxel_size = voxel


def test_int16_offset_is_detected_and_undone(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(40.0, (3, 16, 16)).astype(np.int32)
    counts[:, 4:8, 4:8] = 40000  # a bright particle: stored positive
    stored = (counts - 32768).astype(np.int16)
    assert 0.5 < (stored < 0).mean() < 1.0
    _mrc(tmp_path / "raw.mrc", stored, voxel=3.2)
    data, meta = read_mrc(tmp_path / "raw.mrc")
    assert data.dtype == np.int32
    np.testing.assert_array_equal(data, counts)
    assert meta["offset_corrected"] == 32768
    assert "-32768 offset" in meta["notes"][0] and "94 % negative" in meta["notes"][0]
    assert meta["pixel_size"] == pytest.approx(0.32)  # a genuine header pixel size is kept
    stack, meta = read_stack(tmp_path / "raw.mrc")
    assert stack.min() >= 0 and meta["offset_corrected"] == 32768


def test_signed_int16_data_are_left_alone(tmp_path):
    signed = np.array([[-300, -120, -5, -1, 0, 250]] * 4, dtype=np.int16)[None]  # mostly negative, near zero
    _mrc(tmp_path / "signed.mrc", signed, voxel=2.0)
    data, meta = read_mrc(tmp_path / "signed.mrc")
    np.testing.assert_array_equal(data, signed)
    assert data.dtype == np.int16 and "offset_corrected" not in meta and "notes" not in meta
    assert int16_offset(np.full((2, 2), -20000, dtype=np.float32)) == 0  # only int16 data
    assert int16_offset(np.array([-20000, 5, 6], dtype=np.int16)) == 0  # a third negative: not shifted counts


def test_default_header_pixel_size_is_not_a_calibration(tmp_path):
    data = np.ones((2, 4, 4), dtype=np.float32)
    for name, voxel in (("one.mrc", 1.0), ("zero.mrc", None)):
        _mrc(tmp_path / name, data, voxel=voxel)
        _, meta = read_mrc(tmp_path / name)
        assert "pixel_size" not in meta
        assert "--pixel-size" in meta["notes"][0]
    assert "1 Angstrom" in read_mrc(tmp_path / "one.mrc")[1]["notes"][0]
    _mrc(tmp_path / "real.mrc", data, voxel=1.5)
    _, meta = read_mrc(tmp_path / "real.mrc")
    assert meta["pixel_size"] == pytest.approx(0.15) and "notes" not in meta
    write_stack(tmp_path / "ours.mrc", data, [-10, 10], pixel_size=0.1)  # chemtomo's own 1 A pixel is a real one
    _, meta = read_mrc(tmp_path / "ours.mrc")
    assert meta["pixel_size"] == pytest.approx(0.1) and "notes" not in meta
    (tmp_path / "one.tlt").write_text("-10\n10\n")
    ts = read_tilt_series({"HAADF": tmp_path / "one.mrc"}, pixel_size=0.2)
    assert ts.pixel_size == 0.2 and "--pixel-size" in ts.metadata["notes"]["HAADF"][0]


# --- Bruker element list ------------------------------------------------------------------------------------------

def test_elements_from_xray_lines_or_none(velox):
    path, _ = velox
    assert read_spectrum_image(path, signal="EDS")["elements"] == ["Fe", "Pt"]
    assert read_spectrum_image(path, signal="EELS")["elements"] == []


@pytest.mark.skipif(not (L2083 / "0.bcf").is_file(), reason=f"real data {L2083} not available")
def test_real_bcf_elements_selected_in_esprit():
    out = read_bruker_spectrum_image(L2083 / "0.bcf", downsample=4, cutoff_at_kv=10.0)
    assert out["elements"] == ["Al", "C", "Ca", "Cr", "Cu", "Fe", "Ga", "Mg", "N", "Na", "O", "Pt", "S", "Si", "Ti"]
    assert out["signal_index"] == 1 and out["other_candidates"] == [] and out["notes"] == []
    infos = list_signals(L2083 / "0.bcf")
    assert [(i.title, i.kind, i.energy_unit) for i in infos] == [("HAADF", "image", None),
                                                                 ("EDX", "spectrum image", "keV")]
    assert infos[1].shape == (256, 256, 2048)
    # the same list from the metadata alone, without the 256 x 256 x 2048 counts
    assert stored_elements(L2083 / "0.bcf") == out["elements"]


# ----- the command line: listing the signals, choosing one, elements from the file -----

def test_cli_lists_the_signals_of_a_file(velox, capsys):
    from chemtomo.cli import main

    path, _ = velox
    assert main(["signals", str(path)]) == 0
    text = capsys.readouterr().out
    assert "2 'EELS' spectrum image 4x6x5 (eV)" in text and "3 'EDS' spectrum image 4x6x3 (keV)" in text


def test_cli_maps_takes_the_elements_the_file_stores_and_the_spectrum_asked_for(tmp_path, capsys):
    from chemtomo.cli import main
    from chemtomo.io import read_stack
    from chemtomo.simulate.spectrum import expected_spectra, to_exspy
    from chemtomo.physics.xray import energy_axis

    e = energy_axis(1024, 0.01)
    yy, xx = np.mgrid[:12, :12]
    areal = {"Fe": 2.0 * ((yy - 6) ** 2 + (xx - 6) ** 2 < 16) + 0.05}
    lam = expected_spectra(areal, e, dose=2e5, pixel_size=5.0)
    for i, a in enumerate((-10, 10)):
        s = to_exspy(np.random.default_rng(i).poisson(lam), e, lines=["Fe_Ka"], pixel_size=5.0)
        s.save(str(tmp_path / f"tilt_{a}.hspy"), overwrite=True)
    files = sorted(str(p) for p in tmp_path.glob("*.hspy"))
    out = tmp_path / "maps"
    assert main(["maps", *files, "--angles-from-names", "--spectrum", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "elements from tilt_" in text and "Fe" in text
    assert stored_elements(files[0]) == read_spectrum_image(files[0])["elements"] == ["Fe"]
    fe, _ = read_stack(out / "Fe_Ka.mrc")
    assert fe.shape == (2, 12, 12) and fe[:, 6, 6].min() > 5 * max(fe[:, 0, 0].max(), 1.0)
    assert main(["maps", *files, "--angles-from-names", "--spectrum", "EELS", "--out", str(out)]) == 2
    assert "EELS" in capsys.readouterr().err
