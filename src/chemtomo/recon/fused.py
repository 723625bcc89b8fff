"""Fused multi-modal tomography: HAADF and Poisson elemental maps in one model (Schwartz et al. 2024).

Each element volume ``x_e`` (counts per voxel length, as MLEM gives) must
explain its own sparse, noisy elemental tilt series ``b_e`` through Poisson
statistics, while their weighted sum must explain the dense HAADF tilt series
``h``. Minimised, for ``x >= 0``::

    F(x) = alpha / (2 sigma^2) ||A_H sum_e w_e x_e^p - h / max(h)||^2
         + sum_e 1^T (A_e x_e - b_e log(A_e x_e + eps))
         + sum_e weight_e TV_beta(x_e)

with the smoothed total variation ``TV_beta(x) = sum sqrt(|grad x|^2 + beta^2) - beta``
and sigma the noise of the normalised HAADF series.

Engine
------
This is the one joint method not on the PDHG engine (:mod:`chemtomo.recon.pdhg`).
Its HAADF model ``sum_e w_e x_e^p`` with ``p != 1`` is not linear in ``x``, so
the objective is not a sum of convex functions of linear operators with
closed-form proximal maps; with the smoothed TV every term is differentiable,
and a preconditioned projected gradient method with Armijo backtracking and
restarted FISTA momentum minimises it directly. For ``p = 1`` the model is
:func:`~chemtomo.recon.multimodal.tv_joint` with ``haadf="mix"`` up to the TV
smoothing and the channel scaling.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.diff import divergence, gradient
from ..core.errors import ChemtomoError, ShapeError, check_counts, check_finite
from ..core.names import parse_signal_name
from ..core.operators import Operator, like_input, to_tensor
from ._common import callback_runner, check_iterations, heldout_nll, split_half
from .selection import choose_weight

#: floor inside the Poisson logarithm, in counts (Schwartz's "bkg")
EPS_COUNTS = 1e-2

#: constant of the TV weight rule whose factor count splitting chooses (see `fused`)
TV_SCALE = 2.0

#: factors of the TV weight rule tried first by ``weight=None``, extended by sqrt(10) while the best is at an end (at
#: 48^3, F/10 of bench_multimodal.py the best factor on the ground truth was 10-30, count splitting picked 10-100: the
#: rule alone regularises too little at < 1 count per pixel)
SPLIT_FACTORS = (1.0, 3.0, 10.0, 30.0, 100.0)


def _validate(ops, data, elements, haadf):
    if not isinstance(ops, dict) or not isinstance(data, dict):
        raise ChemtomoError("ops and data must be dicts keyed by signal name, e.g. {'HAADF': A_h, 'Au': A_au}")
    elements = list(elements)
    if not elements:
        raise ChemtomoError("elements is empty; name the elemental signals to reconstruct, e.g. ['Au', 'Ag']")
    for name in [haadf, *elements]:
        if name not in ops or name not in data:
            raise ChemtomoError(f"signal {name!r} needs both an operator and data; ops has {sorted(ops)}, "
                                f"data has {sorted(data)}")
        if not isinstance(ops[name], Operator):
            raise ChemtomoError(f"ops[{name!r}] must be a chemtomo Operator, got {type(ops[name]).__name__}")
        if tuple(data[name].shape) != tuple(ops[name].range_shape):
            raise ShapeError(f"data[{name!r}] has shape {tuple(data[name].shape)} but its operator gives "
                             f"{tuple(ops[name].range_shape)}; pass one image per tilt of that signal")
        (check_finite if name == haadf else check_counts)(data[name], f"data[{name!r}]")
    shapes = {tuple(ops[n].domain_shape) for n in [haadf, *elements]}
    if len(shapes) != 1:
        raise ShapeError(f"all operators must share one volume shape, got {sorted(shapes)}")
    return elements


def atomic_number(signal: str) -> int:
    """Atomic number Z of the element a signal names ("Au" or "Au_La" -> 79)."""
    import xraylib

    return int(xraylib.SymbolToAtomicNumber(parse_signal_name(signal)[0]))


def haadf_noise(h: torch.Tensor) -> float:
    """Robust noise level of a HAADF tilt series from second differences along u, on the particle.

    ``sigma = 1.4826 MAD(d) / sqrt(6)`` with ``d = h[u-1] - 2 h[u] + h[u+1]`` over
    pixels above 10 % of the maximum (vacuum has no Poisson noise).
    """
    d = h[..., :-2] - 2 * h[..., 1:-1] + h[..., 2:]
    on = h[..., 1:-1] > 0.1 * h.max()
    d = d[on] if int(on.sum()) > 10 else d.reshape(-1)
    mad = (d - d.median()).abs().median()
    return float(1.4826 * mad / np.sqrt(6.0))


class _Problem:
    """The fused objective and its gradient on a stack ``x[e, y, z, x]``."""

    def __init__(self, a_h, h, chem, w, p, lam_h, lam_tv, beta):
        self.a_h, self.h, self.chem, self.w, self.p = a_h, h, chem, w, p
        self.lam_h, self.lam_tv, self.beta = lam_h, lam_tv, beta
        self._cache = None

    def mix(self, x):
        xp = x if self.p == 1 else x.clamp(min=0) ** self.p
        return (self.w.view(-1, 1, 1, 1) * xp).sum(0)

    def _forward(self, x):
        """HAADF residual and the expected counts of each element (cached for the last `x`)."""
        if self._cache is None or self._cache[0] is not x:
            r = self.a_h._apply(self.mix(x)) - self.h
            self._cache = (x, r, [a._apply(x[e]) + EPS_COUNTS for e, (a, _) in enumerate(self.chem)])
        return self._cache[1], self._cache[2]

    def value(self, x):
        r, axs = self._forward(x)
        f = 0.5 * self.lam_h * float((r * r).sum())
        for ax, (_, b) in zip(axs, self.chem):
            f += float((ax - b * torch.log(ax)).sum())
        g = gradient(x)
        mag = torch.sqrt((g * g).sum(1) + self.beta.view(-1, 1, 1, 1) ** 2) - self.beta.view(-1, 1, 1, 1)
        return f + float((self.lam_tv.view(-1, 1, 1, 1) * mag).sum())

    def grad(self, x):
        r, axs = self._forward(x)
        back = self.lam_h * self.a_h._apply_adjoint(r)
        out = torch.empty_like(x)
        for e, (a, b) in enumerate(self.chem):
            chain = 1.0 if self.p == 1 else self.p * x[e].clamp(min=0) ** (self.p - 1)
            ax = axs[e]
            out[e] = self.w[e] * chain * back + a._apply_adjoint(1.0 - b / ax)
        g = gradient(x)
        norm = torch.sqrt((g * g).sum(1, keepdim=True) + self.beta.view(-1, 1, 1, 1, 1) ** 2)
        return out - self.lam_tv.view(-1, 1, 1, 1) * divergence(g / norm)


def _fit_weights(a_h, h, x, p, rule, names):
    """HAADF weights per element: NNLS fit (rule None) or ``Z^z_exponent`` times one fitted scale."""
    from scipy.optimize import nnls

    cols = torch.stack([a_h._apply(x[e] if p == 1 else x[e] ** p).reshape(-1) for e in range(x.shape[0])], 1)
    cols_np, h_np = cols.double().cpu().numpy(), h.reshape(-1).double().cpu().numpy()
    if rule is None:
        w, _ = nnls(cols_np, h_np)
        if not np.all(w > 0):
            raise ChemtomoError(f"the HAADF weights fitted to the first estimate are {w.tolist()}; one element "
                                "does not show in the HAADF, pass haadf_weights= explicitly")
        return w
    base = np.asarray(rule, dtype=np.float64)
    m = cols_np @ base
    return base * float(m @ h_np / max(m @ m, 1e-30))


def _descend(prob, precond, y, f_y, step):
    """Armijo-backtracked projected preconditioned gradient step from `y`; ``(x, F(x), step)``."""
    g = prob.grad(y)
    d = precond(y)
    for _ in range(40):
        x_new = (y - step * d * g).clamp(min=0)
        f_new = prob.value(x_new)
        if f_new <= f_y + 1e-4 * float((g * (x_new - y)).sum()):
            return x_new, f_new, step
        step *= 0.5
    return y, f_y, step  # no descent found: stationary to rounding


def _iterate(prob, precond, x, f, x_prev, step, momentum):
    """One monotone accelerated step (FISTA extrapolation, restarted whenever F would rise)."""
    t_next = 0.5 * (1 + np.sqrt(1 + 4 * momentum**2))
    beta = (momentum - 1) / t_next
    if beta > 0:
        y = (x + beta * (x - x_prev)).clamp(min=0)
        x_new, f_new, new_step = _descend(prob, precond, y, prob.value(y), step)
        if f_new <= f:
            return x_new, f_new, min(new_step * 1.5, 1e3), t_next, x
    x_new, f_new, new_step = _descend(prob, precond, x, f, step)  # restart from x without momentum
    return x_new, f_new, min(new_step * 1.5, 1e3), 1.0 if beta > 0 else t_next, x


def fused(ops, data, elements, iterations=100, *, weight=None, alpha=None, haadf_weights=None, z_exponent=1.7,
          exponent=1.0, init_iterations=20, rng=0, callback=None, objective=None):
    """Reconstruct elemental volumes from HAADF and elemental tilt series together (fused multi-modal).

    Parameters
    ----------
    ops : dict of str to Operator
        Projector of each signal: ``"HAADF"`` and every element; each signal
        keeps its own tilts, all share one volume shape.
    data : dict of str to array
        ``"HAADF"``: the HAADF tilt series (any units, normalised here to unit
        maximum); each element: its map tilt series in counts (Poisson), never modified.
    elements : list of str
        Elemental signals to reconstruct (keys of `ops` and `data`).
    iterations : int, default 100
        Projected gradient iterations after the MLEM start; `callback` may stop earlier.
    weight : float or dict of str to float, optional
        TV weight (larger regularises more), for every element or per
        element, relative to the Poisson log-likelihood of the counts (volumes
        in counts per voxel length). None: ``factor * 2 mean(A_e^T 1) /
        sqrt(max(mean counts per nonzero pixel, 1))`` per element (the TV
        gradient compared with a Poisson gradient whose relative noise falls
        as ``1 / sqrt(counts)``), with the factor chosen by count splitting:
        one binomial half of the counts is fitted for the factors
        :data:`SPLIT_FACTORS` (extended by sqrt(10) while the best is at an
        end, :func:`~chemtomo.recon.selection.choose_weight`), the rule
        following the halved counts, and scored by the Poisson likelihood of
        the other half; no ground truth, at the cost of 5 to 11 extra runs.
    alpha : float, optional
        Weight of the HAADF term relative to the noise-balanced weighting
        ``1 / sigma^2``, with ``sigma`` the noise of the normalised HAADF series
        (:func:`haadf_noise`), so that both data terms are negative
        log-likelihoods; None means 1; 0 drops the HAADF term.
    haadf_weights : None, "z" or dict of str to float, default None
        HAADF signal per unit of ``x_e^p``, in units of `data["HAADF"]`. None
        fits them by non-negative least squares of the HAADF data against the
        projected MLEM start; ``"z"`` uses ``Z_e^z_exponent`` times one fitted
        scale (for `data` whose elements share one count scale).
    z_exponent : float, default 1.7
        Exponent of Z in the HAADF cross-section; used only by ``haadf_weights="z"``.
    exponent : float, default 1.0
        Power ``p >= 1`` on ``x_e`` in the HAADF model. 1 is the linear model
        the simulation and quantitative HAADF assume (signal per voxel
        ``sum_e n_e Z_e^z_exponent c_e``); Schwartz et al. use ``p = z_exponent``.
    init_iterations : int, default 20
        MLEM iterations per element for the starting volumes (and the HAADF weight fit).
    rng : int or numpy.random.Generator, default 0
        Random source of the count splitting of ``weight=None``.
    callback : callable(iteration, x) -> bool, or a list of them, optional
        Called after each iteration of the final run with the stack
        ``x[e, y, z, x]`` in the order of `elements`; returning True stops.
    objective : list, optional
        If given, ``F(x)`` of the final run at the start and after each iteration is appended.

    Returns
    -------
    JointVolumes (a dict of str to array)
        Each element: volume ``(ny, nz, nx)`` in counts per voxel length (MLEM
        units), float32; ``"HAADF"``: the model ``sum_e w_e x_e^p`` in units of
        `data["HAADF"]` per voxel length. Same array type and device as the
        HAADF data. ``info`` holds the TV weights, how they were chosen
        (``weight_rule``) and, for count splitting, the factor, the search
        ``[(factor, held-out nll), ...]`` and whether its best is interior.

    Raises
    ------
    ChemtomoError
        For missing signals, shapes that do not fit, negative counts or bad options.

    Notes
    -----
    Each iteration takes a projected, diagonally preconditioned gradient step
    ``x <- max(0, y - t P grad F(y))`` with Armijo backtracking on ``t``, from
    a FISTA extrapolation ``y`` that is dropped (momentum restarted) whenever
    ``F`` would rise, so ``F`` decreases monotonically. ``P`` inverts the sum
    of diagonal curvature majorisers: ``A_e^T 1 / (x + delta)``
    (the EM preconditioner), ``alpha / sigma^2 w_e A_H^T A_H (sum w)`` and
    ``12 weight / |grad x|_beta``. TV is smoothed
    (``beta = 1e-2`` times the 99th percentile of the start) instead of the
    paper's fixed number of FGP inner iterations, which leaves the objective
    ill-defined; HAADF is normalised to unit maximum as in the paper; the
    chemical terms stay in counts, unweighted, so that they are the Poisson
    likelihood (the paper's weight on them and its adaptive decrease are not
    used: with `alpha` and `weight` free it adds nothing).

    References
    ----------
    J. Schwartz, Z. W. Di, Y. Jiang et al., "Imaging 3D chemistry at 1 nm
    resolution with fused multi-modal electron tomography", Nat. Commun. 15,
    3555 (2024).
    """
    elements = _validate(ops, data, elements, "HAADF")
    iterations = check_iterations(iterations)
    init_iterations = check_iterations(init_iterations, "init_iterations")
    if not exponent >= 1:
        raise ChemtomoError(f"exponent must be >= 1 (the HAADF model x^p), got {exponent!r}")
    if alpha is not None and not float(alpha) >= 0:
        raise ChemtomoError(f"alpha must be a non-negative HAADF weight (None for 1), got {alpha!r}")
    if not (haadf_weights is None or (isinstance(haadf_weights, str) and haadf_weights == "z")
            or (isinstance(haadf_weights, dict) and set(haadf_weights) >= set(elements))):
        raise ChemtomoError(f"haadf_weights must be None, 'z' or a dict with every element, got {haadf_weights!r}")
    if isinstance(weight, dict):
        missing = [e for e in elements if e not in weight]
        if missing:
            raise ChemtomoError(f"weight has no entry for {', '.join(missing)}; give one TV weight per element")
        lam_tv = [float(weight[e]) for e in elements]
    else:
        lam_tv = None if weight is None else [float(weight)] * len(elements)
    if lam_tv is not None and not all(v >= 0 for v in lam_tv):
        raise ChemtomoError(f"weight must be non-negative (larger regularises more), got {weight!r}")
    settings = dict(alpha=1.0 if alpha is None else float(alpha), haadf_weights=haadf_weights,
                    z_exponent=float(z_exponent), exponent=float(exponent), init_iterations=init_iterations)
    if lam_tv is not None:
        vols = _solve(ops, data, elements, iterations, lam_tv, None, settings, callback, objective)
        vols.info["weight_rule"] = "given"
        return vols
    factor, table, interior = _split_factor(ops, data, elements, iterations, rng, settings)
    vols = _solve(ops, data, elements, iterations, None, factor, settings, callback, objective)
    vols.info.update(weight_rule="count-splitting", factor=factor, weight_search=table, weight_interior=interior)
    return vols


def _solve(ops, data, elements, iterations, lam_tv, factor, settings, callback, objective):
    """One fused run: TV weights `lam_tv` per element, or the rule times `factor` if `lam_tv` is None."""
    from .mlem import mlem
    from .multimodal import JointVolumes

    haadf, exponent = "HAADF", settings["exponent"]
    like = data[haadf]
    h_raw = to_tensor(data[haadf])
    device = h_raw.device
    h_max = float(h_raw.max())
    if not h_max > 0:
        raise ChemtomoError("the HAADF data has no positive values; pass the HAADF tilt series")
    h = h_raw / h_max
    chem = [(ops[e], to_tensor(data[e], device=device)) for e in elements]
    x = torch.stack([to_tensor(mlem(ops[e], b, settings["init_iterations"]), device=device)
                     for e, (_, b) in zip(elements, chem)])

    given = settings["haadf_weights"]
    if isinstance(given, dict):
        w = np.array([float(given[e]) for e in elements]) / h_max
    else:
        rule = None if given is None else [atomic_number(e) ** settings["z_exponent"] for e in elements]
        w = _fit_weights(ops[haadf], h, x, exponent, rule, elements)
    w_t = torch.as_tensor(w, dtype=torch.float32, device=device)

    lam_h = settings["alpha"] / max(haadf_noise(h), 1e-3) ** 2
    sens = torch.stack([a._apply_adjoint(torch.ones(a.range_shape, device=device)) for a, _ in chem])
    if lam_tv is None:
        lam_tv = [factor * TV_SCALE * float(sens[e].mean())
                  / np.sqrt(max(float(b[b > 0].mean()) if (b > 0).any() else 1.0, 1.0))
                  for e, (_, b) in enumerate(chem)]
    scale = torch.stack([torch.quantile(x[e].reshape(-1)[::max(1, x[e].numel() // 100000)], 0.99) for e in
                         range(len(elements))]).clamp(min=1e-6)
    prob = _Problem(ops[haadf], h, chem, w_t, exponent, lam_h,
                    torch.as_tensor(lam_tv, dtype=torch.float32, device=device), 1e-2 * scale)
    # diagonal majorisers of each term's curvature (separable quadratic surrogates) precondition the step
    ones = torch.ones(ops[haadf].domain_shape, device=device)
    haadf_curv = lam_h * ops[haadf]._apply_adjoint(ops[haadf]._apply(ones * w_t.sum())).unsqueeze(0) * w_t.view(-1, 1, 1, 1)
    delta = 1e-3 * scale.view(-1, 1, 1, 1)

    def precond(x):
        chain = 1.0 if exponent == 1 else (exponent * (x + delta) ** (exponent - 1)) ** 2
        g = gradient(x)
        tv_curv = 12.0 * prob.lam_tv.view(-1, 1, 1, 1) / torch.sqrt((g * g).sum(1) + prob.beta.view(-1, 1, 1, 1) ** 2)
        return 1.0 / (sens / (x + delta) + chain * haadf_curv + tv_curv)

    run = callback_runner(callback, like)
    f = prob.value(x)
    if objective is not None:
        objective.append(f)
    step, momentum, x_prev = 1.0, 1.0, x
    for i in range(iterations):
        x, f, step, momentum, x_prev = _iterate(prob, precond, x, f, x_prev, step, momentum)
        if objective is not None:
            objective.append(f)
        if run(i, x):
            break
    out = {e: like_input(x[k].contiguous(), like) for k, e in enumerate(elements)}
    out[haadf] = like_input(prob.mix(x) * h_max, like)
    info = {"method": "fused", "weight": dict(zip(elements, lam_tv)), "alpha": settings["alpha"],
            "haadf_weights": dict(zip(elements, (np.asarray(w) * h_max).tolist()))}
    return JointVolumes(out, info)


def _split_factor(ops, data, elements, iterations, rng, settings):
    """Factor of the TV weight rule by count splitting: ``(factor, [(factor, held-out nll), ...], interior)``.

    Every element's counts are split binomially (p = 1/2) into two independent
    Poisson halves; the model is fitted to one half for each factor tried (the
    rule, computed on the half, already follows the counts) and scored by the
    Poisson negative log-likelihood of the other half under the fitted projections.
    """
    gen = np.random.default_rng(rng)
    train, held = dict(data), {}
    for e in elements:
        half, held[e] = split_half(to_tensor(data[e]), gen)
        train[e] = half.cpu().numpy()

    def score(factor, start):
        fit = _solve(ops, train, elements, iterations, None, factor, settings, None, None)
        return sum(heldout_nll(ops[e]._apply(to_tensor(fit[e])).cpu(), held[e].cpu()) for e in elements), None

    return choose_weight(score, SPLIT_FACTORS, factor=float(np.sqrt(10.0)))
