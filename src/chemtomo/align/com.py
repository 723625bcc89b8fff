"""Centre-of-mass alignment.

For parallel-beam projections with conserved mass the centre of mass (COM) of
image ``a`` is ``y_c`` along the tilt axis, the same at every tilt, and
``u_c(theta) = x_c cos(theta) + z_c sin(theta) + axis_offset`` across it,
where ``(x_c, z_c, y_c)`` is the COM of the object. Drift adds ``(dy, du)``;
what does not fit those curves is the drift.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError, ShapeError, as_angles
from .xcorr import as_stack


def centre_of_mass(stack, *, threshold=0.0) -> np.ndarray:
    """Centre of mass ``(y, u)`` of every image in pixels from the image centre.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series with non-negative values on a zero background.
    threshold : float, default 0
        Pixels below ``threshold * max`` of their image count as zero (suppresses
        a weak background or noise floor).

    Returns
    -------
    com : ndarray, shape (n_tilts, 2)

    Raises
    ------
    ChemtomoError
        If an image has no positive mass.
    """
    p = as_stack(stack).astype(np.float64)
    p = np.where(p > threshold * p.max(axis=(1, 2), keepdims=True), p, 0.0)
    p = np.clip(p, 0.0, None)
    n, ny, nu = p.shape
    mass = p.sum(axis=(1, 2))
    if np.any(mass <= 0):
        bad = np.flatnonzero(mass <= 0)
        raise ChemtomoError(f"images {bad.tolist()[:5]} have no positive values; centre-of-mass alignment needs mass")
    y = np.arange(ny) - (ny - 1) / 2
    u = np.arange(nu) - (nu - 1) / 2
    cy = (p.sum(axis=2) @ y) / mass
    cu = (p.sum(axis=1) @ u) / mass
    return np.stack([cy, cu], axis=1)


def sinusoid_fit(u, angles, *, offset=True):
    """Least-squares fit ``u(theta) = x_c cos(theta) + z_c sin(theta) [+ c]``.

    Parameters
    ----------
    u : array, shape (n_tilts,)
        Positions along u in pixels.
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    offset : bool, default True
        Fit the constant ``c`` (the tilt-axis offset) too.

    Returns
    -------
    params : ndarray, shape (3,)
        ``(x_c, z_c, c)`` in pixels (``c`` = 0 if not fitted).
    residual : ndarray, shape (n_tilts,)
        ``u`` minus the fitted curve.
    """
    theta = np.deg2rad(as_angles(angles))
    u = np.asarray(u, dtype=np.float64)
    cols = [np.cos(theta), np.sin(theta)] + ([np.ones_like(theta)] if offset else [])
    m = np.stack(cols, axis=1)
    if np.linalg.matrix_rank(m) < m.shape[1]:
        raise ChemtomoError(f"a sinusoid fit needs at least {m.shape[1]} distinct tilt angles, got {np.unique(theta).size}")
    coef = np.linalg.lstsq(m, u, rcond=None)[0]
    params = np.zeros(3)
    params[: coef.size] = coef
    return params, u - m @ coef


def remove_translation(shifts, angles) -> np.ndarray:
    """Remove the unobservable part of shifts: the mean of dy and a fitted ``a cos + b sin`` of du.

    Adding ``(dy0, a cos(theta) + b sin(theta))`` to every shift is the same as
    translating the reconstructed volume, so no alignment can tell it apart.
    """
    s = np.array(shifts, dtype=np.float64)
    s[:, 0] -= s[:, 0].mean()
    s[:, 1] = sinusoid_fit(s[:, 1], angles, offset=False)[1]
    return s


def com_shifts(stack, angles, *, threshold=0.0, offset=True):
    """Drift of every image from its centre of mass.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series, non-negative, object entirely in the field of view.
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    threshold : float, default 0
        As in :func:`centre_of_mass`.
    offset : bool, default True
        Fit a tilt-axis offset ``c``; if False the axis is taken at the
        detector centre and the constant stays in the shifts.

    Returns
    -------
    shifts : ndarray, shape (n_tilts, 2)
        ``(dy, du)`` in pixels: ``dy`` is the COM along y minus its mean,
        ``du`` the residual of the sinusoid fit. Undo with ``apply_shifts(stack, -shifts)``.
    info : dict
        ``x_c``, ``z_c`` (object COM, pixels), ``y_c`` (mean COM along y from the
        image centre), ``axis_offset`` (``c``, pixels) and ``com`` (n_tilts, 2).

    Notes
    -----
    Exact for noise-free parallel-beam data without truncation. A background
    or mass that changes with tilt (beam damage, shadowing) biases it; use it
    as a start for :func:`~chemtomo.align.matching.projection_matching`.

    Examples
    --------
    >>> img = np.zeros((3, 16, 16)); img[:, 6:9, 7:9] = 1
    >>> img[1] = np.roll(img[1], 2, axis=1)
    >>> s, info = com_shifts(img, [-30, 0, 30], offset=False)
    >>> np.round(s[:, 1], 2).tolist()
    [-0.69, 1.2, -0.69]
    """
    p = as_stack(stack)
    theta = as_angles(angles)
    if theta.size != p.shape[0]:
        raise ShapeError(f"angles has {theta.size} entries but the stack has {p.shape[0]} images; pass one angle per image")
    com = centre_of_mass(p, threshold=threshold)
    params, du = sinusoid_fit(com[:, 1], theta, offset=offset)
    y_c = float(com[:, 0].mean())
    shifts = np.stack([com[:, 0] - y_c, du], axis=1)
    info = {"x_c": float(params[0]), "z_c": float(params[1]), "y_c": y_c, "axis_offset": float(params[2]), "com": com}
    return shifts, info
