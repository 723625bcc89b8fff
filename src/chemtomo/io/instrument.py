"""Instrument and HyperSpy files via RosettaSciIO, returned as plain NumPy.

Formats are mapped to RosettaSciIO plugins by extension in :data:`RSCIIO_PLUGINS`;
each plugin's ``file_reader`` returns a list of signal dictionaries (data, axes
with units, metadata), which this module turns into chemtomo's data model:
image stacks ``p[a, y, u]`` with the pixel size in nm, and spectrum images
``(ny, nx, n_channels)`` with their energy axis in keV.

A file may hold several signals (a Velox ``.emd`` with HAADF, EDS and EELS; a
Bruker ``.bcf`` with its HAADF image and its spectrum image). :func:`list_signals`
lists them; ``signal=`` (a title or an index) picks one; without it the first of
the wanted kind is read and the others are named in the returned metadata.

Tilt angles of a HyperSpy or etspy stack come, in this order, from
``metadata.Tomography.tilts`` (a list, or the tilt signal etspy saves there), from
a per-frame ``Acquisition_instrument.TEM.Stage.tilt_alpha`` array, or from a
navigation axis in degrees.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..core.errors import ChemtomoError, FileFormatError

#: File extension -> RosettaSciIO plugin module (``rsciio.<name>``).
RSCIIO_PLUGINS = {
    ".hspy": "hspy",
    ".hdf5": "hspy",
    ".bcf": "bruker",
    ".emd": "emd",
    ".dm3": "digitalmicrograph",
    ".dm4": "digitalmicrograph",
    ".ser": "tia",
    ".emi": "tia",
}

#: RosettaSciIO plugin -> the format's name in messages.
_FORMAT_NAMES = {
    "hspy": "HyperSpy HDF5",
    "bruker": "Bruker .bcf",
    "emd": "EMD (Velox or NCEM)",
    "digitalmicrograph": "DigitalMicrograph",
    "tia": "TIA .ser/.emi",
}

#: Python module -> the pip package that provides it, where the names differ or a use is worth naming.
_PIP_PACKAGES = {
    "rsciio": "rosettasciio",
    "skimage": "scikit-image",
    "PIL": "pillow",
    "yaml": "PyYAML",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
}
_PACKAGE_USES = {"sparse": "Velox .emd spectrum images", "numba": "sparse arrays", "llvmlite": "numba"}

_LENGTH_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "μm": 1e3, "mm": 1e6, "m": 1e9, "Å": 0.1, "A": 0.1, "pm": 1e-3}
_ENERGY_KEV = {"kev": 1.0, "ev": 1e-3}
_DEGREES = {"deg", "degree", "degrees", "°"}

#: Kinds of signal reported by :func:`list_signals`.
IMAGE, SPECTRUM_IMAGE, SPECTRUM, OTHER = "image", "spectrum image", "spectrum", "other"


class SignalInfo(NamedTuple):
    """One signal of a file, as listed by :func:`list_signals`."""

    index: int  #: position in the file, as ``signal=`` takes it
    title: str  #: ``metadata.General.title`` ("" if none)
    shape: tuple  #: array shape
    kind: str  #: "image" (2D image or 3D image stack), "spectrum image", "spectrum" or "other"
    energy_unit: str | None  #: unit of the energy axis as stored ("eV", "keV"), None without one

    def describe(self) -> str:
        """``1 'EDS' spectrum image 64x64x2048 (keV)``."""
        unit = f" ({self.energy_unit})" if self.energy_unit else ""
        return f"{self.index} {self.title!r} {self.kind} {'x'.join(map(str, self.shape))}{unit}"


def read_rsciio(path, **kwargs) -> list[dict]:
    """Read `path` with the RosettaSciIO plugin for its extension.

    Parameters
    ----------
    path : str or Path
        A file whose extension is a key of :data:`RSCIIO_PLUGINS`.
    **kwargs
        Passed to the plugin's ``file_reader`` (e.g. ``downsample`` for Bruker).

    Returns
    -------
    signals : list of dict
        RosettaSciIO signal dictionaries (``data``, ``axes``, ``metadata``).

    Raises
    ------
    FileFormatError
        If the extension has no plugin, or the file cannot be read; the message
        names the cause: a missing Python package (and the ``pip install`` that
        adds it), a missing or unreadable file, an option the plugin does not
        take, or a damaged file.
    """
    path = Path(path)
    name = RSCIIO_PLUGINS.get(path.suffix.lower())
    if name is None:
        raise FileFormatError(
            f"no RosettaSciIO reader for {path.suffix!r} ({path}); supported: {', '.join(sorted(RSCIIO_PLUGINS))}"
        )
    _check_readable(path)
    try:
        reader = importlib.import_module(f"rsciio.{name}").file_reader
        signals = reader(str(path), **kwargs)
    except Exception as err:  # plugins raise many types; name the cause in one line
        raise FileFormatError(_read_failure(err, path, name, kwargs)) from None
    if not signals:
        raise FileFormatError(f"{path} holds no signals; check that the acquisition was saved")
    return signals


def list_signals(path) -> list[SignalInfo]:
    """The signals a file holds, without loading their data.

    Parameters
    ----------
    path : str or Path
        Any file of :data:`RSCIIO_PLUGINS`.

    Returns
    -------
    signals : list of SignalInfo
        ``(index, title, shape, kind, energy_unit)`` per signal, in file order;
        ``index`` and ``title`` are what ``signal=`` of :func:`read_instrument`
        and :func:`read_spectrum_image` take.

    Raises
    ------
    FileFormatError
        If the file cannot be read (see :func:`read_rsciio`).
    """
    return _infos(read_rsciio(path, lazy=True))


def stored_elements(path, signal=None) -> list[str]:
    """The elements recorded with a file's spectrum image (``elements`` of :func:`read_spectrum_image`:
    Bruker Esprit's selection, ``Sample.elements`` or ``Sample.xray_lines``), without loading its data.

    Raises
    ------
    FileFormatError
        As :func:`read_spectrum_image`: no spectrum image, or `signal` names none.
    """
    path = Path(path)
    signals = read_rsciio(path, lazy=True)
    _, chosen, _ = _spectrum_image(signals, signal, path)
    return _elements(signals[chosen.index]["metadata"])


def _spectrum_image(signals: list[dict], signal, path: Path) -> tuple[list[SignalInfo], SignalInfo, list[SignalInfo]]:
    """(infos of `signals`, the spectrum image to read, the other spectrum images when `signal` is None)."""
    infos = _infos(signals)
    if signal is None and not any(i.kind == SPECTRUM_IMAGE for i in infos):
        raise FileFormatError(
            f"{path} holds no spectrum image (ny, nx, energy) (found {_listing(infos)}); give an EDX or EELS map file"
        )
    chosen, others = _choose(infos, signal, SPECTRUM_IMAGE, path, "read_stack")
    return infos, chosen, others


def read_instrument(path, signal=None) -> tuple[np.ndarray, dict]:
    """Read an image or image stack of an instrument or HyperSpy file.

    Parameters
    ----------
    path : str or Path
        ``.hspy``, ``.hdf5``, ``.bcf``, ``.emd``, ``.dm3``, ``.dm4``, ``.ser``, ``.emi``.
    signal : str or int, optional
        The signal to read: its title (case-insensitive) or its index in the file
        (see :func:`list_signals`; a string of digits counts as an index when no
        title matches it). Default: the first image or image stack.

    Returns
    -------
    data : ndarray, 2D (ny, nu) or 3D (n_tilts, ny, nu)
        The chosen signal.
    metadata : dict
        ``format``, ``title``, ``signal_index``; ``pixel_size`` (nm) if the axes
        have a length unit; ``angles`` (degrees) and ``angles_source`` from
        ``metadata.Tomography.tilts`` (a list, or etspy's tilt signal), else a
        per-frame ``Acquisition_instrument.TEM.Stage.tilt_alpha`` array, else a
        navigation axis in degrees; ``units`` from ``Signal.quantity``;
        ``stage_tilt`` (degrees, a float or one per frame) for information;
        ``other_signals`` (titles of the other signals); ``other_candidates``
        (``index``, ``title``, ``shape``, ``kind`` of the other images, when
        several were candidates and `signal` was not given); ``notes`` (sentences
        on what was ignored or chosen, for the user).

    Raises
    ------
    FileFormatError
        If no signal in the file is an image or image stack, or `signal` names
        none of its signals or one that is not an image.
    """
    path = Path(path)
    signals = read_rsciio(path)
    infos = _infos(signals)
    notes: list[str] = []
    if signal is None and not any(i.kind == IMAGE for i in infos):
        raise FileFormatError(
            f"{path} holds no image or image stack (found {_listing(infos)}); "
            "extract elemental maps from spectrum images with read_spectrum_image first"
        )
    chosen, others = _choose(infos, signal, IMAGE, path, "read_spectrum_image")
    sig = signals[chosen.index]
    data = np.asarray(sig["data"])
    axes = sig["axes"]
    meta: dict = {"format": RSCIIO_PLUGINS[path.suffix.lower()], "title": chosen.title, "signal_index": chosen.index}
    pixel = _length_nm(axes[-1])
    if pixel is not None:
        meta["pixel_size"] = pixel
    meta.update(_tilt_angles(sig, data.shape[0] if data.ndim == 3 else 1, notes))
    quantity = _get(sig["metadata"], "Signal", "quantity")
    if quantity:
        meta["units"] = str(quantity)
    rest = [i.title for i in infos if i.index != chosen.index]
    if rest:
        meta["other_signals"] = rest
    if others:
        meta["other_candidates"] = [_as_dict(i) for i in others]
        notes.append(_several_note(path, chosen, others, "images"))
    if notes:
        meta["notes"] = notes
    return data, meta


def read_spectrum_image(path, signal=None, **kwargs) -> dict:
    """Read a spectrum image of a file, and its first image if it has one.

    Parameters
    ----------
    path : str or Path
        ``.bcf``, ``.emd``, ``.hspy``, ``.hdf5``, ... (see :data:`RSCIIO_PLUGINS`).
    signal : str or int, optional
        The spectrum image to read: its title (case-insensitive, e.g. ``"EELS"``)
        or its index in the file (see :func:`list_signals`). Default: the first.
    **kwargs
        Passed to the RosettaSciIO ``file_reader``.

    Returns
    -------
    result : dict
        ``spectrum_image``: ndarray (ny, nx, n_channels), counts as stored;
        ``energy``: ndarray (n_channels,), channel energies in keV (an axis in
        eV is converted); ``image``: ndarray (ny', nx') or None, e.g. the HAADF
        image of a Bruker map; ``image_title``: str or None; ``pixel_size``:
        float in nm or None; ``beam_energy``: float in keV or None;
        ``signal_type``: str; ``title``: str; ``elements``: list of str, the
        elements recorded with the map (Bruker Esprit's selection,
        ``metadata.Sample.elements`` or the elements of ``xray_lines``; empty if
        none); ``signal_index``: int; ``other_candidates``: list of dict
        (``index``, ``title``, ``shape``, ``kind``) of the other spectrum images
        when `signal` was not given; ``notes``: list of str for the user.

    Raises
    ------
    FileFormatError
        If the file holds no spectrum image with an energy axis, or `signal`
        names none of its signals or one that is not a spectrum image.
    """
    path = Path(path)
    signals = read_rsciio(path, **kwargs)
    infos, chosen, others = _spectrum_image(signals, signal, path)
    si = signals[chosen.index]
    images = [i for i in infos if i.kind == IMAGE and len(i.shape) == 2]
    image = signals[images[0].index] if images else None
    energy_axis = si["axes"][-1]
    unit = str(energy_axis.get("units", "")).strip()
    factor = _ENERGY_KEV.get(unit.lower())
    if factor is None:
        raise FileFormatError(
            f"the energy axis of {chosen.describe()} in {path} is in {unit!r}, not eV or keV; "
            "set its units (e.g. with HyperSpy) and save the file again"
        )
    energy = _axis_values(energy_axis) * factor
    beam = _get(si["metadata"], "Acquisition_instrument", "TEM", "beam_energy")
    if beam is None:
        beam = _get(si["metadata"], "Acquisition_instrument", "SEM", "beam_energy")
    notes = [_several_note(path, chosen, others, "spectrum images")] if others else []
    return {
        "spectrum_image": np.asarray(si["data"]),
        "energy": energy,
        "image": None if image is None else np.asarray(image["data"]),
        "image_title": None if image is None else images[0].title,
        "pixel_size": _length_nm(si["axes"][-2]),
        "beam_energy": None if beam is None else float(beam),
        "signal_type": str(_get(si["metadata"], "Signal", "signal_type") or ""),
        "title": chosen.title,
        "elements": _elements(si["metadata"]),
        "signal_index": chosen.index,
        "other_candidates": [_as_dict(i) for i in others],
        "notes": notes,
    }


def read_bruker_spectrum_image(path, *, downsample=1, cutoff_at_kv=None, signal=None) -> dict:
    """Read a Bruker ``.bcf``: its image (usually HAADF) and its EDS spectrum image.

    Parameters
    ----------
    path : str or Path
        The ``.bcf`` file.
    downsample : int, default 1
        Sum `downsample` x `downsample` pixels of the spectrum image into one.
    cutoff_at_kv : float, optional
        Drop channels above this energy in keV (smaller arrays); all kept if omitted.
    signal : str or int, optional
        As in :func:`read_spectrum_image`.

    Returns
    -------
    result : dict
        As :func:`read_spectrum_image`; ``image`` is the HAADF (or other STEM
        detector, see ``image_title``) image, ``spectrum_image`` the EDS counts,
        ``elements`` the elements selected in Esprit.

    Raises
    ------
    FileFormatError
        If `path` is not a ``.bcf`` or cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() != ".bcf":
        raise FileFormatError(f"{path} is not a Bruker .bcf file; use read_spectrum_image for other formats")
    return read_spectrum_image(path, signal, downsample=int(downsample), cutoff_at_kV=cutoff_at_kv)


def _check_readable(path: Path) -> None:
    """A missing, empty or unreadable file gets its own message before any plugin sees it."""
    if not path.exists():
        raise FileFormatError(f"file {path} does not exist; check the path")
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not a file; give the data file inside it")
    if path.stat().st_size == 0:
        raise FileFormatError(
            f"file {path} is empty (0 bytes); the transfer or acquisition did not finish, copy it again"
        )
    if not os.access(path, os.R_OK):
        raise FileFormatError(f"cannot open {path}: no permission to read it; change its permissions or copy it")


def _read_failure(err: Exception, path: Path, plugin: str, kwargs: dict) -> str:
    """One line naming why rsciio.`plugin` could not read `path`."""
    text = _one_line(err)
    if isinstance(err, ImportError):
        module = _missing_module(err)
        missing = module is not None and (isinstance(err, ModuleNotFoundError) or "No module named" in str(err))
        if not missing:  # "cannot import name ...": a package too old or too new
            package = _PIP_PACKAGES.get(module, module) if module else "rosettasciio"
            return (
                f"cannot read {path}: rsciio.{plugin} failed to import a package ({type(err).__name__}: {text}); "
                f"a package is missing or of an incompatible version: pip install --upgrade {package}"
            )
        package = _PIP_PACKAGES.get(module, module)
        use = f" for {_PACKAGE_USES[module]}" if module in _PACKAGE_USES else ""
        return (
            f"cannot read {path}: the Python package {package!r} is not installed (rsciio.{plugin} needs it{use}); "
            f"install it with: pip install {package}"
        )
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return f"cannot open {path} ({type(err).__name__}: {text}); check the path and that you may read the file"
    if isinstance(err, MemoryError):
        size = path.stat().st_size / 1e9
        return (
            f"not enough memory to read {path} ({size:.2g} GB on disk); free memory, or for a Bruker .bcf "
            "read fewer pixels (downsample) or channels (cutoff_at_kV)"
        )
    if isinstance(err, TypeError) and "keyword argument" in text:
        return f"cannot read {path}: rsciio.{plugin} does not take the option(s) {sorted(kwargs)} ({text})"
    return (
        f"cannot read {path} with rsciio.{plugin} ({type(err).__name__}: {text}); the file looks damaged or "
        f"truncated, or is not a {_FORMAT_NAMES.get(plugin, plugin)} file: copy it again from the acquisition computer"
    )


def _missing_module(err: ImportError) -> str | None:
    """The top-level module an ImportError is about, from its ``name`` or its quoted message."""
    name = getattr(err, "name", None)
    if not name:
        found = re.search(r"['\"]([A-Za-z_][\w.]*)['\"]", str(err))
        name = found.group(1) if found else None
    return name.split(".")[0] if name else None


def _infos(signals: list[dict]) -> list[SignalInfo]:
    out = []
    for index, sig in enumerate(signals):
        shape = tuple(int(n) for n in np.shape(sig["data"]))
        axes = sig.get("axes") or []
        energy = [ax for ax in axes if _is_energy(ax)]
        last = bool(axes) and _is_energy(axes[-1])
        if not energy:
            kind = IMAGE if len(shape) in (2, 3) else OTHER
        elif last and len(shape) == 3:
            kind = SPECTRUM_IMAGE
        elif last and len(shape) in (1, 2):
            kind = SPECTRUM
        else:
            kind = OTHER
        unit = (str(energy[-1].get("units", "") or "").strip() or None) if energy else None
        out.append(SignalInfo(index, _title(sig), shape, kind, unit))
    return out


def _choose(infos: list[SignalInfo], signal, kind: str, path: Path, other_reader: str):
    """The signal to read and, when `signal` is None, the other candidates of `kind`."""
    if signal is None:
        candidates = [i for i in infos if i.kind == kind]
        return candidates[0], candidates[1:]
    chosen = _match(infos, signal, kind, path)
    if chosen.kind != kind:
        hint = f"read it with {other_reader}" if chosen.kind in (IMAGE, SPECTRUM_IMAGE) else "choose another"
        raise FileFormatError(
            f"signal {chosen.describe()} of {path} is not a{'n' if kind[0] in 'aeiou' else ''} {kind}; {hint} "
            f"(the file holds {_listing(infos)})"
        )
    return chosen, []


def _match(infos: list[SignalInfo], signal, kind: str, path: Path) -> SignalInfo:
    """The signal of `infos` whose title (case-insensitive) or index is `signal`."""
    if isinstance(signal, bool) or not isinstance(signal, (str, int, np.integer)):
        raise ChemtomoError(f"signal= takes a title or an index, got {signal!r}")
    if isinstance(signal, str):
        key = signal.strip().casefold()
        titled = [i for i in infos if i.title.strip().casefold() == key]
        if titled:
            return next((i for i in titled if i.kind == kind), titled[0])
        if not re.fullmatch(r"[+-]?\d+", key):
            raise FileFormatError(
                f"{path} holds no signal titled {signal!r}; it holds {_listing(infos)}: give signal= one of these "
                "titles or indices"
            )
        signal = int(key)
    if not 0 <= int(signal) < len(infos):
        raise FileFormatError(
            f"{path} has no signal {int(signal)}: it holds {len(infos)} ({_listing(infos)}); give signal= one of "
            "these indices or titles"
        )
    return infos[int(signal)]


def _listing(infos: list[SignalInfo]) -> str:
    return ", ".join(i.describe() for i in infos)


def _as_dict(info: SignalInfo) -> dict:
    return {"index": info.index, "title": info.title, "shape": info.shape, "kind": info.kind}


def _several_note(path: Path, chosen: SignalInfo, others: list[SignalInfo], what: str) -> str:
    rest = ", ".join(f"{i.index} {i.title!r}" for i in others)
    return (
        f"{path.name} holds {len(others) + 1} {what}: read the first, {chosen.index} {chosen.title!r}; "
        f"the others ({rest}) are read with signal= their title or index"
    )


def _tilt_angles(sig: dict, n_frames: int, notes: list[str]) -> dict:
    """``angles``, ``angles_source`` and ``stage_tilt`` of one signal (module notes give the order)."""
    md = sig.get("metadata") or {}
    out: dict = {}
    tomo = _get(md, "Tomography") or {}
    tilts, source = None, None
    if isinstance(tomo, dict) and tomo.get("tilts") is not None:
        tilts, source = tomo["tilts"], "metadata.Tomography.tilts"
    elif isinstance(tomo, dict) and isinstance(tomo.get("_sig_tilts"), dict):  # etspy >= 0.8 saves a TomoTilts signal
        tilts, source = tomo["_sig_tilts"].get("data"), "metadata.Tomography.tilts (etspy tilt signal)"
    if isinstance(tilts, dict):  # a signal dictionary
        tilts = tilts.get("data")
    if tilts is not None:
        values = np.asarray(tilts, dtype=np.float64).ravel()
        if n_frames > 1 and values.size == n_frames and not np.any(values):
            notes.append(f"{source} are all 0 (etspy's placeholder when no angles were given); ignored them")
        else:
            out["angles"], out["angles_source"] = values, source
    stage = _get(md, "Acquisition_instrument", "TEM", "Stage", "tilt_alpha")
    if stage is not None:
        values = np.asarray(stage, dtype=np.float64).ravel()
        if values.size == 1:
            out["stage_tilt"] = float(values[0])
        elif values.size:
            out["stage_tilt"] = values  # as recorded; the angles too when nothing else gives them (below)
        if values.size > 1 and "angles" not in out:
            if values.size != n_frames:
                notes.append(
                    f"the stage tilt_alpha holds {values.size} values for {n_frames} images; not used as angles"
                )
            elif np.ptp(values) == 0:
                notes.append(f"the stage tilt_alpha is {values[0]:g} degrees for every image; not used as angles")
            else:
                out["angles"] = values
                out["angles_source"] = "Acquisition_instrument.TEM.Stage.tilt_alpha (one per image)"
    axes = sig.get("axes") or []
    if "angles" not in out and n_frames > 1 and axes and _unit(axes[0]) in _DEGREES:
        nav = axes[0]
        name = str(nav.get("name") or "")
        placeholder = (
            name.lower() == "projections" and nav.get("axis") is None
            and float(nav.get("offset", 0.0)) == 0.0 and float(nav.get("scale", 1.0)) == 1.0
        )
        if placeholder:
            notes.append(
                f"the navigation axis {name!r} runs 0, 1, 2, ... degrees: etspy's placeholder, not measured "
                "angles; ignored it, give the angles"
            )
        else:
            out["angles"] = _axis_values(nav)
            out["angles_source"] = f"navigation axis {name!r}" if name else "navigation axis"
    return out


def _elements(md: dict) -> list[str]:
    """``Sample.elements``, else the elements of ``Sample.xray_lines``, in stored order without repeats."""
    sample = _get(md, "Sample") or {}
    if not isinstance(sample, dict):
        return []
    names = [str(e) for e in _strings(sample.get("elements"))]
    if not names:
        names = [str(line).split("_")[0] for line in _strings(sample.get("xray_lines"))]
    out: list[str] = []
    for e in names:
        e = e.strip()
        if e and e not in out:
            out.append(e)
    return out


def _strings(value) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    return [v.decode() if isinstance(v, bytes) else v for v in np.atleast_1d(np.asarray(value, dtype=object)).tolist()]


def _unit(axis: dict) -> str:
    return str(axis.get("units", "") or "").strip().lower()


def _one_line(err) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _is_energy(axis: dict) -> bool:
    return _unit(axis) in _ENERGY_KEV or str(axis.get("name", "")).lower() == "energy"


def _length_nm(axis: dict) -> float | None:
    factor = _LENGTH_NM.get(str(axis.get("units", "")).strip())
    scale = axis.get("scale")
    if factor is None or scale is None or not np.isfinite(scale) or scale <= 0:
        return None
    return float(scale) * factor


def _axis_values(axis: dict) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=np.float64)
    size = int(axis["size"])
    return float(axis.get("offset", 0.0)) + float(axis.get("scale", 1.0)) * np.arange(size, dtype=np.float64)


def _title(sig: dict) -> str:
    return str(_get(sig.get("metadata", {}), "General", "title") or "")


def _get(tree, *keys):
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree
