"""Training of the project's networks and the synthetic data they learn from.

* :mod:`.denoise`: the U-Net count-map denoiser (``python -m chemtomo.training.denoise``);
* :mod:`.spectral`: the learned spectral extractor (``python -m chemtomo.training.spectral``);
* :mod:`.dataset`: data sets of random phantoms on disk (Zarr).

Training draws its examples from :mod:`chemtomo.simulate`; the networks and the loop are in
:mod:`chemtomo.nn`. Names load lazily so that ``import chemtomo.training`` does no work.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "train_unet": "denoise", "train_extractor": "spectral",
    "write_dataset": "dataset", "read_dataset": "dataset", "PhantomDataset": "dataset",
}


__getattr__, __all__ = lazy_exports(__name__, _LAZY)
