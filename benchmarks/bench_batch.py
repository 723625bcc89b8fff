"""Batch throughput on Dask (issue 8): particles per hour with 1 and 2 local workers.

``--n`` Au@Ag particles (random core-shell shapes, ``--size``^3 voxels), each a
recipe: simulate HAADF + EDX (15 tilts, 3e7 e/A^2), reconstruct with ``auto``
(the joint ``dtv``), quantify. Every run starts from an empty folder, so
nothing is skipped. One thread per worker.
Run: ``python benchmarks/bench_batch.py [--n 8] [--size 48]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _util import machine, table
from chemtomo.pipeline.batch import run_batch

RECIPE = """\
inputs:
  simulate:
    phantom: "core-shell:random"
    elements: [Au, Ag]
    size: {size}
    dose: 3.0e+7
    seed: {seed}
reconstruct:
  method: auto
quantify:
  core: Au
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, default=48)
    args = ap.parse_args()
    print(f"# Batch throughput: {args.n} particles of {args.size}^3, simulate + dtv + quantify\n"
          f"machine: {machine()}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "recipes"
        folder.mkdir()
        for i in range(args.n):
            (folder / f"p{i:03d}.yaml").write_text(RECIPE.format(size=args.size, seed=i))
        for workers in (1, 2):
            out = Path(tmp) / f"out{workers}"
            rec = run_batch(folder, out, workers=workers, log=lambda *_: None)
            failed = [r["name"] for r in rec["particles"] if r["status"] != "done"]
            if failed:
                raise SystemExit(f"particles not done: {failed}")
            per = sum(r["seconds"] for r in rec["particles"]) / args.n
            rows.append({"workers": workers, "wall s": f"{rec['seconds']:.1f}", "s per particle (in its worker)":
                         f"{per:.1f}", "particles per hour": f"{rec['particles_per_hour']:.0f}"})
            print(rows[-1], flush=True)
            shutil.rmtree(out)
    speedup = float(rows[1]["particles per hour"]) / float(rows[0]["particles per hour"])
    print()
    print(table(rows, list(rows[0])))
    print(f"\nscaling 1 -> 2 workers: {speedup:.2f}x (ideal 2 on this 2-core machine)")


if __name__ == "__main__":
    main()
