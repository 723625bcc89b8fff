"""Denoising of EDX/EELS count maps (projections) before reconstruction.

Plain functions, arrays in and out: a count image ``(ny, nu)`` or a stack
``(n_tilts, ny, nu)`` in, float32 expected counts of the same shape out.
``denoise(stack, method, **options)`` dispatches by name over
:data:`~chemtomo.denoise.registry.DENOISERS`. Names load lazily so that
``import chemtomo.denoise`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "denoise": "registry", "resolve_options": "registry", "denoiser_options": "registry", "DENOISERS": "registry",
    "DenoiserInfo": "registry",
    "gaussian": "classical", "median": "classical", "tv": "classical", "bm3d": "classical",
    "choose_sigma": "classical", "choose_tv_weight": "classical", "SIGMA_GRID": "classical",
    "TV_WEIGHT_GRID": "classical",
    "pca": "patch_pca",
    "anscombe": "vst", "inverse_anscombe": "vst", "anscombe_variance": "vst",
    "split_select": "splitting", "split_folds": "splitting",
    "denoise_series": "series",
    "unet": "unet", "n2n": "n2n", "n2n_frames": "n2n",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
