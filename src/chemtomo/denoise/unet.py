"""Supervised 2D U-Net denoiser of count maps, trained on simulated particles (issue 6).

A small U-Net (:mod:`chemtomo.nn.unet`: three levels, 16-32-64 channels, two
poolings, about 117 k parameters) maps one Poisson count image to its expected
counts. It is made dose-aware by normalisation (:func:`chemtomo.nn.unet.apply`):
each image is divided by its mean count ``m`` and ``log m`` is a second,
constant input channel, so one network covers 0.05-20 counts per pixel.

The shipped weights (``weights/unet_edx.pt``, a plain ``state_dict``, with
``weights/unet_edx.json`` holding the architecture, training configuration,
data-set seeds and validation scores) were trained by
:func:`chemtomo.training.denoise.train_unet`; see docs/denoise.md. Loading them
reads files only, never the network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import ChemtomoError, DataError, ShapeError
from ..nn.unet import UNet, apply_batched, initial_model, load_model
from ._common import as_stack, like_input

#: The shipped weights and their JSON description (architecture, training, validation).
WEIGHTS = Path(__file__).with_name("weights") / "unet_edx.pt"
#: The shipped weights of the U-Net with a HAADF guide channel (used when a guide is given).
GUIDED_WEIGHTS = Path(__file__).with_name("weights") / "unet_edx_haadf.pt"


def unet(stack, *, guide=None, weights=None, device=None, batch: int = 8, augment: bool = False) -> np.ndarray:
    """Denoise count maps with the supervised U-Net trained on simulated EDX particles.

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Counts, >= 0; never modified. Any image size (padded and cropped back).
    guide : array_like, shape of `stack`, optional
        HAADF image(s) of the same field (any scale: each is divided by its
        mean), for weights trained with a guide channel; by default the shipped
        guided network ``unet_edx_haadf.pt`` then runs.
    weights : path, optional
        A ``state_dict`` file (with its JSON next to it); default the shipped
        ``chemtomo/denoise/weights/unet_edx.pt`` (``unet_edx_haadf.pt`` with a guide).
    device : str, optional
        Torch device; default CUDA when available, else the CPU.
    batch : int, default 8
        Images per forward pass.
    augment : bool, default False
        Average the network's outputs over the 8 flips and quarter turns of each image (test-time
        augmentation; the network was trained with these): a few per cent lower error, 8 times the time.

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts, >= 0.

    Raises
    ------
    ShapeError, DataError
        For a stack that is not a count image or stack.
    ChemtomoError
        If the weights file is missing or `batch` is not a positive integer.
    """
    x = as_stack(stack)
    if not (isinstance(batch, (int, np.integer)) and batch > 0):
        raise ChemtomoError(f"batch must be a positive number of images, got {batch!r}")
    if not isinstance(augment, (bool, np.bool_)):
        raise ChemtomoError(f"augment must be true or false, got {augment!r}")
    g = as_guide(guide, x.shape)
    model = load_model(weights if weights is not None else (GUIDED_WEIGHTS if g is not None else WEIGHTS), device)
    xt = torch.as_tensor(x, dtype=torch.float32)
    gt = None if g is None else torch.as_tensor(np.ascontiguousarray(g), dtype=torch.float32)
    out = torch.zeros_like(xt)
    views = [(k, flip) for k in range(4) for flip in (False, True)] if augment else [(0, False)]
    with torch.inference_mode():
        for k, flip in views:  # each image turned k quarter turns, then mirrored; the output turned back
            def turn(a, k=k, flip=flip):
                a = torch.rot90(a, k, dims=(1, 2)) if k else a
                return (torch.flip(a, dims=(2,)) if flip else a).contiguous()
            y = apply_batched(model, turn(xt), None if gt is None else turn(gt), batch=int(batch))
            y = torch.flip(y, dims=(2,)) if flip else y
            out += torch.rot90(y, -k, dims=(1, 2)) if k else y
    return like_input((out / len(views)).numpy(), stack)


def initial_denoiser(init, device) -> UNet:
    """A trainable denoising U-Net to fine-tune: ``"unet"`` (a copy of the shipped :data:`WEIGHTS`),
    ``"scratch"`` (untrained) or a weights file (:func:`chemtomo.nn.unet.initial_model`).

    Raises
    ------
    ChemtomoError
        If `init` is none of these.
    """
    if init != "unet" and init != "scratch" and not Path(str(init)).exists():
        raise ChemtomoError(f"init must be 'unet' (the shipped weights), 'scratch' or a weights file, got {init!r}")
    return initial_model(WEIGHTS if init == "unet" else init, device)


def as_guide(guide, shape) -> np.ndarray | None:
    """A guide image or stack checked against the count stack's `shape` ``(n, ny, nu)``; one image serves all."""
    if guide is None:
        return None
    g = np.asarray(guide, dtype=np.float64)
    if g.shape == shape[1:]:
        g = np.broadcast_to(g, shape)
    if g.shape != tuple(shape):
        raise ShapeError(f"guide must have the shape of the count maps {tuple(shape)} (or one image {tuple(shape[1:])}), "
                         f"got {g.shape}")
    if not np.isfinite(g).all():
        raise DataError("guide contains NaN or infinite values")
    return g
