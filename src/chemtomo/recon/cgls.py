"""CGLS: conjugate gradients on the normal equations, unconstrained least squares."""

from __future__ import annotations

import torch

from ..core.errors import ChemtomoError
from ..core.operators import like_input
from ._common import callback_runner, check_iterations, prepare_data, prepare_mask, prepare_volume


def cgls(op, data, iterations=30, *, x0=None, mask=None, callback=None, tol=None):
    """Reconstruct a volume by least squares with conjugate gradients (CGLS).

    Parameters
    ----------
    op : Operator
        Projector from ``v[y, z, x]`` to ``p[a, y, u]``.
    data : array, shape op.range_shape
        Tilt series as line integrals in voxel lengths; never modified.
    iterations : int, default 30
        Maximum number of iterations; `callback` or `tol` may stop earlier.
        The iteration count is the regularisation: stop before noise builds up.
    x0 : array, shape op.domain_shape, optional
        Starting volume, zeros if omitted; never modified.
    mask : bool array, shape op.domain_shape, optional
        Voxels allowed to be non-zero: CGLS then solves the least-squares
        problem restricted to them (``A`` replaced by ``A M``).
    callback : callable(iteration, x) -> bool, or a list of them, optional
        Called after each iteration (counted from 0); returning True stops.
        On the CPU ``x`` is a view: copy it to keep it.
    tol : float, optional
        Stop when the normal-equation residual has fallen below ``tol``
        relative to its start, ``||A^T (b - A x_k)|| <= tol ||A^T (b - A x_0)||``.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        If `data` has the wrong shape or non-finite values, or an option is invalid.

    Notes
    -----
    CGLS is **unconstrained**: it has no bounds, and volumes may hold negative
    values. It minimises ``||A x - b||^2`` over the Krylov space of
    ``A^T A``, one forward and one back projection per iteration:

        q = A p,  alpha = ||s||^2 / ||q||^2,  x += alpha p,  r -= alpha q,
        s' = A^T r,  p = s' + (||s'||^2 / ||s||^2) p

    starting from ``r = b - A x0``, ``s = p = A^T r``.

    References
    ----------
    M. R. Hestenes and E. Stiefel, "Methods of conjugate gradients for solving
    linear systems", J. Res. Nat. Bur. Stand. 49 (1952) 409-436.
    """
    b = prepare_data(op, data)
    iterations = check_iterations(iterations)
    if tol is not None and not float(tol) >= 0:
        raise ChemtomoError(f"tol must be a non-negative number or None, got {tol!r}")
    m = prepare_mask(mask, op.domain_shape, b.device)
    run = callback_runner(callback, data)

    def fwd(v):
        return op._apply(v if m is None else v * m)

    def adj(y):
        s = op._apply_adjoint(y)
        return s if m is None else s * m

    x = prepare_volume(x0, op.domain_shape, b.device, name="x0")
    if m is not None:
        x = x * m
    r = b - fwd(x)
    s = adj(r)
    p = s.clone()
    gamma = torch.sum(s * s)
    gamma0 = gamma
    for i in range(iterations):
        if gamma <= 0:
            break
        q = fwd(p)
        qq = torch.sum(q * q)
        if qq <= 0:
            break
        alpha = gamma / qq
        x = x + alpha * p
        r = r - alpha * q
        s = adj(r)
        gamma_new = torch.sum(s * s)
        p = s + (gamma_new / gamma) * p
        gamma = gamma_new
        stop = run(i, x)
        if stop or (tol is not None and bool(gamma <= (float(tol) ** 2) * gamma0)):
            break
    return like_input(x, data)
