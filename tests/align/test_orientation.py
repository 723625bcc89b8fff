"""Orientation and alignment parameters measured on the data: tilt-axis direction, rotation search, axis
position folded into the shifts, background padding, every parameter reported."""

import json

import numpy as np
import pytest

from chemtomo.align import align_series, rotate_stack
from chemtomo.align.orientation import axis_direction, orient, parse_direction
from chemtomo.align.tilt_axis import rotation_estimate
from chemtomo.cli import main
from chemtomo.core.data import TiltSeries
from chemtomo.core.errors import ChemtomoError
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.core.shifts import apply_shifts
from chemtomo.io import write_stack
from chemtomo.recon import sirt
from chemtomo.simulate.phantoms import phantom_from_spec

ANGLES = np.linspace(-70, 70, 29)
N = 48


@pytest.fixture(scope="module")
def volume():
    ph = phantom_from_spec("core-shell:rod,aspect=2.0", ["Au", "Ag"], (N, N, N), seed=3)
    return (2 * ph["Au"] + ph["Ag"]).astype(np.float32)


def project(v, offset=0.0, angles=ANGLES):
    return np.asarray(Projector(TiltGeometry(angles, v.shape, axis_offset=offset))(v), dtype=np.float32)


def heldout_error(stack, offset=0.0):
    """Relative error of the odd views predicted by SIRT of the even ones (the data's own consistency)."""
    tr, te = np.arange(0, ANGLES.size, 2), np.arange(1, ANGLES.size, 2)
    x = sirt(Projector(TiltGeometry(ANGLES[tr], (N, N, N), axis_offset=offset)), stack[tr], 30)
    pred = np.asarray(Projector(TiltGeometry(ANGLES[te], (N, N, N), axis_offset=offset))(x))
    return float(np.linalg.norm(pred - stack[te]) / np.linalg.norm(stack[te]))


def test_the_tilt_axis_direction_is_measured_and_a_contradiction_is_said(volume):
    p = project(volume)
    assert axis_direction(p) == pytest.approx({"axis": "y", "ratio": axis_direction(p)["ratio"], "clear": True})
    assert axis_direction(p)["ratio"] > 10
    assert axis_direction(p.transpose(0, 2, 1))["axis"] == "x"
    series = TiltSeries.from_arrays({"HAADF": p.transpose(0, 2, 1).copy()}, ANGLES)
    turned, rec = orient(series, "auto")
    assert rec["transposed"] and rec["warning"] is None and np.array_equal(turned["HAADF"].data, p)
    kept, rec = orient(series, "y")  # stated along y, but the data say x
    assert not rec["transposed"] and "along x" in rec["warning"] and kept is series
    assert parse_direction("columns") == "x" and parse_direction("IMOD".replace("IMOD", "rows")) == "y"
    with pytest.raises(ChemtomoError, match="tilt axis 'z'"):
        parse_direction("z")
    with pytest.raises(ChemtomoError, match="no signal"):
        axis_direction(np.zeros((5, 8, 8)))


def test_the_rotation_search_grows_until_interior_or_says_it_is_at_the_edge(volume):
    p = project(volume)
    far = rotation_estimate(rotate_stack(p, 17.0))
    assert abs(far["angle"] - 17.0) < 0.5 and not far["at_edge"] and far["range"][1] >= 17 and far["clear"]
    capped = rotation_estimate(rotate_stack(p, 17.0), search=5.0, limit=5.0)
    assert capped["at_edge"] and capped["angle"] == pytest.approx(5.0)


def test_the_axis_position_is_folded_into_the_shifts_and_the_padding_is_background(volume):
    rng = np.random.default_rng(0)
    clean = project(volume, offset=4.0) + 100.0  # a bright background: padding with 0 would draw a frame
    drift = rng.normal(0, 2.0, (ANGLES.size, 2))
    data = (apply_shifts(clean - 100.0, drift) + 100.0 + rng.normal(0, 0.3, clean.shape)).astype(np.float32)
    aligned, _ = align_series(TiltSeries.from_arrays({"HAADF": data}, ANGLES), method="xcorr")
    meta = aligned.metadata["alignment"]
    # a drift common to all images cannot be told from an axis offset: the axis is found at 4 px plus the mean drift
    assert meta["axis_offset"] == 0.0 and abs(meta["axis_found_at"] - (4.0 + drift[:, 1].mean())) < 1.5
    a = aligned["HAADF"].data
    assert abs(np.median(np.concatenate([a[:, 0], a[:, -1]])) - 100.0) < 1.0  # no zero frame
    # reconstructed as written (no axis offset), the aligned series is as consistent as the drift-free one with
    # its true axis offset; the raw series is not
    oracle = heldout_error(clean - 100.0, offset=4.0)
    assert heldout_error(a - 100.0) < 1.5 * oracle < heldout_error(data - 100.0)


