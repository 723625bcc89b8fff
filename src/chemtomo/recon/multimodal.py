"""Joint HAADF + EDX reconstruction of elemental volumes: bimodal, TNV, coupled TGV and HAADF-guided TV on one PDHG engine.

All three methods reconstruct a multichannel volume ``u[c, y, z, x]``, one
channel per element (plus, with ``haadf="channel"``, one for the HAADF
volume), from a dense HAADF series and sparse EDX maps, each signal with its
own projector (its own tilts).

Channel scales (one documented choice)
--------------------------------------
EDX counts per unit concentration differ by element and are unknown on real
data. The HAADF weights ``r_e`` (:func:`~chemtomo.recon.channels.mix_weights`,
NNLS of co-acquired HAADF against EDX projections, Zhong et al. 2017) give
the HAADF signal per EDX count of each element. Internally each element
channel holds its *HAADF contribution* ``u_e = r_e x_e / c_H``, with ``x_e``
the volume in EDX counts per voxel length (what MLEM returns) and
``c_H = sum(h) / sum(A_H 1)`` the mean HAADF volume value. So every channel
is dimensionless and of order one, the HAADF model is ``sum_e u_e`` (Mix
weights all 1), a coupled regulariser sees the channels on one footing, and
element e's data term is ``(KL(b_e), (c_H / r_e) A_e @ Channel(e))``. The
returned volumes are converted back: elements in counts per voxel length,
"HAADF" in HAADF data units per voxel length. An element with ``r_e = 0``
(invisible in HAADF) gets ``r_e = sum(h) / (E sum(b_e))`` instead.

Objective and automatic parameters
----------------------------------
All methods minimise, for ``u >= 0``::

    sum_e D_e(K_e u) + alpha * rho_H / 2 * ||A_H H u - h / c_H||^2 + weight * R(u)

``D_e`` is the Poisson likelihood ``KL`` (default) or ``1/(2 v_e) ||.||^2``
with ``v_e`` the mean count on the particle (Poisson variance). ``rho_H =
c_H^2 / s_H^2`` with ``s_H^2`` the HAADF noise variance estimated from the
data (robust median of squared second differences along the detector on the
particle), so ``alpha = 1`` is the noise-balanced (maximum-likelihood)
weighting; that is the rule for ``alpha=None``. ``weight=None`` chooses the
regularisation weight by count splitting, which needs no ground truth: every
EDX count is split binomially (p = 1/2) into two independent Poisson halves;
the problem is solved on one half (EDX operators times 1/2, full HAADF) for
the half-data weights :data:`WEIGHT_GRID` (extended while the best is at an end
of the tried range, up to 6 times, so the optimum found is interior; ``info``
records whether it is), each fit is scored by the Poisson
negative log-likelihood of the other half, and the full data get twice the
best weight (half the counts carry half the log-likelihood). The discrepancy
principle was tried first and rejected: at <= 1 count per pixel the EDX
deviance stays below its expectation for every weight that was tried (0.87 to
0.91 for weights 0.1 to 1 on an Au@Ag sphere), so it cannot rank them.

Maps that are not counts
------------------------
Background-subtracted (EELS) or normalised maps hold no whole counts: they
take ``data_term="l2"`` only (the Poisson term refuses negative values and
says so). Each is scaled to *equivalent counts*, ``b_e * m_e / s_e^2`` with
``s_e^2`` its noise variance (robust median of squared second differences
along the detector) and ``m_e`` its mean where positive, so its noise
variance equals its mean on the particle, as for counts; the least-squares
term, the HAADF weights (their noise correction with that variance) and the
weight scale then carry over, and the volumes are returned in the maps' own
units. Count splitting needs counts, so ``weight=None`` chooses the weight by
held-out views instead (:func:`~chemtomo.recon.selection.views_to_hold`: the
maps' every 4th view and the HAADF views at those angles left out; the fit
scored by the squared error of the left-out views over their noise variance),
and the full data take that weight. On a 6 x 40 x 40 core-shell particle
(noise 0.3 of the maps' peak, 15 views, HAADF of 29) ``tnv`` and ``dtv``
chose interior weights and gave under 0.7 of the error of SIRT with its
iterations and Gaussian filter tuned on the truth (tests/recon).

Every method returns a :class:`JointVolumes`: a dict ``{element: volume,
"HAADF": volume}`` whose ``info`` attribute records the chosen parameters.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from ..core.errors import ChemtomoError, DataError, ShapeError
from ..core.diff import edge_directions
from ..core.operators import like_input
from ._common import (callback_runner, check_iterations, heldout_nll, noise_variance, prepare_data, split_half,
                      squared_error_per_slice, whole_counts)
from .channels import Channel, Mix, mix_weights
from .pdhg import KL, L2, _op_norm, _regulariser_blocks, pdhg
from .regularisers import DTV, TGV, TNV, TV
from .selection import VIEWS_RULE, VIEWS_WEIGHT_RULE, choose_weight, views_apart, views_to_hold
from .stopping import expected_poisson_deviance, poisson_deviance

HAADF = "HAADF"
#: PDHG dual/primal step balance of the joint problems (channels are of order one; see module notes). The engine's
#: default (10, tuned on single-volume TV) converged about ten times slower here. On 48^3 Au@Ag fields at 1 count
#: per pixel and below, 0.1 reached in 300 iterations what 1 reached in about 1,000 (directional TV on three
#: core-shell spheres: Au NRMSE 0.25 at 300 iterations with 0.1, 0.42 with 1, 0.23 after 3,000 with 1).
BALANCE = 0.1
DATA_TERMS = ("kl", "l2")
HAADF_MODES = ("channel", "mix")


class JointVolumes(dict):
    """``{name: volume}`` of a joint reconstruction, with the chosen parameters in ``info``."""

    def __init__(self, volumes, info):
        super().__init__(volumes)
        self.info = info


# -- assembly --------------------------------------------------------------------------------------------


def _common_tilts(ops, elements):
    """Indices into each element's tilts of the angles all elements share."""
    sets = [np.round(ops[e].geometry.angles, 3) for e in elements]
    common = sorted(set(sets[0].tolist()).intersection(*[set(s.tolist()) for s in sets[1:]]))
    if not common:
        raise ChemtomoError("the element maps share no tilt angle; the HAADF weights need maps at common tilts")
    return common, {e: [int(np.flatnonzero(s == a)[0]) for a in common] for e, s in zip(elements, sets)}


