"""Figures: orthogonal slices of volume sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
