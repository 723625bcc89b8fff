"""Instrument and HyperSpy files via RosettaSciIO, returned as plain NumPy.

Formats are mapped to RosettaSciIO plugins by extension in :data:`RSCIIO_PLUGINS`;
each plugin's ``file_reader`` returns a list of signal dictionaries (data, axes
with units, metadata), which this module turns into chemtomo's data model:
image stacks ``p[a, y, u]`` with the pixel size in nm, and spectrum images
``(ny, nx, n_channels)`` with their energy axis in keV.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ..core.errors import FileFormatError

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

_LENGTH_NM = {"nm": 1.0, "µm": 1e3, "um": 1e3, "μm": 1e3, "mm": 1e6, "m": 1e9, "Å": 0.1, "A": 0.1, "pm": 1e-3}
_ENERGY_KEV = {"keV": 1.0, "kev": 1.0, "eV": 1e-3, "ev": 1e-3}
_DEGREES = {"deg", "degree", "degrees", "°"}


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
        If the extension has no plugin or the plugin cannot read the file.
    """
    path = Path(path)
    name = RSCIIO_PLUGINS.get(path.suffix.lower())
    if name is None:
        raise FileFormatError(
            f"no RosettaSciIO reader for {path.suffix!r} ({path}); supported: {', '.join(sorted(RSCIIO_PLUGINS))}"
        )
    try:
        reader = importlib.import_module(f"rsciio.{name}").file_reader
        signals = reader(str(path), **kwargs)
    except Exception as err:  # plugins raise many types; report them as one
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FileFormatError(
            f"cannot read {path} with rsciio.{name} ({type(err).__name__}: {text}); check the file is complete"
        ) from None
    if not signals:
        raise FileFormatError(f"{path} holds no signals; check that the acquisition was saved")
    return signals


def read_instrument(path) -> tuple[np.ndarray, dict]:
    """Read the first image or image stack of an instrument or HyperSpy file.

    Parameters
    ----------
    path : str or Path
        ``.hspy``, ``.hdf5``, ``.bcf``, ``.emd``, ``.dm3``, ``.dm4``, ``.ser``, ``.emi``.

    Returns
    -------
    data : ndarray, 2D (ny, nu) or 3D (n_tilts, ny, nu)
        The first signal without an energy axis.
    metadata : dict
        ``pixel_size`` (nm) if the axes have a length unit; ``angles`` (degrees)
        from ``metadata.Tomography.tilts`` or a navigation axis in degrees;
        ``units`` from ``Signal.quantity``; ``title``; ``stage_tilt`` (degrees)
        as recorded, for information only; ``other_signals`` (titles skipped).

    Raises
    ------
    FileFormatError
        If no signal in the file is an image or image stack.
    """
    path = Path(path)
    signals = read_rsciio(path)
    images = [s for s in signals if _is_image(s)]
    if not images:
        kinds = ", ".join(f"{_title(s)!r} shape {np.shape(s['data'])}" for s in signals)
        raise FileFormatError(
            f"{path} holds no image or image stack (found {kinds}); "
            "extract elemental maps from spectrum images with read_spectrum_image first"
        )
    sig = images[0]
    data = np.asarray(sig["data"])
    axes = sig["axes"]
    meta: dict = {"format": RSCIIO_PLUGINS[path.suffix.lower()], "title": _title(sig)}
    pixel = _length_nm(axes[-1])
    if pixel is not None:
        meta["pixel_size"] = pixel
    tilts = _get(sig["metadata"], "Tomography", "tilts")
    if tilts is not None:
        meta["angles"] = np.asarray(tilts, dtype=np.float64)
    elif data.ndim == 3 and str(axes[0].get("units", "")).strip() in _DEGREES:
        meta["angles"] = _axis_values(axes[0])
    quantity = _get(sig["metadata"], "Signal", "quantity")
    if quantity:
        meta["units"] = str(quantity)
    stage = _get(sig["metadata"], "Acquisition_instrument", "TEM", "Stage", "tilt_alpha")
    if stage is not None:
        meta["stage_tilt"] = float(stage)
    others = [_title(s) for s in signals if s is not sig]
    if others:
        meta["other_signals"] = others
    return data, meta


