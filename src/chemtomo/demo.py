"""The demo behind ``make demo``: a low-dose Au@Ag nanorod, simulated, reconstructed and scored.

A core-shell nanorod (Au core, Ag shell) is simulated with a dense HAADF tilt
series (-70..70 degrees every 2 degrees) and a sparse, low-dose EDX series
(-70..70 every 10 degrees). Every reconstruction method reconstructs the EDX
maps, iterative ones stopped by the discrepancy principle; then the joint
methods TNV and HAADF-guided directional TV (``dtv``, what ``--method auto``
picks for such data) reconstruct the elements together with the HAADF series
(weights chosen by count splitting), and ``--method auto``, the default, scores its candidate
pipelines on the data and runs the best; the table gives
each element's NRMSE against the ground truth after converting counts to
concentration with the simulation's known count scale.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .core.projector import Projector
from .testing import nrmse

EDX_DOSE = 3e7  # total EDX dose, e-/A^2, over all EDX tilts: a few counts per pixel per map
HAADF_DOSE = 1e4  # total HAADF dose, e-/A^2
VOXEL_NM = 0.5


def run_demo(out_dir, *, size: int = 64, seed: int = 0, console=None, progress=None) -> dict:
    """Run the demo; write volumes, ``table.md`` and ``orthoslices.png`` to `out_dir`.

    `progress`, if given, is called as ``progress("demo", runs done, runs)`` before the first
    reconstruction and after each.

    Returns
    -------
    dict of method -> {element: NRMSE}, with ``"seconds"`` per method.
    """
    from rich.table import Table

    from .core.data import TiltSeries
    from .io import atomic_write, write_stack, write_volume_set
    from .pipeline.recipe import Reconstruct
    from .pipeline.run import process
    from .recon.registry import METHODS
    from .report.figures import orthoslices
    from .simulate import edx_expected, phantom_from_spec, simulate_series

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = console.print if console is not None else print
    shape = (size, size, size)
    truth = phantom_from_spec("core-shell:rod", ["Au", "Ag"], shape, seed=seed)
    haadf_angles = np.arange(-70, 71, 2.0)
    edx_angles = np.arange(-70, 71, 10.0)
    rng = np.random.default_rng(seed)
    haadf = simulate_series(truth, haadf_angles, signals=("HAADF",), dose=HAADF_DOSE, voxel_size=VOXEL_NM, rng=rng)
    edx = simulate_series(truth, edx_angles, signals=("EDX",), dose=EDX_DOSE, voxel_size=VOXEL_NM, rng=rng)
    series = TiltSeries({**haadf.signals, **edx.signals}, pixel_size=VOXEL_NM, dose=HAADF_DOSE + EDX_DOSE,
                        metadata={"phantom": "core-shell:rod", "seed": seed})
    (out_dir / "series").mkdir(exist_ok=True)
    for name in series.names:
        write_stack(out_dir / "series" / f"{name}.mrc", series[name].data, series[name].angles, pixel_size=VOXEL_NM)
    elements = [n for n in series.names if n != "HAADF"]
    mean_counts = {e: float(series[e].data.mean()) for e in elements}
    say(f"Au@Ag nanorod {size}^3 voxels of {VOXEL_NM} nm; HAADF {len(haadf_angles)} tilts, "
        f"EDX {len(edx_angles)} tilts at {EDX_DOSE:.0e} e-/A^2 in all "
        f"(mean counts per pixel: {', '.join(f'{e} {c:.2f}' for e, c in mean_counts.items())})")

    # counts per (concentration x voxel length): the simulation is linear in the phantom
    geom = Projector(series.geometry(elements[0])).geometry
    expected = edx_expected(truth, geom, None, voxel_size=VOXEL_NM, dose=EDX_DOSE / len(edx_angles))
    scale = {}
    for e in elements:
        line_key = next(k for k in expected if k.split("_")[0] == e)
        scale[e] = float(expected[line_key].sum() / Projector(geom)(truth[e]).sum())

    results, rows = {}, {"truth": {e: truth[e] for e in elements}}
    n_runs = sum(not info.joint for info in METHODS.values()) + 4  # per-signal methods, tnv, dtv, auto, HAADF
    runs_done = 0

    def step_done():
        nonlocal runs_done
        if progress is not None:
            progress("demo", runs_done, n_runs)
        runs_done += 1

    step_done()  # 0 of n_runs

    def record(label, run, *, row, folder):
        """Time `run`, score its element volumes, keep them for the figure and write them to `folder`."""
        start = time.perf_counter()
        vs = run()
        seconds = time.perf_counter() - start
        conc = {e: vs[e] / scale[e] for e in elements}
        results[label] = {e: nrmse(conc[e], truth[e]) for e in elements} | {"seconds": seconds}
        rows[row] = conc
        write_volume_set(vs, out_dir / folder)
        step_done()

    edx_only = TiltSeries({e: series[e] for e in elements}, pixel_size=VOXEL_NM)
    for method, info in METHODS.items():
        if info.joint:
            continue
        # semi-convergent methods stop at the Poisson noise level (discrepancy principle); TV uses KL data
        settings = Reconstruct(method=method, stop="discrepancy" if info.stoppable else None)
        record(method, lambda: process(edx_only, settings), row=method, folder=method)
    # joint HAADF + EDX: what --method auto picks for these signals
    for name in ("tnv", "dtv"):
        record(f"{name} (joint, HAADF)", lambda: process(series, Reconstruct(method=name)), row=f"{name} (joint)",
               folder=f"{name}-joint")
    # the default: candidates scored on the data, the best one run (what `chemtomo reconstruct` does unasked)
    chosen = {}

    def auto_run():
        vs = process(series, Reconstruct(method="auto"))
        chosen["name"] = vs.provenance["auto"]["counts"]["chosen"]["candidate"]
        return vs

    record("auto", auto_run, row="auto", folder="auto")
    results[f"auto (chose {chosen['name']})"] = results.pop("auto")
    start = time.perf_counter()
    haadf_vs = process(TiltSeries({"HAADF": series["HAADF"]}, pixel_size=VOXEL_NM), Reconstruct(method="sirt"))
    write_volume_set(haadf_vs, out_dir / "HAADF-sirt")
    haadf_seconds = time.perf_counter() - start
    step_done()

    table = Table(title="EDX reconstructions against the ground truth (NRMSE of concentration, lower is better)")
    table.add_column("method")
    for e in elements:
        table.add_column(f"{e} NRMSE", justify="right")
    table.add_column("time (s)", justify="right")
    lines = ["| method | " + " | ".join(f"{e} NRMSE" for e in elements) + " | time (s) |",
             "|---|" + "---|" * (len(elements) + 1)]
    for method, r in results.items():
        cells = [f"{r[e]:.3f}" for e in elements] + [f"{r['seconds']:.2f}"]
        table.add_row(method, *cells)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if console is not None:
        console.print(table)
    else:
        print("\n".join(lines))
    say(f"HAADF: SIRT on {len(haadf_angles)} tilts in {haadf_seconds:.2f} s -> HAADF-sirt/")
    with atomic_write(out_dir / "table.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    fig = orthoslices(rows, out_dir / "orthoslices.png", title="Au@Ag nanorod: truth and EDX reconstructions")
    say(f"wrote volumes per method, table.md and {Path(fig).name}")
    return results
