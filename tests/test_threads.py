"""CPU threads: the default never exceeds the cores nor ignores their load; --threads, recipes and batch apply
them; long steps show progress (issue 27)."""

import io
import os

import pytest
import torch
from rich.console import Console

from chemtomo import cli
from chemtomo.cli import main
from chemtomo.core import threads
from chemtomo.core.errors import ChemtomoError


@pytest.fixture()
def keep_threads(monkeypatch):
    """Restore torch's threads and the thread variables after a test that sets them (the session runs on 1)."""
    before = torch.get_num_threads()
    for name in threads.THREAD_ENV:
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    yield
    torch.set_num_threads(before)


def test_free_cores_honour_affinity_and_load(monkeypatch):
    monkeypatch.setattr(threads, "_affinity", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    for busy, free in [(0.0, 4), (0.4, 4), (1.0, 3), (2.6, 1), (3.9, 1), (12.0, 1)]:
        monkeypatch.setattr(threads, "busy_cores", lambda interval=0.1, b=busy: b)
        assert threads.free_cores() == free
    # a cgroup quota of 1.5 CPUs leaves 2 cores of the 4
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.5)
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.1: 0.0)
    assert threads.available_cores() == 2 and threads.free_cores() == 2


def test_default_threads_never_exceed_the_affinity(monkeypatch):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert 1 <= threads.default_threads() <= cores
    # a busy machine: one thread
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.1: float(cores))
    assert threads.default_threads() == 1
    # OMP_NUM_THREADS is an explicit choice, capped at the cores
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(10 * cores))
    assert threads.default_threads() == threads.available_cores()


def test_busy_cores_measures_the_affinity_cpus(monkeypatch):
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(threads, "_affinity", lambda: [1, 2])
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: [100.0, 50.0, 25.0, 100.0])
    assert threads.busy_cores() == pytest.approx(0.75)


@pytest.mark.parametrize("n", ["0", "999", "-1", "two"])
def test_threads_out_of_range_refused(n, capsys, keep_threads):
    assert main(["--threads", n, "methods"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--threads" in err and len(err.splitlines()) == 1


def test_threads_option_sets_torch_and_child_env(capsys, keep_threads):
    assert main(["--threads", "1", "methods"]) == 0
    assert torch.get_num_threads() == 1
    assert all(os.environ[name] == "1" for name in threads.THREAD_ENV)
    assert "sirt" in capsys.readouterr().out


def test_default_applied_without_option(capsys, keep_threads, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(2)
    assert main(["methods"]) == 0
    assert torch.get_num_threads() == 1


def test_worker_threads_cannot_oversubscribe(keep_threads):
    cores = threads.available_cores()
    assert main(["--threads", "1", "methods"]) == 0
    assert cli._worker_threads(8, None) == 1  # one thread per worker unless asked
    cli._threads_given = cores
    try:
        if cores > 1:
            with pytest.raises(ChemtomoError, match="oversubscribe"):
                cli._worker_threads(2, None)
        assert cli._worker_threads(1, None) == cores
        assert cli._worker_threads(4, "tcp://elsewhere:8786") == cores  # a remote cluster has its own cores
    finally:
        cli._threads_given = None


def _recipe(tmp_path, extra=""):
    path = tmp_path / "r.yaml"
    path.write_text("inputs:\n  simulate: {phantom: sphere, elements: [Au], size: 16, dose: 1.0e+7, "
                    "tilts: '-60:60:30', signals: [EDX]}\nreconstruct: {method: fbp}\n" + extra)
    return path


def test_recipe_threads_validated(tmp_path):
    from chemtomo.pipeline.recipe import load_recipe

    assert load_recipe(_recipe(tmp_path, "threads: 1\n")).threads == 1
    assert load_recipe(_recipe(tmp_path)).threads is None
    for bad, why in [("0", "from 1 to"), ("999", "from 1 to"), ("two", "integer"), ("1.5", "integer")]:
        with pytest.raises(ChemtomoError, match=rf"^r.yaml line 4: threads: .*{why}"):
            load_recipe(_recipe(tmp_path, f"threads: {bad}\n"))


def test_recipe_threads_applied_and_recorded(tmp_path, keep_threads):
    from chemtomo.pipeline.run import run_recipe

    torch.set_num_threads(threads.available_cores())
    record = run_recipe(_recipe(tmp_path, "threads: 1\n"), tmp_path / "run", log=lambda *_: None)
    assert torch.get_num_threads() == 1 and record["threads"] == 1
    assert os.environ["OMP_NUM_THREADS"] == "1"
    # an explicit count (--threads, a batch worker's) wins over the recipe's; the steps are not redone
    if threads.available_cores() > 1:
        again = run_recipe(_recipe(tmp_path, "threads: 1\n"), tmp_path / "run", resume=True, log=lambda *_: None,
                           threads=2)
        assert again["threads"] == 2 and all(s.get("skipped") for s in again["steps"].values())


def test_plan_shows_progress(tmp_path, monkeypatch, capsys, keep_threads):
    """Every reconstruction of the grid advances the plan bar; each shows its iterations."""
    buf = io.StringIO()
    monkeypatch.setattr(cli, "err", Console(file=buf, force_terminal=True, width=120))
    code = main(["--threads", "1", "plan", "--phantom", "sphere", "--elements", "Au", "--size", "16",
                 "--doses", "1e7,1e8", "--tilts", "9", "--methods", "mlem,tv", "--out", str(tmp_path / "p")])
    assert code == 0, capsys.readouterr()
    shown = buf.getvalue()
    assert "plan" in shown and "4/4" in shown
    assert "mlem Au" in shown and "tv Au" in shown


def test_run_command_threads_override_the_recipe(tmp_path, capsys, keep_threads):
    import json

    assert main(["--threads", "1", "run", str(_recipe(tmp_path, "threads: 1\n")), "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "run.json").read_text())["threads"] == 1
    assert main(["--threads", "1", "run", str(_recipe(tmp_path, "threads: 0\n")), "--out", str(tmp_path / "b")]) == 2
    assert "threads: the thread count must be" in capsys.readouterr().err


def test_a_count_set_by_chemtomo_is_measured_again(monkeypatch, keep_threads):
    """In one Python session, an earlier command's count (written to OMP_NUM_THREADS for child processes)
    does not become the next command's default; a user's own OMP_NUM_THREADS does."""
    monkeypatch.setattr(threads, "_GIVEN", None)
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.1: 0.0)
    threads.set_threads(1)
    assert threads.default_threads() == threads.available_cores()
    monkeypatch.setattr(threads, "_GIVEN", "1")  # the session started with OMP_NUM_THREADS=1
    assert threads.default_threads() == 1
