"""Outputs as a set: staging, lock, manifest, recovery after a kill, and --resume that checks what it trusts.

Each fault test damages or interrupts a run on purpose and asserts the state afterwards: the previous
set intact (byte for byte), no hidden staging folder left, a second writer refused, and a resumed
recipe redoing exactly the steps whose files, records or inputs no longer match.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from chemtomo.core.errors import ChemtomoError
from chemtomo.io.outputs import (MANIFEST, check_output_file, check_output_folder, lock, output_folder,
                                 verify_manifest)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(parent: Path) -> list[str]:
    return sorted(n for n in os.listdir(parent) if ".staging-" in n or ".old-" in n)


def test_a_set_appears_whole_with_its_manifest(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.txt").write_text("one")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text("two")
        assert not out.exists()  # nothing visible until the block ends
    assert (out / "a.txt").read_text() == "one" and (out / MANIFEST).is_file()
    assert verify_manifest(out) == [] and _hidden(tmp_path) == []
    (out / "sub" / "b.txt").write_text("changed")
    assert verify_manifest(out) == [f"{out / 'sub' / 'b.txt'} changed since it was written"]
    (out / "a.txt").unlink()
    assert f"{out / 'a.txt'} is missing" in verify_manifest(out)


def test_a_failed_run_leaves_the_previous_set(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.txt").write_text("old")
    before = _snapshot(out)
    with pytest.raises(RuntimeError):
        with output_folder(out) as stage:
            (stage / "a.txt").write_text("new")
            raise RuntimeError("the method failed half way")
    assert _snapshot(out) == before and _hidden(tmp_path) == []


def test_a_second_writer_is_refused(tmp_path):
    out = tmp_path / "out"
    with lock(out):
        with pytest.raises(ChemtomoError, match="another chemtomo process is writing"):
            with output_folder(out):
                pass
    with output_folder(out) as stage:  # released: the next writer goes ahead
        (stage / "x").write_text("x")
    assert (out / "x").is_file()


def test_folders_that_must_not_be_replaced_are_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file")
    with pytest.raises(ChemtomoError, match="notes.txt|not written by chemtomo|not empty"):
        check_output_folder(mine)
    data = tmp_path / "data"
    data.mkdir()
    (data / "au.mrc").write_bytes(b"x")
    with pytest.raises(ChemtomoError, match="input"):
        check_output_folder(tmp_path, inputs=[data / "au.mrc"])
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ChemtomoError):
        check_output_folder(tmp_path / "afile")
    with pytest.raises(ChemtomoError, match="also an input"):
        check_output_file(data / "au.mrc", inputs=[data / "au.mrc"])
    assert (mine / "notes.txt").read_text() == "the user's own file" and (data / "au.mrc").read_bytes() == b"x"


_WRITER = """
import sys, time
from pathlib import Path
from chemtomo.io.outputs import output_folder
with output_folder(sys.argv[1]) as stage:
    (stage / "a.txt").write_text("new")
    Path(sys.argv[2]).write_text("written")  # tell the test the stage is half written
    time.sleep(60)
    (stage / "b.txt").write_text("new")
