"""Spectral processing: X-ray lines, EDX elemental maps (window, fit, regularised, learned), quantification,
denoising, EELS edge maps.

Names load lazily so that ``import chemtomo.spectral`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "auto_lines": "lines", "resolve_lines": "lines", "check_line": "lines", "line_components": "lines",
    "window_maps": "maps", "fit_maps": "maps", "integration_windows": "maps", "design_matrix": "maps",
    "cliff_lorimer": "quant", "zeta_factor": "quant", "theory_k_factors": "quant",
    "denoise_pca": "decompose", "pca_rank": "decompose",
    "maps_series": "series", "write_maps": "series", "maps_to_directory": "series", "angles_from_names": "series",
    "regularised_maps": "regularised",
    "learned_maps": "learned", "line_estimates": "learned", "eels_design_matrix": "learned",
    "eels_maps": "eels", "powerlaw_background": "eels", "fourier_ratio": "eels",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
