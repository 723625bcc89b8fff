"""Noise2Noise training on the user's own noisy counts: binomial splitting or repeated-scan frames (issue 6).

No clean image is needed. Two independent noisy copies of the same scene are
made from the data itself:

* **binomial splitting** of one count map: each count goes to the input ``a``
  with probability ``p``, else to the target ``b``; for Poisson counts of
  expectation ``lam`` they are independent, ``a ~ Poisson(p lam)`` and
  ``b ~ Poisson((1 - p) lam)`` (:func:`chemtomo.physics.counts.split_counts`);
* **repeated-scan frames** (Han et al. 2021): the sum of a random half of the
  frames is the input, the sum of the other half the target.

The U-Net (:mod:`chemtomo.nn.unet`) is trained so that
``r * estimate(a)`` predicts ``b``, where ``r = E[b] / E[a]`` (``(1 - p) / p``
or the ratio of frame counts); since the target's noise is independent of the
input and has mean zero, the squared-error minimiser is the expectation (the
Noise2Noise argument), so the network learns to denoise without ever seeing a
clean image. By default it starts from the shipped supervised weights
(``init="unet"``) and adapts them to the data; ``init="scratch"`` learns from
the noisy data alone.

Early stopping by count splitting: before training, a fraction ``holdout``
(10 %) of the counts is dealt to a validation map ``v`` that training never
sees. Every few steps the network's estimate from the training counts, scaled
to the held-out fraction, is scored against ``v`` (squared error, in
expectation the error against the unknown expectation plus a constant), and
the best network wins - the starting weights included, so fine-tuning can only
be kept when it helps on independent counts. The denoised output is the best
network's estimate from all the counts.

Inference at the training count level (issue 27). The network learns on
inputs holding a share ``q (1 - holdout)`` of the counts (``q = p``, or the
frame half) but would be applied to all of them: more counts than it learned
to denoise, so a fine-tuned network over-smooths and the held-out score
cannot see its gain (the shipped network kept its start, best step 0). Each
held-out score is therefore computed both ways - the network on the training
counts, and the mean of the network over :data:`AVERAGE_SPLITS` binomial
thinnings of them to the training input's level, scaled back up - and the
best step's better way makes the output (``info["n2n"]["inference"]``:
``"whole"`` or ``"averaged"``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ChemtomoError, ShapeError, check_positive
from ._common import as_stack, like_input
from ..nn.fit import fit
from ..nn.unet import add_guide_channel, apply, apply_batched, architecture, n_parameters, save_weights
from .unet import as_guide, initial_denoiser


#: Thinned copies of the counts averaged at inference (see the module notes).
AVERAGE_SPLITS = 8


def _check_fraction(value, name: str, low: float, high: float) -> float:
    v = float(value)
    if not low <= v < high:
        raise ChemtomoError(f"{name} must be in [{low:g}, {high:g}), got {value!r}")
    return v


def _whole_counts(x: np.ndarray, name: str) -> np.ndarray:
    """Round counts to whole numbers for splitting; refuse maps that are clearly not counts."""
    r = np.rint(x)
    if np.abs(x - r).max() > 0.01 and x.max() <= 1.0:
        raise ChemtomoError(f"{name} holds fractions <= 1, not counts (maps normalised to a maximum of 1?); "
                            "n2n splits detected counts, so give it the raw count maps")
    return r


def _train(frames: np.ndarray, guide, *, minutes, steps, init, p, holdout, tile, batch, lr, every, seed, save, device,
           progress, label) -> tuple[np.ndarray, dict]:
    """Train on ``frames`` ``(n_frames, n_images, ny, nu)`` counts; return the denoised sum over frames and a record."""
    n_frames, n_img, ny, nu = frames.shape
    p = _check_fraction(p, "p", 0.05, 0.96)
    holdout = _check_fraction(holdout, "holdout", 0.0, 0.5)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    rng = np.random.default_rng(seed)
    counts = torch.as_tensor(frames, dtype=torch.float32)
    if holdout > 0:  # drawn before the weights, so every init is scored on the same held-out counts
        val = torch.distributions.Binomial(counts, torch.full_like(counts, holdout)).sample()
        train = counts - val
    else:
        val, train = None, counts
    model = initial_denoiser(init, dev)
    g = as_guide(guide, (n_img, ny, nu))
    if g is not None and architecture(model)["in_channels"] == 2:
        model = add_guide_channel(model)
    elif g is None and architecture(model)["in_channels"] == 3:
        raise ChemtomoError(f"the weights {init} take a guide (HAADF) channel: pass guide=")
    # building the network draws from torch's generator only when it is not cached yet: start the training
    # draws (binomial splits of the tiles) from the seed again, so the first call in a process is like the rest
    torch.manual_seed(seed + 1)
    k = 2 ** model.levels
    t = int(min(tile, ny, nu))
    t = max(k, t - t % k)

    gd = None if g is None else torch.tensor(g, dtype=torch.float32)
    train_sum = train.sum(0).to(dev)
    val_sum = val.sum(0).to(dev) if val is not None else None
    frame_half = n_frames // 2
    src = train if gd is None else torch.cat([train, gd[None]])  # the guide is cut with the same tiles

    def pair(step):
        """Input and target tiles ``(batch, t, t)`` and the ratio ``E[target] / E[input]``."""
        idx = rng.integers(n_img, size=batch)
        y0 = rng.integers(0, ny - t + 1, size=batch)
        u0 = rng.integers(0, nu - t + 1, size=batch)
        tiles = torch.stack([src[:, i, a:a + t, b:b + t] for i, a, b in zip(idx, y0, u0)], dim=1)
        rot = int(rng.integers(4))
        tiles = torch.rot90(tiles, rot, dims=(-2, -1))
        if rng.uniform() < 0.5:
            tiles = tiles.flip(-1)
        guide_tiles = None if gd is None else tiles[-1].to(dev)
        tiles = tiles[:n_frames]
        if n_frames == 1:
            a = torch.distributions.Binomial(tiles[0], torch.full_like(tiles[0], p)).sample()
            return a, tiles[0] - a, (1 - p) / p, guide_tiles
        order = torch.randperm(n_frames, generator=gen)
        a = tiles[order[:frame_half]].sum(0)
        b = tiles[order[frame_half:]].sum(0)
        return a, b, (n_frames - frame_half) / frame_half, guide_tiles

    def loss(step):
        a, b, r, gt = pair(step)
        a, b = a.to(dev), b.to(dev)
        err = ((r * apply(model, a, gt) - b) ** 2).mean(dim=(-2, -1))
        return (err / b.mean(dim=(-2, -1)).clamp_min(1e-3)).mean()

    def estimate(x):
        return apply_batched(model, x, gd)

    q = p if n_frames == 1 else frame_half / n_frames  # the input's share of the training counts

    def averaged(thinned, frac):
        """Mean of the network over count maps thinned to the training input's level, scaled back up."""
        return sum(estimate(x) for x in thinned) / (len(thinned) * frac)

    def thin(x, frac):
        return [torch.distributions.Binomial(x, torch.full_like(x, frac)).sample() for _ in range(AVERAGE_SPLITS)]

    scale = holdout / (1 - holdout)
    val_inputs = thin(train_sum, q) if val_sum is not None else None

    def check(step):
        if val_sum is None:
            return {}
        whole = float(((scale * estimate(train_sum) - val_sum) ** 2).mean())
        split = float(((scale * averaged(val_inputs, q) - val_sum) ** 2).mean())
        return {"holdout_mse": min(whole, split), "holdout_mse_whole": whole, "holdout_mse_averaged": split}

    record = fit(model, loss, steps=steps, minutes=minutes, lr=lr, lr_end=lr / 100, every=every, check=check,
                 keep_best="holdout_mse" if val_sum is not None else None, label=label, progress=progress)
    model.eval()
    best = next((c for c in record["curve"] if c["step"] == record.get("best_step")), None)
    mode = "averaged" if best is None or best["holdout_mse_averaged"] < best["holdout_mse_whole"] else "whole"
    with torch.inference_mode():
        total = counts.sum(0).to(dev)
        frac = q * (1 - holdout)  # the training input's share of all the counts
        out = (averaged(thin(total, frac), frac) if mode == "averaged" else estimate(total)).cpu().numpy()
    info = {
        "architecture": architecture(model),
        "parameters": n_parameters(model),
        "n2n": {"pairs": "binomial splitting" if n_frames == 1 else f"random halves of {n_frames} frames",
                "p": p if n_frames == 1 else None, "init": str(init), "guide": g is not None, "holdout": holdout,
                "tile": t, "batch": batch, "lr": lr, "seed": seed, "steps": record["steps"], "seconds": record["seconds"],
                "best_step": record.get("best_step", record["steps"]), "inference": mode,
                "device": str(dev), "images": n_img, "image_shape": [ny, nu]},
        "curve": record["curve"],
    }
    if save is not None:
        save_weights(model, save, info)
    return out, info


