"""Atomic-resolution bars of issue 7: 3D atom tracing + species, and 2D atom counting, against ground truth.

Tracing: an L1_0 FePt particle of about 5,000 atoms (random orientation) and
an Au@Ag core-shell particle, 128^3 voxels of 0.5 A, tilt series over +-70
degrees with the same total dose (4e6 e/A^2) spread over 30, 41 or 60 tilts,
Gaussian atoms (sigma 0.45 A) with Z^1.7 cross-sections and Poisson noise
(:mod:`chemtomo.atomic.simulate`). Reconstruction: MLEM, 1000 iterations.
Then :func:`chemtomo.atomic.atoms_from_volume` with its defaults, and the
projection-domain refinement (:func:`chemtomo.atomic.refine.refine_atoms`,
10 sweeps) of the traced atoms against the same tilt series. Scores:
atoms matched as mutual nearest neighbours within 1 A (a third of the
nearest-neighbour distance).

Counting: a square lattice of Au columns (spacing 2.04 A, pixel 0.2 A)
whose lengths follow a sphere (1-15 atoms, 408 columns), SCS ``k Z^1.7 n^0.85``
with 1 % column-to-column spread, Poisson noise at several doses;
:func:`chemtomo.atomic.fit_columns` then :func:`chemtomo.atomic.count_atoms`
without and with the SCS library.
Run: ``python benchmarks/bench_atomic.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree

from _util import machine, table
from chemtomo.atomic import (atomic_tilt_series, atoms_from_volume, column_cross_sections, core_shell_particle,
                             count_atoms, fit_columns, l10_particle, place, pure_column_scs, radius_for, score_atoms,
                             simulate_columns)
from chemtomo.atomic.refine import refine_atoms
from chemtomo.core.atoms import Atoms
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.recon import mlem

VOXEL = 0.5
TOTAL_DOSE = 4e6


def tracing_rows(n_tilts_list, size, iterations, n_atoms=5000):
    shape = (size,) * 3
    particles = {
        "FePt L1_0": (l10_particle(radius_for(n_atoms, 3.85), rng=1), ["Fe", "Pt"]),
        "Au@Ag": (core_shell_particle(radius_for(n_atoms, 4.08), 0.6 * radius_for(n_atoms, 4.08), rng=2), ["Ag", "Au"]),
    }
    rows = []
    for name, (atoms, species) in particles.items():
        atoms = place(atoms, shape, VOXEL)
        for n in n_tilts_list if name.startswith("FePt") else n_tilts_list[-1:]:
            geom = TiltGeometry(angles=np.linspace(-70, 70, n), volume_shape=shape)
            series = atomic_tilt_series(atoms, geom, VOXEL, dose=TOTAL_DOSE / n, rng=3).astype(np.float32)
            t = time.perf_counter()
            recon = mlem(Projector(geom), series, iterations)
            t_rec = time.perf_counter() - t
            t = time.perf_counter()
            found, cols = atoms_from_volume(recon, VOXEL, species)
            t_trace = time.perf_counter() - t
            s = score_atoms(found, atoms, max_distance=1.0, voxel_size=VOXEL)
            sig = cols["sigma"] / VOXEL
            t = time.perf_counter()
            ref = refine_atoms(found.positions / VOXEL, cols["height"] * (2 * np.pi) ** 1.5 * np.prod(sig, axis=1),
                               series, geom, sigma=float(np.median(sig[:, :2])), iterations=10)
            t_ref = time.perf_counter() - t
            r = score_atoms(Atoms(ref["positions"] * VOXEL, found.species), atoms, max_distance=1.0, voxel_size=VOXEL)
            rows.append({"particle": name, "atoms": len(atoms), "tilts": n, "recon s": t_rec, "trace+classify s": t_trace,
                         "recall": s["recall"], "precision": s["precision"], "RMSD A": s["rmsd_A"],
                         "RMSD voxel": s["rmsd_voxels"], "species acc.": s["species_accuracy"],
                         "non-atoms": cols["info"]["non_atoms"], "refine s": t_ref,
                         "RMSD voxel, refined": r["rmsd_voxels"], "recall, refined": r["recall"]})
            print(rows[-1], flush=True)
    return rows


def counting_rows(doses, variations):
    yy, xx = np.mgrid[:24, :24] - 11.5
    counts = np.clip(np.rint(2 * np.sqrt(np.maximum(0, 11.5**2 - yy**2 - xx**2)) / 1.5), 0, None).astype(int)
    lib = pure_column_scs("Au", 40)
    rows = []
    for var in variations:
        for dose in doses:
            sim = simulate_columns(counts, dose=dose, variation=var, rng=7)
            t = time.perf_counter()
            peaks = fit_columns(sim["image"], pixel_size=sim["pixel_size"])
            scs = column_cross_sections(peaks, dose=dose)
            n, mix = count_atoms(scs)
            t_fit = time.perf_counter() - t
            n_lib, _ = count_atoms(scs, library=lib)
            d, j = cKDTree(sim["positions"]).query(peaks.positions)
            truth = sim["counts"][j]
            rows.append({"dose e/A^2": dose, "SCS spread": var, "columns": f"{len(peaks)}/{len(sim['counts'])}",
                         "SCS error (median)": float(np.median(np.abs(scs / sim["scs"][j] - 1))),
                         "components (ICL)": len(mix.means), "accuracy": float(np.mean(n == truth)),
                         "accuracy, library": float(np.mean(n_lib == truth)),
                         "within 1 atom": float(np.mean(np.abs(n_lib - truth) <= 1)), "fit+count s": t_fit})
            print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="64^3 and fewer iterations (a smoke run)")
    args = ap.parse_args()
    print(f"# Atomic-resolution analysis ({machine()})\n")
    if args.quick:
        rows = tracing_rows([60], 80, 300, n_atoms=700)
    else:
        rows = tracing_rows([30, 41, 60], 128, 1000)
    print(table(rows, ["particle", "atoms", "tilts", "recon s", "trace+classify s", "recall", "precision", "RMSD A",
                       "RMSD voxel", "species acc.", "non-atoms", "refine s", "RMSD voxel, refined",
                       "recall, refined"]))
    print()
    rows = counting_rows([1e4, 2e4, 5e4, 1e5, 2e5], [0.01]) + counting_rows([5e4, 2e5], [0.0, 0.02])
    print(table(rows, ["dose e/A^2", "SCS spread", "columns", "SCS error (median)", "components (ICL)", "accuracy",
                       "accuracy, library", "within 1 atom", "fit+count s"]))


if __name__ == "__main__":
    main()
