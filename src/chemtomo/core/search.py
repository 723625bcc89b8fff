"""Refining the best point of a search on a uniform grid."""

from __future__ import annotations

import numpy as np


def grid_minimum(grid, values) -> float:
    """Minimiser of `values` on the uniform `grid`, refined by the parabola through the best point and its two
    neighbours; the best grid point itself at an end of the grid or where the parabola opens downwards.

    >>> grid_minimum([0.0, 1.0, 2.0], [3.0, 1.0, 2.0])
    1.1666666666666667
    """
    values = np.asarray(values, dtype=np.float64)
    i = int(np.argmin(values))
    if 0 < i < len(grid) - 1:
        lo, c, hi = values[i - 1], values[i], values[i + 1]
        den = lo - 2 * c + hi
        if den > 0:
            return float(grid[i] + 0.5 * (lo - hi) / den * (grid[1] - grid[0]))
    return float(grid[i])
