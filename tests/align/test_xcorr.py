import numpy as np
import pytest

from chemtomo.align import register, xcorr_shifts
from chemtomo.align.com import remove_translation
from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.acquisition import random_shifts
from chemtomo.core.shifts import apply_shifts
from chemtomo.simulate.phantoms import phantom_from_spec
from chemtomo.simulate.series import Acquisition, simulate_series

ANGLES = np.linspace(-70, 70, 71)


def rms_error(est, true, angles):
    """RMS (dy, du) error after removing what no alignment can observe (volume translation)."""
    return np.sqrt((remove_translation(est - true, angles) ** 2).mean(axis=0))


def haadf(spec="core-shell:rod,core=icosahedron", drift=2.5, rng=1):
    ph = phantom_from_spec(spec, ["Au", "Ag"], (48, 48, 48), seed=0)
    s = simulate_series(ph, ANGLES, signals=("HAADF",), dose=1e5, acquisition=Acquisition(drift=drift), rng=rng)
    return s["HAADF"].data, np.array(s.metadata["shifts"])


def test_register_subpixel():
    rng = np.random.default_rng(0)
    from scipy import ndimage

    img = ndimage.gaussian_filter(rng.random((64, 64)), 3)
    true = rng.uniform(-4, 4, (6, 2))
    from chemtomo.align import fourier_shift

    moved = fourier_shift(np.stack([img] * 6), true)
    est = register(moved, np.stack([img] * 6).astype(np.float32), upsample=20)
    assert np.abs(est - true).max() < 0.05


@pytest.mark.parametrize("reference", ["running", "central"])
def test_xcorr_recovers_drift(reference):
    p, true = haadf()
    est = xcorr_shifts(p, ANGLES, reference=reference)
    assert est.shape == (71, 2)
    assert np.all(rms_error(est, true, ANGLES) < 0.5)


def test_xcorr_centred_object_mean_only():
    p, true = haadf("core-shell:rod,position=centre,size=0.6,core=icosahedron", drift=3.0)
    d = xcorr_shifts(p, ANGLES) - true
    assert np.all(np.sqrt(((d - d.mean(0)) ** 2).mean(0)) < 0.5)


def test_xcorr_random_walk():
    p, _ = haadf(drift=0.0)
    true = random_shifts(71, 0.7, walk=True, rng=3)
    moved = np.random.default_rng(4).poisson(apply_shifts(p, true)).astype(np.float32)
    est = xcorr_shifts(moved, ANGLES, stretch=True)
    assert np.all(rms_error(est, true, ANGLES) < 0.5)


def test_xcorr_errors():
    p = np.ones((3, 8, 8))
    with pytest.raises(ChemtomoError, match="reference"):
        xcorr_shifts(p, reference="first")
    with pytest.raises(ChemtomoError, match="angles"):
        xcorr_shifts(p, stretch=True)
    with pytest.raises(ChemtomoError, match="one angle per image"):
        xcorr_shifts(p, [0, 1])
