"""Learned elemental maps from low-count EDX and EELS spectrum images, with a per-pixel uncertainty (issue 10).

Physics first, then the network:

1. **Whole-spectrum linear estimate** (:func:`.estimates.line_estimates`). Every
   pixel's spectrum ``s`` is fitted by weighted least squares with the linear model
   (EDX: :func:`.model.design_matrix`, line families + a Legendre background; EELS:
   :func:`.eels_model.eels_design_matrix`, model edges + a power-law-like background),
   the same weights ``W = 1 / mean spectrum`` for all pixels and *no*
   non-negativity::

       a_hat = G^-1 D^T W s,     G = D^T W D

   ``a_hat`` is unbiased at any dose, uses every channel of the fit range
   (not a window), separates overlapping lines by their shapes, and its noise
   covariance for the mean pixel is ``G^-1``: standard deviation ``sigma_k``
   (counts) and correlation ``rho_kj`` between lines. EELS edges take the
   delayed maxima fitted to the image's summed spectrum (:func:`.eels_model.edge_detection`),
   since real edges do not have the model's shape.
2. **Spatial network.** Each line is put on the scale
   ``c_k = sqrt(sigma_k^2 + mean_p a_hat_kp^2)`` (the RMS of its estimate: about
   its noise where the line is weak, its signal where it is strong), so that
   inputs and targets are of order one at any dose. A U-Net
   (:class:`chemtomo.nn.unet.UNet`, 10 inputs, 2 outputs) maps, for one
   line ``k`` at a time (any element set: lines are a batch), the inputs

   * ``z_k = a_hat_k / c_k``,
   * the noise-correlated lines, ``sum_{j != k} rho_kj (sigma_k / sigma_j) a_hat_j / c_k``
     (the part of line k's noise that the other estimates predict),
   * the counts of the whole fit range per pixel over their mean (the
     specimen's shape, from bremsstrahlung and all lines: high SNR),
   * the constants ``log(sigma_k / c_k)`` (the noise fraction) and ``log sigma_k``
     (the count level, which sets how Poisson-like the noise is),
   * the joint non-negative estimates (:func:`nonneg_estimates`) of the
     estimates smoothed by Gaussians of :data:`SMOOTHING` px (the maximum-likelihood
     non-negative maps of all lines at once: what a spatially regularised
     non-negative fit does, at three scales) and the global estimate (each line
     as a non-negative multiple of the total-counts map, pooling all pixels:
     the low-rank prior of PCA in its simplest form), over ``c_k``,
   * the constant ``asinh z_k`` of the line's whole-image significance
     (:func:`.estimates.significance`: whether the line is detected at all, which no
     receptive field can see),

   to the map's expected counts ``m_k = c_k softplus(out_0)`` and its standard
   deviation ``c_k exp(out_1)``. Trained on simulated spectrum images
   (:mod:`chemtomo.training.spectral`) with the squared error of ``m / c`` over that of the truth
   (the squared NRMSE, floored for lines far below their noise) plus the
   Gaussian negative log-likelihood of the error for the standard deviation
   (mean detached, so the uncertainty head does not bend the maps).
3. **Eight orientations.** The network sees the image turned and mirrored
   (:data:`DIHEDRAL`); maps and variances are averaged back in the original
   orientation (:func:`predict` with ``augment``), so the result turns with the
   image.
4. **Two networks.** The shipped extractor is an ensemble (:data:`ENSEMBLE`) of
   two networks trained apart (``weights/spectral_unet.pt``: the first 9
   inputs, continued from smaller feature sets; ``weights/spectral_unet_2.pt``:
   all 10, trained from scratch). Their maps are averaged and the variance is
   that of the mixture, the mean of their variances plus the spread of their
   maps (:func:`combine`): where the two disagree, as on elements and shapes
   unlike their training, the uncertainty grows.

5. **Detection (EELS).** An edge whose whole-image significance
   (:func:`.eels_model.edge_detection`) is below :data:`.estimates.DETECTION_Z` gets an empty
   map: the networks, trained with the model's biased edge significance,
   put counts on nearly absent edges.

Each weights file has a JSON (same name, ``.json``: architecture, training
configuration and its command, element pools, held-out elements and
validation scores); both were trained by ``python -m chemtomo.training.spectral`` (then named
``chemtomo.spectral.train``, the command their JSON records).
Each spectrum image is mapped on its own: in a tilt series the maps of one
tilt never depend on the other tilts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from ..core.errors import ChemtomoError, ShapeError
from ..nn.unet import architecture, forward_any_size, load_model
from ..physics.counts import resolve_read_noise
from .eels_model import edge_detection, is_eels
from .estimates import DETECTION_Z, line_estimates, significance

#: The first shipped network; its JSON (same name, ``.json``) holds architecture, training and validation.
WEIGHTS = Path(__file__).with_name("weights") / "spectral_unet.pt"
#: The shipped ensemble (module notes): networks whose maps :func:`combine` merges.
ENSEMBLE = (WEIGHTS, WEIGHTS.with_name("spectral_unet_2.pt"))
#: Gaussian widths (px) of the smoothed joint non-negative estimates among the inputs.
SMOOTHING = (2.0, 4.0, 8.0)
#: Inputs per line (see module notes).
N_FEATURES = 7 + len(SMOOTHING)
_TINY = 1e-12


def scales(estimate, sigma) -> np.ndarray:
    """Per-line scale ``c_k = sqrt(sigma_k^2 + mean_p a_hat_kp^2)`` (counts): the estimate's RMS, at least its noise."""
    a = np.asarray(estimate, dtype=np.float64).reshape(len(sigma), -1)
    return np.sqrt(np.asarray(sigma, dtype=np.float64) ** 2 + np.mean(a ** 2, axis=1))


