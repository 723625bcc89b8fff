"""Noiseless EDX-like projections of a known phantom, scaled to a mean count level in the particle footprint."""

import numpy as np
import pytest

from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.simulate import phantom_from_spec

N = 64


@pytest.fixture(scope="session")
def projection():
    """``expected(rho)``: Ag projections (2 tilts, 64 x 64) with mean rho counts/px on the footprint, 2 % background."""
    vols = phantom_from_spec("core-shell:sphere,ratio=0.6,rotation=none,position=centre", ["Au", "Ag"], (N, N, N),
                             seed=1)
    p = np.asarray(Projector(TiltGeometry([-50.0, 30.0], (N, N, N)))(vols["Ag"]), dtype=np.float64)
    foot = p > 0.01 * p.max()

    def expected(rho):
        return p * rho / p[foot].mean() + 0.02 * rho

    return expected
