"""Total-variation reconstruction with a least-squares or Poisson data term, over :func:`pdhg`."""

from __future__ import annotations

import torch

from ..core.errors import ChemtomoError
from ..core.operators import like_input
from ._common import (callback_runner, check_bounds, heldout_nll, noise_variance, prepare_data, prepare_mask,
                      prepare_volume, split_half, squared_error_per_slice)
from .pdhg import KL, L2, TV, pdhg
from .selection import VIEWS_RULE, choose_weight, views_to_hold

DATA_TERMS = ("l2", "kl")

#: weights tried by ``weight=None`` with Poisson data (count splitting), extended by factors of 3 while the best is
#: at an end (:func:`~chemtomo.recon.selection.choose_weight`)
WEIGHT_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)

#: weights tried by ``weight=None`` with least-squares data (held-out views), in units of ``s^2 / c``: the data's
#: noise variance over the mean volume value they imply (``sum(b) / sum(A 1)``), so that they follow the data's scale
#: and noise; extended by factors of 3 as above
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


def tv(op, data, iterations=200, *, weight=None, data_term="l2", background=0.0, x0=None, bounds=(0.0, None),
       mask=None, callback=None):
    """Reconstruct a volume with isotropic total-variation regularisation.

    Parameters
    ----------
    op : Operator
        Projector from ``v[y, z, x]`` to ``p[a, y, u]``.
    data : array, shape op.range_shape
        Tilt series: line integrals (``data_term="l2"``) or counts
        (``data_term="kl"``); never modified.
    iterations : int, default 200
        Maximum number of primal-dual iterations; `callback` may stop earlier.
    weight : float, optional
        TV weight lambda >= 0 (larger regularises more), in units of the
        data term per unit of voxel value. The best value grows with the
        noise and, for "l2", with the scale of the data. Default (None):
        for ``"kl"`` it is chosen without ground truth by count splitting
        (:func:`split_weight`: every count is split binomially into two
        halves, the half-data problem is solved for the weights
        :data:`WEIGHT_GRID`, extended while the best is at an end, each fit
        is scored by the Poisson likelihood of the other half, and the best
        weight is used on the full data; the weight is relative to the
        likelihood, so it carries over), at the cost of 5 to 11 extra runs;
        for ``"l2"`` it is chosen by held-out views (:func:`views_weight`:
        every 4th view left out, the rest reconstructed at the weights
        :data:`L2_GRID` times the data's noise variance over their mean volume
        value, extended while the
        best is at an end, each scored by the squared error of the views left
        out, slice by slice; the largest weight within one standard error of
        the lowest is taken), at the cost of 5 to 11 extra runs; it needs a
        Projector and at least 4 views.
    data_term : {"l2", "kl"}, default "l2"
        ``"l2"``: ``1/2 ||A x - b||^2`` (Gaussian noise); ``"kl"``: Poisson
        negative log-likelihood ``sum(A x + g - b log(A x + g))`` for counts.
    background : float or array, default 0
        Expected background counts g (``data_term="kl"`` only).
    x0 : array, shape op.domain_shape, optional
        Starting volume, zeros if omitted; never modified.
    bounds : (float | None, float | None), default (0, None)
        Box constraint; None leaves that side open.
    mask : bool array, shape op.domain_shape, optional
        Voxels allowed to be non-zero.
    callback : callable(iteration, x) -> bool, or a list of them, optional
        Called after each iteration (counted from 0); returning True stops.
        On the CPU ``x`` is a view: copy it to keep it.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        If `data` has the wrong shape or non-finite values (or negative values
        with ``data_term="kl"``), or an option is invalid.

    Notes
    -----
    Solves

        min_{x in bounds, x = 0 outside mask}  F(A x) + lambda sum_v |grad x (v)|_2

    with forward differences (Neumann boundary) by the Chambolle-Pock
    algorithm (:func:`chemtomo.recon.pdhg.pdhg`); step sizes come from
    power-method estimates of ``||A||`` and the bound ``||grad|| <= sqrt(12)``.
    For ``"kl"`` the objective is multiplied internally by
    ``sum(b) / sum(A 1)``, the value of the uniform volume that explains the
    counts: the minimiser is unchanged, but the dual variables get the scale
    of the volume, so the same step sizes work at any dose.

    References
    ----------
    E. Y. Sidky, J. H. Jorgensen and X. Pan, "Convex optimization problem
    prototyping for image reconstruction in computed tomography with the
    Chambolle-Pock algorithm", Phys. Med. Biol. 57 (2012) 3065-3091.
    """
    if data_term not in DATA_TERMS:
        raise ChemtomoError(f"unknown data_term {data_term!r}; choose one of {', '.join(DATA_TERMS)}")
    if data_term == "l2" and not (isinstance(background, (int, float)) and background == 0):
        raise ChemtomoError("background applies to data_term='kl' only; subtract it from the data for 'l2'")
    if weight is None and data_term == "l2":
        weight, _, _ = views_weight(op, data, iterations, bounds=bounds, mask=mask)
    elif weight is None:
        weight, _, _ = split_weight(op, data, iterations, background=background, bounds=bounds, mask=mask)
    elif not float(weight) >= 0:
        raise ChemtomoError(f"weight must be non-negative (larger regularises more), got {weight!r}")
    b = prepare_data(op, data, counts=data_term == "kl")
    bounds = check_bounds(bounds)
    m = prepare_mask(mask, op.domain_shape, b.device)
    x = prepare_volume(x0, op.domain_shape, b.device, name="x0")
    if data_term == "l2":
        term, reg = L2(b), TV(weight)
    else:
        # Multiplying the whole objective by the uniform volume that explains the counts
        # (sum b / sum A 1) leaves its minimiser unchanged but gives the dual variables the
        # scale of the volume, as for L2, so one step-size rule serves any dose.
        ones = torch.ones(op.domain_shape, dtype=torch.float32, device=b.device)
        scale = max(float(b.sum() / op._apply(ones).sum().clamp(min=1e-12)), 1e-6)
        term, reg = KL(b, background=background, scale=scale), TV(weight * scale)
    run = callback_runner(callback, data)
    x = pdhg([(term, op)], reg, iterations, x0=x, bounds=bounds, mask=m, callback=run)
    return like_input(x, data)


