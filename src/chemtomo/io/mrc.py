"""MRC stacks and volumes, with IMOD ``.tlt`` / ``.rawtlt`` angle files.

MRC stores ``data[section, row, column]``; chemtomo keeps that order as is, so a
tilt series is ``p[a, y, u]`` (one section per tilt) and a volume ``v[y, z, x]``
has its sections along y, as IMOD's unrotated tomograms do. Pixel sizes in the
header are in Angstrom; chemtomo reports them in nm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import FileFormatError, as_angles

#: Angle files looked for next to an MRC stack, in this order.
ANGLE_SUFFIXES = (".tlt", ".rawtlt")


def read_angles(path) -> np.ndarray:
    """Read tilt angles from a text file, one angle in degrees per line.

    Parameters
    ----------
    path : str or Path
        IMOD ``.tlt`` / ``.rawtlt`` or any text file; blank lines and text
        after ``#`` are ignored.

    Returns
    -------
    angles : ndarray of float64, shape (n_tilts,)
        Tilt angles in degrees, in file order.

    Raises
    ------
    FileFormatError
        If the file is missing, holds no angles, or a line is not one number.
    ChemtomoError
        If an angle is outside -360..360 degrees.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"angles file {path} does not exist; give a text file with one tilt angle in degrees per line")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as err:
        raise FileFormatError(f"cannot read angles file {path} as text ({_one_line(err)}); give a plain text file") from None
    angles = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        tokens = line.split("#", 1)[0].split()
        if not tokens:
            continue
        if len(tokens) > 1:
            raise FileFormatError(
                f"angles file {path} line {lineno} has {len(tokens)} values {line.strip()!r}; put one angle in degrees per line"
            )
        try:
            angles.append(float(tokens[0]))
        except ValueError:
            raise FileFormatError(
                f"angles file {path} line {lineno}: cannot read {tokens[0]!r} as an angle; put one number in degrees per line"
            ) from None
    if not angles:
        raise FileFormatError(f"angles file {path} holds no angles; put one tilt angle in degrees per line")
    return as_angles(angles, name=f"angles file {path}")


def write_angles(path, angles) -> None:
    """Write `angles` (degrees) to `path`, one per line, exactly round-trippable."""
    text = "".join(f"{float(a)!r}\n" for a in as_angles(angles))
    Path(path).write_text(text, encoding="utf-8")


def sibling_angles(path) -> Path | None:
    """The ``.tlt`` or ``.rawtlt`` file with the same stem as `path`, if any."""
    path = Path(path)
    for suffix in ANGLE_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_mrc(path) -> tuple[np.ndarray, dict]:
    """Read an MRC stack or volume (``.mrc``, ``.st``, ``.ali``, ``.mrcs``, ``.rec``).

    Parameters
    ----------
    path : str or Path
        The MRC file.

    Returns
    -------
    data : ndarray
        The array in file order (sections first); a 2D image stays 2D.
    metadata : dict
        ``pixel_size`` in nm if the header sets one, ``angles`` in degrees from
        a sibling ``.tlt`` / ``.rawtlt`` of the same stem, ``angles_file``.

    Raises
    ------
    FileFormatError
        If the file is not valid MRC.
    """
    import mrcfile

    path = Path(path)
    try:
        with mrcfile.open(path, mode="r", permissive=True) as mrc:
            if mrc.data is None:
                raise ValueError("no data block")
            data = np.array(mrc.data)
            voxel = float(mrc.voxel_size.x)
    except (OSError, ValueError, EOFError) as err:
        raise FileFormatError(f"cannot read {path} as MRC ({_one_line(err)}); check that the file is complete MRC") from None
    meta: dict = {"format": "mrc"}
    if voxel > 0:
        meta["pixel_size"] = voxel / 10.0
    tlt = sibling_angles(path)
    if tlt is not None:
        meta["angles"] = read_angles(tlt)
        meta["angles_file"] = str(tlt)
    return data, meta


def write_mrc(path, data, *, voxel_size=1.0, stack=False) -> None:
    """Write `data` as float32 MRC to `path` (no atomicity; see ``write.atomic_write``).

    Parameters
    ----------
    path : str or Path
        Destination; overwritten.
    data : array, 2D or 3D
        Written in array order: ``mrcfile.open(path).data`` reads it back.
    voxel_size : float, default 1.0
        Pixel or voxel edge in nm; stored in the header in Angstrom.
    stack : bool, default False
        Mark the file as an image stack (space group 0) rather than a volume.
    """
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        if stack:
            mrc.set_image_stack()
        mrc.voxel_size = 10.0 * float(voxel_size)


def _one_line(err) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