def test_centring_does_not_move_the_specimen_along_the_axis(volume):
    v = np.roll(volume, 8, axis=0)  # specimen off-centre along the axis (y)
    p = project(v)
    aligned, _ = align_series(TiltSeries.from_arrays({"HAADF": p}, ANGLES), method="xcorr")
    y = np.arange(N)
    com = lambda q: float((q.sum(axis=(0, 2)) @ y) / q.sum())  # noqa: E731
    assert abs(com(aligned["HAADF"].data) - com(p)) < 0.5


def test_cli_align_reads_a_transposed_stack_and_reports_every_parameter(volume, tmp_path, capsys):
    p = project(volume)
    stack = write_stack(tmp_path / "haadf.mrc", p.transpose(0, 2, 1).copy(), ANGLES, pixel_size=0.5)
    assert main(["align", "--signal", f"HAADF={stack}", "--method", "xcorr", "--rotation", "estimate",
                 "--out", str(tmp_path / "al")]) == 0
    text = capsys.readouterr().out
    assert "transposed" in text and "in-plane rotation" in text and "without --axis-offset" in text
    rec = json.loads((tmp_path / "al" / "alignment.json").read_text())
    assert rec["orientation"]["transposed"] and rec["rotation_search"]["clear"]
    assert abs(rec["rotation"]) < 0.5 and len(rec["angles"]) == ANGLES.size
    # reconstruct: a stated direction the data contradict is said
    assert main(["reconstruct", "--signal", f"HAADF={stack}", "--method", "sirt", "--iterations", "5",
                 "--tilt-axis", "y", "--out", str(tmp_path / "rec")]) == 0
    assert "tilt axis along x" in capsys.readouterr().out.replace("\n", " ")


def test_a_needle_along_the_axis_gets_its_rotation_from_the_centres_of_mass():
    """A tapered cylinder along the tilt axis looks alike at every tilt: the profiles cannot pin the axis
    angle, where the axis crosses each band of rows can."""
    ny = nz = nx = 48
    y, z, x = np.meshgrid(np.arange(ny) - 23.5, np.arange(nz) - 23.5, np.arange(nx) - 23.5, indexing="ij")
    radius = 7.0 - 3.0 * (y + 23.5) / ny  # tapering towards +y
    v = (((x - 4.0) ** 2 + (z + 2.0) ** 2) < radius**2).astype(np.float32)  # off the axis: it moves with the tilt
    p = rotate_stack(project(v), 3.0)
    aligned, _ = align_series(TiltSeries.from_arrays({"HAADF": p}, ANGLES), method="xcorr", rotation="estimate")
    meta = aligned.metadata["alignment"]
    assert meta["rotation_search"]["method"] == "centres of mass" and meta["rotation_search"]["clear"]
    assert abs(meta["rotation"] - 3.0) < 0.3 and not meta["warnings"]


