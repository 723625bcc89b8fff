import numpy as np
import pytest

from chemtomo.core.data import TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.physics.xray import EDXDetector
from chemtomo.simulate.series import Acquisition, simulate_series

N = 20


def _core_shell():
    z, y, x = np.mgrid[:N, :N, :N] - (N - 1) / 2
    r = np.sqrt(x**2 + y**2 + z**2)
    return {"Ag": (r <= 4).astype(np.float32), "Au": ((r > 4) & (r <= 8)).astype(np.float32)}


ANGLES = np.arange(-60, 61, 30.0)


def test_series_contents_and_dose_bookkeeping():
    ts = simulate_series(_core_shell(), ANGLES, dose=5e3, voxel_size=0.5, rng=0)
    assert isinstance(ts, TiltSeries)
    assert ts.names == ["HAADF", "Ag", "Au"]
    assert ts["Au"].data.shape == (5, N, N) and ts["Au"].units == "counts"
    assert ts.metadata["lines"] == {"Ag": "Ag_La", "Au": "Au_La"}
    assert ts.dose == 5e3 and ts.pixel_size == 0.5
    assert sum(ts.metadata["dose_per_tilt"]) == pytest.approx(5e3)
    assert ts.acquisition_time > 0
    np.testing.assert_array_equal(ts["Au"].data, np.round(ts["Au"].data))  # integer counts


def test_time_knob_and_errors():
    ts = simulate_series(_core_shell(), ANGLES, time=30.0, rng=0)
    again = simulate_series(_core_shell(), ANGLES, dose=ts.dose, rng=0)
    assert again.acquisition_time == pytest.approx(30.0)
    with pytest.raises(ChemtomoError):
        simulate_series(_core_shell(), ANGLES)
    with pytest.raises(ChemtomoError):
        simulate_series(_core_shell(), ANGLES, dose=1.0, time=1.0)


def test_same_seed_identical_and_solid_angle_scales_counts():
    a = simulate_series(_core_shell(), ANGLES, dose=2e4, rng=11)
    b = simulate_series(_core_shell(), ANGLES, dose=2e4, rng=11)
    for name in a.names:
        assert np.array_equal(a[name].data, b[name].data)
    big = simulate_series(_core_shell(), ANGLES, dose=2e4, solid_angle=EDXDetector(solid_angle=4.5), rng=11)
    ratio = big["Au"].data.sum() / a["Au"].data.sum()
    assert ratio == pytest.approx(4.5 / 0.7, rel=0.1)


def test_explicit_lines_shadow_damage_drift():
    acq = Acquisition(shadow_angle=45.0, critical_dose=1e4, drift=0.5, sweep=4.0, probe_sigma=0.7)
    ts = simulate_series(_core_shell(), ANGLES, signals=("HAADF", "Au_Ma"), dose=2e4, acquisition=acq, rng=2)
    assert ts.names == ["HAADF", "Au_Ma"]
    assert ts["Au_Ma"].data[-1].sum() == 0  # +60 deg is behind the holder
    damage = np.array(ts.metadata["damage"])
    assert np.all(np.diff(damage) < 0)
    assert np.array(ts.metadata["shifts"]).shape == (5, 2)


def test_absorption_lowers_soft_line_counts_more():
    from chemtomo.simulate.series import Acquisition, simulate_series

    n = 24
    g = np.meshgrid(*[np.arange(n) - (n - 1) / 2] * 3, indexing="ij")
    ball = (sum(x**2 for x in g) <= 10**2).astype(np.float32)
    phantom = {"Au": 0.5 * ball, "Ag": 0.5 * ball}
    kw = dict(signals=("EDX",), dose=1e6, voxel_size=2.0, rng=0)
    plain = simulate_series(phantom, [0.0, 30.0], **kw)
    absorbed = simulate_series(phantom, [0.0, 30.0], acquisition=Acquisition(absorption=True), **kw)
    ratio = {e: absorbed[e].data.sum() / plain[e].data.sum() for e in ("Au", "Ag")}
    assert ratio["Ag"] < ratio["Au"] < 1.0


def test_eels_edge_maps_follow_the_expected_counts_and_the_detector():
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.simulate.eels import eels_expected_maps
    from chemtomo.physics.eels import EDGE_DELAY, default_edge

    assert [default_edge(e) for e in ("O", "Fe", "Ag", "Au")] == ["O_K", "Fe_L23", "Ag_M45", "Au_M45"]
    phantom = _core_shell()
    ts = simulate_series(phantom, ANGLES, signals=("HAADF", "EELS", "Fe_L23"), dose=5e4, voxel_size=0.5, rng=0)
    assert ts.names == ["HAADF", "Ag_M45", "Au_M45", "Fe_L23"] and ts["Au_M45"].units == "counts"
    assert ts["Fe_L23"].data.sum() == 0  # no iron in the particle
    lam = eels_expected_maps(phantom, TiltGeometry(ANGLES, (N, N, N)), [("Au_M45", EDGE_DELAY["M45"])],
                             voxel_size=0.5, dose=5e4 / len(ANGLES))["Au_M45"]
    counts = ts["Au_M45"].data
    assert counts.sum() == pytest.approx(lam.sum(), rel=5 * lam.sum() ** -0.5)  # Poisson around the expectation
    np.testing.assert_array_equal(counts, np.round(counts))
    ccd = simulate_series(phantom, ANGLES, signals=("Au_M45",), dose=5e4, voxel_size=0.5, eels_detector="ccd", rng=0)
    assert ccd["Au_M45"].units == "detector units" and (ccd["Au_M45"].data != np.round(ccd["Au_M45"].data)).any()
    with pytest.raises(ChemtomoError, match="eels_detector"):
        simulate_series(phantom, ANGLES, signals=("EELS",), dose=1.0, eels_detector="film")


def test_cli_simulates_eels(tmp_path):
    from chemtomo.cli import main

    assert main(["simulate", "--phantom", "core-shell:sphere", "--elements", "Au,Ag", "--dose", "1e5", "--size", "16",
                 "--tilts", "-60:60:60", "--signals", "HAADF,EELS", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "Au_M45.mrc").is_file() and (tmp_path / "Ag_M45.mrc").is_file()
    assert main(["simulate", "--elements", "Au", "--dose", "1", "--signals", "XPS", "--out", str(tmp_path)]) == 2
