"""Atomic models of nanoparticles: FCC (random alloy), L1_0-ordered and core-shell.

Positions are in Angstrom as ``(x, y, z)`` rows, in the volume's axes
(``docs/conventions.md``: y along the tilt axis, z the beam at 0 degrees),
centred on the origin until :func:`place` puts them in a volume.
"""

from __future__ import annotations

import numpy as np

from ..core.atoms import Atoms
from ..core.errors import ChemtomoError
from ..physics.counts import as_rng

#: FCC lattice constants in Angstrom (room temperature).
LATTICE = {"Au": 4.078, "Ag": 4.086, "Pt": 3.924, "Pd": 3.891, "Cu": 3.615, "Ni": 3.524, "Al": 4.050}
#: Lattice constant of chemically ordered L1_0 FePt (a, taken cubic), Angstrom.
FEPT_LATTICE = 3.85

_FCC_BASIS = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]])


def fcc_sites(radius: float, lattice: float, *, shape: str = "sphere", truncation: float = 0.8) -> np.ndarray:
    """FCC lattice sites (Angstrom) inside a particle centred on a lattice site.

    Parameters
    ----------
    radius : float
        Particle radius in Angstrom (sphere) or half the distance between
        opposite {100} facets (truncated octahedron).
    lattice : float
        Cubic lattice constant in Angstrom.
    shape : {"sphere", "truncated-octahedron"}, default "sphere"
    truncation : float, default 0.8
        For the truncated octahedron, the {111} facets cut at
        ``|x|+|y|+|z| <= 3 * truncation * radius`` (1.0 leaves the cube; 2/3 the full octahedron).

    Returns
    -------
    sites : ndarray, shape (n, 3)
        Positions x, y, z in Angstrom; ``sites / lattice`` are the fractional coordinates.
    """
    if radius <= 0 or lattice <= 0:
        raise ChemtomoError(f"radius ({radius}) and lattice ({lattice}) must be positive, in Angstrom")
    n = int(np.ceil(radius / lattice)) + 1
    cells = np.stack(np.meshgrid(*(np.arange(-n, n + 1),) * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    sites = ((cells + _FCC_BASIS) * lattice).reshape(-1, 3)
    if shape == "sphere":
        keep = np.linalg.norm(sites, axis=1) <= radius
    elif shape == "truncated-octahedron":
        keep = (np.abs(sites).max(axis=1) <= radius) & (np.abs(sites).sum(axis=1) <= 3 * truncation * radius)
    else:
        raise ChemtomoError(f"shape {shape!r} is not known; use 'sphere' or 'truncated-octahedron'")
    return sites[keep]


def radius_for(n_atoms: int, lattice: float) -> float:
    """Radius (Angstrom) of the FCC sphere that holds about `n_atoms` atoms (4 per cubic cell)."""
    return float((3 * n_atoms * lattice**3 / (16 * np.pi)) ** (1 / 3))


def random_rotation(rng=None) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix."""
    q = as_rng(rng).normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _rotate(atoms: Atoms, rotation, rng) -> Atoms:
    if rotation is None:
        return atoms
    r = random_rotation(rng) if isinstance(rotation, str) and rotation == "random" else np.asarray(rotation, float)
    if r.shape != (3, 3) or not np.allclose(r @ r.T, np.eye(3), atol=1e-6):
        raise ChemtomoError("rotation must be 'random', None or a 3x3 orthogonal matrix")
    return Atoms(atoms.positions @ r.T, atoms.species)


def fcc_alloy(radius: float, fractions: dict[str, float], *, lattice: float | None = None, shape: str = "sphere",
              rotation="random", rng=None) -> Atoms:
    """A chemically disordered FCC (A1) particle: each site drawn from `fractions`.

    Parameters
    ----------
    radius : float
        Radius in Angstrom (see :func:`fcc_sites`).
    fractions : dict
        Atomic fraction per element, e.g. ``{"Fe": 0.3, "Pt": 0.7}``; normalised.
    lattice : float, optional
        Lattice constant (Angstrom); the fraction-weighted mean of :data:`LATTICE` if omitted.
    shape : str, default "sphere"
    rotation : "random", None or (3, 3) array, default "random"
    rng : int or Generator, optional

    Examples
    --------
    >>> a = fcc_alloy(8.0, {"Au": 0.5, "Ag": 0.5}, rotation=None, rng=0)
    >>> len(a), sorted(a.counts())
    (135, ['Ag', 'Au'])
    """
    rng = as_rng(rng)
    names = list(fractions)
    p = np.array([fractions[k] for k in names], float)
    if not names or (p < 0).any() or p.sum() <= 0:
        raise ChemtomoError(f"fractions {fractions} must name at least one element with non-negative weights")
    p = p / p.sum()
    if lattice is None:
        missing = [k for k in names if k not in LATTICE]
        if missing:
            raise ChemtomoError(f"no lattice constant for {missing}; pass lattice= in Angstrom")
        lattice = float(sum(w * LATTICE[k] for k, w in zip(names, p)))
    sites = fcc_sites(radius, lattice, shape=shape)
    species = np.array(names)[rng.choice(len(names), size=len(sites), p=p)]
    return _rotate(Atoms(sites, species), rotation, rng)


def l10_particle(radius: float, species=("Fe", "Pt"), *, lattice: float = FEPT_LATTICE, order: float = 1.0,
                 shape: str = "sphere", rotation="random", rng=None) -> Atoms:
    """An L1_0-ordered particle (alternating (001) planes of two species), e.g. FePt.

    Parameters
    ----------
    radius : float
        Radius in Angstrom.
    species : (str, str), default ("Fe", "Pt")
        The species of the z = 0 and z = a/2 planes of the conventional cell.
    lattice : float, default 3.85
        Lattice constant in Angstrom (the small tetragonality is ignored).
    order : float, default 1
        Long-range order parameter: each site carries its sublattice's species
        with probability ``(1 + order) / 2``; 0 gives a random A1 alloy.
    shape, rotation, rng
        As for :func:`fcc_alloy`.
    """
    if not 0.0 <= order <= 1.0:
        raise ChemtomoError(f"order must lie in [0, 1], got {order}")
    rng = as_rng(rng)
    sites = fcc_sites(radius, lattice, shape=shape)
    sub = np.rint(2 * sites[:, 2] / lattice).astype(int) % 2          # 0: z on integer planes, 1: half planes
    swap = rng.random(len(sites)) < (1 - order) / 2
    names = np.array(species)[np.where(swap, 1 - sub, sub)]
    return _rotate(Atoms(sites, names), rotation, rng)


def core_shell_particle(radius: float, core_radius: float, *, core: str = "Au", shell: str = "Ag",
                        lattice: float | None = None, shape: str = "sphere", rotation="random", rng=None) -> Atoms:
    """An epitaxial core-shell FCC particle (e.g. Au@Ag): sites within `core_radius` carry the core species."""
    if not 0 < core_radius < radius:
        raise ChemtomoError(f"core_radius ({core_radius}) must lie between 0 and radius ({radius})")
    lattice = lattice if lattice is not None else LATTICE.get(shell)
    if lattice is None:
        raise ChemtomoError(f"no lattice constant for {shell}; pass lattice= in Angstrom")
    sites = fcc_sites(radius, lattice, shape=shape)
    names = np.where(np.linalg.norm(sites, axis=1) <= core_radius, core, shell)
    return _rotate(Atoms(sites, names), rotation, as_rng(rng))


def place(atoms: Atoms, shape, voxel_size: float, *, margin: float = 4.0) -> Atoms:
    """Centre `atoms` in a volume of `shape` ``(ny, nz, nx)`` voxels.

    Returns the atoms with positions measured from the centre of voxel
    ``(0, 0, 0)`` in Angstrom, the convention of :func:`chemtomo.atomic.trace_atoms`.
    Raises if an atom comes closer than `margin` Angstrom to the volume's edge.
    """
    ny, nz, nx = shape
    centre = np.array([(nx - 1) / 2, (ny - 1) / 2, (nz - 1) / 2]) * voxel_size
    pos = atoms.positions - atoms.positions.mean(axis=0) + centre
    upper = (np.array([nx, ny, nz]) - 1) * voxel_size - margin
    if (pos < margin).any() or (pos > upper).any():
        extent = np.ptp(atoms.positions, axis=0) + 2 * margin
        raise ChemtomoError(f"the particle ({extent.round(1).tolist()} A with margins) does not fit a volume of "
                            f"{list(shape)} voxels of {voxel_size} A; enlarge the volume or the voxels")
    return Atoms(pos, atoms.species)
