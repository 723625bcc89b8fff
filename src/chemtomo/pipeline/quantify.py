"""Quantification of a reconstruction run on disk: the per-particle table (CSV, Parquet), ``quantify.json``
and the statistics figure.

The measurements themselves are :func:`chemtomo.quantify.particles.quantify_volumes`
(and :func:`chemtomo.quantify.uncertainty.split_uncertainty`); this module reads
the run, writes what they return and draws it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError
from ..io.write import SIDECAR, atomic_write, read_volume_set, to_json
from ..quantify.particles import quantify_volumes, run_voxel_size
from ..quantify.uncertainty import split_uncertainty
from ..report.figures import batch_figure


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text of the rows (union of their keys, in first-seen order; empty where a row has no value)."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (" ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def _columns(rows: list[dict]) -> dict:
    """Column name -> list of values (None where a row lacks it); ints stay ints only if the whole column is."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    cols = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        nums = [v for v in vals if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)]
        if nums and not all(isinstance(v, (int, np.integer)) for v in nums):
            vals = [float(v) if v is not None else None for v in vals]
        elif nums:
            vals = [int(v) if v is not None else None for v in vals]
        cols[k] = vals
    return cols


def write_table(rows: list[dict], stem) -> list[Path]:
    """Write `rows` to ``stem.csv`` and ``stem.parquet`` (atomically); returns the paths.

    Parquet (pyarrow) keeps the types: integers, floats, booleans, strings and
    the thin-side direction as a list of three floats.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise ChemtomoError("no particle rows to write")
    stem = Path(stem)
    csv_path, pq_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    with atomic_write(csv_path) as tmp:
        tmp.write_text(rows_to_csv(rows), encoding="utf-8")
    table = pa.table(_columns(rows))
    with atomic_write(pq_path) as tmp:
        pq.write_table(table, tmp)
    return [csv_path, pq_path]


def read_table(path) -> list[dict]:
    """Rows back from a Parquet table written by :func:`write_table`."""
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def quantify_run(run_dir, out_dir=None, *, core: str | None = None, reference: str | None = "auto",
                 counts: str | bool = "auto", coverage_threshold: float | None = None, series=None,
                 n_splits: int = 0, rng=0, progress=None, voxel_size: float | None = None, **options) -> dict:
    """Quantify a folder written by ``chemtomo reconstruct``; write the table, ``quantify.json`` and a figure.

    Writes ``particles.csv``, ``particles.parquet`` (one row per particle),
    ``quantify.json`` (rows and parameters) and ``particles.png`` (histograms
    and size against composition), all atomically.

    Parameters
    ----------
    run_dir : path
        Folder with ``chemtomo.json`` and one volume per signal.
    out_dir : path, optional
        Where to write; default ``run_dir/quantify``.
    core : str, optional
        Core element of core-shell particles.
    reference : str or None, default "auto"
        Volume to segment: "auto" (or None) segments the element sum (see
        :func:`~chemtomo.quantify.particles.quantify_volumes`); a name such as
        "HAADF" segments that volume.
    counts : bool or "auto", default "auto"
        Element volumes hold counts; "auto": True unless the provenance says the
        volumes were calibrated to concentrations.
    coverage_threshold : float, optional
        nm (voxels without a pixel size); see :func:`~chemtomo.quantify.particles.quantify_volumes`.
    series : TiltSeries, optional
        The tilt series the run was reconstructed from; with `n_splits` > 0 every
        number gets a standard deviation by count splitting
        (:func:`~chemtomo.quantify.uncertainty.split_uncertainty`), the method
        and options taken from the run's provenance.
    n_splits : int, default 0
        Count splits (two reconstructions each); 0: no uncertainties.
    rng : int, default 0
        Random source of the splits.
    progress : callable(name, done, total), optional
        Progress of the particles' measurements and of the splits' reconstructions
        (:func:`~chemtomo.quantify.uncertainty.split_uncertainty`).
    voxel_size : float, optional
        Voxel edge in nm, overriding the run's; default the run's
        (:func:`~chemtomo.quantify.particles.run_voxel_size`), and lengths in voxels when it has none.
    **options
        More keywords of :func:`~chemtomo.quantify.particles.quantify_volumes` (``smooth``,
        ``min_size``, ``core_rule``, ...).

    Returns
    -------
    dict
        The :func:`~chemtomo.quantify.particles.quantify_volumes` result, plus the paths written.
    """
    vs = read_volume_set(run_dir)
    if voxel_size is None:
        voxel_size = run_voxel_size(json.loads((Path(run_dir) / SIDECAR).read_text(encoding="utf-8")))
    vols = dict(vs.volumes)
    if reference == "auto":
        reference = None
    if counts == "auto":
        counts = not bool(vs.provenance.get("concentration", False))
    if counts and "k_factors" not in options:
        # counts per element without line names: equal k-factors unless the user gives some
        options["k_factors"] = {n: 1.0 for n in vols if n != reference}
    qopts = dict(reference=reference, core=core, counts=bool(counts), coverage_threshold=coverage_threshold,
                 voxel_size=voxel_size, **options)
    res = quantify_volumes(vols, progress=progress, **qopts)
    if n_splits:
        if series is None:
            raise ChemtomoError("uncertainties need the tilt series the run was reconstructed from; give it")
        prov = vs.provenance
        if prov.get("method") == "auto":  # the winner of the selection: a joint method, or one per signal
            if any("members" in r for r in prov.get("signals", {}).values()):
                raise ChemtomoError("the run averaged several pipelines per signal (auto's mean of candidates); "
                                    "uncertainties need one method: rerun chemtomo reconstruct with --method NAME")
            prov = prov.get("joint") or {"signals": prov.get("signals", {})}
        methods = {r.get("method") for r in prov.get("signals", {}).values()}
        method = prov.get("method") or (methods.pop() if len(methods) == 1 else None)
        if method is None:
            raise ChemtomoError("the run used different methods per signal; uncertainties need one: rerun "
                                "chemtomo reconstruct with --method NAME")
        sds = split_uncertainty(series, method, res, n_splits=n_splits, rng=rng, iterations=prov.get("iterations"),
                                thickness=vols[next(iter(vols))].shape[1], options=prov.get("options") or None,
                                quantify_options=qopts, progress=progress)
        for row, sd in zip(res["rows"], sds):
            row.update(sd)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "quantify"
    out.mkdir(parents=True, exist_ok=True)
    paths = write_table(res["rows"], out / "particles")
    summary = {"run_dir": str(run_dir), "voxel_size_nm": voxel_size, "length_unit": res["length_unit"],
               "smooth_voxels": res["smooth"], "min_size_voxels": res["min_size"],
               "reference": reference, "core": core,
               "counts": bool(counts), "k_factors": options.get("k_factors"), "threshold": res["threshold"],
               "elements": res["elements"], "uncertainty": f"count splitting, {n_splits} splits" if n_splits else None,
               "particles": res["rows"], "radial_profiles": res["profiles"]}
    with atomic_write(out / "quantify.json") as tmp:
        tmp.write_text(json.dumps(to_json(summary), indent=1), encoding="utf-8")
    paths += [out / "quantify.json", batch_figure(res["rows"], out / "particles.png")]
    res["paths"] = paths
    return res