def test_a_raw_series_is_aligned_and_reconstructed_from_the_cli_without_hand_fixes(tmp_path, capsys):
    """Drift, a tilt axis along x, turned 3 degrees and 4 px off centre: `chemtomo align` then `chemtomo
    reconstruct` with their defaults give the volume the clean series gives."""
    from chemtomo.io import read_volume
    from chemtomo.testing import nrmse

    ph = phantom_from_spec("core-shell:rod,aspect=2.0,position=centre,size=0.6", ["Au", "Ag"], (N, N, N), seed=5)
    v = (2 * ph["Au"] + ph["Ag"]).astype(np.float32)
    clean = project(v)
    rng = np.random.default_rng(4)
    raw = apply_shifts(clean, rng.normal(0, 2.0, (ANGLES.size, 2)) + [0.0, 4.0])
    raw = rotate_stack(raw.astype(np.float32), 3.0).transpose(0, 2, 1).copy()
    stack = write_stack(tmp_path / "raw.mrc", raw, ANGLES, pixel_size=0.5)
    assert main(["align", "--signal", f"HAADF={stack}", "--out", str(tmp_path / "al")]) == 0
    assert main(["reconstruct", "--signal", f"HAADF={tmp_path / 'al' / 'HAADF.mrc'}", "--method", "sirt",
                 "--iterations", "50", "--out", str(tmp_path / "rec")]) == 0
    capsys.readouterr()
    rec = json.loads((tmp_path / "al" / "alignment.json").read_text())
    # turned +3 deg in chemtomo's orientation, then transposed; a compact particle: the profiles pin the angle
    assert rec["rotation_search"]["method"] == "profiles" and abs(rec["rotation"] - 3.0) < 0.3
    got, _ = read_volume(tmp_path / "rec" / "HAADF.mrc")
    ref = np.asarray(sirt(Projector(TiltGeometry(ANGLES, v.shape)), clean, 50))
    unaligned = np.asarray(sirt(Projector(TiltGeometry(ANGLES, v.shape)), raw.transpose(0, 2, 1).copy(), 50))
    assert nrmse(got, ref) < 0.15 < 0.5 < nrmse(unaligned, ref)


def test_etspy_handedness_gives_the_z_mirror(volume, tmp_path, capsys):
    """etspy and ASTRA project a point above the centre the other way at a positive tilt (checked with
    ASTRA's 2D parallel projector: row 8 of 33 lands at detector 20 at +30 deg; chemtomo's at 12)."""
    from chemtomo.io import read_volume

    p = project(volume)
    stack = write_stack(tmp_path / "h.mrc", p, ANGLES, pixel_size=0.5)
    for hand in ("chemtomo", "etspy"):
        assert main(["reconstruct", "--signal", f"HAADF={stack}", "--method", "sirt", "--iterations", "20",
                     "--handedness", hand, "--out", str(tmp_path / hand)]) == 0
    ours, _ = read_volume(tmp_path / "chemtomo" / "HAADF.mrc")
    theirs, _ = read_volume(tmp_path / "etspy" / "HAADF.mrc")
    np.testing.assert_allclose(theirs, ours[:, ::-1, :], atol=1e-4 * float(np.abs(ours).max()))
    assert not np.allclose(theirs, ours, atol=1e-2 * float(np.abs(ours).max()))
    from chemtomo.align.orientation import HANDEDNESS

    assert HANDEDNESS["tomviz"] == HANDEDNESS["etspy"] == -HANDEDNESS["chemtomo"]
    assert main(["reconstruct", "--signal", f"HAADF={stack}", "--handedness", "imod?", "--out",
                 str(tmp_path / "x")]) == 2
    assert "handedness 'imod?'" in capsys.readouterr().err


def test_centring_is_chosen_by_whether_the_specimen_is_isolated(volume):
    """An isolated particle is centred on the tilt axis; a section that fills the field is not (its centre of
    mass is not the object's)."""
    from chemtomo.align.apply import ISOLATED, vacuum_frame_share

    particle = project(volume)
    rng = np.random.default_rng(2)
    slab = np.zeros((N, N, 3 * N), np.float32)  # a lamella three times wider than the field of view
    slab[:, 18:30, :] = 1.0 + rng.random((N, 12, 3 * N)).astype(np.float32)
    section = np.asarray(Projector(TiltGeometry(ANGLES, slab.shape, N))(slab), np.float32)
    assert vacuum_frame_share(particle) > 0.9 > ISOLATED > 0.2 > vacuum_frame_share(section)
    for stack, centred in ((particle, True), (section, False)):
        aligned, _ = align_series(TiltSeries.from_arrays({"HAADF": stack}, ANGLES), method="xcorr", rotation=0.0)
        assert aligned.metadata["alignment"]["centred"] is centred
    aligned, _ = align_series(TiltSeries.from_arrays({"HAADF": section}, ANGLES), rotation=0.0, centre=True)
    assert aligned.metadata["alignment"]["centred"] is True  # a stated choice stands
