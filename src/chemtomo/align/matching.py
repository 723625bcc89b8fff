"""Projection matching: reconstruct, reproject, register each image to its reprojection, repeat."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..core.errors import ChemtomoError, ShapeError, as_angles
from ..core.geometry import TiltGeometry
from ..core.projector import Projector
from .com import remove_translation, sinusoid_fit
from .xcorr import as_stack, register


def fourier_shift(stack, shifts) -> np.ndarray:
    """Move the content of each image by ``shifts[a] = (dy, du)`` pixels (periodic, band-limited), float32."""
    p = np.asarray(stack, dtype=np.float32)
    n, ny, nu = p.shape
    s = np.asarray(shifts, dtype=np.float64)
    fy, fu = sfft.fftfreq(ny)[None, :, None], sfft.rfftfreq(nu)[None, None, :]
    phase = np.exp(-2j * np.pi * (fy * s[:, 0, None, None] + fu * s[:, 1, None, None])).astype(np.complex64)
    return sfft.irfft2(sfft.rfft2(p, workers=-1) * phase, s=(ny, nu), workers=-1).astype(np.float32)


def bin_stack(stack, factor: int) -> np.ndarray:
    """Average ``factor x factor`` pixel blocks of every image (edges cropped to a multiple)."""
    p = np.asarray(stack, dtype=np.float32)
    if factor == 1:
        return p
    n, ny, nu = p.shape
    ny2, nu2 = ny // factor, nu // factor
    return p[:, : ny2 * factor, : nu2 * factor].reshape(n, ny2, factor, nu2, factor).mean(axis=(2, 4))


def _reconstruct(method, op, data, iterations, x0):
    from ..recon import fbp, sirt

    if method == "sirt":
        return sirt(op, data, iterations, x0=x0)
    if method == "fbp":
        return fbp(op, data, bounds=(0.0, None))
    return method(op, data)


def projection_matching(stack, angles, *, iterations=5, method="sirt", recon_iterations=20, lowpass=1.0,
                        shifts0=None, tol=0.05, binning=1, progress=None):
    """Align a tilt series to reprojections of its own reconstruction.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series ``p[a, y, u]``, tilt axis along y.
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    iterations : int, default 5
        Maximum number of reconstruct-reproject-register rounds.
    method : {"sirt", "fbp"} or callable(op, data) -> volume, default "sirt"
        Reconstruction of the current aligned stack; SIRT is warm-started from
        the previous round.
    recon_iterations : int, default 20
        SIRT iterations per round.
    lowpass : float or None, default 1.0
        Gaussian sigma in pixels (of the binned images) of the correlation low-pass.
    shifts0 : array, shape (n_tilts, 2), optional
        Starting shifts ``(dy, du)`` in pixels, e.g. from :func:`~chemtomo.align.xcorr.xcorr_shifts`.
    tol : float, default 0.05
        Stop when no shift changes by more than `tol` pixels in a round.
    binning : int, default 1
        Bin images by this factor for the reconstructions (faster; shifts stay in full pixels).
    progress : callable(name, done, total), optional
        Called as ``("projection matching", round, iterations)`` after each round (the last one
        reports ``(iterations, iterations)`` when `tol` stops it early).

    Returns
    -------
    shifts : ndarray, shape (n_tilts, 2)
        ``(dy, du)`` in pixels; undo with ``apply_shifts(stack, -shifts)``. The
        volume translation (mean dy, ``a cos + b sin`` of du) is kept from `shifts0`.
    info : dict
        ``updates`` (largest change per round, pixels), ``iterations`` (rounds
        run), ``converged`` (bool), ``volume`` (last reconstruction, binned grid),
        ``axis_offset`` (constant of the final du in pixels; the tilt axis
        position relative to the detector centre after alignment).

    Raises
    ------
    ChemtomoError
        For inconsistent shapes or invalid options.

    Notes
    -----
    Each round reconstructs the stack moved by ``-shifts`` (Fourier shift),
    reprojects, and registers every original image to its reprojection; the
    new shifts are absolute, so errors do not accumulate. Volume translations
    are not observable and are projected out of each update.

    References
    ----------
    T. Dahmen et al., "Combined scanning transmission electron microscopy
    tilt- and focal series", Microsc. Microanal. 20 (2014) 548-560;
    M. Guizar-Sicairos et al., "Phase tomography from x-ray coherent
    diffractive imaging projections", Opt. Express 19 (2011) 21345.
    """
    p = as_stack(stack)
    theta = as_angles(angles)
    n, ny, nu = p.shape
    if theta.size != n:
        raise ShapeError(f"angles has {theta.size} entries but the stack has {n} images; pass one angle per image")
    iterations, binning = int(iterations), int(binning)
    if iterations < 1 or binning < 1:
        raise ChemtomoError(f"iterations and binning must be positive integers, got {iterations} and {binning}")
    if not (isinstance(method, str) and method in ("sirt", "fbp")) and not callable(method):
        raise ChemtomoError(f"method must be 'sirt', 'fbp' or a callable(op, data), got {method!r}")
    shifts = np.zeros((n, 2)) if shifts0 is None else np.array(shifts0, dtype=np.float64)
    if shifts.shape != (n, 2):
        raise ShapeError(f"shifts0 must have shape ({n}, 2), got {shifts.shape}")
    pb = bin_stack(p, binning)
    _, nyb, nub = pb.shape
    op = Projector(TiltGeometry(theta, (nyb, nub, nub), nub))
    x, updates = None, []
    for _ in range(iterations):
        aligned = fourier_shift(pb, -shifts / binning)
        x = _reconstruct(method, op, aligned, recon_iterations, x)
        reproj = np.asarray(op(x))
        new = register(pb, reproj, lowpass=lowpass, upsample=20) * binning
        delta = remove_translation(new - shifts, theta)
        shifts = shifts + delta
        updates.append(float(np.abs(delta).max()))
        done = updates[-1] < tol
        if progress is not None:
            progress("projection matching", iterations if done else len(updates), iterations)
        if done:
            break
    offset = float(sinusoid_fit(shifts[:, 1], theta)[0][2])
    info = {"updates": updates, "iterations": len(updates), "converged": updates[-1] < tol,
            "volume": np.asarray(x), "axis_offset": offset}
    return shifts, info
