import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.quantify.shell import shell_thickness

SHAPE = (48, 48, 48)
C = np.array([23.5, 23.5, 23.5])


def _sphere(centre, radius):
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


def _offset_truth(r, big_r, d, normals_from_core):
    # along the radial normal u from the core centre (offset d along +x from the particle centre):
    # |d x + (r + t) u| = R  ->  t = -(r + d u_x) + sqrt((r + d u_x)^2 - (r^2 + d^2 + 2 r d u_x - R^2))
    ux = normals_from_core[:, 2]
    b = r + d * ux
    return -b + np.sqrt(b**2 - (r**2 + d**2 + 2 * r * d * ux - big_r**2))


def test_uniform_shell_from_masks_and_fields():
    core, part = _sphere(C, 8), _sphere(C, 14)
    res = shell_thickness(core, part, voxel_size=0.5)
    s = res.summary(threshold=2.0)
    assert s["mean"] == pytest.approx(3.0, abs=0.25)  # 6 voxels of 0.5 nm
    assert s["std"] < 0.2 and s["coverage"] == 1.0 and s["unknown_fraction"] == 0
    # continuous fields (a blurred reconstruction): levels at half height
    from scipy.ndimage import gaussian_filter
    res2 = shell_thickness(gaussian_filter(core * 1.0, 1.5), gaussian_filter(part * 1.0, 1.5))
    assert res2.summary()["mean"] == pytest.approx(6.0, abs=0.5)
    m, lat, lon = res.spherical_map(6, 12)
    assert m.shape == (6, 12) and np.nanmax(np.abs(m - 3.0)) < 0.5 and np.isfinite(m).mean() > 0.9


def test_thinned_side_is_found_and_coverage_matches_geometry():
    r, big_r, d = 8.0, 14.0, 4.0
    core, part = _sphere(C + [0, 0, d], r), _sphere(C, big_r)  # core shifted towards +x: thin on +x
    res = shell_thickness(core, part)
    s = res.summary(threshold=4.0)
    assert s["min"] == pytest.approx(big_r - r - d, abs=1.0)  # 2 voxels
    assert s["thin_direction"][2] > 0.9  # the thin side is +x
    u = res.points - (C + [0, 0, d])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    truth = _offset_truth(r, big_r, d, u)
    assert np.median(np.abs(res.thickness - truth)) < 0.5
    assert s["coverage"] == pytest.approx((truth > 4.0).mean(), abs=0.05)


def test_border_and_errors():
    core, part = _sphere([23.5, 23.5, 10], 6), _sphere([23.5, 23.5, 2], 14)  # particle cut by the x = 0 face
    res = shell_thickness(core, part)
    assert 0 < res.summary()["unknown_fraction"] < 1
    with pytest.raises(ShapeError):
        shell_thickness(np.zeros((4, 4, 4), bool), np.zeros((5, 4, 4), bool))
    with pytest.raises(ChemtomoError, match="no core surface"):
        shell_thickness(np.zeros(SHAPE), _sphere(C, 5) * 1.0)
    with pytest.raises(ChemtomoError, match="swapped"):
        shell_thickness(_sphere(C, 14), _sphere(C, 6))
