"""Alignment of raw tilt series: chemtomo beside etspy and published alignments (issue 28).

Every alignment is judged the same way, without ground truth: the aligned series is reconstructed
from all views but every 8th interior one (10 views for 77 tilts) by the same SIRT (50 iterations),
and the left-out views are predicted; the score is their relative error ``||pred - p|| / ||p||``
(after each image's background, the median of its outer frame, is subtracted), inside a margin of
1/8 of the image on each side (where alignments differ only in what they fill in from outside the
field). Lower is better.

Series:

* **needle** -- etspy's raw 77-view HAADF series of a needle (IMOD MRC, int16 with a -32768 offset,
  tilt axis along x), read in place from an etspy install (``--etspy-python``); beside etspy's
  ``stack_register("PC")`` + ``tilt_align("CoM")`` and etspy's hand-checked aligned stack.
* **simulated** -- an Au@Ag rod (64^3, HAADF, 71 tilts), with the tilt axis along x, turned 3 deg in
  the image, 4 px off the detector centre, and random drift (3 px rms); its known clean series
  (no drift, axis centred) gives the best score any alignment can reach.
* **L2083** -- the HAADF images of the real L2083 EDX series (16 tilts, a FIB section filling the
  field of view, which the default leaves uncentred), beside the shifts a tomviz user applied
  (TomVizAlignments.json).

etspy runs in its own Python environment (``--etspy-python PATH``, e.g. a venv with ``pip install
etspy``); without it the etspy rows are skipped.

Run: ``python benchmarks/bench_align.py [--etspy-python /tmp/etspyenv/bin/python] [--only needle,...]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _util import machine, table
from chemtomo.align import align_series, apply_shifts, rotate_stack
from chemtomo.align.apply import background_level
from chemtomo.core.data import TiltSeries
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import sirt

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ETSPY_RUN = r'''
import json, sys, time
import numpy as np
from etspy.base import TomoStack
data = np.load(sys.argv[1]); tilts = np.load(sys.argv[2])
stack = TomoStack(data, tilts=tilts)
t = time.perf_counter()
ali = stack.stack_register("PC").tilt_align("CoM")
sec = time.perf_counter() - t
np.save(sys.argv[3], np.asarray(ali.data, np.float32))
json.dump({"seconds": sec, "rotation": float(ali.metadata.Tomography.tiltaxis)}, open(sys.argv[4], "w"))
'''
ETSPY_NEEDLE = r'''
import sys
import numpy as np
import etspy.datasets as ds
raw, hand = ds.get_needle_data(), ds.get_needle_data(aligned=True)
np.save(sys.argv[1], np.asarray(raw.data, np.float32)); np.save(sys.argv[2], np.asarray(raw.tilts.data).ravel())
np.save(sys.argv[3], np.asarray(hand.data, np.float32)); np.save(sys.argv[4], np.asarray(hand.tilts.data).ravel())
import etspy, pathlib; print(pathlib.Path(etspy.__file__).parent / "tests" / "test_data")
'''


def heldout_error(stack, angles, iterations=50, every=8, margin=0.125):
    """Relative error of every `every`-th interior view predicted by SIRT of the others (module notes), on
    the images without a `margin` (share of the size) on each side: there the alignments differ in what they
    fill in from outside the field (zeros, the background), not in how well they align."""
    p = np.asarray(stack, np.float32)
    p = p - background_level(p)[:, None, None].astype(np.float32)
    rows = max(1, p.shape[1] // 64)  # every rows-th slice along the axis: slices reconstruct independently
    p = p[:, ::rows]
    n, ny, nu = p.shape
    held = np.arange(3, n - 1, every)[:10]
    kept = np.setdiff1d(np.arange(n), held)
    x = sirt(Projector(TiltGeometry(angles[kept], (ny, nu, nu))), p[kept], iterations)
    pred = np.asarray(Projector(TiltGeometry(angles[held], (ny, nu, nu)))(x))
    my, mu = int(margin * ny), int(margin * nu)
    inner = (slice(None), slice(my, ny - my), slice(mu, nu - mu))
    return float(np.linalg.norm((pred - p[held])[inner]) / np.linalg.norm(p[held][inner]))


def ours(series, method):
    """chemtomo's alignment with its defaults (orientation, rotation and centring from the data): (stack, angles,
    s, meta)."""
    t = time.perf_counter()
    aligned, _ = align_series(series, method=method)
    sec = time.perf_counter() - t
    return aligned["HAADF"].data, aligned["HAADF"].angles, sec, aligned.metadata["alignment"]


def etspy_align(python, stack_x, tilts):
    """etspy's stack_register("PC") + tilt_align("CoM") on a stack with the tilt axis along x: (stack along y, s, rot)."""
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/in.npy", stack_x.astype(np.float32))
        np.save(f"{d}/tilts.npy", np.asarray(tilts, np.float64))
        (Path(d) / "run.py").write_text(ETSPY_RUN)
        subprocess.run([python, f"{d}/run.py", f"{d}/in.npy", f"{d}/tilts.npy", f"{d}/out.npy", f"{d}/out.json"],
                       check=True, capture_output=True)
        info = json.loads(Path(f"{d}/out.json").read_text())
        return np.load(f"{d}/out.npy").transpose(0, 2, 1), info["seconds"], info["rotation"]


