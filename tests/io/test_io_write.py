"""Writers: exact round trips, voxel sizes, the sidecar and the atomic guarantee."""

import json

import mrcfile
import numpy as np
import pytest
import tifffile
import zarr

import chemtomo
from chemtomo.core.data import VolumeSet
from chemtomo.core.errors import ChemtomoError, FileFormatError, ShapeError
from chemtomo.io import atomic_write, read_stack, read_volume, read_volume_set, write_stack, write_volume, write_volume_set


def _volume(seed=0):
    return np.random.default_rng(seed).normal(size=(3, 4, 5)).astype(np.float32)


def test_mrc_volume_layout_and_voxel_size(tmp_path):
    v = _volume()
    write_volume(tmp_path / "v.mrc", v, voxel_size=0.5)
    with mrcfile.open(tmp_path / "v.mrc") as m:
        np.testing.assert_array_equal(m.data, v)  # v[y, z, x] stored as is
        assert m.data.dtype == np.float32
        assert (m.voxel_size.x, m.voxel_size.y, m.voxel_size.z) == (5.0, 5.0, 5.0)  # Angstrom
    data, meta = read_volume(tmp_path / "v.mrc")
    np.testing.assert_array_equal(data, v)
    assert meta["voxel_size"] == pytest.approx(0.5)


def test_tiff_and_zarr_volumes(tmp_path):
    v = _volume(1)
    write_volume(tmp_path / "v.tif", v.astype(np.float64), voxel_size=0.25)
    with tifffile.TiffFile(tmp_path / "v.tif") as t:
        np.testing.assert_array_equal(t.asarray(), v)
        assert t.asarray().dtype == np.float32
        assert t.imagej_metadata["unit"] == "nm" and t.imagej_metadata["spacing"] == 0.25
    assert read_volume(tmp_path / "v.tif")[1]["voxel_size"] == pytest.approx(0.25)
    write_volume(tmp_path / "v.zarr", v, voxel_size=0.25)
    group = zarr.open_group(str(tmp_path / "v.zarr"), mode="r")  # an OME-Zarr image (NGFF 0.4)
    np.testing.assert_array_equal(group["0"][...], v)
    assert list(group.attrs["axes"]) == ["y", "z", "x"] and group.attrs["voxel_size_nm"] == 0.25
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [a["name"] for a in ms["axes"]] == ["y", "z", "x"]
    assert {a["unit"] for a in ms["axes"]} == {"nanometer"}
    assert ms["datasets"] == [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [0.25] * 3}]}]
    assert (tmp_path / "v.zarr" / ".zattrs").is_file() and (tmp_path / "v.zarr" / "0" / ".zarray").is_file()
    write_volume(tmp_path / "v.zarr", 2 * v, voxel_size=0.5)  # overwrite a directory store
    np.testing.assert_array_equal(read_volume(tmp_path / "v.zarr")[0], 2 * v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.tif", "v.zarr"]


def test_write_volume_bad_input(tmp_path):
    with pytest.raises(ShapeError, match=r"\(4, 5\)"):
        write_volume(tmp_path / "v.mrc", np.zeros((4, 5)))
    with pytest.raises(ChemtomoError, match=r"'\.h5'"):
        write_volume(tmp_path / "v.h5", _volume())
    with pytest.raises(ChemtomoError, match=r"voxel_size .* got -1"):
        write_volume(tmp_path / "v.mrc", _volume(), voxel_size=-1)
    with pytest.raises(FileFormatError, match="does not exist"):
        write_volume(tmp_path / "no" / "v.mrc", _volume())
    assert list(tmp_path.iterdir()) == []


def test_write_stack_checks(tmp_path):
    with pytest.raises(ShapeError, match=r"angles has 2 entries but the stack has 3 images"):
        write_stack(tmp_path / "s.mrc", np.zeros((3, 2, 2)), [0, 1])
    with pytest.raises(ChemtomoError, match=r"'\.tif'"):
        write_stack(tmp_path / "s.tif", np.zeros((3, 2, 2)))
    write_stack(tmp_path / "one.mrc", np.ones((2, 3)), [10.0])
    stack, meta = read_stack(tmp_path / "one.mrc")
    assert stack.shape == (1, 2, 3) and meta["angles"].tolist() == [10.0]


class Boom(RuntimeError):
    pass


def test_atomic_write_keeps_old_file_on_error(tmp_path, monkeypatch):
    target = tmp_path / "v.mrc"
    old = _volume(2)
    write_volume(target, old, voxel_size=1.0)
    before = target.read_bytes()

    import chemtomo.io.mrc as mrc_mod

    real = mrc_mod.write_mrc

    def half_then_fail(path, data, **kw):
        real(path, data, **kw)  # the temporary exists and is complete ...
        raise Boom("disk full")  # ... then the writer fails

    monkeypatch.setattr(mrc_mod, "write_mrc", half_then_fail)
    with pytest.raises(Boom):
        write_volume(target, _volume(3))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.mrc"]  # no temporary left


def test_atomic_write_directly(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(Boom):
        with atomic_write(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".txt" and not tmp.exists()
            tmp.write_text("new, half")
            raise Boom
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with atomic_write(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_volume_set_roundtrip_and_sidecar(tmp_path):
    prov = {"method": "sirt", "iterations": np.int64(50), "angles": np.arange(-2.0, 3.0), "lam": np.float32(0.5),
            "shape": (3, 4, 5), "bad": float("nan")}
    vs = VolumeSet({"Au": _volume(4), "Ag": _volume(5)}, voxel_size=0.5, provenance=prov)
    out = tmp_path / "new" / "out"
    paths = write_volume_set(vs, out, formats=("mrc", "zarr", "tif"))
    assert [p.name for p in paths] == ["Au.mrc", "Au.zarr", "Au.tif", "Ag.mrc", "Ag.zarr", "Ag.tif", "chemtomo.json"]
    side = json.loads((out / "chemtomo.json").read_text())
    assert side["chemtomo_version"] == chemtomo.__version__
    assert side["names"] == ["Au", "Ag"] and side["shapes"]["Au"] == [3, 4, 5] and side["voxel_size"] == 0.5
    assert side["provenance"] == {"method": "sirt", "iterations": 50, "angles": [-2.0, -1.0, 0.0, 1.0, 2.0],
                                  "lam": 0.5, "shape": [3, 4, 5], "bad": "nan"}
    back = read_volume_set(out)
    assert back.names == ["Au", "Ag"] and back.voxel_size == 0.5
    for name in vs.names:
        np.testing.assert_array_equal(back[name], vs[name])
    assert back.provenance["iterations"] == 50


def test_volume_set_errors(tmp_path):
    vs = VolumeSet({"a/b": _volume()})
    with pytest.raises(ChemtomoError, match=r"'a/b' cannot be a file name"):
        write_volume_set(vs, tmp_path)
    with pytest.raises(ChemtomoError, match=r"unknown volume formats \['vtk'\]"):
        write_volume_set(VolumeSet({"a": _volume()}), tmp_path, formats=("vtk",))
    with pytest.raises(FileFormatError, match="chemtomo.json does not exist"):
        read_volume_set(tmp_path)
    write_volume_set(VolumeSet({"a": _volume()}), tmp_path)
    (tmp_path / "a.mrc").unlink()
    with pytest.raises(FileFormatError, match=r"a\.mrc does not exist"):
        read_volume_set(tmp_path)
