"""Shared helpers for the benchmark scripts: timing, tables, machine limits."""

from __future__ import annotations

import os
import platform
import time

import torch


def best_of(fn, repeats: int = 3) -> float:
    """Shortest wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of `rows` (dicts) with the given column order."""
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def machine_limits() -> dict:
    """Measured single-precision matmul rate (GFLOP/s) and copy bandwidth (GB/s) of this machine."""
    a = torch.rand(2048, 2048)
    b = torch.rand(2048, 2048)
    t = best_of(lambda: a @ b, 5)
    gflops = 2 * 2048**3 / t / 1e9
    x = torch.empty(64 * 2**20)  # 256 MiB
    x.uniform_()
    y = torch.empty_like(x)
    t = best_of(lambda: y.copy_(x), 5)
    bandwidth = 2 * x.numel() * 4 / t / 1e9  # read + write
    return {"matmul_gflops": gflops, "copy_gbps": bandwidth}


def peak_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
