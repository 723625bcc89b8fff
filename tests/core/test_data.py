import numpy as np
import pytest

from chemtomo.core.data import Signal, TiltSeries, VolumeSet
from chemtomo.core.errors import ChemtomoError, ShapeError


def series():
    rng = np.random.default_rng(0)
    return TiltSeries.from_arrays(
        {"HAADF": rng.random((7, 4, 6)), "Au": rng.poisson(2, (3, 4, 6))},
        {"HAADF": np.linspace(-60, 60, 7), "Au": [-60, 0, 60]},
        pixel_size=0.4, dose=1e4,
    )


def test_signals_keep_their_own_angles_and_geometry():
    ts = series()
    assert ts.names == ["HAADF", "Au"]
    assert ts["Au"].angles.tolist() == [-60.0, 0.0, 60.0]
    g = ts.geometry("HAADF", thickness=3)
    assert g.volume_shape == (4, 3, 6) and g.n_tilts == 7 and g.n_u == 6
    assert ts.geometry("Au").volume_shape == (4, 6, 6)


def test_validation_messages():
    with pytest.raises(ShapeError, match="angles has 2 entries but the stack has 3 images"):
        Signal(np.zeros((3, 4, 4)), [0, 1])
    with pytest.raises(ShapeError, match="4x6.*4x5"):
        TiltSeries({"HAADF": Signal(np.zeros((1, 4, 6)), [0]), "Au": Signal(np.zeros((1, 4, 5)), [0])})
    with pytest.raises(ChemtomoError, match="no signal named 'Ag'"):
        series()["Ag"]
    with pytest.raises(ChemtomoError, match="pixel_size"):
        TiltSeries({"Au": Signal(np.zeros((1, 2, 2)), [0])}, pixel_size=-1)
    bad = series()
    bad.signals["HAADF"].data[0, 0, 0] = np.nan
    with pytest.raises(ChemtomoError, match="NaN"):
        bad.check_finite()


def test_hyperspy_round_trip():
    ts = series()
    hs_signal = ts.to_hyperspy("HAADF")
    assert hs_signal.axes_manager.signal_axes[0].scale == pytest.approx(0.4)
    assert hs_signal.axes_manager.signal_axes[0].units == "nm"
    back = TiltSeries.from_hyperspy({"HAADF": hs_signal})
    np.testing.assert_array_equal(back["HAADF"].data, ts["HAADF"].data)
    np.testing.assert_allclose(back["HAADF"].angles, ts["HAADF"].angles)
    assert back.pixel_size == pytest.approx(0.4)


def test_volume_set_hyperspy_round_trip_and_shapes():
    vol = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    vs = VolumeSet({"Au": vol, "Ag": 2 * vol}, voxel_size=0.5, provenance={"method": "sirt"})
    s = vs.to_hyperspy("Au")
    assert s.data.shape == (2, 3, 4) and s.axes_manager.signal_axes[0].scale == 0.5
    back = VolumeSet.from_hyperspy({"Au": s})
    np.testing.assert_array_equal(back["Au"], vol)
    assert back.voxel_size == 0.5
    with pytest.raises(ShapeError):
        VolumeSet({"Au": vol, "Ag": vol[:1]})