def n2n(stack, *, guide=None, minutes: float = 1.0, steps: int | None = None, init: str = "unet", p: float = 0.5,
        holdout: float = 0.1, tile: int = 64, batch: int = 16, lr: float = 3e-4, every: int = 25, seed: int = 0,
        save=None, device=None, progress: bool = False) -> np.ndarray:
    """Denoise count maps with a U-Net trained on these very counts by binomial splitting (Noise2Noise).

    Parameters
    ----------
    stack : array_like, shape (ny, nu) or (n_tilts, ny, nu)
        Raw counts, >= 0 (rounded to whole counts for the splits); never modified.
    guide : array_like, shape of `stack` or one image, optional
        A high-SNR image of the same field (HAADF) as a third input channel;
        its weights start at zero (the network starts as without it) and are
        learned from the data. The saved weights then need the guide too.
    minutes : float, default 1.0
        Training wall-time budget (about 700 steps a minute on two CPU cores).
    steps : int, optional
        Step budget (whichever of `minutes` and `steps` comes first); None: time only.
    init : {"unet", "scratch"} or path, default "unet"
        Start from the shipped supervised weights, from random weights (noisy
        data only), or from a weights file (e.g. one saved by an earlier run).
    p : float, default 0.5
        Fraction of the counts dealt to the network's input (the rest is the target).
    holdout : float, default 0.1
        Fraction of the counts kept aside to choose the best network (early
        stopping); 0 trains on everything and keeps the last network.
    tile, batch : int
        Training tile size (pixels, cut to the image) and tiles per step.
    lr : float, default 3e-4
        Adam learning rate (cosine decay to lr / 100).
    every : int, default 25
        Steps between held-out scores.
    seed : int, default 0
        Random seed (splits, tiles, initial weights): the same seed and step budget give the same result.
    save : path, optional
        Write the trained weights (``.pt``) and a JSON of the training record
        next to them; use them later with ``unet(..., weights=save)``.
    device : str, optional
        Torch device; default CUDA when available.
    progress : bool, default False
        Show a Rich progress bar.

    Returns
    -------
    denoised : ndarray of float32, shape of `stack`
        Expected counts, >= 0.
    """
    x = _whole_counts(as_stack(stack), "stack")
    if steps is None and minutes is None:
        raise ChemtomoError("give n2n a training budget: minutes or steps")
    if minutes is not None:
        check_positive(minutes, "minutes", "minutes")
    out, _ = _train(x[None], guide, minutes=minutes, steps=steps, init=init, p=p, holdout=holdout, tile=tile,
                    batch=batch, lr=lr, every=every, seed=seed, save=save, device=device, progress=progress,
                    label="n2n (binomial splitting)")
    return like_input(out, stack)


