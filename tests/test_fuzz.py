"""Fuzz suite: hundreds of malformed inputs over every command and file format.

Each case runs the CLI's entry point in-process (``chemtomo.cli.main``) and must
end with exit status 2 and one line ``error: ...`` on stderr: no traceback, no
silent success, no file outside ``--out`` created, changed or removed, and no
staging folder or lock left behind. A sample also runs in a subprocess
(``python -m chemtomo``) to check the real entry point. Counts by family are
in docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chemtomo.cli import main

ROOT = "{W}"  # placeholder for the world folder in the case tables
COMMANDS = ("reconstruct", "maps", "align", "denoise", "quantify", "atoms", "count-atoms", "simulate", "plan", "run",
            "batch", "report", "demo", "methods", "alloying")


# ---------------------------------------------------------------- inputs
def _world(root: Path) -> None:
    """Small valid inputs (a tilt series, a volume, an image, a run, a recipe) and malformed ones."""
    import tifffile

    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.io import write_stack, write_volume
    from chemtomo.testing import core_shell

    d = root / "data"
    d.mkdir(parents=True)
    shape = (4, 12, 12)
    angles = np.linspace(-60, 60, 7)
    parts = core_shell(shape, 2, 5)
    proj = Projector(TiltGeometry(angles, shape))
    rng = np.random.default_rng(0)
    write_stack(d / "haadf.mrc", proj(3 * parts["core"] + parts["shell"]).astype(np.float32), angles)
    write_stack(d / "au.mrc", rng.poisson(5 * proj(parts["core"])).astype(np.float32), angles)
    (d / "angles.tlt").write_text("\n".join(f"{a:g}" for a in angles))
    write_volume(d / "vol.mrc", (3 * parts["core"] + parts["shell"]).astype(np.float32))
    img = np.zeros((24, 24), np.float32)
    img[6::6, 6::6] = 100
    tifffile.imwrite(d / "image.tif", img)
    # malformed files
    (d / "empty.mrc").write_bytes(b"")
    (d / "junk.mrc").write_bytes(os.urandom(300))
    (d / "junk.tif").write_bytes(os.urandom(300))
    (d / "junk.npy").write_bytes(os.urandom(300))
    (d / "junk.mat").write_bytes(os.urandom(300))
    (d / "junk.hspy").write_bytes(os.urandom(300))
    (d / "junk.bcf").write_bytes(os.urandom(300))
    (d / "junk.emd").write_bytes(os.urandom(300))
    (d / "junk.dm4").write_bytes(os.urandom(300))
    (d / "junk.txt").write_text("not data\n")
    (d / "truncated.mrc").write_bytes((d / "haadf.mrc").read_bytes()[:1500])
    (d / "folder.mrc").mkdir()
    stack = np.ones((7, 12, 12), np.float32)
    arrays = {
        "complex": stack.astype(np.complex64) * (1 + 1j),
        "datetime": np.zeros((7, 12, 12), "datetime64[s]"),
        "bool": stack > 0,
        "1d": np.ones(12, np.float32),
        "4d": np.ones((2, 7, 12, 12), np.float32),
        "zero": np.ones((0, 12, 12), np.float32),
        "nan": np.where(np.arange(12) == 3, np.nan, stack).astype(np.float32),
        "inf": np.where(np.arange(12) == 3, np.inf, stack).astype(np.float32),
        "huge": np.full((7, 12, 12), 3e38, np.float32),
        "single": np.ones((1, 12, 12), np.float32),
        "structured": np.zeros((7, 12), dtype=[("a", "f4"), ("b", "f4")]),
        "strings": np.array([["a"] * 12] * 7),
    }
    for name, arr in arrays.items():
        np.save(d / f"{name}.npy", arr)
    np.save(d / "object.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    tifffile.imwrite(d / "rgb.tif", np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    bad_angles = {
        "radians": np.linspace(-1.0, 1.0, 7), "same": np.zeros(7), "dupes": [-60, -40, -20, 0, 0, 20, 40],
        "short": np.linspace(-60, 60, 5), "long": np.linspace(-60, 60, 9), "big": np.linspace(-600, 600, 7),
    }
    for name, a in bad_angles.items():
        (d / f"{name}.tlt").write_text("\n".join(f"{v:g}" for v in a))
    (d / "nan.tlt").write_text("\n".join(["nan"] + ["1"] * 6))
    (d / "text.tlt").write_text("minus sixty\n" * 7)
    (d / "empty.tlt").write_text("")
    # a finished reconstruction (for quantify and report) and a recipe
    assert main(["reconstruct", "--signal", f"Au={d / 'au.mrc'}", "--method", "fbp", "--out", str(root / "run")]) == 0
    (d / "recipe.yaml").write_text(f"inputs:\n  files:\n    signals:\n      Au: {d / 'au.mrc'}\n"
                                   "reconstruct:\n  method: sirt\n  iterations: 5\n")
    (d / "foreign").mkdir()
    (d / "foreign" / "notes.txt").write_text("my own notes\n")
    (d / "afile").write_text("a file, not a folder\n")


def _recipes(d: Path) -> dict[str, str]:
    au = d / "au.mrc"
    good_inputs = f"inputs:\n  files:\n    signals:\n      Au: {au}\n"
    return {
        "not_mapping": "- a\n- b\n",
        "bad_yaml": "inputs: [unclosed\n",
        "unknown_key": good_inputs + "reconstruct:\n  method: sirt\nbogus: 1\n",
        "unknown_method": good_inputs + "reconstruct:\n  method: nonsense\n",
        "zero_iterations": good_inputs + "reconstruct:\n  method: sirt\n  iterations: 0\n",
        "negative_iterations": good_inputs + "reconstruct:\n  method: sirt\n  iterations: -4\n",
        "string_iterations": good_inputs + "reconstruct:\n  method: sirt\n  iterations: many\n",
        "escape_signal": f"inputs:\n  files:\n    signals:\n      ../../x: {au}\nreconstruct:\n  method: sirt\n",
        "missing_file": "inputs:\n  files:\n    signals:\n      Au: /nonexistent/au.mrc\nreconstruct:\n  method: sirt\n",
        "no_inputs": "reconstruct:\n  method: sirt\n",
        "two_inputs": good_inputs + "  simulate:\n    phantom: sphere\n    elements: [Au]\n    dose: 1\n",
        "negative_dose": "inputs:\n  simulate:\n    phantom: sphere\n    elements: [Au]\n    dose: -1\n",
        "nan_pixel": good_inputs + "    pixel_size: .nan\n",
        "bad_option": good_inputs + "reconstruct:\n  method: tv\n  options:\n    weight: heavy\n",
        "inf_option": good_inputs + "reconstruct:\n  method: tv\n  options:\n    weight: .inf\n",
        "bad_format": good_inputs + "outputs:\n  formats: [gif]\n",
        "deep": "a: " + "[" * 3000 + "]" * 3000 + "\n",
        "alias_bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi")) + "inputs: *i\n",
        "huge_axis_offset": good_inputs + "reconstruct:\n  method: sirt\n  axis_offset: 1.0e9\n",
        "huge_thickness": good_inputs + "reconstruct:\n  method: sirt\n  thickness: 100000000\n",
        "unknown_denoiser": good_inputs + "denoise:\n  method: blur\n",
        "views_nan": good_inputs + "views:\n  step: .nan\n",
    }


# ---------------------------------------------------------------- cases
def _cases() -> list[tuple[str, str, list[str]]]:
    """``(family, id, argv)`` with ``{W}`` for the world folder and ``{O}`` for this case's output path."""
    W, O = ROOT, "{O}"
    d = f"{W}/data"
    au, haadf, tlt, vol, img = f"{d}/au.mrc", f"{d}/haadf.mrc", f"{d}/angles.tlt", f"{d}/vol.mrc", f"{d}/image.tif"
    run_dir = f"{W}/run"
    cases = []

    def add(family, name, argv):
        cases.append((family, name, [str(a) for a in argv]))

    # usage errors: unknown flags and commands, wrong kinds of values, missing required options
    add("usage", "no-such-command", ["frobnicate"])
    for cmd in COMMANDS:
        add("usage", f"{cmd}-bogus-flag", [cmd, "--bogus-flag", "1"])
    add("usage", "reconstruct-missing-signal", ["reconstruct", "--out", O])
    add("usage", "reconstruct-missing-out", ["reconstruct", "--signal", f"Au={au}"])
    for flag, value in [("--iterations", "-3"), ("--iterations", "abc"), ("--iterations", "0"),
                        ("--thickness", "0"), ("--thickness", "x"), ("--axis-offset", "left"),
                        ("--pixel-size", "big"), ("--slab", "0"), ("--workers", "0")]:
        add("usage", f"reconstruct{flag}={value}", ["reconstruct", "--signal", f"Au={au}", flag, value, "--out", O])
    for flag, value in [("--size", "7"), ("--size", "x"), ("--seed", "1.5"), ("--dose", "lots")]:
        add("usage", f"simulate{flag}={value}", ["simulate", flag, value, "--out", O])
    add("usage", "maps-no-elements", ["maps", f"{d}/junk.bcf", "--out", O])
    add("usage", "denoise-no-method", ["denoise", au, f"{O}.mrc"])
    add("usage", "atoms-no-species", ["atoms", vol, "--voxel-size", "0.2", "--out", f"{O}.csv"])
    add("usage", "count-atoms-no-pixel", ["count-atoms", img, "--out", f"{O}.csv"])
    add("usage", "plan-no-phantom", ["plan", "--elements", "Au", "--out", O])
    add("usage", "run-no-recipe", ["run", "--out", O])
    add("usage", "batch-workers-0", ["batch", d, "--workers", "0", "--out", O])
    add("usage", "quantify-uncertainty-negative", ["quantify", run_dir, "--uncertainty", "-1"])

    # unreadable inputs, for every command that reads a stack, a volume or an image
    bad_files = ["missing.mrc", "empty.mrc", "junk.mrc", "junk.tif", "junk.npy", "junk.mat", "junk.hspy", "junk.bcf",
                 "junk.emd", "junk.dm4", "junk.txt", "truncated.mrc", "folder.mrc", "object.npy"]
    for f in bad_files:
        p = f"{d}/{f}"
        add("files", f"reconstruct-{f}", ["reconstruct", "--signal", f"Au={p}", "--angles", tlt, "--method", "fbp",
                                          "--out", O])
        add("files", f"align-{f}", ["align", "--signal", f"HAADF={p}", "--angles", tlt, "--out", O])
        add("files", f"denoise-{f}", ["denoise", p, f"{O}.mrc", "--method", "gaussian"])
        add("files", f"atoms-{f}", ["atoms", p, "--voxel-size", "0.2", "--species", "Fe,Pt", "--out", f"{O}.csv"])
        add("files", f"count-atoms-{f}", ["count-atoms", p, "--pixel-size", "0.2", "--out", f"{O}.csv"])
        add("files", f"maps-{f}", ["maps", p, "--elements", "Fe,Pt", "--out", O])
    for run in ("missing-run", "data", "afile"):
        add("files", f"quantify-{run}", ["quantify", f"{W}/{run}" if run != "data" else d, "--out", O])
        add("files", f"report-{run}", ["report", f"{W}/{run}" if run != "data" else d, "--out", f"{O}.html"])
    add("files", "run-missing-recipe", ["run", f"{d}/missing.yaml", "--out", O])
    add("files", "run-binary-recipe", ["run", f"{d}/junk.mrc", "--out", O])
    add("files", "batch-missing", ["batch", f"{d}/missing.csv", "--out", O])
    add("files", "batch-binary", ["batch", f"{d}/junk.npy", "--out", O])
    add("files", "count-atoms-bad-library", ["count-atoms", img, "--pixel-size", "0.2", "--library", f"{d}/junk.mrc",
                                             "--out", f"{O}.csv"])
    add("files", "atoms-series-junk", ["atoms", vol, "--voxel-size", "0.2", "--species", "Fe,Pt", "--series",
                                       f"{d}/junk.mrc", "--out", f"{O}.csv"])
    add("files", "denoise-guide-junk", ["denoise", au, f"{O}.mrc", "--method", "unet", "--guide", f"{d}/junk.tif"])

    # arrays that cannot be a tilt series, an image or a volume
    for name in ("complex", "datetime", "bool", "1d", "4d", "zero", "nan", "inf", "huge", "single", "structured",
                 "strings"):
        p = f"{d}/{name}.npy"
        add("arrays", f"reconstruct-{name}", ["reconstruct", "--signal", f"HAADF={p}", "--angles", tlt, "--method",
                                              "fbp", "--out", O])
        if name != "single":  # one map is a valid input to denoise
            add("arrays", f"denoise-{name}", ["denoise", p, f"{O}.mrc", "--method", "gaussian"])
        add("arrays", f"count-atoms-{name}", ["count-atoms", p, "--pixel-size", "0.2", "--out", f"{O}.csv"])
        add("arrays", f"atoms-{name}", ["atoms", p, "--voxel-size", "0.2", "--species", "Fe,Pt", "--out", f"{O}.csv"])
    add("arrays", "reconstruct-rgb", ["reconstruct", "--signal", f"HAADF={d}/rgb.tif", "--angles", tlt, "--method",
                                      "fbp", "--out", O])
    add("arrays", "denoise-rgb", ["denoise", f"{d}/rgb.tif", f"{O}.mrc", "--method", "gaussian"])
    add("arrays", "count-atoms-rgb", ["count-atoms", f"{d}/rgb.tif", "--pixel-size", "0.2", "--out", f"{O}.csv"])
    add("arrays", "count-atoms-stack", ["count-atoms", au, "--pixel-size", "0.2", "--out", f"{O}.csv"])

    # angles
    for name in ("radians", "same", "dupes", "short", "long", "big", "nan", "text", "empty", "missing"):
        a = f"{d}/{name}.tlt"
        add("angles", f"reconstruct-{name}", ["reconstruct", "--signal", f"Au={au}", "--angles", a, "--method", "fbp",
                                              "--out", O])
        add("angles", f"align-{name}", ["align", "--signal", f"HAADF={haadf}", "--angles", a, "--out", O])
    add("angles", "reconstruct-angles-unknown-name", ["reconstruct", "--signal", f"Au={au}", "--angles",
                                                      f"Ag={tlt}", "--out", O])

    # numbers out of range
    rec = ["reconstruct", "--signal", f"Au={au}", "--out", O]
    for extra in (["--axis-offset", "1e9"], ["--axis-offset", "nan"], ["--axis-offset", "inf"],
                  ["--thickness", "100000000"], ["--pixel-size", "0"], ["--pixel-size", "-1"],
                  ["--pixel-size", "nan"], ["--pixel-size", "inf"], ["--iterations", "1000000000000"],
                  ["--views-synthesis", "0.000001"], ["--views-synthesis", "-5"], ["--views-synthesis", "nan"],
                  ["--views-synthesis", "5", "--views-minutes", "-1"]):
        add("numbers", "reconstruct" + "".join(extra), rec[:-2] + ["--method", "sirt", *extra, "--out", O])
    sim = ["simulate", "--out", O]
    for extra in (["--size", "3000"], ["--tilts", "-70:70:0.000001"], ["--tilts", "a:b:c"], ["--tilts", "70:-70:10"],
                  ["--tilts", "-70:70:0"], ["--elements", "Au,Au"], ["--elements", "Zz"], ["--elements", ""],
                  ["--elements", "Au,Ag,Pt,Pd,Cu,Ni,Fe,Co,Ti,O,S,Mo,Ba,Sr"], ["--dose", "-1"], ["--dose", "0"],
                  ["--dose", "nan"], ["--time", "-2"], ["--dose", "1", "--time", "1"], ["--voxel-size", "nan"],
                  ["--voxel-size", "0"], ["--voxel-size", "-0.5"], ["--solid-angle", "-1"], ["--solid-angle", "20"],
                  ["--drift", "-1"], ["--drift", "nan"], ["--sweep", "-3"], ["--critical-dose", "0"],
                  ["--shadow-angle", "nan"], ["--phantom", "dodecahedron"], ["--phantom", "core-shell:sphere,ratio=2"],
                  ["--phantom", "sphere,bogus=1"], ["--signals", "XRAY"], ["--signals", ""],
                  ["--eels-detector", "film"]):
        add("numbers", "simulate" + "".join(extra), sim[:-2] + extra + ["--out", O])
    plan = ["plan", "--phantom", "sphere", "--elements", "Au", "--out", O]
    for extra in (["--doses", "-1"], ["--doses", "a,b"], ["--doses", "nan"], ["--doses", ""], ["--tilts", "1"],
                  ["--tilts", "2.5"], ["--tilts", "-4"], ["--methods", "nonsense"], ["--methods", ""],
                  ["--target", "-1"], ["--target", "nan"], ["--resolution", "-1"], ["--signal", "XRF"],
                  ["--voxel-size", "0"], ["--size", "4000"]):
        add("numbers", "plan" + "".join(extra), plan[:-2] + extra + ["--out", O])
    at = ["atoms", vol, "--out", f"{O}.csv"]
    for extra in (["--voxel-size", "0.2", "--species", "Pt,Pt"], ["--voxel-size", "0.2", "--species", "Zz,Pt"],
                  ["--voxel-size", "0.2", "--species", ""], ["--voxel-size", "0", "--species", "Fe,Pt"],
                  ["--voxel-size", "nan", "--species", "Fe,Pt"], ["--voxel-size", "-1", "--species", "Fe,Pt"],
                  ["--voxel-size", "0.2", "--species", "Fe,Pt", "--min-distance", "-1"],
                  ["--voxel-size", "0.2", "--species", "Fe,Pt", "--threshold", "nan"],
                  ["--voxel-size", "0.2", "--species", "Fe,Pt", "--angles", tlt]):
        add("numbers", "atoms" + "".join(extra), at + extra)
    ca = ["count-atoms", img, "--out", f"{O}.csv"]
    for extra in (["--pixel-size", "0"], ["--pixel-size", "nan"], ["--pixel-size", "-1"],
                  ["--pixel-size", "0.2", "--dose", "-1"], ["--pixel-size", "0.2", "--dose", "0"],
                  ["--pixel-size", "0.2", "--dose", "nan"], ["--pixel-size", "0.2", "--min-distance", "-2"],
                  ["--pixel-size", "0.2", "--min-distance", "inf"]):
        add("numbers", "count-atoms" + "".join(extra), ca + extra)
    add("numbers", "quantify-coverage-negative", ["quantify", run_dir, "--coverage-threshold", "-1", "--out", O])
    add("numbers", "quantify-bad-core", ["quantify", run_dir, "--core", "Zz", "--out", O])
    for extra, label in ((["--times", "0"], "one-time-two-runs"), (["--times", "0,a"], "text-time"),
                         (["--times", "5,5"], "repeated-time"), (["--times", "0,nan"], "nan-time"),
                         (["--times", "0,10", "--calibration", "median"], "bad-calibration"),
                         (["--times", "0,10", "--elements", "Au"], "one-element"),
                         (["--times", "0,10", "--signal", "Zz"], "missing-signal")):
        add("numbers", f"alloying-{label}", ["alloying", run_dir, run_dir, *extra, "--out", O])
    add("files", "alloying-missing-run", ["alloying", f"{W}/nowhere", run_dir, "--times", "0,10", "--out", O])
    add("numbers", "quantify-bad-core-rule", ["quantify", run_dir, "--core-rule", "vote", "--out", O])
    add("numbers", "quantify-bad-reference", ["quantify", run_dir, "--reference", "Zz", "--out", O])
    add("numbers", "quantify-uncertainty-no-signal", ["quantify", run_dir, "--uncertainty", "2", "--out", O])
    add("numbers", "maps-downsample-non-bcf", ["maps", f"{d}/junk.emd", "--elements", "Fe", "--downsample", "2",
                                               "--out", O])
    add("numbers", "maps-bad-method", ["maps", f"{d}/junk.bcf", "--elements", "Fe", "--method", "magic", "--out", O])
    add("numbers", "maps-bad-elements", ["maps", f"{d}/junk.bcf", "--elements", "Zz", "--out", O])
    add("numbers", "align-bad-reference", ["align", "--signal", f"HAADF={haadf}", "--reference", "Au", "--out", O])
    add("numbers", "align-bad-method", ["align", "--signal", f"HAADF={haadf}", "--method", "magic", "--out", O])
    add("numbers", "align-bad-rotation", ["align", "--signal", f"HAADF={haadf}", "--rotation", "left", "--out", O])
    add("numbers", "align-nan-rotation", ["align", "--signal", f"HAADF={haadf}", "--rotation", "nan", "--out", O])
    add("numbers", "demo-size-huge", ["demo", "--size", "5000", "--out", O])

    # options: unknown, of the wrong kind, or that would be ignored
    for opt in ("weight=heavy", "weight=inf", "weight=-1", "weight=nan", "bogus=1", "data=poisson", "=3", "weight",
                "filter=blackman-harris"):
        method = "fbp" if opt.startswith("filter") else "tv"
        add("options", f"reconstruct-{method}-{opt}", rec[:-2] + ["--method", method, "--option", opt, "--out", O])
    for extra in (["--method", "nonsense"], ["--format", "gif"], ["--format", ""], ["--stop", "sometimes"],
                  ["--method", "fbp", "--stop", "discrepancy"], ["--method", "fbp", "--iterations", "10"],
                  ["--denoise", "blur"], ["--denoise-option", "sigma=2"], ["--views-range", "-90:90"],
                  ["--denoise", "gaussian", "--denoise-option", "sigma=-1"],
                  ["--denoise", "gaussian", "--denoise-option", "bogus=1"],
                  ["--denoise", "gaussian", "--denoise-signal", "Ag"],
                  ["--method", "sirt", "--views-synthesis", "5", "--views-range", "10:-10"],
                  ["--slab", "2", "--method", "auto"], ["--slab", "2", "--method", "sirt", "--scheduler", "not a url"],
                  ["--slab", "2", "--method", "sirt", "--denoise", "gaussian"],
                  ["--candidates", "sirt,nonsense"], ["--candidates", "sirt", "--method", "sirt"],
                  ["--rank-only", "--method", "sirt"], ["--method", "dtv"]):
        add("options", "reconstruct" + "".join(extra), rec[:-2] + extra + ["--out", O])
    for opt in ("iterations=0", "weight=heavy", "bogus=1", "sigma=-1", "sigma=inf"):
        method = "gaussian" if opt.startswith("sigma") else "tv"
        add("options", f"denoise-{method}-{opt}", ["denoise", au, f"{O}.mrc", "--method", method, "--option", opt])
    add("options", "denoise-bad-method", ["denoise", au, f"{O}.mrc", "--method", "blur"])
    add("options", "denoise-guide-gaussian", ["denoise", au, f"{O}.mrc", "--method", "gaussian", "--guide", haadf])
    add("options", "denoise-frames-single", ["denoise", f"{d}/single.npy", f"{O}.mrc", "--method", "gaussian",
                                             "--frames"])
    add("options", "batch-bad-scheduler", ["batch", d, "--scheduler", "::::", "--out", O])

    # outputs that would damage something or cannot be written
    add("outputs", "reconstruct-out-is-file", rec[:-2] + ["--method", "fbp", "--out", f"{d}/afile"])
    add("outputs", "reconstruct-out-empty", rec[:-2] + ["--method", "fbp", "--out", ""])
    add("outputs", "reconstruct-out-is-input-folder", rec[:-2] + ["--method", "fbp", "--out", d])
    add("outputs", "reconstruct-out-foreign", rec[:-2] + ["--method", "fbp", "--out", f"{d}/foreign"])
    add("outputs", "reconstruct-out-under-file", rec[:-2] + ["--method", "fbp", "--out", f"{d}/afile/sub"])
    add("outputs", "reconstruct-out-too-long", rec[:-2] + ["--method", "fbp", "--out", f"{W}/outs/{'x' * 300}"])
    add("outputs", "align-out-is-input-folder", ["align", "--signal", f"HAADF={haadf}", "--angles", tlt, "--out", d])
    add("outputs", "simulate-out-is-file", ["simulate", "--out", f"{d}/afile"])
    add("outputs", "simulate-out-foreign", ["simulate", "--out", f"{d}/foreign"])
    add("outputs", "denoise-out-is-input", ["denoise", au, au, "--method", "gaussian"])
    add("outputs", "denoise-out-bad-suffix", ["denoise", au, f"{O}.png", "--method", "gaussian"])
    add("outputs", "denoise-out-is-folder", ["denoise", au, f"{d}/folder.mrc", "--method", "gaussian"])
    add("outputs", "count-atoms-out-is-input", ["count-atoms", img, "--pixel-size", "0.2", "--out", img])
    add("outputs", "count-atoms-out-bad-suffix", ["count-atoms", img, "--pixel-size", "0.2", "--out", f"{O}.mrc"])
    add("outputs", "atoms-out-is-input", ["atoms", vol, "--voxel-size", "0.2", "--species", "Fe,Pt", "--out", vol])
    add("outputs", "atoms-out-bad-suffix", ["atoms", vol, "--voxel-size", "0.2", "--species", "Fe,Pt", "--out",
                                            f"{O}.pdb"])
    add("outputs", "report-out-is-volume", ["report", run_dir, "--out", f"{run_dir}/Au.mrc"])
    add("outputs", "report-out-bad-suffix", ["report", run_dir, "--out", f"{O}.pdf"])
    add("outputs", "quantify-out-is-run", ["quantify", run_dir, "--out", run_dir])
    add("outputs", "maps-out-is-file", ["maps", f"{d}/junk.bcf", "--elements", "Fe", "--out", f"{d}/afile"])
    add("outputs", "plan-out-is-file", plan[:-2] + ["--out", f"{d}/afile"])
    add("outputs", "run-out-is-data", ["run", f"{d}/recipe.yaml", "--out", d])
    add("outputs", "run-out-is-file", ["run", f"{d}/recipe.yaml", "--out", f"{d}/afile"])
    add("outputs", "batch-out-is-file", ["batch", d, "--out", f"{d}/afile"])
    add("outputs", "demo-out-is-foreign", ["demo", "--out", f"{d}/foreign"])

    # recipes and batch manifests
    for name in _recipes(Path("/")):
        add("recipes", f"run-{name}", ["run", f"{W}/recipes/{name}.yaml", "--out", O])
    for name in ("escape", "absolute", "dupe", "columns", "empty-name", "missing-recipe"):
        add("recipes", f"batch-{name}", ["batch", f"{W}/manifests/{name}.csv", "--out", O])
    add("recipes", "batch-empty-folder", ["batch", f"{W}/manifests/none", "--out", O])
    return cases


