"""Readers: stacks, angle files and tilt series from tiny files made on the fly."""

import re

import mrcfile
import numpy as np
import pytest
import tifffile

from chemtomo.core.errors import ChemtomoError, DataError, FileFormatError, ShapeError
from chemtomo.io import read_angles, read_stack, read_tilt_series, write_stack
from chemtomo.io.read import READERS


def _stack(n=5, ny=4, nu=6, seed=0):
    return np.random.default_rng(seed).random((n, ny, nu)).astype(np.float32)


def test_read_angles_skips_blanks_and_comments(tmp_path):
    f = tmp_path / "a.rawtlt"
    f.write_text("# tilt series\n-60\n\n  -30.5  # second\n0\n30.25\n60\n")
    np.testing.assert_array_equal(read_angles(f), [-60, -30.5, 0, 30.25, 60])


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("", r"holds no angles"),
        ("# only a comment\n\n", r"holds no angles"),
        ("10\n20\nabc\n", r"line 3: cannot read 'abc'"),
        ("10\n20 30\n", r"line 2 has 2 values"),
    ],
)
def test_read_angles_bad_files(tmp_path, text, pattern):
    f = tmp_path / "bad.tlt"
    f.write_text(text)
    with pytest.raises(FileFormatError, match=pattern) as info:
        read_angles(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_read_angles_missing_and_radians(tmp_path):
    with pytest.raises(FileFormatError, match="does not exist"):
        read_angles(tmp_path / "none.tlt")
    f = tmp_path / "rad.txt"
    f.write_text("-1.2\n700\n")
    with pytest.raises(ChemtomoError, match="700"):
        read_angles(f)


def test_mrc_stack_roundtrip_with_tlt(tmp_path):
    data, angles = _stack(), np.array([-60.0, -30.0, 0.0, 30.0, 60.5])
    path = write_stack(tmp_path / "haadf.mrc", data, angles, pixel_size=0.25)
    assert (tmp_path / "haadf.tlt").read_text().splitlines()[-1] == "60.5"
    with mrcfile.open(path) as m:
        assert m.data.dtype == np.float32 and m.is_image_stack()
        assert m.voxel_size.x == pytest.approx(2.5)
    stack, meta = read_stack(path)
    np.testing.assert_array_equal(stack, data)
    np.testing.assert_array_equal(meta["angles"], angles)
    assert meta["pixel_size"] == pytest.approx(0.25)
    assert meta["angles_file"].endswith("haadf.tlt")


def test_rawtlt_sibling_and_other_mrc_suffixes(tmp_path):
    data = _stack(3)
    with mrcfile.new(tmp_path / "s.st") as m:
        m.set_data(data)
    (tmp_path / "s.rawtlt").write_text("-5\n0\n5\n")
    stack, meta = read_stack(tmp_path / "s.st")
    np.testing.assert_array_equal(stack, data)
    np.testing.assert_array_equal(meta["angles"], [-5, 0, 5])
    assert "pixel_size" not in meta  # header voxel size 0 means unknown


def test_tiff_stack_and_single_image(tmp_path):
    data = _stack(4)
    tifffile.imwrite(tmp_path / "s.tif", data, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "nm"})
    stack, meta = read_stack(tmp_path / "s.tif")
    np.testing.assert_array_equal(stack, data)
    assert meta["pixel_size"] == pytest.approx(0.5)
    tifffile.imwrite(tmp_path / "one.tiff", data[0])
    stack, meta = read_stack(tmp_path / "one.tiff")
    assert stack.shape == (1, 4, 6) and "pixel_size" not in meta
    np.testing.assert_array_equal(stack[0], data[0])


