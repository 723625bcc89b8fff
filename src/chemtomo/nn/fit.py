"""The training loop shared by every network of the project (denoiser, Noise2Noise, view synthesis, spectral
extractor): Adam, cosine learning rate, a step or time budget, early stopping on a held-out score, a progress bar."""

from __future__ import annotations

import collections
import math
import time
from typing import Callable

import torch

from ..core.errors import ChemtomoError


def fit(model: torch.nn.Module, loss: Callable[[int], torch.Tensor], *, steps: int | None = None,
        minutes: float | None = None, lr: float = 1e-3, lr_end: float = 1e-5, every: int = 100,
        check: Callable[[int], dict] | None = None, keep_best: str | None = None, label: str = "training",
        progress: bool = False, clip: float | None = None) -> dict:
    """Minimise ``loss(step)`` over `model`'s parameters until a step or time budget is spent.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; left in eval mode.
    loss : callable
        ``loss(step) -> scalar tensor`` of a fresh batch.
    steps, minutes : optional
        Stop after this many steps or this much wall time (whichever comes
        first; at least one). The learning rate decays from `lr` to `lr_end`
        (cosine) over the fraction of the budget spent.
    lr, lr_end : float
        Adam learning rate at the start and at the end.
    every : int, default 100
        Steps between calls of `check` (and points of the returned curve).
    check : callable, optional
        ``check(step) -> dict`` called with the model in eval mode before the
        first step, every `every` steps and at the end (e.g. a held-out
        score); its dict is added to that curve point.
    keep_best : str, optional
        A key of `check`'s dict to minimise: the model is left with the
        weights of the curve point where it was smallest (the starting
        weights included), i.e. early stopping on a held-out score.
    label : str
        Text of the progress bar.
    progress : bool, default False
        Show a Rich progress bar.
    clip : float, optional
        Clip the gradient's norm to this value before each step.

    Returns
    -------
    record : dict
        ``steps``, ``seconds``, ``curve`` (a list of ``{"step", "seconds",
        "train_loss", "lr", ...check's keys}``) and, with `keep_best`,
        ``best_step`` and ``best`` (the smallest score).
    """
    if steps is None and minutes is None:
        raise ChemtomoError("give steps or minutes (a training budget)")
    if steps is not None and (int(steps) != steps or steps < 0):
        raise ChemtomoError(f"steps must be a whole number >= 0, got {steps!r}")
    if minutes is not None and not minutes >= 0:
        raise ChemtomoError(f"minutes must be >= 0, got {minutes!r}")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    limit = minutes * 60 if minutes is not None else math.inf
    curve, run_loss, t0, step = [], [], time.perf_counter(), 0
    shown = collections.deque(maxlen=50)  # the bar's running mean; run_loss is emptied at every curve point
    best = {"score": None, "step": None, "state": None}

    def point():
        model.eval()
        with torch.inference_mode():
            extra = check(step) if check is not None else {}
        model.train()
        curve.append({"step": step, "seconds": round(time.perf_counter() - t0, 1),
                      "train_loss": float(sum(run_loss) / len(run_loss)) if run_loss else None,
                      "lr": opt.param_groups[0]["lr"], **extra})
        run_loss.clear()
        if keep_best is not None:
            score = extra[keep_best]
            if best["score"] is None or score < best["score"]:
                best.update(score=score, step=step,
                            state={k: v.detach().clone() for k, v in model.state_dict().items()})

    if keep_best is not None and check is None:
        raise ChemtomoError("keep_best needs a check function that returns that score")
    if check is not None:
        point()

    cols = [TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[loss]}"), TimeElapsedColumn()]
    with Progress(*cols, disable=not progress) as bar:
        task = bar.add_task(label, total=100, loss="loss -")  # no step yet
        model.train()
        while True:
            frac = max(step / steps if steps else (1.0 if steps == 0 else 0.0),
                       (time.perf_counter() - t0) / limit)
            if frac >= 1:
                break
            for g in opt.param_groups:
                g["lr"] = lr_end + 0.5 * (lr - lr_end) * (1 + math.cos(math.pi * frac))
            value = loss(step)
            v = value.item()
            if not math.isfinite(v):
                raise ChemtomoError(f"{label}: the training loss is {v} at step {step + 1}; the data hold values "
                                    "the network cannot fit (check them for extreme or non-finite counts)")
            opt.zero_grad()
            value.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            run_loss.append(v)
            shown.append(v)
            step += 1
            if step % every == 0:
                point()
            bar.update(task, completed=100 * frac, loss=f"loss {sum(shown) / len(shown):.4f}")
        if not curve or curve[-1]["step"] != step:
            point()
        bar.update(task, completed=100)
    record = {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "curve": curve}
    if keep_best is not None:
        model.load_state_dict(best["state"])
        record.update(best_step=best["step"], best=best["score"])
    model.eval()
    return record
