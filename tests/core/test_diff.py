import numpy as np
import pytest
import torch

from chemtomo.core.diff import DirectionalGradient, Gradient, divergence, edge_directions, gradient
from chemtomo.core.errors import ChemtomoError, ShapeError
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


def _ramp_guide(shape=(6, 7, 8)):
    guide = np.zeros(shape, np.float32)
    guide[..., shape[-1] // 2:] = 10.0  # one plane edge normal to x
    return guide


@pytest.mark.parametrize("shape", [(6, 7, 8), (2, 6, 7, 8)])
def test_directional_gradient_adjoint_and_buffer_forms(shape):
    xi = edge_directions(np.random.default_rng(1).random(shape[-3:]).astype(np.float32), smooth=1.0)
    D = DirectionalGradient(shape, xi, 0.9)
    assert check_operator(D) < 1e-5
    x, g = torch.rand(shape), torch.rand(D.range_shape)
    out = torch.empty(D.range_shape)
    assert torch.allclose(D._apply_into(x, out), D._apply(x))
    acc = torch.ones(shape)
    assert torch.allclose(D._adjoint_add(g, acc, 0.5), 1 + 0.5 * D._apply_adjoint(g), atol=1e-6)
    assert torch.allclose(DirectionalGradient(shape, xi, 0.0)._apply(x), Gradient(shape)._apply(x))


def test_directional_gradient_removes_the_guide_edge_component():
    xi = edge_directions(_ramp_guide(), smooth=0, eta=1e-3)
    assert torch.allclose(xi[2, :, :, 3], torch.ones(6, 7), atol=1e-3)  # the edge: unit normal along x
    assert float(xi[:, :, :, :3].abs().max()) == 0.0  # flat: no normal
    x = torch.rand(6, 7, 8)
    g, dg = Gradient((6, 7, 8))._apply(x), DirectionalGradient((6, 7, 8), xi, 1.0)._apply(x)
    assert torch.allclose(dg[2, :, :, 3], torch.zeros(6, 7), atol=1e-3)  # jump across the guide edge is free
    assert torch.equal(dg[:2], g[:2]) and torch.equal(dg[2, :, :, :3], g[2, :, :, :3])  # everything else is TV


def test_edge_direction_errors():
    with pytest.raises(ShapeError):
        edge_directions(np.zeros((4, 4)))
    with pytest.raises(ChemtomoError, match="NaN"):
        edge_directions(np.full((3, 3, 3), np.nan))
    xi = edge_directions(_ramp_guide())
    with pytest.raises(ShapeError, match="do not fit"):
        DirectionalGradient((6, 7, 9), xi)
    with pytest.raises(ChemtomoError, match="gamma"):
        DirectionalGradient((6, 7, 8), xi, 1.5)