COLUMNS = ["series", "alignment", "held-out view error", "align s", "what it found"]


def row(series, how, stack, angles, seconds, note=""):
    values = [series, how, f"{heldout_error(stack, angles):.4f}", "-" if seconds is None else f"{seconds:.1f}", note]
    print("  " + " | ".join(values), flush=True)
    return dict(zip(COLUMNS, values))


def _meta_note(m):
    rs = m["rotation_search"]
    return (f"axis along {m['orientation']['measured']}, rotation {m['rotation']:.2f} deg"
            + (f" ({rs['method']}" + ("" if rs["clear"] else ", not clear: not applied") + ")" if rs else "")
            + (f", axis found {m['axis_found_at']:+.1f} px" if m["axis_found_at"] is not None else ", not centred")
            + (f"; {len(m['warnings'])} warning(s)" if m["warnings"] else ""))


def needle(args, methods):
    from chemtomo.io import read_tilt_series

    if not args.etspy_python:
        print("needle: skipped (needs --etspy-python: the data ship with etspy)")
        return []
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([args.etspy_python, "-c", ETSPY_NEEDLE, f"{d}/raw.npy", f"{d}/t.npy", f"{d}/hand.npy",
                              f"{d}/ht.npy"], check=True, capture_output=True, text=True)
        folder = Path(out.stdout.strip().splitlines()[-1])
        raw_x, tilts = np.load(f"{d}/raw.npy"), np.load(f"{d}/t.npy")
        hand, hand_tilts = np.load(f"{d}/hand.npy").transpose(0, 2, 1), np.load(f"{d}/ht.npy")
    series = read_tilt_series({"HAADF": folder / "HAADF.mrc"}, None)  # the raw file, as a user gives it
    rows = [row("needle (real, 77 views)", "raw, as read", series["HAADF"].data, series["HAADF"].angles, None,
                "int16 offset corrected on reading")]
    for m in methods:
        stack, angles, sec, meta = ours(series, m)
        rows.append(row("needle (real, 77 views)", f"chemtomo align --method {m}", stack, angles, sec, _meta_note(meta)))
    stack, sec, rot = etspy_align(args.etspy_python, raw_x, tilts)
    rows.append(row("needle (real, 77 views)", "etspy PC + CoM", stack, tilts, sec, f"rotation {rot:.2f} deg"))
    rows.append(row("needle (real, 77 views)", "etspy's hand-checked aligned stack", hand, hand_tilts, None, ""))
    return rows


