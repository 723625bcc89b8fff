"""Error types and boundary validators.

Every error a user can cause is a :class:`ChemtomoError` with a one-line
message: what is wrong, what arrived, what to do. The CLI prints that line and
exits with status 2.
"""

from __future__ import annotations

import numpy as np


class ChemtomoError(ValueError):
    """A problem with the user's input, described in one line."""


class ShapeError(ChemtomoError):
    """Arrays whose shapes do not fit together."""


class DataError(ChemtomoError):
    """Values that a method cannot use (NaN, infinite, negative counts)."""


class FileFormatError(ChemtomoError):
    """A file that is missing, empty or unreadable."""


def as_angles(angles, *, name: str = "angles") -> np.ndarray:
    """Validate tilt angles in degrees and return them as a float64 vector."""
    a = np.atleast_1d(np.asarray(angles, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ChemtomoError(f"{name} must be a non-empty list of tilt angles in degrees, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ChemtomoError(f"{name} contains NaN or infinite values; give every tilt angle in degrees")
    if np.max(np.abs(a)) > 360:
        raise ChemtomoError(
            f"{name} contains {np.max(np.abs(a)):g}, outside -360..360; angles are in degrees, not radians or indices"
        )
    return a


def check_finite(array, name: str) -> None:
    """Raise :class:`DataError` if `array` holds NaN or infinite values."""
    bad = ~_isfinite(array)
    n = int(bad.sum())
    if n:
        raise DataError(f"{name} contains {n} NaN or infinite values; replace or mask them before reconstructing")


def check_positive(value, name: str, unit: str | None = None) -> float:
    """`value` as a float, which must be finite and > 0; `unit` (e.g. ``"nm"``) goes into the message."""
    where = f" in {unit}" if unit else ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ChemtomoError(f"{name} must be a number{where}, got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ChemtomoError(f"{name} must be a positive number{where}, got {value!r}")
    return v


def check_counts(array, name: str) -> None:
    """Raise :class:`DataError` unless `array` is finite and non-negative (Poisson counts)."""
    check_finite(array, name)
    n = int((array < 0).sum())
    if n:
        raise DataError(
            f"{name} has {n} negative values but this method models Poisson counts; "
            "give raw counts, or use a least-squares method such as sirt or cgls"
        )


def _isfinite(array):
    if isinstance(array, np.ndarray):
        return np.isfinite(array)
    import torch

    return torch.isfinite(array)