def read_spectrum_image(path, **kwargs) -> dict:
    """Read the first spectrum image of a file, and its first image if it has one.

    Parameters
    ----------
    path : str or Path
        ``.bcf``, ``.emd``, ``.hspy``, ``.hdf5``, ... (see :data:`RSCIIO_PLUGINS`).
    **kwargs
        Passed to the RosettaSciIO ``file_reader``.

    Returns
    -------
    result : dict
        ``spectrum_image``: ndarray (ny, nx, n_channels), counts as stored;
        ``energy``: ndarray (n_channels,), channel energies in keV;
        ``image``: ndarray (ny', nx') or None, e.g. the HAADF image of a Bruker map;
        ``image_title``: str or None; ``pixel_size``: float in nm or None;
        ``beam_energy``: float in keV or None; ``signal_type``: str; ``title``: str.

    Raises
    ------
    FileFormatError
        If the file holds no spectrum image with an energy axis.
    """
    path = Path(path)
    signals = read_rsciio(path, **kwargs)
    spectra = [s for s in signals if np.ndim(s["data"]) == 3 and _is_energy(s["axes"][-1])]
    if not spectra:
        kinds = ", ".join(f"{_title(s)!r} shape {np.shape(s['data'])}" for s in signals)
        raise FileFormatError(
            f"{path} holds no spectrum image (ny, nx, energy) (found {kinds}); give an EDX or EELS map file"
        )
    si = spectra[0]
    images = [s for s in signals if np.ndim(s["data"]) == 2 and not _is_energy(s["axes"][-1])]
    image = images[0] if images else None
    energy_axis = si["axes"][-1]
    energy = _axis_values(energy_axis) * _ENERGY_KEV[str(energy_axis.get("units", "")).strip()]
    beam = _get(si["metadata"], "Acquisition_instrument", "TEM", "beam_energy")
    if beam is None:
        beam = _get(si["metadata"], "Acquisition_instrument", "SEM", "beam_energy")
    return {
        "spectrum_image": np.asarray(si["data"]),
        "energy": energy,
        "image": None if image is None else np.asarray(image["data"]),
        "image_title": None if image is None else _title(image),
        "pixel_size": _length_nm(si["axes"][-2]),
        "beam_energy": None if beam is None else float(beam),
        "signal_type": str(_get(si["metadata"], "Signal", "signal_type") or ""),
        "title": _title(si),
    }


def read_bruker_spectrum_image(path, *, downsample=1, cutoff_at_kv=None) -> dict:
    """Read a Bruker ``.bcf``: its image (usually HAADF) and its EDS spectrum image.

    Parameters
    ----------
    path : str or Path
        The ``.bcf`` file.
    downsample : int, default 1
        Sum `downsample` x `downsample` pixels of the spectrum image into one.
    cutoff_at_kv : float, optional
        Drop channels above this energy in keV (smaller arrays); all kept if omitted.

    Returns
    -------
    result : dict
        As :func:`read_spectrum_image`; ``image`` is the HAADF (or other STEM
        detector, see ``image_title``) image, ``spectrum_image`` the EDS counts.

    Raises
    ------
    FileFormatError
        If `path` is not a ``.bcf`` or cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() != ".bcf":
        raise FileFormatError(f"{path} is not a Bruker .bcf file; use read_spectrum_image for other formats")
    return read_spectrum_image(path, downsample=int(downsample), cutoff_at_kV=cutoff_at_kv)


def _is_energy(axis: dict) -> bool:
    return str(axis.get("units", "")).strip() in _ENERGY_KEV or str(axis.get("name", "")).lower() == "energy"


def _is_image(sig: dict) -> bool:
    ndim = np.ndim(sig["data"])
    return ndim in (2, 3) and not any(_is_energy(ax) for ax in sig["axes"])


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
