"""Read tilt series: one registry of readers by file extension.

Every reader has one contract, ``reader(path) -> (array, metadata)``, where
``metadata`` may hold ``pixel_size`` (nm), ``angles`` (degrees) and ``units``.
:data:`READERS` maps extensions to readers explicitly; the file name's other
words never matter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError, DataError, FileFormatError, ShapeError, as_angles, check_finite
from . import instrument, mrc, tiff
from .mrc import read_angles


def read_npy(path) -> tuple[np.ndarray, dict]:
    """Read a ``.npy`` array (no pickles); it carries no pixel size or angles."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FileFormatError(f"cannot read {path} as .npy ({text}); save arrays with numpy.save") from None
    return data, {"format": "npy"}


def read_mat(path) -> tuple[np.ndarray, dict]:
    """Read the only variable of a MATLAB file, ``(H, W, views)`` -> ``p[a, y, u]``."""
    from .matlab import read_mat_stack

    return read_mat_stack(path), {"format": "mat"}


#: File extension (lower case) -> reader(path) -> (array, metadata).
READERS = {
    ".mrc": mrc.read_mrc,
    ".mrcs": mrc.read_mrc,
    ".st": mrc.read_mrc,
    ".ali": mrc.read_mrc,
    ".rec": mrc.read_mrc,
    ".tif": tiff.read_tiff,
    ".tiff": tiff.read_tiff,
    ".npy": read_npy,
    ".mat": read_mat,
    **{ext: instrument.read_instrument for ext in instrument.RSCIIO_PLUGINS},
}