def split_weight(op, data, iterations=200, *, grid=WEIGHT_GRID, background=0.0, bounds=(0.0, None), mask=None,
                 rng=0) -> tuple[float, list[tuple[float, float]], bool]:
    """TV-KL weight by count splitting (no ground truth); see the `weight` parameter of :func:`tv`.

    Returns
    -------
    weight : float
        The weight of lowest held-out Poisson negative log-likelihood.
    table : list of (weight, held-out negative log-likelihood)
        Every weight tried, sorted.
    interior : bool
        False if the best is still at an end of the grid after it was
        extended 6 times by factors of 3 (:func:`~chemtomo.recon.selection.choose_weight`).
    """
    b = prepare_data(op, data, counts=True)
    train, test = split_half(b, rng)
    # each half carries half the expected background
    bg = 0.5 * float(background) if isinstance(background, (int, float)) else 0.5 * torch.as_tensor(background).to(b.device)

    def score(w, start):
        x = tv(op, train, iterations, weight=w, data_term="kl", background=bg, bounds=bounds, mask=mask)
        return heldout_nll(op._apply(torch.as_tensor(x, device=b.device)) + bg, test), None

    return choose_weight(score, grid, factor=3.0)


def views_weight(op, data, iterations=200, *, grid=L2_GRID, bounds=(0.0, None), mask=None
                 ) -> tuple[float, list[tuple[float, float]], bool]:
    """TV-L2 weight by held-out views (no ground truth); see the `weight` parameter of :func:`tv`.

    The views of :func:`~chemtomo.recon.selection.views_to_hold` (every 4th from the third; the middle one of 4
    or 5) are left out, the rest is reconstructed at each weight of `grid` times ``s^2 / c``, with ``s^2`` the
    data's noise variance (:func:`~chemtomo.recon._common.noise_variance`) and ``c = sum(b) / sum(A 1)`` their mean
    volume value (so the weights follow the data's scale and noise), each fit warm-started from its
    neighbour's, and scored by the squared error of the views left out, slice by slice; the weight is the
    largest whose error is within one standard error of the lowest (decision 42), and the grid is extended by
    factors of 3 while the lowest is at an end (:func:`~chemtomo.recon.selection.choose_weight`). The full
    data take that weight: the noise of the kept views is that of all of them.

    Returns
    -------
    weight : float
        The weight chosen, in the data's units (as :func:`tv`'s `weight`).
    table : list of (weight, held-out squared error)
        Every weight tried, sorted.
    interior : bool
        False if the best is still at an end of the grid after it was extended 6 times.
    """
    import numpy as np

    from ..core.projector import Projector

    if not isinstance(op, Projector):
        raise ChemtomoError(f"a TV weight by held-out views needs a Projector (a tilt geometry to leave views out "
                            f"of), got {type(op).__name__}; give weight=")
    b = prepare_data(op, data)
    n = op.geometry.angles.size
    held = views_to_hold(n, "the tilt series")
    kept = np.setdiff1d(np.arange(n), held)
    fit_op, test_op = Projector(op.geometry[kept]), Projector(op.geometry[held])
    train = b[torch.as_tensor(kept, device=b.device)]
    test = b[torch.as_tensor(held, device=b.device)]
    ones = torch.ones(op.domain_shape, dtype=torch.float32, device=b.device)
    level = float(b.sum() / op._apply(ones).sum().clamp(min=1e-12))
    if not level > 0:
        raise ChemtomoError("the data sum to zero or less, so they set no scale for the TV weight; give weight=")
    level = noise_variance(b) / level

    def score(w, start):
        x = tv(fit_op, train, iterations, weight=w * level, data_term="l2", x0=start, bounds=bounds, mask=mask)
        return squared_error_per_slice(test_op._apply(x), test), x

    best, table, interior = choose_weight(score, grid, factor=3.0, rule=VIEWS_RULE)
    return best * level, [(w * level, v) for w, v in table], interior
