"""Which image direction the tilt axis runs along, measured on the data.

chemtomo keeps tilt series as ``p[a, y, u]`` with the tilt axis along the image rows' index y
(IMOD's convention). HyperSpy, etspy and tomviz keep the tilt axis along x (the columns' index),
so their stacks read as they are have the axis the other way. Both are told apart by the one
quantity a tilt cannot change: with the axis along y, every slice perpendicular to the axis keeps
its mass, so each image's profile along y (its sum over u) is the same at every tilt (up to a
shift of the whole image). The profile along u changes with the tilt. :func:`axis_direction`
measures the spread of both profiles across the tilts; their ratio says which way the axis runs and
how clearly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError
from .xcorr import as_stack

#: spread ratio above which the data clearly contradict a stated axis direction
CLEAR = 2.0
#: accepted names of the two directions (chemtomo's y and u are the image's rows and columns)
DIRECTIONS = {"y": "y", "rows": "y", "u": "x", "x": "x", "columns": "x"}


def centred_spread(prof: np.ndarray, n_fft: int | None = None) -> float:
    """Spread across tilts of profiles `prof` (n, bins), each normalised and centred on its centre of mass
    by a Fourier shift over `n_fft` bins (zero padding; default `bins`), so that drift along the profile
    does not count."""
    prof = prof / np.maximum(prof.sum(axis=1, keepdims=True), 1e-30)
    n_bins = prof.shape[1]
    n_fft = n_fft or n_bins
    com = prof @ np.arange(n_bins)
    f = np.fft.rfftfreq(n_fft)
    spec = np.fft.rfft(prof, n=n_fft, axis=1) * np.exp(2j * np.pi * f[None, :] * (com - com.mean())[:, None])
    aligned = np.fft.irfft(spec, n=n_fft, axis=1)
    return float(((aligned - aligned.mean(axis=0)) ** 2).sum())


def _spread(p: np.ndarray, axis: int) -> float:
    """Spread across tilts of the images' profiles along `axis` (1: y, 2: u), drift along them removed."""
    prof = p.sum(axis=3 - axis)  # (n, n_axis)
    return centred_spread(prof, 2 * prof.shape[1])


def axis_direction(stack) -> dict:
    """The image direction the tilt axis runs along, from the tilt invariance of the profile along it.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        A tilt series of one signal (HAADF, or an element map with enough counts); the object in the field
        of view along the direction across the axis; drift may remain.

    Returns
    -------
    dict
        ``axis``: ``"y"`` (along the rows' index: chemtomo's convention) or ``"x"`` (along the columns'
        index: HyperSpy, etspy, tomviz); ``ratio``: the spread of the other direction's profiles over the
        spread of the chosen one (>= 1; below :data:`CLEAR` the data do not say clearly);
        ``clear``: whether ``ratio >= CLEAR``.

    Examples
    --------
    >>> from chemtomo.core.geometry import TiltGeometry
    >>> from chemtomo.core.projector import Projector
    >>> v = np.zeros((24, 32, 32), np.float32); v[4:10, 8:20, 10:14] = 1; v[12:20, 14:18, 6:26] = 2
    >>> p = Projector(TiltGeometry(np.arange(-60, 61, 10), v.shape))(v)
    >>> axis_direction(p)["axis"], axis_direction(p.transpose(0, 2, 1))["axis"]
    ('y', 'x')
    """
    p = np.clip(as_stack(stack).astype(np.float64), 0.0, None)
    if p.shape[0] < 3:
        raise ChemtomoError(f"the tilt-axis direction needs at least 3 tilts, got {p.shape[0]}")
    if not p.sum() > 0:
        raise ChemtomoError("the stack holds no signal; the tilt-axis direction cannot be measured")
    s_y, s_x = _spread(p, 1), _spread(p, 2)
    axis = "y" if s_y <= s_x else "x"
    ratio = max(s_y, s_x) / max(min(s_y, s_x), 1e-30)
    return {"axis": axis, "ratio": float(ratio), "clear": bool(ratio >= CLEAR)}