def n2n_frames(frames, *, guide=None, minutes: float = 1.0, steps: int | None = None, init: str = "unet",
               holdout: float = 0.1, tile: int = 64, batch: int = 16, lr: float = 3e-4, every: int = 25,
               seed: int = 0, save=None, device=None, progress: bool = False) -> tuple[np.ndarray, dict]:
    """Denoise repeated scans of one scene with a U-Net trained on pairs of disjoint frame halves (Noise2Noise).

    Parameters
    ----------
    frames : array_like, shape (n_frames, ny, nu) or (n_frames, n_tilts, ny, nu)
        Raw counts of ``n_frames >= 2`` repeated scans of the same field (per tilt), >= 0.
    guide : array_like, shape (ny, nu) or (n_tilts, ny, nu), optional
        HAADF image(s) of the field (e.g. the mean of the registered HAADF frames); see :func:`n2n`.
    minutes, steps, init, holdout, tile, batch, lr, every, seed, save, device, progress
        As :func:`n2n`.

    Returns
    -------
    mean : ndarray of float32, shape (ny, nu) or (n_tilts, ny, nu)
        Expected counts per frame (the denoised sum of all frames over ``n_frames``).
    info : dict
        Training record: architecture, settings, held-out score curve, best step.
    """
    f = np.asarray(frames, dtype=np.float64) if not hasattr(frames, "detach") else frames.detach().cpu().numpy()
    if f.ndim not in (3, 4) or f.shape[0] < 2:
        raise ShapeError(f"frames must be (n_frames, ny, nu) or (n_frames, n_tilts, ny, nu) with at least 2 frames, "
                         f"got shape {f.shape}")
    x = _whole_counts(np.stack([as_stack(fr, f"frame {i}") for i, fr in enumerate(f)]), "frames")
    out, info = _train(x, guide, minutes=minutes, steps=steps, init=init, p=0.5, holdout=holdout, tile=tile,
                       batch=batch, lr=lr, every=every, seed=seed, save=save, device=device, progress=progress,
                       label=f"n2n ({f.shape[0]} frames)")
    mean = (out / f.shape[0]).astype(np.float32)
    return (mean[0] if f.ndim == 3 else mean), info

