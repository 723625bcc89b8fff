"""The oracle baseline helper: best iterate and filter width, checked against a brute-force search."""

import numpy as np
from scipy.ndimage import gaussian_filter

from chemtomo.testing import nrmse, oracle_filtered


def test_oracle_filtered_finds_the_best_checked_iterate_and_width():
    truth = np.zeros((8, 8, 8), np.float32)
    truth[2:6, 2:6, 2:6] = 1.0
    rng = np.random.default_rng(0)
    iterates = [truth + rng.normal(0, 1.0 / (k + 1), truth.shape).astype(np.float32) for k in range(12)]

    def method(op, data, iterations, *, callback, shift=0.0):
        for i in range(iterations):
            callback(i, 2.0 * (iterates[i] + shift))  # scale 2

    err, it, sigma, vol = oracle_filtered(method, None, None, truth, 12, scale=2.0, sigmas=(0.0, 0.7), every=5,
                                          dense=2, shift=0.0)
    checked = [1, 2, 5, 10]
    scores = {(k, s): nrmse(gaussian_filter(iterates[k - 1], s) if s else iterates[k - 1], truth)
              for k in checked for s in (0.0, 0.7)}
    best = min(scores, key=scores.get)
    assert (it, sigma) == best and np.isclose(err, scores[best])
    assert np.isclose(nrmse(vol, truth), err)
