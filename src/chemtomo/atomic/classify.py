"""Species classification of traced atoms (after Yang et al. 2017).

1. Integrate the reconstruction over a small box around each atom.
2. Fit a Gaussian mixture to these intensities, one component per species;
   peaks far below the lightest species form the "non-atom" class.
3. Refine: average a template box per species, reassign every atom (not the
   non-atoms) to the template at the smallest L1 distance, repeat until no
   atom changes class. Boxes are read with the neighbours' fitted Gaussians
   removed, so that a bright neighbour's tail does not decide the class.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..core.names import ELEMENTS
from .fit import Peaks, _offsets, boxes, check_image, gaussian_values, render_peaks
from .mixture import fit_mixture

#: Label of the non-atom class.
NON_ATOM = -1


def check_species(species) -> list:
    """`species` (a sequence or a comma-separated string) as a list of element symbols, lightest first, or an error.

    The classes of :func:`classify_species` are ordered by intensity, and in
    HAADF (Z-contrast, ``Z^1.7``) intensity grows with the atomic number: class
    0 is the lightest element. So the names must be distinct element symbols
    in increasing atomic number; any other order would swap the labels
    (``Pt,Fe`` would call every Pt atom Fe) and is refused.
    """
    parts = species.split(",") if isinstance(species, str) else [str(s) for s in species]
    names = [n.strip() for n in parts if n.strip()]
    if not names:
        raise ChemtomoError("name at least one species, lightest first, e.g. Fe,Pt")
    unknown = [n for n in names if n not in ELEMENTS]
    if unknown:
        raise ChemtomoError(f"unknown element {unknown[0]!r} in species {','.join(names)}; "
                            "use element symbols such as Fe,Pt")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ChemtomoError(f"species {','.join(names)} names {repeated[0]} twice; give each element once")
    z = [ELEMENTS.index(n) + 1 for n in names]
    if any(b <= a for a, b in zip(z, z[1:])):
        right = ",".join(n for _, n in sorted(zip(z, names)))
        raise ChemtomoError(f"species {','.join(names)} are not ordered lightest to heaviest (Z-contrast order); "
                            f"give {right}")
    return names


def isolated_boxes(volume, atoms, half_width: int) -> np.ndarray:
    """Boxes ``(n, (2 half_width + 1)^3)`` around each atom with the other atoms' fitted Gaussians removed.

    `atoms` is a :class:`~chemtomo.atomic.fit.Peaks` (as traced) or an array of
    positions ``(n, 3)``; plain positions give the raw boxes.
    """
    vol = np.asarray(volume, float)
    if not isinstance(atoms, Peaks):
        return boxes(vol, np.asarray(atoms, float).reshape(-1, 3), half_width)[0]
    resid, base = boxes(vol - render_peaks(vol.shape, atoms), atoms.positions, half_width)
    own = gaussian_values(_offsets(half_width, 3), atoms.positions - base, atoms.height, atoms.sigma)
    return resid + own


def integrated_intensity(volume, atoms, *, half_width: int = 1) -> np.ndarray:
    """Sum over the ``(2 half_width + 1)^3`` box at each atom, neighbours removed (see :func:`isolated_boxes`)."""
    return isolated_boxes(volume, atoms, half_width).sum(axis=1)


def classify_species(volume, atoms, n_species: int = 2, *, half_width: int = 1, template_half_width: int = 2,
                     non_atom: bool = True, non_atom_sds: float = 4.0, non_atom_fraction: float = 0.25,
                     iterations: int = 50) -> tuple[np.ndarray, dict]:
    """Class of each traced atom: 0 .. n_species - 1 from the lightest, or :data:`NON_ATOM`.

    Parameters
    ----------
    volume : ndarray (ny, nz, nx)
    atoms : Peaks or array (n, 3)
        Traced atoms (:func:`~chemtomo.atomic.trace_atoms`), whose fitted
        Gaussians let every box be read with its neighbours removed; or bare
        positions in voxel index coordinates ``(y, z, x)``.
    n_species : int, default 2
        Number of species (Z-contrast orders them: lightest has the lowest intensity).
    half_width : int, default 1
        Integration box half-width in voxels (3x3x3).
    template_half_width : int, default 2
        Template box half-width in voxels (5x5x5).
    non_atom : bool, default True
        Keep a non-atom class: peaks whose intensity lies more than
        `non_atom_sds` standard deviations below the lightest species' mean, or
        below `non_atom_fraction` of that mean (whichever is higher), the
        mixture being refitted without them until the split is stable.
    iterations : int, default 50
        Most template reassignment sweeps.

    Returns
    -------
    labels : int array (n,)
    info : dict
        ``intensity`` (n,), the mixture's ``means`` and ``sds``, ``changed`` (atoms
        moved by the template step), ``sweeps``.
    """
    vol = check_image(volume, (3,), "volume")
    pos = atoms.positions if isinstance(atoms, Peaks) else np.asarray(atoms, float).reshape(-1, 3)
    if n_species < 1:
        raise ChemtomoError("n_species must be at least 1")
    if len(pos) < 4 * (n_species + 1):
        raise ChemtomoError(f"{len(pos)} atoms are too few to classify into {n_species} species; trace more")
    inten = integrated_intensity(vol, atoms, half_width=half_width)
    atom = np.ones(len(pos), bool)
    for _ in range(20):
        mix = fit_mixture(inten[atom], n_species)
        floor = max(mix.means[0] - non_atom_sds * mix.sds[0], non_atom_fraction * mix.means[0])
        new = inten >= floor if non_atom else np.ones(len(pos), bool)
        if (new == atom).all():
            break
        atom = new
    labels = np.where(atom, mix.predict(inten), NON_ATOM)
    tpl = isolated_boxes(vol, atoms, template_half_width)
    classes = np.arange(n_species)
    changed = 0
    sweep = 0
    for sweep in range(1, iterations + 1):
        present = [c for c in classes if (labels == c).any()]
        templates = np.stack([tpl[labels == c].mean(axis=0) for c in present])
        dist = np.abs(tpl[atom, None, :] - templates[None]).sum(axis=-1)
        new = labels.copy()
        new[atom] = np.asarray(present)[np.argmin(dist, axis=1)]
        moved = int((new != labels).sum())
        labels = new
        changed += moved
        if moved == 0:
            break
    return labels, {"intensity": inten, "means": mix.means, "sds": mix.sds, "non_atoms": int((labels == NON_ATOM).sum()),
                    "changed": changed, "sweeps": sweep}
