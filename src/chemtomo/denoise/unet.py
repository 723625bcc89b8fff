"""Supervised 2D U-Net denoiser of count maps, trained on simulated particles (issue 6).

A small U-Net (three levels, 16-32-64 channels, two poolings, about
117 k parameters) maps one Poisson count image to its expected counts. It is made
dose-aware by normalisation: each image is divided by its mean count ``m``
(the network sees ``counts / m``) and ``log m`` is a second, constant input
channel, so one network covers 0.05-20 counts per pixel; its output, a
non-negative map on the ``counts / m`` scale (softplus), is multiplied back by
``m``. An image without counts comes out as zeros.

The shipped weights (``weights/unet_edx.pt``, a plain ``state_dict``, with
``weights/unet_edx.json`` holding the architecture, training configuration,
data-set seeds and validation scores) were trained by
:func:`chemtomo.denoise.train.train_unet`; see docs/denoise.md. Loading them
reads files only, never the network.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.errors import ChemtomoError, DataError, ShapeError
from ._common import as_stack, like_input

#: The shipped weights and their JSON description (architecture, training, validation).
WEIGHTS = Path(__file__).with_name("weights") / "unet_edx.pt"
#: The shipped weights of the U-Net with a HAADF guide channel (used when a guide is given).
GUIDED_WEIGHTS = Path(__file__).with_name("weights") / "unet_edx_haadf.pt"
#: Architecture used when a weights file has no JSON next to it.
DEFAULT_ARCH = {"channels": [16, 32, 64], "in_channels": 2}
#: Smallest mean count treated as a map with counts (below it the output is zeros).
_TINY = 1e-8


class UNet(nn.Module):
    """2D U-Net: ``len(channels) - 1`` poolings, two 3x3 convolutions + ReLU per level, skip connections.

    Input ``(batch, in_channels, ny, nu)`` with ny, nu multiples of ``2 ** levels``;
    output ``(batch, out_channels, ny, nu)``.

    Parameters
    ----------
    channels : sequence of int, default (16, 32, 64)
        Channels per level, finest first; the last is the bottleneck.
    in_channels : int, default 2
        Normalised counts and the log mean count.
    out_channels : int, default 1
        Output maps.
    softplus : bool, default True
        Make the outputs non-negative (softplus); else they are returned as they are.
    """

    def __init__(self, channels=(16, 32, 64), in_channels: int = 2, out_channels: int = 1, softplus: bool = True):
        super().__init__()
        ch = [int(c) for c in channels]
        self.levels = len(ch) - 1

        def block(a, b):
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(b, b, 3, padding=1), nn.ReLU(inplace=True))

        self.down = nn.ModuleList()
        prev = in_channels
        for c in ch[:-1]:
            self.down.append(block(prev, c))
            prev = c
        self.bottom = block(prev, ch[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        prev = ch[-1]
        for c in reversed(ch[:-1]):
            self.up.append(nn.ConvTranspose2d(prev, c, 2, stride=2))
            self.dec.append(block(2 * c, c))
            prev = c
        self.head = nn.Conv2d(prev, int(out_channels), 1)
        self.softplus = bool(softplus)

    def forward(self, x):
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, s in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), s], dim=1))
        x = self.head(x)
        return F.softplus(x) if self.softplus else x


def normalise(counts: torch.Tensor, guide: torch.Tensor | None = None):
    """Network input for count images ``(b, ny, nu)``: ``(b, c, ny, nu)`` and the mean counts ``m`` ``(b, 1, 1)``.

    Channel 0 is ``counts / m``, channel 1 the constant ``log m``; ``m`` is the
    image's mean count (clamped below at 1e-8). With a `guide` ``(b, ny, nu)``
    (a HAADF image of the same field) channel 2 is the guide over its mean.
    """
    m = counts.mean(dim=(-2, -1), keepdim=True).clamp_min(_TINY)
    chans = [counts / m, torch.log(m).expand_as(counts)]
    if guide is not None:
        chans.append(guide / guide.abs().mean(dim=(-2, -1), keepdim=True).clamp_min(_TINY))
    return torch.stack(chans, dim=1), m


def build(arch: dict | None = None) -> UNet:
    """A U-Net from an architecture dict (``channels``, ``in_channels``, optional ``out_channels``, ``softplus``), untrained."""
    a = {**DEFAULT_ARCH, **(arch or {})}
    return UNet(a["channels"], a["in_channels"], a.get("out_channels", 1), a.get("softplus", True))


_CACHE: dict = {}


def load_model(weights=None, device=None) -> UNet:
    """The U-Net with weights from `weights` (a path, a ``state_dict`` or a UNet; default the shipped ones), eval mode.

    The architecture is read from the JSON next to a weights file (same name,
    ``.json``) if there is one. Files only: nothing is downloaded.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(weights, UNet):
        return weights.to(device).eval()
    if isinstance(weights, dict):
        model = build()
        model.load_state_dict(weights)
        return model.to(device).eval()
    path = Path(weights) if weights is not None else WEIGHTS
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else None, str(device))
    if key in _CACHE:
        return _CACHE[key]
    if not path.exists():
        raise ChemtomoError(f"U-Net weights {path} not found; train them (`python -m chemtomo.denoise.train` for "
                            "the denoiser, `python -m chemtomo.spectral.train` for spectral maps) or pass weights=PATH")
    meta = path.with_suffix(".json")
    arch = json.loads(meta.read_text())["architecture"] if meta.exists() else None
    model = build(arch)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    _CACHE[key] = model
    return model


