"""Missing-view synthesis ("view enrichment") for sparse tilt series (Han et al. 2021 stage 2; Cha et al. 2022).

Views at unmeasured tilt angles are made in three steps:

1. a regularised reconstruction from the measured views (MLEM for counts,
   SIRT otherwise, both followed by a Gaussian filter of the volume); its
   iteration count and filter width are chosen by **cross-validation over
   the tilts**: the measured angles are dealt into ``folds`` interleaved
   folds, each fold is predicted by reprojecting the reconstruction of the
   other folds, and the (iterations, width) pair with the smallest squared
   error against the measured views wins;
2. reprojection of the reconstruction of all measured views at the new angles;
3. refinement of these reprojections by the project's U-Net
   (:mod:`chemtomo.nn.unet`, started from the shipped denoiser weights), trained
   on the measured views only: the cross-validated reprojection of each
   measured view (from the reconstruction *without* its fold) is the input,
   the measured view the target. Noisy targets are fine: the squared-error
   minimiser is the expectation (the Noise2Noise argument).

A few measured views (``holdout``) are never targets: they choose the best
network during training (early stopping) and then decide between the refined
and the plain reprojection, so the network is only used where it predicts
held-out measured views better than the reprojection it starts from. Both
scores are reported in the info dict.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from .core.errors import ChemtomoError, DataError, ShapeError, as_angles, check_positive
from .core.geometry import TiltGeometry
from .core.memory import check_angle_count
from .core.projector import Projector
from .denoise._common import as_stack
from .denoise.unet import initial_denoiser
from .nn.fit import fit
from .nn.unet import apply, apply_batched, architecture, n_parameters

#: Gaussian filter widths (voxels, standard deviation) searched for the reconstruction; 0 is no filter.
SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0)
#: Largest iteration count searched per reconstruction method.
MAX_ITERATIONS = {"mlem": 100, "sirt": 150}
#: Angles closer than this (degrees) count as the same angle.
ANGLE_TOL = 1e-3


def fill_angles(angles, step: float, *, limits=None) -> np.ndarray:
    """The angles of a finer grid that are not measured, e.g. the 5-degree views between 10-degree ones.

    Parameters
    ----------
    angles : sequence of float
        Measured tilt angles in degrees.
    step : float
        Spacing of the finer grid in degrees; the grid is anchored at the
        smallest measured angle.
    limits : (float, float), optional
        Range of the grid in degrees (e.g. ``(-75, 75)`` to also fill part of
        the missing wedge); the measured range if omitted.

    Returns
    -------
    new_angles : ndarray of float64
        Grid angles in `limits` that are not within 1e-3 degrees of a measured angle, sorted.

    Examples
    --------
    >>> fill_angles([-20, -10, 0, 10, 20], 5).tolist()
    [-15.0, -5.0, 5.0, 15.0]
    >>> fill_angles([-10, 0, 10], 5, limits=(-20, 20)).tolist()
    [-20.0, -15.0, -5.0, 5.0, 15.0, 20.0]
    """
    a = as_angles(angles)
    step = check_positive(step, "step", "degrees")
    lo, hi = (a.min(), a.max()) if limits is None else (float(limits[0]), float(limits[1]))
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi and max(abs(lo), abs(hi)) <= 360):
        raise ChemtomoError(f"limits must be (low, high) in degrees with low <= high, got {limits!r}")
    k0 = math.ceil((lo - a.min()) / step - 1e-9)
    k1 = math.floor((hi - a.min()) / step + 1e-9)
    check_angle_count(k1 - k0 + 1, f"a view-synthesis step of {step:g} degrees")
    grid = a.min() + step * np.arange(k0, k1 + 1)
    grid = np.round(grid, 9)
    measured = np.abs(grid[:, None] - a[None, :]).min(axis=1) <= ANGLE_TOL
    return np.sort(grid[~measured])


def _check_inputs(stack, angles, new_angles, folds, holdout):
    x = as_stack(stack)
    if np.ndim(stack) != 3:
        raise ShapeError(f"stack must be a tilt series (n_tilts, ny, nu), got shape {np.shape(stack)}")
    a = as_angles(angles)
    if a.size != x.shape[0]:
        raise ShapeError(f"stack has {x.shape[0]} views but {a.size} angles were given; pass one angle per view")
    new = as_angles(new_angles, name="new_angles")
    for vals, name in ((a, "angles"), (new, "new_angles")):
        s = np.sort(vals)
        dup = np.flatnonzero(np.diff(s) <= ANGLE_TOL)
        if dup.size:
            raise ChemtomoError(f"{name} holds the angle {s[dup[0]]:g} twice; give each tilt angle once")
    clash = new[np.abs(new[:, None] - a[None, :]).min(axis=1) <= ANGLE_TOL]
    if clash.size:
        raise ChemtomoError(f"new_angles {', '.join(f'{v:g}' for v in clash)} are measured already; synthesize "
                            "only unmeasured angles (fill_angles(angles, step) gives them)")
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise ChemtomoError(f"folds must be a whole number >= 2, got {folds!r}")
    holdout = float(holdout)
    if not 0 <= holdout < 0.5:
        raise ChemtomoError(f"holdout must be a fraction of the views in [0, 0.5), got {holdout!r}")
    n_hold = int(round(holdout * a.size)) if holdout > 0 else 0
    if holdout > 0:
        n_hold = max(1, n_hold)
    if a.size < 2 * folds or a.size - n_hold < 2:
        raise ShapeError(f"{a.size} measured views are too few for {folds} folds (each fold is predicted from the "
                         f"others): give at least {2 * folds} views, or fewer folds")
    if x.max() <= 0:
        raise DataError("stack holds no counts (all zeros); nothing to synthesize views from")
    return x, a, new, n_hold


def _gaussian3(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter of a volume ``(ny, nz, nx)`` (standard deviation `sigma` voxels, zero outside)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = x[None, None]
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = k.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - dim)] = pad[2 * (2 - dim) + 1] = r
        y = F.conv3d(F.pad(y, pad), k.reshape(shape))
    return y[0, 0]


def _run_recon(method, op, data, iterations, background, callback=None):
    """Run MLEM (counts, known background) or SIRT (background subtracted) on tensor `data`."""
    from .recon import mlem, sirt

    if method == "mlem":
        return mlem(op, data, iterations, background=background, callback=callback)
    return sirt(op, data - background, iterations, callback=callback)


def _evaluated(i: int) -> bool:
    """Iterations (1-based) at which the cross-validation scores the reconstruction."""
    return i <= 10 or i % 5 == 0


def _cross_validate(x, a, fold, method, max_iter, sigmas, background, shape, dev):
    """Squared error of each fold's reprojection (from the other folds) per (iteration, width); sum over folds."""
    its = [i for i in range(1, max_iter + 1) if _evaluated(i)]
    err = np.zeros((len(its), len(sigmas)))
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        op = Projector(TiltGeometry(a[train], shape))
        op_test = Projector(TiltGeometry(a[test], shape))
        target = x[test]
        row = iter(range(len(its)))

        def cb(i, vol, _op=op_test, _t=target):
            if _evaluated(i + 1):
                r = next(row)
                for j, s in enumerate(sigmas):
                    pred = _op._apply(_gaussian3(vol, s)) + background
                    err[r, j] += float(((pred - _t) ** 2).sum())
            return False

        _run_recon(method, op, x[train], max_iter, background, cb)
    err /= x.numel()
    r, j = np.unravel_index(int(np.argmin(err)), err.shape)
    return its[r], float(sigmas[j]), {"iterations": its, "sigmas": [float(s) for s in sigmas], "mse": err.tolist()}


