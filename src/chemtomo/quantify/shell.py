"""Core-shell geometry: shell thickness over the core's surface, its statistics, coverage and spherical map.

Surfaces are level sets of continuous fields, found to sub-voxel precision:
the core surface where the core field crosses `core_level` (e.g. the core
element's concentration or share at 0.5), the outer surface where the
particle field crosses `particle_level`. Boolean masks are accepted and
smoothed by a Gaussian of 1 voxel first, which puts their 0.5 level on the
mask's boundary.

From each core-surface point (one per boundary voxel, moved onto the level set
by a Newton step) a ray runs along the outward normal (minus the gradient of
the core field) until the particle field drops below its level; the shell
thickness is that distance, interpolated between the samples (step 0.25
voxel). A ray that leaves the volume first gives NaN: the particle is cut by
the border and its thickness there is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError
from .haadf import _volume


@dataclass(frozen=True)
class ShellThickness:
    """Shell thickness over the core's surface.

    Attributes
    ----------
    points : ndarray (n, 3)
        Core-surface points, voxel coordinates (y, z, x).
    normals : ndarray (n, 3)
        Outward unit normals at the points.
    thickness : ndarray (n,)
        Shell thickness along the normal, in units of `voxel_size` (NaN where
        the ray left the volume).
    voxel_size : float
        Length of one voxel (e.g. nm).
    centre : ndarray (3,)
        Centre of mass of the core, voxel coordinates.
    """

    points: np.ndarray
    normals: np.ndarray
    thickness: np.ndarray
    voxel_size: float
    centre: np.ndarray

    def summary(self, threshold: float = 0.0) -> dict:
        """Mean, standard deviation, minimum, 5th percentile and maximum thickness, coverage, thin direction.

        Coverage is the fraction of the core surface (points with a known
        thickness) whose shell is thicker than `threshold` (same units as the
        thickness). ``thin_direction`` is the unit vector (y, z, x) towards the
        thin side: minus the dipole term ``b`` of the least-squares fit
        ``t(n) = a + b . n`` over the surface normals, which uses every point
        and so survives noisy single points (the minimum does not).
        ``asymmetry`` is ``|b| / a``: 0 for a uniform shell.
        """
        t = self.thickness
        ok = np.isfinite(t)
        if not ok.any():
            raise ChemtomoError("no shell thickness is known: every ray left the volume (particle cut by the border)")
        design = np.column_stack([np.ones(int(ok.sum())), self.normals[ok]])
        coef, *_ = np.linalg.lstsq(design, t[ok], rcond=None)
        b = coef[1:]
        thin = -b / max(float(np.linalg.norm(b)), 1e-300)
        return {"mean": float(t[ok].mean()), "std": float(t[ok].std()), "min": float(t[ok].min()),
                "p05": float(np.percentile(t[ok], 5)), "max": float(t[ok].max()),
                "coverage": float((t[ok] > threshold).mean()), "thin_direction": thin.tolist(),
                "asymmetry": float(np.linalg.norm(b) / max(abs(coef[0]), 1e-300)),
                "unknown_fraction": float(1 - ok.mean()), "n_points": int(t.size)}

    def spherical_map(self, n_lat: int = 18, n_lon: int = 36) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean thickness on a latitude-longitude grid around the core's centre.

        Latitude is measured from the y axis (the tilt axis: -90 at -y, +90 at
        +y), longitude in the z-x plane from +x towards +z. Returns
        ``(map[n_lat, n_lon], latitude edges, longitude edges)`` in degrees; NaN
        where no point falls.
        """
        d = self.points - self.centre
        r = np.linalg.norm(d, axis=1)
        lat = np.degrees(np.arcsin(np.clip(d[:, 0] / np.maximum(r, 1e-12), -1, 1)))
        lon = np.degrees(np.arctan2(d[:, 1], d[:, 2]))
        lat_e, lon_e = np.linspace(-90, 90, n_lat + 1), np.linspace(-180, 180, n_lon + 1)
        ok = np.isfinite(self.thickness)
        s, _, _ = np.histogram2d(lat[ok], lon[ok], [lat_e, lon_e], weights=self.thickness[ok])
        c, _, _ = np.histogram2d(lat[ok], lon[ok], [lat_e, lon_e])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / c, np.nan), lat_e, lon_e