def _haadf_at(ops, h, angles):
    """HAADF images at `angles`: the co-acquired ones, or reprojections of a SIRT reconstruction."""
    from ..core.geometry import TiltGeometry
    from ..core.projector import Projector
    from .sirt import sirt

    g = ops[HAADF].geometry
    ha = np.round(g.angles, 3)
    idx = [np.flatnonzero(np.abs(ha - a) < 0.25) for a in angles]
    if all(i.size for i in idx):
        return h[[int(i[0]) for i in idx]], "co-acquired"
    vol = sirt(ops[HAADF], h, 50)
    return Projector(TiltGeometry(angles, g.volume_shape, g.n_u, g.axis_offset))._apply(vol), "reprojected"


class _Problem:
    """Data, scales and data terms of one joint problem (see module notes)."""

    def __init__(self, ops, data, elements, *, data_term="kl", haadf="mix", alpha=None):
        if data_term not in DATA_TERMS:
            raise ChemtomoError(f"unknown data_term {data_term!r}; choose one of {', '.join(DATA_TERMS)}")
        if haadf not in HAADF_MODES:
            raise ChemtomoError(f"unknown haadf mode {haadf!r}; choose one of {', '.join(HAADF_MODES)}")
        elements = list(elements)
        if not elements or HAADF in elements or len(set(elements)) != len(elements):
            raise ChemtomoError(f"elements must list distinct element signals (not HAADF), got {elements}")
        self.has_haadf = HAADF in data
        if not self.has_haadf and (haadf == "channel" or alpha not in (None, 0)):
            raise ChemtomoError("haadf='channel' and alpha need a HAADF signal; without HAADF leave them out")
        signals = ([HAADF] if self.has_haadf else []) + elements
        for name in signals:
            if name not in ops or name not in data:
                raise ChemtomoError(f"joint methods need ops and data for {name!r}; ops have {sorted(ops)}, "
                                    f"data have {sorted(data)}")
        vshape = tuple(ops[signals[0]].domain_shape)
        for e in elements:
            if tuple(ops[e].domain_shape) != vshape:
                raise ShapeError(f"{e} reconstructs a volume of shape {tuple(ops[e].domain_shape)} but {signals[0]} "
                                 f"one of {vshape}; give every signal one volume shape")
        # element maps that are not whole counts (background-subtracted or normalised) take the least-squares
        # term only, as equivalent counts: scaled so that their noise variance equals their mean on the particle
        if data_term == "kl":
            for e in elements:
                if e in data and bool((np.asarray(data[e].detach().cpu() if isinstance(data[e], torch.Tensor)
                                                  else data[e]) < 0).any()):
                    raise DataError(f"the {e} map has negative values (background-subtracted?) but data_term='kl' "
                                    "models Poisson counts; use data_term='l2' (CLI: --option data_term=l2)")
        self.counts = data_term == "kl" or all(whole_counts(data[e]) for e in elements)
        self.b = {e: prepare_data(ops[e], data[e], name=f"{e} {'counts' if self.counts else 'map'}",
                                  counts=self.counts) for e in elements}
        self.scale, self.map_noise = {e: 1.0 for e in elements}, None
        if not self.counts:
            self.map_noise = {e: noise_variance(self.b[e]) for e in elements}
            for e in elements:
                on = self.b[e][self.b[e] > 0]
                level = float(on.mean()) if on.numel() else 0.0
                if not level > 0:
                    raise ChemtomoError(f"the {e} map has no positive values; drop it or check its sign")
                self.scale[e] = level / self.map_noise[e]
                self.b[e] = self.b[e] * self.scale[e]
        self.ops, self.elements, self.data_term, self.haadf = ops, elements, data_term, haadf
        self.device = dev = self.b[elements[0]].device
        ones = torch.ones(vshape, dtype=torch.float32, device=dev)

        def mean_level(name, d):  # the mean volume value the data imply (data sum over the projected ones)
            return float(d.sum() / ops[name]._apply(ones).sum().clamp(min=1e-12))

        if self.has_haadf:
            self.like = data[HAADF]
            self.h = prepare_data(ops[HAADF], data[HAADF], name="HAADF data")
            self.c_h = mean_level(HAADF, self.h)
            if not self.c_h > 0:
                raise ChemtomoError("the HAADF data sum to zero; joint methods need a HAADF signal")
            angles, idx = _common_tilts(ops, elements)
            h_at, self.weights_source = _haadf_at(ops, self.h, angles)
            variance = None if self.counts else [self._variance(e) for e in elements]
            r = mix_weights(h_at.cpu().numpy(), [self.b[e][idx[e]].cpu().numpy() for e in elements],
                            variance=variance)
            for k, e in enumerate(elements):
                if not r[k] > 0:
                    r[k] = float(h_at.sum()) / (len(elements) * max(float(self.b[e][idx[e]].sum()), 1.0))
            self.r = {e: float(v) for e, v in zip(elements, r)}
            self.factor = {e: self.c_h / self.r[e] for e in elements}  # x_e = factor_e * u_e
            self.s2_h = noise_variance(self.h, on=self.h[..., 1:-1] > 0.1 * float(self.h.max()))  # on the particle
            self.alpha = 1.0 if alpha is None else float(alpha)
        else:
            # element maps alone: each channel scaled to a mean of 1/E over the volume, as the channels of a
            # problem with HAADF (whose sum has a mean of 1), so the weights carry over
            self.like = data[elements[0]]
            self.h, self.c_h, self.r, self.weights_source, self.s2_h, self.alpha = None, None, None, None, None, 0.0
            self.factor = {}
            for e in elements:
                mean = mean_level(e, self.b[e])
                if not mean > 0:
                    raise ChemtomoError(f"the {e} map holds no counts; drop it or add a HAADF signal")
                self.factor[e] = len(elements) * mean
        if not self.alpha >= 0:
            raise ChemtomoError(f"alpha must be a non-negative HAADF weight, got {alpha!r}")
        self.n_channels = len(elements) + (1 if haadf == "channel" else 0)
        self.shape = (self.n_channels,) + vshape
        self.edx_ops = {e: self.factor[e] * ops[e] @ Channel(self.shape, k) for k, e in enumerate(elements)}
        if self.has_haadf:
            self.hop = (Channel(self.shape, len(elements)) if haadf == "channel"
                        else Mix(np.ones(len(elements)), self.shape))
            self.haadf_op = ops[HAADF] @ self.hop
        self.g = sum(float(b.sum()) for b in self.b.values()) / sum(
            float(op._apply(torch.ones(self.shape, device=dev)).sum()) for op in self.edx_ops.values())
        self.g = max(self.g, 1e-6)
        self.thin = 1.0
        # power-method norms once per projector (the same object may serve several elements)
        cache = {}
        self.proj_norm = {n: cache.setdefault(id(ops[n]), ops[n].norm(device=dev)) for n in signals}

    def _variance(self, e) -> float:
        """Noise variance per pixel of element map e as the least-squares term weighs it (the mean count on the
        particle; for maps that are not counts, scaled to equivalent counts, the same by construction)."""
        on = self.b[e][self.b[e] > 0]
        return max(float(on.mean()) if on.numel() else 1.0, 1e-6)

    def split(self, rng):
        """Two problems from a binomial(1/2) split of every count (count splitting), and the held-out halves."""
        if not self.counts:
            raise ChemtomoError("count splitting needs maps of whole counts; these maps are not counts, so their "
                                "weight is chosen by held-out views")
        gen = np.random.default_rng(rng)
        first, second = {}, {}
        for e, b in self.b.items():
            first[e], second[e] = split_half(b, gen)
        train = copy.copy(self)
        train.b, train.thin = first, 0.5 * self.thin
        return train, second

    def without_views(self):
        """A problem without some views of every element map (:func:`~chemtomo.recon.selection.views_to_hold`;
        the HAADF views at those angles left out too), and ``score(u)``: the squared error of the maps' left-out
        views predicted by a fit ``u``, over their noise variance, per slice."""
        from ..core.projector import Projector

        dev, train = self.device, copy.copy(self)
        train.b, train.edx_ops, train.proj_norm = dict(self.b), dict(self.edx_ops), dict(self.proj_norm)
        held_ops, measured, angles = {}, {}, []
        for k, e in enumerate(self.elements):
            op = self.ops[e]
            if not isinstance(op, Projector):
                raise ChemtomoError(f"a weight by held-out views needs a Projector for {e} (a tilt geometry to leave "
                                    f"views out of), got {type(op).__name__}; give the weight instead")
            n = op.geometry.angles.size
            held = views_to_hold(n, f"the {e} map")
            kept = np.setdiff1d(np.arange(n), held)
            sub = Projector(op.geometry[kept])
            train.b[e] = self.b[e][torch.as_tensor(kept, device=dev)]
            train.edx_ops[e] = self.factor[e] * sub @ Channel(self.shape, k)
            train.proj_norm[e] = sub.norm(device=dev)
            held_ops[e] = self.factor[e] * Projector(op.geometry[held]) @ Channel(self.shape, k)
            measured[e] = self.b[e][torch.as_tensor(held, device=dev)]
            angles.extend(op.geometry.angles[held].tolist())
        if self.has_haadf:
            g = self.ops[HAADF].geometry
            keep = views_apart(g.angles, angles)
            if keep.size == 0:
                raise ChemtomoError("every HAADF view lies at a left-out angle of the maps; give the weight instead")
            sub = Projector(g[keep])
            train.h = self.h[torch.as_tensor(keep, device=dev)]
            train.haadf_op = sub @ self.hop
            train.proj_norm[HAADF] = sub.norm(device=dev)
        variance = {e: self._variance(e) for e in self.elements}

        def score(u: torch.Tensor) -> np.ndarray:
            return sum(squared_error_per_slice(held_ops[e]._apply(u), measured[e]) / variance[e]
                       for e in self.elements)

        return train, score

    def heldout_nll(self, u: torch.Tensor, counts: dict) -> float:
        """Poisson negative log-likelihood of held-out `counts` (the other half) at the fit `u`."""
        return sum(heldout_nll(self.thin * self.edx_ops[e]._apply(u), counts[e]) for e in self.elements)

    def terms(self):
        """pdhg data terms; the whole objective is multiplied by g (see :func:`chemtomo.recon.tv.tv`)."""
        out = []
        for e in self.elements:
            b, op = self.b[e], self.edx_ops[e] if self.thin == 1 else self.thin * self.edx_ops[e]
            if self.data_term == "kl":
                out.append((KL(b, scale=self.g), op))
            else:
                out.append((L2(b, scale=self.g / self._variance(e)), op))
        if self.alpha > 0:
            rho = self.c_h**2 / self.s2_h
            out.append((L2(self.h / self.c_h, scale=self.g * self.alpha * rho), self.haadf_op))
        return out

    def norms(self, regulariser):
        """Operator norms of the data terms (as :meth:`terms` orders them) and the regulariser's blocks."""
        out = [self.thin * self.factor[e] * self.proj_norm[e] for e in self.elements]
        if self.alpha > 0:
            out.append(self.proj_norm[HAADF] * (1.0 if self.haadf == "channel" else math.sqrt(len(self.elements))))
        _, blocks = _regulariser_blocks(regulariser, self.shape)
        return out + [math.sqrt(sum(_op_norm(op, None) ** 2 for op in ops.values())) for _, ops in blocks]

    def solve(self, regulariser, iterations, **kwargs):
        kwargs.setdefault("balance", BALANCE)
        return pdhg(self.terms(), regulariser, iterations, norms=self.norms(regulariser), **kwargs)

    def deviance_ratio(self, u: torch.Tensor) -> float:
        """Poisson deviance of the EDX maps over its expected value at the fit (1 = noise level); for maps that
        are not counts the squared residual over the noise variance, per pixel."""
        dev = exp = 0.0
        for e in self.elements:
            lam = self.edx_ops[e]._apply(u)
            if not self.counts:
                dev += float(((lam - self.b[e]) ** 2).sum()) / self._variance(e)
                exp += self.b[e].numel()
                continue
            dev += float(poisson_deviance(self.b[e], lam).sum())
            exp += float(expected_poisson_deviance(lam).sum())
        return dev / max(exp, 1e-12)

    def volumes(self, u: torch.Tensor, info: dict) -> JointVolumes:
        out = {e: like_input(self.factor[e] / self.scale[e] * u[k], self.like) for k, e in enumerate(self.elements)}
        if self.has_haadf:
            hv = u[len(self.elements)] if self.haadf == "channel" else u[: len(self.elements)].sum(0)
            out[HAADF] = like_input(self.c_h * hv, self.like)
        r = None if self.r is None else {e: v * self.scale[e] for e, v in self.r.items()}  # per unit of the maps
        info = dict(info, haadf_weights=r, weights_source=self.weights_source, alpha=self.alpha,
                    haadf_noise_variance=self.s2_h, data_term=self.data_term, haadf=self.haadf,
                    maps="counts" if self.counts else "images")
        if not self.counts:
            info["map_noise_variance"] = self.map_noise
        return JointVolumes(out, info)


