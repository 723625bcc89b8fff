"""Elemental maps at low dose: a Poisson fit of all pixels at once with a spatial prior on the maps.

:func:`regularised_maps` uses the model of :func:`.maps.fit_maps` (the same
design matrix ``D``, channels x (lines + background terms), :func:`.model.design_matrix`)
but fits the coefficient maps ``A`` (pixels x components) of every pixel
jointly, by maximum a-posteriori estimation::

    min_A  sum_{p, c in fit range} [ mu_pc - S_pc log mu_pc ]          mu = A D^T
         + sum_l lambda_l R(a_l) + sum_j beta_j / 2 || grad c_j ||^2
    subject to  a_l >= 0 (line amplitudes),  mu > 0

* the data term is the Poisson negative log-likelihood of the counts ``S``
  (not the weighted least squares of ``fit_maps``), which stays correct at a
  few counts per pixel, where most channels hold 0; with Gaussian read-out
  noise of standard deviation ``s`` per channel (CCD spectra, ``read_noise``)
  it is the shifted-Poisson likelihood of ``S + s^2`` (clipped at 0) with the
  model ``mu + s^2``, which has the true mean-variance relation ``mu + s^2``
  (:func:`chemtomo.physics.counts.shifted_counts`); count splitting deals
  the shifted counts, whose halves stay uncorrelated;
* ``R`` is the isotropic total variation ``sum_p |grad a_l (p)|_2``
  (``prior="tv"``: piecewise-constant maps, sharp particle edges) or the
  quadratic smoothness ``1/2 ||grad a_l||^2`` (``prior="smooth"``, a Laplacian
  prior: Gaussian-like smoothing); forward differences, Neumann boundary;
* the background coefficient maps ``c_j`` get their own prior
  (``background_prior``, TV by default: the bremsstrahlung follows the
  specimen's mass thickness, edges included) with a fixed weight
  ``background_weight``.

Weights are made dimensionless with the Cramer-Rao standard deviation
``sigma_k`` of each coefficient for the mean pixel (``sigma_k^2`` the diagonal of
``(D^T W D)^-1``, ``W = 1 / mean spectrum``, the covariance of ``fit_maps``):
``lambda_k = weight / sigma_k`` for TV (`weight` is the ROF weight in units of
the per-pixel noise of the map) and ``lambda_k = weight / sigma_k^2`` for the
smooth prior (`weight` is then a smoothing area in pixels^2). The same weight
thus means the same smoothing relative to the noise at any dose, line strength
or background level; the best TV weight measured on simulated images is
0.5-1 from 0.5 to 50 counts per pixel per line.

Weight choice (``weight=None``), without ground truth, by count splitting: the
counts are dealt binomially into two halves (:func:`chemtomo.physics.counts.split_counts`),
the problem is solved on one half for each weight of the grid (extended by
factors of 2 while the best is at an end; each solve starts from the previous
one), and the modelled spectra are scored against the other half's counts
(``score="mse"``: squared error over the fit range; ``"poisson"``: Poisson
negative log-likelihood, which is dominated by the background channels and
chooses weights about 2-3 times too large for the line maps). The best value
is refined by a parabola in log weight (:mod:`chemtomo.denoise.splitting`).

Solver: proximal Fisher scoring. Each outer step (`iterations`) replaces the
Poisson term by its Fisher-scoring quadratic at the current model, i.e. the
weighted least squares of the counts with weights ``1 / max(mu_pc, f_c)``
(``f_c`` = 5 % of the mean spectrum, a safeguard for empty pixels), whose fixed
point is the Poisson MAP estimate; the regularised quadratic is solved by ADMM
(per-pixel K x K Cholesky solves, the TV proximal map by projected dual
gradient, the smooth one exactly by the DCT, ``a_l >= 0`` by projection), and a
backtracking step on the true objective keeps it decreasing. Only the outer
steps touch the channels (one pass to build the per-pixel Gram matrices), so
the cost is a few passes over the spectrum image, all vectorised over pixels
in PyTorch (CUDA if available). It starts from the NNLS fit of
:func:`.maps.fit_maps`' model on the spectrum image smoothed over 3 x 3 pixels
(or, with `rank`, on its rank-`rank` NMF reconstruction, :func:`.decompose.denoise_pca`).

References
----------
J. D. Lee, Y. Sun and M. A. Saunders, "Proximal Newton-type methods for minimizing
composite functions", SIAM J. Optim. 24 (2014) 1420-1443.
A. Chambolle, "An algorithm for total variation minimization and applications",
J. Math. Imaging Vis. 20 (2004) 89-97.
A. Neufeld, A. Dharamshi, L. L. Gao and D. Witten, "Data thinning for
convolution-closed distributions", JMLR 25 (2024) 1-35 (count splitting).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..core.diff import divergence, gradient
from ..core.errors import ChemtomoError, DataError, ShapeError
from ..physics.counts import resolve_read_noise, shifted_counts
from .eels_model import edge_detection, eels_design_matrix, is_eels
from .lines import resolve_lines, split_names
from .model import check_spectrum_image, design_matrix

PRIORS = ("tv", "smooth")

#: weights tried by ``weight=None`` per prior (extended by factors of 3 while the best is at an end)
WEIGHT_GRID = {"tv": (0.25, 0.5, 1.0, 2.0), "smooth": (0.125, 0.5, 2.0)}


_FLOOR_FRACTION = 0.05


def regularised_maps(si, energy, lines_or_elements, *, weight: float | None = None, prior: str = "tv",
                     background_prior: str = "tv", background_weight: float = 1.0, rank: int | None = None,
                     iterations: int = 8, background: str = "polynomial", order: int | None = None,
                     energy_window=None, fwhm_mnka: float = 130.0, beam_energy: float = 200.0, width: float = 50.0,
                     grid=None, score: str = "mse", rng=0, device=None, progress: bool = False, read_noise=0.0):
    """Elemental maps by a joint Poisson fit of all pixels with a spatial prior (see module notes).

    Parameters
    ----------
    si : array (ny, nx, n_channels)
        Spectrum image in counts (electrons; finite, non-negative unless `read_noise` > 0), energy last.
    energy : array (n_channels,)
        Uniform channel energies in keV (EDX) or eV (EELS edges).
    lines_or_elements : sequence of str or str
        Lines (``"Pt_Ma"``) or elements (``"Pt"``), as for :func:`.maps.fit_maps`, or EELS edges
        (``"O_K,Fe_L23"``): then the model is :func:`.eels_model.eels_design_matrix` (polynomial of degree
        `order`, default 3, in ``log E`` times ``E^-3`` for the background) with the edge delays fitted
        to the summed spectrum (:func:`.eels_model.edge_detection`), and each map is the edge's counts in
        ``[onset, onset + width)`` eV.
    weight : float, optional
        Strength of the prior on the line maps, dimensionless (module notes); 0 gives the
        plain per-pixel Poisson fit. None chooses it by count splitting over `grid`.
    prior : {"tv", "smooth"}, default "tv"
        Total variation (edges kept) or quadratic smoothness (Laplacian prior) of the line maps.
    background_prior : {"tv", "smooth"}, default "tv"
        Prior of the background coefficient maps.
    background_weight : float, default 1
        Its weight, normalised as `weight` is (0: background free per pixel).
    rank : int, optional
        Start from the NNLS fit of a rank-`rank` NMF reconstruction of the spectrum image
        instead of the 3 x 3 smoothed one (the problem is convex: the start changes the speed only).
    iterations : int, default 8
        Outer (Fisher-scoring) steps of the final fit; the weight search uses half as many per weight.
    background, order, energy_window, fwhm_mnka, beam_energy
        The model, as for :func:`.maps.fit_maps` (EELS: `order` and `energy_window` only).
    width : float, default 50
        EELS: the edge counts are those in ``[onset, onset + width)`` eV.
    grid : sequence of float, optional
        Weights tried when `weight` is None; default :data:`WEIGHT_GRID` of the prior.
    score : {"mse", "poisson"}, default "mse"
        Held-out score of the weight search (module notes).
    rng : None, int or numpy.random.Generator, default 0
        Random source of the count split (the same seed gives the same weight).
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.
    progress : bool, default False
        Print the objective after each outer step and each weight's held-out score.
    read_noise : float or "auto", default 0
        Gaussian read-out noise standard deviation per channel in electrons (CCD spectra, which may be
        negative): the data term becomes the shifted-Poisson likelihood of ``S + read_noise^2`` with the
        model ``mu + read_noise^2`` (:func:`chemtomo.physics.counts.shifted_counts`, module notes);
        ``"auto"`` estimates it (:func:`chemtomo.physics.counts.estimate_read_noise`).

    Returns
    -------
    maps : dict of str to ndarray (ny, nx), float64, >= 0
        Counts in each named line family (or EELS edge) per pixel, as :func:`.maps.fit_maps` returns.
    info : dict
        ``weight`` (given or chosen), ``prior``, ``background_weight``, ``lines``, ``history``
        (``(weight, held-out score)`` pairs of the search, empty when `weight` is given), ``sigma``
        (per-line noise scale, counts), ``objective`` (start and after each outer step), ``iterations``,
        ``device`` and ``seconds``. ``maps, _ = regularised_maps(...)`` when only the maps are needed.

    Raises
    ------
    ShapeError
        If `si` is not ``(ny, nx, n_channels)`` with one energy per channel.
    DataError
        If `si` holds NaN, infinite or (without `read_noise`) negative values.
    ChemtomoError
        Unknown element or line, line out of range, lines that cannot be told apart, or a bad option.
    """
    import torch

    t0 = time.perf_counter()
    data, e = check_spectrum_image(si, energy)
    if data.ndim != 3 or min(data.shape[:2]) < 2:
        raise ShapeError(f"regularised_maps needs a spectrum image (ny, nx, n_channels) with ny, nx >= 2, "
                         f"got shape {data.shape}; use fit_maps for single spectra or line scans")
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise DataError(f"the spectrum image must hold real counts, got dtype {data.dtype}")
    n_bad = int(np.count_nonzero(~np.isfinite(data)))
    if n_bad:
        raise DataError(f"the spectrum image holds {n_bad} NaN or infinite values; give raw counts")
    noise = resolve_read_noise(read_noise, data)
    if noise == 0 and data.size and data.min() < 0:
        raise DataError(f"the spectrum image holds negative values (minimum {data.min():g}); the Poisson fit "
                        "needs raw counts, not background-subtracted or normalised data (CCD read-out noise: give "
                        "read_noise, --read-noise SIGMA or auto)")
    if prior not in PRIORS:
        raise ChemtomoError(f"unknown prior {prior!r}; use 'tv' or 'smooth'")
    if weight is not None and not (np.isfinite(weight) and weight >= 0):
        raise ChemtomoError(f"weight must be a finite number >= 0 (or None to choose it), got {weight!r}")
    if not (np.isfinite(background_weight) and background_weight >= 0):
        raise ChemtomoError(f"background_weight must be a finite number >= 0, got {background_weight!r}")
    if score not in ("mse", "poisson"):
        raise ChemtomoError(f"unknown score {score!r}; use 'mse' or 'poisson'")
    if int(iterations) != iterations or iterations < 1:
        raise ChemtomoError(f"iterations must be a whole number >= 1, got {iterations!r}")
    if is_eels(lines_or_elements):
        lines = split_names(lines_or_elements)
        delays = edge_detection(data, e, lines, width=width, energy_window=energy_window, read_noise=noise)["delays"]
        design, used = eels_design_matrix(e, lines, width=width, order=3 if order is None else order,
                                          delays=delays, energy_window=energy_window)
    else:
        lines = resolve_lines(lines_or_elements, e, beam_energy=beam_energy)
        design, used = design_matrix(e, lines, background=background, order=order, fwhm_mnka=fwhm_mnka,
                                     beam_energy=beam_energy, energy_window=energy_window)
    ny, nx = data.shape[:2]
    offset = noise * noise  # shifted Poisson: S + s^2 ~ Poisson(mu + s^2)
    counts = shifted_counts(data[..., used].reshape(ny * nx, -1), noise).astype(np.float32)
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    background_prior = prior if background_prior is None else background_prior
    if background_prior not in PRIORS:
        raise ChemtomoError(f"unknown background_prior {background_prior!r}; use 'tv' or 'smooth'")

    def problem(c, offset):
        sigma = _noise_scale(design, c)
        if not np.all(np.isfinite(sigma)):
            raise ChemtomoError(f"lines {', '.join(lines)} cannot be told apart in this fit; drop a line or lower order")
        mean = c.astype(np.float64).mean(axis=0)
        floor = _FLOOR_FRACTION * np.maximum(uniform_filter1d(mean, 9, mode="nearest"), 1e-3 * max(mean.mean(), 1e-9))
        return _Problem(design, len(lines), (ny, nx), sigma, prior, background_prior, background_weight, floor, dev,
                        offset)

    prob = problem(counts, offset)
    x0 = _start(prob, data[..., used], rank, rng, offset)
    history: list = []
    if weight is None:
        weight = _choose_weight(problem, counts, x0, iterations, grid or WEIGHT_GRID[prior], rng, history, progress,
                                score, offset)
    s = torch.from_numpy(counts).to(dev)
    x, objective, _ = prob.solve(s, float(weight), x0, outer=int(iterations), progress=progress)
    a = x[:, :len(lines)].clamp(min=0).double().cpu().numpy()
    maps = {line: a[:, i].reshape(ny, nx) for i, line in enumerate(lines)}
    info = {"weight": float(weight), "prior": prior, "background_weight": float(background_weight),
            "lines": lines, "history": history, "sigma": dict(zip(lines, prob.sigma[:len(lines)].tolist())),
            "objective": objective, "iterations": int(iterations), "device": str(dev), "read_noise": noise,
            "seconds": time.perf_counter() - t0}
    return maps, info


def _noise_scale(design, counts):
    """Cramer-Rao standard deviation of each coefficient for the mean pixel (module notes)."""
    mean = counts.astype(np.float64).mean(axis=0)
    floor = max(0.1 * float(np.median(mean)), 1e-6)
    w = 1.0 / np.maximum(mean, floor)
    gram = design.T @ (design * w[:, None])
    if np.linalg.cond(gram) > 1e12:
        return np.full(design.shape[1], np.nan)
    return np.sqrt(np.clip(np.diag(np.linalg.inv(gram)), 1e-12, None))


class _Problem:
    """The MAP problem for one design matrix and image size; :meth:`solve` runs it (module notes)."""

    def __init__(self, design, n_lines, shape, sigma, prior, background_prior, background_weight, floor, device,
                 offset=0.0):
        import torch

        self.offset = float(offset)  # read noise variance added to the model (shifted Poisson, module notes)
        self.torch, self.device, self.shape, self.n_lines, self.prior = torch, device, shape, n_lines, prior
        self.d = torch.from_numpy(design.astype(np.float32)).to(device)  # (C, K)
        self.k = k = design.shape[1]
        iu = np.triu_indices(k)
        self.iu = iu
        self.dd = torch.from_numpy((design[:, iu[0]] * design[:, iu[1]]).astype(np.float32)).to(device)  # (C, K(K+1)/2)
        self.sigma = torch.from_numpy(sigma.astype(np.float32)).to(device)
        self.background_weight = float(background_weight)
        self.floor = torch.from_numpy(np.asarray(floor, dtype=np.float32)).to(device)  # (C,)
        self.nonneg = torch.arange(k, device=device) < n_lines
        self.tv = torch.zeros(k, dtype=torch.bool, device=device)
        self.tv[:n_lines] = prior == "tv"
        self.tv[n_lines:] = background_prior == "tv"
        ny, nx = shape
        self.dct = [_dct_matrix(n, device) for n in (ny, nx)]
        eig = [2.0 - 2.0 * torch.cos(torch.pi * torch.arange(n, device=device, dtype=torch.float32) / n) for n in (ny, nx)]
        self.laplace_eig = eig[0][:, None] + eig[1][None, :]  # (ny, nx): eigenvalues of grad^T grad (Neumann)

    def reg_weights(self, weight):
        """Per-component weight (module notes): TV weight or quadratic weight, normalised by sigma."""
        w = self.torch.full((self.k,), float(weight), device=self.device)
        w[self.n_lines:] = self.background_weight
        return w / self.torch.where(self.tv, self.sigma, self.sigma ** 2)

    # -- spatial operators on maps (ny, nx, K) -------------------------------------------------------------
    def grad(self, v):
        """Forward differences of maps ``(ny, nx, K)`` along y and x: ``(2, ny, nx, K)`` (:func:`core.diff.gradient`)."""
        g = gradient(v.permute(2, 0, 1).unsqueeze(2))  # maps as (K, ny, 1, nx) volumes: (K, 3, ny, 1, nx)
        return g[:, (0, 2), :, 0, :].permute(1, 2, 3, 0)

    def grad_t(self, g):
        """Adjoint of :meth:`grad`: minus :func:`core.diff.divergence`."""
        k = g.shape[-1]
        field = g.new_zeros((k, 3) + self.shape[:1] + (1,) + self.shape[1:])
        field[:, 0, :, 0, :] = g[0].permute(2, 0, 1)
        field[:, 2, :, 0, :] = g[1].permute(2, 0, 1)
        return -divergence(field)[:, :, 0, :].permute(1, 2, 0)

    def smooth_prox(self, v, t):
        """argmin_z 1/2 ||z - v||^2 + t/2 ||grad z||^2 per component (t: (K,)), exactly by the DCT."""
        cy, cx = self.dct
        h = self.torch.einsum("ay,yxk,bx->abk", cy, v, cx)
        h = h / (1.0 + t[None, None, :] * self.laplace_eig[:, :, None])
        return self.torch.einsum("ay,abk,bx->yxk", cy, h, cx)

    def tv_prox(self, v, t, p, iterations=10):
        """argmin_z 1/2 ||z - v||^2 + t TV(z) per component by projected dual gradient (warm start `p`)."""
        torch = self.torch
        for _ in range(iterations):
            z = v - t * self.grad_t(p)
            p = p + (1.0 / 8.0) / t.clamp(min=1e-30) * self.grad(z) * (t > 0)
            p = p / torch.clamp(torch.sqrt((p ** 2).sum(0, keepdim=True)), min=1.0)
        return v - t * self.grad_t(p), p

    # -- data term ------------------------------------------------------------------------------------------
    def model(self, x):
        return x @ self.d.T

    def nll(self, s, x):
        mu = self.model(x).clamp(min=0) + self.offset + self.floor * 1e-3
        return float((mu - s * self.torch.log(mu)).sum())

    def penalty(self, x, lam):
        ny, nx = self.shape
        g = self.grad(x.view(ny, nx, self.k))
        tv = self.torch.sqrt((g ** 2).sum(0)).sum(dim=(0, 1))
        quad = 0.5 * (g ** 2).sum(dim=(0, 1, 2))
        return float(self.torch.where(self.tv, tv, quad) @ lam)

    def quadratic(self, s, x):
        """Per-pixel Fisher-scoring model: weights 1 / max(mu, floor), Gram (P, K, K) and right-hand side (P, K)."""
        torch = self.torch
        w = 1.0 / torch.maximum(self.model(x) + self.offset, self.floor)
        half = w @ self.dd
        g = torch.zeros((w.shape[0], self.k, self.k), device=self.device)
        g[:, self.iu[0], self.iu[1]] = half
        g[:, self.iu[1], self.iu[0]] = half
        return g, (w * (s - self.offset)) @ self.d

    def solve(self, s, weight, x0, *, outer=8, inner=30, state=None, progress=False):
        """Proximal Fisher scoring: IRLS outer steps, each an ADMM solve of the regularised weighted LS."""
        torch = self.torch
        ny, nx = self.shape
        lam = self.reg_weights(weight)
        x = x0.clone()
        x[:, self.nonneg] = x[:, self.nonneg].clamp(min=0)
        if state is None:
            state = {"u1": torch.zeros_like(x), "u2": torch.zeros_like(x),
                     "p": torch.zeros((2, ny, nx, self.k), device=self.device)}
        u1, u2, p = state["u1"], state["u2"], state["p"]
        obj = self.nll(s, x) + self.penalty(x, lam)
        history = [obj]
        for it in range(outer):
            g, b = self.quadratic(s, x)
            rho = g.diagonal(dim1=1, dim2=2).mean(0).clamp(min=1e-12)  # (K,)
            chol = torch.linalg.cholesky(g + torch.diag(2.0 * rho))
            a = x.clone()
            z1, z2 = a.clone(), a.clone()
            t = lam / rho
            for _ in range(inner):
                rhs = b + rho * (z1 - u1) + rho * (z2 - u2)
                a = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
                z1 = a + u1
                z1[:, self.nonneg] = z1[:, self.nonneg].clamp(min=0)
                v = (a + u2).view(ny, nx, self.k)
                zs = self.smooth_prox(v, torch.where(self.tv, torch.zeros_like(t), t))
                zt, p = self.tv_prox(v, torch.where(self.tv, t, torch.zeros_like(t)), p)
                z2 = torch.where(self.tv, zt, zs).reshape(-1, self.k)
                u1 = u1 + a - z1
                u2 = u2 + a - z2
            new = z1  # feasible (lines >= 0); z1 ~ z2 ~ a at convergence
            step, new_obj = 1.0, self.nll(s, new) + self.penalty(new, lam)
            while new_obj > obj and step > 1 / 16:
                step /= 2
                cand = x + step * (new - x)
                new_obj = self.nll(s, cand) + self.penalty(cand, lam)
                new = cand
            x, obj = new, new_obj
            history.append(obj)
            if progress:
                print(f"  step {it + 1}: objective {obj:.8g} (step {step:g})", flush=True)
        state.update(u1=u1, u2=u2, p=p)
        return x, history, state


def _dct_matrix(n, device):
    """Orthonormal DCT-II matrix (n, n); its rows diagonalise the Neumann Laplacian."""
    import torch

    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return torch.from_numpy(m.astype(np.float32)).to(device)


def _start(prob, si_used, rank, rng, offset=0.0):
    """Starting coefficients (P, K): NNLS (fit_maps' weighted Gram) of a smoothed or low-rank spectrum image."""
    import torch
    from scipy.ndimage import uniform_filter

    from ._nnls import nnls_gram

    ny, nx, c = si_used.shape
    if rank is not None:
        from .decompose import denoise_pca

        if int(rank) != rank or rank < 1:
            raise ChemtomoError(f"rank must be a whole number >= 1, got {rank!r}")
        smooth = denoise_pca(np.clip(si_used, 0, None), int(rank), method="nmf", rng=rng)
    else:
        smooth = uniform_filter(si_used.astype(np.float32), size=(3, 3, 1), mode="nearest")
    flat = smooth.reshape(-1, c).astype(np.float64)
    design = prob.d.double().cpu().numpy()
    mean = flat.mean(axis=0)
    w = 1.0 / (np.maximum(mean, max(0.1 * float(np.median(mean)), 1e-6)) + offset)
    gram = design.T @ (design * w[:, None])
    rhs = (flat @ (design * w[:, None])).T
    coef, _ = nnls_gram(gram, rhs, prob.nonneg.cpu().numpy())
    return torch.from_numpy(coef.T.astype(np.float32)).to(prob.device)


def _choose_weight(problem, counts, x0, iterations, grid, rng, history, progress, score="mse", offset=0.0):
    """Count splitting over `grid` (module notes); `history` receives (weight, score) pairs."""
    import torch

    from ..physics.counts import split_counts
    from ..recon.selection import choose_weight, vertex

    train, test = split_counts(np.rint(counts).astype(np.int64), 0.5, rng=rng)  # shifted counts: halves uncorrelated
    prob = problem(train.astype(np.float32), 0.5 * offset)
    train, test = (torch.from_numpy(h.astype(np.float32)).to(prob.device) for h in (train, test))
    outer = max(2, iterations // 2)
    last = {"x": 0.5 * x0}  # each fit starts from the previous one (few outer iterations: the start matters)

    def run(w, _nearest):
        x, _, _ = prob.solve(train, w, last["x"], outer=outer)
        last["x"] = x
        mu = torch.maximum(prob.model(x) + prob.offset, prob.floor * 1e-3)
        value = float((mu - test * torch.log(mu)).sum() if score == "poisson" else ((mu - test) ** 2).sum())
        if progress:
            print(f"  weight {w:.3g}: held-out -log L {value:.10g}", flush=True)
        return value, None

    _, table, _ = choose_weight(run, grid, factor=2.0, max_extend=3, ascending=True)
    history.extend(table)
    return vertex(table)
