"""Training of the U-Net count-map denoiser on simulated particles (:mod:`chemtomo.denoise.unet`).

Run: ``python -m chemtomo.training.denoise --out src/chemtomo/denoise/weights/unet_edx.pt --minutes 15``.

Training pairs are made on the fly. Random particles
(:func:`chemtomo.simulate.random_particle`: every shape family, every
composition - single, alloy, gradient, core-shell, multi-shell - with sharp and
diffuse interfaces, one or two particles in the field) are rendered on a 48^3,
64^3 or 96^3 grid and projected at random tilt angles in [-80, 80] degrees;
each element's projection is one map, cut or padded to a ``tile`` x ``tile``
training image and kept in a rolling buffer (one new particle every
``new_every`` steps). Each
time a map is drawn it gets a random flip/rotation, a dose ``rho``
log-uniform in [0.05, 20] counts/px (the mean expected count on the particle
footprint, pixels above 1 % of the maximum, as in benchmarks/bench_denoise.py),
a uniform background of U(0, 5 %) of ``rho`` and fresh Poisson noise; the
target is the noiseless expectation.

The HAADF-guided network (``unet_edx_haadf.pt``, used by ``unet(counts, guide=HAADF)``)
is trained with ``--guide``: every map comes with its particle's HAADF projection
at the same tilt (:func:`haadf_guide`, ``sum_e Z_e^k c_e`` with ``k`` drawn in
1.4-2 per particle, Gaussian noise of up to 5 % of its mean) as a third input,
starting from the unguided weights with the guide's first-layer weights at zero:
``python -m chemtomo.training.denoise --guide --init unet --seed 2028 --minutes 30 --out .../unet_edx_haadf.pt``.

Particles are held out by seed: training particle ``i`` is
``default_rng([seed, i])`` (seed 2026 by default), validation particle ``i`` is
``default_rng([VAL_SEED, i])`` (3030), and benchmarks/bench_denoise.py uses
``default_rng([1000, i])``; the seeds must differ.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from ..core.errors import ChemtomoError
from ..denoise.unet import initial_denoiser
from ..nn.fit import fit
from ..nn.unet import DEFAULT_ARCH, add_guide_channel, apply, architecture, build, n_parameters, save_weights

#: Seed of the held-out validation particles, ``default_rng([VAL_SEED, i])``.
VAL_SEED = 3030
#: Seed of benchmarks/bench_denoise.py's particles (never used for training or validation).
BENCH_SEED = 1000
#: Validation doses (mean counts/px on the footprint) and background (fraction of the dose).
VAL_DOSES = (0.1, 0.3, 1.0, 3.0, 10.0)
VAL_BACKGROUND = 0.02
ELEMENTS = ("Au", "Ag")
DOSE_RANGE = (0.05, 20.0)
#: Range of the Z exponent of the simulated HAADF guide in training (detector-dependent, about 1.4-2).
GUIDE_EXPONENTS = (1.4, 2.0)


def _projections(rng, n: int, angles, guide: bool = False) -> list[np.ndarray]:
    """Noiseless projections of one random particle, per element and tilt, each divided by its footprint mean.

    With `guide`, each entry is ``(2, ny, nu)``: the element's map and the particle's HAADF projection
    (``sum_e Z_e^1.7 c_e``, Rutherford-like Z contrast) of the same tilt, also over its footprint mean.
    """
    from ..core.geometry import TiltGeometry
    from ..core.projector import Projector
    from ..simulate import random_particle

    vols, _ = random_particle(rng, (n, n, n), ELEMENTS, max_particles=int(rng.integers(1, 3)))
    op = Projector(TiltGeometry(np.asarray(angles, np.float64), (n, n, n)))
    haadf = haadf_guide(vols, op, exponent=rng.uniform(*GUIDE_EXPONENTS)) if guide else None
    maps = []
    for el in ELEMENTS:
        proj = np.asarray(op(np.asarray(vols[el], np.float32)), dtype=np.float64)
        for k, p in enumerate(proj):
            if p.max() <= 0:
                continue
            foot = p > 0.01 * p.max()
            m = p / p[foot].mean()
            maps.append((np.stack([m, haadf[k]]) if guide else m).astype(np.float32))
    return maps


def haadf_guide(vols: dict, op, exponent: float = 1.7) -> np.ndarray:
    """HAADF guide images ``(n_tilts, ny, nu)`` of a phantom: ``sum_e Z_e^exponent c_e`` projected by `op`, each
    tilt divided by its mean over the footprint (pixels above 1 % of its maximum)."""
    from ..physics.elements import atomic_number

    h = np.asarray(op(sum(np.asarray(vols[el], np.float32) * atomic_number(el) ** exponent for el in vols)), np.float64)
    for p in h:
        if p.max() > 0:
            p /= p[p > 0.01 * p.max()].mean()
    return h


def _tile(p: np.ndarray, tile: int, rng) -> np.ndarray:
    """A `tile` x `tile` cut of `p` (``(ny, nu)`` or ``(c, ny, nu)``, random position) or `p` zero-padded to that size."""
    out = np.zeros(p.shape[:-2] + (tile, tile), np.float32)
    ny, nu = p.shape[-2:]
    y0, u0 = (int(rng.integers(0, abs(s - tile) + 1)) for s in (ny, nu))
    if ny >= tile:
        p = p[..., y0:y0 + tile, :]
        y0 = 0
    if nu >= tile:
        p = p[..., u0:u0 + tile]
        u0 = 0
    out[..., y0:y0 + p.shape[-2], u0:u0 + p.shape[-1]] = p
    return out


def _noisy_batch(maps: np.ndarray, rng, gen: torch.Generator, dose_range=DOSE_RANGE):
    """Counts and expectations ``(b, ny, nu)`` for normalised noiseless maps ``(b, ny, nu)``.

    Random rotation/flip, dose, background and Poisson noise per image. Maps
    ``(b, 2, ny, nu)`` carry a HAADF guide in channel 1: it is returned third,
    rotated with its map, with Gaussian noise of U(0, 5 %) of its mean.
    """
    b = maps.shape[0]
    x = maps.copy()
    for i in range(b):
        x[i] = np.rot90(x[i], int(rng.integers(4)), axes=(-2, -1))
        if rng.uniform() < 0.5:
            x[i] = x[i][..., ::-1, :]
    guide = None
    if x.ndim == 4:
        x, g = x[:, 0], x[:, 1]
        g = g + rng.normal(size=g.shape) * rng.uniform(0, 0.05, size=(b, 1, 1)) * g.mean(axis=(-2, -1), keepdims=True)
        guide = torch.as_tensor(g, dtype=torch.float32)
    rho = np.exp(rng.uniform(*np.log(dose_range), size=(b, 1, 1)))
    lam = x * rho + rng.uniform(0, 0.05, size=(b, 1, 1)) * rho
    lam = torch.as_tensor(lam, dtype=torch.float32)
    counts = torch.poisson(lam, generator=gen)
    return (counts, lam) if guide is None else (counts, lam, guide)


def loss_fn(model, counts, lam, guide=None):
    """Squared error of each image relative to that of its raw counts, averaged over the images.

    ``mean((estimate - lam)**2) / mean(lam)`` per image: ``mean(lam)`` is the
    expected squared error of the raw counts (Poisson variance = mean), so the
    loss is the fraction of the noise left, which weighs images of every dose
    (and nearly empty tiles) alike; it is minus the PSNR gain over the raw
    counts on a log scale. A first run with the plain MSE on the ``counts / m``
    scale was dominated by the lowest doses and the nearly empty tiles (their
    noise is largest on that scale; one batch reached a loss of 1e5) and lost
    to the Gaussian filter at every dose. Why not the Poisson likelihood: it
    weighs errors by ``1 / lam`` (a Kullback-Leibler error), so it favours flat
    dark backgrounds (docs/denoise.md, count splitting), while PSNR, SSIM and
    the reconstruction error are squared-error measures.
    """
    err = ((apply(model, counts, guide) - lam) ** 2).mean(dim=(-2, -1))
    return (err / lam.mean(dim=(-2, -1)).clamp_min(1e-8)).mean()


def validation_set(n_particles: int = 4, size: int = 64, seed: int = VAL_SEED):
    """Held-out stacks: ``[(particle, element, rho, counts, expected, haadf)]``, 15 tilts -70..70, 2 % background.

    Made as in benchmarks/bench_denoise.py, with particles ``default_rng([seed, i])``.
    """
    from ..core.geometry import TiltGeometry
    from ..core.projector import Projector
    from ..simulate import random_particle

    if seed == BENCH_SEED:
        raise ChemtomoError(f"validation seed {seed} is the benchmark's; choose another")
    op = Projector(TiltGeometry(np.linspace(-70, 70, 15), (size,) * 3))
    out = []
    for i in range(n_particles):
        vols, _ = random_particle(np.random.default_rng([seed, i]), (size,) * 3, ELEMENTS,
                                  compositions=("alloy", "gradient", "core-shell", "multi-shell"))
        haadf = haadf_guide(vols, op)
        for k, el in enumerate(ELEMENTS):
            proj = np.asarray(op(vols[el]), dtype=np.float64)
            if proj.max() <= 0:
                continue
            foot = proj > 0.01 * proj.max()
            for rho in VAL_DOSES:
                lam = proj * rho / proj[foot].mean() + VAL_BACKGROUND * rho
                counts = np.random.default_rng([seed, i, round(1000 * rho), k]).poisson(lam).astype(np.float64)
                out.append((i, el, rho, counts, lam, haadf))
    return out


def psnr(estimate, expected) -> float:
    """PSNR (dB) of `estimate` against `expected`, data range the largest expected value (as bench_denoise.py)."""
    e, t = np.asarray(estimate, np.float64), np.asarray(expected, np.float64)
    mse = float(np.mean((e - t) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(float(t.max()) ** 2 / mse)


def _guided(model) -> bool:
    return architecture(model)["in_channels"] == 3


def validate(model, vset, *, gaussian: bool = True) -> dict:
    """Mean PSNR (dB) per dose of raw counts, the U-Net and (optionally) the auto-sigma Gaussian filter."""
    from ..denoise.classical import choose_sigma, gaussian as gfilter

    scores: dict = {}
    model.eval()
    with torch.inference_mode():
        for _, _, rho, counts, lam, haadf in vset:
            s = scores.setdefault(f"{rho:g}", {"raw": [], "unet": [], "gaussian": [], "gaussian_sigma": []})
            s["raw"].append(psnr(counts, lam))
            g = torch.as_tensor(haadf, dtype=torch.float32) if _guided(model) else None
            s["unet"].append(psnr(apply(model, torch.as_tensor(counts, dtype=torch.float32), g).numpy(), lam))
            if gaussian:
                sigma = choose_sigma(counts)
                s["gaussian"].append(psnr(gfilter(counts, sigma=sigma), lam))
                s["gaussian_sigma"].append(sigma)
    return {rho: {k: float(np.mean(v)) for k, v in s.items() if v} for rho, s in scores.items()}


def train_unet(out_path=None, *, n_particles: int = 100_000, steps: int | None = None, minutes: float | None = None,
               seed: int = 2026, batch: int = 32, tile: int = 64, lr: float = 1e-3, lr_end: float = 1e-5,
               buffer: int = 2048, tilts_per_particle: int = 4, new_every: int = 4, arch: dict | None = None,
               val_particles: int = 4, val_every: int = 100, threads: int | None = None, progress: bool = True,
               init=None, dose_range=DOSE_RANGE, guide: bool = False):
    """Train the U-Net denoiser on simulated Poisson count maps; save weights and a JSON description.

    Parameters
    ----------
    out_path : path, optional
        Where to write the ``state_dict`` (``.pt``); the JSON goes next to it
        (same name, ``.json``). None saves nothing.
    n_particles : int, default 100000
        Distinct training particles, ``default_rng([seed, i])``, drawn in turn
        (one every `new_every` steps, new random tilts when they come round again).
    steps, minutes : optional
        Stop after this many steps or this much wall time (whichever first;
        at least one must be given). The learning rate decays from `lr` to
        `lr_end` (cosine) over the steps or the minutes.
    seed : int, default 2026
        Training seed; must differ from the validation (3030) and benchmark (1000) seeds.
    batch, tile : int
        Images per step and their size (pixels).
    lr, lr_end : float
        Adam learning rate at the start and the end.
    buffer : int, default 2048
        Noiseless maps kept (the oldest replaced by new particles' maps).
    tilts_per_particle : int, default 4
        Random tilt angles per new particle.
    new_every : int, default 4
        Steps between new particles (rendering and projecting one costs about as much as a step).
    arch : dict, optional
        Architecture (``channels``); default :data:`chemtomo.nn.unet.DEFAULT_ARCH`.
    val_particles : int, default 4
        Held-out validation particles (0: no validation).
    val_every : int, default 100
        Steps between validation losses (the training curve).
    threads : int, optional
        ``torch.set_num_threads``.
    progress : bool, default True
        Show a Rich progress bar.
    init : {"unet"} or path, optional
        Continue from the shipped weights or a weights file (its architecture;
        `arch` is then ignored); None starts from random weights. Give a new
        `seed` so that the continued run sees new particles.
    dose_range : (float, float), default (0.05, 20)
        Range of the log-uniform training dose, mean counts/px on the footprint.
    guide : bool, default False
        Train a network with a HAADF guide input (:func:`haadf_guide` of the same particle and tilt,
        Z exponent U(1.4, 2) per particle, with U(0, 5 %) Gaussian noise); a 2-input `init` gets a
        zero-initialised guide channel
        (:func:`chemtomo.nn.unet.add_guide_channel`), so training starts from its output.

    Returns
    -------
    model : UNet
        Trained, in eval mode.
    info : dict
        What the JSON holds: architecture, training, seeds, curve, validation.
    """
    if steps is None and minutes is None:
        raise ChemtomoError("give steps or minutes to train_unet")
    if seed in (VAL_SEED, BENCH_SEED):
        raise ChemtomoError(f"training seed {seed} is the validation or benchmark seed; choose another")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 10**9])
    gen = torch.Generator().manual_seed(seed)
    if init is not None:
        model = initial_denoiser(init, "cpu")
        if guide and not _guided(model):
            model = add_guide_channel(model)
        arch = architecture(model)
    else:
        arch = {**DEFAULT_ARCH, **(arch or {}), **({"in_channels": 3} if guide else {})}
        model = build(arch)
    if guide != _guided(model):
        raise ChemtomoError("init has a guide channel: train it with guide=True" if not guide
                            else "this architecture has no guide channel; use in_channels 3")
    vset = validation_set(val_particles) if val_particles else []
    vsmall = [v for v in vset if v[1] == ELEMENTS[0]]

    def val_loss(step):
        if not vsmall:
            return {}
        t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return {"val_loss": float(np.mean([loss_fn(model, t(c), t(lam), t(h) if guide else None).item()
                                           for *_, c, lam, h in vsmall]))}

    pool: list[np.ndarray] = []
    drawn = 0

    def add_particle():
        nonlocal drawn
        i = drawn % n_particles
        prng = np.random.default_rng([seed, i, drawn // n_particles])
        n = int(prng.choice([48, 64, 96]))
        angles = prng.uniform(-80, 80, tilts_per_particle)
        maps = _projections(np.random.default_rng([seed, i]), n, angles, guide)
        for p in maps:
            t = _tile(p, tile, prng)
            if len(pool) < buffer:
                pool.append(t)
            else:
                pool[int(rng.integers(buffer))] = t
        drawn += 1

    def batch_loss(step):
        if step % new_every == 0:
            add_particle()
        idx = rng.integers(len(pool), size=batch)
        return loss_fn(model, *_noisy_batch(np.stack([pool[j] for j in idx]), rng, gen, dose_range))

    while len(pool) < 8 * batch:
        add_particle()
    record = fit(model, batch_loss, steps=steps, minutes=minutes, lr=lr, lr_end=lr_end, every=val_every,
                 check=val_loss, label="training U-Net", progress=progress)
    step, seconds, curve = record["steps"], record["seconds"], record["curve"]
    info = {
        "architecture": arch,
        "parameters": n_parameters(model),
        "input": "channel 0: counts / m, channel 1: log m (m = the image's mean count)"
                 + (", channel 2: HAADF / its mean (guide)" if guide else "") + "; output x m = expected counts",
        "training": {"steps": step, "seconds": round(seconds, 1), "batch": batch, "tile": tile, "lr": lr,
                     "lr_end": lr_end, "schedule": "cosine", "optimizer": "Adam",
                     "loss": "per image mean((estimate - expected)^2) / mean(expected), averaged",
                     "new_particle_every_steps": new_every,
                     "dose_range_counts_per_px": list(dose_range),
                     "init": None if init is None else str(init), "background": "U(0, 0.05) x dose",
                     "guide": ("HAADF sum_e Z^k c_e projection, k ~ U(1.4, 2) per particle, Gaussian noise U(0, 5 %) "
                               "of its mean") if guide else None,
                     "grid": [48, 64, 96], "tilts": "uniform in [-80, 80] deg",
                     "tilts_per_particle": tilts_per_particle,
                     "buffer": buffer, "particles_drawn": drawn, "n_particles": n_particles,
                     "threads": torch.get_num_threads(), "torch": torch.__version__},
        "seeds": {"train": f"default_rng([{seed}, i])", "validation": f"default_rng([{VAL_SEED}, i])",
                  "benchmark_avoided": f"default_rng([{BENCH_SEED}, i])"},
        "curve": curve,
    }
    if vset:
        info["validation"] = {
            "set": f"{val_particles} particles 64^3 (alloy, gradient, core-shell, multi-shell), Au and Ag, 15 tilts "
                   f"-70..70, background {VAL_BACKGROUND:.0%} of the dose; PSNR (dB) of the whole stack against the "
                   "noiseless expectation, data range its maximum, mean over stacks",
            "psnr_db": validate(model, vset)}
    if out_path is not None:
        save_weights(model, out_path, info)
    return model, info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="weights file (.pt); the JSON is written next to it")
    ap.add_argument("--minutes", type=float, default=None, help="wall-time budget")
    ap.add_argument("--steps", type=int, default=None, help="step budget")
    ap.add_argument("--n-particles", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-particles", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", default=None, help="continue from 'unet' (the shipped weights) or a weights file")
    ap.add_argument("--dose-max", type=float, default=DOSE_RANGE[1], help="largest training dose (counts/px)")
    ap.add_argument("--guide", action="store_true", help="train with a HAADF guide channel")
    args = ap.parse_args(argv)
    if args.minutes is None and args.steps is None:
        args.minutes = 15.0
    _, info = train_unet(args.out, n_particles=args.n_particles, steps=args.steps, minutes=args.minutes,
                         seed=args.seed, batch=args.batch, tile=args.tile, lr=args.lr,
                         val_particles=args.val_particles, threads=args.threads, init=args.init,
                         dose_range=(DOSE_RANGE[0], args.dose_max), guide=args.guide)
    print(f"{info['training']['steps']} steps in {info['training']['seconds']:.0f} s -> {args.out}")
    for rho, s in info.get("validation", {}).get("psnr_db", {}).items():
        print(f"  {rho} counts/px: raw {s['raw']:.2f} dB, gaussian {s['gaussian']:.2f} dB "
              f"(sigma {s['gaussian_sigma']:.2f}), unet {s['unet']:.2f} dB")


if __name__ == "__main__":
    main()