def read_stack(path, *, signal=None) -> tuple[np.ndarray, dict]:
    """Read one tilt-series stack ``p[a, y, u]`` from a file.

    Parameters
    ----------
    path : str or Path
        ``.mrc``/``.st``/``.ali``/``.mrcs``/``.rec`` (angles from a sibling
        ``.tlt`` or ``.rawtlt`` of the same stem), ``.tif``/``.tiff``, ``.npy``, ``.mat`` (MATLAB ``(H, W, views)``),
        ``.hspy``/``.hdf5`` (angles from ``metadata.Tomography.tilts`` or a
        navigation axis in degrees), ``.bcf``, ``.emd``, ``.dm3``, ``.dm4``,
        ``.ser``, ``.emi``.
    signal : str or int, optional
        For files that hold several signals (``.emd``, ``.bcf``, ...): the title
        (case-insensitive) or index of the one to read (see
        :func:`chemtomo.io.instrument.list_signals`); default the first image.

    Returns
    -------
    stack : ndarray, shape (n_tilts, ny, nu)
        The images; a single 2D image becomes a stack of one.
    metadata : dict
        ``source`` (the path), ``format``, and where the file knows them
        ``pixel_size`` in nm, ``angles`` in degrees, ``units``; ``notes``, a list
        of sentences on what the reader fixed or could not find (an MRC offset,
        a default pixel size, other signals of the file), for the user.

    Raises
    ------
    FileFormatError
        If the file is missing, empty, of an unknown type or unreadable, or
        `signal` is given for a format that holds one stack.
    ShapeError
        If the array is not 2D or 3D.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise FileFormatError(
            f"cannot read {path}: unknown extension {path.suffix!r}; use one of {', '.join(sorted(READERS))}"
        )
    if not path.exists():
        raise FileFormatError(f"file {path} does not exist; check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise FileFormatError(f"file {path} is empty (0 bytes); the transfer or acquisition did not finish, copy it again")
    if signal is not None and reader is not instrument.read_instrument:
        raise FileFormatError(
            f"{path.name} holds one stack; signal= chooses among the signals of "
            f"{', '.join(sorted(instrument.RSCIIO_PLUGINS))} files"
        )
    data, meta = call_reader(reader, path, **({} if signal is None else {"signal": signal}))
    if data.ndim == 2:
        data = data[None]
    if data.ndim == 3 and data.shape[-1] in (3, 4) and min(data.shape[:2]) > 8 and path.suffix.lower() in (
            ".tif", ".tiff"):
        raise ShapeError(f"{path} is an RGB(A) colour image ({data.shape[0]}x{data.shape[1]} px, {data.shape[2]} "
                         "channels), not measured intensities; export the raw data as a grey-scale stack")
    if data.ndim != 3 or 0 in data.shape:
        raise ShapeError(f"{path} holds an array of shape {data.shape}, not a stack (n_tilts, ny, nu) or an image (ny, nu)")
    meta = dict(meta, source=str(path))
    return data, meta


def call_reader(reader, path: Path, **kwargs) -> tuple[np.ndarray, dict]:
    """``reader(path, **kwargs)`` as a real array and its metadata; a library failure becomes one FileFormatError line."""
    try:
        data, meta = reader(path, **kwargs)
    except ChemtomoError:
        raise
    except Exception as err:  # any library failure becomes one clear line
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FileFormatError(f"cannot read {path} ({type(err).__name__}: {text}); check the file is complete") from None
    return _real_array(np.asarray(data), path), meta


MAX_ABS = 1e30  #: larger values overflow float32 in the first projection: a corrupt or wrong-typed file


def _real_array(data: np.ndarray, path) -> np.ndarray:
    """Refuse arrays that are not real numbers (complex, dates, booleans, records, text) or absurdly large."""
    kind = data.dtype.kind
    what = {"c": "complex numbers", "M": "dates", "m": "time spans", "b": "true/false values",
            "U": "text", "S": "bytes", "O": "Python objects", "V": "records (a structured array)"}.get(kind)
    if what is not None:
        fix = "the magnitude or the real part" if kind == "c" else "a numeric stack"
        raise DataError(f"{path} holds {what}, not image intensities; save {fix} as a real-valued array")
    if data.size and kind == "f":
        big = float(np.nanmax(np.abs(data)))
        if big > MAX_ABS:
            raise DataError(f"{path} holds values up to {big:.3g}, beyond any detector's range; check the file's "
                            "data type and scaling")
    return data


def check_angles(a: np.ndarray, label: str) -> None:
    """Tilt angles of one series: at least two, distinct, and in degrees (five or more within ±1.6 look like radians)."""
    if a.size < 2:
        raise ShapeError(f"{label} has one tilt angle; a tomogram needs a tilt series (two or more images)")
    values, counts = np.unique(np.round(a, 6), return_counts=True)
    if (counts > 1).any():
        raise ChemtomoError(f"{label} repeats the angles {values[counts > 1].tolist()} degrees; give each image its "
                            "own angle (average repeated frames first)")
    if a.size >= 5 and np.abs(a).max() <= 1.6 and np.ptp(a) > 0.1:  # five or more views within ±92 degrees
        raise ChemtomoError(f"{label} spans {a.min():.3g}..{a.max():.3g}: these look like radians; give the angles in "
                            "degrees (multiply by 57.2958)")


def read_tilt_series(signals: Mapping, angles=None, *, pixel_size=None) -> TiltSeries:
    """Read named stacks into one :class:`TiltSeries`.

    Parameters
    ----------
    signals : dict of str to path
        ``{"HAADF": "haadf.mrc", "Au": "au.tif"}``; each file is read with :func:`read_stack`.
    angles : path, sequence, or dict of str to path or sequence, optional
        Tilt angles in degrees. A dict gives them per signal; a path or a
        sequence is shared by all signals. A signal without an entry uses the
        angles its file carries.
    pixel_size : float, optional
        Detector pixel size in nm; taken from the files if omitted, else 1.0.

    Returns
    -------
    TiltSeries
        With ``metadata["files"]`` and ``metadata["angles_source"]`` per signal,
        and ``metadata["notes"]`` per signal whose reader left notes (see :func:`read_stack`).

    Raises
    ------
    ChemtomoError
        If a signal has no angles, or the files disagree on the pixel size.
    ShapeError
        If an angle count differs from the image count, or image sizes differ.
    DataError
        If a stack holds NaN or infinite values.
    FileFormatError
        If a file cannot be read.
    """
    if not signals:
        raise ChemtomoError("read_tilt_series needs at least one signal, e.g. {'HAADF': 'haadf.mrc'}")
    per_signal = angles if isinstance(angles, Mapping) else {}
    unknown = set(per_signal) - set(signals)
    if unknown:
        raise ChemtomoError(f"angles given for {sorted(unknown)} but the signals are {sorted(signals)}; use the same names")
    shared = None if isinstance(angles, Mapping) else angles
    stacks, files, sources, pixels, notes = {}, {}, {}, {}, {}
    for name, path in signals.items():
        path = Path(path)
        data, meta = read_stack(path)
        check_finite(data, f"signal {name} ({path.name})")
        spec = per_signal.get(name, shared)
        if spec is not None:
            a, label = _load_angles(spec)
        elif "angles" in meta:
            a, label = as_angles(meta["angles"], name=f"angles of {path.name}"), f"angles stored with {path.name}"
            label = f"angles file {Path(meta['angles_file']).name}" if "angles_file" in meta else label
        else:
            raise ChemtomoError(
                f"no tilt angles for signal {name}: {path.name} does not carry them; pass angles= (a .tlt file or a list in degrees)"
            )
        if a.size != data.shape[0]:
            raise ShapeError(
                f"{label} has {a.size} angles but {path.name} has {data.shape[0]} images; give one angle per image"
            )
        check_angles(a, f"signal {name} ({label})")
        if stacks:
            first = next(iter(stacks))
            if data.shape[1:] != stacks[first].data.shape[1:]:
                (ny0, nu0), (ny, nu) = stacks[first].data.shape[1:], data.shape[1:]
                raise ShapeError(
                    f"{first} ({files[first]}) has images {ny0}x{nu0} but {name} ({path.name}) has {ny}x{nu} (ny x nu); "
                    "crop or bin them to one size"
                )
        stacks[name] = Signal(data, a, str(meta.get("units", "counts")))
        files[name], sources[name] = path.name, label
        if "pixel_size" in meta:
            pixels[name] = float(meta["pixel_size"])
        if meta.get("notes"):
            notes[name] = list(meta["notes"])
    if pixel_size is None:
        values = sorted(set(pixels.values()))
        if values and not np.allclose(values, values[0], rtol=1e-3):
            listing = ", ".join(f"{n} {p:g} nm" for n, p in pixels.items())
            raise ChemtomoError(f"the files disagree on the pixel size ({listing}); resample them or pass pixel_size= in nm")
        pixel_size = values[0] if values else 1.0
    metadata = {"files": {n: str(Path(p)) for n, p in signals.items()}, "angles_source": sources}
    if notes:
        metadata["notes"] = notes
    return TiltSeries(stacks, pixel_size=float(pixel_size), metadata=metadata)


def _load_angles(spec) -> tuple[np.ndarray, str]:
    if isinstance(spec, (str, os.PathLike)):
        return read_angles(spec), f"angles file {Path(spec).name}"
    return as_angles(spec), "the angles list"
