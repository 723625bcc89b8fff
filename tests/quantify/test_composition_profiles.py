import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.special import erf

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.quantify.composition import composition, core_shell_regions
from chemtomo.quantify.profiles import interface_width, line_profile, radial_profile
from chemtomo.spectral.quant import cliff_lorimer

SHAPE = (32, 32, 32)
C = np.array([15.5, 15.5, 15.5])


def _sphere(radius, centre=C):
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


def test_alloy_composition_atomic_and_weight():
    m = _sphere(10)
    rng = np.random.default_rng(0)
    au = np.where(m, 0.3 + rng.normal(0, 0.05, SHAPE), 0.0)
    ag = np.where(m, 1.0 - au, 0.0)
    c = composition({"Au": au, "Ag": ag}, m)
    assert c["atomic"]["Au"] == pytest.approx(0.3, abs=0.005)
    w_au = 0.3 * 196.967 / (0.3 * 196.967 + 0.7 * 107.868)
    assert c["weight"]["Au"] == pytest.approx(w_au, abs=0.005) and sum(c["weight"].values()) == pytest.approx(1)
    assert c["voxels"] == m.sum()


def test_counts_by_cliff_lorimer():
    m = _sphere(5)
    vols = {"Au": np.where(m, 100.0 / m.sum(), 0), "Ag": np.where(m, 300.0 / m.sum(), 0)}
    c = composition(vols, m, counts=True, k_factors={"Au": 2.0, "Ag": 1.0})
    assert c["atomic"]["Au"] == pytest.approx(0.4)
    lines = {"Au_La": vols["Au"], "Ag_La": vols["Ag"]}
    c2 = composition(lines, m, counts=True)
    ref = cliff_lorimer({"Au_La": 100.0, "Ag_La": 300.0})
    assert c2["atomic"]["Au"] == pytest.approx(float(ref["Au_La"]), rel=1e-9)


def test_core_shell_regions_and_radial_profile():
    core, whole = _sphere(6), _sphere(12)
    au, ag = core * 1.0, (whole & ~core) * 1.0
    reg = core_shell_regions(core, whole)
    comp = {k: composition({"Au": au, "Ag": ag}, m)["atomic"]["Au"] for k, m in reg.items()}
    assert comp["core"] == 1.0 and comp["shell"] == 0.0
    assert comp["whole"] == pytest.approx(core.sum() / whole.sum())
    r, prof = radial_profile({"Au": au, "Ag": ag}, whole, voxel_size=0.5)
    inner, outer = r < 0.5 * 5, (r > 0.5 * 7) & (r < 0.5 * 11)
    assert np.all(prof["Au"][inner] == 1) and np.all(prof["Au"][outer] == 0)
    assert np.all(prof["Ag"][outer] == 1)


def test_interface_width_of_a_blurred_step():
    x = np.linspace(-20, 20, 401)
    sigma = 2.0
    y = 5 + 3 * 0.5 * (1 + erf(x / (np.sqrt(2) * sigma)))  # rising step
    assert interface_width(x, y) == pytest.approx(2 * 1.28155 * sigma, rel=0.01)
    assert interface_width(x, y[::-1]) == pytest.approx(2 * 1.28155 * sigma, rel=0.01)  # falling
    # along a line across a blurred core/shell interface in a volume
    core = gaussian_filter(_sphere(8) * 1.0, 1.5)
    pos, prof = line_profile({"Au": core}, C, C + [0, 0, 15])
    assert interface_width(pos, prof["Au"]) == pytest.approx(2 * 1.28155 * 1.5, abs=0.6)
    with pytest.raises(ChemtomoError, match="no step"):
        interface_width(x, np.ones_like(x))


def test_errors():
    m = _sphere(5)
    with pytest.raises(ChemtomoError, match="empty"):
        composition({"Au": m * 1.0}, np.zeros(SHAPE, bool))
    with pytest.raises(ShapeError):
        composition({"Au": m * 1.0, "Ag": np.zeros((4, 4, 4))}, m)
    with pytest.raises(ChemtomoError, match="named by element"):
        composition({"Au": m * 1.0}, m, counts=True)
    with pytest.raises(ChemtomoError, match="not an element"):
        composition({"Xx": m * 1.0}, m)
    with pytest.raises(ChemtomoError, match="leaves the volume"):
        line_profile({"Au": m * 1.0}, C, C + [0, 0, 40])
    with pytest.raises(ChemtomoError, match="NaN"):
        composition({"Au": np.full(SHAPE, np.nan)}, m)


def test_counts_by_zeta_factors():
    m = _sphere(5)
    vols = {"Au": np.where(m, 100.0 / m.sum(), 0), "Ag": np.where(m, 300.0 / m.sum(), 0)}
    c = composition(vols, m, counts=True, zeta={"Au": 3.0, "Ag": 1.0})
    assert c["weight"]["Au"] == pytest.approx(0.5)  # 3 x 100 against 1 x 300
    assert c["atomic"]["Au"] == pytest.approx((0.5 / 196.967) / (0.5 / 196.967 + 0.5 / 107.868), rel=1e-3)
    with pytest.raises(ChemtomoError, match="zeta"):
        composition(vols, m, counts=True, zeta={"Au": 1.0})
