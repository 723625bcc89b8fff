"""Write stacks and volumes atomically: MRC, TIFF, Zarr, with a JSON sidecar.

Every writer goes through :func:`atomic_write`: the data are written to a
temporary name in the target folder and moved onto the target only when the
write has finished, so a crash never leaves a half-written file and never
destroys the previous one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..core.data import VolumeSet
from ..core.errors import ChemtomoError, DataError, FileFormatError, ShapeError, as_angles
from . import mrc, tiff

SIDECAR = "chemtomo.json"
AXES = ["y", "z", "x"]


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to `path`; move it onto `path` on success.

    Parameters
    ----------
    path : str or Path
        Final file (or directory, e.g. a Zarr store). Its folder must exist.

    Yields
    ------
    tmp : Path
        A name that does not exist yet, in the same folder, with the same suffix.

    Notes
    -----
    On success the temporary is renamed onto `path` with :func:`os.replace`
    (atomic on one file system); a directory target is swapped in by two
    renames. On any exception the temporary is removed, `path` is left as it
    was and the exception propagates.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileFormatError(f"folder {path.parent} does not exist; create it before writing {path.name}")
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileFormatError(f"the writer for {path} produced no file; nothing was written")
        if tmp.is_dir() and path.exists():
            old = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.old{path.suffix}")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_angles(path, angles) -> Path:
    """Write tilt angles in degrees to a text file (IMOD ``.tlt``), one per line, atomically."""
    path = Path(path)
    with atomic_write(path) as tmp:
        mrc.write_angles(tmp, angles)
    return path


def write_stack(path, data, angles=None, *, pixel_size=1.0) -> Path:
    """Write a tilt series stack as float32 MRC, plus ``<stem>.tlt`` if angles are given.

    Parameters
    ----------
    path : str or Path
        ``.mrc``, ``.st``, ``.ali`` or ``.mrcs`` file.
    data : array, shape (n_tilts, ny, nu) or (ny, nu)
        The images ``p[a, y, u]``.
    angles : sequence of float, optional
        Tilt angles in degrees, one per image; written to ``<stem>.tlt``.
    pixel_size : float, default 1.0
        Detector pixel size in nm (stored in the header in Angstrom).

    Returns
    -------
    path : Path
        The stack written.

    Raises
    ------
    ShapeError
        If `data` is not 2D or 3D, or `angles` does not have one entry per image.
    ChemtomoError
        If the extension is not an MRC one or `pixel_size` is not positive.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mrc", ".st", ".ali", ".mrcs"):
        raise ChemtomoError(f"write_stack writes MRC, but {path.name} has suffix {path.suffix!r}; use .mrc, .st, .ali or .mrcs")
    return _write_stack(path, data, angles, pixel_size, lambda tmp, d: mrc.write_mrc(tmp, d, voxel_size=pixel_size, stack=True))


def _write_stack(path: Path, data, angles, pixel_size, write) -> Path:
    """Check a stack and its angles, write it atomically with ``write(tmp, data)``, then ``<stem>.tlt``."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or 0 in data.shape:
        raise ShapeError(f"a stack must have shape (n_tilts, ny, nu), got {data.shape}")
    _check_size(pixel_size, "pixel_size")
    if angles is not None:
        angles = as_angles(angles)
        if angles.size != data.shape[0]:
            raise ShapeError(f"angles has {angles.size} entries but the stack has {data.shape[0]} images; give one angle per image")
    with atomic_write(path) as tmp:
        write(tmp, data)
    if angles is not None:
        write_angles(path.with_suffix(".tlt"), angles)
    return path


def write_tiff_stack(path, data, angles=None, *, pixel_size=1.0) -> Path:
    """Write a tilt series stack as a float32 ImageJ TIFF, plus ``<stem>.tlt`` if angles are given, atomically.

    Parameters and errors as :func:`write_stack`, for ``.tif`` or ``.tiff`` files
    (pages are images, the pixel size is stored in nm).
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ChemtomoError(f"write_tiff_stack writes TIFF, but {path.name} has suffix {path.suffix!r}; use .tif or .tiff")
    return _write_stack(path, data, angles, pixel_size, lambda tmp, d: tiff.write_tiff(tmp, d, voxel_size=pixel_size))


