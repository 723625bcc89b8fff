"""Scores of a traced atom list against the true model: recall, precision, position RMSD, species accuracy."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..core.atoms import Atoms


def match_atoms(found: Atoms, truth: Atoms, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i_found, i_truth)`` of mutual nearest neighbours closer than `max_distance` (Angstrom)."""
    if len(found) == 0 or len(truth) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    d_ft, j = cKDTree(truth.positions).query(found.positions)
    _, i_back = cKDTree(found.positions).query(truth.positions)
    i = np.arange(len(found))
    ok = (d_ft <= max_distance) & (i_back[j] == i)
    return i[ok], j[ok]


def score_atoms(found: Atoms, truth: Atoms, *, max_distance: float, voxel_size: float | None = None) -> dict:
    """Recall, precision, position RMSD (Angstrom, and voxels when `voxel_size` is given) and species accuracy.

    Atoms are matched as mutual nearest neighbours within `max_distance`
    (Angstrom, e.g. half the nearest-neighbour distance). Species accuracy is
    over the matched pairs.

    Examples
    --------
    >>> t = Atoms([[0, 0, 0], [3, 0, 0]], ["Fe", "Pt"])
    >>> f = Atoms([[0.1, 0, 0], [3, 0.2, 0], [9, 9, 9]], ["Fe", "Fe", "Pt"])
    >>> s = score_atoms(f, t, max_distance=1.0)
    >>> s["recall"], round(s["precision"], 3), s["species_accuracy"]
    (1.0, 0.667, 0.5)
    """
    i, j = match_atoms(found, truth, max_distance)
    err = found.positions[i] - truth.positions[j]
    rmsd = float(np.sqrt(np.mean(np.sum(err**2, axis=1)))) if len(i) else float("nan")
    out = {
        "n_found": len(found), "n_true": len(truth), "matched": len(i),
        "recall": len(i) / max(len(truth), 1), "precision": len(i) / max(len(found), 1),
        "rmsd_A": rmsd,
        "species_accuracy": float(np.mean(found.species[i] == truth.species[j])) if len(i) else float("nan"),
    }
    if voxel_size:
        out["rmsd_voxels"] = rmsd / voxel_size
    return out
