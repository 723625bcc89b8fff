"""Simulation: nanoparticle phantoms and HAADF / EDX / EDX-spectrum / EELS forward models with dose
(the shared physics is in :mod:`chemtomo.physics`).

Names load lazily so that ``import chemtomo.simulate`` does no work. Data sets of random phantoms on disk, for
training, are written by :mod:`chemtomo.training.dataset`.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # top level
    "simulate_series": "series", "Acquisition": "series",
    # phantoms
    "phantom_from_spec": "phantoms", "random_particle": "phantoms", "render_phantom": "phantoms",
    "random_spec": "phantoms", "parse_spec": "phantoms", "COMPOSITIONS": "phantoms", "FAMILIES": "sdf",
    # HAADF
    "haadf": "haadf", "haadf_expected": "haadf",
    # EDX
    "edx_expected": "edx", "edx_counts": "edx", "holder_shadow": "edx",
    "spectrum_image": "spectrum", "expected_spectra": "spectrum", "to_exspy": "spectrum",
    # EELS
    "eels_expected_maps": "eels", "eels_expected_spectra": "eels", "detect": "eels",
    # in-situ alloying (interdiffusing core-shell sphere)
    "alloying_series": "alloying",
    # acquisition
    "SweptProjector": "acquisition", "random_shifts": "acquisition",
    "damage_factors": "acquisition", "dose_from_time": "acquisition", "time_from_dose": "acquisition",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