def _split_weight(problem, make_reg, search_iterations, weights, rng):
    """Weight by count splitting: fit one binomial half of the counts, score the other half.

    The half-data weights are tried from strong to weak, each fit warm-started
    from the fit at the nearest weight tried; while the best lies on an end of
    the tried range the search goes on one grid step (the ratio of the last
    two grid points) beyond it (:func:`~chemtomo.recon.selection.choose_weight`).
    Returns the weight for the full data: twice the best half-data weight (the
    half data carry half the log-likelihood), the history ``[(full-data
    weight, held-out nll), ...]`` sorted by weight, and whether the best is
    interior.
    """
    train, heldout = problem.split(rng)
    weights = sorted(float(w) for w in weights)
    step = weights[-1] / weights[-2] if len(weights) > 1 else 3.0

    def score(w, start):
        fit = train.solve(make_reg(w * train.g), search_iterations, x0=start)
        return train.heldout_nll(fit, heldout), fit

    best, table, interior = choose_weight(score, weights, factor=step)
    return 2.0 * best, [(2.0 * w, v) for w, v in table], interior


def _views_weight(problem, make_reg, search_iterations, weights):
    """Weight by held-out views, for maps that are not counts: fit without some views of every map, score the
    squared error of the views left out (over the noise variance, per slice) as the weights are tried
    (:func:`~chemtomo.recon.selection.choose_weight` by the one-standard-error rule, decision 42; warm-started as
    :func:`_split_weight`). Returns the chosen weight for the full data (the same: the kept views' noise is
    that of all of them), the history and whether the lowest score is interior."""
    train, score_views = problem.without_views()
    weights = sorted(float(w) for w in weights)
    step = weights[-1] / weights[-2] if len(weights) > 1 else 3.0

    def score(w, start):
        fit = train.solve(make_reg(w * train.g), search_iterations, x0=start)
        return score_views(fit), fit

    return choose_weight(score, weights, factor=step, rule=VIEWS_RULE)