def simulated(args, methods):
    from chemtomo.simulate import phantom_from_spec, simulate_series

    n = 64
    ph = phantom_from_spec("core-shell:rod,aspect=2.5,position=centre,size=0.6", ["Au", "Ag"], (n, n, n), seed=7)
    angles = np.linspace(-70, 70, 71)
    clean = simulate_series(ph, angles, signals=("HAADF",), dose=1e5, voxel_size=0.5, rng=1)["HAADF"].data
    clean = np.asarray(clean, np.float32)
    rng = np.random.default_rng(2)
    drift = rng.normal(0, 3.0, (angles.size, 2))
    theta = np.deg2rad(angles)
    moved = apply_shifts(clean, drift + np.stack([np.zeros_like(theta), np.full_like(theta, 4.0)], 1))
    raw = rotate_stack(moved.astype(np.float32), 3.0).transpose(0, 2, 1).copy()  # axis along x, as HyperSpy
    label = "simulated rod (71 views)"
    rows = [row(label, "clean series: no drift, axis centred", clean, angles, None, "not interpolated (aligned stacks are, which smooths their noise)"),
            row(label, "raw", raw.transpose(0, 2, 1), angles, None, "drift 3 px rms, axis +4 px, turned 3 deg")]
    series = TiltSeries.from_arrays({"HAADF": raw}, angles)
    for m in methods:
        stack, a, sec, meta = ours(series, m)
        rows.append(row(label, f"chemtomo align --method {m}", stack, a, sec, _meta_note(meta)))
    if args.etspy_python:
        stack, sec, rot = etspy_align(args.etspy_python, raw, angles)
        rows.append(row(label, "etspy PC + CoM", stack, angles, sec, f"rotation {rot:.2f} deg"))
    return rows


def l2083(args, methods):
    from chemtomo.io.instrument import read_bruker_spectrum_image
    from chemtomo.spectral.series import angles_from_names

    folder = DATA / "edx-tilt-L2083"
    if not folder.is_dir():
        print(f"L2083: skipped ({folder} not found)")
        return []
    files = sorted(folder.glob("*.bcf"), key=lambda f: float(f.stem))
    angles = angles_from_names(files)
    p = np.stack([np.asarray(read_bruker_spectrum_image(f, cutoff_at_kv=1.0)["image"], np.float32) for f in files])
    label = "L2083 HAADF (real, 16 views)"
    rows = [row(label, "raw", p, angles, None, "")]
    series = TiltSeries.from_arrays({"HAADF": p}, angles)
    for m in methods:
        stack, a, sec, meta = ours(series, m)
        rows.append(row(label, f"chemtomo align --method {m}", stack, a, sec, _meta_note(meta)))
    tv = np.asarray(json.loads((folder / "TomVizAlignments.json").read_text()), np.float64)[2:18]  # -40..35 of -50..50
    tv_stack = apply_shifts(p, tv[:, ::-1])  # tomviz (x, y) shifts applied to the images
    rows.append(row(label, "tomviz user's shifts", tv_stack, angles, None, "TomVizAlignments.json (x, y) applied"))
    if args.etspy_python:
        stack, sec, rot = etspy_align(args.etspy_python, p.transpose(0, 2, 1).copy(), angles)
        rows.append(row(label, "etspy PC + CoM", stack, angles, sec, f"rotation {rot:.2f} deg"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--etspy-python", default=None, help="python of an environment with etspy installed")
    ap.add_argument("--only", default="needle,simulated,l2083", help="comma list of needle, simulated, l2083")
    ap.add_argument("--methods", default="xcorr,xcorr+matching", help="chemtomo align methods, comma list")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    print("# Alignment: chemtomo beside etspy and published alignments\n")
    print(f"machine: {machine()}\n")
    rows = []
    for part in args.only.split(","):
        rows += {"needle": needle, "simulated": simulated, "l2083": l2083}[part](args, methods)
        sys.stdout.flush()
    print(table(rows, COLUMNS))
    print("\nheld-out view error: every 8th interior view (10 at most) left out, SIRT 50 iterations of the others "
          "predicts them (every n-th slice along the axis, n = rows // 64); relative error after background "
          "subtraction. One thread.")


if __name__ == "__main__":
    main()
