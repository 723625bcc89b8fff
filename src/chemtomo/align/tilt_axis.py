"""Tilt-axis position (offset along u) and in-plane angle (image rotation)."""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ChemtomoError, ShapeError, as_angles
from ..core.geometry import TiltGeometry
from ..core.projector import Projector
from ..core.search import grid_minimum
from .com import com_shifts, sinusoid_fit
from .matching import fourier_shift
from .orientation import CLEAR, centred_spread
from .xcorr import as_stack


def rotate_stack(stack, angle) -> np.ndarray:
    """Rotate every image by `angle` degrees about its centre (bilinear, zeros outside), float32.

    Positive angles turn the content from +u towards +y (counter-clockwise
    with u to the right and y up). ``rotate_stack(rotate_stack(p, a), -a)``
    restores ``p`` up to interpolation and the corners.
    """
    p = as_stack(stack)
    phi = np.deg2rad(float(angle))
    n, ny, nu = p.shape
    c, s = np.cos(phi), np.sin(phi)
    # output pixel (y, u) samples the input at R(-phi) (y, u); grid_sample wants (x=u, y) normalised by size
    theta = torch.tensor([[c, s * ny / nu, 0.0], [-s * nu / ny, c, 0.0]], dtype=torch.float32)
    grid = torch.nn.functional.affine_grid(theta[None].expand(n, 2, 3), (n, 1, ny, nu), align_corners=False)
    out = torch.nn.functional.grid_sample(torch.from_numpy(np.ascontiguousarray(p))[:, None], grid, mode="bilinear",
                                          padding_mode="zeros", align_corners=False)
    return out[:, 0].numpy()


def _profiles(p, phi, n_bins, ny):
    """Projections of every image onto the direction at `phi` rad from y (linear splatting)."""
    n, _, nu = p.shape
    y = np.arange(ny) - (ny - 1) / 2
    u = np.arange(nu) - (nu - 1) / 2
    coord = y[:, None] * np.cos(phi) - u[None, :] * np.sin(phi) + (n_bins - 1) / 2
    lo = np.floor(coord).astype(np.int64)
    w = coord - lo
    out = np.zeros((n, n_bins + 2))
    flat = p.reshape(n, -1)
    for idx, wt in ((lo, 1 - w), (lo + 1, w)):
        k = np.clip(idx.ravel() + 1, 0, n_bins + 1)
        out += _scatter(flat * wt.ravel(), k, n_bins + 2)
    return out[:, 1:-1]


def _scatter(values, index, size):
    t = torch.zeros((values.shape[0], size), dtype=torch.float64)
    t.index_add_(1, torch.from_numpy(index), torch.from_numpy(values))
    return t.numpy()


def _profile_spread(p, phi):
    """Spread across tilts of the y-profiles for an axis at `phi` radians (:func:`centred_spread`)."""
    n, ny, nu = p.shape
    return centred_spread(_profiles(p, phi, int(np.ceil(np.hypot(ny, nu))) + 2, ny))


def tilt_axis_angle(stack, *, search=5.0, step=0.25, limit=45.0) -> float:
    """In-plane angle of the tilt axis in degrees, from the tilt invariance of y-profiles.

    With the tilt axis along y the sum of every image along u (its profile
    along y) is the same at every tilt, up to a shift. For a candidate angle
    the images are projected onto the direction turned by it from y, the
    profiles are normalised and centred, and their spread across tilts is
    measured; the minimum (parabola through the best grid point) is returned.
    :func:`rotation_estimate` says whether that minimum is interior.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series with the object in the field of view; drift may remain.
    search : float, default 5.0
        Half-width of the first searched range in degrees; while the best angle is at an end of the
        range, the range grows by `search` on that side, up to `limit`.
    step : float, default 0.25
        Grid step in degrees.
    limit : float, default 45.0
        Largest angle searched, in degrees (beyond 45 the tilt axis runs along the other image
        direction: see :func:`chemtomo.align.orientation.axis_direction`).

    Returns
    -------
    angle : float
        Degrees; the images look like the aligned ones rotated by `angle`, so
        ``rotate_stack(stack, -angle)`` puts the tilt axis along y.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> blobs = np.zeros((5, 40, 40), np.float32)
    >>> for a, dx in enumerate([-4, -2, 0, 2, 4]):
    ...     blobs[a, 8:14, 18 + dx:22 + dx] = 1; blobs[a, 24:32, 16 - dx:20 - dx] = 1
    >>> bool(abs(tilt_axis_angle(rotate_stack(blobs, 3.0)) - 3.0) < 1.0)
    True
    """
    return rotation_estimate(stack, search=search, step=step, limit=limit)["angle"]


