"""Elemental maps from low-count EDX spectrum images: window, NNLS fit, PCA + fit, regularised fit (issue 10).

Held-out simulated spectrum images: for each element set, a random particle
(``chemtomo.simulate.random_particle`` with ``np.random.default_rng([seed, i])``,
seed 2000 by default, two elements, every shape family and composition)
projected straight down (sum over z) to areal densities, plus a thin support
film of 5 % of the mean areal density of each element everywhere, and an EDX
spectrum image from ``chemtomo.simulate.spectrum.expected_spectra`` (1024
channels of 10 eV, 200 kV, 130 eV at Mn Ka) scaled so that each line's mean
expected count on its footprint (pixels above 1 % of its maximum) is rho
counts/px on average over the lines, then Poisson counts. Element sets:
Fe/Pt (Fe Ka, Pt La, Pt Ma, well separated), Au/Pt (Au Ma / Pt Ma, 70 eV
apart) and S/Mo (S Ka / Mo La, 15 eV apart: the hardest overlap).

Rows (all see the same counts, none uses the truth):

* ``window``: :func:`chemtomo.spectral.window_maps` (exSpy's windows);
* ``fit``: :func:`chemtomo.spectral.fit_maps` (per-pixel NNLS);
* ``pca + fit``: :func:`chemtomo.spectral.denoise_pca` (rank by the scree rule) then ``fit``;
* ``regularised``: :func:`chemtomo.spectral.regularised_maps` (TV, weight chosen by count splitting).

Score: NRMSE ``||map - truth|| / ||truth||`` of each line map against the
expected counts in the named line family (areal density x dose x X-ray
cross-section x solid angle), mean over particles and lines.
Run: ``python benchmarks/bench_spectral.py [--particles 2] [--size 64] [--doses 0.3,1,3,10,100]``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from _util import machine, table
from chemtomo.simulate import random_particle
from chemtomo.simulate.edx import xray_cross_section
from chemtomo.simulate.haadf import number_density
from chemtomo.simulate.spectrum import energy_axis, expected_spectra
from chemtomo.spectral import denoise_pca, fit_maps, regularised_maps, window_maps
from chemtomo.testing import nrmse

SETS = {"Fe/Pt": (("Fe", "Pt"), ["Fe_Ka", "Pt_La", "Pt_Ma"]),
        "Au/Pt": (("Au", "Pt"), ["Au_Ma", "Pt_Ma"]),
        "S/Mo": (("S", "Mo"), ["S_Ka", "Mo_La"])}
DOSES = (0.3, 1.0, 3.0, 10.0, 100.0)
PIX, FILM = 1.0, 0.05
METHODS = ("window", "fit", "pca + fit", "regularised")


def areal_densities(rng, n, elements):
    vols, spec = random_particle(rng, (n, n, n), elements)
    areal = {el: vols[el].sum(axis=1) * PIX * number_density(el) / 100.0 for el in elements}
    mean = np.mean([a.mean() for a in areal.values()])
    return {el: a + FILM * mean for el, a in areal.items()}, spec["particles"][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--particles", type=int, default=2)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2000, help="held-out particles: default_rng([seed, i])")
    ap.add_argument("--doses", default=",".join(f"{d:g}" for d in DOSES), help="mean counts/px per line on its footprint")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    doses = [float(d) for d in args.doses.split(",")]
    sets = [s.strip() for s in args.sets.split(",")]
    e = energy_axis(1024, 0.01)
    print(f"# Elemental maps at low dose: {args.particles} held-out particles per set, {args.size}x{args.size} px, "
          f"1024 channels\nmachine: {machine()}\n")
    acc = defaultdict(lambda: defaultdict(list))
    t_all, specs = time.perf_counter(), []
    for name in sets:
        elements, lines = SETS[name]
        for i in range(args.particles):
            areal, p0 = areal_densities(np.random.default_rng([args.seed, i]), args.size, elements)
            specs.append(f"{name}: {p0['composition']} {p0['body']['family']}")
            lam1 = expected_spectra(areal, e, dose=1.0, pixel_size=PIX)
            scale1 = (10 * PIX) ** 2 * 0.7 / (4 * np.pi)
            truth1 = {l: areal[l.split("_")[0]] * scale1 * xray_cross_section(l) for l in lines}
            level = np.mean([t[t > 0.01 * t.max()].mean() for t in truth1.values()])
            for rho in doses:
                f = rho / level
                si = np.random.default_rng([args.seed, i, round(1000 * rho)]).poisson(lam1 * f)
                truth = {l: t * f for l, t in truth1.items()}
                for m in METHODS:
                    t = time.perf_counter()
                    info = {}
                    if m == "window":
                        maps = window_maps(si, e, lines)
                    elif m == "fit":
                        maps = fit_maps(si, e, lines)
                    elif m == "pca + fit":
                        maps = fit_maps(denoise_pca(si), e, lines)
                    else:
                        maps, info = regularised_maps(si, e, lines, return_info=True)
                    a = acc[(name, rho, m)]
                    a["seconds"].append(time.perf_counter() - t)
                    a["nrmse"].append(np.mean([nrmse(maps[l], truth[l]) for l in lines]))
                    for l in lines:
                        a[l].append(nrmse(maps[l], truth[l]))
                    if info:
                        a["weight"].append(info["weight"])
            print(f"  {specs[-1]} done, {time.perf_counter() - t_all:.0f} s", flush=True)
    rows = []
    for name in sets:
        for rho in doses:
            for m in METHODS:
                a = acc[(name, rho, m)]
                rows.append({"set": name, "counts/px/line": f"{rho:g}", "method": m,
                             "NRMSE (mean)": float(np.mean(a["nrmse"])),
                             "per line": ", ".join(f"{l} {np.mean(a[l]):.3f}" for l in SETS[name][1]),
                             "settings": f"TV weight {np.mean(a['weight']):.2f} (count splitting)" if a["weight"] else "",
                             "s/image": float(np.mean(a["seconds"]))})
    print()
    print(table(rows, ["set", "counts/px/line", "method", "NRMSE (mean)", "per line", "settings", "s/image"]))
    print(f"\nParticles (seed {args.seed}): {'; '.join(specs)}. NRMSE of the line maps against the expected counts "
          f"in each line family (lower is better), means over {args.particles} particles. Support film {FILM:.0%} "
          f"of the mean areal density. Total time {time.perf_counter() - t_all:.0f} s.")


if __name__ == "__main__":
    main()
