"""``--method auto`` against the conventional pipeline at its best (issue: auto at a fraction of the dose).

Phantoms (``--size``^3 voxels of 0.5 nm, fixed seeds 101, 102, ... that the training scripts do
not use): a Au@Ag core-shell sphere, a Pt@Pd core-shell cube and an Au-Pd alloy octahedron
(``--phantoms``; a Au@Ag core-shell rod is also available). EDX: 15 tilts, -70..70 degrees,
Poisson counts at a total dose D (``--doses``, the count levels of bench_accuracy.py). Error:
NRMSE of each element's concentration (counts divided by the simulation's known count scale,
exactly as bench_accuracy.py) against the ground truth.

Baseline (an oracle no user has): SIRT followed by a 3D Gaussian filter of the volume, the
filter width (0.5, 1, 1.5, 2, 3 voxels) and the iteration count (1..300) tuned on the ground
truth, per element, on the EDX maps at the full dose D.

1. EDX alone: ``chemtomo.pipeline.auto.run`` on the EDX maps at D/10.
2. With HAADF: auto on a HAADF series (``--haadf-tilts``, -70..70, 1e4 e-/A^2 in total as in
   bench_multimodal.py) plus the EDX maps at D/30; auto then also tries the joint methods.
3. Cost: auto's total time (``select`` + final run) against the chosen pipeline alone (the final
   run, ``provenance["auto"]["final_seconds"]``) at ``--sizes`` (default 128^3) with HAADF and
   two elements (first phantom, EDX at D/30 of the largest D).

Run: ``python benchmarks/bench_auto.py [--quick] [--size 64] [--phantoms ...] [--parts 1,2,3] [--sizes 128,256]``.
One thread on a shared 2-core machine: parts 1-2 at 64^3 took 17 min, part 3 at 128^3 12 min and at 256^3
102 min, ``--quick`` 2.5 min.
"""

from __future__ import annotations

import argparse
import time
import traceback

import numpy as np
import torch

from _util import machine, table
from chemtomo.core.data import TiltSeries
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.pipeline import auto
from chemtomo.recon import sirt
from chemtomo.simulate import edx_expected, phantom_from_spec, simulate_series
from chemtomo.testing import nrmse, oracle_filtered

#: name -> (phantom spec, elements (core first), seed)
PHANTOMS = {
    "Au@Ag sphere": ("core-shell:sphere,ratio=0.6", ("Au", "Ag"), 101),
    "Pt@Pd cube": ("core-shell:cube", ("Pt", "Pd"), 102),
    "Au-Pd alloy octahedron": ("alloy:octahedron", ("Au", "Pd"), 103),
    "Au@Ag rod": ("core-shell:rod,aspect=2.5", ("Au", "Ag"), 104),
    # phantoms auto was not developed on (docs/benchmarks.md, tables 0c and 0e)
    "Au@Pd bipyramid": ("core-shell:bipyramid", ("Au", "Pd"), 105),
    "Pd-Au alloy triangle": ("alloy:truncated-triangle", ("Pd", "Au"), 106),
    "Pt-Ni gradient decahedron": ("gradient:decahedron", ("Pt", "Ni"), 107),
    "Pd@Pt icosahedron (off-centre core)": ("core-shell:icosahedron,offset=0.3", ("Pd", "Pt"), 108),
}
DEFAULT_PHANTOMS = ("Au@Ag sphere", "Pt@Pd cube", "Au-Pd alloy octahedron")
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
SIRT_ITERATIONS = 300
EDX_TILTS = np.linspace(-70, 70, 15)
HAADF_DOSE = 1e4
VOXEL = 0.5


def edx(truth, elements, dose, n, rng):
    """EDX count maps at `dose` and the known count scale of each element (as bench_accuracy.py)."""
    op = Projector(TiltGeometry(EDX_TILTS, (n, n, n)))
    series = simulate_series(truth, EDX_TILTS, signals=("EDX",), dose=dose, voxel_size=VOXEL, rng=rng)
    expected = edx_expected(truth, op.geometry, None, voxel_size=VOXEL, dose=dose / len(EDX_TILTS))
    scale = {}
    for el in elements:
        line = next(k for k in expected if k.startswith(el))
        scale[el] = float(expected[line].sum() / op(truth[el]).sum())
    return op, series, scale


