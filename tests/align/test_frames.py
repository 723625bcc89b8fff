"""Registration of repeated scans: drift measured on a high-SNR signal, counts moved by whole pixels."""

import numpy as np
import pytest

from chemtomo.align import frame_shifts, shift_whole
from chemtomo.core.errors import ShapeError
from chemtomo.core.shifts import apply_shifts


def test_known_drift_is_found_and_undone():
    yy, xx = np.mgrid[:96, :96]
    scene = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0) for cy, cx in [(30, 40), (60, 55), (45, 70)])
    true = np.array([[6.0, -3.0], [0.0, 0.0], [-2.0, 4.0], [-4.0, -1.0]])
    true -= true.mean(0)
    frames = apply_shifts(np.broadcast_to(scene, (4, 96, 96)), true)
    found = frame_shifts(frames)
    np.testing.assert_allclose(found, true, atol=0.15)
    aligned = shift_whole(frames, -found)
    inner = (slice(None), slice(12, -12), slice(12, -12))
    assert np.abs(aligned[inner] - aligned[inner].mean(0)).max() < 0.1 * scene.max()


def test_whole_pixel_shift_keeps_counts_and_fills_zeros():
    counts = np.random.default_rng(0).poisson(2.0, (2, 3, 8, 8))
    moved = shift_whole(counts, [[1.4, -2.0], [0.0, 0.0]])
    assert moved.dtype == counts.dtype
    np.testing.assert_array_equal(moved[0, :, 1:, :6], counts[0, :, :7, 2:])
    assert not moved[0, :, 0].any() and not moved[0, :, :, 6:].any()
    np.testing.assert_array_equal(moved[1], counts[1])
    with pytest.raises(ShapeError, match="shifts"):
        shift_whole(counts, [[1, 1]])
    with pytest.raises(ShapeError, match="2 frames"):
        frame_shifts(counts[0, :1])
