"""Choosing a regularisation weight on a grid that grows until its best point is interior.

Count splitting (every count split binomially into two independent Poisson
halves; fit one half, score the other by its Poisson negative log-likelihood)
gives a held-out score for each trial weight and needs no ground truth. The
search below is the one rule the methods share: score a starting grid, and
while the best score sits at an end of what was tried, try one more weight
beyond that end, `factor` times further out, until the best is interior or
`max_extend` weights were added. The caller records whether it was interior.

Data that cannot be split (images, background-subtracted maps) are scored by held-out
views instead (:func:`held_views`): fit without some views, predict them. Predicted views sum the
volume along rays, where its noise averages out, so they see a regulariser's bias more than the
noise it removes; such searches take the one-standard-error rule (``rule="one-se"``, decision 42).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import ChemtomoError

#: every HOLDOUT-th view (not the first or last) is left out to score a fit by the views it did not see
HOLDOUT = 4
#: fewest views from which one can be left out: below 6 only the middle one is (decision 39)
FEWEST_VIEWS = 4
#: how :func:`choose_weight` picks among the tried weights: the lowest score, or the largest weight whose
#: paired score is within one standard error of the lowest (needs per-unit scores)
RULES = ("min", "one-se")
#: the rule of weights chosen by held-out views (decision 42), and how the provenance names it
VIEWS_RULE = "one-se"
VIEWS_WEIGHT_RULE = "held-out views, one standard error"


def held_views(n_views: int) -> np.ndarray:
    """Indices of the views left out to score a fit: every :data:`HOLDOUT`-th from the third, never the last;
    none below 6 views.

    >>> held_views(15).tolist(), held_views(5).size
    ([2, 6, 10], 0)
    """
    return np.arange(2, n_views - 1, HOLDOUT) if n_views >= 6 else np.array([], dtype=int)


def views_apart(angles, held, tol: float = 0.25) -> np.ndarray:
    """Indices of the `angles` (degrees) at least `tol` degrees from every one of `held`: the views of another
    signal (the HAADF) that a fit without the `held` views may keep.

    >>> views_apart([-10, 0, 10], [0.1]).tolist()
    [0, 2]
    """
    a, h = np.asarray(angles, dtype=float), np.asarray(held, dtype=float)
    if h.size == 0:
        return np.arange(a.size)
    return np.flatnonzero(np.min(np.abs(a[:, None] - h[None, :]), axis=1) >= tol)


def views_to_hold(n_views: int, what: str = "the series", instead: str = "give the weight instead",
                  held=None) -> np.ndarray:
    """:func:`held_views` (or `held`, its result if already taken), else the middle view for 4 or 5 views (a
    rough choice); below 4 an error that names `what` and what to do `instead`.

    >>> views_to_hold(15).tolist(), views_to_hold(5).tolist()
    ([2, 6, 10], [2])
    """
    held = held_views(n_views) if held is None else np.asarray(held, dtype=int)
    if held.size == 0 and n_views >= FEWEST_VIEWS:
        held = np.array([n_views // 2])
    if held.size == 0:
        raise ChemtomoError(f"{what} has {n_views} views; scoring by held-out views needs at least {FEWEST_VIEWS} "
                            f"to leave one out and predict it; {instead}")
    return held


def within_one_se(units: dict[float, np.ndarray]) -> float:
    """The largest weight whose per-unit scores exceed those of the lowest-scoring weight by at most one
    standard error of their paired difference (the one-standard-error rule).

    Parameters
    ----------
    units : dict weight -> 1-D array
        Per-unit held-out scores (e.g. per slice), the same units for every weight; a weight's score is
        their sum.

    Examples
    --------
    >>> within_one_se({0.1: np.array([10.0, 12.0, 11.0]), 1.0: np.array([10.5, 11.7, 11.0]),
    ...                10.0: np.array([14.0, 15.0, 16.0])})
    1.0
    """
    best = min(units, key=lambda w: float(np.sum(units[w])))
    pick = best
    for w in sorted(v for v in units if v > best):
        d = np.asarray(units[w], dtype=np.float64) - np.asarray(units[best], dtype=np.float64)
        se = math.sqrt(d.size) * float(np.std(d, ddof=1)) if d.size > 1 else 0.0
        if float(d.sum()) <= se:
            pick = w
    return pick


def choose_weight(score: Callable[[float, Any], tuple[Any, Any]], start_grid: Sequence[float], *,
                  factor: float = 3.0, max_extend: int = 6, ascending: bool = False, rule: str = "min"
                  ) -> tuple[float, list[tuple[float, float]], bool]:
    """The weight of lowest score, extending the grid geometrically while the best lies at an end.

    Parameters
    ----------
    score : callable(weight, start) -> (value, state)
        Held-out score of `weight`, lower is better (e.g. the Poisson negative
        log-likelihood of the held-out half of the counts), or a 1-D array of
        per-unit scores (e.g. per slice) whose sum is the score. `start` is the
        `state` returned for the tried weight nearest to `weight` (on a log
        scale), or None for the first call, so a fit can be warm-started from
        its neighbour; return None as `state` if there is nothing to pass on.
        The grid is tried from the largest weight down (or up, `ascending`), then outwards.
    start_grid : sequence of float
        Weights tried first (any order; duplicates are dropped), all >= 0.
    factor : float, default 3
        Ratio between a new weight and the end it extends (> 1).
    max_extend : int, default 6
        Most weights added beyond the start grid.
    ascending : bool, default False
        Try the start grid from the smallest weight up (for fits warm-started from the previous,
        less regularised one).
    rule : {"min", "one-se"}, default "min"
        ``"one-se"`` (`score` returns per-unit arrays): the largest tried weight whose score is within
        one standard error of the lowest (:func:`within_one_se`); the grid is extended for the lowest
        only, so the pick stays among the weights the search needed.

    Returns
    -------
    best : float
        The tried weight with the lowest score (``"one-se"``: the one that rule picks).
    table : list of (weight, value)
        Every tried weight and its score, sorted by weight.
    interior : bool
        True if the best has a tried weight on each side (a bracketed
        minimum); False if it is still at an end after `max_extend` additions
        (or at weight 0, below which nothing can be tried).

    Raises
    ------
    ChemtomoError
        For an empty grid, a negative or non-finite weight, ``factor <= 1``,
        a negative `max_extend` or an unknown `rule`.

    Examples
    --------
    >>> import math
    >>> best, table, interior = choose_weight(lambda w, s: ((math.log(w) - math.log(50)) ** 2, None), [0.3, 1, 3])
    >>> best, interior, [w for w, _ in table]
    (81.0, True, [0.3, 1.0, 3.0, 9.0, 27.0, 81.0, 243.0])
    """
    grid = sorted({float(w) for w in start_grid}, reverse=not ascending)
    if not grid:
        raise ChemtomoError("start_grid is empty; give at least one weight to try, e.g. [0.1, 0.3, 1]")
    if not all(math.isfinite(w) and w >= 0 for w in grid):
        raise ChemtomoError(f"start_grid must hold finite non-negative weights, got {list(start_grid)}")
    if not float(factor) > 1:
        raise ChemtomoError(f"factor must be above 1 (the ratio between successive weights), got {factor!r}")
    if isinstance(max_extend, bool) or not isinstance(max_extend, int) or max_extend < 0:
        raise ChemtomoError(f"max_extend must be a non-negative integer, got {max_extend!r}")
    if rule not in RULES:
        raise ChemtomoError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    values: dict[float, float] = {}
    units: dict[float, np.ndarray] = {}
    states: dict[float, Any] = {}

    def nearest(w: float):
        if not states:
            return None
        key = min(states, key=lambda v: abs(math.log(max(v, 1e-300)) - math.log(max(w, 1e-300))))
        return states[key]

    def run(w: float) -> None:
        value, state = score(w, nearest(w))
        units[w] = np.atleast_1d(np.asarray(value, dtype=np.float64))
        values[w], states[w] = float(units[w].sum()), state

    for w in grid:
        run(w)
    for _ in range(max_extend):
        best, lo, hi = min(values, key=values.get), min(values), max(values)
        if best == hi:
            run(hi * float(factor))
        elif best == lo and lo > 0:
            run(lo / float(factor))
        else:
            break
    best, lo, hi = min(values, key=values.get), min(values), max(values)
    chosen = within_one_se(units) if rule == "one-se" else best
    return chosen, sorted(values.items()), lo < best < hi


def vertex(table) -> float:
    """Minimiser of the parabola through the best score and its two neighbours, in log weight.

    A sub-grid refinement of :func:`choose_weight`'s `table`; clipped to the neighbours, and the best
    tried weight itself when it is at an end or the parabola opens downwards.

    Parameters
    ----------
    table : list of (weight, value) or dict weight -> value
        Tried weights (> 0 where refined) and their scores, lower is better.

    Examples
    --------
    >>> round(vertex([(1.0, 4.0), (10.0, 1.0), (100.0, 4.0)]), 6)
    10.0
    """
    import numpy as np

    scores = dict(table)
    values = sorted(scores)
    i = min(range(len(values)), key=lambda j: scores[values[j]])
    if i == 0 or i == len(values) - 1:
        return values[i]
    x = np.log(values[i - 1:i + 2])
    y = np.array([scores[v] for v in values[i - 1:i + 2]])
    a = np.polyfit(x, y, 2)
    if a[0] <= 0:
        return values[i]
    return float(np.exp(np.clip(-a[1] / (2 * a[0]), x[0], x[2])))
