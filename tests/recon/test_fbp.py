import numpy as np
import pytest
import torch

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.fbp import angular_weights, fbp


def disc_volume(n=64, radius=20, ny=2):
    zz, xx = np.meshgrid(np.arange(n) - (n - 1) / 2, np.arange(n) - (n - 1) / 2, indexing="ij")
    r2 = zz**2 + xx**2
    return np.repeat((r2 <= radius**2)[None].astype(np.float32), ny, axis=0), r2


@pytest.mark.parametrize("filt", ["ramp", "shepp-logan", "hann"])
def test_uniform_disc_reconstructs_to_its_value(filt):
    v, r2 = disc_volume()
    A = Projector(TiltGeometry(np.arange(0.0, 180.0, 1.0), v.shape))
    p = A(v)
    rec = fbp(A, p, filter=filt)
    interior = rec[:, r2 <= 15**2].mean()
    assert abs(interior - 1.0) < 0.02  # measured: 1.0001 for all three filters
    ring = (r2 >= 24**2) & (r2 <= 31**2)  # background inside the field of view of every tilt
    assert abs(rec[:, ring].mean()) < 0.02


def test_nonuniform_angles_keep_scale():
    v, r2 = disc_volume()
    rng = np.random.default_rng(0)
    angles = np.sort(rng.uniform(0, 180, 120))
    A = Projector(TiltGeometry(angles, v.shape))
    rec = fbp(A, A(v))
    assert abs(rec[:, r2 <= 15**2].mean() - 1.0) < 0.03


def test_angular_weights():
    assert np.allclose(np.rad2deg(angular_weights(np.arange(0, 180, 2.0))), 2.0)
    w = np.rad2deg(angular_weights(np.arange(-70, 71, 2.0)))  # limited range: uniform, no wrap
    assert np.allclose(w, 2.0)
    w = np.rad2deg(angular_weights([0.0, 10.0, 30.0, 60.0, 90.0, 120.0, 150.0]))
    assert w.sum() == pytest.approx(180.0)
    assert w[1] == pytest.approx(15.0)


def test_types_inputs_and_errors():
    v, _ = disc_volume(24, 8, 1)
    A = Projector(TiltGeometry(np.arange(0.0, 180.0, 6.0), v.shape))
    p = A(v)
    keep = p.copy()
    out = fbp(A, p, bounds=(0, None), mask=v > 0)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == v.shape
    assert out.min() >= 0 and np.all(out[v == 0] == 0)
    assert np.array_equal(p, keep)
    t = fbp(A, torch.from_numpy(p))
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), fbp(A, p))
    with pytest.raises(ChemtomoError, match="filter"):
        fbp(A, p, filter="cosine")
    with pytest.raises(ShapeError, match=r"\(30, 1, 24\)"):
        fbp(A, p[:-1])
    with pytest.raises(ChemtomoError, match="Projector"):
        fbp(2.0 * A, p)
