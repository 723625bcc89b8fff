"""Atom counting on the fields that broke the old detection threshold (issue 27): before and after.

Fields: Au columns on a 2.04 A square lattice (pixel 0.2 A, column sigma
0.45 A), 1-10 atoms per column drawn at random, SCS ``k Z^1.7 n^0.85`` with
1 % spread, Poisson counts. "full field": a 16 x 16 block cut out of a
20 x 20 lattice half a spacing outside its outer columns, so the field of
view is filled with columns (a crystal edge-on); "vacuum margin": the 16 x 16
lattice with three spacings of vacuum around it. 256 columns each.

"before": the old default detection (local maxima of the image smoothed
over 1 pixel above median + max(6 robust SDs of the image, 5 % of its
99.9th percentile)), then the same fits; "after": :func:`fit_columns`'
default (candidates tested by their matched-filter height against the
noise model, 5 standard errors). Counting: :func:`count_atoms` without a
library (consecutive counts from the thinnest component).
Run: ``python benchmarks/bench_atom_counting_fields.py``.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from _util import machine, table
from chemtomo.atomic import column_cross_sections, count_atoms, fit_columns, local_maxima, simulate_columns
from chemtomo.atomic.fit import suppress

PIXEL = 0.2
STEP = 2.04 / PIXEL


def full_field(dose, seed, n=16, ring=2):
    counts = np.random.default_rng(seed).integers(1, 11, (n + 2 * ring, n + 2 * ring))
    sim = simulate_columns(counts, dose=dose, rng=seed)
    inner = np.zeros(counts.shape, bool)
    inner[ring:ring + n, ring:ring + n] = True
    pos = sim["positions"][inner.ravel()]
    lo = np.floor(pos.min(0) - STEP / 2).astype(int)
    hi = np.ceil(pos.max(0) + STEP / 2).astype(int) + 1
    return sim["image"][lo[0]:hi[0], lo[1]:hi[1]], pos - lo, sim["counts"][inner.ravel()]


def vacuum_field(dose, seed, n=16):
    sim = simulate_columns(np.random.default_rng(seed).integers(1, 11, (n, n)), dose=dose, rng=seed)
    return sim["image"], sim["positions"], sim["counts"]


def old_default_positions(img, min_distance=1.0):
    """The detection `fit_columns` used before issue 27, kept here to measure it."""
    med = np.median(img)
    thr = med + max(6 * 1.4826 * np.median(np.abs(img - med)), 0.05 * (np.percentile(img, 99.9) - med)) + 1e-12
    sm = ndimage.gaussian_filter(img.astype(float), 1.0)
    cand = local_maxima(sm, thr)
    return cand[suppress(cand, img[tuple(cand.T)], min_distance / PIXEL)]


def score(img, pos, truth, dose, positions=None):
    t = time.perf_counter()
    peaks = fit_columns(img, pixel_size=PIXEL, positions=positions)
    n, _ = count_atoms(column_cross_sections(peaks, dose=dose))
    dt = time.perf_counter() - t
    d, j = cKDTree(pos).query(peaks.positions)
    hit = d < STEP / 2
    found = len(np.unique(j[hit]))
    exact = int(np.sum(n[hit] == truth[j[hit]]))
    return found, int((~hit).sum()), exact, dt


def main():
    print(f"# Atom counting fields, issue 27 ({machine()})\n")
    rows = []
    for name, make in (("full field", full_field), ("vacuum margin", vacuum_field)):
        for dose in (5e4, 1e4):
            for seed in (0, 1, 2):
                img, pos, truth = make(dose, seed)
                row = {"field": name, "dose e/A^2": dose, "seed": seed, "columns": len(truth)}
                for label, positions in (("before", old_default_positions(img)), ("after", None)):
                    try:
                        found, spurious, exact, dt = score(img, pos, truth, dose, positions)
                    except Exception as exc:          # the old default can find too few columns to count
                        found, spurious, exact, dt = len(positions), 0, 0, float("nan")
                        print(f"{name} {dose} {seed} {label}: {exc}")
                    row.update({f"found, {label}": found, f"spurious, {label}": spurious,
                                f"exact, {label}": exact, f"s, {label}": dt})
                rows.append(row)
                print(row, flush=True)
    print(table(rows, ["field", "dose e/A^2", "seed", "columns", "found, before", "exact, before", "found, after",
                       "spurious, after", "exact, after", "s, after"]))


if __name__ == "__main__":
    main()
