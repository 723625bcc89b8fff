"""Missing-view synthesis for sparse EDX tilt series: does it help the reconstruction?

Held-out random two-element particles (``chemtomo.simulate.random_particle`` with
``np.random.default_rng([seed, i])``, seed 1000 by default, every shape family,
compositions alloy, gradient, core-shell and multi-shell), ``--size``^3 voxels.
For each element the noiseless projection is scaled so that the mean expected
count on the particle footprint (pixels above 1 % of the maximum, at the
measured tilts) is rho counts/px per view, plus a uniform background of 2 % of
rho, and Poisson counts are drawn for 25 views at 5 degrees from -60 to 60.
The 13 views at 10 degrees are "measured"; the 12 views between them are
synthesized by :func:`chemtomo.views.synthesize_views` (cross-validated
MLEM + Gaussian filter, reprojection, U-Net refinement trained on the measured
views only), together with ``--wedge`` extra views at 5-degree steps beyond
+-60 degrees (part of the missing wedge; one synthesis call makes both, the
rows with wedge views are reported separately).

Scores:

* reconstructions: NRMSE of each element's concentration against the ground
  truth (counts over the known count scale, as bench_denoise.py), for
  Gaussian-filtered SIRT (background subtracted) and Gaussian-filtered MLEM
  (known background), iteration count and filter width (0-3 voxels) both tuned
  on the ground truth (an oracle, the strongest baseline of bench_denoise.py);
  rows: 13 measured views; 13 measured + 12 synthesized (network, plain
  reprojection, linear interpolation of the neighbouring measured views);
  25 truly measured views at the same dose per view (the 13 measured plus the
  12 real ones between them) and at the same total dose (rho x 13 / 25 per
  view), upper bounds; and, with no oracle, the synthesizer's own
  cross-validated MLEM from the 13 views;
* synthesized views: PSNR against the noiseless expected views (data range the
  largest expected count).

Run: ``python benchmarks/bench_views.py [--particles 2] [--size 48] [--dose 3] [--minutes 1]``
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from _util import machine, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import mlem, sirt
from chemtomo.simulate import random_particle
from chemtomo.testing import nrmse, oracle_filtered
from chemtomo.views import _gaussian3, fill_angles, synthesize_views

ELEMENTS = ("Au", "Ag")
BACKGROUND = 0.02
FILTERS = (0.5, 1.0, 1.5, 2.0, 3.0)
COMPOSITIONS = ("alloy", "gradient", "core-shell", "multi-shell")


def oracle(method, angles, data, scale, truth, iterations, background):
    """Best NRMSE over iterations and Gaussian filter widths (every iteration up to 10, then every 5)."""
    n = truth.shape[0]
    op = Projector(TiltGeometry(angles, (n, n, n)))
    data = np.asarray(data, dtype=np.float32)
    common = dict(scale=scale, sigmas=(0.0, *FILTERS), every=5, dense=10)
    if method == "sirt":
        err, it, s, _ = oracle_filtered(sirt, op, data - background, truth, iterations, **common)
    else:
        err, it, s, _ = oracle_filtered(mlem, op, data, truth, iterations, background=background, **common)
    return [err, it, s]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--particles", type=int, default=2)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--seed", type=int, default=1000, help="held-out particles: default_rng([seed, i])")
    ap.add_argument("--dose", type=float, default=3.0, help="rho: mean counts/px on the footprint per measured view")
    ap.add_argument("--minutes", type=float, default=1.0, help="U-Net training budget per synthesis")
    ap.add_argument("--wedge", type=float, default=75.0, help="also synthesize views out to +-this angle (degrees)")
    ap.add_argument("--sirt-iterations", type=int, default=150)
    ap.add_argument("--mlem-iterations", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, rho = args.size, args.dose
    bg = BACKGROUND * rho
    measured = np.arange(-60, 60.5, 10.0)
    dense = np.arange(-60, 60.5, 5.0)
    inner = fill_angles(measured, 5)
    new = fill_angles(measured, 5, limits=(-args.wedge, args.wedge))
    wedge = new[np.abs(new) > 60]
    op_dense = Projector(TiltGeometry(dense, (n, n, n)))
    op_new = Projector(TiltGeometry(new, (n, n, n)))
    is_meas = np.isin(dense, measured)
    print(f"# Missing-view synthesis: {args.particles} held-out particles, {n}^3, 13 measured views (-60..60 step 10) "
          f"at {rho:g} counts/px, {len(inner)} views synthesized between them + {len(wedge)} in the wedge\n"
          f"machine: {machine()}\n")
    acc = defaultdict(lambda: defaultdict(list))
    specs, notes, t_all = [], [], time.perf_counter()
    for i in range(args.particles):
        vols, spec = random_particle(np.random.default_rng([args.seed, i]), (n, n, n), ELEMENTS,
                                     compositions=COMPOSITIONS)
        p0 = spec["particles"][0]
        specs.append(f"{p0['composition']} {p0['body']['family']}")
        for e, el in enumerate(ELEMENTS):
            truth = vols[el]
            proj = np.asarray(op_dense(truth), dtype=np.float64)
            if proj.max() <= 0:
                continue
            meas_proj = proj[is_meas]
            scale = rho / meas_proj[meas_proj > 0.01 * meas_proj.max()].mean()
            lam = proj * scale + bg
            lam_new = np.asarray(op_new(truth), dtype=np.float64) * scale + bg
            rng = np.random.default_rng([args.seed, i, e])
            counts25 = rng.poisson(lam).astype(np.float64)
            low = 13 / 25
            counts25_low = rng.poisson(lam * low).astype(np.float64)
            counts13 = counts25[is_meas]

            t = time.perf_counter()
            merged, merged_angles, info = synthesize_views(counts13, measured, new, background=bg,
                                                           minutes=args.minutes, seed=i)
            t_syn = time.perf_counter() - t
            syn = np.asarray(info["synthesized"])
            plain, _, _ = synthesize_views(counts13, measured, new, background=bg, refine=False)
            in_new = np.isin(new, inner)
            net_new, plain_new = merged[syn], plain[syn]  # in the order of `new` (both sorted)
            in_merged = ~np.isin(merged_angles, wedge)
            lin = 0.5 * (counts13[:-1] + counts13[1:])
            rng_in, rng_w = float(lam_new[in_new].max()), float(lam_new[~in_new].max()) if wedge.size else 1.0
            h = info["holdout"]
            notes.append(f"p{i} {el}: MLEM {info['recon']['iterations']} it., filter {info['recon']['sigma']:g} vox "
                         f"(CV); held-out MSE plain {h['mse_reprojection']:.4g} / network {h['mse_network']:.4g} -> "
                         f"{h['used']}; {info['training']['steps']} steps, best {info['training']['best_step']}; "
                         f"{t_syn:.0f} s")

            def psnr_of(est, ref, r):
                e_, t_ = np.asarray(est, np.float64), np.asarray(ref, np.float64)
                return 10 * np.log10(r ** 2 / np.mean((e_ - t_) ** 2))

            rows = {
                "13 measured": (measured, counts13, scale, None),
                "13 + 12 synthesized (network)": (dense, merged[in_merged], scale,
                                                  psnr_of(net_new[in_new], lam_new[in_new], rng_in)),
                "13 + 12 plain reprojections": (dense, plain[in_merged], scale,
                                                psnr_of(plain_new[in_new], lam_new[in_new], rng_in)),
                "13 + 12 linear interpolation": (dense, np.insert(counts13, np.arange(1, 13), lin, axis=0), scale,
                                                 psnr_of(lin, lam_new[in_new], rng_in)),
                f"13 + 12 + {len(wedge)} wedge synthesized (network)": (merged_angles, merged, scale,
                                                                        psnr_of(net_new[~in_new], lam_new[~in_new],
                                                                                rng_w)),
                f"13 + 12 + {len(wedge)} wedge plain reprojections": (merged_angles, plain, scale,
                                                                      psnr_of(plain_new[~in_new], lam_new[~in_new],
                                                                              rng_w)),
                "25 measured, same dose per view": (dense, counts25, scale, None),
                "25 measured, same total dose": (dense, counts25_low, scale * low, None),
            }
            for name, (ang, data, sc, ps) in rows.items():
                a = acc[name]
                for method, its in (("sirt", args.sirt_iterations), ("mlem", args.mlem_iterations)):
                    b = bg * (low if "total dose" in name else 1.0)
                    err, it, s = oracle(method, ang, data, sc, truth, its, b)
                    a[f"{method} {el}"].append(err)
                    a[f"{method} settings"].append((it, s))
                if ps is not None:
                    a["psnr"].append(ps)
            # the synthesizer's own reconstruction, chosen without the truth
            rec = info["recon"]
            op13 = Projector(TiltGeometry(measured, (n, n, n)))
            v = mlem(op13, torch.as_tensor(counts13, dtype=torch.float32), rec["iterations"], background=bg)
            v = _gaussian3(v, rec["sigma"]).numpy() / scale
            acc["13 measured, MLEM + filter chosen by CV (no oracle)"][f"mlem {el}"].append(nrmse(v, truth))
            print(f"  particle {i} ({specs[-1]}) {el} done, {time.perf_counter() - t_all:.0f} s", flush=True)
    out = []
    for name, a in acc.items():
        row = {"views": name}
        for method in ("sirt", "mlem"):
            for el in ELEMENTS:
                if a.get(f"{method} {el}"):
                    row[f"{method.upper()} NRMSE {el}"] = float(np.mean(a[f"{method} {el}"]))
            if a.get(f"{method} settings"):
                its, ss = zip(*a[f"{method} settings"])
                row[f"{method.upper()} it./filter"] = f"{np.mean(its):.0f} / {np.mean(ss):.2f}"
        if a.get("psnr"):
            row["PSNR synth. views (dB)"] = float(np.mean(a["psnr"]))
        out.append(row)
    cols = ["views", *(f"SIRT NRMSE {el}" for el in ELEMENTS), "SIRT it./filter",
            *(f"MLEM NRMSE {el}" for el in ELEMENTS), "MLEM it./filter", "PSNR synth. views (dB)"]
    print()
    print(table(out, cols))
    print(f"\nParticles (seed {args.seed}): {'; '.join(specs)}. Dose {rho:g} counts/px per view on the footprint, "
          f"background {BACKGROUND:.0%} of it. NRMSE of the concentration against the ground truth (lower is better), "
          "filtered SIRT / MLEM with iterations and Gaussian width tuned on the truth (oracle; means shown); PSNR of "
          "the synthesized (or interpolated) views against the noiseless expected views, the 12 inner views or the "
          f"{len(wedge)} wedge views (higher is better); means over particles and elements. U-Net budget "
          f"{args.minutes:g} min per synthesis, {args.threads} torch threads. Total time "
          f"{time.perf_counter() - t_all:.0f} s.")
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
