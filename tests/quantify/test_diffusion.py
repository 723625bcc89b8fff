import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.quantify.diffusion import diffuse, fit_diffusion
from chemtomo.testing import ball


def _core_shell(shape=(20, 20, 20)):
    mask = ball(shape, 9).astype(bool)
    core = ball(shape, 5, centre=(1.0, 0.0, -1.0)).astype(bool)  # off-centre: no symmetry to lean on
    return np.where(core, 1.0, 0.0) * mask, mask


def test_mass_is_conserved_inside_the_mask():
    c0, mask = _core_shell()
    c = diffuse(c0, 2.0, 10.0, voxel_size=0.5, mask=mask)
    assert c.sum() == pytest.approx(c0.sum(), rel=1e-6)
    assert np.all(c[~mask] == 0)
    assert c.min() >= -1e-12 and c.max() <= 1 + 1e-12  # explicit scheme within its stability limit
    # long times: homogeneous at the mean composition
    flat = diffuse(c0, 2.0, 60.0, voxel_size=0.5, mask=mask)
    assert np.allclose(flat[mask], c0[mask].mean(), atol=1e-3)


def test_step_broadens_like_sqrt_2_D_t():
    n, h, D, t = 80, 0.5, 0.3, 20.0  # nm, nm^2/s, s
    c0 = np.zeros((2, 3, n))
    c0[..., : n // 2] = 1.0  # 1D-like: uniform across y and z
    c = diffuse(c0, D, t, voxel_size=h)
    profile = c[0, 0]
    flux = -np.diff(profile)  # derivative of the error-function profile, a Gaussian of variance 2 D t
    x = (np.arange(n - 1) + 0.5) * h
    mean = (flux * x).sum() / flux.sum()
    var = (flux * (x - mean) ** 2).sum() / flux.sum()
    assert flux.sum() == pytest.approx(1.0, abs=1e-6)
    assert var == pytest.approx(2 * D * t, rel=0.02)
    assert np.allclose(c, c[:1, :1])  # stays 1D


def test_known_D_is_recovered():
    c0, mask = _core_shell()
    D, h, times = 0.8, 0.5, [0.0, 2.0, 5.0, 9.0]
    vols = [diffuse(c0, D, t, voxel_size=h, mask=mask) for t in times]
    d_fit, info = fit_diffusion(vols, times, voxel_size=h, mask=mask)
    assert d_fit == pytest.approx(D, rel=0.05)  # measured < 0.1 %
    assert info["rms"] < 1e-3
    # times may start anywhere: only the differences count
    d_shift, _ = fit_diffusion(vols, [t + 100.0 for t in times], voxel_size=h, mask=mask)
    assert d_shift == pytest.approx(d_fit, rel=1e-6)


def test_bad_inputs():
    c0, mask = _core_shell((8, 8, 8))
    with pytest.raises(ChemtomoError, match="non-negative"):
        diffuse(c0, -1.0, 1.0, voxel_size=1.0)
    with pytest.raises(ShapeError):
        diffuse(c0, 1.0, 1.0, voxel_size=1.0, mask=np.ones((2, 2, 2), bool))
    with pytest.raises(ChemtomoError, match="increasing"):
        fit_diffusion([c0, c0], [1.0, 1.0], voxel_size=1.0)
    with pytest.raises(ChemtomoError, match="at least two"):
        fit_diffusion([c0], [0.0], voxel_size=1.0)
