"""Cross-correlation alignment of tilt series, vectorised over the tilts.

Shifts follow :func:`chemtomo.simulate.acquisition.random_shifts`: ``shifts[a]
= (dy, du)`` in pixels is how far the content of image ``a`` has moved, so
``apply_shifts(stack, -shifts)`` undoes it.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from ..core.errors import ChemtomoError, ShapeError, as_angles, check_finite

MODES = ("cross", "phase")


def as_stack(stack, name: str = "stack") -> np.ndarray:
    """Validate a tilt series ``p[a, y, u]`` and return it as float32."""
    p = np.asarray(stack)
    if p.ndim != 3 or 0 in p.shape:
        raise ShapeError(f"{name} must be a stack (n_tilts, ny, nu), got shape {p.shape}")
    p = p.astype(np.float32, copy=False)
    check_finite(p, name)
    return p


def spectral_filter(shape, lowpass=None, highpass=None) -> np.ndarray | None:
    """Gaussian band-pass response on the ``fft2`` grid of images of `shape` ``(ny, nu)``.

    ``exp(-2 pi^2 lowpass^2 f^2) * (1 - exp(-2 pi^2 highpass^2 f^2))`` with f in
    cycles per pixel: `lowpass` and `highpass` are Gaussian sigmas in pixels
    (details finer than `lowpass` and coarser than `highpass` are damped).
    None for an all-pass filter.
    """
    if lowpass is None and highpass is None:
        return None
    fy, fu = sfft.fftfreq(shape[0])[:, None], sfft.fftfreq(shape[1])[None, :]
    f2 = fy**2 + fu**2
    out = np.ones(shape)
    for sigma, name in ((lowpass, "lowpass"), (highpass, "highpass")):
        if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
            raise ChemtomoError(f"{name} must be a positive Gaussian sigma in pixels or None, got {sigma}")
    if lowpass is not None:
        out *= np.exp(-2 * np.pi**2 * lowpass**2 * f2)
    if highpass is not None:
        out *= -np.expm1(-2 * np.pi**2 * highpass**2 * f2)
    return out


def register(images, references, *, lowpass=1.0, highpass=None, upsample=10, max_shift=None, mode="cross"):
    """Shift of each image relative to its reference, sub-pixel, all pairs at once.

    Parameters
    ----------
    images, references : array, shape (n, ny, nu)
        Pairs to compare; ``images[a]`` is ``references[a]`` moved by the result.
    lowpass : float or None, default 1.0
        Gaussian sigma in pixels of the low-pass applied to the correlation.
    highpass : float or None, default None
        Gaussian sigma in pixels above which structure is removed (background, shading).
    upsample : int, default 10
        Sub-pixel refinement factor of the matrix-multiply DFT around the peak
        (1 gives integer shifts), followed by a parabolic fit.
    max_shift : float or None, default None
        Largest shift in pixels considered along each axis.
    mode : {"cross", "phase"}, default "cross"
        Plain cross-correlation, or phase correlation (whitened spectrum).

    Returns
    -------
    shifts : ndarray, shape (n, 2), float64
        ``(dy, du)`` in pixels.
    """
    a = as_stack(images, "images")
    b = as_stack(references, "references")
    if a.shape != b.shape:
        raise ShapeError(f"images {a.shape} and references {b.shape} must have the same shape")
    if mode not in MODES:
        raise ChemtomoError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    upsample = int(upsample)
    if upsample < 1:
        raise ChemtomoError(f"upsample must be an integer >= 1, got {upsample}")
    n, ny, nu = a.shape
    cc = sfft.fft2(a, workers=-1) * np.conj(sfft.fft2(b, workers=-1))
    if mode == "phase":
        cc /= np.abs(cc) + 1e-6 * np.abs(cc).max(axis=(1, 2), keepdims=True) + 1e-30
    filt = spectral_filter((ny, nu), lowpass, highpass)
    if filt is not None:
        cc *= filt.astype(np.float32)
    corr = sfft.ifft2(cc, workers=-1).real
    dy, du = np.fft.fftfreq(ny, 1 / ny), np.fft.fftfreq(nu, 1 / nu)  # signed integer lags
    if max_shift is not None:
        far = (np.abs(dy)[:, None] > max_shift) | (np.abs(du)[None, :] > max_shift)
        corr = np.where(far[None], -np.inf, corr)
    flat = corr.reshape(n, -1).argmax(axis=1)
    peak = np.stack([dy[flat // nu], du[flat % nu]], axis=1).astype(np.float64)
    if upsample == 1:
        return peak + _parabolic(corr, flat // nu, flat % nu)
    return _refine(cc, peak, upsample)


def _parabolic(corr, iy, iu):
    """Parabolic vertex offsets around integer peaks of periodic correlation maps."""
    n, ny, nu = corr.shape
    idx = np.arange(n)
    out = np.zeros((n, 2))
    for axis, (i, m) in enumerate(((iy, ny), (iu, nu))):
        def at(k):
            return corr[idx, (i + k) % m, iu] if axis == 0 else corr[idx, iy, (i + k) % m]
        lo, c, hi = at(-1), at(0), at(1)
        den = lo - 2 * c + hi
        ok = np.isfinite(den) & (den < 0)
        out[:, axis] = np.where(ok, 0.5 * (lo - hi) / np.where(ok, den, 1.0), 0.0)
    return np.clip(out, -0.5, 0.5)


def _refine(cc, peak, up):
    """Upsampled DFT of the cross-power spectrum on a +-0.75 px window (Guizar-Sicairos 2008)."""
    n, ny, nu = cc.shape
    m = int(np.ceil(1.5 * up)) | 1
    d = (np.arange(m) - m // 2) / up
    fy, fu = sfft.fftfreq(ny), sfft.fftfreq(nu)
    ky = np.exp(2j * np.pi * fy[None, None, :] * (peak[:, 0, None, None] + d[None, :, None]))  # (n, m, ny)
    ku = np.exp(2j * np.pi * fu[None, :, None] * (peak[:, 1, None, None] + d[None, None, :]))  # (n, nu, m)
    local = np.matmul(np.matmul(ky.astype(np.complex64), cc), ku.astype(np.complex64)).real
    flat = local.reshape(n, -1).argmax(axis=1)
    iy, iu = flat // m, flat % m
    frac = _parabolic_local(local, iy, iu)
    return peak + np.stack([d[iy], d[iu]], axis=1) + frac / up


def _parabolic_local(local, iy, iu):
    n, m, _ = local.shape
    idx = np.arange(n)
    out = np.zeros((n, 2))
    for axis, i in enumerate((iy, iu)):
        lo_i, hi_i = np.clip(i - 1, 0, m - 1), np.clip(i + 1, 0, m - 1)
        if axis == 0:
            lo, c, hi = local[idx, lo_i, iu], local[idx, iy, iu], local[idx, hi_i, iu]
        else:
            lo, c, hi = local[idx, iy, lo_i], local[idx, iy, iu], local[idx, iy, hi_i]
        den = lo - 2 * c + hi
        ok = (i > 0) & (i < m - 1) & (den < 0)
        out[:, axis] = np.where(ok, 0.5 * (lo - hi) / np.where(ok, den, 1.0), 0.0)
    return out


def stretch_u(stack, factors, centre=0.0) -> np.ndarray:
    """Scale each image along u by ``factors[a]`` about ``u = centre`` (pixels from the detector centre), linear."""
    p = np.asarray(stack, dtype=np.float32)
    n, ny, nu = p.shape
    u = np.arange(nu) - (nu - 1) / 2
    src = (u[None, :] - centre) / np.asarray(factors, dtype=np.float64)[:, None] + centre + (nu - 1) / 2
    lo = np.floor(src).astype(np.int64)
    w = (src - lo).astype(np.float32)
    out = np.zeros_like(p)
    for k, wk in ((lo, 1 - w), (lo + 1, w)):
        ok = (k >= 0) & (k < nu)
        vals = np.take_along_axis(p, np.clip(k, 0, nu - 1)[:, None, :].repeat(ny, axis=1), axis=2)
        out += vals * (wk * ok)[:, None, :]
    return out


def xcorr_shifts(stack, angles=None, *, reference="running", lowpass=1.0, highpass=None, upsample=10,
                 max_shift=None, stretch=False, mode="cross"):
    """Drift of every image of a tilt series by cross-correlation.

    Parameters
    ----------
    stack : array, shape (n_tilts, ny, nu)
        Tilt series ``p[a, y, u]``, tilt axis along y.
    angles : array, shape (n_tilts,), optional
        Tilt angles in degrees, any order; if omitted the images are taken to be
        in tilt order with the reference tilt in the middle, and `stretch` is unavailable.
    reference : {"running", "central"}, default "running"
        ``"running"``: each image is registered to its neighbour one step closer
        to the lowest tilt and the steps are summed outwards; ``"central"``:
        every image is registered to the lowest-tilt image.
    lowpass, highpass, upsample, max_shift, mode
        As in :func:`register` (sigmas and shifts in pixels).
    stretch : bool, default False
        Cosine stretching: scale the reference along u by
        ``cos(theta) / cos(theta_ref)`` about the detector centre before
        registration (thin, flat specimens).

    Returns
    -------
    shifts : ndarray, shape (n_tilts, 2)
        ``(dy, du)`` in pixels per image, mean zero (a global shift is not
        observable); undo with ``apply_shifts(stack, -shifts)``.

    Raises
    ------
    ChemtomoError
        For an unknown `reference`, angles that do not fit, or `stretch` without angles.

    Examples
    --------
    >>> from chemtomo.core.shifts import apply_shifts
    >>> img = np.zeros((32, 32)); img[10:20, 12:18] = 1
    >>> true = np.array([[0, 0], [1.5, -2.25], [3.0, 0.5]])
    >>> est = xcorr_shifts(apply_shifts(np.stack([img] * 3), true))
    >>> bool(np.abs(est - (true - true.mean(0))).max() < 0.1)
    True
    """
    p = as_stack(stack)
    n = p.shape[0]
    if reference not in ("running", "central"):
        raise ChemtomoError(f"reference must be 'running' or 'central', got {reference!r}")
    if angles is None:
        if stretch:
            raise ChemtomoError("stretch=True needs the tilt angles in degrees; pass angles=")
        theta, order = np.zeros(n), np.arange(n)
        centre = n // 2
    else:
        theta = as_angles(angles)
        if theta.size != n:
            raise ShapeError(f"angles has {theta.size} entries but the stack has {n} images; pass one angle per image")
        order = np.argsort(theta, kind="stable")
        centre = int(np.argmin(np.abs(theta[order])))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)  # rank of each image in tilt order
    if reference == "central":
        ref = np.full(n, order[centre])
    else:
        step = np.sign(centre - pos)  # neighbour towards the centre
        ref = order[pos + step]
    cos = np.cos(np.deg2rad(theta))
    factor = cos / cos[ref] if stretch else np.ones(n)
    refs = stretch_u(p[ref], factor) if stretch else p[ref]
    rel = register(p, refs, lowpass=lowpass, highpass=highpass, upsample=upsample, max_shift=max_shift, mode=mode)
    shifts = np.zeros((n, 2))
    if reference == "central":
        shifts = rel
    else:
        for k in list(range(centre + 1, n)) + list(range(centre - 1, -1, -1)):
            a, r = order[k], ref[order[k]]
            shifts[a, 0] = rel[a, 0] + shifts[r, 0]
            shifts[a, 1] = rel[a, 1] + factor[a] * shifts[r, 1]
        shifts[order[centre]] = 0.0
    return shifts - shifts.mean(axis=0)
