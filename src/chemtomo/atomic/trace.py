"""3D atom tracing in an atomic-resolution reconstruction (after Yang et al., Nature 2017).

Rounds of: local maxima of the working volume above a threshold, sub-voxel
3D Gaussian fits of all of them at once, greedy acceptance (highest first,
none closer than a minimum inter-atomic distance to an accepted atom), and
subtraction of the accepted atoms' Gaussians from the working volume, so that
atoms hidden in a neighbour's shoulder surface in the next round. A final
joint refinement fits every atom with its neighbours' Gaussians removed.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from .fit import Peaks, boxes, check_image, fit_gaussians, gaussian_values, local_maxima, render_peaks, suppress, _offsets


def noise_threshold(volume: np.ndarray, k: float = 6.0) -> float:
    """``median + k * 1.4826 MAD`` of the volume: a peak threshold set by the background noise."""
    v = np.asarray(volume, float).ravel()
    med = np.median(v)
    return float(med + k * 1.4826 * np.median(np.abs(v - med)))


def trace_atoms(volume, voxel_size: float, *, min_distance: float = 2.0, threshold: float | None = None,
                radius: int = 2, sigma: float | None = None, max_atoms: int | None = None, rounds: int = 6,
                refine: int = 3, support=None) -> Peaks:
    """Atom positions in a 3D atomic-resolution volume.

    Parameters
    ----------
    volume : ndarray (ny, nz, nx)
        The reconstruction, ``v[y, z, x]``.
    voxel_size : float
        Voxel edge in Angstrom.
    min_distance : float, default 2.0
        No two atoms closer than this, Angstrom.
    threshold : float, optional
        Smallest peak height kept, in the volume's units; by default
        :func:`noise_threshold` (6 robust standard deviations above the median).
        Tracing is meant to be permissive: weak spurious peaks are removed by
        the non-atom class of :func:`~chemtomo.atomic.classify_species`.
    radius : int, default 2
        Fitting box half-width in voxels.
    sigma : float, optional
        Starting Gaussian width in voxels; default ``0.25 * min_distance / voxel_size``.
    max_atoms : int, optional
        Stop once this many atoms are accepted (highest first).
    rounds : int, default 6
        Find-fit-accept-subtract rounds; stops early when a round adds nothing.
    refine : int, default 3
        Joint refinement sweeps (each atom refitted with all others subtracted).
    support : bool ndarray like `volume`, optional
        Voxels where atoms may sit.

    Returns
    -------
    Peaks
        In voxel index coordinates ``(y, z, x)``; see :func:`atom_table` for Angstrom.
    """
    vol = check_image(volume, (3,), "volume")
    if voxel_size <= 0 or min_distance <= 0:
        raise ChemtomoError(f"voxel_size ({voxel_size}) and min_distance ({min_distance}) must be positive Angstrom")
    if support is not None:
        support = np.asarray(support, bool)
        if support.shape != vol.shape:
            raise ChemtomoError(f"support has shape {support.shape}, the volume {vol.shape}; they must match")
    dmin = min_distance / voxel_size
    sigma0 = sigma if sigma is not None else 0.25 * dmin
    threshold = noise_threshold(vol) if threshold is None else float(threshold)
    work = vol.copy()
    found: list[Peaks] = []
    n_found = 0
    for _ in range(rounds):
        peaks = local_maxima(work, threshold)
        if support is not None:
            peaks = peaks[support[tuple(peaks.T)]]
        if not len(peaks):
            break
        fit = fit_gaussians(work, peaks, radius=radius, sigma=sigma0)
        ok = _plausible(fit, vol.shape, threshold)
        fit = fit.take(ok)
        prior = Peaks.concat(found).positions if found else None
        keep = suppress(fit.positions, fit.height, dmin, fixed=prior)
        if max_atoms is not None:
            keep = keep[np.argsort(-fit.height[keep], kind="stable")][: max_atoms - n_found]
        if not len(keep):
            break
        new = fit.take(keep)
        found.append(new)
        n_found += len(new)
        work = np.maximum(work - render_peaks(vol.shape, new), 0.0)
        if max_atoms is not None and n_found >= max_atoms:
            break
    if not found:
        return Peaks(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros(0), np.zeros(0))
    atoms = Peaks.concat(found)
    for _ in range(refine):
        atoms = refine_jointly(vol, atoms, radius=radius)
    return atoms


def _plausible(fit: Peaks, shape, threshold: float) -> np.ndarray:
    inside = np.all((fit.positions >= 0) & (fit.positions <= np.array(shape) - 1), axis=1)
    return inside & (fit.height > 0.5 * threshold) & np.isfinite(fit.positions).all(axis=1)


def refine_jointly(volume: np.ndarray, atoms: Peaks, *, radius: int = 2, background: bool = True) -> Peaks:
    """One sweep of refitting every peak to the image minus all other peaks' Gaussians (Jacobi); 2D or 3D."""
    model = render_peaks(volume.shape, atoms)
    resid_box, base = boxes(volume - model, atoms.positions, radius)
    own = gaussian_values(_offsets(radius, volume.ndim), atoms.positions - base, atoms.height, atoms.sigma)
    fit = fit_gaussians(volume, atoms.positions, radius=radius, sigma=atoms.sigma, data=resid_box + own,
                        background=background)
    moved = np.linalg.norm(fit.positions - atoms.positions, axis=1)
    ok = (moved < radius) & (fit.height > 0)
    return Peaks(np.where(ok[:, None], fit.positions, atoms.positions), np.where(ok, fit.height, atoms.height),
                 np.where(ok[:, None], fit.sigma, atoms.sigma), np.where(ok, fit.background, atoms.background),
                 np.where(ok, fit.rfactor, atoms.rfactor))


def to_angstrom(positions: np.ndarray, voxel_size: float) -> np.ndarray:
    """Voxel index coordinates ``(y, z, x)`` to ``(x, y, z)`` in Angstrom from the centre of voxel (0, 0, 0)."""
    p = np.asarray(positions, float)
    return p[:, [2, 0, 1]] * voxel_size


def to_index(xyz: np.ndarray, voxel_size: float) -> np.ndarray:
    """``(x, y, z)`` in Angstrom to voxel index coordinates ``(y, z, x)``."""
    p = np.asarray(xyz, float) / voxel_size
    return p[:, [1, 2, 0]]
