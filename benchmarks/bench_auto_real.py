"""``--method auto`` on real data: is it the best, or within the noise of the best, of its candidates?

Data: ``../shared/data`` (README there; the GPL-3.0 L2083 files are read in place). Loading and
alignment come from ``docs/real_data.py`` (and ``bench_n2n_real.load`` for the repeated scans).

Protocol: an OUTER split of the data that auto never sees, so that auto is not scored on the data
it selected on.

* Count data (QD1 Se/S/Zn, 4x binned; L2083 window maps of Fe, S, Si, O without background
  subtraction, 4x downsampled): every aligned map is split binomially (p = 0.5,
  :func:`chemtomo.physics.counts.split_counts`) into A and B. ``auto.run`` and every one of its
  candidates (``auto.run(..., candidates=[name])``, each with its own inner choice of iterations
  and filter) get only A; score = squared error per count of B given the reprojection of the
  A-volume (:func:`chemtomo.pipeline.auto.squared_error`, auto's ranking score), summed over the
  elements; the Poisson deviance per count (:func:`chemtomo.pipeline.auto.poisson_deviance`) is
  reported too, with the best row and auto's place by it. For L2083 the (unsplit) HAADF is
  part of the series, so that auto's joint candidates (dtv, tnv) take part; the HAADF is not scored.
  Three outer seeds.
* Non-count data (nanorod maps, L2083 HAADF): every 4th view starting at index 1 (then at index 3)
  is held out (B); auto and the candidates see the other views (auto holds out its own views among
  those); score = :func:`chemtomo.pipeline.auto.relative_error` of the predicted B views.
* Baseline (an oracle no user has): SIRT on A (the kept views) followed by a Gaussian filter of the
  volume, filter width in (0, 0.5, 1, 1.5, 2, 3) voxels and iterations 1..300 tuned on B, i.e.
  on the evaluation data itself (per element for count data).
* Repeated scans (15 frames of one projection) are not a tilt series: there is nothing to
  reconstruct, so auto's choice of reconstruction does not apply as such. The frame analogue run
  here: the 15 registered frames as 15 views at 0 degrees of a one-voxel-thick volume, so that
  every candidate estimates the mean count map (SIRT/MLEM = the frame mean, with a Gaussian filter
  of the map; ``gaussian+``/``unet+`` denoise the frames first; ``tv`` is 2D TV with a Poisson term),
  scored by count splitting exactly like the tilt series.

"Within noise": with ``d_k`` = auto's score minus the best row's score in repeat ``k``, auto is within
noise if ``mean(d) <= max(d) - min(d)`` (the best row is the one with the lowest mean score).
Run: ``python benchmarks/bench_auto_real.py [--data ../shared/data] [--only qd1,l2083,nanorod,scans]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _util import machine, table

ROOT = Path(__file__).resolve().parents[1]
FILTERS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
HOLDOUT = 4


def _imports():
    """docs/real_data.py and chemtomo, imported only when the data are there."""
    sys.path.insert(0, str(ROOT / "docs"))
    sys.path.insert(0, str(ROOT / "src"))
    import real_data  # noqa: F401

    return real_data


# ------------------------------------------------------------------------------ scoring helpers
def describe(rec: dict) -> str:
    """``name (Se 7 f1.5, S 10)`` from a ranking record of auto."""
    its = rec.get("iterations") or {}
    fil = rec.get("filter_voxels") or {}
    parts = [f"{k.split('_')[0]} {v}" + (f" f{fil[k]:g}" if fil.get(k) else "") for k, v in its.items()]
    return f"{rec['candidate']} ({', '.join(parts)})" if parts else rec["candidate"]


def volume_checks(vs, names) -> str:
    """Empty if every volume is finite, non-negative-ish and not all zero, else what is wrong."""
    bad = []
    for n in names:
        v = np.asarray(vs[n], dtype=np.float64)
        if not np.isfinite(v).all():
            bad.append(f"{n}: non-finite")
        elif not v.any():
            bad.append(f"{n}: all zero")
        elif v.min() < -0.05 * max(v.max(), 1e-12):
            bad.append(f"{n}: min {v.min():.3g} (max {v.max():.3g})")
    return "; ".join(bad)


def count_score(vs, names, geometry, b: dict) -> tuple[float, float]:
    """(summed squared error per count of B, summed Poisson deviance per count of B) of the reprojections
    of `vs`."""
    from chemtomo.core.projector import Projector
    from chemtomo.pipeline.auto import poisson_deviance, squared_error

    se = dev = 0.0
    for n in names:
        mu = np.asarray(Projector(geometry(n))(np.asarray(vs[n], np.float32)), np.float64)
        se += squared_error(b[n], mu)
        dev += poisson_deviance(b[n], mu)
    return se, dev


def oracle_counts(a: dict, b: dict, names, geometry, iterations: int):
    """SIRT + Gaussian filter, iterations 1..`iterations` and width tuned on B (per element)."""
    from chemtomo.core.projector import Projector
    from chemtomo.pipeline.auto import poisson_deviance, squared_error
    from chemtomo.recon import sirt
    from chemtomo.testing import best_filtered

    se = dev = 0.0
    chosen = []
    for n in names:
        op = Projector(geometry(n))
        s, it, w, v = best_filtered(sirt, op, np.asarray(a[n], np.float32), iterations,
                                    lambda x, _op=op, _b=b[n]: squared_error(_b, np.asarray(_op(x))),
                                    sigmas=FILTERS, every=1)
        mu = np.asarray(op(v), np.float64)
        se += s
        dev += poisson_deviance(b[n], mu)
        chosen.append(f"{n.split('_')[0]} {it} f{w:g}")
    return se, dev, f"sirt ({', '.join(chosen)})"


# ------------------------------------------------------------------------------ the two protocols
def run_counts(label, counts: dict, angles, *, seeds, thickness=None, extra=None, pixel_size=1.0,
               oracle_iterations=300, log=print):
    """Count protocol (module notes). `counts`: aligned whole-count stacks; `extra`: unsplit signals (HAADF)."""
    from chemtomo.core.data import TiltSeries
    from chemtomo.physics.counts import split_counts
    from chemtomo.pipeline import auto
    from chemtomo.recon import reconstruct_series

    names = list(counts)
    extra = extra or {}
    rows: dict = {}
    notes = []

    def add(row, k, se, dev, setting, seconds):
        r = rows.setdefault(row, {"scores": {}, "dev": {}, "settings": {}, "seconds": 0.0})
        r["scores"][k], r["dev"][k], r["settings"][k] = se, dev, setting
        r["seconds"] += seconds

    for seed in seeds:
        gen = np.random.default_rng(1000 + seed)
        a, b = {}, {}
        for n in names:
            x, y = split_counts(np.rint(counts[n]).astype(np.int64), 0.5, rng=gen)
            a[n], b[n] = x.astype(np.float32), y.astype(np.float64)
        series = TiltSeries.from_arrays({**a, **extra}, angles, pixel_size=pixel_size,
                                        units={n: "detector units" for n in extra})

        def geometry(n, _s=series):
            return _s.geometry(n, thickness)

        t = time.perf_counter()
        vs = auto.run(series, thickness=thickness, rng=seed)
        sec = time.perf_counter() - t
        choice = vs.provenance["auto"]["counts"]
        se, dev = count_score(vs, names, geometry, b)
        add("auto", seed, se, dev, describe(choice["chosen"]), sec)
        if bad := volume_checks(vs, names):
            notes.append(f"seed {seed}: auto ({choice['chosen']['candidate']}): {bad}")
        inner = {r["candidate"]: r for r in choice["ranking"]}
        log(f"  [{label}] seed {seed}: auto -> {describe(choice['chosen'])}: {se:.4f} ({sec:.0f} s)")
        for cand in inner:
            if "members" in inner[cand]:  # auto's own per-element choice (or mean of two): auto's row is that
                continue
            t = time.perf_counter()
            parsed = auto.Candidate.parse(cand)
            joint = parsed.method in auto.JOINT_CANDIDATES + auto.ALONE_CANDIDATES and not parsed.partition
            try:
                if joint:  # auto's own final step for a joint winner is exactly this call (with HAADF if there is one)
                    keep = [n for n in ("HAADF",) if n in series] + list(names)
                    vc = reconstruct_series(TiltSeries({n: series[n] for n in keep}, pixel_size=series.pixel_size),
                                            cand, thickness=thickness)
                    setting = f"{cand} (weight {vc.provenance.get('info', {}).get('weight', float('nan')):.3g}, direct)"
                else:
                    # a guided denoiser and a +haadf split take the HAADF along
                    keep = list(names) + (["HAADF"] if parsed.guide == "HAADF" or parsed.partition == auto.PARTITION
                                          else [])
                    only = TiltSeries({n: series[n] for n in keep}, pixel_size=series.pixel_size)
                    vc = auto.run(only, thickness=thickness, rng=seed, candidates=[cand])
                    setting = describe(vc.provenance["auto"]["counts"]["chosen"])
            except Exception as err:  # noqa: BLE001  reported, not fixed
                notes.append(f"seed {seed}: candidate {cand}: {type(err).__name__}: {err}")
                continue
            se, dev = count_score(vc, names, geometry, b)
            add(cand, seed, se, dev, setting, time.perf_counter() - t)
            if bad := volume_checks(vc, names):
                notes.append(f"seed {seed}: {cand}: {bad}")
            log(f"  [{label}] seed {seed}: {setting}: {se:.4f} (inner {inner[cand]['score']})")
        t = time.perf_counter()
        se, dev, setting = oracle_counts(a, b, names, geometry, oracle_iterations)
        add("G-SIRT oracle (tuned on B)", seed, se, dev, setting, time.perf_counter() - t)
        log(f"  [{label}] seed {seed}: oracle {setting}: {se:.4f} ({time.perf_counter() - t:.0f} s)")
    return rows, notes


def run_views(label, name, stack, angles, *, starts=(1, 3), thickness=None, oracle_iterations=300, log=print):
    """Held-out-view protocol (module notes) on one non-count signal `name` (stack aligned already)."""
    from chemtomo.core.data import TiltSeries
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.pipeline import auto
    from chemtomo.recon import sirt
    from chemtomo.testing import best_filtered

    stack = np.asarray(stack, np.float32)
    angles = np.asarray(angles, np.float64)
    n_views, ny, nu = stack.shape
    nz = nu if thickness is None else int(thickness)
    rows: dict = {}
    notes = []

    def add(row, k, score, setting, seconds):
        r = rows.setdefault(row, {"scores": {}, "settings": {}, "seconds": 0.0})
        r["scores"][k], r["settings"][k] = score, setting
        r["seconds"] += seconds

    for start in starts:
        held = np.arange(start, n_views, HOLDOUT)
        kept = np.setdiff1d(np.arange(n_views), held)
        measured = stack[held]
        op_held = Projector(TiltGeometry(angles[held], (ny, nz, nu), nu))
        series = TiltSeries.from_arrays({name: stack[kept]}, angles[kept], units={name: "detector units"})
        key = f"held {held.tolist()}"

        def score(v):
            return auto.relative_error(measured, np.asarray(op_held(np.asarray(v, np.float32))))

        t = time.perf_counter()
        vs = auto.run(series, thickness=thickness)
        sec = time.perf_counter() - t
        choice = vs.provenance["auto"]["views"][name]
        add("auto", key, score(vs[name]), describe(choice["chosen"]), sec)
        if bad := volume_checks(vs, [name]):
            notes.append(f"{key}: auto ({choice['chosen']['candidate']}): {bad}")
        log(f"  [{label}] {key}: auto -> {describe(choice['chosen'])}: {rows['auto']['scores'][key]:.5f}")
        for rec in choice["ranking"]:
            cand = rec["candidate"]
            t = time.perf_counter()
            try:
                vc = auto.run(series, thickness=thickness, candidates=[cand])
            except Exception as err:  # noqa: BLE001
                notes.append(f"{key}: candidate {cand}: {type(err).__name__}: {err}")
                continue
            add(cand, key, score(vc[name]), describe(vc.provenance["auto"]["views"][name]["chosen"]),
                time.perf_counter() - t)
            if bad := volume_checks(vc, [name]):
                notes.append(f"{key}: {cand}: {bad}")
            log(f"  [{label}] {key}: {cand}: {rows[cand]['scores'][key]:.5f} (inner {rec['score']})")
        t = time.perf_counter()
        op = Projector(TiltGeometry(angles[kept], (ny, nz, nu), nu))
        s, it, w, _ = best_filtered(sirt, op, stack[kept], oracle_iterations, score, sigmas=FILTERS, every=1)
        add("G-SIRT oracle (tuned on B)", key, s, f"sirt ({it} f{w:g})", time.perf_counter() - t)
        log(f"  [{label}] {key}: oracle sirt {it} f{w:g}: {s:.5f}")
    return rows, notes


# ------------------------------------------------------------------------------ reporting
def summarise(label, rows: dict, notes, *, counts: bool, repeats_label: str) -> str:
    keys = list(rows["auto"]["scores"])
    full = {r: v for r, v in rows.items() if all(k in v["scores"] for k in keys)}
    mean = {r: float(np.mean([v["scores"][k] for k in keys])) for r, v in full.items()}
    best = min(mean, key=mean.get)
    best_cand = min((r for r in mean if r not in ("auto", "G-SIRT oracle (tuned on B)")), key=mean.get)
    out = []
    for r, v in rows.items():
        s = np.array([v["scores"].get(k, np.nan) for k in keys])
        row = {"pipeline": r, "mean score": float(np.nanmean(s)), "spread (max-min)": float(np.nanmax(s) - np.nanmin(s))}
        if r in full:
            d = s - np.array([rows[best]["scores"][k] for k in keys])
            row["mean - best"] = float(d.mean())
            row["spread of (row - best)"] = float(d.max() - d.min())
        if counts:
            row["deviance (mean)"] = float(np.nanmean([v["dev"].get(k, np.nan) for k in keys]))
        row["settings per repeat"] = "; ".join(v["settings"].get(k, "failed") for k in keys)
        row["s (all repeats)"] = v["seconds"]
        out.append(row)
    cols = ["pipeline", "mean score", "spread (max-min)", "mean - best", "spread of (row - best)"]
    cols += (["deviance (mean)"] if counts else []) + ["settings per repeat", "s (all repeats)"]
    lines = [f"### {label}", "", f"Repeats ({len(keys)}): {repeats_label}. Score: "
             + ("summed squared error per count of B (lower is better; its floor, about 1 per element, is "
                "B's own Poisson noise)" if counts else
                "relative squared error of the held-out views (lower is better)") + ".", "", table(out, cols), ""]

    def verdict(ref):
        d = np.array([rows["auto"]["scores"][k] - rows[ref]["scores"][k] for k in keys])
        spread = float(d.max() - d.min())
        if d.mean() <= 1e-6 * abs(mean[ref]):  # ties (the same pipeline chosen) count as equal
            return f"auto is at least as good as {ref} (mean difference {d.mean():+.4g})"
        if d.mean() <= spread:
            return f"auto is within noise of {ref} (mean difference {d.mean():+.4g} <= spread {spread:.4g})"
        return f"auto is WORSE than {ref} (mean difference {d.mean():+.4g} > spread {spread:.4g})"

    chosen = ", ".join(rows["auto"]["settings"][k].split(" (")[0] for k in keys)
    lines += [f"auto chose: {chosen}.", "",
              f"**Verdict ({label})**: best row: {best}. Against the best candidate ({best_cand}): "
              f"{verdict(best_cand)}. Against the "
              f"tuned G-SIRT oracle: {verdict('G-SIRT oracle (tuned on B)')}.", ""]
    if counts:  # the same rows by the Poisson deviance, which auto does not rank on
        dev = {r: float(np.mean([v["dev"][k] for k in keys])) for r, v in full.items()}
        order = sorted(dev, key=dev.get)
        lines += [f"By the deviance per count of B: best row {order[0]} ({dev[order[0]]:.4g}); auto is "
                  f"{order.index('auto') + 1} of {len(order)} ({dev['auto']:.4g}).", ""]
    if notes:
        lines += ["Checks (exceptions; volumes non-finite, all zero, or with a minimum below -5% of their maximum):", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ data sets
def case_qd1(rd, data: Path, args, log):
    from chemtomo.align import shift_whole

    c = rd.qd1_counts(data, args.qd1_bin)
    angles = np.arange(-60, 61, 10.0)
    _, shifts = rd.align_stack(c.sum(axis=1), angles, lowpass=1.0)  # as run_qd1_denoise: shifts of the channel sum
    counts = {n: shift_whole(c[:, i], -shifts) for i, n in enumerate(rd.QD1_CHANNELS)}  # whole-pixel: counts stay counts
    rows, notes = run_counts("QD1", counts, angles, seeds=args.seeds, oracle_iterations=args.iterations, log=log)
    return summarise(f"QD1 (counts: Se, S, Zn; {args.qd1_bin}x binned, {c.shape[-1]} px, 13 views)", rows, notes,
                     counts=True, repeats_label=f"outer binomial splits, seeds {args.seeds}")


def l2083_series(rd, data: Path, args):
    from chemtomo.align import align_series
    from chemtomo.spectral.series import maps_series

    files = rd.l2083_files(data)
    # window maps WITHOUT the background windows: net (background-subtracted) maps are not whole counts
    series = maps_series(files, args.l2083_elements.split(","), method="window", angles="names",
                         downsample=args.l2083_downsample, background_windows=False)
    aligned, shifts = align_series(series, reference="HAADF", method="xcorr+matching", centre=False, iterations=5)
    return series, aligned, shifts


def case_l2083_counts(rd, data: Path, args, log, loaded):
    from chemtomo.align import shift_whole

    series, aligned, shifts = loaded
    angles = series["HAADF"].angles
    haadf = aligned["HAADF"].data
    haadf = haadf / (float(np.percentile(haadf, 99.9)) or 1.0)  # as run_l2083
    names = [n for n in series.names if n != "HAADF"]
    counts = {n: shift_whole(series[n].data, -shifts[n]) for n in names}  # HAADF shifts, whole pixels
    thickness = 64 // args.l2083_downsample  # run_l2083: 32 voxels at downsample 2
    rows, notes = run_counts("L2083 maps", counts, angles, seeds=args.seeds, thickness=thickness,
                             extra={"HAADF": haadf}, pixel_size=series.pixel_size,
                             oracle_iterations=args.iterations, log=log)
    ny, nx = series.image_shape
    return summarise(f"L2083 element maps (counts: {', '.join(names)}; window maps, {args.l2083_downsample}x "
                     f"downsampled, {ny}x{nx} px, nz {thickness}, 16 views; HAADF unsplit in the series)",
                     rows, notes, counts=True, repeats_label=f"outer binomial splits, seeds {args.seeds}")


def case_l2083_haadf(rd, data: Path, args, log, loaded):
    series, aligned, _ = loaded
    haadf = aligned["HAADF"].data
    haadf = haadf / (float(np.percentile(haadf, 99.9)) or 1.0)
    thickness = 64 // args.l2083_downsample
    rows, notes = run_views("L2083 HAADF", "HAADF", haadf, series["HAADF"].angles, thickness=thickness,
                            oracle_iterations=args.iterations, log=log)
    return summarise(f"L2083 HAADF (images; {args.l2083_downsample}x downsampled, nz {thickness}, 16 views)", rows,
                     notes, counts=False, repeats_label="outer held-out views: every 4th from index 1, from index 3")


def case_nanorod(rd, data: Path, args, log):
    p, _, _ = rd.load_nanorod(data, args.nanorod_bin)
    angles = np.arange(-60, 61, 10.0)
    al, _ = rd.align_stack(p, angles)  # as run_nanorod
    rows, notes = run_views("nanorod", "Au", al, angles, oracle_iterations=args.iterations, log=log)
    return summarise(f"nanorod (denoised float EDX maps; {args.nanorod_bin}x binned, {p.shape[-1]} px, 13 views)",
                     rows, notes, counts=False,
                     repeats_label="outer held-out views: every 4th from index 1, from index 3")


def case_scans(rd, data: Path, args, log):
    from bench_n2n_real import BORDER, load

    counts, _, _ = load(data)  # registered on the HAADF frames, moved by whole pixels (bench_n2n_real)
    inner = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))  # drop the drift's zero-filled border
    b = args.scans_bin
    binned = {n: np.rint(rd.bin_images(c[inner], b) * b * b) for n, c in counts.items()}
    n_frames = next(iter(binned.values())).shape[0]
    rows, notes = run_counts("scans", binned, np.zeros(n_frames), seeds=args.seeds, thickness=1,
                             oracle_iterations=args.iterations, log=log)
    shape = next(iter(binned.values())).shape[1:]
    return summarise(f"repeated scans, frame analogue (counts: Se, S, Zn; {n_frames} frames as views at 0 deg of a "
                     f"1-voxel-thick volume; {b}x binned, {shape[0]}x{shape[1]} px)", rows, notes, counts=True,
                     repeats_label=f"outer binomial splits, seeds {args.seeds}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--only", default="qd1,l2083,nanorod,scans")
    ap.add_argument("--seeds", default="0,1,2", help="outer count-split seeds")
    ap.add_argument("--iterations", type=int, default=300, help="SIRT iterations searched by the oracle")
    ap.add_argument("--qd1-bin", type=int, default=4)
    ap.add_argument("--nanorod-bin", type=int, default=4)
    ap.add_argument("--scans-bin", type=int, default=4)
    ap.add_argument("--l2083-downsample", type=int, default=4)
    ap.add_argument("--l2083-elements", default="Fe,S,Si,O")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if not args.data.is_dir():
        print(f"skipped: real-data folder {args.data} not found (it lives beside the repository as "
              "../shared/data; pass --data)")
        return
    torch.set_num_threads(1)
    rd = _imports()
    print(f"# auto on real data: outer split, auto and its candidates against tuned filtered SIRT\n"
          f"machine: {machine()}\n")
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    sections = []
    only = args.only.split(",")
    if "qd1" in only:
        sections.append(case_qd1(rd, args.data, args, log))
        print(sections[-1], flush=True)
    if "l2083" in only:
        loaded = l2083_series(rd, args.data, args)
        sections.append(case_l2083_counts(rd, args.data, args, log, loaded))
        print(sections[-1], flush=True)
        sections.append(case_l2083_haadf(rd, args.data, args, log, loaded))
        print(sections[-1], flush=True)
    if "nanorod" in only:
        sections.append(case_nanorod(rd, args.data, args, log))
        print(sections[-1], flush=True)
    if "scans" in only:
        sections.append(case_scans(rd, args.data, args, log))
        print(sections[-1], flush=True)
    print(f"Oracle: SIRT iterations 1..{args.iterations} (every one) x Gaussian widths {FILTERS} voxels, tuned on the "
          f"evaluation half B. Total {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
