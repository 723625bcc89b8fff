"""Radial and line profiles of element volumes, and the 10-90 % width of an interface."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError


def _arrays(volumes):
    if not volumes:
        raise ChemtomoError("profiles need at least one volume")
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in volumes.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1 or len(next(iter(shapes))) != 3:
        raise ShapeError(f"profiles need 3D volumes of one shape, got {sorted(shapes)}")
    return arrays, shapes.pop()


def radial_profile(volumes: dict, mask, *, bin_width: float = 1.0, voxel_size: float = 1.0):
    """Mean of each volume over spherical shells around the centre of mass of `mask`.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
    mask : bool array (ny, nz, nx)
        The particle; its centre of mass is the centre and the shells run to its
        farthest voxel.
    bin_width : float, default 1.0
        Shell width in voxels.
    voxel_size : float, default 1.0
        Length unit of the returned radii (e.g. nm per voxel).

    Returns
    -------
    radii : ndarray (n,)
        Shell centres in units of `voxel_size`.
    profiles : dict of str to ndarray (n,)
        Mean value per shell (over all voxels of the shell, inside the particle or not).
    """
    arrays, shape = _arrays(volumes)
    m = np.asarray(mask, bool)
    if m.shape != shape:
        raise ShapeError(f"the mask has shape {m.shape} but the volumes have {shape}")
    if not m.any():
        raise ChemtomoError("the mask is empty: no particle to take a radial profile of")
    if not bin_width > 0:
        raise ChemtomoError(f"bin_width must be positive, got {bin_width!r}")
    centre = np.array(ndimage.center_of_mass(m))
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij", sparse=True)
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre)))
    n_bins = int(np.ceil(r[m].max() / bin_width)) + 1
    idx = np.minimum((r / bin_width).astype(int), n_bins).ravel()
    counts = np.bincount(idx, minlength=n_bins + 1)[:n_bins]
    radii = (np.arange(n_bins) + 0.5) * bin_width * voxel_size
    out = {}
    for name, a in arrays.items():
        sums = np.bincount(idx, weights=a.ravel(), minlength=n_bins + 1)[:n_bins]
        out[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return radii, out


def line_profile(volumes: dict, start, end, *, step: float = 0.25, voxel_size: float = 1.0):
    """Values of each volume along the straight line from `start` to `end` (voxel coordinates y, z, x).

    Linear interpolation every `step` voxels. Returns ``(positions, {name: values})``
    with positions from 0 at `start`, in units of `voxel_size`.
    """
    arrays, shape = _arrays(volumes)
    a, b = np.asarray(start, np.float64), np.asarray(end, np.float64)
    if a.shape != (3,) or b.shape != (3,):
        raise ShapeError("start and end are points (y, z, x) in voxel coordinates")
    if np.any(np.minimum(a, b) < 0) or np.any(np.maximum(a, b) > np.array(shape) - 1):
        raise ChemtomoError(f"the line {a.tolist()} -> {b.tolist()} leaves the volume of shape {shape}")
    length = float(np.linalg.norm(b - a))
    if not length > 0:
        raise ChemtomoError("start and end are the same point")
    t = np.linspace(0.0, 1.0, int(np.ceil(length / step)) + 1)
    pts = a[:, None] + (b - a)[:, None] * t[None, :]
    return t * length * voxel_size, {n: ndimage.map_coordinates(v, pts, order=1) for n, v in arrays.items()}


def interface_width(positions, values, *, low: float = 0.1, high: float = 0.9) -> float:
    """Distance between the `low` and `high` crossings of a step, its plateaus taken as 0 and 1.

    The plateaus are the means of the first and last 10 % of the profile; the
    crossings are linearly interpolated (the first ones from the low side).
    Works for rising and falling steps; units of `positions`.

    Raises
    ------
    ChemtomoError
        If the profile has no step (equal plateaus) or never crosses a level.
    """
    x, y = np.asarray(positions, np.float64), np.asarray(values, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 5:
        raise ShapeError("positions and values must be 1D arrays of one length, at least 5 samples")
    k = max(1, x.size // 10)
    y0, y1 = y[:k].mean(), y[-k:].mean()
    if abs(y1 - y0) < 1e-12 * max(abs(y0), abs(y1), 1e-300):
        raise ChemtomoError("the profile has no step (both ends at the same level); no interface to measure")
    f = (y - y0) / (y1 - y0)  # rises from about 0 to about 1

    def crossing(level):
        above = np.flatnonzero(f >= level)
        if above.size == 0 or above[0] == 0:
            raise ChemtomoError(f"the profile does not cross {level:.0%} of its step inside the line; lengthen it")
        i = above[0]
        return x[i - 1] + (level - f[i - 1]) / (f[i] - f[i - 1]) * (x[i] - x[i - 1])

    return float(abs(crossing(high) - crossing(low)))
