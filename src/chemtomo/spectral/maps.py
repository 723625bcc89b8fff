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

(:mod:`.model`) with non-negative line amplitudes ``a_l`` (batched NNLS, :mod:`._nnls`) and
free background coefficients ``c_j``. ``G`` is a channel-integrated unit
Gaussian with the detector law ``FWHM(E)^2 = FWHM_MnKa^2 + 2.5 (E - 5.899 keV) 1000``
(eV, :func:`chemtomo.physics.xray.fwhm`); the components ``E_li, w_li``
of a line family are every transition of its shell from xraylib
(:func:`.lines.line_components`), weighted so that ``a_l`` is the counts in the
named family (``Fe_Ka`` = KL3 + KL2). Overlapping lines (Pt Ma / Au Ma,
S Ka / Mo La) are separated by their shapes and satellite lines.

Quantification (:func:`.quant.cliff_lorimer`, :func:`.quant.zeta_factor`) lives in
:mod:`.quant`, low-rank denoising (:func:`.decompose.denoise_pca`) in :mod:`.decompose`,
tilt series of maps (:func:`.series.maps_series`) in :mod:`.series`.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.xray import fwhm
from ._nnls import nnls_gram
from .lines import energy_range, line_energy, resolve_lines
from .model import check_spectrum_image, design_matrix, normal_equations


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
    data, e = check_spectrum_image(si, energy)
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
        :func:`.model.normal_equations`), the same weights for every pixel so that one Gram matrix serves all.

    Returns
    -------
    maps : dict of str to ndarray, shape ``si.shape[:-1]``, float64, >= 0
        Counts in each named line family per pixel.

    Raises
    ------
    ChemtomoError
        Missing energy axis, unknown element, line out of range, or lines that cannot be told apart.
    """
    data, e = check_spectrum_image(si, energy)
    lines = resolve_lines(lines_or_elements, e, beam_energy=beam_energy)
    design, used = design_matrix(e, lines, background=background, order=order, fwhm_mnka=fwhm_mnka,
                                 beam_energy=beam_energy, energy_window=energy_window)
    gram, rhs, _ = normal_equations(data, design, used, weighted=weighted)
    if np.linalg.cond(gram) > 1e12:
        raise ChemtomoError(f"lines {', '.join(lines)} cannot be told apart in this fit; drop a line or lower order")
    nonneg = np.arange(design.shape[1]) < len(lines)
    coef, _ = nnls_gram(gram, rhs, nonneg)
    return {line: coef[i].reshape(data.shape[:-1]) for i, line in enumerate(lines)}
