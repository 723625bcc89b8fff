"""Atom lists: positions in Angstrom and one species symbol per atom.

Positions are ``(x, y, z)`` rows in the volume's axes (``docs/conventions.md``:
y along the tilt axis, z the beam at 0 degrees). Atomic models
(:mod:`chemtomo.atomic.models`), tracing (:func:`chemtomo.atomic.atoms_from_volume`)
and the atom tables of :mod:`chemtomo.io.atoms` share this one type.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ChemtomoError


@dataclass(frozen=True)
class Atoms:
    """A list of atoms: ``positions`` (n, 3) as x, y, z in Angstrom and ``species`` (n,) symbols.

    Examples
    --------
    >>> a = Atoms([[0.0, 0.0, 0.0], [2.04, 0.0, 0.0]], ["Au", "Ag"])
    >>> len(a), a.counts()
    (2, {'Ag': 1, 'Au': 1})
    >>> a.take(a.species == "Au").positions.tolist()
    [[0.0, 0.0, 0.0]]
    """

    positions: np.ndarray
    species: np.ndarray

    def __post_init__(self):
        pos = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        spec = np.asarray(self.species, dtype=str).reshape(-1)
        if len(pos) != len(spec):
            raise ChemtomoError(f"{len(pos)} positions but {len(spec)} species; give one species per atom")
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "species", spec)

    def __len__(self) -> int:
        return len(self.positions)

    def counts(self) -> dict[str, int]:
        """Number of atoms per species."""
        names, n = np.unique(self.species, return_counts=True)
        return {str(k): int(v) for k, v in zip(names, n)}

    def take(self, index) -> "Atoms":
        """The atoms selected by a boolean mask or index array."""
        return Atoms(self.positions[index], self.species[index])