def rotation_estimate(stack, *, search=5.0, step=0.25, limit=45.0) -> dict:
    """:func:`tilt_axis_angle` with what was searched: ``{"angle", "range": [lo, hi], "at_edge", "ratio",
    "clear"}`` (degrees).

    ``at_edge`` is True when the best angle lies at an end of the range even after growing it to
    `limit`: the estimate is then not a minimum and must not be trusted. ``ratio`` is the profile
    spread across the found axis over the spread along it; below
    :data:`~chemtomo.align.orientation.CLEAR` (``clear`` False) the data do not pin the axis, as for
    specimens that fill the field of view (material enters and leaves it with the tilt), and the
    estimate is not to be trusted either.
    """
    p = np.clip(as_stack(stack).astype(np.float64), 0.0, None)
    if not (search > 0 and step > 0 and limit >= search):
        raise ChemtomoError(f"search, step and limit must be positive angles in degrees with limit >= search, got "
                            f"{search}, {step} and {limit}")
    lo, hi = -float(search), float(search)
    cost = {}
    while True:
        grid = np.round(np.arange(lo, hi + step / 2, step) / step) * step
        for a in grid:
            if a not in cost:
                cost[a] = _profile_spread(p, np.deg2rad(a))
        values = np.array([cost[a] for a in grid])
        i = int(np.argmin(values))
        if i == 0 and lo > -limit:
            lo = max(lo - search, -float(limit))
        elif i == len(grid) - 1 and hi < limit:
            hi = min(hi + search, float(limit))
        else:
            break
    at_edge = i in (0, len(grid) - 1)
    angle = float(grid_minimum(grid, values))
    # how clearly the data pin the axis: the spread across the axis over the spread along it
    ratio = _profile_spread(p, np.deg2rad(angle + 90.0)) / max(_profile_spread(p, np.deg2rad(angle)), 1e-30)
    return {"angle": angle, "range": [float(grid[0]), float(grid[-1])], "at_edge": bool(at_edge),
            "ratio": float(ratio), "clear": bool(ratio >= CLEAR)}


def rotation_from_com(stack, angles, *, blocks=16, min_mass=0.2) -> dict:
    """In-plane angle of the tilt axis from where the axis lies in each band of rows (degrees).

    The images must be registered (drift removed, e.g. by
    :func:`~chemtomo.align.xcorr.xcorr_shifts`) and free of background. In every band of rows the
    centre of mass along u follows ``x_c cos(theta) + z_c sin(theta) + c``; the constant ``c`` is where
    the tilt axis crosses that band. With the axis turned in the image, ``c`` moves linearly with the
    band's position y, and the slope gives the angle. A shift common to whole images (a registration
    error) moves every band alike and leaves the slope as it is. This works where
    :func:`rotation_estimate` cannot, on objects that look alike at every tilt (needles, rods along
    the axis); it needs the object's cross-sections inside the field of view at every tilt.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Registered images, background removed (negative values count as 0).
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    blocks : int, default 16
        Number of bands of rows.
    min_mass : float, default 0.2
        Bands holding less than this share of the heaviest band's mass in some image are left out.

    Returns
    -------
    dict
        ``angle`` (degrees, the convention of :func:`tilt_axis_angle`), ``standard_error`` (degrees,
        from the scatter of the bands about the line), ``bands`` (used), ``offset`` (pixels along u where
        the axis crosses the centre row) and ``clear`` (at least 3 bands and a standard error below 1
        degree).
    """
    p = np.clip(as_stack(stack).astype(np.float64), 0.0, None)
    theta = as_angles(angles)
    n, ny, nu = p.shape
    if theta.size != n:
        raise ShapeError(f"angles has {theta.size} entries but the stack has {n} images; pass one angle per image")
    edges = np.linspace(0, ny, int(blocks) + 1).round().astype(int)
    u = np.arange(nu) - (nu - 1) / 2
    yc = np.arange(ny) - (ny - 1) / 2
    mass = np.stack([p[:, a:b].sum(axis=(1, 2)) for a, b in zip(edges[:-1], edges[1:])], axis=1)  # (n, blocks)
    keep = mass.min(axis=0) >= min_mass * mass.min(axis=0).max()
    ys, cs, ws = [], [], []
    for k in np.flatnonzero(keep):
        band = p[:, edges[k]:edges[k + 1]]
        com = band.sum(axis=1) @ u / mass[:, k]
        cs.append(sinusoid_fit(com, theta)[0][2])
        ys.append(float((band.sum(axis=(0, 2)) @ yc[edges[k]:edges[k + 1]]) / band.sum()))
        ws.append(float(mass[:, k].mean()))
    if len(cs) < 2:
        raise ChemtomoError("the tilt-axis angle from centres of mass needs the object in at least 2 bands of rows; "
                            "give --rotation in degrees")
    ys, cs, ws = np.array(ys), np.array(cs), np.array(ws)
    a = np.stack([np.ones_like(ys), ys], axis=1) * np.sqrt(ws)[:, None]
    coef, *_ = np.linalg.lstsq(a, cs * np.sqrt(ws), rcond=None)
    resid = cs - (coef[0] + coef[1] * ys)
    dof = max(len(cs) - 2, 1)
    s2 = float((ws * resid**2).sum() / dof)
    cov = s2 * np.linalg.pinv(a.T @ a)
    slope, se = float(coef[1]), float(np.sqrt(max(cov[1, 1], 0.0)))
    angle = -float(np.rad2deg(np.arctan(slope)))  # the axis turned by +angle moves c by -tan(angle) per row
    se_deg = float(np.rad2deg(se / (1 + slope**2)))
    return {"angle": angle, "standard_error": se_deg, "bands": int(len(cs)), "offset": float(coef[0]),
            "clear": bool(len(cs) >= 3 and se_deg < 1.0)}