def _run(problem, make_reg, iterations, weight, callback, *, grid, search_iterations, rng, method):
    run = callback_runner(callback, problem.like)
    info = {"method": method, "iterations": iterations}
    if weight is None and not problem.counts:
        weight, history, interior = _views_weight(problem, make_reg, search_iterations, grid)
        info.update(weight_rule=VIEWS_WEIGHT_RULE, weight_search=history, weight_interior=interior)
    elif weight is None:
        weight, history, interior = _split_weight(problem, make_reg, search_iterations, grid, rng)
        info.update(weight_rule="count-splitting", weight_search=history, weight_interior=interior)
    else:
        weight = float(weight)
        if not weight >= 0:
            raise ChemtomoError(f"weight must be non-negative (larger regularises more), got {weight!r}")
        info["weight_rule"] = "given"
    info["weight"] = weight
    u = problem.solve(make_reg(weight * problem.g), iterations, callback=run)
    info["deviance_ratio"] = problem.deviance_ratio(u)
    return problem.volumes(u, info)


#: half-data weights tried by the automatic rule (log-spaced; the full-data weight is twice the best). If the best
#: lies on an end of the grid the search goes on in that direction (up to 6 more points), so the optimum is interior.
WEIGHT_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)


# -- methods ---------------------------------------------------------------------------------------------

