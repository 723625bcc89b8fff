"""Test-session settings: one torch thread per test process.

`make test` runs two test processes (pytest-xdist) on the project's 2-core machines; with torch's
default of one thread per core each, the processes would oversubscribe the cores, which made
some runs many times slower (docs/decisions.md).
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # also chemtomo's default (chemtomo.core.threads) when the CLI runs in-process

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

torch.set_num_threads(1)

_FIELD_SHAPE = (40, 40, 72)


def _sphere(centre, radius):
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in _FIELD_SHAPE], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


@pytest.fixture(scope="session")
def particle_field():
    """Noisy Au and Ag volumes of a core-shell and an alloy particle (quantification tests)."""
    # a core-shell particle (Au core r 7, Ag shell to r 12: 2.5 nm at 0.5 nm voxels) and an Au30Ag70 alloy particle
    core, cs = _sphere((20, 20, 18), 7), _sphere((20, 20, 18), 12)
    alloy = _sphere((20, 20, 52), 10)
    au = core * 1.0 + alloy * 0.3
    ag = (cs & ~core) * 1.0 + alloy * 0.7
    rng = np.random.default_rng(0)
    vols = {n: gaussian_filter(v, 0.7) + rng.normal(0, 0.03, _FIELD_SHAPE) for n, v in (("Au", au), ("Ag", ag))}
    return vols
