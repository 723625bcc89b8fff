import numpy as np
import pytest
import torch

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.testing import ball, check_operator, gaussian_blobs, reference_project


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize(
    "shape, nu, offset, angles",
    [
        ((3, 24, 24), None, 0.0, [-70, -33.3, 0, 12.5, 45, 60, 89.9]),
        ((2, 10, 30), 36, 0.0, [-60, -20, 0, 30, 70]),  # platelet, wider detector
        ((2, 30, 20), 26, 1.37, [-75, -10, 0, 25, 50, 90]),  # thick, sub-pixel axis offset
    ],
)
def test_matches_reference_definition(shape, nu, offset, angles):
    v = gaussian_blobs(shape, rng=1, width=(2.5, 4.0))
    g = TiltGeometry(angles, shape, nu, offset)
    fast = Projector(g)(v)
    slow = reference_project(v, angles, nu, axis_offset=offset)
    assert fast.shape == g.projection_shape
    assert rel(fast, slow) < 5e-3


def blob(shape, centre, width=1.5):
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 - c for n, c in zip(shape, centre)], indexing="ij")
    return np.exp(-sum(g**2 for g in grids) / (2 * width**2)).astype(np.float32)


def centroid_u(p):
    u = np.arange(p.shape[-1]) - (p.shape[-1] - 1) / 2
    return (p * u).sum(-1) / p.sum(-1)


def test_point_above_centre_moves_to_plus_u():
    vol = blob((1, 33, 33), (0, 8, 0))  # z = +8, x = 0
    p = Projector(TiltGeometry([0.0, 30.0, -30.0], vol.shape))(vol)
    np.testing.assert_allclose(centroid_u(p[:, 0]), [0.0, 4.0, -4.0], atol=1e-3)


def test_point_right_of_centre_follows_cosine():
    vol = blob((1, 33, 33), (0, 0, 6))  # x = +6
    p = Projector(TiltGeometry([0.0, 60.0, -60.0], vol.shape))(vol)
    np.testing.assert_allclose(centroid_u(p[:, 0]), [6.0, 3.0, 3.0], atol=1e-3)


def test_axis_offset_shifts_projection():
    vol = blob((1, 21, 21), (0, 0, 0))
    p = Projector(TiltGeometry([0.0, 40.0], vol.shape, 25, axis_offset=2.25))(vol)
    np.testing.assert_allclose(centroid_u(p[:, 0]), [2.25, 2.25], atol=1e-3)


def test_unit_slab_projects_to_one_at_zero_tilt():
    vol = np.zeros((2, 9, 9), np.float32)
    vol[:, 4, :] = 1.0  # one voxel thick along z
    p = Projector(TiltGeometry([0.0], vol.shape, 15))(vol)
    np.testing.assert_allclose(p[0, :, 3:12], 1.0, atol=1e-6)


def test_mass_is_conserved_at_every_tilt():
    vol = blob((2, 40, 40), (0, 3, -2), width=3.0)
    angles = np.linspace(-80, 80, 17)
    p = Projector(TiltGeometry(angles, vol.shape, 48))(vol)
    # each tilt's integral over u equals the volume's mass (line integrals in voxel lengths)
    np.testing.assert_allclose(p.sum(axis=(1, 2)), vol.sum(), rtol=1e-3)


def test_uniform_disc_projection_is_chord_length():
    n = 64
    vol = ball((1, n, n), 20.0)
    p = Projector(TiltGeometry([0.0, 37.0, 90.0], vol.shape))(vol)
    u = np.arange(n) - (n - 1) / 2
    chord = 2 * np.sqrt(np.clip(20.0**2 - u**2, 0, None))
    inner = np.abs(u) < 15
    # a voxelised disc's chord differs from the analytic one by at most a voxel at each end
    np.testing.assert_allclose(p[:, 0, inner], np.broadcast_to(chord[inner], (3, inner.sum())), atol=2.0)
    assert abs(p[:, 0, inner].mean() - chord[inner].mean()) < 0.3


