"""Sub-pixel image shifts of a tilt series (used by alignment and by the drift simulation)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import ChemtomoError

def apply_shifts(stack, shifts) -> np.ndarray:
    """Shift each image of ``p[a, y, u]`` by ``shifts[a] = (dy, du)`` pixels (sub-pixel, linear).

    Linear interpolation keeps non-negative images non-negative; pixels moved in
    from outside are 0. Content of image ``a`` moves by ``+shifts[a]``.
    """
    p = np.asarray(stack, dtype=np.float64)
    sh = np.asarray(shifts, dtype=np.float64)
    if p.ndim != 3 or sh.shape != (p.shape[0], 2):
        raise ChemtomoError(f"need a stack (n, ny, nu) and shifts (n, 2), got {p.shape} and {sh.shape}")
    return np.stack([ndimage.shift(img, s, order=1, mode="constant", cval=0.0) for img, s in zip(p, sh)])
