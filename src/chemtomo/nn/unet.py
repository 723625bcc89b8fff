"""The project's 2D U-Net: architecture, weights files, and its use on count images of any size.

One network serves the count-map denoiser (:mod:`chemtomo.denoise.unet`, :func:`chemtomo.denoise.n2n`),
view synthesis (:mod:`chemtomo.views`) and the learned spectral extractor
(:mod:`chemtomo.spectral.learned`). A weights file is a plain ``state_dict`` (``.pt``) with a JSON
next to it (same name, ``.json``) holding the architecture and what made it; :func:`save_weights`
writes the pair and :func:`load_model` reads it back. Loading reads files only, never the network:
the shipped weights lie with the packages that use them (``chemtomo/denoise/weights``,
``chemtomo/spectral/weights``) and are passed here as paths.

For count images (:func:`apply`) the network is made dose-aware by normalisation: each image is
divided by its mean count ``m`` (the network sees ``counts / m``) and ``log m`` is a second,
constant input channel; its output, a non-negative map on the ``counts / m`` scale (softplus), is
multiplied back by ``m``. An image without counts comes out as zeros.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..core.errors import ChemtomoError

#: Architecture used when a weights file has no JSON next to it (that of the count-map denoiser).
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


def load_model(weights, device=None) -> UNet:
    """The U-Net with weights from `weights` (a path, a ``state_dict`` or a UNet), in eval mode.

    The architecture is read from the JSON next to a weights file (same name,
    ``.json``) if there is one, else :data:`DEFAULT_ARCH`. Files only: nothing is
    downloaded. A file is read once per device (cached by path and modification time).

    Raises
    ------
    ChemtomoError
        If the weights file does not exist.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(weights, UNet):
        return weights.to(device).eval()
    if isinstance(weights, dict):
        model = build()
        model.load_state_dict(weights)
        return model.to(device).eval()
    path = Path(weights)
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else None, str(device))
    if key in _CACHE:
        return _CACHE[key]
    if not path.exists():
        raise ChemtomoError(f"U-Net weights {path} not found; train them (`python -m chemtomo.training.denoise` for "
                            "the denoiser, `python -m chemtomo.training.spectral` for spectral maps) or pass weights=PATH")
    meta = path.with_suffix(".json")
    arch = json.loads(meta.read_text())["architecture"] if meta.exists() else None
    model = build(arch)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    _CACHE[key] = model
    return model


def initial_model(init, device) -> UNet:
    """A trainable U-Net to start training from: ``"scratch"`` (untrained, :data:`DEFAULT_ARCH`) or a copy of a
    weights file's network (:func:`load_model`).

    Raises
    ------
    ChemtomoError
        If `init` is neither ``"scratch"`` nor an existing weights file.
    """
    if init == "scratch":
        return build().to(device)
    if not Path(str(init)).exists():
        raise ChemtomoError(f"init must be 'scratch' or a weights file, got {init!r}")
    return copy.deepcopy(load_model(init, device))  # the loaded one is cached


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


#: pixels of reflected image added on every side before a network runs: the convolutions' zero padding
#: then falls outside the image (without it, learned maps had a frame 13-25 % too dark in their outer 2 px)
MARGIN = 8


def forward_any_size(model: UNet, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for inputs ``(b, c, ny, nu)`` of any size: reflect-padded by :data:`MARGIN` on every side
    and to a multiple of ``2 ** levels`` (replicate where the image is too small to reflect), cropped back."""
    ny, nu = x.shape[-2:]
    k = 2 ** model.levels
    my, mu = min(MARGIN, ny - 1), min(MARGIN, nu - 1)
    py, pu = (-(ny + 2 * my)) % k + 2 * my, (-(nu + 2 * mu)) % k + 2 * mu
    if py or pu:
        mode = "reflect" if py - py // 2 < ny and pu - pu // 2 < nu else "replicate"  # the larger side fits
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


def architecture(model: UNet) -> dict:
    """The architecture dict of `model` (``channels``, ``in_channels``, ``out_channels``, ``softplus``), as :func:`build` takes it."""
    return {"channels": [blk[0].out_channels for blk in model.down] + [model.bottom[0].out_channels],
            "in_channels": model.down[0][0].in_channels, "out_channels": model.head.out_channels,
            "softplus": model.softplus}


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
