"""Phantom generation and data-set writing speed.

Part 1 times rendering `--per-family` random particles of every shape family
(single element, random size, orientation and rounding) at `--n`^3 voxels, and
of every composition (random family). Part 2 writes `--particles` random
two-element particles with :func:`chemtomo.training.dataset.write_dataset`
(float16, Zstd, one chunk per particle) with 1 and `--workers` processes; when
`--particles` is below 1,000 the 1,000-particle time is extrapolated linearly
and the table says so. Run: ``python benchmarks/bench_phantoms.py``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from _util import machine, table
from chemtomo.simulate.phantoms import COMPOSITIONS, random_spec, render_phantom
from chemtomo.simulate.sdf import FAMILIES
from chemtomo.training.dataset import write_dataset


def time_specs(specs):
    times = []
    for spec in specs:
        t = time.perf_counter()
        render_phantom(spec)
        times.append(time.perf_counter() - t)
    return np.array(times)


def dir_size(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=128, help="grid size (n^3)")
    ap.add_argument("--per-family", type=int, default=10, help="particles per family / composition")
    ap.add_argument("--particles", type=int, default=1000, help="particles in the data-set run")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    shape = (args.n,) * 3
    print(f"# phantoms at {args.n}^3 on {machine()}\n")

    rows = []
    render_phantom(random_spec(0, shape))  # warm up imports
    for k, fam in enumerate(FAMILIES):
        specs = [random_spec(np.random.default_rng([k, i]), shape, ["Au"], families=[fam]) for i in range(args.per_family)]
        t = time_specs(specs)
        rows.append({"case": fam, "mean ms": 1e3 * t.mean(), "max ms": 1e3 * t.max()})
    for k, comp in enumerate(COMPOSITIONS):
        specs = [random_spec(np.random.default_rng([99, k, i]), shape, ["Au", "Ag"], compositions=[comp]) for i in range(args.per_family)]
        t = time_specs(specs)
        rows.append({"case": f"composition {comp}", "mean ms": 1e3 * t.mean(), "max ms": 1e3 * t.max()})
    specs = [random_spec(np.random.default_rng([7, i]), shape, ["Au", "Ag"], max_particles=5) for i in range(args.per_family)]
    t = time_specs(specs)
    rows.append({"case": "field of 1-5 particles", "mean ms": 1e3 * t.mean(), "max ms": 1e3 * t.max()})
    print(f"## rendering, {args.per_family} random particles per row, one process\n")
    print(table(rows, ["case", "mean ms", "max ms"]))

    rows = []
    for workers in sorted({1, args.workers}):
        n = args.particles if workers == args.workers else max(20, args.particles // 10)
        tmp = tempfile.mkdtemp(prefix="phantoms_")
        try:
            t = time.perf_counter()
            write_dataset(Path(tmp) / "set.zarr", n, shape, seed=1, workers=workers)
            dt = time.perf_counter() - t
            t = time.perf_counter()
            write_dataset(Path(tmp) / "set.zarr", n, shape, seed=1, workers=workers)  # resume: nothing to do
            resume = time.perf_counter() - t
            size = dir_size(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append({"workers": workers, "particles": n, "seconds": dt, "ms/particle": 1e3 * dt / n,
                     "1000 particles (s)": dt * 1000 / n, "measured or extrapolated": "measured" if n >= 1000 else f"extrapolated from {n}",
                     "MB on disk per particle": size / n / 1e6, "rerun (s)": resume})
    print(f"\n## write_dataset at {args.n}^3, two elements, float16\n")
    print(table(rows, ["workers", "particles", "seconds", "ms/particle", "1000 particles (s)",
                       "measured or extrapolated", "MB on disk per particle", "rerun (s)"]))


if __name__ == "__main__":
    main()