_COMMON_DOC = """
    ops : dict of str to Operator
        Projector per signal: ``"HAADF"`` and every element, each with its own
        tilts and one volume shape ``(ny, nz, nx)``.
    data : dict of str to array
        HAADF images (any linear units) and EDX maps (counts) per signal, shapes
        ``ops[name].range_shape``; never modified.
    elements : list of str
        Element signals, in channel order.
"""


def bimodal(ops, data, elements, iterations=100, *, data_term="l2", alpha=None, stop=None, callback=None):
    """Bimodal HAADF + EDX reconstruction: HAADF as a weighted sum of the elements (Zhong et al. 2017).

    Parameters
    ----------
    ops, data, elements
        See :mod:`chemtomo.recon.multimodal`: projector and data per signal,
        element signals in order.
    iterations : int, default 100
        Maximum number of PDHG iterations; `stop` and `callback` may stop
        earlier. Without a regulariser the count regularises.
    data_term : {"l2", "kl"}, default "l2"
        EDX data term: noise-weighted least squares (the paper's) or Poisson
        likelihood.
    alpha : float, optional
        HAADF weight relative to the noise-balanced weighting (module notes);
        None means 1 (maximum likelihood); 0 gives separate EDX reconstructions.
    stop : {None, "discrepancy"}, default None
        ``"discrepancy"`` stops when the EDX Poisson deviance falls to its
        expected value (checked every 5 iterations); unreliable below about
        one count per pixel, where it stops far too early.
    callback : callable(iteration, u) -> bool, or a list, optional
        Called each iteration with the internal channels ``u[e, y, z, x]``.

    Returns
    -------
    JointVolumes
        ``{element: x_e}`` in EDX counts per voxel length and ``"HAADF"``
        (``sum_e r_e x_e``, HAADF units per voxel length); numpy in, numpy
        out. ``info`` holds the HAADF weights ``r_e``, alpha, the iteration
        reached and the final deviance ratio.

    Notes
    -----
    Solves ``min_{x >= 0} sum_e D_e(A_e x_e) + alpha rho_H/2 ||A_H sum_e r_e x_e - h||^2``
    by PDHG; the weights r_e come from NNLS of the HAADF images against
    the EDX maps at their common tilts (:func:`~chemtomo.recon.channels.mix_weights`).

    References
    ----------
    Z. Zhong et al., bimodal EDS + HAADF-STEM tomography, Ultramicroscopy (2017).
    """
    iterations = check_iterations(iterations)
    if stop not in (None, "none", "discrepancy"):
        raise ChemtomoError(f"unknown stopping rule {stop!r}; use None or 'discrepancy'")
    if HAADF not in data:
        raise ChemtomoError("bimodal fits the HAADF images as a sum of the elements and needs a HAADF signal; "
                            "without HAADF choose tnv, tgv, tv_joint or dtv")
    problem = _Problem(ops, data, elements, data_term=data_term, haadf="mix", alpha=alpha)
    user = callback_runner(callback, problem.like)
    reached = {"iterations": iterations}

    def run(i, u):
        halt = user(i, u)
        if stop == "discrepancy" and (i + 1) % 5 == 0 and problem.deviance_ratio(u) <= 1.0:
            halt = True
        if halt:
            reached["iterations"] = i + 1
        return halt

    u = problem.solve(None, iterations, callback=run)
    info = {"method": "bimodal", "iterations": reached["iterations"], "stop": stop,
            "deviance_ratio": problem.deviance_ratio(u)}
    return problem.volumes(u, info)


