"""Atom tables: CSV (``x,y,z,species`` first, Angstrom) and extended XYZ (readable by ASE), written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..core.atoms import Atoms
from ..core.errors import FileFormatError
from .write import atomic_write


def _columns(n: int, columns: dict) -> dict:
    out = {}
    for k, v in columns.items():
        a = np.asarray(v)
        if a.shape[0] != n:
            raise FileFormatError(f"column {k!r} has {a.shape[0]} rows for {n} atoms")
        if a.ndim == 2:
            for j in range(a.shape[1]):
                out[f"{k}_{'xyz'[j] if a.shape[1] == 3 else j}"] = a[:, j]
        else:
            out[k] = a
    return out


def write_atoms_csv(path, atoms, **columns) -> Path:
    """Write ``x,y,z,species`` (Angstrom) and any extra per-atom `columns` to a CSV file.

    A 2D column of width 3 is written as ``NAME_x, NAME_y, NAME_z``.
    """
    path = Path(path)
    extra = _columns(len(atoms), columns)
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "z", "species", *extra])
        cols = [np.asarray(c) for c in extra.values()]
        for i, (p, s) in enumerate(zip(atoms.positions, atoms.species)):
            w.writerow([f"{p[0]:.4f}", f"{p[1]:.4f}", f"{p[2]:.4f}", s, *(_fmt(c[i]) for c in cols)])
    return path


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)


def read_atoms_csv(path):
    """The :class:`~chemtomo.core.atoms.Atoms` and the extra columns (dict of arrays) of a CSV atom table."""
    path = Path(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:4] != ["x", "y", "z", "species"]:
        raise FileFormatError(f"{path} is not an atom table: its header must start with x,y,z,species")
    head, body = rows[0], rows[1:]
    cols = list(zip(*body)) if body else [()] * len(head)
    pos = np.array([cols[0], cols[1], cols[2]], float).T.reshape(-1, 3)
    extra = {}
    for name, c in zip(head[4:], cols[4:]):
        try:
            extra[name] = np.array(c, float)
        except ValueError:
            extra[name] = np.array(c, str)
    return Atoms(pos, np.array(cols[3], str)), extra


def write_atoms_xyz(path, atoms, *, comment: str = "", **columns) -> Path:
    """Write an extended XYZ file: species, positions (Angstrom) and numeric per-atom `columns`.

    The header declares ``Properties=species:S:1:pos:R:3:...`` and ``pbc="F F F"``,
    so ``ase.io.read(path)`` returns the atoms with the extra columns as arrays.
    """
    path = Path(path)
    extra = _columns(len(atoms), columns)
    props = "species:S:1:pos:R:3" + "".join(f":{k}:R:1" for k in extra)
    note = f' comment="{comment}"' if comment else ""
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        f.write(f"{len(atoms)}\nProperties={props} pbc=\"F F F\"{note}\n")
        cols = [np.asarray(c, float) for c in extra.values()]
        for i, (p, s) in enumerate(zip(atoms.positions, atoms.species)):
            vals = " ".join(f"{c[i]:.6g}" for c in cols)
            f.write(f"{s} {p[0]:.5f} {p[1]:.5f} {p[2]:.5f} {vals}\n".rstrip() + "\n")
    return path