def parse_direction(text: str) -> str:
    """``"y"`` or ``"x"`` from ``y``/``rows`` or ``x``/``u``/``columns``; ``"auto"`` stays ``"auto"``."""
    key = str(text).strip().lower()
    if key == "auto":
        return "auto"
    if key not in DIRECTIONS:
        raise ChemtomoError(f"tilt axis {text!r} is not known; give y (along the image rows' index, IMOD), "
                            "x (along the columns' index: HyperSpy, etspy, tomviz) or auto (measured on the data)")
    return DIRECTIONS[key]


def orient(series: TiltSeries, axis: str = "auto", *, reference: str | None = None) -> tuple[TiltSeries, dict]:
    """`series` with its tilt axis along y (chemtomo's convention), and what was measured and done.

    Parameters
    ----------
    series : TiltSeries
        Never modified.
    axis : {"auto", "y", "x"}, default "auto"
        The stated direction of the tilt axis in the images; ``"x"`` transposes every image; ``"auto"``
        transposes them when the data clearly say ``x`` (:func:`axis_direction`).
    reference : str, optional
        Signal measured (default HAADF if present, else the signal with the most counts).

    Returns
    -------
    (series, record)
        ``record``: ``stated``, ``measured`` (None if it cannot be measured), ``ratio``, ``clear``, ``transposed`` (bool), ``signal`` and
        ``warning`` (a sentence when a stated direction is clearly contradicted by the data, else None).
    """
    stated = parse_direction(axis)
    if reference is None:
        reference = "HAADF" if "HAADF" in series else max(series.names, key=lambda n: float(
            np.abs(np.asarray(series[n].data, dtype=np.float64)).sum()))
    try:
        found = axis_direction(series[reference].data)
    except ChemtomoError:  # too few tilts or no signal: nothing to measure, the stated direction stands
        found = {"axis": None, "ratio": 1.0, "clear": False}
    transpose = stated == "x" or (stated == "auto" and found["axis"] == "x" and found["clear"])
    warning = None
    if stated != "auto" and found["clear"] and found["axis"] != stated:
        warning = (f"the {reference} images look like a tilt axis along {found['axis']} (profile spread "
                   f"{found['ratio']:.1f}x smaller that way) but the tilt axis was given along {stated}; "
                   f"check --tilt-axis (auto measures it)")
    record = {"stated": stated, "measured": found["axis"], "ratio": round(found["ratio"], 3), "clear": found["clear"],
              "transposed": transpose, "signal": reference, "warning": warning}
    if not transpose:
        return series, record
    signals = {n: Signal(np.ascontiguousarray(np.swapaxes(np.asarray(s.data), 1, 2)), s.angles, s.units)
               for n, s in series.signals.items()}
    return replace(series, signals=signals, metadata=dict(series.metadata, orientation=record)), record


#: handedness conventions: the sign chemtomo's angles get. etspy (ASTRA) and tomviz (its own ray-driven
#: projector: detector coordinate x cos + y sin with the volume's row index running down y) project a point
#: of a low row index to the other side of the detector at a positive tilt, so their volume arrays are
#: chemtomo's z-mirror
HANDEDNESS = {"chemtomo": 1.0, "etspy": -1.0, "astra": -1.0, "tomviz": -1.0}


def with_handedness(series: TiltSeries, handedness: str = "chemtomo") -> TiltSeries:
    """`series` with its angles negated for ``"etspy"`` (or ``"astra"``, ``"tomviz"``): reconstructed, the volume's z index
    then runs as in those programs' volumes. A tilt by -theta is a tilt by theta of the z-mirrored object,
    so the two volumes are each other's mirror along z (``v[:, ::-1, :]``)."""
    key = str(handedness).strip().lower()
    if key not in HANDEDNESS:
        raise ChemtomoError(f"handedness {handedness!r} is not known; give chemtomo, etspy or tomviz (etspy's and "
                            "ASTRA's and tomviz's are the same)")
    if HANDEDNESS[key] == 1.0:
        return series
    signals = {n: Signal(s.data, -np.asarray(s.angles, dtype=np.float64), s.units) for n, s in series.signals.items()}
    return replace(series, signals=signals, metadata=dict(series.metadata, handedness=key))