def tnv(ops, data, elements, iterations=300, *, weight=None, data_term="kl", haadf="mix", alpha=None,
        search_iterations=100, rng=0, callback=None):
    """Joint reconstruction regularised by total nuclear variation (Zhong et al. 2018).

    Parameters
    ----------
    ops, data, elements
        See :mod:`chemtomo.recon.multimodal`.
    iterations : int, default 300
        PDHG iterations of the final run; `callback` may stop earlier.
    weight : float, optional
        TNV weight (larger regularises more), relative to the Poisson
        log-likelihood of the counts with channels of order one. None: chosen
        by count splitting (module notes), which costs 5 to 11 extra runs of
        `search_iterations` on half the counts.
    data_term : {"kl", "l2"}, default "kl"
        EDX data term.
    haadf : {"mix", "channel"}, default "mix"
        ``"channel"``: the HAADF volume is an extra channel with its own data,
        tied to the elements only through TNV (Zhong 2018); ``"mix"``: the
        HAADF data constrain ``sum_e u_e`` directly (bimodal term) and TNV
        couples the elements.
    alpha : float, optional
        HAADF weight relative to the noise-balanced weighting; None means 1.
    search_iterations : int, default 100
        Iterations per trial weight of the automatic choice (warm-started).
    rng : int or numpy.random.Generator, default 0
        Random source of the count splitting.
    callback : callable(iteration, u) -> bool, or a list, optional
        Called each iteration of the final run with the internal channels.

    Returns
    -------
    JointVolumes
        As :func:`bimodal`; ``info`` also holds the weight, how it was chosen
        the search history ``[(weight, held-out Poisson nll), ...]`` and
        whether its best is interior (``weight_interior``).
    """
    iterations = check_iterations(iterations)
    problem = _Problem(ops, data, elements, data_term=data_term, haadf=haadf, alpha=alpha)
    return _run(problem, TNV, iterations, weight, callback, grid=WEIGHT_GRID,
                search_iterations=search_iterations, rng=rng, method="tnv")


