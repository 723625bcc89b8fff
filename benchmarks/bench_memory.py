"""Peak memory of SIRT on 512 slices of 512 x 512 with 91 tilts (bar: within 8 GiB).

Runs SIRT in this process on a random volume's projections and reports the
peak resident memory (ru_maxrss) after the projector is built and after the
iterations, with the time per iteration. Run:
``python benchmarks/bench_memory.py [--iterations 5]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _util import machine, peak_rss_gib, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import sirt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tilts", type=int, default=91)
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args()
    n = args.size
    rows = [{"stage": "start (Python, torch, chemtomo imported)", "peak RSS (GiB)": peak_rss_gib()}]
    op = Projector(TiltGeometry(np.linspace(-90, 90, args.tilts, endpoint=False), (n, n, n)))
    t = time.perf_counter()
    data = op(torch.rand(n, n, n)).numpy()  # builds the matrices; the random volume is freed
    rows.append({"stage": f"projector built, data {data.nbytes / 2**30:.2f} GiB", "peak RSS (GiB)": peak_rss_gib(),
                 "time (s)": time.perf_counter() - t})
    times = []
    t = time.perf_counter()

    def tick(i, x):
        times.append(time.perf_counter())
        return False

    vol = sirt(op, data, args.iterations, callback=tick)
    rows.append({"stage": f"SIRT, {args.iterations} iterations, volume {vol.nbytes / 2**30:.2f} GiB",
                 "peak RSS (GiB)": peak_rss_gib(), "time (s)": time.perf_counter() - t})
    per_it = np.diff([t] + times)
    print(f"# Memory: SIRT on {n} slices of {n}x{n}, {args.tilts} tilts\nmachine: {machine()}\n")
    print(table(rows, ["stage", "peak RSS (GiB)", "time (s)"]))
    print(f"\nmatrix: {op.matrix().nnz / 1e6:.1f} M non-zeros; time per SIRT iteration {np.median(per_it):.2f} s "
          f"(first {per_it[0]:.2f} s, includes the row/column sums)")


if __name__ == "__main__":
    main()
