"""Figures: orthogonal slices of volume sets, and per-particle statistics across a batch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError


def orthoslices(rows: dict[str, dict[str, np.ndarray]], path, *, title: str | None = None, dpi: int = 110) -> Path:
    """Save a grid of central orthogonal slices: one row per entry, three slices per volume.

    Parameters
    ----------
    rows : dict of str to dict of str to array (ny, nz, nx)
        ``{row label: {volume label: v[y, z, x]}}``, e.g. ``{"truth": {"Au": ..., "Ag": ...},
        "mlem": {...}}``. Each volume gets the x-z (central y), y-x (central z) and y-z
        (central x) slices.
    path : str or Path
        PNG file to write (atomically).
    title : str, optional
        Figure title.

    Returns
    -------
    Path of the written figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows)
    names = list(next(iter(rows.values())))
    ncols = 3 * len(names)
    fig, axes = plt.subplots(len(labels), ncols, figsize=(1.6 * ncols, 1.7 * len(labels)), squeeze=False)
    vmax = {n: max(float(np.percentile(rows[r][n], 99.9)) for r in labels if n in rows[r]) or 1.0 for n in names}
    for i, label in enumerate(labels):
        for j, name in enumerate(names):
            v = rows[label].get(name)
            for k, (cut, axis_names) in enumerate(_cuts(v).items() if v is not None else []):
                ax = axes[i, 3 * j + k]
                ax.imshow(axis_names, cmap="magma", vmin=0, vmax=vmax[name], interpolation="nearest")
                if i == 0:
                    ax.set_title(f"{name} {cut}", fontsize=8)
        axes[i, 0].set_ylabel(label, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=dpi)


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

    if not rows:
        raise ChemtomoError("no particle rows to plot")
    if element is None:
        element = next((k[3:] for k in rows[0] if k.startswith("at_") and not k.endswith("_sd")), None)
    inside = [r for r in rows if not r.get("touches_border")]
    u = row_length_unit(rows)
    label = {"nm": "nm", "vox": "voxels"}[u]

    def col(key):
        return np.array([r[key] for r in inside if r.get(key) is not None and np.isfinite(r[key])], float)

    panels = [(f"diameter_{u}", f"equivalent diameter ({label})"), (f"at_{element}", f"{element} atomic fraction"),
              (f"shell_mean_{u}", f"mean shell thickness ({label})"), ("coverage", "shell coverage")]
    panels = [(k, lab) for k, lab in panels if col(k).size]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.0 * (len(panels) + 1), 2.8), squeeze=False)
    for ax, (k, lab) in zip(axes[0], panels):
        v = col(k)
        ax.hist(v, bins=max(5, int(math.sqrt(v.size)) + 1), color="0.4")
        ax.set_xlabel(lab, fontsize=8)
        ax.set_ylabel("particles", fontsize=8)
    ax = axes[0, -1]
    pairs = [(r[f"diameter_{u}"], r[f"at_{element}"], r.get(f"at_{element}_sd", 0.0)) for r in inside
             if r.get(f"at_{element}") is not None and r.get(f"diameter_{u}") is not None]
    if pairs:
        d, x, e = np.array(pairs, float).T
        ax.errorbar(d, x, yerr=np.nan_to_num(e), fmt="o", ms=3, color="k", ecolor="0.6")
    ax.set_xlabel(f"equivalent diameter ({label})", fontsize=8)
    ax.set_ylabel(f"{element} atomic fraction", fontsize=8)
    fig.suptitle(f"{len(inside)} particles ({len(rows) - len(inside)} at the border left out)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def row_length_unit(rows: list[dict]) -> str:
    """``"nm"`` if any particle row has lengths in nm (``diameter_nm``), else ``"vox"`` (voxels: no pixel size)."""
    return "nm" if any(r.get("diameter_nm") is not None for r in rows) or not any(
        "diameter_vox" in r for r in rows) else "vox"


def save_figure(fig, path, *, dpi: int = 90) -> Path:
    """Write a matplotlib figure to `path` as PNG, atomically, and close it; returns the path."""
    import matplotlib.pyplot as plt

    from ..io import atomic_write

    path = Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def _cuts(v: np.ndarray) -> dict[str, np.ndarray]:
    ny, nz, nx = v.shape
    return {"x-z": v[ny // 2], "x-y": v[:, nz // 2, :], "z-y": v[:, :, nx // 2]}
