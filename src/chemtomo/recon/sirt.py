"""SIRT and its ordered-subsets variant (SART-type) for tilt series."""

from __future__ import annotations

import torch

from ..core.errors import ChemtomoError
from ..core.operators import like_input
from ._common import (
    callback_runner,
    check_bounds,
    check_iterations,
    check_subsets,
    prepare_data,
    prepare_mask,
    prepare_volume,
    project_feasible,
    safe_reciprocal,
    sub_projectors,
    take_tilts,
)


def _weights(op, shape, device, mask):
    """SIRT's ``R = 1 / (A 1)`` and ``C = 1 / (A^T 1)``, zero where a sum vanishes (and outside `mask`)."""
    ones = torch.ones(shape, dtype=torch.float32, device=device)
    if mask is not None:
        ones = ones * mask
    r = safe_reciprocal(op._apply(ones))
    c = safe_reciprocal(op._apply_adjoint(torch.ones(op.range_shape, dtype=torch.float32, device=device)))
    if mask is not None:
        c = c * mask
    return r, c


def _check_tol(tol):
    if tol is not None and not (float(tol) >= 0):
        raise ChemtomoError(f"tol must be a non-negative number or None, got {tol!r}")
    return None if tol is None else float(tol)


def _converged(x_new, x_old, tol) -> bool:
    if tol is None:
        return False
    step = torch.linalg.vector_norm(x_new - x_old)
    return bool(step <= tol * torch.linalg.vector_norm(x_new))


def sirt(op, data, iterations=100, *, x0=None, bounds=(0.0, None), mask=None, callback=None, tol=None):
    """Reconstruct a volume with SIRT (simultaneous iterative reconstruction).

    Parameters
    ----------
    op : Operator
        Projector from ``v[y, z, x]`` to ``p[a, y, u]`` (any operator with
        non-negative entries works).
    data : array, shape op.range_shape
        Tilt series as line integrals in voxel lengths; never modified.
    iterations : int, default 100
        Maximum number of iterations; `callback` or `tol` may stop earlier.
    x0 : array, shape op.domain_shape, optional
        Starting volume, zeros if omitted; never modified.
    bounds : (float | None, float | None), default (0, None)
        Box applied after every update; None leaves that side open.
    mask : bool array, shape op.domain_shape, optional
        Voxels allowed to be non-zero.
    callback : callable(iteration, x) -> bool, or a list of them, optional
        Called after each iteration (counted from 0) with the current volume;
        returning True stops. On the CPU ``x`` is a view: copy it to keep it.
    tol : float, optional
        Stop when an update changes the volume by less than ``tol`` relative,
        ``||x_k+1 - x_k|| <= tol ||x_k+1||``.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        If `data` has the wrong shape or non-finite values, or an option is invalid.

    Notes
    -----
    With ``R = diag(1 / A 1)`` (inverse ray sums) and ``C = diag(1 / A^T 1)``
    (inverse column sums), both zero where the sum is zero, and ``P`` the
    projection onto `bounds` and `mask`:

        x_k+1 = P(x_k + C A^T R (b - A x_k))

    References
    ----------
    P. Gilbert, "Iterative methods for the three-dimensional reconstruction of
    an object from projections", J. Theor. Biol. 36 (1972) 105-117.

    Examples
    --------
    >>> import numpy as np
    >>> from chemtomo.core.geometry import TiltGeometry
    >>> from chemtomo.core.projector import Projector
    >>> A = Projector(TiltGeometry(np.arange(0, 180, 10), (1, 16, 16)))
    >>> v = np.zeros((1, 16, 16), np.float32); v[:, 5:11, 5:11] = 1
    >>> rec = sirt(A, A(v), 200)
    >>> bool(np.linalg.norm(rec - v) / np.linalg.norm(v) < 0.1)
    True
    """
    b = prepare_data(op, data)
    iterations = check_iterations(iterations)
    bounds, tol = check_bounds(bounds), _check_tol(tol)
    m = prepare_mask(mask, op.domain_shape, b.device)
    x = project_feasible(prepare_volume(x0, op.domain_shape, b.device, name="x0"), bounds, m)
    run = callback_runner(callback, data)
    r, c = _weights(op, op.domain_shape, b.device, m)
    for i in range(iterations):
        x_old = x if tol is not None else None
        x = project_feasible(x + c * op._apply_adjoint(r * (b - op._apply(x))), bounds, m)
        stop = run(i, x)
        if stop or _converged(x, x_old, tol):
            break
    return like_input(x, data)


def sart(op, data, iterations=10, *, subsets=10, relaxation=1.0, x0=None, bounds=(0.0, None), mask=None,
         callback=None):
    """Reconstruct a volume with ordered-subsets SIRT (SART-type updates).

    Parameters
    ----------
    op : Projector
        Tilt-series projector; its geometry is split into tilt subsets.
    data : array, shape op.range_shape
        Tilt series as line integrals in voxel lengths; never modified.
    iterations : int, default 10
        Full sweeps over all subsets; `callback` may stop earlier.
    subsets : int, default 10
        Number of tilt subsets (capped at the number of tilts). Subset s holds
        every `subsets`-th tilt in order of angle, starting at the s-th, so
        each subset spans the whole tilt range. ``subsets=1`` is SIRT.
    relaxation : float, default 1.0
        Step factor lambda in (0, 2); smaller values damp noise.
    x0, bounds, mask, callback
        As in :func:`sirt`; the callback runs after each full sweep.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        If `op` is not a Projector, `data` has the wrong shape or non-finite
        values, or an option is invalid.

    Notes
    -----
    For each subset S in turn, with its own weights ``R_S = 1 / (A_S 1)`` and
    ``C_S = 1 / (A_S^T 1)``:

        x <- P(x + lambda C_S A_S^T R_S (b_S - A_S x))

    One sweep costs about as much as one SIRT iteration but moves the
    volume about `subsets` times as far, so far fewer sweeps are needed.

    References
    ----------
    A. H. Andersen and A. C. Kak, "Simultaneous algebraic reconstruction
    technique (SART)", Ultrason. Imaging 6 (1984) 81-94.
    """
    b = prepare_data(op, data)
    iterations = check_iterations(iterations)
    n_sub = check_subsets(subsets, op.range_shape[0])
    relaxation = float(relaxation)
    if not 0.0 < relaxation < 2.0:
        raise ChemtomoError(f"relaxation must lie in (0, 2), got {relaxation:g}")
    bounds = check_bounds(bounds)
    m = prepare_mask(mask, op.domain_shape, b.device)
    x = project_feasible(prepare_volume(x0, op.domain_shape, b.device, name="x0"), bounds, m)
    run = callback_runner(callback, data)
    blocks = []
    for idx, sub in sub_projectors(op, n_sub, "sart"):
        r, c = _weights(sub, op.domain_shape, b.device, m)
        blocks.append((sub, take_tilts(b, idx), r, relaxation * c))
    for i in range(iterations):
        for sub, b_s, r, c in blocks:
            x = project_feasible(x + c * sub._apply_adjoint(r * (b_s - sub._apply(x))), bounds, m)
        if run(i, x):
            break
    return like_input(x, data)
