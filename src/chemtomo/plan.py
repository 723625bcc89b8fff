"""Dose planner: the cheapest acquisition that reaches a quality target, found by simulation.

For a particle described by a phantom spec (:func:`chemtomo.simulate.phantom_from_spec`),
a detector and a target (per-element error, smallest feature to resolve, or both),
:func:`plan` simulates the tilt
series over a grid of total dose and number of tilts (-70..70 degrees, HAADF
co-acquired with the element maps at the same dose), reconstructs each with
every method of the grid and scores each element against the ground truth.
The recommendation is the acquisition of lowest dose (then fewest tilts)
whose worst element meets the target with some method.

The score is the scale-invariant NRMSE ``min_a ||a x - t|| / ||t||``: planning
asks how well the shape and contrast of each element come out; the absolute
scale is a calibration (k- or zeta factors) made separately. Each grid point
is simulated ``repeats`` times with independent noise and the errors averaged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.errors import ChemtomoError


def scaled_nrmse(estimate, truth) -> float:
    """``min_a ||a x - t|| / ||t||`` (a >= 0): the error after the best non-negative scale."""
    x = np.asarray(estimate, np.float64).ravel()
    t = np.asarray(truth, np.float64).ravel()
    nt = float(np.linalg.norm(t))
    if not nt > 0:
        raise ChemtomoError("the ground truth of an element is empty; the phantom has none of it")
    xx = float(x @ x)
    a = max(float(x @ t) / xx, 0.0) if xx > 0 else 0.0
    return float(np.linalg.norm(a * x - t) / nt)


def shell_resolution(estimate, truth, *, voxel_size: float = 1.0, threshold: float = 0.5) -> float:
    """Smallest period rendered faithfully: where the Fourier-shell error against the truth reaches `threshold`.

    The estimate is first given its best non-negative scale (as in
    :func:`scaled_nrmse`). Per shell of spatial frequency k (width one Fourier
    pixel of the smallest axis), ``e(k) = sum |a F_x - F_t|^2 / sum |F_t|^2``;
    the resolution is ``1 / k`` at the first shell where ``e(k) >= threshold``,
    in units of `voxel_size`, or the Nyquist limit (two voxels) if none does.
    Unlike the FSC, which a pure blur leaves at 1, the shell error counts
    lost contrast as well as noise: a Gaussian blur of sigma voxels gives about
    ``4.0 sigma`` voxels at the default threshold (transfer 0.29).
    """
    x = np.asarray(estimate, np.float64)
    t = np.asarray(truth, np.float64)
    if x.shape != t.shape or x.ndim != 3:
        raise ChemtomoError(f"estimate {x.shape} and truth {t.shape} must be volumes of one shape")
    xx = float((x * x).sum())
    a = max(float((x * t).sum()) / xx, 0.0) if xx > 0 else 0.0
    fx, ft = np.fft.fftn(a * x), np.fft.fftn(t)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in x.shape], indexing="ij", sparse=True)
    k = np.sqrt(sum(g**2 for g in grids))
    width = 1.0 / min(x.shape)
    n = int(0.5 / width) + 1
    shell = np.minimum((k / width).astype(int), n - 1).ravel()
    err = np.bincount(shell, (np.abs(fx - ft) ** 2).ravel(), n)
    ref = np.bincount(shell, (np.abs(ft) ** 2).ravel(), n)
    e = np.where(ref > 0, err / np.maximum(ref, 1e-300), 0.0)
    over = np.flatnonzero(e[1:] >= threshold)
    if over.size == 0:
        return 2.0 * voxel_size
    return float(voxel_size / ((over[0] + 1) * width))


@dataclass
class Plan:
    """Result of :func:`plan`: one row per (dose, tilts, method), the recommendation and the settings."""

    rows: list = field(default_factory=list)
    recommendation: dict | None = None
    settings: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line: the recommended acquisition, or why there is none."""
        r = self.recommendation
        target, res = self.settings.get("target"), self.settings.get("resolution_nm")
        goal = " and ".join(([f"error {target:g}"] if target is not None else [])
                            + ([f"resolution {res:g} nm"] if res is not None else []))
        if r is None:
            best = min(self.rows, key=lambda x: x["worst"]) if self.rows else None
            more = f"; best reached error {best['worst']:.3f}, resolution {best['resolution_nm']:.2f} nm " \
                   f"({best['method']}, {best['dose']:.3g} e-/A^2, {best['tilts']} tilts)" if best else ""
            return f"no acquisition of the grid reaches the target {goal}{more}; raise the doses or tilts"
        edge = ""
        if r["dose"] == min(self.settings.get("doses", [r["dose"]])):
            edge = "; it is the lowest dose of the grid: lower doses may do too"
        return (f"recommended: {r['dose']:.3g} e-/A^2 over {r['tilts']} tilts, reconstructed with {r['method']} "
                f"(worst element error {r['worst']:.3f}, resolution {r['resolution_nm']:.2f} nm; target {goal})"
                f"{edge}")


