"""Batched non-negative least squares for one design matrix and many right-hand sides.

Block principal pivoting (Kim and Park 2011) on the normal equations: all
pixels share the Gram matrix ``G = D^T W D``; only ``B = D^T W S`` differs.
Columns with the same passive set are solved together, so the cost per
iteration is a few small ``K x K`` solves plus ``K x P`` products.

References
----------
J. Kim and H. Park, "Fast nonnegative matrix factorization: an active-set-like
method and comparisons", SIAM J. Sci. Comput. 33 (2011) 3261-3281.
"""

from __future__ import annotations

import numpy as np


def nnls_gram(gram, rhs, nonneg=None, *, iterations: int = 100):
    """Minimise ``x^T G x / 2 - b^T x`` with ``x[nonneg] >= 0`` for every column ``b`` of `rhs`.

    Parameters
    ----------
    gram : array (K, K)
        Symmetric positive definite Gram matrix ``D^T D``.
    rhs : array (K, P)
        ``D^T s`` for each of the P right-hand sides.
    nonneg : bool array (K,), optional
        Which unknowns are constrained to be >= 0 (all if omitted); the others are free.
    iterations : int, default 100
        Maximum pivoting iterations; unconverged columns are then clipped at 0.

    Returns
    -------
    x : ndarray (K, P), float64
    n_unconverged : int
        Columns still infeasible after `iterations` (0 normally).
    """
    g = np.asarray(gram, dtype=np.float64)
    b = np.asarray(rhs, dtype=np.float64)
    k, p = b.shape
    nonneg = np.ones(k, bool) if nonneg is None else np.asarray(nonneg, bool)
    s = 1.0 / np.sqrt(np.clip(np.diag(g), 1e-300, None))  # unit-diagonal scaling
    g = g * s[:, None] * s[None, :]
    b = b * s[:, None]
    tol = 1e-10 * max(float(np.abs(b).max(initial=0.0)), 1e-300)
    free = np.ones((k, p), bool)
    x = _solve_grouped(g, b, free, np.arange(p))
    y = np.zeros_like(x)
    best = np.full(p, k + 1)
    backup = np.full(p, 3)
    for _ in range(iterations):
        bad = nonneg[:, None] & ((free & (x < -tol)) | (~free & (y < -tol)))
        n_bad = bad.sum(axis=0)
        todo = np.flatnonzero(n_bad)
        if todo.size == 0:
            break
        nb = n_bad[todo]
        improve = nb < best[todo]
        best[todo[improve]] = nb[improve]
        backup[todo[improve]] = 3
        use_backup = ~improve & (backup[todo] <= 0)
        backup[todo[~improve & ~use_backup]] -= 1
        flip = bad[:, todo]
        if use_backup.any():  # exchange only the last infeasible variable
            sub = flip[:, use_backup]
            last = k - 1 - np.argmax(sub[::-1], axis=0)
            one = np.zeros_like(sub)
            one[last, np.arange(sub.shape[1])] = True
            flip[:, use_backup] = one
        free[:, todo] ^= flip
        x[:, todo] = _solve_grouped(g, b, free, todo)
        y[:, todo] = g @ x[:, todo] - b[:, todo]
        y[free] = 0.0
    bad = nonneg[:, None] & ((free & (x < -tol)) | (~free & (y < -tol)))
    n_unconverged = int(bad.any(axis=0).sum())
    x = np.where(nonneg[:, None], np.clip(x, 0.0, None), x)
    return x * s[:, None], n_unconverged


def _solve_grouped(g, b, free, cols):
    """Solve ``G_FF x_F = b_F`` (x = 0 elsewhere) for the columns `cols`, grouped by passive set F."""
    k = g.shape[0]
    out = np.zeros((k, cols.size))
    if cols.size == 0:
        return out
    keys = np.packbits(free[:, cols].T, axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for i in range(uniq.shape[0]):
        members = np.flatnonzero(inverse == i)
        f = free[:, cols[members[0]]]
        if not f.any():
            continue
        idx = np.flatnonzero(f)
        sol = np.linalg.solve(g[np.ix_(idx, idx)], b[np.ix_(idx, cols[members])])
        out[np.ix_(idx, members)] = sol
    return out