def baseline(op, series, scale, truth, elements):
    """Gaussian-filtered SIRT, width and iterations tuned on the ground truth: {el: (nrmse, sigma, iterations)}."""
    out = {}
    for el in elements:
        err, it, sigma, _ = oracle_filtered(sirt, op, series[el].data, truth[el], SIRT_ITERATIONS, scale=scale[el],
                                            sigmas=SIGMAS, every=1)
        out[el] = (float(err), float(sigma), int(it))
    return out


def run_auto(series, truth, elements, scale, ranking=False):
    """auto.run on `series`: (errors per element, provenance["auto"], joint provenance, wall seconds) or the failure."""
    start = time.perf_counter()
    try:
        vs = auto.run(series, rng=0)
        if ranking:
            print("\n".join("    " + line for line in auto.table(vs.provenance["auto"])), flush=True)
    except Exception as err:  # a benchmark reports failures rather than stopping
        tb = traceback.format_exc().strip().splitlines()
        return {"failed": f"{type(err).__name__}: {err}", "traceback": tb, "seconds": time.perf_counter() - start}
    wall = time.perf_counter() - start
    errs = {el: float(nrmse(np.asarray(vs[el]) / scale[el], truth[el])) for el in elements}
    return {"errors": errs, "auto": vs.provenance["auto"], "joint": vs.provenance.get("joint"), "seconds": wall}


def chosen(res, elements) -> str:
    """``candidate (iterations)`` of the count group, and the HAADF winner if any."""
    if "failed" in res:
        return "failed"
    a = res["auto"]
    c = a["counts"]["chosen"]
    its = c["iterations"]
    if res.get("joint") is not None and res["joint"].get("iterations") is not None:
        its = {el: res["joint"]["iterations"] for el in elements}
    text = c["candidate"] + " (" + "/".join(str(its.get(el) or "-") for el in elements) + " it.)"
    weight = (res.get("joint") or {}).get("info", {}).get("weight")
    if weight is not None:
        text += f", weight {weight:.3g}"
    for name, rec in a["views"].items():
        h = rec["chosen"]
        text += f"; {name}: {h['candidate']} ({'/'.join(str(v) for v in h['iterations'].values())} it.)"
    return text