def _reconstruct(series, method, elements, progress=None):
    """The elements' volumes by `method` through the pipeline (joint methods see HAADF too); `progress` as
    :func:`chemtomo.pipeline.run.process` takes it."""
    from .core.data import TiltSeries
    from .pipeline.recipe import Reconstruct
    from .pipeline.run import process
    from .recon.registry import METHODS

    if METHODS[method].joint:
        return process(series, Reconstruct(method=method), progress=progress).volumes
    only = TiltSeries({e: series[e] for e in elements}, pixel_size=series.pixel_size)
    stop = "discrepancy" if method in ("mlem", "sirt") else None
    return process(only, Reconstruct(method=method, stop=stop), progress=progress).volumes


def _inner(progress, method):
    """The per-iteration progress of one reconstruction of the grid, named ``"METHOD SIGNAL"``."""
    if progress is None:
        return None
    return lambda name, i, n: progress(method if name == method else f"{method} {name}", i, n)


def plan(phantom: str, elements, *, shape=(48, 48, 48), voxel_size: float = 0.5, doses=(1e6, 3e6, 1e7, 3e7),
         tilts=(15, 29), methods=("mlem", "tv", "dtv"), target: float | None = 0.2,
         resolution: float | None = None, signal: str = "EDX",
         solid_angle: float = 0.7, eels_detector: str = "counting", repeats: int = 1, seed: int = 0,
         progress=None) -> Plan:
    """Simulate, reconstruct and score a grid of acquisitions; recommend the cheapest that meets `target`.

    Parameters
    ----------
    phantom : str
        Phantom spec, e.g. ``"core-shell:sphere,ratio=0.6"`` (docs/simulation.md).
    elements : list of str
        Element symbols, core first for core-shell.
    shape : tuple of int, default (48, 48, 48)
        Volume in voxels.
    voxel_size : float, default 0.5
        nm per voxel.
    doses : sequence of float
        Total doses in e-/A^2 (over all tilts).
    tilts : sequence of int
        Numbers of tilts, spread evenly over -70..70 degrees.
    methods : sequence of str
        Reconstruction methods (``chemtomo methods``); joint ones use the co-acquired HAADF.
    target : float or None, default 0.2
        Largest acceptable scale-invariant NRMSE of the worst element.
    resolution : float, optional
        Smallest feature to resolve, nm: the worst element's Fourier-shell
        resolution against the truth (:func:`shell_resolution`) must not exceed it. At least
        one of `target` and `resolution` is needed.
    signal : {"EDX", "EELS"}, default "EDX"
        Element signal.
    solid_angle : float, default 0.7
        EDX collection solid angle in sr.
    eels_detector : {"counting", "ccd"}, default "counting"
        EELS camera.
    repeats : int, default 1
        Noise realisations per grid point.
    seed : int, default 0
        Random source (phantom and noise).
    progress : callable(name, done, total), optional
        Called as ``("plan", done, total)`` after every reconstruction of the grid, and as
        ``("METHOD SIGNAL", iteration, iterations)`` during each (``"METHOD"`` for joint methods).

    Returns
    -------
    Plan
    """
    from .core.data import TiltSeries
    from .simulate import phantom_from_spec, simulate_series

    elements = list(elements)
    if signal not in ("EDX", "EELS"):
        raise ChemtomoError(f"signal must be EDX or EELS, got {signal!r}")
    if target is None and resolution is None:
        raise ChemtomoError("give a target error, a resolution (nm) or both")
    if (target is not None and not target > 0) or (resolution is not None and not resolution > 0):
        raise ChemtomoError(f"target and resolution must be positive, got {target!r} and {resolution!r}")
    doses = sorted(float(d) for d in doses)
    tilts = sorted(int(n) for n in tilts)
    if not doses or doses[0] <= 0 or not tilts or tilts[0] < 2 or not methods or repeats < 1:
        raise ChemtomoError("give positive doses, at least 2 tilts, one method or more and repeats >= 1")
    from .recon.registry import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ChemtomoError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    truth = phantom_from_spec(phantom, elements, tuple(shape), seed=seed)
    rng = np.random.default_rng(seed)
    total = len(doses) * len(tilts) * len(methods) * repeats
    done, rows = 0, []
    if progress is not None:
        progress("plan", 0, total)
    for n in tilts:
        angles = np.linspace(-70, 70, n)
        for dose in doses:
            errs = {m: [] for m in methods}
            seconds = {m: 0.0 for m in methods}
            for _ in range(repeats):
                series = simulate_series(truth, angles, signals=("HAADF", signal), dose=dose, voxel_size=voxel_size,
                                         solid_angle=solid_angle, eels_detector=eels_detector, rng=rng)
                # signals are named by element (EDX) or by edge (EELS, e.g. Fe_L23): map them to the elements
                names = {e: next(s for s in series.names if s.split("_")[0] == e) for e in elements}
                series = TiltSeries({"HAADF": series["HAADF"], **{e: series[s] for e, s in names.items()}},
                                    pixel_size=series.pixel_size)
                for m in methods:
                    t0 = time.perf_counter()
                    vols = _reconstruct(series, m, elements, progress=_inner(progress, m))
                    seconds[m] += time.perf_counter() - t0
                    errs[m].append({e: scaled_nrmse(vols[e], truth[e]) for e in elements}
                                   | {f"res_{e}": shell_resolution(vols[e], truth[e], voxel_size=voxel_size)
                                      for e in elements})
                    done += 1
                    if progress is not None:
                        progress("plan", done, total)
            for m in methods:
                mean = {e: float(np.mean([r[e] for r in errs[m]])) for e in elements}
                res = {e: float(np.mean([r[f"res_{e}"] for r in errs[m]])) for e in elements}
                worst, coarsest = max(mean.values()), max(res.values())
                meets = (target is None or worst <= target) and (resolution is None or coarsest <= resolution)
                rows.append({"dose": dose, "tilts": n, "method": m, **{f"error_{e}": v for e, v in mean.items()},
                             **{f"resolution_nm_{e}": v for e, v in res.items()}, "worst": worst,
                             "resolution_nm": coarsest, "meets": meets, "seconds": seconds[m] / repeats})
    ok = [r for r in rows if r["meets"]]
    order = {m: i for i, m in enumerate(methods)}
    rec = min(ok, key=lambda r: (r["dose"], r["tilts"], r["worst"], order[r["method"]])) if ok else None
    settings = {"phantom": phantom, "elements": elements, "shape": list(shape), "voxel_size_nm": voxel_size,
                "doses": doses, "tilts": tilts, "methods": list(methods), "target": target,
                "resolution_nm": resolution, "signal": signal,
                "solid_angle_sr": solid_angle, "eels_detector": eels_detector, "repeats": repeats, "seed": seed,
                "score": "scale-invariant NRMSE and Fourier-shell-error resolution against the truth, worst element"}
    return Plan(rows, rec, settings)


def plan_figure(result: Plan, path) -> Path:
    """Worst-element error against dose, one panel per number of tilts, one line per method; target dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report.figures import save_figure

    tilts = sorted({r["tilts"] for r in result.rows})
    fig, axes = plt.subplots(1, len(tilts), figsize=(3.6 * len(tilts), 3.0), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], tilts):
        for m in result.settings["methods"]:
            pts = sorted((r["dose"], r["worst"]) for r in result.rows if r["tilts"] == n and r["method"] == m)
            if pts:
                d, e = zip(*pts)
                ax.plot(d, e, "o-", ms=3, label=m)
        if result.settings["target"] is not None:
            ax.axhline(result.settings["target"], color="k", ls="--", lw=0.8)
        rec = result.recommendation
        if rec is not None and rec["tilts"] == n:
            ax.plot([rec["dose"]], [rec["worst"]], "r*", ms=12, label="recommended")
        ax.set_xscale("log")
        ax.set_xlabel("total dose (e-/A^2)", fontsize=8)
        ax.set_title(f"{n} tilts", fontsize=9)
    axes[0, 0].set_ylabel("worst element error (scaled NRMSE)", fontsize=8)
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(result.settings["phantom"], fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
