"""Quantification of reconstructed volumes: HAADF composition unmixing, diffusion fits,
alloying over a time series, particle segmentation,
composition, shell thickness, profiles.

Names load lazily so that ``import chemtomo.quantify`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "particle_mask": "haadf", "calibrate": "haadf", "unmix": "haadf", "haadf_quant": "haadf",
    "alloying_index": "haadf",
    "diffuse": "diffusion", "fit_diffusion": "diffusion",
    "fit_alloying": "alloying", "radial_fraction": "alloying", "shell_profile": "alloying",
    "segment_particles": "segment", "element_masks": "segment", "Particles": "segment",
    "shell_thickness": "shell", "ShellThickness": "shell",
    "composition": "composition", "core_shell_regions": "composition", "atomic_weight": "composition",
    "split_uncertainty": "uncertainty", "particles_from_labels": "segment",
    "quantify_volumes": "particles",
    "radial_profile": "profiles", "line_profile": "profiles", "interface_width": "profiles",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
