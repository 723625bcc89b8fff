"""``--method auto`` on HAADF with element maps that are not counts (background-subtracted EELS edge maps).

Such maps cannot be split into count halves; auto scores every candidate on them by held-out views.
Decision 40 added the joint candidates (``dtv``, ``tnv`` with the least-squares term, their weight by
held-out views); this script measures what they add.

Phantoms: those of bench_auto.py (``--phantoms``, ``--size``^3 voxels of 0.5 nm, their seeds). HAADF:
71 tilts -70..70, 1e4 e-/A^2 in total (bench_auto.py's). Maps: 15 tilts -70..70, one per element, the
edge signal ``s = PEAK * projection / max(projection)`` (``--peak`` counts at the thickest point) on a
background of ``--background`` counts per pixel: ``Poisson(s + B) - B`` (the background's extrapolation
taken as exact, so its shot noise stays and values go negative). Error: NRMSE of each element volume
(divided by the known count scale) against the truth.

Compared: auto (default candidates); auto restricted to ``sirt`` and ``cgls`` (what auto did on such maps
before decision 40, with or without HAADF: each map was scored alone); auto on the maps alone (no HAADF:
per-map candidates, ``tv`` among them); and the
conventional pipeline at its best, an oracle no user has: SIRT followed by a 3D Gaussian filter, filter
width (0.5-3 voxels) and iterations (1..300) tuned on the truth per element, on the same maps.

Run: ``python benchmarks/bench_auto_maps.py [--size 64] [--phantoms ...] [--background 20,200]``.
One thread on the shared 2-core machine: about 15 minutes at 64^3 (8 rows).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _util import machine, table
from bench_auto import HAADF_DOSE, PHANTOMS, SIGMAS, SIRT_ITERATIONS, VOXEL
from chemtomo.core.data import TiltSeries
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.pipeline import auto
from chemtomo.recon import sirt
from chemtomo.simulate import phantom_from_spec, simulate_series
from chemtomo.testing import nrmse, oracle_filtered

MAP_TILTS = np.linspace(-70, 70, 15)
HAADF_TILTS = np.linspace(-70, 70, 71)


def maps(truth, elements, n, peak, background, rng):
    """Background-subtracted maps and each element's count scale (counts per unit concentration and voxel)."""
    op = Projector(TiltGeometry(MAP_TILTS, (n, n, n)))
    out, scale = {}, {}
    for el in elements:
        p = np.asarray(op(truth[el].astype(np.float32)), dtype=np.float64)
        scale[el] = peak / p.max()
        out[el] = (rng.poisson(scale[el] * p + background) - background).astype(np.float32)
    return op, out, scale


def run(series, truth, elements, scale, candidates=None):
    """auto on `series`: (errors, each map's pick with its weight, seconds)."""
    start = time.perf_counter()
    vs = auto.run(series, rng=0, candidates=candidates)
    errs = {el: float(nrmse(np.asarray(vs[el]) / scale[el], truth[el])) for el in elements}
    runs = [vs.provenance[k] for k in ("joint",) if k in vs.provenance] + vs.provenance.get("joint_more", [])
    weights = {r["method"]: r["info"]["weight"] for r in runs}
    picks = {}
    for el in elements:
        c = vs.provenance["auto"]["views"][el]["chosen"]
        w = weights.get(c["candidate"], (c.get("weight") or {}).get(el))
        picks[el] = c["candidate"] + (f" ({w:.3g})" if w is not None else "")
    return errs, picks, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--phantoms", default="Au@Ag sphere,Pt@Pd cube,Au@Pd bipyramid,Pd@Pt icosahedron (off-centre core)")
    ap.add_argument("--peak", type=float, default=20.0)
    ap.add_argument("--background", default="20,200")
    args = ap.parse_args()
    torch.set_num_threads(1)
    n = args.size
    print(f"# auto on HAADF + background-subtracted maps, {n}^3; {machine()}", flush=True)
    rows = []
    for name in args.phantoms.split(","):
        spec, elements, seed = PHANTOMS[name]
        truth = phantom_from_spec(spec, list(elements), (n, n, n), seed=seed)
        haadf = simulate_series(truth, HAADF_TILTS, signals=("HAADF",), dose=HAADF_DOSE, voxel_size=VOXEL,
                                rng=np.random.default_rng([seed, 0]))["HAADF"]
        for k, background in enumerate(float(b) for b in args.background.split(",")):
            op, data, scale = maps(truth, elements, n, args.peak, background, np.random.default_rng([seed, k, 7]))
            series = TiltSeries.from_arrays({"HAADF": haadf.data, **data},
                                            {"HAADF": HAADF_TILTS, **{el: MAP_TILTS for el in elements}},
                                            pixel_size=VOXEL)
            oracle = {el: oracle_filtered(sirt, op, data[el], truth[el], SIRT_ITERATIONS, scale=scale[el],
                                          sigmas=SIGMAS, every=1)[:3] for el in elements}
            new, picks, seconds = run(series, truth, elements, scale)
            old, _, old_seconds = run(series, truth, elements, scale, candidates=["sirt", "cgls"])
            maps_only = TiltSeries({el: series[el] for el in elements}, pixel_size=VOXEL)
            alone, alone_picks, alone_seconds = run(maps_only, truth, elements, scale)
            row = {"phantom": name, "background": background,
                   "SIRT oracle (it, sigma)": " / ".join(f"{el} {oracle[el][0]:.3f} ({oracle[el][1]}, {oracle[el][2]:g})"
                                                         for el in elements),
                   "auto before (sirt, cgls)": " / ".join(f"{el} {old[el]:.3f}" for el in elements),
                   "auto": " / ".join(f"{el} {new[el]:.3f}" for el in elements),
                   "chosen (weight)": ", ".join(f"{el} {picks[el]}" for el in elements),
                   "auto, maps alone": " / ".join(f"{el} {alone[el]:.3f}" for el in elements),
                   "chosen alone": ", ".join(f"{el} {alone_picks[el]}" for el in elements),
                   "time (s): auto / before / alone": f"{seconds:.0f} / {old_seconds:.0f} / {alone_seconds:.0f}"}
            rows.append(row)
            print(row, flush=True)
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
