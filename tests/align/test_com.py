import numpy as np
import pytest

from chemtomo.align import centre_of_mass, com_shifts, sinusoid_fit
from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.phantoms import phantom_from_spec
from chemtomo.simulate.series import Acquisition, simulate_series

ANGLES = np.linspace(-70, 70, 71)


def test_sinusoid_fit_recovers_parameters():
    th = np.deg2rad(ANGLES)
    u = 3.0 * np.cos(th) - 2.0 * np.sin(th) + 1.25
    params, res = sinusoid_fit(u, ANGLES)
    assert np.allclose(params, [3.0, -2.0, 1.25]) and np.abs(res).max() < 1e-9


def test_com_shifts_centred_phantom():
    ph = phantom_from_spec("core-shell:rod,position=centre,size=0.6", ["Au", "Ag"], (48, 48, 48), seed=0)
    s = simulate_series(ph, ANGLES, signals=("HAADF",), dose=1e5, acquisition=Acquisition(drift=3.0), rng=2)
    true = np.array(s.metadata["shifts"])
    est, info = com_shifts(s["HAADF"].data, ANGLES, offset=False)
    d = est - true
    rms = np.sqrt(((d - d.mean(0)) ** 2).mean(0))
    assert np.all(rms < 0.5)
    assert abs(info["x_c"]) < 1 and abs(info["z_c"]) < 1


def test_centre_of_mass_of_point():
    p = np.zeros((1, 9, 11))
    p[0, 2, 8] = 1
    assert np.allclose(centre_of_mass(p), [[2 - 4, 8 - 5]])


def test_empty_image_raises():
    with pytest.raises(ChemtomoError, match="no positive values"):
        centre_of_mass(np.zeros((2, 4, 4)))