def write_volume(path, volume, *, voxel_size=1.0) -> Path:
    """Write a volume ``v[y, z, x]`` as float32, format chosen by extension.

    Parameters
    ----------
    path : str or Path
        ``.mrc`` (``mrcfile.open(path).data`` is `volume`; voxel size in the
        header in Angstrom), ``.tif``/``.tiff`` (ImageJ, pages along y, unit nm),
        ``.zarr`` (an OME-Zarr image, NGFF 0.4: the volume at ``"0"``, its scale in nm; attrs
        ``axes=["y", "z", "x"]``, ``voxel_size_nm``), ``.hspy`` (a HyperSpy signal, axes y, z, x in
        nm) or ``.npy``.
    volume : array, shape (ny, nz, nx)
        The volume.
    voxel_size : float, default 1.0
        Voxel edge in nm.

    Returns
    -------
    path : Path

    Raises
    ------
    ShapeError
        If `volume` is not 3D.
    ChemtomoError
        If the extension is not supported or `voxel_size` is not positive.
    """
    path = Path(path)
    writer = VOLUME_WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ChemtomoError(f"cannot write volume {path.name}: unknown extension {path.suffix!r}; use {', '.join(VOLUME_WRITERS)}")
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ShapeError(f"a volume must be 3D v[y, z, x], got shape {volume.shape}")
    _check_size(voxel_size, "voxel_size")
    volume = volume.astype(np.float32, copy=False)
    bad = int(volume.size - np.isfinite(volume).sum())
    if bad:
        raise DataError(f"volume {path.name} has {bad} NaN or infinite values (out of float32 range or a diverged "
                        "method); nothing was written: check the input's scale and the method's weights, or try "
                        "another method")
    with atomic_write(path) as tmp:
        writer(tmp, volume, float(voxel_size))
    return path


def read_volume(path) -> tuple[np.ndarray, dict]:
    """Read a volume written by :func:`write_volume`; metadata holds ``voxel_size`` in nm if known."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise FileFormatError(f"volume {path} does not exist; check the path or rerun the reconstruction")
    if suffix == ".zarr":
        import zarr

        node = zarr.open(str(path), mode="r")
        arr = node["0"] if isinstance(node, zarr.Group) else node  # OME-Zarr image, or a plain array (before 0.x)
        meta = {"voxel_size": float(node.attrs["voxel_size_nm"])} if "voxel_size_nm" in node.attrs else {}
        return np.asarray(arr[...]), meta
    from .read import READERS, call_reader  # same readers as for stacks

    if suffix not in READERS:
        raise FileFormatError(f"cannot read volume {path.name}: unknown extension {path.suffix!r}")
    data, meta = call_reader(READERS[suffix], path)
    if data.ndim != 3 or 0 in data.shape:
        raise ShapeError(f"{path} holds an array of shape {data.shape}, not a volume v[y, z, x]")
    return data, ({"voxel_size": meta["pixel_size"]} if "pixel_size" in meta else {})


def write_volume_set(volume_set: VolumeSet, out_dir, *, formats=("mrc",)) -> list[Path]:
    """Write every volume of a set and a ``chemtomo.json`` sidecar into `out_dir`.

    Parameters
    ----------
    volume_set : VolumeSet
        Volumes ``v[y, z, x]``, their voxel size in nm and provenance.
    out_dir : str or Path
        Created if missing; files ``NAME.<fmt>`` and ``chemtomo.json`` are replaced.
    formats : sequence of str, default ("mrc",)
        Any of "mrc", "tif", "tiff", "zarr", "npy", "hspy".

    Returns
    -------
    paths : list of Path
        The volume files in name-then-format order, then the sidecar.

    Raises
    ------
    ChemtomoError
        If a format is unknown or a name cannot be a file name.
    """
    out_dir = Path(out_dir)
    formats = [formats] if isinstance(formats, str) else list(formats)
    bad = [f for f in formats if "." + str(f).lower().lstrip(".") not in VOLUME_WRITERS]
    if bad or not formats:
        raise ChemtomoError(f"unknown volume formats {bad}; use some of {', '.join(e[1:] for e in VOLUME_WRITERS)}")
    formats = [str(f).lower().lstrip(".") for f in formats]
    for name in volume_set.names:
        if not name or name in (".", "..") or any(c in name for c in '/\\:*?"<>|'):
            raise ChemtomoError(f"volume name {name!r} cannot be a file name; use letters, digits, '_' or '-'")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, files = [], {}
    for name, vol in volume_set.volumes.items():
        files[name] = {}
        for fmt in formats:
            p = write_volume(out_dir / f"{name}.{fmt}", vol, voxel_size=volume_set.voxel_size)
            files[name][fmt] = p.name
            paths.append(p)
    import chemtomo

    sidecar = {
        "chemtomo_version": chemtomo.__version__,
        "names": volume_set.names,
        "shapes": {n: list(np.shape(v)) for n, v in volume_set.volumes.items()},
        "axes": AXES,
        "voxel_size": float(volume_set.voxel_size),
        "voxel_size_units": "nm",
        "files": files,
        "provenance": volume_set.provenance,
    }
    text = json.dumps(to_json(sidecar), indent=2, allow_nan=False)
    with atomic_write(out_dir / SIDECAR) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    paths.append(out_dir / SIDECAR)
    return paths


def read_volume_set(out_dir) -> VolumeSet:
    """Read back a folder written by :func:`write_volume_set` (the sidecar lists the names).

    Raises
    ------
    FileFormatError
        If the sidecar or a volume file is missing or unreadable.
    ShapeError
        If a volume's shape differs from the one the sidecar records.
    """
    out_dir = Path(out_dir)
    side = out_dir / SIDECAR
    if not side.is_file():
        raise FileFormatError(f"{side} does not exist; give a folder written by write_volume_set")
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
        names, files = info["names"], info["files"]
    except (ValueError, KeyError, TypeError) as err:
        raise FileFormatError(f"{side} is not a chemtomo sidecar ({type(err).__name__}: {err}); rewrite the folder") from None
    volumes = {}
    for name in names:
        available = files.get(name, {})
        fmt = next((f for f in ("mrc", "zarr", "npy", "tif", "tiff", "hspy") if f in available), None)
        if fmt is None:
            raise FileFormatError(f"{side} lists no file for volume {name!r}; rewrite the folder")
        vol, _ = read_volume(out_dir / available[fmt])
        expected = tuple(info.get("shapes", {}).get(name, vol.shape))
        if vol.shape != expected:
            raise ShapeError(f"{available[fmt]} has shape {vol.shape} but {SIDECAR} records {expected}; the folder is inconsistent")
        volumes[name] = vol
    return VolumeSet(volumes, voxel_size=float(info.get("voxel_size", 1.0)), provenance=info.get("provenance", {}))


def to_json(obj):
    """Turn numpy arrays and scalars, paths, tuples and sets into plain JSON values.

    Non-finite floats become the strings "nan", "inf", "-inf"; any other object its ``repr``.
    """
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, np.generic):
        return to_json(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf"))
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, complex):
        return {"real": to_json(obj.real), "imag": to_json(obj.imag)}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


def _write_mrc(tmp, volume, voxel_size):
    mrc.write_mrc(tmp, volume, voxel_size=voxel_size)


def _write_tiff(tmp, volume, voxel_size):
    tiff.write_tiff(tmp, volume, voxel_size=voxel_size)


def _volume_name(tmp) -> str:
    """The volume's name from the temporary :func:`atomic_write` gives (``.NAME.<random>.tmp.<ext>``)."""
    return Path(tmp).name.lstrip(".").split(".")[0]