@pytest.mark.parametrize("shape, nu, offset", [((3, 16, 16), None, 0.0), ((2, 8, 20), 27, -0.6), ((2, 20, 12), 14, 0.3)])
def test_adjoint(shape, nu, offset):
    op = Projector(TiltGeometry(np.linspace(-70, 70, 13), shape, nu, offset))
    check_operator(op)
    assert op.T.T is op


def test_numpy_and_torch_agree_and_types_follow_input():
    v = gaussian_blobs((4, 16, 16))
    op = Projector(TiltGeometry(np.linspace(-60, 60, 9), v.shape))
    p_np = op(v)
    p_t = op(torch.from_numpy(v))
    assert isinstance(p_np, np.ndarray) and isinstance(p_t, torch.Tensor)
    np.testing.assert_allclose(p_np, p_t.numpy(), rtol=1e-6)


def test_batched_equals_slice_by_slice():
    v = gaussian_blobs((5, 12, 12), rng=3)
    op = Projector(TiltGeometry([-50, 0, 20, 65], v.shape))
    full = op(v)
    for i in range(5):
        single = Projector(TiltGeometry([-50, 0, 20, 65], (1, 12, 12)))(v[i : i + 1])
        np.testing.assert_allclose(full[:, i : i + 1], single, rtol=1e-6, atol=1e-6)


def test_geometry_slicing_selects_tilts():
    v = gaussian_blobs((2, 12, 12))
    g = TiltGeometry([-40, -10, 0, 30, 60], v.shape)
    full = Projector(g)(v)
    np.testing.assert_allclose(Projector(g[[1, 3]])(v), full[[1, 3]], rtol=1e-6)


def test_shape_mismatch_is_a_clear_error():
    op = Projector(TiltGeometry([0, 10], (2, 8, 8)))
    with pytest.raises(ShapeError, match=r"\(2, 8, 8\)"):
        op(np.zeros((2, 8, 9), np.float32))


def test_bad_geometry_is_rejected():
    with pytest.raises(ChemtomoError, match="degrees"):
        TiltGeometry([0, 1.2, 720], (2, 8, 8))
    with pytest.raises(ChemtomoError, match="NaN"):
        TiltGeometry([0, np.nan], (2, 8, 8))
    with pytest.raises(ChemtomoError, match="volume_shape"):
        TiltGeometry([0], (8, 8))


def test_geometry_value_semantics():
    a = TiltGeometry(np.arange(-60, 61, 30), (2, 8, 8))
    b = TiltGeometry([-60, -30, 0, 30, 60], (2, 8, 8), 8)
    assert a == b and hash(a) == hash(b)
    assert "np.arange(-60, 75, 30)" in repr(a)
    assert eval(repr(a), {"np": np, "TiltGeometry": TiltGeometry}) == a


def test_composition_and_scaling():
    v = gaussian_blobs((2, 10, 10))
    op = Projector(TiltGeometry([0, 45], v.shape))
    np.testing.assert_allclose((2.0 * op)(v), 2 * op(v), rtol=1e-6)
    normal = op.T @ op
    np.testing.assert_allclose(normal(v), op.T(op(v)), rtol=1e-6)
    with pytest.raises(TypeError):
        op * op


def test_norm_estimate_is_close_to_largest_singular_value():
    op = Projector(TiltGeometry(np.linspace(-60, 60, 7), (1, 10, 10)))
    dense = op.matrix().toarray()
    assert op.norm(iterations=100) == pytest.approx(np.linalg.norm(dense, 2), rel=1e-3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    v = gaussian_blobs((4, 16, 16))
    op = Projector(TiltGeometry(np.linspace(-60, 60, 9), v.shape))
    p = op(torch.from_numpy(v).cuda())
    assert p.is_cuda
    np.testing.assert_allclose(p.cpu().numpy(), op(v), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(op.T(p).cpu().numpy(), op.T(op(v)), rtol=1e-4, atol=1e-4)
