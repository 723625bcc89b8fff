"""CPU threads: a default that cannot oversubscribe the cores, and one place that sets them.

Torch, and the BLAS and OpenMP libraries under numpy and scipy, start one
thread per core of the machine. When anything else runs on those cores (a second
chemtomo, a Dask worker beside it, another user's job) the threads wait on each
other and iterative methods slow down many times over (docs/benchmarks.md,
"Threads"). chemtomo therefore chooses its thread count itself:

* :func:`available_cores`: the cores this process may use, the smaller of its CPU affinity and
  the cgroup CPU quota (containers, batch schedulers);
* :func:`free_cores`: of those, the ones not busy now (a 0.1 s sample of their use), at least 1;
* :func:`default_threads`: ``OMP_NUM_THREADS`` when it is set (capped at the available cores),
  else :func:`free_cores`;
* :func:`set_threads`: applies a count to torch (intra-op and, while still allowed,
  inter-op threads) and to ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
  ``OPENBLAS_NUM_THREADS`` for child processes.

``chemtomo --threads N COMMAND`` and a recipe's ``threads:`` give the count explicitly; batch
and slab workers run one thread each unless asked.
"""

from __future__ import annotations

import math
import os

from .errors import ChemtomoError

#: environment variables read by OpenMP, MKL and OpenBLAS when a (child) process starts
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

_GIVEN = os.environ.get("OMP_NUM_THREADS")  # the process's own setting, before set_threads writes one
_written: str | None = None  # the value set_threads last wrote


def _affinity() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _cgroup_quota() -> float | None:
    """CPUs allowed by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota; None without one."""
    for quota_file, period_file in (("/sys/fs/cgroup/cpu.max", None),
                                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            with open(quota_file) as f:
                fields = f.read().split()
            if period_file is not None:
                with open(period_file) as f:
                    fields = fields[:1] + f.read().split()[:1]
        except (OSError, ValueError):
            continue
        if len(fields) >= 2 and fields[0] not in ("max", "-1"):
            try:
                quota, period = float(fields[0]), float(fields[1])
            except ValueError:
                continue
            if quota > 0 and period > 0:
                return quota / period
    return None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, lowered to the cgroup CPU quota if there is one; >= 1."""
    cores = len(_affinity())
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def busy_cores(interval: float = 0.1) -> float:
    """How many of this process's CPUs other work keeps busy now, in cores (0 = all idle).

    Measured over `interval` seconds with psutil (the busy fraction of each CPU in the affinity set,
    summed); without psutil, the 1-minute load average times the share of the machine's CPUs this
    process may use.
    """
    cpus = _affinity()
    try:
        import psutil
    except ImportError:
        share = len(cpus) / (os.cpu_count() or len(cpus))
        return float(os.getloadavg()[0]) * share if hasattr(os, "getloadavg") else 0.0
    per_cpu = psutil.cpu_percent(interval=interval, percpu=True)
    return sum(per_cpu[c] for c in cpus if c < len(per_cpu)) / 100.0


def free_cores(interval: float = 0.1) -> int:
    """Available cores (:func:`available_cores`) minus the busy ones (:func:`busy_cores`), rounded; >= 1."""
    cores = available_cores()
    return max(1, min(cores, round(cores - busy_cores(interval))))


def default_threads() -> int:
    """The thread count chemtomo uses when none is given.

    ``OMP_NUM_THREADS`` if it is set to a whole number (an explicit choice, as torch reads it), capped
    at :func:`available_cores`; otherwise :func:`free_cores`. Never more than the available cores.
    A value :func:`set_threads` wrote itself is no choice: a later call measures the load again.
    """
    text = os.environ.get("OMP_NUM_THREADS", "")
    ours = text == _written and text != _GIVEN  # written by set_threads, not chosen: measure again
    text = text.strip()
    if not ours and text.isdigit() and int(text) >= 1:
        return min(int(text), available_cores())
    return free_cores()


def check_threads(n, what: str = "--threads") -> int:
    """`n` as an int in ``1..available_cores()``; otherwise a one-line :class:`ChemtomoError`."""
    cores = available_cores()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cores:
        raise ChemtomoError(f"{what} must be a whole number from 1 to {cores} (the cores available here), got {n!r}")
    return n


def set_threads(n: int) -> int:
    """Use `n` CPU threads: torch's intra-op threads, its inter-op threads while torch still allows it,
    and ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` for child processes.

    Parameters
    ----------
    n : int
        Threads, >= 1 (not checked against the cores: see :func:`check_threads`).

    Returns
    -------
    int
        `n`.
    """
    import torch

    n = int(n)
    if n < 1:
        raise ChemtomoError(f"the thread count must be at least 1, got {n}")
    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # only allowed before the first inter-op parallel work
            pass
    global _written
    for name in THREAD_ENV:
        os.environ[name] = str(n)
    _written = str(n)
    return n


def worker_env(threads: int) -> dict[str, str]:
    """The environment variables that give a worker process `threads` OpenMP/MKL/OpenBLAS threads."""
    return {name: str(int(threads)) for name in THREAD_ENV}