def ome_multiscales(voxel_size: float, name: str = "") -> list[dict]:
    """OME-NGFF 0.4 ``multiscales`` metadata of one volume ``v[y, z, x]`` with cubic voxels (nm), one scale at "0"."""
    return [{"version": "0.4", "name": name,
             "axes": [{"name": a, "type": "space", "unit": "nanometer"} for a in AXES],
             "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [voxel_size] * 3}]}]}]


def _write_zarr(tmp, volume, voxel_size):
    """An OME-Zarr (NGFF 0.4, Zarr format 2) image: the volume at "0", its voxel size as the scale, so napari
    and other OME readers show it at its size; chemtomo's own attrs (``axes``, ``voxel_size_nm``) as well."""
    import zarr

    root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
    arr = root.create_array("0", shape=volume.shape, dtype=volume.dtype,
                            chunks=tuple(min(n, 128) for n in volume.shape),
                            chunk_key_encoding={"name": "v2", "separator": "/"})
    arr[...] = volume
    root.attrs.update({"multiscales": ome_multiscales(voxel_size, _volume_name(tmp)), "axes": AXES,
                       "voxel_size_nm": voxel_size, "units": "nm"})


def _write_hspy(tmp, volume, voxel_size):
    """A HyperSpy signal with axes y, z, x in nm (:meth:`chemtomo.core.data.VolumeSet.to_hyperspy`)."""
    from ..core.data import VolumeSet

    name = _volume_name(tmp)
    VolumeSet({name: volume}, voxel_size=voxel_size).to_hyperspy(name).save(str(tmp), overwrite=True,
                                                                          file_format="HSPY")


def _write_npy(tmp, volume, voxel_size):
    with open(tmp, "wb") as fh:
        np.save(fh, volume)


#: Volume file extension -> writer(tmp_path, float32 volume, voxel_size_nm).
VOLUME_WRITERS = {".mrc": _write_mrc, ".tif": _write_tiff, ".tiff": _write_tiff, ".zarr": _write_zarr, ".npy": _write_npy,
                  ".hspy": _write_hspy}


def _check_size(value, name):
    if not (np.isscalar(value) and np.isfinite(value) and value > 0):
        raise ChemtomoError(f"{name} must be a positive size in nm, got {value!r}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
