"""Elemental maps from EDX spectrum images: integration windows and a linear-model fit.

Window maps (:func:`window_maps`) follow exSpy's ``get_lines_intensity``: the
counts in ``E_l +- width FWHM(E_l) / 2`` minus a background estimated from two
windows ``[E_l - (o + w) FWHM, E_l - o FWHM]`` and ``[E_l + o FWHM, E_l + (o + w) FWHM]``
(``o = 2``, ``w = 1``, exSpy's ``estimate_background_windows`` defaults)::

    I = sum_window S - (sum_left S + sum_right S) n_window / (n_left + n_right)

i.e. the mean background level per channel times the window's channels; for
symmetric windows this equals the integral of the straight line through the two
background windows. Overlapping background windows of neighbouring lines are
merged as exSpy does.

Fit maps (:func:`fit_maps`) solve, for every pixel at once, the linear model::

    S(E) = sum_l a_l sum_i w_li G(E; E_li, FWHM(E_li)) + sum_j c_j B_j(E)

with non-negative line amplitudes ``a_l`` (batched NNLS, :mod:`._nnls`) and
free background coefficients ``c_j``. ``G`` is a channel-integrated unit
Gaussian with the detector law ``FWHM(E)^2 = FWHM_MnKa^2 + 2.5 (E - 5.899 keV) 1000``
(eV, :func:`chemtomo.physics.xray.fwhm`); the components ``E_li, w_li``
of a line family are every transition of its shell from xraylib
(:func:`.lines.line_components`), weighted so that ``a_l`` is the counts in the
named family (``Fe_Ka`` = KL3 + KL2). Overlapping lines (Pt Ma / Au Ma,
S Ka / Mo La) are separated by their shapes and satellite lines.

Quantification (:func:`cliff_lorimer`, :func:`zeta_factor`) lives in
:mod:`.quant`, low-rank denoising (:func:`denoise_pca`) in :mod:`.decompose`,
tilt series of maps (:func:`maps_series`, :func:`maps_to_directory`) in
:mod:`.series`; all are re-exported here.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import erf, eval_legendre

from ..core.errors import ChemtomoError, ShapeError
from ..physics.xray import fwhm
from ._nnls import nnls_gram
from .decompose import denoise_pca, pca_rank  # noqa: F401  (re-exported)
from .lines import energy_range, line_components, line_energy, resolve_lines
from .quant import cliff_lorimer, theory_k_factors, zeta_factor  # noqa: F401  (re-exported)

_CHUNK = 8192  # pixels per block when forming D^T S
_SMOOTH_COUNTS = 500.0  # counts (all pixels) the smoothed mean spectrum holds per channel, at least


def _check_si(si, energy):
    lo, hi = energy_range(energy)
    data = np.asarray(si)
    e = np.asarray(energy, dtype=np.float64)
    if data.ndim < 1 or data.shape[-1] != e.size:
        raise ShapeError(
            f"the spectrum image has shape {data.shape} but the energy axis has {e.size} channels; "
            "the last axis must be energy, one channel per energy value"
        )
    if not np.allclose(np.diff(e), e[1] - e[0], rtol=1e-4, atol=1e-9):
        raise ChemtomoError(f"the energy axis {lo:.3g}-{hi:.3g} keV is not uniform; give equally spaced channels")
    return data, e


def integration_windows(energy, lines, *, width: float = 1.2, background_offset: float = 2.0,
                        background_width: float = 1.0, fwhm_mnka: float = 130.0):
    """Integration and background windows in keV, as exSpy builds them.

    Parameters
    ----------
    energy : array (n_channels,)
        Channel energies in keV.
    lines : sequence of str
        X-ray lines, e.g. ``["Fe_Ka", "Pt_La"]``.
    width : float, default 1.2
        Integration window width in units of the line's FWHM.
    background_offset : float, default 2.0
        Distance from the line to the inner edge of each background window, in FWHM.
    background_width : float, default 1.0
        Width of each background window, in FWHM.
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.

    Returns
    -------
    windows : ndarray (n_lines, 2)
        ``[start, stop]`` of each integration window, keV.
    background : ndarray (n_lines, 4)
        Left ``[start, stop]`` and right ``[start, stop]`` background windows, keV
        (exSpy's ``estimate_background_windows`` layout, overlaps merged).
    """
    energy_range(energy)
    e = np.array([line_energy(l) for l in lines])
    f = fwhm(e, fwhm_mnka) / 1000.0
    windows = np.stack([e - width * f / 2, e + width * f / 2], axis=1)
    o, w = background_offset, background_width
    bg = np.stack([e - f * o - f * w, e - f * o, e + f * o, e + f * o + f * w], axis=1)
    order = bg.argsort(axis=0)[:, 0]
    for ia, ib in zip(order[:-1], order[1:]):  # exSpy: merge overlapping windows of neighbours
        if bg[ia, 2] > bg[ib, 0]:
            merged = np.append(bg[ia, :2], bg[ib, 2:])
            bg[ia] = merged
            bg[ib] = merged
    return windows, bg


def window_maps(si, energy, lines, *, width: float = 1.2, background_windows: bool = True,
                fwhm_mnka: float = 130.0, beam_energy: float = 200.0) -> dict:
    """Elemental maps by window integration with exSpy's linear background (see module notes).

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts, energy last (e.g. ``(ny, nx, n_channels)``).
    energy : array (n_channels,)
        Uniform channel energies in keV.
    lines : sequence of str or str
        Lines (``"Fe_Ka"``) or elements (``"Fe"``, lines from :func:`.lines.auto_lines`).
    width : float, default 1.2
        Integration window width in FWHM of the line.
    background_windows : bool, default True
        Subtract the background from two side windows (2 FWHM away, 1 FWHM wide).
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    beam_energy : float, default 200
        Beam energy in keV (lines above it are refused).

    Returns
    -------
    maps : dict of str to ndarray, shape ``si.shape[:-1]``, float64
        Net counts per pixel for each line.

    Raises
    ------
    ChemtomoError
        If the energy axis is missing or not uniform, an element is unknown or a line is out of range.
    """
    data, e = _check_si(si, energy)
    lines = resolve_lines(lines, e, beam_energy=beam_energy)
    windows, bg = integration_windows(e, lines, width=width, fwhm_mnka=fwhm_mnka)
    n = e.size
    idx = lambda v: int(np.clip(np.floor((v - e[0]) / (e[1] - e[0]) + 0.5), 0, n))  # noqa: E731  exSpy value2index
    out = {}
    for line, win, b in zip(lines, windows, bg):
        i0, i1 = idx(win[0]), idx(win[1])
        img = data[..., i0:max(i1, i0 + 1)].sum(axis=-1, dtype=np.float64)
        if background_windows:
            j = [idx(v) for v in b]
            left = data[..., j[0]:j[1]].sum(-1, dtype=np.float64) if j[1] > j[0] else data[..., min(j[0], n - 1)] * 1.0
            right = data[..., j[2]:j[3]].sum(-1, dtype=np.float64) if j[3] > j[2] else data[..., min(j[2], n - 1)] * 1.0
            img = img - (left + right) * (i1 - i0) / max((j[1] - j[0]) + (j[3] - j[2]), 1)
        out[line] = img
    return out


def fit_range(energy, lines, *, below: float = 0.4, above: float = 1.0) -> tuple[float, float]:
    """Default fit range in keV: from the lowest line - `below` (>= 0.15 keV) to the highest + `above`."""
    lo, hi = energy_range(energy)
    e = [line_energy(l) for l in lines]
    return max(lo, min(e) - below, 0.15), min(hi, max(e) + above)


def design_matrix(energy, lines, *, background: str = "polynomial", order: int | None = None,
                  fwhm_mnka: float = 130.0, beam_energy: float = 200.0, energy_window=None):
    """The fit model's basis spectra on the channels inside `energy_window`.

    Returns
    -------
    design : ndarray (n_used, n_lines + n_background)
        Line families (unit counts in the named family) then background terms.
    used : bool ndarray (n_channels,)
        Channels inside the fit range.
    """
    e = np.asarray(energy, dtype=np.float64)
    lo, hi = fit_range(e, lines) if energy_window is None else energy_window
    used = (e >= lo) & (e <= hi)
    if used.sum() < 8:
        raise ChemtomoError(f"the fit range {lo:.3g}-{hi:.3g} keV holds {used.sum()} channels; widen energy_window")
    eu = e[used]
    half = (e[1] - e[0]) / 2.0
    cols = []
    for line in lines:
        centres, weights = line_components(line, beam_energy)
        sig = fwhm(centres, fwhm_mnka)[:, None] / 1000.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        z = lambda x: erf((x[None, :] - centres[:, None]) / (np.sqrt(2.0) * sig))  # noqa: E731
        cols.append(weights @ (0.5 * (z(eu + half) - z(eu - half))))
    order_default = {"polynomial": 6, "kramers": 3}
    if background not in order_default:
        raise ChemtomoError(f"unknown background {background!r}; use 'polynomial' or 'kramers'")
    order = order_default[background] if order is None else int(order)
    t = 2.0 * (eu - lo) / max(hi - lo, 1e-9) - 1.0
    shape = np.ones_like(eu)
    if background == "kramers":
        ec = np.clip(eu, 1e-3, None)
        shape = np.clip(beam_energy - ec, 0, None) / ec * (1.0 - np.exp(-((ec / 0.3) ** 2)))
        shape = shape / shape.max()
    cols += [shape * eval_legendre(k, t) for k in range(order + 1)]
    return np.stack(cols, axis=1), used


def normal_equations(data, design, used, *, weighted: bool = True):
    """Gram matrix ``D^T W D`` and right-hand sides ``D^T W s`` of every pixel's weighted least squares.

    Parameters
    ----------
    data : array (..., n_channels)
        Spectra in counts.
    design : ndarray (n_used, n_components)
        Basis spectra on the channels selected by `used` (:func:`design_matrix`).
    used : bool ndarray (n_channels,)
        The fit range (a contiguous block of channels).
    weighted : bool, default True
        ``W = 1 / mean spectrum`` smoothed over at least 9 channels, more where a typical channel holds
        fewer than 500 counts in all pixels (floored at 10 % of its median), the same for every pixel;
        else ``W = 1``. Smoothing keeps the weights nearly independent of each channel's noise, so the
        estimates stay unbiased at a tenth of a count per pixel and line.

    Returns
    -------
    gram : ndarray (n_components, n_components)
    rhs : ndarray (n_components, n_pixels)
    mean : ndarray (n_used,)
        The mean spectrum over the fit range, counts per channel.
    """
    flat = data.reshape(-1, data.shape[-1])
    lo_i, hi_i = np.flatnonzero(used)[[0, -1]]
    mean = np.zeros(design.shape[0])
    for s in range(0, flat.shape[0], _CHUNK):
        mean += flat[s:s + _CHUNK, lo_i:hi_i + 1].sum(axis=0, dtype=np.float64)
    mean /= max(flat.shape[0], 1)
    w = np.ones(design.shape[0])
    if weighted:  # the mean spectrum smoothed: weights nearly uncorrelated with a channel's noise
        total = float(np.median(mean)) * flat.shape[0]  # counts in a typical channel, all pixels
        width = int(np.clip(np.ceil(_SMOOTH_COUNTS / max(total, 1e-9)), 9, max(9, mean.size // 4))) | 1
        smooth = uniform_filter1d(mean, width, mode="nearest")
        w = 1.0 / np.maximum(smooth, max(0.1 * float(np.median(smooth)), 1e-9))
    dw = (design * w[:, None]).astype(np.float32)
    rhs = np.empty((design.shape[1], flat.shape[0]))
    for s in range(0, flat.shape[0], _CHUNK):
        rhs[:, s:s + _CHUNK] = (flat[s:s + _CHUNK, lo_i:hi_i + 1].astype(np.float32) @ dw).T
    return design.T @ (design * w[:, None]), rhs, mean


def fit_maps(si, energy, lines_or_elements, *, background: str = "polynomial", order: int | None = None,
             energy_window=None, fwhm_mnka: float = 130.0, beam_energy: float = 200.0,
             weighted: bool = True) -> dict:
    """Elemental maps from a per-pixel linear fit with non-negative line amplitudes (see module notes).

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts, energy last.
    energy : array (n_channels,)
        Uniform channel energies in keV.
    lines_or_elements : sequence of str or str
        Lines (``"Pt_Ma"``) or elements (``"Pt"`` -> its lines in range, :func:`.lines.auto_lines`).
    background : {"polynomial", "kramers"}, default "polynomial"
        Legendre polynomial in E of degree `order` (default 6), or the Kramers shape
        ``(E0 - E) / E (1 - exp(-(E / 0.3 keV)^2))`` times a polynomial of degree `order` (default 3).
    order : int, optional
        Background polynomial degree.
    energy_window : (float, float), optional
        Fit range in keV; default from the lowest line - 0.4 keV (>= 0.15) to the highest + 1 keV.
    fwhm_mnka : float, default 130
        Detector resolution at Mn Ka in eV.
    beam_energy : float, default 200
        Beam energy in keV (line weights and Kramers shape).
    weighted : bool, default True
        Weight channels by ``1 / mean spectrum`` (smoothed; the Poisson variance of the average pixel,
        :func:`normal_equations`), the same weights for every pixel so that one Gram matrix serves all.

    Returns
    -------
    maps : dict of str to ndarray, shape ``si.shape[:-1]``, float64, >= 0
        Counts in each named line family per pixel.

    Raises
    ------
    ChemtomoError
        Missing energy axis, unknown element, line out of range, or lines that cannot be told apart.
    """
    data, e = _check_si(si, energy)
    lines = resolve_lines(lines_or_elements, e, beam_energy=beam_energy)
    design, used = design_matrix(e, lines, background=background, order=order, fwhm_mnka=fwhm_mnka,
                                 beam_energy=beam_energy, energy_window=energy_window)
    gram, rhs, _ = normal_equations(data, design, used, weighted=weighted)
    if np.linalg.cond(gram) > 1e12:
        raise ChemtomoError(f"lines {', '.join(lines)} cannot be told apart in this fit; drop a line or lower order")
    nonneg = np.arange(design.shape[1]) < len(lines)
    coef, _ = nnls_gram(gram, rhs, nonneg)
    return {line: coef[i].reshape(data.shape[:-1]) for i, line in enumerate(lines)}


def __getattr__(name):  # tilt-series helpers, loaded on use
    if name in ("maps_series", "write_maps", "maps_to_directory", "angles_from_names"):
        from . import series

        return getattr(series, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
