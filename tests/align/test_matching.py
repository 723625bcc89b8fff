import numpy as np
import pytest

from chemtomo.align import projection_matching, xcorr_shifts
from chemtomo.align.com import remove_translation
from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.acquisition import random_shifts
from chemtomo.core.shifts import apply_shifts
from chemtomo.simulate.phantoms import phantom_from_spec
from chemtomo.simulate.series import Acquisition, simulate_series

ANGLES = np.linspace(-70, 70, 36)
PHANTOM = phantom_from_spec("core-shell:rod", ["Au", "Ag"], (48, 48, 48), seed=0)


def rms_error(est, true):
    return np.sqrt((remove_translation(est - true, ANGLES) ** 2).mean(axis=0))


def series(drift, rng=1):
    s = simulate_series(PHANTOM, ANGLES, signals=("HAADF",), dose=1e5, acquisition=Acquisition(drift=drift), rng=rng)
    return s["HAADF"].data, np.array(s.metadata["shifts"])


@pytest.mark.slow
def test_matching_from_xcorr_start():
    p, true = series(2.5)
    est, info = projection_matching(p, ANGLES, shifts0=xcorr_shifts(p, ANGLES), iterations=3,
                                      recon_iterations=10)
    assert np.all(rms_error(est, true) < 0.5)
    assert info["iterations"] <= 3
    assert info["volume"].shape == (48, 48, 48)


def test_matching_random_walk():
    p, _ = series(0.0)
    true = random_shifts(36, 0.8, walk=True, rng=5)
    moved = np.random.default_rng(6).poisson(apply_shifts(p, true)).astype(np.float32)
    est, info = projection_matching(moved, ANGLES, shifts0=xcorr_shifts(moved, ANGLES), iterations=3,
                                    recon_iterations=10)
    assert np.all(rms_error(est, true) < 0.5)


def test_matching_binned():
    p, true = series(2.5)
    seen = []
    est, info = projection_matching(p, ANGLES, iterations=4, binning=2, lowpass=0.5,
                                    progress=lambda *a: seen.append(a))
    assert np.all(rms_error(est, true) < 0.5)
    # one progress step per round; the bar ends full when the tolerance stops the rounds early
    n = info["iterations"]
    assert seen == [("projection matching", i, 4) for i in range(1, n)] + [("projection matching", 4, 4)]


def test_matching_errors():
    with pytest.raises(ChemtomoError, match="one angle per image"):
        projection_matching(np.ones((3, 8, 8)), [0, 10])
    with pytest.raises(ChemtomoError, match="shifts0"):
        projection_matching(np.ones((3, 8, 8)), [0, 10, 20], shifts0=np.zeros((2, 2)))
