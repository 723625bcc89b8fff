"""Projector, FBP and SIRT speed against ASTRA's CPU projectors on the same machine.

Case of the core issue: 256 slices of 256 x 256, 71 tilts from -70 to +70
degrees, 256 detector pixels. ASTRA's CPU code is 2D only, so it runs looped
over slices (its 'linear' projector is Joseph's method, as ours). ASTRA's
SIRT is timed on `--astra-slices` slices and scaled to 256 (slices are
independent and equal in work). Run: ``python benchmarks/bench_projector.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _util import best_of, machine, machine_limits, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import fbp, sirt


def run_chemtomo(n, angles, iterations):
    geom = TiltGeometry(angles, (n, n, n), n)
    op = Projector(geom)
    t0 = time.perf_counter()
    nnz = op.matrix().nnz
    x = torch.rand(n, n, n)
    op._apply(x)  # builds the torch matrices
    build = time.perf_counter() - t0
    t_fp = best_of(lambda: op._apply(x))
    p = op._apply(x)
    t_bp = best_of(lambda: op._apply_adjoint(p))
    t_fbp = best_of(lambda: fbp(op, p), 2)
    t = time.perf_counter()
    sirt(op, p, iterations)
    t_sirt = time.perf_counter() - t
    return {"build": build, "fp": t_fp, "bp": t_bp, "fbp": t_fbp, "sirt": t_sirt, "nnz": nnz}


def run_astra(n, angles, iterations, n_slices_sirt):
    import astra

    vg = astra.create_vol_geom(n, n)
    pg = astra.create_proj_geom("parallel", 1.0, n, np.deg2rad(angles))
    pid = astra.create_projector("linear", pg, vg)
    rng = np.random.default_rng(0)
    slices = rng.random((n, n, n), dtype=np.float32)

    def fp_all():
        for s in slices:
            i, _ = astra.create_sino(s, pid)
            astra.data2d.delete(i)

    sid, sino = astra.create_sino(slices[0], pid)

    def bp_all():
        for _ in range(n):
            i, _ = astra.create_backprojection(sino, pid)
            astra.data2d.delete(i)

    def run_alg(name, iters, count):
        for _ in range(count):
            rid = astra.data2d.create("-vol", vg)
            cfg = astra.astra_dict(name)
            cfg.update(ReconstructionDataId=rid, ProjectionDataId=sid, ProjectorId=pid)
            if name == "SIRT":
                cfg["option"] = {"MinConstraint": 0.0}
            alg = astra.algorithm.create(cfg)
            astra.algorithm.run(alg, iters)
            astra.algorithm.delete(alg)
            astra.data2d.delete(rid)

    t_fp = best_of(fp_all, 1)
    t_bp = best_of(bp_all, 1)
    t_fbp = best_of(lambda: run_alg("FBP", 1, n), 1)
    t_sirt = best_of(lambda: run_alg("SIRT", iterations, n_slices_sirt), 1) * n / n_slices_sirt
    return {"fp": t_fp, "bp": t_bp, "fbp": t_fbp, "sirt": t_sirt}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--tilts", type=int, default=71)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--astra-slices", type=int, default=16)
    args = ap.parse_args()
    n = args.size
    angles = np.linspace(-70, 70, args.tilts)
    print(f"# Projector benchmark: {n} slices of {n}x{n}, {args.tilts} tilts -70..70, {n} detector pixels")
    print(f"machine: {machine()}\n")
    ours = run_chemtomo(n, angles, args.iterations)
    try:
        theirs = run_astra(n, angles, args.iterations, args.astra_slices)
    except ImportError:
        theirs = None
        print("astra-toolbox not installed (pip install chemtomo[bench]); ASTRA columns left empty\n")
    rows = []
    for key, label in [("fp", "forward projection"), ("bp", "back projection"), ("fbp", "FBP (ramp)"),
                       ("sirt", f"SIRT, {args.iterations} iterations")]:
        row = {"operation": label, "chemtomo (s)": ours[key]}
        if theirs:
            row["ASTRA CPU, 1 process (s)"] = theirs[key]
            row["speed-up"] = theirs[key] / ours[key]
            row["speed-up vs ASTRA on 2 processes"] = theirs[key] / 2 / ours[key]
        rows.append(row)
    print(table(rows, ["operation", "chemtomo (s)", "ASTRA CPU, 1 process (s)", "speed-up",
                       "speed-up vs ASTRA on 2 processes"]))
    print(f"\nmatrix build (once per geometry): {ours['build']:.2f} s, {ours['nnz'] / 1e6:.1f} M non-zeros")
    if theirs:
        print(f"ASTRA SIRT timed on {args.astra_slices} slices and scaled to {n}; 'linear' (Joseph) projector, "
              "MinConstraint 0; the 2-process column assumes perfect scaling of ASTRA over both cores")
    lim = machine_limits()
    flops = 2 * ours["nnz"] * n  # one multiply-add per non-zero per slice
    rate = flops / ours["fp"] / 1e9
    # bytes the product must move at least: the matrix once per slab of slices, volume and result once
    n_slabs = max(1, (n * 4 * max(n * n, args.tilts * n)) // (8 * 2**20))
    bytes_min = ours["nnz"] * 8 * n_slabs + 4 * n * n * n + 4 * args.tilts * n * n
    print(f"\nforward projection: {rate:.1f} GFLOP/s = {100 * rate / lim['matmul_gflops']:.0f} % of this machine's "
          f"float32 matmul rate ({lim['matmul_gflops']:.0f} GFLOP/s); it moves at least {bytes_min / 1e9:.2f} GB, "
          f"{bytes_min / ours['fp'] / 1e9:.1f} GB/s = {100 * bytes_min / ours['fp'] / 1e9 / lim['copy_gbps']:.0f} % "
          f"of the measured copy bandwidth ({lim['copy_gbps']:.1f} GB/s)")


if __name__ == "__main__":
    main()
