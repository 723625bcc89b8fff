"""docs/hyperspy.md: an etspy-like tilt series (tilt axis along x, tilts as a signal) in, aligned and
reconstructed, and back to HyperSpy with calibrated axes; volumes as .hspy and OME-Zarr."""

import numpy as np
import pytest

from chemtomo.align import align_series
from chemtomo.core.data import TiltSeries, VolumeSet
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon.series import reconstruct_series
from chemtomo.simulate.phantoms import phantom_from_spec
from chemtomo.testing import nrmse

hs = pytest.importorskip("hyperspy.api")
ANGLES = np.linspace(-70, 70, 29)


def test_an_etspy_stack_is_read_oriented_aligned_reconstructed_and_given_back(tmp_path):
    ph = phantom_from_spec("core-shell:rod,aspect=2.0,position=centre,size=0.6", ["Au", "Ag"], (32, 32, 32), seed=3)
    v = (2 * ph["Au"] + ph["Ag"]).astype(np.float32)
    p = np.asarray(Projector(TiltGeometry(ANGLES, v.shape))(v), np.float32)
    # as etspy saves a TomoStack: images with the tilt axis along x, tilts as a (n, 1) signal
    stack = hs.signals.Signal2D(p.transpose(0, 2, 1).copy())
    for ax in stack.axes_manager.signal_axes:
        ax.units, ax.scale = "nm", 0.5
    tilts = hs.signals.Signal1D(ANGLES.reshape(-1, 1))
    stack.metadata.set_item("Tomography.tilts", tilts)
    stack.save(tmp_path / "needle.hspy")

    series = TiltSeries.from_hyperspy({"HAADF": hs.load(tmp_path / "needle.hspy")})
    np.testing.assert_allclose(series["HAADF"].angles, ANGLES)
    assert series.pixel_size == pytest.approx(0.5)
    aligned, _ = align_series(series)
    meta = aligned.metadata["alignment"]
    assert meta["orientation"]["transposed"] and abs(meta["rotation"]) < 0.5
    volumes = reconstruct_series(aligned, "sirt", iterations=50)
    # the same reconstruction as from the series in chemtomo's own orientation, up to the alignment's gauge
    direct = reconstruct_series(TiltSeries.from_arrays({"HAADF": p}, ANGLES), "sirt", iterations=50)
    assert nrmse(volumes["HAADF"].sum(axis=(1, 2)), direct["HAADF"].sum(axis=(1, 2))) < 0.1

    vol = volumes.to_hyperspy("HAADF")
    vol.save(tmp_path / "needle_volume.hspy")
    back = hs.load(tmp_path / "needle_volume.hspy")
    assert [(a.name, a.units, a.scale) for a in back.axes_manager.signal_axes] == [
        ("x", "nm", 0.5), ("z", "nm", 0.5), ("y", "nm", 0.5)]
    np.testing.assert_array_equal(VolumeSet.from_hyperspy({"HAADF": back})["HAADF"], volumes["HAADF"])


def test_reconstruct_writes_hspy_and_ome_zarr_volumes(tmp_path):
    import zarr

    from chemtomo.cli import main
    from chemtomo.io import write_stack

    p = np.zeros((15, 8, 16), np.float32)
    p[:, 2:6, 6:10] = 1.0
    stack = write_stack(tmp_path / "h.mrc", p, np.linspace(-70, 70, 15), pixel_size=0.4)
    assert main(["reconstruct", "--signal", f"HAADF={stack}", "--method", "sirt", "--iterations", "5",
                 "--format", "mrc,hspy,zarr", "--out", str(tmp_path / "rec")]) == 0
    s = hs.load(tmp_path / "rec" / "HAADF.hspy")
    assert s.data.shape == (8, 16, 16) and s.axes_manager.signal_axes[0].scale == pytest.approx(0.4)
    ms = zarr.open_group(str(tmp_path / "rec" / "HAADF.zarr"), mode="r").attrs["multiscales"][0]
    assert ms["name"] == "HAADF" and ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.4] * 3
