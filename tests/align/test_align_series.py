import numpy as np
import pytest

from chemtomo.align import align_series, align_to_directory, shifts_for_angles
from chemtomo.core.data import Signal, TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.simulate.phantoms import phantom_from_spec
from chemtomo.simulate.series import Acquisition, simulate_series

ANGLES = np.linspace(-70, 70, 36)


@pytest.fixture(scope="module")
def drifted():
    ph = phantom_from_spec("core-shell:rod,position=centre,size=0.6,core=icosahedron", ["Au", "Ag"], (48, 48, 48), seed=0)
    # low-count EDX maps (about 0.5 count per particle pixel) recorded with the HAADF
    return simulate_series(ph, ANGLES, dose=2e4, acquisition=Acquisition(drift=2.5), rng=3)


def rms(d):
    return np.sqrt(((d - d.mean(0)) ** 2).mean(0))


def test_align_series_haadf_drives_edx(drifted):
    true = np.array(drifted.metadata["shifts"])
    aligned, shifts = align_series(drifted, method="com+matching", iterations=3)
    assert set(shifts) == {"HAADF", "Au", "Ag"}
    assert np.all(rms(shifts["HAADF"] - true) < 0.5)
    assert np.array_equal(shifts["Au"], shifts["HAADF"])
    au0, au = drifted["Au"].data, aligned["Au"].data
    assert au.dtype == np.float32 and au.shape == au0.shape
    assert abs(au.sum() / au0.sum() - 1) < 0.05  # counts kept (bar what moves out of the field)
    # aligned EDX images are consistent: their y profile no longer wanders
    prof0, prof = au0.sum(axis=2), au.sum(axis=2)
    y = np.arange(48)
    spread = lambda q: np.std((q @ y) / q.sum(axis=1))  # noqa: E731
    assert spread(prof) < 0.75 * spread(prof0)
    assert aligned.metadata["alignment"]["reference"] == "HAADF"


def test_edx_subset_of_tilts(drifted):
    idx = np.arange(0, 36, 3)
    sig = dict(drifted.signals)
    sig["Au"] = Signal(drifted["Au"].data[idx], ANGLES[idx] + 0.004, "counts")
    series = TiltSeries(sig, metadata=drifted.metadata)
    aligned, shifts = align_series(series, method="xcorr")
    assert np.allclose(shifts["Au"], shifts["HAADF"][idx])
    assert aligned["Au"].data.shape == (idx.size, 48, 48)


def test_missing_angle_is_an_error(drifted):
    with pytest.raises(ChemtomoError, match="no reference image"):
        shifts_for_angles(ANGLES, np.zeros((36, 2)), [0.5])
    with pytest.raises(ChemtomoError, match="reference signal"):
        align_series(drifted, reference="ADF")
    with pytest.raises(ChemtomoError, match="method"):
        align_series(drifted, method="magic")


def test_align_to_directory(drifted, tmp_path):
    from chemtomo.io import read_stack, write_stack

    files = {name: write_stack(tmp_path / f"{name}_raw.mrc", s.data) for name, s in drifted.signals.items()}
    summary = align_to_directory(files, list(ANGLES), tmp_path / "out", method="xcorr")
    table = np.loadtxt(summary["shifts_file"])
    assert table.shape == (36, 3) and np.allclose(table[:, 0], ANGLES, atol=1e-3)
    data, _ = read_stack(summary["files"]["Au"])
    assert data.shape == (36, 48, 48)
    assert np.allclose(np.loadtxt(summary["angles_file"]), ANGLES, atol=1e-3)
    assert summary["rms_shift"] > 1.0
