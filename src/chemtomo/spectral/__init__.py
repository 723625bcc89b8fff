"""Spectral processing: X-ray lines, the linear spectrum models (EDX, EELS), EDX elemental maps (window, fit,
regularised, learned), whole-spectrum estimates and detection, quantification, denoising, EELS edge maps, and
maps over a tilt series (written to a folder by :mod:`chemtomo.pipeline.maps`).

Names load lazily so that ``import chemtomo.spectral`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "auto_lines": "lines", "resolve_lines": "lines", "check_line": "lines", "line_components": "lines",
    "check_spectrum_image": "model", "design_matrix": "model", "normal_equations": "model", "fit_range": "model",
    "window_maps": "maps", "fit_maps": "maps", "integration_windows": "maps",
    "cliff_lorimer": "quant", "zeta_factor": "quant", "theory_k_factors": "quant",
    "denoise_pca": "decompose", "pca_rank": "decompose",
    "maps_series": "series", "learned_maps_series": "series", "angles_from_names": "series", "undetected": "series",
    "regularised_maps": "regularised",
    "learned_maps": "learned",
    "line_estimates": "estimates", "significance": "estimates", "detection": "estimates", "DETECTION_Z": "estimates",
    "is_eels": "eels_model", "eels_design_matrix": "eels_model", "edge_detection": "eels_model",
    "eels_maps": "eels", "powerlaw_background": "eels", "fourier_ratio": "eels",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
