"""Denoising EDX count maps before SIRT: classical denoisers against raw counts (issue 6).

Held-out random two-element particles (``chemtomo.simulate.random_particle`` with
``np.random.default_rng([seed, i])``, seed 1000 by default, every shape family,
compositions alloy, gradient, core-shell and multi-shell), ``--size``^3 voxels,
15 tilts from -70 to 70 degrees. For each element the noiseless projection is
scaled so that the mean expected count on the particle footprint (pixels above
1 % of the maximum) is rho counts/px, plus a uniform background of 2 % of rho,
and Poisson counts are drawn. Each denoiser of ``chemtomo.denoise`` runs with
its defaults (parameters it chooses are chosen from the counts alone, by count
splitting). Scores:

* projections: PSNR (whole stack, data range = the largest expected count) and
  SSIM (mean over the tilts) of the denoised counts against the noiseless
  expectation (``skimage.metrics``);
* reconstructions: NRMSE of each element's concentration against the ground
  truth (as in bench_accuracy.py: counts over the known count scale), SIRT of
  the background-subtracted maps with its iteration count tuned on the ground
  truth (1..``--iterations``, an oracle) for every row. The raw counts also get
  the strong baseline of bench_accuracy.py: Gaussian-filtered SIRT with filter
  width (0.5-3 voxels) and iteration count both tuned on the ground truth.

Rows are denoisers by name from ``chemtomo.denoise.DENOISERS`` (``--methods``),
so learned ones in the registry are rows by name: ``unet`` (the supervised U-Net
with its shipped weights, trained on particles ``default_rng([2026, i])`` and
validated on ``default_rng([3030, i])``, never on this benchmark's seed 1000)
and ``n2n`` (the same network fine-tuned on each noisy stack itself by
binomial splitting, ``--n2n-minutes`` per stack) run with the others by default.
Row ``unet+haadf`` is ``unet`` with the particle's HAADF projections as a guide
channel (the shipped guided weights ``unet_edx_haadf.pt``; HAADF = ``sum_e Z^1.7 c_e``
projected, :func:`chemtomo.training.denoise.haadf_guide`, with 2 % Gaussian noise).
Run: ``python benchmarks/bench_denoise.py [--particles 3] [--size 48] [--methods raw,gaussian,...]``
(about 9 minutes on the project machine, most of it BM3D: its compiled core costs about 0.5 s per
image whatever the size).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from _util import machine, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.denoise import DENOISERS, denoise, resolve_options
from chemtomo.recon import sirt
from chemtomo.simulate import random_particle
from chemtomo.testing import nrmse
from chemtomo.training.denoise import haadf_guide

ELEMENTS = ("Au", "Ag")
DOSES = (0.1, 0.3, 1.0, 3.0, 10.0)
BACKGROUND = 0.02
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
COMPOSITIONS = ("alloy", "gradient", "core-shell", "multi-shell")


def sirt_oracle(op, b, scale, truth, iterations, filtered=False, patience=30):
    """Best NRMSE over the SIRT iterations (and, if `filtered`, over Gaussian widths every 5 iterations).

    Unfiltered runs stop `patience` iterations after the best one (SIRT semi-converges: the error
    only rises after its minimum); filtered runs go the whole way.
    """
    best = [np.inf, None, None]

    def cb(i, x):
        c = np.asarray(x, dtype=np.float32) / scale
        e = nrmse(c, truth)
        if e < best[0]:
            best[:] = [e, i + 1, None]
        if filtered and (i + 1) % 5 == 0:
            for s in SIGMAS:
                e = nrmse(gaussian_filter(c, s), truth)
                if e < best[0]:
                    best[:] = [e, i + 1, s]
        return not filtered and i + 1 - best[1] >= patience

    sirt(op, b, iterations, callback=cb)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--particles", type=int, default=3)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=1000, help="held-out particles: default_rng([seed, i])")
    ap.add_argument("--doses", default=",".join(f"{d:g}" for d in DOSES), help="mean counts/px on the footprint")
    ap.add_argument("--methods", default="raw," + ",".join(DENOISERS) + ",unet+haadf")
    ap.add_argument("--iterations", type=int, default=150, help="largest SIRT iteration count searched")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    ap.add_argument("--n2n-minutes", type=float, default=0.5, help="training budget of n2n per stack")
    ap.add_argument("--filtered", action="store_true",
                    help="also reconstruct every denoised stack with the filtered SIRT oracle (rows 'NAME + filtered SIRT')")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, doses = args.size, [float(d) for d in args.doses.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ("raw", "unet+haadf") and m not in DENOISERS]
    if unknown:
        ap.error(f"unknown methods {unknown}; use raw or {', '.join(DENOISERS)}")
    angles = np.linspace(-70, 70, 15)
    op = Projector(TiltGeometry(angles, (n, n, n)))
    print(f"# Denoising EDX maps before SIRT: {args.particles} held-out particles, {n}^3, 15 tilts\n"
          f"machine: {machine()}\n")
    acc = defaultdict(lambda: defaultdict(list))  # (dose, row) -> metric -> values
    specs, t_all = [], time.perf_counter()
    for i in range(args.particles):
        vols, spec = random_particle(np.random.default_rng([args.seed, i]), (n, n, n), ELEMENTS,
                                     compositions=COMPOSITIONS)
        p0 = spec["particles"][0]
        specs.append(f"{p0['composition']} {p0['body']['family']}")
        haadf = haadf_guide(vols, op)
        haadf = haadf + 0.02 * haadf.mean() * np.random.default_rng([args.seed, i, 7]).normal(size=haadf.shape)
        for el in ELEMENTS:
            proj = np.asarray(op(vols[el]), dtype=np.float64)
            if proj.max() <= 0:
                continue
            foot = proj > 0.01 * proj.max()
            for rho in doses:
                scale = rho / proj[foot].mean()  # counts per unit of projected concentration
                lam = proj * scale + BACKGROUND * rho
                counts = np.random.default_rng([args.seed, i, round(1000 * rho), ELEMENTS.index(el)]).poisson(lam)
                rng_ = float(lam.max())
                for m in methods:
                    t = time.perf_counter()
                    if m == "raw":
                        d, opts = counts.astype(np.float64), {}
                    elif m == "unet+haadf":
                        d, opts = np.asarray(denoise(counts, "unet", guide=haadf), dtype=np.float64), {}
                    else:
                        opts = resolve_options(counts, m, **({"minutes": args.n2n_minutes} if m == "n2n" else {}))
                        d = np.asarray(denoise(counts, m, **opts), dtype=np.float64)
                    seconds = time.perf_counter() - t
                    rows = [m, f"{m} + filtered SIRT"] if m == "raw" or args.filtered else [m]
                    for row in rows:
                        a = acc[(rho, row)]
                        a["psnr"].append(peak_signal_noise_ratio(lam, d, data_range=rng_))
                        a["ssim"].append(structural_similarity(lam, d, data_range=rng_, channel_axis=0))
                        e, it, s = sirt_oracle(op, (d - BACKGROUND * rho).astype(np.float32), scale, vols[el],
                                               args.iterations, filtered=row.endswith("filtered SIRT"))
                        a[f"nrmse {el}"].append(e)
                        a["iterations"].append(it)
                        if s is not None:
                            a["filter sigma"].append(s)
                        a["seconds"].append(seconds)
                        for key in ("sigma", "weight"):
                            if m == "gaussian" and key == "sigma" or m == "tv" and key == "weight":
                                a[key].append(opts[key])
            print(f"  particle {i} ({specs[-1]}) {el} done, {time.perf_counter() - t_all:.0f} s", flush=True)
    order = ["raw", "raw + filtered SIRT"] + [r for m in methods if m != "raw"
                                              for r in ([m, f"{m} + filtered SIRT"] if args.filtered else [m])]
    out = []
    for rho in doses:
        for row in order:
            a = acc.get((rho, row))
            if not a:
                continue
            settings = []
            if a.get("sigma"):
                settings.append(f"sigma {np.mean(a['sigma']):.2f} px")
            if a.get("weight"):
                settings.append(f"weight {np.mean(a['weight']):.2f}")
            if a.get("filter sigma"):
                settings.append(f"SIRT filter {np.mean(a['filter sigma']):.2f} vox (oracle)")
            settings.append(f"SIRT {np.mean(a['iterations']):.0f} it. (oracle)")
            out.append({"counts/px": f"{rho:g}", "method": row, "PSNR (dB)": float(np.mean(a["psnr"])),
                        "SSIM": float(np.mean(a["ssim"])),
                        **{f"NRMSE {el}": float(np.mean(a[f"nrmse {el}"])) for el in ELEMENTS if a[f"nrmse {el}"]},
                        "settings (means)": ", ".join(settings),
                        "denoise s/stack": float(np.mean(a["seconds"])) if row != "raw + filtered SIRT" else ""})
    cols = ["counts/px", "method", "PSNR (dB)", "SSIM", *(f"NRMSE {el}" for el in ELEMENTS), "settings (means)",
            "denoise s/stack"]
    print()
    print(table(out, cols))
    print(f"\nParticles (seed {args.seed}): {'; '.join(specs)}. PSNR/SSIM of the projections against the noiseless "
          "expectation (higher is better); NRMSE of the SIRT reconstruction's concentration against the ground truth "
          f"(lower is better), SIRT iterations tuned on the ground truth (1..{args.iterations}); means over "
          f"particles (and elements for PSNR/SSIM). Background {BACKGROUND:.0%} of rho, subtracted before SIRT. "
          f"Total time {time.perf_counter() - t_all:.0f} s.")


if __name__ == "__main__":
    main()