def _reproject(x, a, train, new_angles, method, iterations, sigma, background, shape):
    """Reconstruct from the views `train` of `x`, filter, and reproject at `new_angles` (plus the background)."""
    vol = _run_recon(method, Projector(TiltGeometry(a[train], shape)), x[train], iterations, background)
    vol = _gaussian3(vol, sigma)
    return (Projector(TiltGeometry(new_angles, shape))._apply(vol) + background).clamp_min(0), vol


def synthesize_views(stack, angles, new_angles, *, recon: str = "auto", iterations: int | None = None,
                     sigmas=SIGMAS, background: float = 0.0, thickness: int | None = None, folds: int = 2,
                     holdout: float = 0.2, minutes: float | None = 1.0, steps: int | None = None, init: str = "unet",
                     refine: bool = True, tile: int = 64, batch: int = 16, lr: float = 3e-4, every: int = 25,
                     seed: int = 0, device=None, progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """Synthesize views at unmeasured tilt angles: reprojection of a regularised reconstruction refined by a U-Net.

    Parameters
    ----------
    stack : array_like, shape (n_tilts, ny, nu)
        Measured projection maps: EDX counts or denoised maps, >= 0 (counts
        per pixel); never modified.
    angles : sequence of float, length n_tilts
        Tilt angles of `stack` in degrees, all different.
    new_angles : sequence of float
        Angles (degrees) to synthesize; none may coincide with a measured
        angle (within 1e-3 degrees). :func:`fill_angles` makes them from a step.
    recon : {"auto", "mlem", "sirt"}, default "auto"
        Reconstruction from the measured views: MLEM (Poisson likelihood) for
        whole counts, SIRT (least squares, non-negative) otherwise; ``"auto"``
        picks MLEM when every value is a whole number, else SIRT.
    iterations : int, optional
        Largest iteration count searched by the cross-validation (default 100
        for MLEM, 150 for SIRT).
    sigmas : sequence of float, default (0, 0.5, 1, 1.5, 2)
        Gaussian filter widths of the volume searched, in voxels; ``(0,)`` for no filter.
    background : float, default 0
        Known uniform background in counts per pixel (given to MLEM as its
        background, subtracted before SIRT, added back to the reprojections).
    thickness : int, optional
        Volume thickness nz in voxels; the detector width nu if omitted.
    folds : int, default 2
        Interleaved folds of the measured angles (sorted angle ``i`` goes to
        fold ``i % folds``). Needs at least ``2 * folds`` views.
    holdout : float, default 0.2
        Fraction of the measured views (at least one, evenly spread) that are
        never training targets; they choose the best network and decide
        between refined and plain reprojections. 0: keep the last network.
    minutes, steps : optional
        Training budget of the U-Net: wall time in minutes and/or steps
        (whichever comes first; about 700 steps a minute on two CPU cores for 64 px tiles).
    init : {"unet", "scratch"} or path, default "unet"
        Start from the shipped U-Net weights, random weights, or a weights file.
    refine : bool, default True
        False skips the network: the synthesized views are the plain reprojections.
    tile, batch : int
        Training tile size (pixels, cut to the image) and tiles per step.
    lr : float, default 3e-4
        Adam learning rate (cosine decay to lr / 100).
    every : int, default 25
        Steps between held-out scores.
    seed : int, default 0
        Random seed (tiles, flips, initial weights).
    device : str, optional
        Torch device for reconstruction and network; default CUDA when available, else the CPU.
    progress : bool, default False
        Show a Rich progress bar while training.

    Returns
    -------
    merged : ndarray of float32, shape (n_tilts + n_new, ny, nu)
        Measured and synthesized views (expected counts per pixel), sorted by angle.
    merged_angles : ndarray of float64, shape (n_tilts + n_new,)
        Their angles in degrees, ascending.
    info : dict
        ``synthesized`` (bool per merged view), ``new_angles``, ``recon``
        (method, chosen iterations and filter width, cross-validation table),
        ``holdout`` (held-out angles, mean squared error per pixel of the plain
        and of the refined reprojection against those measured views, and
        ``used``: "network" or "reprojection"), ``training`` (U-Net record) and ``device``.

    Raises
    ------
    ShapeError
        If the stack is not 3D, the angle count does not match, or there are too few views for the folds.
    DataError
        For NaN, infinite or negative values, or a stack without counts.
    ChemtomoError
        For duplicate angles, new angles that are measured already, or an invalid option.

    Notes
    -----
    The network's training inputs are reprojections of reconstructions from
    ``(folds - 1) / folds`` of the views at angles between them, which are
    harder to predict than the new angles from all views; the held-out check
    guards against the network overcorrecting.
    """
    x_np, a, new, n_hold = _check_inputs(stack, angles, new_angles, folds, holdout)
    if recon not in ("auto", "mlem", "sirt"):
        raise ChemtomoError(f"recon must be 'auto', 'mlem' or 'sirt', got {recon!r}")
    if refine:
        initial_denoiser(init, "cpu")  # refuses an unknown init before the reconstructions
    if refine and steps is None and minutes is None:
        raise ChemtomoError("give synthesize_views a training budget: minutes or steps (or refine=False)")
    if minutes is not None:
        check_positive(minutes, "minutes", "minutes")
    if not (background >= 0 and np.isfinite(background)):
        raise ChemtomoError(f"background must be a non-negative count per pixel, got {background!r}")
    sig = [float(s) for s in np.atleast_1d(sigmas)]
    if not sig or min(sig) < 0:
        raise ChemtomoError(f"sigmas must be non-negative filter widths in voxels, got {sigmas!r}")
    method = recon if recon != "auto" else ("mlem" if np.all(x_np == np.rint(x_np)) else "sirt")
    max_iter = MAX_ITERATIONS[method] if iterations is None else int(iterations)
    if max_iter < 1:
        raise ChemtomoError(f"iterations must be a positive whole number, got {iterations!r}")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    order = np.argsort(a)
    a, x_np = a[order], x_np[order]
    n, ny, nu = x_np.shape
    shape = (ny, int(thickness) if thickness is not None else nu, nu)
    x = torch.as_tensor(x_np, dtype=torch.float32, device=dev)
    fold = np.arange(n) % folds

    # 1. reconstruction settings by cross-validation over the folds; 2. reprojection at the new angles
    it, sigma, table = _cross_validate(x, a, fold, method, max_iter, sig, background, shape, dev)
    synth, _ = _reproject(x, a, np.ones(n, bool), new, method, it, sigma, background, shape)
    info = {"new_angles": new.tolist(), "device": str(dev),
            "recon": {"method": method, "iterations": it, "sigma": sigma, "background": background,
                      "folds": folds, "cross_validation": table}}

    # 3. training pairs: each measured view's reprojection from the reconstruction without its fold
    cv = torch.empty_like(x)
    for k in range(folds):
        cv[fold == k], _ = _reproject(x, a, fold != k, a[fold == k], method, it, sigma, background, shape)
    hold = np.zeros(n, bool)
    if n_hold:
        hold[np.round((np.arange(n_hold) + 0.5) * n / n_hold - 0.5).astype(int)] = True
    plain = float(((cv[hold] - x[hold]) ** 2).mean()) if n_hold else None
    info["holdout"] = {"angles": a[hold].tolist(), "mse_reprojection": plain, "mse_network": None,
                       "used": "reprojection"}
    info["training"] = None
    if refine:
        model, record = _train(cv[~hold], x[~hold], cv[hold], x[hold], minutes=minutes, steps=steps, init=init,
                               tile=tile, batch=batch, lr=lr, every=every, rng=rng, dev=dev, progress=progress)
        info["training"] = record
        info["holdout"]["mse_network"] = record["holdout_mse"]
        if not n_hold or record["holdout_mse"] < plain:
            with torch.inference_mode():
                synth = apply_batched(model, synth)
            info["holdout"]["used"] = "network"

    merged_angles = np.concatenate([a, new])
    idx = np.argsort(merged_angles, kind="stable")
    merged = torch.cat([x, synth.to(x.dtype)])[torch.as_tensor(idx, device=dev)].cpu().numpy().astype(np.float32)
    info["synthesized"] = (idx >= n).tolist()
    return merged, merged_angles[idx], info


def _train(inp, tgt, inp_val, tgt_val, *, minutes, steps, init, tile, batch, lr, every, rng, dev, progress):
    """Fine-tune the U-Net so that ``apply(model, reprojection)`` predicts the measured view; best held-out network."""
    model = initial_denoiser(init, dev)
    n, ny, nu = inp.shape
    k = 2 ** model.levels
    t = max(k, min(int(tile), ny, nu) // k * k)
    t_y, t_u = min(t, ny), min(t, nu)
    has_val = inp_val.shape[0] > 0

    def loss(step):
        i = rng.integers(n, size=batch)
        y0 = rng.integers(0, ny - t_y + 1, size=batch)
        u0 = rng.integers(0, nu - t_u + 1, size=batch)
        rows = torch.as_tensor(y0[:, None] + np.arange(t_y), device=dev)
        cols = torch.as_tensor(u0[:, None] + np.arange(t_u), device=dev)
        ii = torch.as_tensor(i, device=dev)[:, None, None]
        a = inp[ii, rows[:, :, None], cols[:, None, :]]
        b = tgt[ii, rows[:, :, None], cols[:, None, :]]
        # flips along the tilt axis and the detector are symmetries of the problem (rotations by 90 deg are not)
        if rng.uniform() < 0.5:
            a, b = a.flip(-1), b.flip(-1)
        if rng.uniform() < 0.5:
            a, b = a.flip(-2), b.flip(-2)
        err = ((apply(model, a) - b) ** 2).mean(dim=(-2, -1))
        return (err / b.mean(dim=(-2, -1)).clamp_min(1e-3)).mean()

    def check(step):
        if not has_val:
            return {}
        pred = apply_batched(model, inp_val)
        return {"holdout_mse": float(((pred - tgt_val) ** 2).mean())}

    record = fit(model, loss, steps=steps, minutes=minutes, lr=lr, lr_end=lr / 100, every=every, check=check,
                 keep_best="holdout_mse" if has_val else None, label="view synthesis", progress=progress)
    record.update(architecture=architecture(model), parameters=n_parameters(model), init=str(init), tile=[t_y, t_u],
                  batch=batch, lr=lr, training_views=n, best_step=record.get("best_step", record["steps"]),
                  holdout_mse=record.get("best"))
    return model, record


def synthesize_series(series, step: float, *, signals=None, limits=None, thickness: int | None = None,
                      options: dict | None = None):
    """Add synthesized views on a finer angle grid to chosen signals of a tilt series (``reconstruct --views-synthesis``).

    Parameters
    ----------
    series : TiltSeries
        Never modified.
    step : float
        Angle step of the filled grid, degrees (:func:`fill_angles`).
    signals : sequence of str, optional
        Signals to fill; default every count signal (:func:`chemtomo.core.names.is_counts`).
    limits : (float, float), optional
        Angle range to fill, degrees; beyond the measured range it fills part of the missing wedge.
    thickness : int, optional
        Volume thickness in voxels for the internal reconstructions.
    options : dict, optional
        Further options of :func:`synthesize_views` (``minutes``, ``seed``, ``progress``...).

    Returns
    -------
    filled : TiltSeries
        The chosen signals with measured and synthesized views (their own angles); the others as they were.
    record : dict
        ``{"step", "limits", "signals": {name: synthesize_views' info without the per-view lists}}``.
    """
    from .core.data import Signal, TiltSeries
    from .core.names import is_counts

    names = [n for n in series.names if is_counts(n)] if signals is None else list(signals)
    unknown = [n for n in names if n not in series]
    if unknown or not names:
        raise ChemtomoError(f"cannot synthesize views of {', '.join(unknown) or 'no signal'}: the series has "
                            f"{', '.join(series.names)}; name count signals, e.g. --views-signal Au")
    out = dict(series.signals)
    record = {"step": float(step), "limits": None if limits is None else [float(v) for v in limits], "signals": {}}
    for name in names:
        sig = series[name]
        new = fill_angles(sig.angles, step, limits=limits)
        if new.size == 0:
            continue
        try:
            data, angles, info = synthesize_views(sig.data, sig.angles, new, thickness=thickness, **(options or {}))
        except ChemtomoError as err:
            raise type(err)(f"synthesizing views of {name}: {err}") from None
        out[name] = Signal(data, angles, sig.units)
        record["signals"][name] = {"new_angles": info["new_angles"], "recon": {k: v for k, v in info["recon"].items()
                                                                              if k != "cross_validation"},
                                   "holdout": info["holdout"],
                                   "training_seconds": (info["training"] or {}).get("seconds")}
    metadata = dict(series.metadata, views_synthesis=record)
    return TiltSeries(out, pixel_size=series.pixel_size, dose=series.dose,
                      acquisition_time=series.acquisition_time, metadata=metadata), record