def fmt_errors(errs, elements) -> str:
    return " / ".join(f"{el} {errs[el]:.3f}" for el in elements)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=None,
                    help="voxels per edge for parts 1 and 2 (default 64; 48 with --quick)")
    ap.add_argument("--phantoms", default=None,
                    help=f"comma list of {', '.join(PHANTOMS)} (default: the first three; the first with --quick)")
    ap.add_argument("--doses", default=None,
                    help="full EDX doses D in e-/A^2, comma list (default 3e7,3e8; 3e8 with --quick)")
    ap.add_argument("--haadf-tilts", type=int, default=71, help="HAADF tilts over -70..70 (default 71)")
    ap.add_argument("--parts", default="1,2,3", help="which bars: 1 (EDX at D/10), 2 (HAADF + EDX at D/30), 3 (cost)")
    ap.add_argument("--sizes", default=None, help="sizes of the cost part 3, comma list (default 128; 64 with --quick)")
    ap.add_argument("--quick", action="store_true", help="48^3, one phantom, one dose, cost at 64^3 (a few minutes)")
    ap.add_argument("--ranking", action="store_true", help="print auto's full ranking after each run")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 by default: on a shared 2-core machine 2 threads ran up to 20x slower)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n = args.size or (48 if args.quick else 64)
    default = DEFAULT_PHANTOMS[:1] if args.quick else DEFAULT_PHANTOMS
    names = args.phantoms.split(",") if args.phantoms else list(default)
    for name in names:
        if name not in PHANTOMS:
            ap.error(f"unknown phantom {name!r}; choose from {', '.join(PHANTOMS)}")
    doses = [float(d) for d in (args.doses or ("3e8" if args.quick else "3e7,3e8")).split(",")]
    sizes = [int(s) for s in (args.sizes or ("64" if args.quick else "128")).split(",") if s]
    parts = {int(p) for p in args.parts.split(",")}
    ah = np.linspace(-70, 70, args.haadf_tilts)
    t_all = time.perf_counter()
    print(f"# --method auto against tuned Gaussian-filtered SIRT\n\nmachine: {machine()}\n"
          f"EDX 15 tilts -70..70; HAADF {args.haadf_tilts} tilts -70..70, {HAADF_DOSE:.0e} e-/A^2; "
          f"voxels of {VOXEL} nm\n",
          flush=True)

    rows, failures, counts = [], [], []
    if parts & {1, 2}:
        for pname in names:
            spec, elements, seed = PHANTOMS[pname]
            truth = phantom_from_spec(spec, list(elements), (n, n, n), seed=seed)
            haadf = None
            if 2 in parts:
                haadf = simulate_series(truth, ah, signals=("HAADF",), dose=HAADF_DOSE, voxel_size=VOXEL,
                                        rng=np.random.default_rng([seed, 0]))["HAADF"]
            for k, dose in enumerate(doses):
                op, full, scale = edx(truth, elements, dose, n, np.random.default_rng([seed, k, 1]))
                counts.append(f"{pname} ({'/'.join(elements)}), D = {dose:.0e}: " + ", ".join(
                    f"{el} {full[el].data.mean():.3g}" for el in elements) + " counts/px at D")
                t = time.perf_counter()
                base = baseline(op, full, scale, truth, elements)
                t_base = time.perf_counter() - t
                base_text = " / ".join(f"{el} {e:.3f} (sigma {s:g}, {it} it.)" for el, (e, s, it) in base.items())
                print(f"  {pname} D={dose:.0e} filtered SIRT oracle: {base_text} ({t_base:.0f} s)", flush=True)
                for part, frac in ((1, 10), (2, 30)):
                    if part not in parts:
                        continue
                    _, low, low_scale = edx(truth, elements, dose / frac, n, np.random.default_rng([seed, k, frac]))
                    sig = {el: low[el] for el in elements}
                    if part == 2:
                        sig = {"HAADF": haadf, **sig}
                    series = TiltSeries(sig, pixel_size=VOXEL)
                    res = run_auto(series, truth, elements, low_scale, args.ranking)
                    row = {"part": part, "phantom": pname, "elements": "/".join(elements),
                           "signals": "EDX" if part == 1 else f"HAADF {args.haadf_tilts} + EDX",
                           "auto dose": f"D/{frac} = {dose / frac:.0e}",
                           "auto chose (iterations)": chosen(res, elements),
                           "baseline dose": f"D = {dose:.0e}",
                           "filtered SIRT oracle (sigma, it.)": base_text}
                    if "failed" in res:
                        row["auto NRMSE"] = "failed"
                        row["auto <= baseline"] = "failed"
                        failures.append((f"part {part}, {pname}, D/{frac}", res))
                        print(f"  {pname} D/{frac} auto FAILED: {res['failed']}", flush=True)
                    else:
                        errs = res["errors"]
                        worse = [el for el in elements if errs[el] > base[el][0]]
                        row["auto NRMSE"] = fmt_errors(errs, elements)
                        row["auto <= baseline"] = "yes" if not worse else "NO (" + ", ".join(worse) + ")"
                        row["auto s (select + final)"] = (f"{res['seconds']:.0f} ({res['auto']['seconds']:.0f} + "
                                                          f"{res['auto']['final_seconds']:.0f})")
                        print(f"  {pname} D/{frac} auto {row['auto chose (iterations)']}: {row['auto NRMSE']} "
                              f"-> {row['auto <= baseline']} ({res['seconds']:.0f} s)", flush=True)
                    row["baseline s"] = f"{t_base:.0f}"
                    rows.append(row)

    cost_rows = []
    if 3 in parts:
        pname = names[0]
        spec, elements, seed = PHANTOMS[pname]
        dose = max(doses) / 30
        for size in sizes:
            truth = phantom_from_spec(spec, list(elements), (size, size, size), seed=seed)
            haadf = simulate_series(truth, ah, signals=("HAADF",), dose=HAADF_DOSE, voxel_size=VOXEL,
                                    rng=np.random.default_rng([seed, 0]))["HAADF"]
            _, low, scale = edx(truth, elements, dose, size, np.random.default_rng([seed, size, 30]))
            series = TiltSeries({"HAADF": haadf, **{el: low[el] for el in elements}}, pixel_size=VOXEL)
            res = run_auto(series, truth, elements, scale, args.ranking)
            row = {"size": f"{size}^3", "phantom": pname, "signals": f"HAADF {args.haadf_tilts} + {'/'.join(elements)}",
                   "EDX dose": f"{dose:.0e}", "auto chose (iterations)": chosen(res, elements)}
            if "failed" in res:
                failures.append((f"part 3, {pname}, {size}^3", res))
                row["auto total s"] = f"{res['seconds']:.0f} (failed)"
                print(f"  cost {size}^3 auto FAILED: {res['failed']}", flush=True)
            else:
                a = res["auto"]
                total = a["seconds"] + a["final_seconds"]
                row.update({"select s": a["seconds"], "final run s (chosen alone)": a["final_seconds"],
                            "auto total s": total, "wall s": res["seconds"],
                            "total / chosen alone": f"{total / max(a['final_seconds'], 1e-9):.2f}",
                            "auto NRMSE": fmt_errors(res["errors"], elements)})
                print(f"  cost {size}^3: select {a['seconds']:.0f} s + final {a['final_seconds']:.0f} s, ratio "
                      f"{row['total / chosen alone']}", flush=True)
            cost_rows.append(row)

    print()
    if rows:
        cols = ["part", "phantom", "elements", "signals", "auto dose", "auto chose (iterations)", "auto NRMSE",
                "baseline dose", "filtered SIRT oracle (sigma, it.)", "auto <= baseline", "auto s (select + final)",
                "baseline s"]
        for part, title in ((1, "## 1. EDX alone: auto at D/10 against filtered SIRT (oracle) at D"),
                            (2, "## 2. With HAADF: auto at EDX D/30 against filtered SIRT (oracle) on EDX alone at D")):
            sel = [r for r in rows if r["part"] == part]
            if sel:
                print(title + "\n")
                print(table(sel, [c for c in cols if c != "part"]))
                held = sum(r["auto <= baseline"] == "yes" for r in sel)
                print(f"\nauto <= baseline for every element in {held} of {len(sel)} rows.\n")
        print("NRMSE of each element's concentration (counts over the known count scale) against the ground truth, "
              f"{n}^3; lower is better. Baseline: SIRT 1..{SIRT_ITERATIONS} iterations x Gaussian sigma in {SIGMAS} "
              "voxels tuned on the ground truth per element. auto chooses without ground truth (count splitting, "
              "held-out views); iterations are those of its final run (joint: the method's own).\n")
        print("Mean counts per pixel at D:\n")
        for c in counts:
            print(f"- {c}")
        print()
    if cost_rows:
        print("## 3. Cost: auto (select + final run) against the chosen pipeline alone (final run)\n")
        print(table(cost_rows, ["size", "phantom", "signals", "EDX dose", "auto chose (iterations)", "select s",
                                "final run s (chosen alone)", "auto total s", "wall s", "total / chosen alone",
                                "auto NRMSE"]))
        print(f"\n{torch.get_num_threads()} torch thread(s).\n")
    if failures:
        print("## auto failures\n")
        for where, res in failures:
            tb = res["traceback"]
            print(f"- {where}: {res['failed']}\n  - first: `{tb[0]}`\n  - last: `{tb[-1]}`")
        print()
    print(f"total time {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
