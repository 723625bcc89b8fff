import numpy as np
import torch
from scipy.stats import poisson

from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import mlem, sirt
from chemtomo.recon.stopping import Discrepancy, expected_poisson_deviance, poisson_deviance
from chemtomo.testing import core_shell, nrmse


def test_expected_deviance_matches_monte_carlo():
    rng = np.random.default_rng(0)
    for lam in [0.05, 0.7, 3.0, 25.0, 100.0]:
        b = torch.from_numpy(rng.poisson(lam, 200_000).astype(np.float32))
        lam_t = torch.full_like(b, lam)
        mc = float(poisson_deviance(b, lam_t).mean())
        assert abs(float(expected_poisson_deviance(lam_t[:1])) - mc) < 0.02 * max(mc, 0.2)


def test_discrepancy_stops_near_the_best_iteration():
    shape = (4, 40, 40)
    parts = core_shell(shape, 7, 14)
    truth = 2 * parts["core"] + parts["shell"]
    op = Projector(TiltGeometry(np.linspace(-70, 70, 15), shape))
    counts = np.random.default_rng(1).poisson(op(truth) * 0.5).astype(np.float32)
    errors = [nrmse(mlem(op, counts, k) / 0.5, truth) for k in range(1, 60)]
    best = int(np.argmin(errors)) + 1
    stop = Discrepancy(op, counts)
    x = mlem(op, counts, 200, callback=stop)
    assert stop.stopped_at is not None and stop.stopped_at + 1 < 60
    assert abs((stop.stopped_at + 1) - best) <= max(3, best // 2)
    assert nrmse(x / 0.5, truth) < 1.15 * min(errors)
    ratios = [r for _, r in stop.history]
    assert ratios[-1] <= 1.0 < ratios[0]


def test_gaussian_discrepancy():
    shape = (2, 32, 32)
    truth = core_shell(shape, 6, 12)["shell"]
    op = Projector(TiltGeometry(np.linspace(-70, 70, 29), shape))
    sigma = 0.5
    data = op(truth) + np.random.default_rng(2).normal(0, sigma, op.range_shape).astype(np.float32)
    stop = Discrepancy(op, data, noise=sigma)
    sirt(op, data, 500, callback=stop)
    assert stop.stopped_at is not None and stop.stopped_at < 499