def test_npy_stack(tmp_path):
    data = _stack(2)
    np.save(tmp_path / "x.npy", data)
    stack, meta = read_stack(tmp_path / "x.npy")
    np.testing.assert_array_equal(stack, data)
    assert meta["source"].endswith("x.npy")
    np.save(tmp_path / "v.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(ShapeError, match=r"\(2, 2, 2, 2\)"):
        read_stack(tmp_path / "v.npy")


def test_dispatch_is_by_extension_only(tmp_path):
    # a file called "haadf_tiff_stack.mrc" is MRC, whatever its name says
    data = _stack(2)
    write_stack(tmp_path / "haadf_tiff_stack.mrc", data)
    np.testing.assert_array_equal(read_stack(tmp_path / "haadf_tiff_stack.mrc")[0], data)
    assert set(READERS) >= {".mrc", ".st", ".ali", ".mrcs", ".tif", ".tiff", ".npy", ".hspy", ".hdf5", ".bcf", ".emd", ".dm3", ".dm4", ".ser"}


def test_read_stack_bad_files(tmp_path):
    with pytest.raises(FileFormatError, match=r"does not exist") as info:
        read_stack(tmp_path / "missing.mrc")
    assert "missing.mrc" in str(info.value)
    (tmp_path / "empty.mrc").write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"empty \(0 bytes\)"):
        read_stack(tmp_path / "empty.mrc")
    for name in ("junk.mrc", "junk.tif", "junk.npy", "junk.hspy"):
        (tmp_path / name).write_bytes(b"this is not a data file" * 10)
        with pytest.raises(FileFormatError, match=re.escape(name)) as info:
            read_stack(tmp_path / name)
        assert "\n" not in str(info.value)
    (tmp_path / "x.xyz").write_bytes(b"1")
    with pytest.raises(FileFormatError, match=r"unknown extension '\.xyz'.*\.mrc"):
        read_stack(tmp_path / "x.xyz")


def test_read_tilt_series_angle_sources(tmp_path):
    a = np.array([-20.0, 0.0, 20.0])
    write_stack(tmp_path / "HAADF.mrc", _stack(3, seed=1), a, pixel_size=0.4)
    np.save(tmp_path / "Au.npy", _stack(3, seed=2))
    (tmp_path / "au.tlt").write_text("-21\n1\n21\n")
    ts = read_tilt_series({"HAADF": tmp_path / "HAADF.mrc", "Au": tmp_path / "Au.npy"}, {"Au": tmp_path / "au.tlt"})
    np.testing.assert_array_equal(ts["HAADF"].angles, a)  # from the sibling .tlt
    np.testing.assert_array_equal(ts["Au"].angles, [-21, 1, 21])  # per-signal entry
    assert ts.pixel_size == pytest.approx(0.4)
    np.testing.assert_array_equal(ts["Au"].data, _stack(3, seed=2))
    shared = read_tilt_series({"HAADF": tmp_path / "HAADF.mrc", "Au": tmp_path / "Au.npy"}, [1, 2, 3], pixel_size=2.0)
    np.testing.assert_array_equal(shared["HAADF"].angles, [1, 2, 3])  # shared beats the file's own
    assert shared.pixel_size == 2.0
    with pytest.raises(ChemtomoError, match=r"no tilt angles for signal Au"):
        read_tilt_series({"Au": tmp_path / "Au.npy"})


def test_read_tilt_series_mismatches(tmp_path):
    write_stack(tmp_path / "HAADF.mrc", _stack(71, 4, 6))
    (tmp_path / "a.tlt").write_text("\n".join(str(x) for x in range(-69, 71, 2)))  # 70 angles
    with pytest.raises(ShapeError, match=r"angles file a\.tlt has 70 angles but HAADF\.mrc has 71 images; give one angle per image"):
        read_tilt_series({"HAADF": tmp_path / "HAADF.mrc"}, tmp_path / "a.tlt")
    np.save(tmp_path / "Fe.npy", _stack(71, 5, 6))
    with pytest.raises(ShapeError, match=r"4x6.*5x6"):
        read_tilt_series({"HAADF": tmp_path / "HAADF.mrc", "Fe": tmp_path / "Fe.npy"}, np.linspace(-70, 70, 71))
    bad = _stack(71, 4, 6)
    bad[3, 1, 1] = np.nan
    np.save(tmp_path / "S.npy", bad)
    with pytest.raises(DataError, match=r"signal S .*1 NaN"):
        read_tilt_series({"S": tmp_path / "S.npy"}, np.linspace(-70, 70, 71))
    with pytest.raises(ChemtomoError, match=r"angles given for \['Fe'\]"):
        read_tilt_series({"HAADF": tmp_path / "HAADF.mrc"}, {"Fe": [1.0]})


def test_read_tilt_series_pixel_size_conflict(tmp_path):
    write_stack(tmp_path / "a.mrc", _stack(2), [0, 1], pixel_size=0.5)
    write_stack(tmp_path / "b.mrc", _stack(2), [0, 1], pixel_size=1.0)
    with pytest.raises(ChemtomoError, match=r"a 0\.5 nm, b 1 nm"):
        read_tilt_series({"a": tmp_path / "a.mrc", "b": tmp_path / "b.mrc"})
    ts = read_tilt_series({"a": tmp_path / "a.mrc", "b": tmp_path / "b.mrc"}, pixel_size=0.7)
    assert ts.pixel_size == 0.7