def axis_offset(stack, angles, *, method="com", search=1.5, step=0.5, slices=8, iterations=100) -> float:
    """Position of the tilt axis on the detector, in pixels from the centre, sub-pixel.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series without per-tilt drift (aligned, or drift-free).
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    method : {"com", "reprojection"}, default "com"
        ``"com"``: the constant of the sinusoid fit of the centre of mass
        (:func:`~chemtomo.align.com.com_shifts`), instant but biased by
        background and truncation. ``"reprojection"``: the offset whose SIRT
        reconstruction of the `slices` heaviest rows reprojects closest to the
        data, searched on a grid around the COM estimate and refined by a parabola.
    search : float, default 1.5
        Half-width in pixels of the searched range around the COM estimate.
    step : float, default 0.5
        Grid step in pixels.
    slices : int, default 8
        Number of rows (y) used.
    iterations : int, default 100
        SIRT iterations per candidate (too few bias the minimum towards 0).

    Returns
    -------
    offset : float
        ``axis_offset`` for :class:`~chemtomo.core.geometry.TiltGeometry`, in pixels.

    Examples
    --------
    >>> from chemtomo.core.geometry import TiltGeometry
    >>> from chemtomo.core.projector import Projector
    >>> v = np.zeros((4, 32, 32), np.float32); v[:, 10:16, 12:22] = 1; v[:, 18:22, 8:12] = 2
    >>> p = Projector(TiltGeometry(np.arange(-60, 61, 5), (4, 32, 32), axis_offset=1.7))(v)
    >>> round(axis_offset(p, np.arange(-60, 61, 5), method="com"), 1)
    1.7
    """
    p = as_stack(stack)
    theta = as_angles(angles)
    n, ny, nu = p.shape
    if theta.size != n:
        raise ShapeError(f"angles has {theta.size} entries but the stack has {n} images; pass one angle per image")
    if method not in ("reprojection", "com"):
        raise ChemtomoError(f"method must be 'reprojection' or 'com', got {method!r}")
    start = com_shifts(p, theta)[1]["axis_offset"]
    if method == "com":
        return float(start)
    from ..recon import sirt

    rows = np.sort(np.argsort(p.sum(axis=(0, 2)))[::-1][: max(1, min(int(slices), ny))])
    sub = p[:, rows, :]
    op = Projector(TiltGeometry(theta, (rows.size, nu, nu), nu))

    def cost(c):
        data = fourier_shift(sub, np.tile([0.0, -c], (n, 1)))
        x = sirt(op, data, iterations)
        return float(np.sum((np.asarray(op(x)) - data) ** 2))

    grid = start + np.arange(-search, search + step / 2, step)
    coarse = np.array([cost(c) for c in grid])
    best = grid[int(np.argmin(coarse))]
    fine = best + np.array([-0.5, -0.25, 0.0, 0.25, 0.5]) * step
    return float(grid_minimum(fine, np.array([cost(c) for c in fine])))
