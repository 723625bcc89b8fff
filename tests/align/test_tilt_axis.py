import numpy as np

from chemtomo.align import axis_offset, rotate_stack, tilt_axis_angle
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.shifts import apply_shifts
from chemtomo.simulate.haadf import haadf_expected
from chemtomo.simulate.phantoms import phantom_from_spec

ANGLES = np.linspace(-70, 70, 36)
PHANTOM = phantom_from_spec("core-shell:rod", ["Au", "Ag"], (48, 48, 48), seed=0)


def noisy(offset=0.0, rotation=0.0, dose=3e3):
    lam = haadf_expected(PHANTOM, TiltGeometry(ANGLES, (48, 48, 48), axis_offset=offset), voxel_size=1.0, dose=dose)
    if rotation:
        lam = np.clip(rotate_stack(lam, rotation), 0, None)
    return np.random.default_rng(0).poisson(lam).astype(np.float32)


def test_axis_offset_com():
    assert abs(axis_offset(noisy(2.3), ANGLES) - 2.3) < 0.3


def test_axis_offset_reprojection():
    p = noisy(2.3)[::2]
    assert abs(axis_offset(p, ANGLES[::2], method="reprojection", slices=2, search=1.0) - 2.3) < 0.3


def test_tilt_axis_angle_recovered():
    assert abs(tilt_axis_angle(noisy(rotation=2.0)) - 2.0) < 0.5
    assert abs(tilt_axis_angle(noisy(rotation=-1.5)) + 1.5) < 0.5


def test_tilt_axis_angle_with_drift():
    p = apply_shifts(noisy(rotation=2.0), np.random.default_rng(1).normal(0, 2.5, (36, 2)))
    assert abs(tilt_axis_angle(p) - 2.0) < 0.5


def test_rotate_stack_round_trip_and_direction():
    p = np.zeros((1, 33, 33), np.float32)
    p[0, 16, 26] = 1  # +u of the centre
    r = rotate_stack(p, 90.0)
    y, u = np.unravel_index(np.argmax(r[0]), r[0].shape)
    assert (y, u) == (26, 16)  # turned from +u towards +y
    q = np.zeros((2, 32, 32), np.float32)
    q[:, 10:22, 12:20] = 1
    back = rotate_stack(rotate_stack(q, 3.0), -3.0)
    assert np.abs(back - q)[:, 4:-4, 4:-4].mean() < 0.02
