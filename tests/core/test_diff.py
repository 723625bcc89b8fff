import numpy as np
import pytest
import torch

from chemtomo.core.diff import Gradient, divergence, gradient
from chemtomo.core.errors import ShapeError
from chemtomo.testing import check_operator


@pytest.mark.parametrize("shape", [(4, 9, 7), (1, 6, 5), (2, 3, 4, 5)])
def test_adjoint_identity(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape[:-3] + (3,) + shape[-3:]).astype(np.float32)
    lhs = np.vdot(gradient(x).astype(np.float64), g)
    rhs = -np.vdot(x.astype(np.float64), divergence(g))
    assert abs(lhs - rhs) / (np.linalg.norm(x) * np.linalg.norm(g)) < 1e-5


def test_values_and_neumann_boundary():
    x = np.zeros((3, 4, 5), np.float32)
    x[:] = np.arange(5.0)  # ramp along x only
    g = gradient(x)
    assert g.shape == (3, 3, 4, 5)
    assert np.all(g[0] == 0) and np.all(g[1] == 0)
    assert np.all(g[2][..., :-1] == 1) and np.all(g[2][..., -1] == 0)
    assert np.allclose(gradient(np.ones((2, 3, 4), np.float32)), 0)


def test_operator_and_norm_bound():
    D = Gradient((3, 8, 8))
    assert check_operator(D) < 1e-5
    assert D.norm() == pytest.approx(np.sqrt(12))
    est = super(Gradient, D).norm(iterations=100)  # power method stays below the bound
    assert 3.0 < est <= np.sqrt(12) + 1e-4
    x = torch.rand(3, 8, 8)
    assert isinstance(D(x), torch.Tensor) and torch.allclose(D.T(D(x)), -torch.from_numpy(divergence(gradient(x.numpy()))))


def test_shape_errors():
    with pytest.raises(ShapeError):
        gradient(np.zeros((4, 4)))
    with pytest.raises(ShapeError):
        divergence(np.zeros((2, 4, 4, 4)))
