import numpy as np
import pytest
import torch

from chemtomo.core.errors import ShapeError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.cgls import cgls
from chemtomo.testing import core_shell, nrmse

SHAPE = (4, 48, 48)


@pytest.fixture(scope="module")
def setup():
    cs = core_shell(SHAPE, 8, 16)
    truth = 2 * cs["core"] + cs["shell"]
    A = Projector(TiltGeometry(np.arange(-70, 71, 3.0), SHAPE))
    return A, truth, A(truth)


def test_first_step_is_exact_line_search(setup):
    A, _, p = setup
    s = A.T(p).astype(np.float64)
    q = A(s.astype(np.float32)).astype(np.float64)
    expected = (np.sum(s * s) / np.sum(q * q)) * s
    assert np.allclose(cgls(A, p, 1), expected, rtol=1e-4, atol=1e-6)


def test_converges_and_residual_decreases(setup):
    A, truth, p = setup
    res = []
    rec = cgls(A, p, 30, callback=lambda i, x: res.append(np.linalg.norm(A(x) - p)) or False)
    assert nrmse(rec, truth) < 0.15  # measured 0.124
    assert all(b <= a * (1 + 1e-4) for a, b in zip(res, res[1:]))


def test_unconstrained_mask_inputs_and_types(setup):
    A, truth, p = setup
    keep = p.copy()
    rec = cgls(A, p, 10)
    assert rec.min() < 0  # unconstrained: ringing goes negative
    mask = truth > 0
    rec_m = cgls(A, torch.from_numpy(p), 10, mask=mask)
    assert isinstance(rec_m, torch.Tensor) and torch.all(rec_m[~torch.from_numpy(mask)] == 0)
    assert nrmse(rec_m.numpy(), truth) < nrmse(rec, truth)
    assert np.array_equal(p, keep)


def test_callback_tol_and_errors(setup):
    A, _, p = setup
    seen = []
    cgls(A, p, 30, callback=lambda i, x: seen.append(i) or i == 2)
    assert seen == [0, 1, 2]
    n = []
    cgls(A, p, 500, tol=1e-2, callback=lambda i, x: n.append(i) or False)
    assert 1 < len(n) < 500
    with pytest.raises(ShapeError):
        cgls(A, p[:, :2])
