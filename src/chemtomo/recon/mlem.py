"""MLEM and OSEM: maximum-likelihood reconstruction of Poisson counts."""

from __future__ import annotations

import torch

from ..core.errors import ChemtomoError, ShapeError, check_counts
from ..core.operators import like_input, to_tensor
from ._common import (
    EPS,
    callback_runner,
    check_iterations,
    check_nonnegative,
    check_subsets,
    prepare_data,
    prepare_mask,
    prepare_volume,
    safe_reciprocal,
    sub_projectors,
    take_tilts,
)


def _background(background, shape, device) -> torch.Tensor:
    if isinstance(background, (int, float)):
        if not background >= 0:
            raise ChemtomoError(f"background must be non-negative expected counts, got {background!r}")
        return torch.full((), float(background), dtype=torch.float32, device=device)
    if tuple(background.shape) != tuple(shape):
        raise ShapeError(f"background has shape {tuple(background.shape)} but the counts have shape {tuple(shape)}")
    check_counts(background, "background")
    return to_tensor(background, device=device)


def mlem(op, counts, iterations=50, *, subsets=1, x0=None, background=0.0, mask=None, callback=None):
    """Reconstruct a volume from Poisson counts by MLEM (OSEM with subsets).

    Parameters
    ----------
    op : Operator
        Projector from ``v[y, z, x]`` to ``p[a, y, u]`` (non-negative entries).
        With ``subsets > 1`` it must be a :class:`~chemtomo.core.projector.Projector`.
    counts : array, shape op.range_shape
        Measured counts per detector pixel (non-negative; need not be
        integers); never modified.
    iterations : int, default 50
        Maximum number of iterations (full sweeps over all subsets); `callback`
        may stop earlier. The count regularises: noise grows with iterations.
    subsets : int, default 1
        Number of interleaved tilt subsets; 1 is MLEM, more is OSEM.
    x0 : array, shape op.domain_shape, optional
        Non-negative starting volume, never modified. Voxels at zero stay at
        zero (updates are multiplicative). If omitted, the uniform volume
        whose projections hold as many counts as the data (above background).
    background : float or array of shape op.range_shape, default 0
        Known expected background counts added to every projection.
    mask : bool array, shape op.domain_shape, optional
        Voxels allowed to be non-zero.
    callback : callable(iteration, x) -> bool, or a list of them, optional
        Called after each sweep (counted from 0); returning True stops.
        On the CPU ``x`` is a view: copy it to keep it.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as
        `counts`; non-negative, in counts per voxel length.

    Raises
    ------
    ChemtomoError
        If `counts` has the wrong shape or non-finite values; a
        :class:`~chemtomo.core.errors.DataError` for negative counts.

    Notes
    -----
    Maximises the Poisson log-likelihood of ``b ~ Poisson(A x + g)`` by

        x_k+1 = x_k / (A^T 1) * A^T (b / (A x_k + g))

    where ratios with a zero denominator count as zero. OSEM applies the same
    update with each subset's ``A_S``, ``b_S`` and sensitivity ``A_S^T 1`` in turn.

    References
    ----------
    L. A. Shepp and Y. Vardi, "Maximum likelihood reconstruction for emission
    tomography", IEEE Trans. Med. Imaging 1 (1982) 113-122; H. M. Hudson and
    R. S. Larkin, "Accelerated image reconstruction using ordered subsets of
    projection data", IEEE Trans. Med. Imaging 13 (1994) 601-609.

    Examples
    --------
    >>> import numpy as np
    >>> from chemtomo.core.geometry import TiltGeometry
    >>> from chemtomo.core.projector import Projector
    >>> A = Projector(TiltGeometry(np.arange(-60, 61, 10), (1, 16, 16)))
    >>> v = np.zeros((1, 16, 16), np.float32); v[:, 6:10, 6:10] = 5
    >>> rec = mlem(A, A(v), 200)
    >>> bool(rec.min() >= 0 and np.linalg.norm(rec - v) / np.linalg.norm(v) < 0.2)
    True
    """
    b = prepare_data(op, counts, name="counts", counts=True)
    iterations = check_iterations(iterations)
    n_sub = check_subsets(subsets, op.range_shape[0])
    g = _background(background, op.range_shape, b.device)
    m = prepare_mask(mask, op.domain_shape, b.device)
    run = callback_runner(callback, counts)
    ones = torch.ones(op.domain_shape, dtype=torch.float32, device=b.device)
    if m is not None:
        ones = ones * m
    if x0 is None:
        excess = torch.clamp(b.sum() - (g * torch.ones_like(b)).sum(), min=0.0)
        x = ones * (excess / op._apply(ones).sum().clamp(min=EPS))
    else:
        x = prepare_volume(x0, op.domain_shape, b.device, name="x0")
        check_nonnegative(x, "x0")
        if m is not None:
            x = x * m

    blocks = []
    parts = sub_projectors(op, n_sub, "mlem") if n_sub > 1 else [(None, op)]
    for idx, sub in parts:
        g_s = g if g.ndim == 0 else take_tilts(g, idx)
        sens = safe_reciprocal(sub._apply_adjoint(torch.ones(sub.range_shape, dtype=torch.float32, device=b.device)))
        if m is not None:
            sens = sens * m
        blocks.append((sub, take_tilts(b, idx), g_s, sens))
    for i in range(iterations):
        for sub, b_s, g_s, inv_sens in blocks:
            expected = sub._apply(x) + g_s
            ratio = torch.where(expected > 0, b_s / expected.clamp(min=1e-30), torch.zeros_like(expected))
            x = x * inv_sens * sub._apply_adjoint(ratio)
        if run(i, x):
            break
    return like_input(x, counts)
