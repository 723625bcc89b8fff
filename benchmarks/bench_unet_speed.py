"""Inference time of the U-Net denoiser (``chemtomo.denoise.unet``) on a 71 x 256 x 256 count stack.

The stack is Poisson counts (1 count/px on average over a disc-shaped
footprint, 2 % background); the network's cost does not depend on the content.
The first call (which also loads the shipped weights) is timed apart; the
steady-state time is the best of ``--repeats`` further calls.
Run: ``python benchmarks/bench_unet_speed.py [--threads 2] [--batch 8]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _util import machine, table
from chemtomo.denoise.unet import WEIGHTS, unet
from chemtomo.nn.unet import load_model, n_parameters


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tilts", type=int, default=71)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.size
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disc = np.clip(1 - (yy ** 2 + xx ** 2) / (0.35 * n) ** 2, 0, None) ** 0.5
    lam = disc / disc[disc > 0].mean() + 0.02
    counts = np.random.default_rng(0).poisson(lam, (args.tilts, n, n)).astype(np.float32)
    t = time.perf_counter()
    out = unet(counts, batch=args.batch)
    first = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        unet(counts, batch=args.batch)
        times.append(time.perf_counter() - t)
    assert out.shape == counts.shape
    device = "cuda" if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"
    print(f"# U-Net inference, {args.tilts} x {n} x {n}\nmachine: {machine()}\n")
    print(table([{"stack": f"{args.tilts} x {n} x {n}", "device": device, "batch": args.batch,
                  "parameters": n_parameters(load_model(WEIGHTS)), "first call incl. loading (s)": first,
                  "best of repeats (s)": min(times), "ms/image": 1000 * min(times) / args.tilts}],
                ["stack", "device", "batch", "parameters", "first call incl. loading (s)", "best of repeats (s)",
                 "ms/image"]))
    print(f"\nweights: {WEIGHTS.name}")


if __name__ == "__main__":
    main()