def _write_recipes(root: Path) -> None:
    (root / "recipes").mkdir()
    for name, text in _recipes(root / "data").items():
        (root / "recipes" / f"{name}.yaml").write_text(text)
    m = root / "manifests"
    m.mkdir()
    rec = root / "data" / "recipe.yaml"
    (m / "escape.csv").write_text(f"name,recipe\n../escaped,{rec}\n")
    (m / "absolute.csv").write_text(f"name,recipe\n/tmp/absolute,{rec}\n")
    (m / "dupe.csv").write_text(f"name,recipe\na,{rec}\na,{rec}\n")
    (m / "columns.csv").write_text(f"particle,file\na,{rec}\n")
    (m / "empty-name.csv").write_text(f"name,recipe\n,{rec}\n")
    (m / "missing-recipe.csv").write_text("name,recipe\na,nowhere.yaml\n")
    (m / "none").mkdir()


CASES = _cases()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    _world(root)
    _write_recipes(root)
    (root / "outs").mkdir()
    return root


def _snapshot(root: Path, skip: Path) -> dict:
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip.parent:  # the case's own output and its suffixed variants
            filenames = [f for f in filenames if not f.startswith(skip.name)]
            dirnames[:] = [n for n in dirnames if not n.startswith(skip.name)]
        for f in filenames:
            p = here / f
            state[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
        for n in dirnames:
            state[str((here / n).relative_to(root)) + "/"] = "dir"
    return state


def _argv(argv, world, out):
    return [a.replace(ROOT, str(world)).replace("{O}", str(out)) for a in argv]


@pytest.mark.parametrize("family,name,argv", CASES, ids=[f"{f}:{n}" for f, n, _ in CASES])
def test_malformed_input_is_one_line_exit_2(world, family, name, argv, capsys):
    out = world / "outs" / name.replace("/", "_")[:60]
    args = _argv(argv, world, out)
    before = _snapshot(world, out)
    code = main(args)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stdout {captured.out[-300:]!r}; stderr {captured.err[-600:]!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-800:]
    assert "Traceback" not in captured.err + captured.out
    assert "internal error" not in captured.err, captured.err
    after = _snapshot(world, out)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) ^ set(after)
                             or [k for k in before if before[k] != after[k]]}
    leftovers = [p.name for p in (world / "outs").iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers


SUBPROCESS_SAMPLE = [c for i, c in enumerate(CASES) if i % 23 == 0]


@pytest.mark.parametrize("family,name,argv", SUBPROCESS_SAMPLE, ids=[f"{f}:{n}" for f, n, _ in SUBPROCESS_SAMPLE])
def test_entry_point_in_a_subprocess(world, family, name, argv):
    out = world / "outs" / ("sub-" + name.replace("/", "_")[:56])
    proc = subprocess.run([sys.executable, "-m", "chemtomo", *_argv(argv, world, out)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80"})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-800:]


def test_the_suite_covers_every_command_and_enough_cases():
    commands = {argv[0] for _, _, argv in CASES}
    assert set(COMMANDS) <= commands | {"frobnicate"}
    assert len(CASES) >= 300, len(CASES)
