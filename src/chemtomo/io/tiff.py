"""TIFF stacks and volumes via tifffile.

Pages are images: a multi-page TIFF is a stack ``p[a, y, u]`` or a volume
``v[y, z, x]`` in page order. The pixel size is taken from ImageJ metadata
(``unit`` plus the X resolution) or from the TIFF resolution tags when the
resolution unit is cm (inch resolutions are print settings and are ignored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import FileFormatError

#: Length units that may appear in ImageJ metadata, in nm.
_UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "um": 1e3, "µm": 1e3, "\\u00B5m": 1e3, "micron": 1e3,
            "mm": 1e6, "a": 0.1, "å": 0.1, "angstrom": 0.1, "pm": 1e-3, "m": 1e9}


def read_tiff(path) -> tuple[np.ndarray, dict]:
    """Read a TIFF image or multi-page stack.

    Parameters
    ----------
    path : str or Path
        ``.tif`` or ``.tiff`` file.

    Returns
    -------
    data : ndarray
        The first image series; 2D for a single page, pages first otherwise.
    metadata : dict
        ``pixel_size`` in nm when the file records a physical pixel size.

    Raises
    ------
    FileFormatError
        If the file is not a readable TIFF.
    """
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            pixel = _pixel_size_nm(tif)
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FileFormatError(f"cannot read {path} as TIFF ({text}); check that the file is a complete TIFF") from None
    meta: dict = {"format": "tiff"}
    if pixel is not None:
        meta["pixel_size"] = pixel
    return data, meta


def write_tiff(path, data, *, voxel_size=1.0) -> None:
    """Write `data` as a float32 ImageJ TIFF with its pixel size in nm (not atomic by itself).

    Parameters
    ----------
    path : str or Path
        Destination; overwritten.
    data : array, 2D or 3D
        Pages along the first axis.
    voxel_size : float, default 1.0
        Pixel or voxel edge in nm; stored as ImageJ ``unit="nm"``, ``spacing`` and
        the X/Y resolution (pixels per nm).
    """
    import tifffile

    data = np.ascontiguousarray(data, dtype=np.float32)
    vs = float(voxel_size)
    axes = "ZYX" if data.ndim == 3 else "YX"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1.0 / vs, 1.0 / vs),
        metadata={"spacing": vs, "unit": "nm", "axes": axes},
    )


def _pixel_size_nm(tif) -> float | None:
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if num == 0:
        return None
    pixel = den / num  # length per pixel in the resolution unit
    ij = tif.imagej_metadata or {}
    unit = str(ij.get("unit", "")).strip().lower()
    if unit in _UNIT_NM:
        return pixel * _UNIT_NM[unit]
    res_unit = page.tags.get("ResolutionUnit")
    if res_unit is not None and int(res_unit.value) == 3:  # centimetre
        return pixel * 1e7
    return None  # inch resolutions are screen/print settings, not a physical pixel size
