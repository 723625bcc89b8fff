"""Batch statistics: the per-particle table as CSV and Parquet, and histograms / scatter plots across a batch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError
from ..io.write import atomic_write
from .particles import rows_to_csv


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


def batch_figure(rows: list[dict], path, *, element: str | None = None) -> Path:
    """Histograms of size, composition, shell thickness and coverage, and size against composition.

    Parameters
    ----------
    rows : list of dict
        Per-particle rows (:func:`~chemtomo.quantify.particles.quantify_volumes`), any number of runs.
    path : path
        PNG to write.
    element : str, optional
        Element whose atomic fraction is shown; the first ``at_`` column if omitted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.figures import save_figure

    if not rows:
        raise ChemtomoError("no particle rows to plot")
    if element is None:
        element = next((k[3:] for k in rows[0] if k.startswith("at_") and not k.endswith("_sd")), None)
    inside = [r for r in rows if not r.get("touches_border")]

    def col(key):
        return np.array([r[key] for r in inside if r.get(key) is not None and np.isfinite(r[key])], float)

    panels = [("diameter_nm", "equivalent diameter (nm)"), (f"at_{element}", f"{element} atomic fraction"),
              ("shell_mean_nm", "mean shell thickness (nm)"), ("coverage", "shell coverage")]
    panels = [(k, lab) for k, lab in panels if col(k).size]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.0 * (len(panels) + 1), 2.8), squeeze=False)
    for ax, (k, lab) in zip(axes[0], panels):
        v = col(k)
        ax.hist(v, bins=max(5, int(math.sqrt(v.size)) + 1), color="0.4")
        ax.set_xlabel(lab, fontsize=8)
        ax.set_ylabel("particles", fontsize=8)
    ax = axes[0, -1]
    pairs = [(r["diameter_nm"], r[f"at_{element}"], r.get(f"at_{element}_sd", 0.0)) for r in inside
             if r.get(f"at_{element}") is not None]
    if pairs:
        d, x, e = np.array(pairs, float).T
        ax.errorbar(d, x, yerr=np.nan_to_num(e), fmt="o", ms=3, color="k", ecolor="0.6")
    ax.set_xlabel("equivalent diameter (nm)", fontsize=8)
    ax.set_ylabel(f"{element} atomic fraction", fontsize=8)
    fig.suptitle(f"{len(inside)} particles ({len(rows) - len(inside)} at the border left out)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
