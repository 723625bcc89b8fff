"""MRC stacks and volumes, with IMOD ``.tlt`` / ``.rawtlt`` angle files.

MRC stores ``data[section, row, column]``; chemtomo keeps that order as is, so a
tilt series is ``p[a, y, u]`` (one section per tilt) and a volume ``v[y, z, x]``
has its sections along y, as IMOD's unrotated tomograms do. Pixel sizes in the
header are in Angstrom; chemtomo reports them in nm, and takes neither 0 nor
exactly 1 Angstrom (what writers put there when they know none) as a pixel size.
Raw int16 stacks stored with a -32768 offset are shifted back (:func:`int16_offset`);
``metadata["notes"]`` says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import FileFormatError, as_angles

#: Angle files looked for next to an MRC stack, in this order.
ANGLE_SUFFIXES = (".tlt", ".rawtlt")

#: Pixel size (Angstrom) that MRC writers put in the header when they know none; not a calibration.
DEFAULT_VOXEL_A = 1.0

#: Start of the header label :func:`write_mrc` writes: its pixel size is a calibration even when it is 1 Angstrom.
LABEL = "chemtomo pixel size"

#: Offset of unsigned 16-bit counts stored as int16 (raw detector convention), and the minimum below which
#: mostly negative int16 data are taken as stored with it (see :func:`int16_offset`).
INT16_OFFSET, OFFSET_MIN = 32768, -16384


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


def int16_offset(data) -> int:
    """32768 if `data` look like unsigned counts stored as int16 with a -32768 offset, else 0.

    The rule: the data are int16, more than half of the values are negative
    and the minimum lies in the lowest quarter of the int16 range (below
    -16384). Counts are never negative, and signed data (background-subtracted
    or centred images) stay near zero, so only shifted counts pile up near
    -32768. Adding 32768 (in a wider type) gives the counts 0..65535 back; for
    data scaled to the full int16 range it only adds a constant.

    Examples
    --------
    >>> counts = np.array([[0, 5, 40000]], dtype=np.int32)
    >>> int16_offset((counts - 32768).astype(np.int16))
    32768
    >>> int16_offset(np.array([[-3, -1, 2]], dtype=np.int16))
    0
    """
    data = np.asarray(data)
    if data.dtype.kind != "i" or data.dtype.itemsize != 2 or data.size == 0:  # int16 of either byte order
        return 0
    negative = np.count_nonzero(data < 0)
    if 2 * negative > data.size and int(data.min()) < OFFSET_MIN:
        return INT16_OFFSET
    return 0


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
        ``pixel_size`` in nm if the header sets a real one (not the default 0 or
        exactly 1 Angstrom, unless :func:`write_mrc` wrote it), ``angles`` in degrees from a sibling ``.tlt`` /
        ``.rawtlt`` of the same stem, ``angles_file``; ``offset_corrected``
        (32768) if int16 data stored with a -32768 offset were shifted back
        (see :func:`int16_offset`); ``notes``, sentences on each such fix or
        missing calibration, for the user.

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
            labels = [bytes(b) for b in mrc.header.label[: max(0, min(int(mrc.header.nlabl), 10))]]
    except (OSError, ValueError, EOFError) as err:
        raise FileFormatError(f"cannot read {path} as MRC ({_one_line(err)}); check that the file is complete MRC") from None
    meta: dict = {"format": "mrc"}
    notes: list[str] = []
    unset = not (np.isfinite(voxel) and voxel > 0)
    ours = any(b.startswith(LABEL.encode("ascii")) for b in labels)  # written by write_mrc: calibrated
    if not unset and (ours or abs(voxel - DEFAULT_VOXEL_A) > 1e-6):
        meta["pixel_size"] = voxel / 10.0
    else:
        what = "0 (unset)" if unset else "1 Angstrom, the default that MRC writers put there"
        notes.append(f"the MRC header's pixel size is {what}, not a calibration: give it (--pixel-size, in nm)")
    offset = int16_offset(data)
    if offset:
        negative = float(np.count_nonzero(data < 0)) / data.size
        low = int(data.min())
        data = data.astype(np.int32) + offset
        meta["offset_corrected"] = offset
        notes.append(
            f"int16 values stored with a -{offset} offset ({100 * negative:.0f} % negative, minimum {low}): added "
            f"{offset}, values now {int(data.min())}..{int(data.max())} (int32)"
        )
    if notes:
        meta["notes"] = notes
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
        mrc.header.label[0] = f"{LABEL} {float(voxel_size):g} nm".encode("ascii")  # a 1 A pixel here is a real one
        mrc.header.nlabl = 1


def _one_line(err) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