def _nonneg(b, h, sweeps: int = 200, tol: float = 1e-4) -> np.ndarray:
    """``argmin_{a >= 0} (a - b)^T h (a - b)`` for every column of `b` ``(k, P)`` (cyclic coordinate descent)."""
    a = np.clip(b, 0.0, None)
    d = np.diag(h)
    ref = max(float(np.abs(b).max()), _TINY)
    for _ in range(sweeps):
        change = 0.0
        for i in range(len(d)):
            new = np.maximum(a[i] - h[i] @ (a - b) / d[i], 0.0)
            change = max(change, float(np.abs(new - a[i]).max()))
            a[i] = new
        if change < tol * ref:
            break
    return a


def nonneg_estimates(estimate, sigma, correlation, total, widths=SMOOTHING) -> np.ndarray:
    """Joint non-negative estimates ``(len(widths) + 1, n_lines, ny, nx)`` in counts: smoothed, then global.

    For each Gaussian width ``w`` (px) the estimates are smoothed and projected on ``a >= 0`` in the
    metric of their inverse noise covariance (the maximum-likelihood non-negative lines of every pixel
    jointly: overlapping lines are shared out, not clipped one by one). The last map is the global
    estimate: each line a non-negative multiple ``beta_k t`` of the total counts ``t`` (smoothed over 1 px),
    ``beta`` fitted over all pixels and projected the same way.
    """
    a = np.asarray(estimate, dtype=np.float64)
    k = a.shape[0]
    s = np.asarray(sigma, dtype=np.float64)
    h = np.linalg.pinv(np.asarray(correlation, dtype=np.float64) * np.outer(s, s))
    out = []
    for w in widths:
        b = gaussian_filter(a, (0, w, w), mode="reflect")
        out.append(_nonneg(b.reshape(k, -1), h).reshape(a.shape))
    t = gaussian_filter(np.asarray(total, dtype=np.float64), 1.0, mode="reflect")
    beta = a.reshape(k, -1) @ t.ravel() / max(float(t.ravel() @ t.ravel()), _TINY)
    out.append(_nonneg(beta[:, None], h)[:, 0, None, None] * t)
    return np.stack(out)