def tgv(ops, data, elements, iterations=300, *, weight=None, ratio=4.0, coupling="frobenius", data_term="kl",
        haadf="mix", alpha=None, search_iterations=100, rng=0, callback=None):
    """Joint reconstruction regularised by (coupled) second-order TGV (Huber et al. 2019).

    Parameters
    ----------
    ops, data, elements
        See :mod:`chemtomo.recon.multimodal`.
    iterations : int, default 300
        PDHG iterations of the final run; `callback` may stop earlier.
    weight : float, optional
        First-order weight alpha1 (larger regularises more). None: chosen by
        count splitting, as for :func:`tnv`.
    ratio : float, default 4
        ``alpha0 / alpha1``; Huber et al. recommend 4. Large values approach TV.
    coupling : {"frobenius", "nuclear", "none"}, default "frobenius"
        Channel coupling of the TGV norms (:class:`~chemtomo.recon.regularisers.TGV`);
        "none" reconstructs the channels independently (the data may still tie them with ``haadf="mix"``).
    data_term : {"kl", "l2"}, default "kl"
        EDX data term.
    haadf : {"mix", "channel"}, default "mix"
        As for :func:`tnv`; "channel" is Huber's model (HAADF as one more channel).
    alpha : float, optional
        HAADF weight relative to the noise-balanced weighting (Huber's per-channel
        mu for HAADF); None means 1. The element channels keep the Poisson
        likelihood's own weights (noise-adapted by construction).
    search_iterations : int, default 100
        Iterations per trial weight of the automatic choice.
    rng : int or numpy.random.Generator, default 0
        Random source of the count splitting.
    callback : callable(iteration, u) -> bool, or a list, optional
        Called each iteration of the final run with the internal channels.

    Returns
    -------
    JointVolumes
        As :func:`tnv`.
    """
    iterations = check_iterations(iterations)
    ratio = float(ratio)
    if not ratio > 0:
        raise ChemtomoError(f"ratio = alpha0 / alpha1 must be positive, got {ratio!r}")
    TGV(1.0, ratio, coupling)  # validates the coupling
    problem = _Problem(ops, data, elements, data_term=data_term, haadf=haadf, alpha=alpha)
    vols = _run(problem, lambda w: TGV(w, ratio * w, coupling), iterations, weight, callback, grid=WEIGHT_GRID,
                search_iterations=search_iterations, rng=rng, method="tgv")
    vols.info.update(ratio=ratio, coupling=coupling)
    return vols


def tv_joint(ops, data, elements, iterations=300, *, weight=None, coupling="frobenius", data_term="kl",
             haadf="mix", alpha=None, search_iterations=100, rng=0, callback=None):
    """Joint reconstruction regularised by vectorial (or channel-wise) TV.

    Parameters and result as for :func:`tnv`, with TV instead of TNV;
    `coupling` ({"frobenius", "nuclear", "none"}, default "frobenius") is the
    norm of each voxel's (channels x 3) Jacobian (:class:`~chemtomo.recon.regularisers.TV`).
    """
    iterations = check_iterations(iterations)
    problem = _Problem(ops, data, elements, data_term=data_term, haadf=haadf, alpha=alpha)
    vols = _run(problem, lambda w: TV(w, coupling), iterations, weight, callback, grid=WEIGHT_GRID,
                search_iterations=search_iterations, rng=rng, method="tv_joint")
    vols.info["coupling"] = coupling
    return vols


def _count_guide(problem, rng):
    """Guide of :func:`dtv` without HAADF: TV-KL (weight by count splitting) of all elements' counts summed.

    The summed counts see the particle's outline at the best signal-to-noise ratio the maps hold, and an
    internal interface wherever the elements' count rates differ. Maps on different tilts are summed at the
    tilts they share. Returns the guide volume and its description.
    """
    from ..core.geometry import TiltGeometry
    from ..core.projector import Projector
    from .tv import split_weight, tv

    elements = problem.elements
    angles, idx = _common_tilts(problem.ops, elements)  # sorted; idx orders each element's maps alike
    counts = sum(problem.b[e][idx[e]] for e in elements).cpu().numpy()
    g = problem.ops[elements[0]].geometry
    op = Projector(TiltGeometry(np.asarray(angles, dtype=float), g.volume_shape, g.n_u, g.axis_offset))
    weight, _, _ = split_weight(op, counts, rng=rng)
    guide = tv(op, counts, weight=weight, data_term="kl")
    return np.asarray(guide, dtype=np.float32), f"TV-KL of the summed counts of {', '.join(elements)}"


