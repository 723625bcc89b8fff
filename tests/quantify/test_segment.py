import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.quantify import element_masks, segment_particles
from chemtomo.testing import ball

SHAPE = (40, 40, 56)


def _sphere(centre, radius, shape=SHAPE):
    g = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


def test_touching_particles_are_separated_and_sized():
    a, b = _sphere((20, 20, 18), 9), _sphere((20, 20, 35), 9)  # centres 17 apart: they overlap in a neck
    vol = (a | b).astype(float) * 5.0
    rng = np.random.default_rng(0)
    vol += rng.normal(0, 0.3, SHAPE)
    vol[3:5, 3:5, 3:5] = 5.0  # an 8-voxel speck of noise
    parts = segment_particles(vol)
    assert parts.n == 2
    truth = (a | b).sum()
    assert parts.sizes.sum() == pytest.approx(truth, rel=0.03)
    assert parts.sizes[0] == pytest.approx(truth / 2, rel=0.08) and parts.sizes[1] == pytest.approx(truth / 2, rel=0.08)
    # each label sits on one sphere
    for k in (1, 2):
        m = parts.mask(k)
        assert max((m & a).sum(), (m & b).sum()) > 0.95 * m.sum()
    assert not parts.touches_border.any()
    assert segment_particles(vol, separate=False).n == 1


def test_border_particle_is_flagged_and_cavity_filled():
    shell = _sphere((20, 20, 28), 12) & ~_sphere((20, 20, 28), 6)  # hollow: the cavity must be filled
    cut = _sphere((20, 20, 0), 6)  # cut by the x = 0 face
    parts = segment_particles((shell | cut).astype(float), min_distance=8)
    assert parts.n == 2
    assert parts.touches_border.tolist() == [False, True]
    assert parts.mask(1).sum() == _sphere((20, 20, 28), 12).sum()
    with pytest.raises(ChemtomoError, match="particle 3 does not exist"):
        parts.mask(3)


def test_element_masks_follow_the_majority_element():
    core, whole = _sphere((20, 20, 28), 6), _sphere((20, 20, 28), 12)
    au, ag = core.astype(float), (whole & ~core).astype(float)
    parts = segment_particles(au * 3 + ag)
    masks = element_masks({"Au": au, "Ag": ag}, parts)
    assert np.array_equal(masks["Au"], core) and np.array_equal(masks["Ag"], whole & ~core)


def test_errors():
    with pytest.raises(ChemtomoError, match="no particle left"):
        segment_particles(np.zeros(SHAPE))
    with pytest.raises(ChemtomoError, match="NaN"):
        segment_particles(np.full(SHAPE, np.nan))
    with pytest.raises(ShapeError):
        segment_particles(np.zeros((4, 4)))
    parts = segment_particles(ball(SHAPE, 8).astype(float))
    with pytest.raises(ShapeError, match="one grid"):
        element_masks({"Au": np.zeros((4, 4, 4))}, parts)
    with pytest.raises(ChemtomoError, match="fraction"):
        element_masks({"Au": ball(SHAPE, 8)}, parts, fraction=0)


def test_data_driven_min_size_drops_blobs_far_smaller_than_the_particles():
    big, other = _sphere((20, 20, 14), 9), _sphere((20, 20, 40), 7)  # 3071 and 1419 voxels
    blob = _sphere((6, 6, 40), 2.5)  # 81 voxels: above the fixed 27, below a twentieth of the largest
    vol = (big | other | blob).astype(float)
    assert segment_particles(vol).n == 3  # the fixed default keeps it
    parts = segment_particles(vol, min_size=None)
    assert parts.n == 2 and parts.sizes.tolist() == [big.sum(), other.sum()]
    # a bump on a particle seeds a watershed piece of its own (154 voxels), which joins its particle
    bump = _sphere((20, 20, 14 + 11), 3.5)
    assert segment_particles((big | bump).astype(float)).n == 2
    parts = segment_particles((big | bump).astype(float), min_size=None)
    assert parts.n == 1 and parts.sizes[0] == (big | bump).sum()
    with pytest.raises(ChemtomoError, match="min_size"):
        segment_particles(vol, min_size=0)


@pytest.mark.parametrize("scale", [1, 2])
def test_seeds_from_the_data_split_a_neck_and_not_a_rough_particle_at_any_voxel_size(scale):
    """With min_distance=None the watershed seeds stand a fifth of their object's inscribed radius above the
    saddle: two touching spheres give two particles and a rough single one stays one, at both voxel sizes
    (a fixed min_distance of 3 voxels cuts the rough sphere into pieces at the finer one)."""
    shape = tuple(scale * n for n in (40, 40, 56))
    rng = np.random.default_rng(1)
    pair = (_sphere((20 * scale, 20 * scale, 18 * scale), 9 * scale, shape)
            | _sphere((20 * scale, 20 * scale, 35 * scale), 9 * scale, shape)).astype(float)
    rough = _sphere((20 * scale, 20 * scale, 28 * scale), 10 * scale, shape)  # a particle with four bumps
    for dy, dx in ((0, 11), (0, -11), (11, 0), (-11, 0)):
        rough |= _sphere(((20 + dy) * scale, 20 * scale, (28 + dx) * scale), 5 * scale, shape)
    rough = rough.astype(float)
    for vol, n in ((pair, 2), (rough, 1)):
        noisy = 5.0 * vol + rng.normal(0, 0.3, shape)
        assert segment_particles(noisy, min_size=None, min_distance=None).n == n
    if scale == 2:
        assert segment_particles(5.0 * rough + rng.normal(0, 0.3, shape), min_distance=3).n > 1
