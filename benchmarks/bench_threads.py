"""Threads under a competing CPU load (issue 27): torch's default thread count against chemtomo's default.

Each case runs in a fresh Python process, so that torch starts as a user's run would:

* ``torch default``: nothing set, torch takes one thread per core (``OMP_NUM_THREADS`` unset);
* ``chemtomo default``: :func:`chemtomo.core.threads.default_threads` (the cores not busy now), applied
  with :func:`~chemtomo.core.threads.set_threads` as ``chemtomo`` does before every command;
* ``1 thread``: ``--threads 1``.

Workloads: ``dtv`` and ``tgv`` (joint HAADF + Au/Ag EDX, core-shell sphere of ``--size``^3 voxels,
15 EDX and 29 HAADF tilts, default iterations and automatic weights) and ``regularised`` maps (one
32 x 32 pixel, 1024-channel Fe/Pt spectrum image at about 0.5 counts per line and pixel, weight
chosen by count splitting). The competing load is ``--load`` pure-Python busy loops, started before
the cases and stopped after them (the other work on a shared machine).

Run: ``python benchmarks/bench_threads.py [--size 32] [--load 1] [--workloads dtv,tgv,regularised]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _busy(stop):
    while not stop.is_set():
        for _ in range(100_000):
            pass


def _series(size):
    import numpy as np

    from chemtomo.simulate import phantom_from_spec, simulate_series
    from chemtomo.core.data import TiltSeries

    truth = phantom_from_spec("core-shell:sphere,ratio=0.6", ["Au", "Ag"], (size,) * 3, seed=0)
    rng = np.random.default_rng(0)
    edx = simulate_series(truth, np.linspace(-70, 70, 15), signals=("EDX",), dose=3e7, voxel_size=0.5, rng=rng)
    haadf = simulate_series(truth, np.linspace(-70, 70, 29), signals=("HAADF",), dose=3e7, voxel_size=0.5, rng=rng)
    return TiltSeries({"HAADF": haadf["HAADF"], "Au": edx["Au"], "Ag": edx["Ag"]}, pixel_size=edx.pixel_size)


def _spectrum_image():
    import numpy as np

    from chemtomo.physics.xray import energy_axis, xray_cross_section
    from chemtomo.simulate.spectrum import expected_spectra

    n, pix = 32, 5.0
    yy, xx = np.mgrid[:n, :n] / (n - 1.0)
    disc = ((yy - 0.4) ** 2 + (xx - 0.4) ** 2 < 0.09).astype(float)
    square = ((abs(yy - 0.65) < 0.2) & (abs(xx - 0.65) < 0.2)).astype(float)
    energy = energy_axis(1024, 0.01)
    areal = {"Fe": 2 * disc + 0.05, "Pt": 2 * square + 0.05}
    lam = expected_spectra(areal, energy, dose=1.0, pixel_size=pix)
    scale = (10 * pix) ** 2 * 0.7 / (4 * np.pi)
    truth = {line: areal[line.split("_")[0]] * scale * xray_cross_section(line) for line in ("Fe_Ka", "Pt_Ma")}
    level = np.mean([t[t > 0.01 * t.max()].mean() for t in truth.values()])
    return np.random.default_rng(1).poisson(lam * 0.5 / level), energy


def run_case(workload: str, threads: str, size: int) -> dict:
    """One case in this process: apply `threads`, prepare the input, time the workload."""
    import torch

    from chemtomo.core.threads import busy_cores, default_threads, set_threads

    busy = busy_cores()
    if threads == "chemtomo":
        set_threads(default_threads())
    elif threads != "torch":
        set_threads(int(threads))
    n_threads = torch.get_num_threads()
    if workload == "regularised":
        from chemtomo.spectral import regularised_maps

        si, energy = _spectrum_image()
        t0 = time.perf_counter()
        regularised_maps(si, energy, ["Fe_Ka", "Pt_Ma"])
    else:
        from chemtomo.recon.series import reconstruct_series

        series = _series(size)
        t0 = time.perf_counter()
        reconstruct_series(series, workload)
    return {"seconds": time.perf_counter() - t0, "threads": n_threads, "busy": busy}


def _spawn(workload, threads, size) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                            "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, __file__, "--case", workload, "--threads", threads, "--size", str(size)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--load", type=int, default=1, help="competing busy-loop processes")
    ap.add_argument("--workloads", default="dtv,tgv,regularised")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--threads", default="chemtomo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.threads, args.size)))
        return
    sys.path.insert(0, str(HERE))
    from _util import table

    from chemtomo.core.threads import available_cores

    print(f"# Threads under a competing load: {args.load} busy process(es), {available_cores()} cores available, "
          f"{os.cpu_count()} in the machine\n")
    stop = mp.Event()
    load = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(args.load)]
    for p in load:
        p.start()
    rows = []
    try:
        time.sleep(1.0)
        for workload in args.workloads.split(","):
            for label, threads in (("torch default", "torch"), ("chemtomo default", "chemtomo"), ("1 thread", "1")):
                r = _spawn(workload, threads, args.size)
                rows.append({"workload": workload, "threads setting": label, "threads": r["threads"],
                             "busy cores seen": f"{r['busy']:.2f}", "seconds": f"{r['seconds']:.1f}"})
                print(rows[-1], flush=True)
    finally:
        stop.set()
        for p in load:
            p.join(timeout=5)
    print()
    print(table(rows, ["workload", "threads setting", "threads", "busy cores seen", "seconds"]))


if __name__ == "__main__":
    main()