"""


def test_a_killed_writer_leaves_the_previous_set_and_the_next_run_cleans_up(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.txt").write_text("old")
        (stage / "b.txt").write_text("old")
    before = _snapshot(out)
    flag = tmp_path / "flag"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(flag)], env=env)
    try:
        for _ in range(600):
            if flag.exists():
                break
            time.sleep(0.05)
        assert flag.exists(), "the writer did not start"
        assert _hidden(tmp_path), "the writer stages beside --out"
        with pytest.raises(ChemtomoError, match="another chemtomo process"):  # locked while it runs
            with output_folder(out):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _snapshot(out) == before and verify_manifest(out) == []
    with output_folder(out) as stage:  # the next run removes the killed run's stage
        (stage / "a.txt").write_text("next")
    assert _hidden(tmp_path) == [] and (out / "a.txt").read_text() == "next"


def test_a_swap_cut_between_its_renames_is_undone(tmp_path):
    out = tmp_path / "out"
    with output_folder(out) as stage:
        (stage / "a.txt").write_text("old")
    os.replace(out, tmp_path / ".out.old-deadbeef")  # killed after the first rename, before the second
    (tmp_path / ".out.staging-cafe0000").mkdir()
    with output_folder(out) as stage:
        assert (out / "a.txt").read_text() == "old"  # restored as soon as the folder is locked
        (stage / "a.txt").write_text("new")
    assert (out / "a.txt").read_text() == "new" and _hidden(tmp_path) == []


def test_a_killed_reconstruction_leaves_the_previous_volumes(tmp_path):
    from chemtomo.cli import main
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.io import write_stack
    from chemtomo.testing import core_shell

    angles = np.linspace(-60, 60, 9)
    parts = core_shell((4, 16, 16), 2, 6)
    write_stack(tmp_path / "au.mrc", Projector(TiltGeometry(angles, (4, 16, 16)))(parts["core"]).astype(np.float32),
                angles)
    out = tmp_path / "recon"
    assert main(["--threads", "1", "reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--method", "fbp",
                 "--out", str(out)]) == 0
    before = _snapshot(out)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "chemtomo", "--threads", "1", "reconstruct", "--signal",
                             f"Au={tmp_path / 'au.mrc'}", "--method", "sirt", "--iterations", "90000", "--out",
                             str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):
            if _hidden(tmp_path):
                break
            time.sleep(0.05)
        assert _hidden(tmp_path), "the run did not start staging"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _snapshot(out) == before  # the FBP set, whole
    assert main(["--threads", "1", "report", str(out), "--out", str(tmp_path / "report.html")]) in (0, 2)
    assert main(["--threads", "1", "reconstruct", "--signal", f"Au={tmp_path / 'au.mrc'}", "--method", "sirt",
                 "--iterations", "5", "--out", str(out)]) == 0
    assert _hidden(tmp_path) == [] and json.loads((out / "chemtomo.json").read_text())["provenance"]["method"] == "sirt"


@pytest.fixture
def recipe_run(tmp_path):
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.io import write_stack
    from chemtomo.pipeline.run import run_recipe
    from chemtomo.testing import core_shell

    angles = np.linspace(-60, 60, 9)
    parts = core_shell((4, 16, 16), 2, 6)
    au = tmp_path / "au.mrc"
    write_stack(au, Projector(TiltGeometry(angles, (4, 16, 16)))(parts["core"]).astype(np.float32), angles)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"inputs:\n  files:\n    signals:\n      Au: {au}\nreconstruct:\n  method: sirt\n"
                      "  iterations: 5\n")
    out = tmp_path / "run"
    run_recipe(recipe, out, log=lambda *a: None)

    def resume():
        lines = []
        run_recipe(recipe, out, resume=True, log=lines.append)
        return lines

    return out, au, resume


def _step(out: Path, prefix: str) -> Path:
    return next(p for p in out.iterdir() if p.name.startswith(prefix))


def test_resume_skips_an_intact_run(recipe_run):
    out, _, resume = recipe_run
    lines = resume()
    assert lines and all("skipped" in line for line in lines if line.split(":")[0] in ("1-inputs", "3-reconstruct"))
    assert not any("redone" in line for line in lines)


@pytest.mark.parametrize("damage", ["junk step.json", "empty step.json", "list step.json", "volume deleted",
                                    "junk volume"])
def test_resume_redoes_a_damaged_step(recipe_run, damage):
    out, _, resume = recipe_run
    step = _step(out, "3-reconstruct")
    from chemtomo.io import read_volume

    volume = next(step.rglob("Au.mrc"))
    good = volume.read_bytes()
    expected = read_volume(volume)[0]
    if damage == "junk step.json":
        (step / "step.json").write_bytes(os.urandom(64))
    elif damage == "empty step.json":
        (step / "step.json").write_text("")
    elif damage == "list step.json":
        (step / "step.json").write_text("[1, 2, 3]")
    elif damage == "volume deleted":
        volume.unlink()
    else:
        volume.write_bytes(os.urandom(len(good)))
    lines = resume()
    assert any(line.startswith("3-reconstruct") and "redone" in line for line in lines), lines
    np.testing.assert_allclose(read_volume(next(_step(out, "3-reconstruct").rglob("Au.mrc")))[0], expected,
                               rtol=1e-5, atol=1e-6)  # the same result again (the MRC header holds the time)
    assert verify_manifest(_step(out, "3-reconstruct")) == []


def test_resume_redoes_steps_whose_input_file_changed(recipe_run):
    out, au, resume = recipe_run
    from chemtomo.io import read_stack, write_stack

    data, meta = read_stack(au)
    write_stack(au, 2 * data, meta["angles"])
    lines = resume()
    assert any(line.startswith("1-inputs") and "redone" in line for line in lines), lines
    assert any(line.startswith("3-reconstruct") and "redone" in line for line in lines), lines
