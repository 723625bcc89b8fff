"""Uncertainty of every per-particle number by count splitting.

The X-ray counts of every element map are split binomially into two halves
(each count goes to either half with probability 1/2), which are independent
Poisson data with half the dose. Both halves are reconstructed with the same
method and options as the full data and quantified the same way. For a number
q whose variance scales as one over the counts, ``var(q_half) = 2 var(q_full)``
and the two halves are independent, so ``E[(q_1 - q_2)^2] = 4 var(q_full)``:
the standard deviation of the full-data number is estimated by
``sqrt(mean over splits of (q_1 - q_2)^2 / 4)``. Several splits average out the
randomness of the estimate. Non-count signals (HAADF) are used whole in both
halves: the uncertainty covers the X-ray counting noise, which dominates at
low dose, not the HAADF noise.

The halves are quantified on the full data's particles (its labels): a half at
low counts may segment differently, and the question is how much each number
of *these* particles moves with the counting noise. Shell surfaces are found
anew in each half.
"""

from __future__ import annotations

import numpy as np
from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError
from ..core.names import is_counts
from .particles import quantify_volumes


def _halves(series: TiltSeries, rng) -> tuple[TiltSeries, TiltSeries]:
    from ..physics.counts import split_counts

    first, second = {}, {}
    for name in series.names:
        s = series[name]
        if is_counts(name) and name != "HAADF":
            a, b = split_counts(np.rint(np.clip(s.data, 0, None)).astype(np.int64), 0.5, rng)
            first[name] = Signal(a.astype(np.float32), s.angles, s.units)
            second[name] = Signal(b.astype(np.float32), s.angles, s.units)
        else:
            first[name] = second[name] = s
    kw = {"pixel_size": series.pixel_size, "metadata": dict(series.metadata)}
    return TiltSeries(first, **kw), TiltSeries(second, **kw)


def split_uncertainty(series: TiltSeries, method: str, full: dict, *, n_splits: int = 2, rng=0,
                      iterations: int | None = None, thickness: int | None = None, options: dict | None = None,
                      quantify_options: dict | None = None, progress=None) -> list[dict]:
    """Standard deviations of the per-particle numbers of `full` by count splitting (module notes).

    Parameters
    ----------
    series : TiltSeries
        The measured tilt series (HAADF and element maps in counts).
    method : str
        Reconstruction method, as for :func:`chemtomo.recon.reconstruct_series`.
    full : dict
        :func:`~chemtomo.quantify.particles.quantify_volumes` result on the full data.
    n_splits : int, default 2
        Independent binomial splits (each costs two reconstructions).
    rng : int or numpy.random.Generator, default 0
        Random source of the splits.
    iterations, thickness, options
        Passed to the reconstruction, as for the full data.
    quantify_options : dict, optional
        Keywords of :func:`quantify_volumes`, as for the full data (``voxel_size`` default: the series').
    progress : callable(name, done, total), optional
        Called as ``("uncertainty", halves done, 2 * n_splits)`` and, during each reconstruction, as
        :func:`~chemtomo.recon.reconstruct_series` calls it.

    Returns
    -------
    list of dict
        One dict per row of `full`: ``{column + "_sd": value}`` for every
        numeric column (NaN where a half could not measure it).
    """
    from ..recon.series import reconstruct_series

    if n_splits < 1:
        raise ChemtomoError(f"n_splits must be at least 1, got {n_splits}")
    if not any(is_counts(n) and n != "HAADF" for n in series.names):
        raise ChemtomoError("count splitting needs X-ray count maps in the series; it has " + ", ".join(series.names))
    gen = np.random.default_rng(rng)
    n = len(full["rows"])
    numeric = [[k for k, v in r.items() if isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
                and k != "particle"] for r in full["rows"]]
    sums = [dict.fromkeys(keys, 0.0) for keys in numeric]
    counts = [dict.fromkeys(keys, 0) for keys in numeric]
    q = dict(quantify_options or {}, labels=full["labels"])
    if progress is not None:
        progress("uncertainty", 0, 2 * int(n_splits))
    for split in range(int(n_splits)):
        results = []
        for half in _halves(series, gen):
            vs = reconstruct_series(half, method, iterations=iterations, thickness=thickness, options=options,
                                    progress=progress)
            results.append(quantify_volumes(vs.volumes, **({"voxel_size": vs.voxel_size} | q)))
            if progress is not None:
                progress("uncertainty", 2 * split + len(results), 2 * int(n_splits))
        for i, (a, b) in enumerate(zip(results[0]["rows"], results[1]["rows"])):
            for k in numeric[i]:
                if k in a and k in b and np.isfinite(a[k]) and np.isfinite(b[k]):
                    sums[i][k] += (float(a[k]) - float(b[k])) ** 2
                    counts[i][k] += 1
    return [{f"{k}_sd": (np.sqrt(sums[i][k] / (4 * counts[i][k])) if counts[i][k] else float("nan"))
             for k in numeric[i]} for i in range(n)]
