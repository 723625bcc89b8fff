import numpy as np
import pytest

from chemtomo.core.data import TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.quantify.particles import quantify_volumes
from chemtomo.quantify.uncertainty import split_uncertainty
from chemtomo.recon.series import reconstruct_series

SHAPE = (20, 28, 28)
ANGLES = np.linspace(-70, 70, 15)


def _alloy():
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    ball = sum((gi - (n - 1) / 2) ** 2 for gi, n in zip(g, SHAPE)) <= 7.0**2
    return {"Au": ball * 0.3, "Ag": ball * 0.7}


@pytest.mark.slow
def test_split_uncertainty_matches_the_spread_over_repeats():
    truth = _alloy()
    op = Projector(TiltGeometry(ANGLES, SHAPE))
    mean = {e: 0.4 * op(v.astype(np.float32)) for e, v in truth.items()}  # about 2 counts per pixel on the particle
    values, predicted = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        series = TiltSeries.from_arrays({e: rng.poisson(m).astype(np.float32) for e, m in mean.items()}, ANGLES)
        kw = {"iterations": 15, "thickness": SHAPE[1]}
        vs = reconstruct_series(series, "mlem", **kw)
        full = quantify_volumes(vs.volumes, min_distance=10)
        assert len(full["rows"]) == 1
        sd = split_uncertainty(series, "mlem", full, n_splits=3, rng=seed, quantify_options={"min_distance": 10}, **kw)
        values.append(full["rows"][0]["at_Au"])
        predicted.append(sd[0]["at_Au_sd"])
    actual = np.std(values, ddof=1)
    assert np.mean(values) == pytest.approx(0.3, abs=0.03)
    # measured: predicted 0.0050, spread over the 8 repeats 0.0063 at.fraction
    assert 0.5 < np.mean(predicted) / actual < 2.0, (np.mean(predicted), actual)


def test_needs_counts():
    series = TiltSeries.from_arrays({"HAADF": np.ones((15, 20, 28), np.float32)}, ANGLES, units={"HAADF": "a.u."})
    with pytest.raises(ChemtomoError, match="count"):
        split_uncertainty(series, "sirt", {"rows": [], "labels": np.zeros(SHAPE, int)})


def test_progress_counts_the_half_reconstructions():
    truth = _alloy()
    op = Projector(TiltGeometry(ANGLES, SHAPE))
    rng = np.random.default_rng(0)
    series = TiltSeries.from_arrays({e: rng.poisson(0.4 * op(v.astype(np.float32))).astype(np.float32)
                                     for e, v in truth.items()}, ANGLES)
    kw = {"iterations": 3, "thickness": SHAPE[1]}
    vs = reconstruct_series(series, "mlem", **kw)
    full = quantify_volumes(vs.volumes, min_distance=10)
    seen = []
    split_uncertainty(series, "mlem", full, n_splits=1, quantify_options={"min_distance": 10},
                      progress=lambda *a: seen.append(a), **kw)
    assert [a for a in seen if a[0] == "uncertainty"] == [("uncertainty", i, 2) for i in range(3)]
    assert ("Au", 3, 3) in seen and ("Ag", 3, 3) in seen  # each reconstruction's iterations
