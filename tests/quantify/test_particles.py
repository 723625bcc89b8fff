import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from chemtomo.core.errors import ChemtomoError, ShapeError
from chemtomo.quantify.particles import quantify_volumes

SHAPE = (40, 40, 72)


def _sphere(centre, radius):
    g = np.meshgrid(*[np.arange(n, dtype=float) for n in SHAPE], indexing="ij")
    return sum((gi - c) ** 2 for gi, c in zip(g, centre)) <= radius**2


@pytest.fixture(scope="module")
def field():
    # a core-shell particle (Au core r 7, Ag shell to r 12: 2.5 nm at 0.5 nm voxels) and an Au30Ag70 alloy particle
    core, cs = _sphere((20, 20, 18), 7), _sphere((20, 20, 18), 12)
    alloy = _sphere((20, 20, 52), 10)
    au = core * 1.0 + alloy * 0.3
    ag = (cs & ~core) * 1.0 + alloy * 0.7
    rng = np.random.default_rng(0)
    vols = {n: gaussian_filter(v, 0.7) + rng.normal(0, 0.03, SHAPE) for n, v in (("Au", au), ("Ag", ag))}
    return vols


def test_core_shell_and_alloy_particles(field):
    res = quantify_volumes(field, voxel_size=0.5, core="Au")
    rows = res["rows"]
    assert len(rows) == 2 and not any(r["touches_border"] for r in rows)
    alloy, cs = (rows[int(res["labels"][20, 20, x]) - 1] for x in (52, 18))
    assert alloy["at_Au"] == pytest.approx(0.3, abs=0.03)
    assert cs["shell_mean_nm"] == pytest.approx(2.5, abs=0.5) and cs["coverage"] == 1.0
    assert cs["core_at_Au"] > 0.9 and cs["shell_at_Ag"] > 0.9
    assert alloy["alloying_index"] > 0.8 and cs["alloying_index"] < 0.3


def test_errors(field):
    with pytest.raises(ChemtomoError, match="core element"):
        quantify_volumes(field, core="Pt")
    with pytest.raises(ShapeError):
        quantify_volumes({"Au": field["Au"], "Ag": field["Ag"][:5]})
    with pytest.raises(ChemtomoError, match="reference"):
        quantify_volumes(field, reference="HAADF")
    with pytest.raises(ChemtomoError, match="constant"):
        quantify_volumes({"Au": np.zeros(SHAPE)})


def test_radial_profiles_and_interface_width(field):
    res = quantify_volumes(field, voxel_size=0.5, core="Au")
    k = int(res["labels"][20, 20, 18])
    prof = res["profiles"][k]
    r = np.array(prof["radius_nm"])
    assert np.array(prof["Au"])[r < 2.5].min() > 0.8 and np.array(prof["Au"])[r > 4.5].max() < 0.1
    # a sharp interface blurred by the 0.7-voxel Gaussian of the fixture (plus voxelisation and the shell average)
    assert 0.2 < res["rows"][k - 1]["interface_width_nm"] < 1.5  # measured 1.13
    alloy = res["rows"][int(res["labels"][20, 20, 52]) - 1]
    assert "interface_width_nm" not in alloy  # no core, no interface