def dtv(ops, data, elements, iterations=300, *, weight=None, guide=None, edge_fraction=0.98, smooth=1.0,
        relative_eta=0.1, data_term="kl", alpha=None, search_iterations=100, rng=0, callback=None):
    """Joint reconstruction with the HAADF term and HAADF-guided directional TV per element.

    Parameters
    ----------
    ops, data, elements
        See :mod:`chemtomo.recon.multimodal`.
    iterations : int, default 300
        PDHG iterations of the final run; `callback` may stop earlier.
    weight : float, optional
        Directional-TV weight (larger regularises more), on the scale of
        :func:`tnv`'s. None: chosen by count splitting (module notes).
    guide : array (ny, nz, nx), optional
        Reference volume whose edges the element maps may share freely. Default:
        50 SIRT iterations of the HAADF data (dense, high-SNR tilts).
    edge_fraction : float, default 0.98
        Fraction of the gradient along the guide's edge normals that is not
        penalised (0: plain TV, 1: free jumps across guide edges).
    smooth : float, default 1.0
        Gaussian sigma (voxels) applied to the guide before taking its edges.
    relative_eta : float, default 0.1
        Edge threshold as a fraction of the smoothed guide's largest gradient
        (:func:`~chemtomo.core.diff.edge_directions`).
    data_term : {"kl", "l2"}, default "kl"
        EDX data term.
    alpha : float, optional
        HAADF weight relative to the noise-balanced weighting; None means 1.
    search_iterations : int, default 100
        Iterations per trial weight of the automatic choice.
    rng : int or numpy.random.Generator, default 0
        Random source of the count splitting.
    callback : callable(iteration, u) -> bool, or a list, optional
        Called each iteration of the final run with the internal channels.

    Returns
    -------
    JointVolumes
        As :func:`tnv`; ``info`` also records the edge fraction, the edge threshold and the guide.

    Notes
    -----
    Minimises ``sum_e KL(b_e, A_e x_e) + rho_H/2 ||A_H sum_e r_e x_e - h||^2 +
    weight sum_e |(I - f xi xi^T) grad x_e|_1`` with ``f`` the edge fraction and ``xi`` the edge
    normals of the guide. TV and TNV pay for every jump of an element map, so
    at low counts they flatten it (contrast loss: on an Au@Ag sphere at 1.5
    counts per pixel TNV left 0.37 Ag in a pure-Au core). Directional TV lets
    the maps jump where the HAADF volume jumps, at no cost, and smooths
    elsewhere; the counts then decide the levels. Directional TV: Ehrhardt &
    Betcke, SIAM J. Imaging Sci. 9 (2016); as a structural prior in spectral
    CT: Kazantsev et al., Inverse Problems 34 (2018).
    """
    from .sirt import sirt

    iterations = check_iterations(iterations)
    problem = _Problem(ops, data, elements, data_term=data_term, haadf="mix", alpha=alpha)
    shape = tuple(problem.shape[1:])
    if guide is None and problem.has_haadf:
        guide, source = sirt(ops[HAADF], problem.h, 50), "HAADF SIRT, 50 iterations"
    elif guide is None and not problem.counts:
        raise ChemtomoError("dtv without HAADF takes its guide from the summed counts, but these maps are not "
                            "counts; give a HAADF signal or a guide volume, or choose tnv or tgv")
    elif guide is None:
        guide, source = _count_guide(problem, rng)
    else:
        if tuple(np.shape(guide)) != shape:
            raise ShapeError(f"the guide has shape {tuple(np.shape(guide))} but the volumes are {shape}")
        source = "given"
    xi = edge_directions(guide, smooth=smooth, relative_eta=relative_eta).to(problem.device)
    edge_fraction = float(edge_fraction)
    if not 0 <= edge_fraction <= 1:
        raise ChemtomoError(f"edge_fraction must lie in [0, 1] (0: plain TV, 1: free jumps at guide edges), got "
                            f"{edge_fraction!r}")
    vols = _run(problem, lambda w: DTV(w, xi, edge_fraction), iterations, weight, callback, grid=WEIGHT_GRID,
                search_iterations=search_iterations, rng=rng, method="dtv")
    vols.info.update(edge_fraction=edge_fraction, smooth=float(smooth), relative_eta=float(relative_eta), guide=source)
    return vols