def _field(v, name):
    arr = np.asarray(v)
    if arr.dtype == bool:
        return ndimage.gaussian_filter(arr.astype(np.float64), 1.0)
    return _volume(arr, name)


def shell_thickness(core, particle, *, core_level: float = 0.5, particle_level: float = 0.5,
                    voxel_size: float = 1.0, step: float = 0.25) -> ShellThickness:
    """Shell thickness from every point of the core's surface to the particle's outer surface, along the normal.

    Parameters
    ----------
    core : array (ny, nz, nx)
        Core field (e.g. the core element's concentration or share) or a
        boolean core mask.
    particle : array (ny, nz, nx)
        Particle field (e.g. the total concentration) or a boolean mask.
    core_level, particle_level : float, default 0.5
        Levels of the two surfaces (for masks: 0.5).
    voxel_size : float, default 1.0
        Voxel length; the thickness is returned in its units (e.g. nm).
    step : float, default 0.25
        Ray-marching step in voxels.

    Returns
    -------
    ShellThickness
        Points, normals and thickness; ``.summary(threshold)`` and
        ``.spherical_map()`` give the statistics.

    Raises
    ------
    ChemtomoError
        For volumes of different shapes, no core surface, or a core that is not
        inside the particle.
    """
    c, p = _field(core, "core"), _field(particle, "particle")
    if c.shape != p.shape:
        raise ShapeError(f"core {c.shape} and particle {p.shape} volumes differ in shape; give them on one grid")
    if not voxel_size > 0 or not step > 0:
        raise ChemtomoError(f"voxel_size and step must be positive, got {voxel_size!r} and {step!r}")
    inside = c >= core_level
    boundary = inside & ~ndimage.binary_erosion(inside, border_value=1)
    if not boundary.any():
        raise ChemtomoError(f"the core field never crosses {core_level:g}: no core surface; check the volume or core_level")
    if (p[boundary] < particle_level).mean() > 0.95:
        raise ChemtomoError("the core surface lies outside the particle almost everywhere; are core and particle "
                            "swapped?")
    pts = np.argwhere(boundary).astype(np.float64)
    grads = np.stack(np.gradient(c), axis=0)
    g = np.stack([ndimage.map_coordinates(gi, pts.T, order=1) for gi in grads], axis=1)
    gnorm = np.linalg.norm(g, axis=1)
    good = gnorm > 1e-12
    pts, g, gnorm = pts[good], g[good], gnorm[good]
    normals = -g / gnorm[:, None]
    # one Newton step onto the level set: moving t along the normal changes c by -|grad c| t
    cval = ndimage.map_coordinates(c, pts.T, order=1)
    pts = pts + np.clip((cval - core_level) / gnorm, -1.0, 1.0)[:, None] * normals
    shape = np.array(c.shape, dtype=np.float64)
    n_steps = int(np.ceil(np.linalg.norm(shape) / step)) + 1
    t = np.arange(n_steps) * step
    thickness = np.full(len(pts), np.nan)
    for start in range(0, len(pts), 4096):  # blocks keep the (points x steps) samples small
        sl = slice(start, start + 4096)
        pos = pts[sl, None, :] + t[None, :, None] * normals[sl, None, :]  # (n, s, 3)
        outside_vol = ((pos < 0) | (pos > shape - 1)).any(axis=2)
        vals = ndimage.map_coordinates(p, pos.reshape(-1, 3).T, order=1, mode="nearest").reshape(pos.shape[:2])
        below = (vals < particle_level) & ~outside_vol
        first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
        left = np.where(outside_vol.any(axis=1), outside_vol.argmax(axis=1), n_steps)
        found = (first > 0) & (first < left)
        k = first[found]
        rows = np.flatnonzero(found)
        v0, v1 = vals[rows, k - 1], vals[rows, k]
        frac = np.clip((v0 - particle_level) / np.maximum(v0 - v1, 1e-12), 0, 1)
        block = np.full(len(pos), np.nan)
        block[rows] = (t[k - 1] + frac * step)
        block[first == 0] = 0.0  # the core point already lies outside the particle: no shell there
        thickness[sl] = block * voxel_size
    centre = np.array(ndimage.center_of_mass(inside))
    return ShellThickness(pts, normals, thickness, float(voxel_size), centre)
