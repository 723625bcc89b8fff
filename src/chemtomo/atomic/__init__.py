"""Atomic-resolution analysis: 3D atom tracing and species classification, 2D atom counting.

* :func:`trace_atoms` and :func:`classify_species` (Yang et al. 2017 route),
  joined by :func:`atoms_from_volume`, turn an atomic-resolution
  reconstruction into a table of atoms (x, y, z in Angstrom, species);
* :func:`fit_columns` and :func:`count_atoms` (van den Bos et al. 2016 route)
  count atoms per column in an atomic-resolution HAADF image;
* :mod:`.models` and :mod:`.simulate` build FCC, L1_0 and core-shell atomic
  models and their noisy HAADF tilt series, so every step can be scored
  (:func:`score_atoms`).
"""

from __future__ import annotations

import numpy as np

from ..core.atoms import Atoms
from ..core.errors import ChemtomoError
from .classify import NON_ATOM, check_species, classify_species, integrated_intensity
from .counting import (column_cross_sections, column_significance, count_atoms, fit_columns, lensing_cross_section,
                       noise_variance, pure_column_scs, simulate_columns, unscramble_columns)
from .fit import Peaks, fit_gaussians, local_maxima
from .mixture import Mixture, fit_mixture, select_mixture
from .models import core_shell_particle, fcc_alloy, l10_particle, place, radius_for
from .score import match_atoms, score_atoms
from .simulate import atomic_tilt_series, project_atoms, render_atoms
from .trace import noise_threshold, to_angstrom, to_index, trace_atoms


def atoms_from_volume(volume, voxel_size: float, species, *, threshold: float | None = None,
                      relative_threshold: float = 0.01, min_distance: float = 2.0, keep_non_atoms: bool = False,
                      series=None, angles=None, refine_iterations: int = 10, **trace_options) -> tuple[Atoms, dict]:
    """Trace and classify the atoms of an atomic-resolution volume.

    Parameters
    ----------
    volume : ndarray (ny, nz, nx)
        Reconstruction ``v[y, z, x]``.
    voxel_size : float
        Voxel edge in Angstrom.
    species : sequence of str
        Distinct element symbols from the lightest to the heaviest (their
        Z-contrast order; class 0, the dimmest, is the first); repeated or
        unknown symbols and any other order are refused (:func:`check_species`).
    threshold : float, optional
        Peak threshold in the volume's units; default `relative_threshold`
        times the volume's maximum (tracing is permissive, the non-atom class
        removes weak spurious peaks).
    min_distance : float, default 2.0
        Smallest inter-atomic distance, Angstrom.
    keep_non_atoms : bool, default False
        Keep the non-atom peaks in the result with species ``"X"``.
    series, angles : array (n_tilts, ny, nu) and array (n_tilts,), optional
        The tilt series the volume was reconstructed from (pixel = voxel) and
        its angles in degrees: the atoms are then refined against it
        (:func:`~chemtomo.atomic.refine.refine_atoms`, `refine_iterations`
        Gauss-Newton sweeps), which removes the reconstruction's bias from
        the positions.
    **trace_options
        Passed to :func:`trace_atoms` (radius, rounds, refine, support, max_atoms).

    Returns
    -------
    atoms : Atoms
        Positions x, y, z in Angstrom from the centre of voxel (0, 0, 0).
    columns : dict
        Per-atom ``intensity`` (3x3x3 integral, neighbours removed), ``height``,
        ``sigma`` (Angstrom, x y z), ``rfactor`` of the fit; and ``info``.
    """
    species = check_species(species)
    vol = np.asarray(volume, dtype=np.float64)
    thr = threshold if threshold is not None else relative_threshold * float(np.max(vol))
    peaks = trace_atoms(vol, voxel_size, min_distance=min_distance, threshold=thr, **trace_options)
    if len(peaks) < 4 * (len(species) + 1):
        raise ChemtomoError(f"only {len(peaks)} peaks above the threshold {thr:.3g}; lower --threshold or check "
                            "that the volume has atomic resolution at this voxel size")
    labels, info = classify_species(vol, peaks, len(species))
    keep = np.ones(len(peaks), bool) if keep_non_atoms else labels != NON_ATOM
    names = np.array(species + ["X"])[np.where(labels == NON_ATOM, len(species), labels)]
    p = peaks.take(keep)
    atoms = Atoms(to_angstrom(p.positions, voxel_size), names[keep])
    columns = {"intensity": info["intensity"][keep], "height": p.height,
               "sigma": p.sigma[:, [2, 0, 1]] * voxel_size, "rfactor": p.rfactor}
    summary = {"threshold": thr, "peaks": len(peaks), "non_atoms": info["non_atoms"], "counts": atoms.counts(),
               "template_sweeps": info["sweeps"], "species_means": info["means"].tolist()}
    if series is not None:
        if angles is None:
            raise ChemtomoError("refining against a tilt series needs its angles")
        from ..core.geometry import TiltGeometry
        from .refine import refine_atoms

        series = np.asarray(series, dtype=np.float64)
        geom = TiltGeometry(angles=angles, volume_shape=vol.shape, n_u=series.shape[-1])
        ref = refine_atoms(atoms.positions / voxel_size, p.volume, series, geom,
                           sigma=float(np.median(p.sigma[:, [0, 2]])), iterations=refine_iterations)
        atoms = Atoms(ref["positions"] * voxel_size, atoms.species)
        columns["amplitude"] = ref["amplitudes"]
        summary["refinement"] = {"misfit": list(ref["misfit"]), "sigma_A": ref["sigma"] * voxel_size}
    return atoms, {**columns, "info": summary}


__all__ = [
    "Atoms", "Peaks", "Mixture", "NON_ATOM", "atoms_from_volume", "trace_atoms", "classify_species", "check_species",
    "integrated_intensity", "fit_gaussians", "local_maxima", "noise_threshold", "to_angstrom", "to_index",
    "fit_mixture", "select_mixture", "l10_particle", "fcc_alloy", "core_shell_particle", "place", "radius_for",
    "project_atoms", "render_atoms", "atomic_tilt_series", "match_atoms", "score_atoms",
    "fit_columns", "column_cross_sections", "count_atoms", "lensing_cross_section", "simulate_columns",
    "unscramble_columns", "pure_column_scs", "noise_variance", "column_significance",
]
