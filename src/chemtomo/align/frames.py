"""Registration of repeated scans of one field (frames) before they are summed or paired.

Fast repeated scans drift: the frames of ``../shared/data/edx-repeated-scans``
move by up to 17 px over 15 frames. Shifts are measured on the high-SNR signal
(HAADF) against the mean of the frames, re-measured against the mean of the
aligned frames, and applied to every signal of the frames. Count maps are
moved by whole pixels, so they stay whole Poisson counts (interpolation would
mix neighbouring counts and break the count statistics that binomial
splitting and the Poisson denoisers rely on).
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ShapeError
from .xcorr import register


def frame_shifts(frames, *, iterations: int = 3, lowpass: float = 2.0) -> np.ndarray:
    """Shift ``(dy, du)`` in pixels of each frame against their common mean (the frames' drift).

    Parameters
    ----------
    frames : array_like, shape (n_frames, ny, nu)
        Repeated scans of one field in a high-SNR signal (HAADF).
    iterations : int, default 3
        Rounds of measuring against the mean of the frames aligned by the last round.
    lowpass : float, default 2.0
        Gaussian sigma (px) of the low-pass on the cross-correlation.

    Returns
    -------
    shifts : ndarray, shape (n_frames, 2)
        How far each frame's content has moved; ``shift_whole(frames, -shifts)`` aligns them.
        Their mean is zero (the aligned frames sit where the frames sit on average).
    """
    f = np.asarray(frames, dtype=np.float64)
    if f.ndim != 3 or f.shape[0] < 2:
        raise ShapeError(f"frames must be (n_frames, ny, nu) with at least 2 frames, got shape {f.shape}")
    shifts = np.zeros((f.shape[0], 2))
    for _ in range(max(1, int(iterations))):
        ref = shift_whole(f, -shifts).mean(0)
        shifts = register(f, np.broadcast_to(ref, f.shape), lowpass=lowpass)
        shifts -= shifts.mean(0)
    return shifts


def shift_whole(stack, shifts) -> np.ndarray:
    """Move each image of `stack` by its shift rounded to whole pixels, filling with zeros.

    Parameters
    ----------
    stack : array_like, shape (n, ny, nu) or (n, ..., ny, nu)
        Images (counts stay counts).
    shifts : array_like, shape (n, 2)
        ``(dy, du)`` in pixels; the content moves by ``round(dy)``, ``round(du)``.

    Returns
    -------
    moved : ndarray, the dtype and shape of `stack`
    """
    x = np.asarray(stack)
    s = np.rint(np.asarray(shifts, dtype=np.float64)).astype(int)
    if s.shape != (x.shape[0], 2):
        raise ShapeError(f"shifts must be ({x.shape[0]}, 2) for {x.shape[0]} images, got {s.shape}")
    out = np.zeros_like(x)
    ny, nu = x.shape[-2:]
    for i, (dy, du) in enumerate(s):
        ys, yd = (slice(0, ny - dy), slice(dy, ny)) if dy >= 0 else (slice(-dy, ny), slice(0, ny + dy))
        us, ud = (slice(0, nu - du), slice(du, nu)) if du >= 0 else (slice(-du, nu), slice(0, nu + du))
        out[i, ..., yd, ud] = x[i, ..., ys, us]
    return out
