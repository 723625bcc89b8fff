import numpy as np
import pytest
import torch

from chemtomo.core.errors import ChemtomoError, DataError, ShapeError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.mlem import mlem
from chemtomo.testing import core_shell, nrmse

SHAPE = (4, 48, 48)


@pytest.fixture(scope="module")
def setup():
    cs = core_shell(SHAPE, 8, 16)
    truth = 20 * cs["core"] + 10 * cs["shell"]  # counts per voxel length
    A = Projector(TiltGeometry(np.arange(-70, 71, 3.0), SHAPE))
    return A, truth, A(truth)


def test_first_step_matches_formula(setup):
    A, _, p = setup
    ones = np.ones(SHAPE, np.float32)
    c = p.sum() / A(ones).sum()
    x0 = c * ones
    sens = A.T(np.ones(A.range_shape, np.float32))
    ratio = p / A(x0)
    expected = np.where(sens > 1e-6, x0 / np.maximum(sens, 1e-6), 0) * A.T(ratio)
    assert np.allclose(mlem(A, p, 1), expected, rtol=1e-4, atol=1e-5)
    # the default start is that uniform volume
    assert np.allclose(mlem(A, p, 1, x0=x0), expected, rtol=1e-4, atol=1e-5)


def test_converges_nonnegative_and_keeps_counts(setup):
    A, truth, p = setup
    rec = mlem(A, p, 100)
    assert rec.min() >= 0
    assert nrmse(rec, truth) < 0.13  # measured 0.100
    assert A(rec).sum() == pytest.approx(p.sum(), rel=1e-3)  # MLEM preserves total counts


def test_osem_speeds_up(setup):
    A, truth, p = setup
    err_osem = nrmse(mlem(A, p, 10, subsets=8), truth)
    assert err_osem < nrmse(mlem(A, p, 10), truth)
    assert err_osem < 0.13  # measured 0.100


def test_background_mask_callback_types_inputs(setup):
    A, truth, p = setup
    bg = 2.0
    rng = np.random.default_rng(1)
    counts = rng.poisson(p + bg).astype(np.float32)
    keep = counts.copy()
    mask = truth > 0
    seen = []
    rec = mlem(A, torch.from_numpy(counts), 30, background=bg, mask=mask,
               callback=lambda i, x: seen.append(i) or i == 9)
    assert isinstance(rec, torch.Tensor) and seen == list(range(10))
    assert torch.all(rec[~torch.from_numpy(mask)] == 0) and rec.min() >= 0
    assert np.array_equal(counts, keep)
    with_bg = nrmse(rec.numpy(), truth)
    without = nrmse(mlem(A, counts, 10, mask=mask), truth)
    assert with_bg < without  # modelling the background removes its bias


def test_errors(setup):
    A, _, p = setup
    neg = p.copy()
    neg[0, 0, 0] = -1
    with pytest.raises(DataError, match="negative"):
        mlem(A, neg)
    with pytest.raises(ShapeError):
        mlem(A, p[:-1])
    with pytest.raises(DataError):
        mlem(A, p, x0=-np.ones(SHAPE, np.float32))
    with pytest.raises(ChemtomoError, match="background"):
        mlem(A, p, background=-1.0)
    with pytest.raises(ChemtomoError, match="Projector"):
        mlem(2.0 * A, p, subsets=4)
