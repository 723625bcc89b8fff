"""Alloying over a time series (issue 27): per-volume calibration against one series calibration.

An Au@Ag sphere (``--size``^3 voxels of 0.5 nm, radius 0.4 of the edge, core ratio 0.6) starts as a
sharp core-shell particle 5 s before the first frame and interdiffuses with D = 0.01 nm^2/s
(:func:`chemtomo.simulate.alloying.alloying_series`); frames at 0, 100, 200, 400 and 900 s. Each
frame: HAADF, 71 tilts -70..70 degrees, 1e4 e/A^2 in total, SIRT 100 iterations.

Before: every frame calibrated on its own histogram (``calibrate``), voxel alloying index,
``fit_diffusion`` on the unmixed volumes; and the same with the first frame's calibration held.
After: :func:`chemtomo.quantify.alloying.fit_alloying` (joint calibration, and the first frame's).
Run: ``python benchmarks/bench_alloying.py [--size 48]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _util import machine

D, TIMES, START = 0.01, [0.0, 100.0, 200.0, 400.0, 900.0], -5.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--skip-voxel-fit", action="store_true", help="skip the slow 3D fit_diffusion rows")
    a = ap.parse_args()
    from chemtomo.quantify import alloying_index, calibrate, fit_diffusion, particle_mask, unmix
    from chemtomo.quantify.alloying import fit_alloying
    from chemtomo.recon import reconstruct_series
    from chemtomo.simulate import simulate_series
    from chemtomo.simulate.alloying import alloying_series

    n = a.size
    truth = alloying_series(TIMES, D, shape=(n, n, n), voxel_size=0.5, start=START)
    vols = [reconstruct_series(simulate_series(ph, np.arange(-70, 71, 2), signals=("HAADF",), dose=1e4,
                                               voxel_size=0.5, rng=k + 1), "sirt", iterations=100)["HAADF"]
            for k, ph in enumerate(truth["phantoms"])]
    print(f"# Alloying series: Au@Ag sphere {n}^3, D = {D} nm^2/s, times {TIMES} s\nmachine: {machine()}\n")
    print("truth index:", " ".join(f"{x:.3f}" for x in truth["index"]))
    masks = [particle_mask(v) for v in vols]
    cals = [calibrate(v, m) for v, m in zip(vols, masks)]
    print("per-volume I_Au:", " ".join(f"{c[0]:.2f}" for c in cals), "| I_Ag:", " ".join(f"{c[1]:.2f}" for c in cals))
    rows = []

    def voxel_row(name, cal_of):
        conc = [unmix(v, *cal_of(k), masks[0]) for k, v in enumerate(vols)]
        idx = [alloying_index(unmix(v, *cal_of(k), m), m) for k, (v, m) in enumerate(zip(vols, masks))]
        t0 = time.perf_counter()
        d = fit_diffusion(conc, TIMES, voxel_size=0.5, mask=masks[0])[0] if not a.skip_voxel_fit else float("nan")
        rows.append((name, idx, d, time.perf_counter() - t0))

    voxel_row("per-volume histogram + voxel index + fit_diffusion (before)", lambda k: cals[k])
    voxel_row("first-volume histogram + voxel index + fit_diffusion", lambda k: cals[0])
    for name, cal in [("fit_alloying, joint calibration (default)", None), ("fit_alloying, first-volume calibration", cals[0])]:
        t0 = time.perf_counter()
        r = fit_alloying(vols, TIMES, voxel_size=0.5, calibration=cal)
        rows.append((name, r["index"], r["D"], time.perf_counter() - t0))
        print(f"{name}: I_Au {r['I_core']:.2f}, I_Ag {r['I_shell']:.2f}, start {r['start']:.1f} s (truth {START}), "
              f"blur sigma {r['sigma_nm']:.2f} nm, voxel index with this calibration "
              + " ".join(f"{x:.3f}" for x in r["index_voxels"]))
    print("\n| method | alloying index per frame (truth " + " ".join(f"{x:.2f}" for x in truth["index"])
          + ") | max index error | D / D_true | fit time (s) |\n|---|---|---|---|---|")
    for name, idx, d, sec in rows:
        err = max(abs(x - y) for x, y in zip(idx, truth["index"]))
        print(f"| {name} | {' '.join(f'{x:.3f}' for x in idx)} | {err:.3f} | {d / D:.3f} | {sec:.1f} |")


if __name__ == "__main__":
    main()
