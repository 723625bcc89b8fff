"""Elemental maps from low-count EDX and EELS spectrum images: classical extraction against ``learned`` (issue 10).

Held-out simulated spectrum images from the training simulator
(:func:`chemtomo.training.spectral.simulate_edx` / ``simulate_eels``) with
``np.random.default_rng([seed, i])`` (seed 2000; training used seed 0 and
its validation ``[0, 2, i]``), i.e. geometries not seen in training, and
element sets whose elements never appeared in training
(:data:`chemtomo.training.spectral.HELD_OUT`):

* EDX (10 eV channels, 130 eV at Mn Ka): Fe/Pt (Fe Ka, Pt La, Pt Ma, well
  separated), Au/Pt (Au Ma / Pt Ma 70 eV apart), S/Mo (S Ka / Mo La 15 eV
  apart), Ti/Ba (Ti Ka / Ba La 47 eV apart);
* EELS (0.5 eV channels, power-law background with random K and r, true
  edge delays 0.6-1.4 x the model's): O K + Fe L2,3 (Fe on the O tail),
  Ti L2,3 + O K (O 76 eV above Ti), Fe L2,3 + Ba M4,5 (73 eV apart).

Particles: every shape family, compositions with both elements (alloy,
gradient, core-shell, multi-shell). Dose: mean expected counts per pixel per line (EDX) or per edge in
``[onset, onset + 50 eV)`` (EELS) on its footprint. Rows (same counts for
all, none uses the truth):

* ``window``: EDX :func:`chemtomo.spectral.window_maps` (exSpy's windows);
  EELS :func:`chemtomo.spectral.eels_maps` (power-law pre-edge fit, 50 eV window);
* ``fit``: EDX :func:`chemtomo.spectral.fit_maps` (per-pixel NNLS); EELS the
  unbiased whole-spectrum least squares of :func:`chemtomo.spectral.estimates.line_estimates`
  clipped at 0, with the edge delays fitted to the summed spectrum and the edges that
  :func:`chemtomo.spectral.eels_model.edge_detection` does not detect (significance below 3) left
  empty, as ``learned`` does;
* ``pca + fit``: :func:`chemtomo.spectral.denoise_pca` (scree rule) on the
  fit range's channels, then ``fit``;
* ``regularised``: :func:`chemtomo.spectral.regularised_maps` (TV, weight by count splitting; EELS
  with the fitted edge delays and the same detection as ``fit``);
* ``learned``: :func:`chemtomo.spectral.learned.learned_maps` (shipped weights); ``±1 sd``
  is the fraction of pixels whose error lies within its predicted standard deviation (0.68 if calibrated).

Score: NRMSE ``||map - truth|| / ||truth||`` per line, mean over particles; ``learned wins`` counts
the particles on which ``learned`` beats the best classical row of its set and dose (a paired
comparison, which one particle cannot swing as it can the mean).
Run: ``python benchmarks/bench_spectral.py [--particles 12] [--size 64] [--cache scores.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from collections import defaultdict

import numpy as np
import torch

from _util import machine, table
from chemtomo.spectral import denoise_pca, eels_maps, fit_maps, regularised_maps, window_maps
from chemtomo.spectral.eels_model import edge_detection, eels_design_matrix
from chemtomo.spectral.estimates import DETECTION_Z, line_estimates
from chemtomo.spectral.learned import learned_maps
from chemtomo.spectral.model import design_matrix
from chemtomo.testing import nrmse
from chemtomo.training.spectral import simulate_edx, simulate_eels

EDX_SETS = {"Fe/Pt": ("Fe", "Pt"), "Au/Pt": ("Au_Ma", "Pt_Ma"), "S/Mo": ("S_Ka", "Mo_La"), "Ti/Ba": ("Ti_Ka", "Ba_La")}
EELS_SETS = {"O K + Fe L23": ("O_K", "Fe_L23"), "Ti L23 + O K": ("Ti_L23", "O_K"), "Fe L23 + Ba M45": ("Fe_L23", "Ba_M45")}
EDX_DOSES, EELS_DOSES = (0.1, 0.3, 1.0, 3.0, 10.0, 100.0), (3.0, 10.0, 30.0, 100.0, 1000.0)
MIXED = ("alloy", "gradient", "core-shell", "multi-shell")  # both elements present
EDX_METHODS = ("window", "fit", "pca + fit", "regularised", "learned")
EELS_METHODS = ("window", "fit", "pca + fit", "regularised", "learned")


def _fit_range_channels(sim):
    if sim["kind"] == "edx":
        return design_matrix(sim["energy"], sim["lines"], fwhm_mnka=sim["fwhm_mnka"])[1]
    return eels_design_matrix(sim["energy"], sim["lines"])[1]


def run(method, sim):
    si, e, lines, kind = sim["si"], sim["energy"], sim["lines"], sim["kind"]
    if method == "learned":
        return learned_maps(si, e, lines, fwhm_mnka=sim.get("fwhm_mnka", 130.0))
    pca = method == "pca + fit"
    if pca:
        used = _fit_range_channels(sim)
        si, e = denoise_pca(si[..., used]), e[used]
        method = "fit"
    if kind == "eels":
        if method == "window":
            return eels_maps(si, e, lines, check=False), None  # the window method on edges it now refuses
        det = edge_detection(sim["si"], sim["energy"], lines)  # as learned_maps: fitted delays, the same gate
        if method == "regularised":
            maps, _ = regularised_maps(si, e, lines)
        else:
            est = line_estimates(si, e, lines, counts=not pca, delays=det["delays"])
            maps = {l: np.clip(est["estimate"][i], 0, None) for i, l in enumerate(lines)}
        return {l: np.where(det["significance"][i] < DETECTION_Z, 0.0, maps[l]) for i, l in enumerate(lines)}, None
    if method == "regularised":
        return regularised_maps(si, e, lines, fwhm_mnka=sim["fwhm_mnka"])[0], None
    f = {"window": window_maps, "fit": fit_maps}[method]
    return f(si, e, lines, fwhm_mnka=sim["fwhm_mnka"]), None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--particles", type=int, default=12)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=2000, help="held-out particles: default_rng([seed, i])")
    ap.add_argument("--sets", default=",".join([*EDX_SETS, *EELS_SETS]))
    ap.add_argument("--methods", default=None, help="comma-separated subset of the rows")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2-core machine is shared)")
    ap.add_argument("--cache", default=None,
                    help="JSON file of per-image scores: rows found there are not recomputed (e.g. the classical rows "
                         "when only the network changed); new rows are added to it")
    args = ap.parse_args()
    cache = json.loads(Path(args.cache).read_text()) if args.cache and Path(args.cache).is_file() else {}
    torch.set_num_threads(args.threads)
    sets = [s.strip() for s in args.sets.split(",")]
    print(f"# Elemental maps at low dose: {args.particles} held-out particles per set, {args.size}x{args.size} px\n"
          f"machine: {machine()}\n")
    acc = defaultdict(lambda: defaultdict(list))
    t_all = time.perf_counter()
    for name in sets:
        eels = name in EELS_SETS
        doses, methods = (EELS_DOSES, EELS_METHODS) if eels else (EDX_DOSES, EDX_METHODS)
        if args.methods:
            methods = [m for m in methods if m.replace(" ", "") in args.methods.replace(" ", "").split(",")]
        for i in range(args.particles):
            for rho in doses:
                rng = np.random.default_rng([args.seed, i])
                sim = (simulate_eels(rng, args.size, edges=EELS_SETS[name], counts=rho, dispersion=0.5,
                                     compositions=MIXED) if eels else
                       simulate_edx(rng, args.size, elements=EDX_SETS[name], counts=rho, scale=0.01, fwhm_mnka=130.0,
                                    compositions=MIXED))
                for m in methods:
                    key = f"{name}|{rho:g}|{m}|{i}|{args.seed}|{args.size}"
                    if key not in cache:
                        t = time.perf_counter()
                        maps, std = run(m, sim)
                        r = {"seconds": time.perf_counter() - t,
                             "lines": {l: nrmse(maps[l], sim["truth"][k]) for k, l in enumerate(sim["lines"])}}
                        if std is not None:
                            r["coverage"] = float(np.mean([np.mean(np.abs(maps[l] - sim["truth"][k]) <= std[l])
                                                           for k, l in enumerate(sim["lines"])]))
                        cache[key] = r
                    r = cache[key]
                    a = acc[(name, rho, m)]
                    a["seconds"].append(r["seconds"])
                    a["nrmse"].append(np.mean(list(r["lines"].values())))
                    for l, sc in r["lines"].items():
                        a[l].append(sc)
                    if "coverage" in r:
                        a["coverage"].append(r["coverage"])
            print(f"  {name} particle {i} done, {time.perf_counter() - t_all:.0f} s", flush=True)
            if args.cache:
                Path(args.cache).write_text(json.dumps(cache))
    rows, overlap = [], []
    for name in sets:
        eels = name in EELS_SETS
        doses, methods = (EELS_DOSES, EELS_METHODS) if eels else (EDX_DOSES, EDX_METHODS)
        if args.methods:
            methods = [m for m in methods if m.replace(" ", "") in args.methods.replace(" ", "").split(",")]
        for rho in doses:
            best = min(methods, key=lambda m: np.mean(acc[(name, rho, m)]["nrmse"]))
            row = {"set": name, "counts": f"{rho:g}"}
            classical = [m for m in methods if m != "learned"]
            if "learned" in methods and classical:
                rival = min(classical, key=lambda m: np.mean(acc[(name, rho, m)]["nrmse"]))
                won = np.less(acc[(name, rho, "learned")]["nrmse"], acc[(name, rho, rival)]["nrmse"])
                row["learned wins"] = f"{int(won.sum())}/{won.size}"
            for m in methods:
                a = acc[(name, rho, m)]
                v = f"{np.mean(a['nrmse']):.3g}"
                row[m] = f"**{v}**" if m == best else v
                if m == "learned":
                    row["±1 sd"] = f"{np.mean(a['coverage']):.2f}"
                lines = [k for k in a if k not in ("seconds", "nrmse", "coverage")]
                overlap.append({"set": name, "counts": f"{rho:g}", "method": m,
                                **{"per line": ", ".join(f"{l} {np.mean(a[l]):.3f}" for l in lines)},
                                "s/image": float(np.mean(a["seconds"]))})
            rows.append(row)
    print()
    print(table(rows, ["set", "counts", *EDX_METHODS, "±1 sd", "learned wins"]))
    print()
    print(table(overlap, ["set", "counts", "method", "per line", "s/image"]))
    print(f"\nNRMSE against the expected counts (lower is better), means over {args.particles} particles "
          f"(seeds [{args.seed}, i]). Total time {time.perf_counter() - t_all:.0f} s.")


if __name__ == "__main__":
    main()