def initial_model(init, device) -> UNet:
    """A trainable U-Net to start fine-tuning from: ``"unet"`` (a copy of the shipped one), ``"scratch"`` or a weights file."""
    if init == "scratch":
        return build().to(device)
    if init != "unet" and not Path(str(init)).exists():
        raise ChemtomoError(f"init must be 'unet' (the shipped weights), 'scratch' or a weights file, got {init!r}")
    return copy.deepcopy(load_model(None if init == "unet" else init, device))  # the loaded one is cached


def apply(model: UNet, counts: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
    """Expected counts for count images ``(b, ny, nu)`` (any size: reflect-padded to a multiple of ``2 ** levels``).

    `guide` ``(b, ny, nu)`` is required by a network with a guide channel (3 inputs) and refused otherwise.
    """
    if (guide is not None) != (architecture(model)["in_channels"] == 3):
        raise ChemtomoError("this network was trained with a guide (HAADF) channel: pass guide=" if guide is None
                            else "this network has no guide channel; leave guide out or train one with n2n(guide=...)")
    x, m = normalise(counts, guide)
    y = forward_any_size(model, x)[:, 0]
    return torch.where(m > _TINY, y * m, torch.zeros_like(y))


def forward_any_size(model: UNet, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for inputs ``(b, c, ny, nu)`` of any size: reflect-padded to a multiple of
    ``2 ** levels`` (replicate where the image is too small to reflect) and cropped back."""
    ny, nu = x.shape[-2:]
    k = 2 ** model.levels
    py, pu = (-ny) % k, (-nu) % k
    if py or pu:
        mode = "reflect" if py < ny and pu < nu else "replicate"
        x = F.pad(x, (pu // 2, pu - pu // 2, py // 2, py - py // 2), mode=mode)
    return model(x)[..., py // 2: py // 2 + ny, pu // 2: pu // 2 + nu]


def apply_batched(model: UNet, counts: torch.Tensor, guide: torch.Tensor | None = None, *,
                  batch: int = 8) -> torch.Tensor:
    """:func:`apply` over a stack ``(n, ny, nu)``, `batch` images at a time on the model's device.

    The result lands on the device of `counts`, so the model's device holds one batch at a time.
    """
    dev = next(model.parameters()).device
    out = torch.empty_like(counts)
    for i in range(0, counts.shape[0], batch):
        g = None if guide is None else guide[i:i + batch].to(dev)
        out[i:i + batch] = apply(model, counts[i:i + batch].to(dev), g).to(counts.device)
    return out


def save_weights(model: UNet, path, info: dict) -> Path:
    """Write `model`'s ``state_dict`` to `path` (``.pt``) and `info` as the JSON next to it, each atomically.

    :func:`load_model` reads the pair back (the architecture from ``info["architecture"]``).
    """
    from ..io.write import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        torch.save(model.state_dict(), tmp)
    with atomic_write(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=1) + "\n")
    return path


def add_inputs(model: UNet, n: int = 1) -> UNet:
    """A copy of `model` with `n` more inputs (appended last) whose weights start at zero: same output until trained."""
    arch = {**architecture(model), "in_channels": architecture(model)["in_channels"] + int(n)}
    new = build(arch).to(next(model.parameters()).device)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    w = state["down.0.0.weight"]
    state["down.0.0.weight"] = torch.cat([w, w.new_zeros((w.shape[0], int(n)) + w.shape[2:])], dim=1)
    new.load_state_dict(state)
    return new


def add_guide_channel(model: UNet) -> UNet:
    """A copy of a 2-input `model` with a third (guide) input whose weights start at zero (:func:`add_inputs`)."""
    return add_inputs(model, 1)


def unet(stack, *, guide=None, weights=None, device=None, batch: int = 8) -> np.ndarray:
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
    g = as_guide(guide, x.shape)
    model = load_model(weights if weights is not None else (GUIDED_WEIGHTS if g is not None else None), device)
    with torch.inference_mode():
        gt = None if g is None else torch.as_tensor(g, dtype=torch.float32)
        out = apply_batched(model, torch.as_tensor(x, dtype=torch.float32), gt, batch=int(batch)).numpy()
    return like_input(out, stack)


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


def architecture(model: UNet) -> dict:
    """The architecture dict of `model` (``channels``, ``in_channels``, ``out_channels``, ``softplus``), as :func:`build` takes it."""
    return {"channels": [blk[0].out_channels for blk in model.down] + [model.bottom[0].out_channels],
            "in_channels": model.down[0][0].in_channels, "out_channels": model.head.out_channels,
            "softplus": model.softplus}


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def psnr(estimate, expected) -> float:
    """PSNR (dB) of `estimate` against `expected`, data range the largest expected value (as bench_denoise.py)."""
    e, t = np.asarray(estimate, np.float64), np.asarray(expected, np.float64)
    mse = float(np.mean((e - t) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(float(t.max()) ** 2 / mse)