def features(estimate, sigma, correlation, total) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs ``(n_lines, N_FEATURES, ny, nx)`` and the scales ``c`` ``(n_lines,)`` (module notes), float32."""
    c = torch.as_tensor(scales(estimate, sigma), dtype=torch.float32).clamp_min(1e-6)
    a = torch.as_tensor(np.asarray(estimate), dtype=torch.float32)
    s = torch.as_tensor(np.asarray(sigma), dtype=torch.float32).clamp_min(1e-6)
    rho = torch.as_tensor(np.asarray(correlation), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(total), dtype=torch.float32)
    z = a / c[:, None, None]
    partner = torch.einsum("kj,jyx->kyx", (rho - torch.diag(torch.diagonal(rho))) * (c[None, :] / s[None, :]) / (c[:, None] / s[:, None]), z)
    shape = (t / t.mean().clamp_min(_TINY)).expand_as(z)
    noise = torch.log(s / c)[:, None, None].expand_as(z)
    level = torch.log(s)[:, None, None].expand_as(z)
    joint = torch.as_tensor(nonneg_estimates(estimate, sigma, correlation, total), dtype=torch.float32) / c[:, None, None]
    evidence = torch.asinh(torch.as_tensor(significance(estimate, sigma), dtype=torch.float32))[:, None, None].expand_as(z)
    return torch.cat([torch.stack([z, partner, shape, noise, level], dim=1), joint.transpose(0, 1),
                      evidence[:, None]], dim=1), c


#: The 8 symmetries of the pixel grid (quarter turns, then a mirror): ``(turns, mirrored)``.
DIHEDRAL = tuple((k, f) for f in (False, True) for k in range(4))


def _dihedral(x: torch.Tensor, turns: int, mirror: bool, inverse: bool = False) -> torch.Tensor:
    """`x` ``(..., ny, nx)`` turned by `turns` quarter turns, then mirrored in x; `inverse` undoes it."""
    if not inverse:
        x = torch.rot90(x, turns, (-2, -1))
        return torch.flip(x, (-1,)) if mirror else x
    x = torch.flip(x, (-1,)) if mirror else x
    return torch.rot90(x, -turns, (-2, -1))


def predict(model, x: torch.Tensor, scale: torch.Tensor, *, augment: bool = False):
    """Maps and standard deviations ``(n, ny, nx)`` in counts from features `x` ``(n, N_FEATURES, ny, nx)`` (any size).

    With `augment` the network sees the image in all 8 orientations of :data:`DIHEDRAL` (the physics has
    no preferred direction) and the maps are averaged back in the original orientation, the variances too
    (8 x the network time; 2-15 % lower error on the benchmark, ``docs/decisions.md``).
    """
    import torch.nn.functional as F

    c = scale[:, None, None]
    m = v = 0.0
    ops = DIHEDRAL if augment else DIHEDRAL[:1]
    for turns, mirror in ops:
        out = _dihedral(forward_any_size(model, _dihedral(x, turns, mirror)), turns, mirror, inverse=True)
        m = m + F.softplus(out[:, 0]) / len(ops)
        v = v + torch.exp(2 * out[:, 1].clamp(-10, 10)) / len(ops)
    return m * c, torch.sqrt(v) * c


def n_inputs(model, name: str = "the network") -> int:
    """Inputs per line that `model` takes: the first that many of the features (earlier feature sets are prefixes).

    Raises ChemtomoError if it takes more than :data:`N_FEATURES`.
    """
    n = architecture(model)["in_channels"]
    if n > N_FEATURES:
        raise ChemtomoError(f"{name} takes {n} inputs per line, more than the {N_FEATURES} features")
    return n


def combine(means, stds) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of an equal-weight mixture of members ``(n_members, ...)``.

    ``m = mean_i m_i`` and ``sd^2 = mean_i sd_i^2 + mean_i (m_i - m)^2``: each member's own uncertainty
    plus their disagreement (the members' spread is population variance, not the sample one).
    """
    m = torch.stack(list(means))
    v = torch.stack(list(stds)) ** 2
    mean = m.mean(dim=0)
    return mean, torch.sqrt(v.mean(dim=0) + ((m - mean) ** 2).mean(dim=0))


