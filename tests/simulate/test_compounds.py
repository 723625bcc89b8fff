"""Issue 27: compounds get their solid stoichiometric densities in the simulator; gases as elements are refused."""

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.physics.eels import edge_cross_section, edge_onset
from chemtomo.physics.elements import (COMPOUNDS, compound_densities, material_densities, material_elements,
                                       number_density, parse_formula)
from chemtomo.simulate.eels import eels_expected_maps
from chemtomo.simulate.haadf import areal_density
from chemtomo.simulate.series import simulate_series


def _window(edge, width=50.0):
    on = edge_onset(edge)
    grid = on + (np.arange(2000) + 0.5) * (width / 2000)
    return edge_cross_section(edge, grid, delay=10.0 if edge.endswith("L23") else 0.0).sum() * width / 2000


def test_compound_densities_are_stoichiometric():
    ti, o = compound_densities("TiO2")["Ti"], compound_densities("TiO2")["O"]
    # rutile 4.23 g/cm^3, 79.87 g/mol: 31.9 formula units per nm^3
    assert ti == pytest.approx(4.23 / 79.866 * 6.02214076e23 * 1e-21, rel=1e-3)
    assert o == pytest.approx(2 * ti, rel=1e-12)
    fe = compound_densities("Fe2O3")
    assert fe["O"] / fe["Fe"] == pytest.approx(1.5)
    assert parse_formula("BaTiO3") == {"Ba": 1.0, "Ti": 1.0, "O": 3.0}
    assert material_elements(["TiO2", "Au", "Fe3O4"]) == ["Ti", "O", "Au", "Fe"]
    assert material_densities("Au") == {"Au": number_density("Au")}
    assert all(set(material_densities(c)) == set(parse_formula(c)) for c in COMPOUNDS)


def test_gases_and_unknown_compounds_refused():
    with pytest.raises(ChemtomoError, match="O is a gas.*TiO2"):
        material_densities("O")
    with pytest.raises(ChemtomoError, match="no solid density known for compound FeCo2"):
        material_densities("FeCo2")
    with pytest.raises(ChemtomoError, match="unknown material"):
        material_densities("titania")


def test_oxide_phantom_has_its_oxygen_signal_in_the_right_ratio():
    v = np.zeros((6, 12, 12), np.float32)
    v[1:5, 3:9, 3:9] = 1.0
    g = TiltGeometry([0.0, 40.0], v.shape)
    areal = areal_density({"TiO2": v}, g, 0.5)
    path = areal["Ti"] / (0.5 * compound_densities("TiO2")["Ti"] / 100)  # projected length, voxels
    assert path[0].max() == pytest.approx(6.0, rel=1e-3)  # 0 degrees: 6 voxels of z
    np.testing.assert_allclose(areal["O"], 2 * areal["Ti"], rtol=1e-12)
    maps = eels_expected_maps({"TiO2": v}, g, [("Ti_L23", 10.0), "O_K"], voxel_size=0.5, dose=1e5)
    ratio = maps["O_K"].sum() / maps["Ti_L23"].sum()
    assert ratio == pytest.approx(2 * _window("O_K") / _window("Ti_L23"), rel=1e-3)
    # the same volume as pure elements gave oxygen the gas density: 1/1272 of this signal
    assert number_density("O") / compound_densities("TiO2")["O"] < 1e-3
    with pytest.raises(ChemtomoError, match="gas"):
        areal_density({"Ti": v, "O": v}, g, 0.5)


def test_simulated_oxide_series_maps_every_element():
    v = np.zeros((8, 16, 16), np.float32)
    v[2:6, 4:12, 4:12] = 1.0
    s = simulate_series({"Fe3O4": v}, [0.0, 30.0], signals=("HAADF", "EELS", "EDX"), dose=1e6, voxel_size=0.5, rng=0)
    assert {"Fe_L23", "O_K", "Fe", "O"} <= set(s.names)
    assert s["O_K"].data.sum() > 0.5 * s["Fe_L23"].data.sum()  # an oxide's O K edge is strong, not missing
