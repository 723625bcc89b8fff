"""Simulation: nanoparticle phantoms and HAADF / EDX / EDX-spectrum / EELS physics with dose.

Names load lazily so that ``import chemtomo.simulate`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    # top level
    "simulate_series": "series", "Acquisition": "series",
    # phantoms and data sets
    "phantom_from_spec": "phantoms", "random_particle": "phantoms", "render_phantom": "phantoms",
    "random_spec": "phantoms", "parse_spec": "phantoms", "COMPOSITIONS": "phantoms", "FAMILIES": "sdf",
    "write_dataset": "dataset", "read_dataset": "dataset", "PhantomDataset": "dataset",
    # HAADF
    "haadf": "haadf", "haadf_expected": "haadf", "number_density": "haadf",
    # EDX
    "EDXDetector": "edx", "edx_expected": "edx", "edx_counts": "edx", "line_energy": "edx",
    "xray_cross_section": "edx", "holder_shadow": "edx",
    "spectrum_image": "spectrum", "expected_spectra": "spectrum", "energy_axis": "spectrum", "to_exspy": "spectrum",
    # EELS
    "eels_expected_maps": "eels", "eels_expected_spectra": "eels", "edge_onset": "eels", "detect": "eels",
    # noise
    "poisson": "noise", "gaussian": "noise", "split_counts": "noise", "as_rng": "noise",
    # acquisition
    "SweptProjector": "acquisition", "random_shifts": "acquisition", "apply_shifts": "acquisition",
    "damage_factors": "acquisition", "dose_from_time": "acquisition", "time_from_dose": "acquisition",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