def learned_maps(si, energy, lines, *, weights=None, device=None,
                 fwhm_mnka: float = 130.0, beam_energy: float = 200.0, width: float = 50.0,
                 energy_window=None, batch: int = 8, augment: bool = True,
                 min_significance: float | None = DETECTION_Z, read_noise=0.0):
    """Elemental (EDX line or EELS edge) maps by the learned extractor, with their per-pixel standard deviation.

    EELS edges that the image does not show (whole-image significance of :func:`.eels_model.edge_detection` below
    `min_significance`) come back as empty maps: the networks saw the model's biased edge significance
    in training and put counts on nearly absent edges (up to 27 x the truth's norm on the benchmark,
    ``docs/decisions.md``). X-ray lines are not gated: their significance input is unbiased and the
    networks' maps of weak lines beat empty ones.

    Parameters
    ----------
    si : array (ny, nx, n_channels)
        Spectrum image in counts, energy last.
    energy : array (n_channels,)
        Channel energies: keV (EDX) or eV (EELS edges).
    lines : sequence of str or str
        X-ray lines or elements (``"Fe,Pt"``), or EELS edges (``"O_K,Fe_L23"``).
    weights : path or sequence of paths, optional
        Network weights (a ``.pt`` with its ``.json``), or several whose maps are merged by
        :func:`combine`; default the shipped :data:`ENSEMBLE`. A network with fewer inputs than
        :data:`N_FEATURES` takes the first ones (earlier feature sets are prefixes).
    device : str, optional
        Torch device; default CUDA when available, else the CPU.
    fwhm_mnka, beam_energy, width, energy_window
        As for :func:`.estimates.line_estimates`.
    batch : int, default 8
        Lines per forward pass.
    augment : bool, default True
        Average the network over the 8 orientations of the image (:func:`predict`); False is 8 x faster.
    min_significance : float or None, default :data:`.estimates.DETECTION_Z` (3)
        EELS: edges below this whole-image significance get an empty map (their standard deviation
        is kept); None keeps every network map.
    read_noise : float or "auto", default 0
        Gaussian read-out noise standard deviation per channel in electrons (CCD spectra, which may be
        negative): the whole-spectrum estimates weigh channels by ``1 / (mean + read_noise^2)`` and their
        standard deviations (network inputs) include it (:func:`.estimates.line_estimates`); ``"auto"``
        estimates it (:func:`chemtomo.physics.counts.estimate_read_noise`).

    Returns
    -------
    maps : dict of str to ndarray (ny, nx), float64, >= 0
        Counts in each line family (EDX) or in ``[onset, onset + width)`` (EELS) per pixel.
    std : dict of str to ndarray (ny, nx), float64
        Standard deviation of each map, counts per pixel (kept for gated EELS edges).
        ``maps, _ = learned_maps(...)`` when only the maps are needed.

    Raises
    ------
    ShapeError, DataError, ChemtomoError
        Not a 2D spectrum image, NaN or negative counts, unknown lines, missing weights.
    """
    data = np.asarray(si)
    if data.ndim != 3:
        raise ShapeError(f"learned maps need a spectrum image (ny, nx, n_channels), got shape {data.shape}")
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise ShapeError(f"the spectrum image is {data.shape[0]}x{data.shape[1]} px; the network needs at least 2x2")
    noise = resolve_read_noise(read_noise, data)
    det = (edge_detection(data, energy, lines, width=width, energy_window=energy_window, read_noise=noise)
           if is_eels(lines) else None)
    est = line_estimates(data, energy, lines, fwhm_mnka=fwhm_mnka, beam_energy=beam_energy, width=width,
                         energy_window=energy_window, delays=None if det is None else det["delays"], read_noise=noise)
    if weights is None:
        weights = ENSEMBLE
    paths = [weights] if isinstance(weights, (str, Path)) else list(weights)
    if not paths:
        raise ChemtomoError("weights is an empty list: give a weights file, or None for the shipped ensemble")
    models = [load_model(w, device) for w in paths]
    x, s = features(est["estimate"], est["sigma"], est["correlation"], est["total"])
    means, stds = [], []
    with torch.inference_mode():
        for model in models:
            n_in = n_inputs(model)
            dev = next(model.parameters()).device
            out = [predict(model, x[i:i + batch, :n_in].to(dev), s[i:i + batch].to(dev), augment=augment)
                   for i in range(0, x.shape[0], int(batch))]
            means.append(torch.cat([o[0].cpu() for o in out]))
            stds.append(torch.cat([o[1].cpu() for o in out]))
    m, sd = (t.double().numpy() for t in combine(means, stds))
    if det is not None and min_significance is not None:
        m[det["significance"] < min_significance] = 0.0
    return ({line: m[i] for i, line in enumerate(est["lines"])},
            {line: sd[i] for i, line in enumerate(est["lines"])})
