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
from ..physics.counts import resolve_read_noise
from ..physics.xray import fwhm
from ._nnls import nnls_gram
from .eels_model import edge_detection, eels_design_matrix, is_eels
from .estimates import DETECTION_Z
from .lines import energy_range, line_energy, resolve_lines, split_names
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
             weighted: bool = True, width: float = 50.0, read_noise=0.0,
             min_significance: float | None = DETECTION_Z) -> dict:
    """Elemental (EDX line or EELS edge) maps from a per-pixel linear fit with non-negative amplitudes (module notes).

    EELS edges (``"Ti_L23,Fe_L23"``, energies in eV) are fitted with the model edges on an
    ``E^-3 P(log E)`` background (:func:`.eels_model.eels_design_matrix`), the edge delays fitted to the
    image's summed spectrum (:func:`.eels_model.edge_detection`): every edge's tail under the edges above
    it is part of the model, so edges on one another's tails keep their counts (the window method's
    power-law extrapolation does not).

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts (electrons), energy last.
    energy : array (n_channels,)
        Uniform channel energies in keV (EDX) or eV (EELS).
    lines_or_elements : sequence of str or str
        Lines (``"Pt_Ma"``) or elements (``"Pt"`` -> its lines in range, :func:`.lines.auto_lines`), or
        EELS edges (``"O_K,Fe_L23"``).
    background : {"polynomial", "kramers"}, default "polynomial"
        EDX: Legendre polynomial in E of degree `order` (default 6), or the Kramers shape
        ``(E0 - E) / E (1 - exp(-(E / 0.3 keV)^2))`` times a polynomial of degree `order` (default 3).
    order : int, optional
        Background polynomial degree (EELS: default 3, in ``log E``).
    energy_window : (float, float), optional
        Fit range; EDX default from the lowest line - 0.4 keV (>= 0.15) to the highest + 1 keV, EELS that
        of :func:`.eels_model.eels_design_matrix`.
    fwhm_mnka : float, default 130
        EDX detector resolution at Mn Ka in eV.
    beam_energy : float, default 200
        Beam energy in keV (EDX line weights and Kramers shape).
    weighted : bool, default True
        Weight channels by ``1 / (mean spectrum + read_noise^2)`` (smoothed; the variance of the average
        pixel, :func:`.model.normal_equations`), the same weights for every pixel so that one Gram matrix serves all.
    width : float, default 50
        EELS: each map is the edge's counts in ``[onset, onset + width)`` eV.
    read_noise : float or "auto", default 0
        Gaussian read-out noise standard deviation per channel in electrons (CCD spectra; negative readings
        are then accepted); ``"auto"`` estimates it (:func:`chemtomo.physics.counts.estimate_read_noise`).
    min_significance : float or None, default :data:`.estimates.DETECTION_Z` (3)
        EELS: edges whose whole-image significance (:func:`.eels_model.edge_detection`) is below this get
        an empty map (as :func:`.learned.learned_maps`); None keeps every fitted map.

    Returns
    -------
    maps : dict of str to ndarray, shape ``si.shape[:-1]``, float64, >= 0
        Counts in each named line family (EDX) or edge window (EELS) per pixel.

    Raises
    ------
    ChemtomoError
        Missing energy axis, unknown element, line out of range, or lines that cannot be told apart.
    """
    noise = resolve_read_noise(read_noise, si)
    data, e = check_spectrum_image(si, energy, finite=noise > 0)
    det = None
    if is_eels(lines_or_elements):
        lines = split_names(lines_or_elements)
        det = edge_detection(data, e, lines, width=width, energy_window=energy_window, read_noise=noise)
        design, used = eels_design_matrix(e, lines, width=width, order=3 if order is None else order,
                                          delays=det["delays"], energy_window=energy_window)
    else:
        lines = resolve_lines(lines_or_elements, e, beam_energy=beam_energy)
        design, used = design_matrix(e, lines, background=background, order=order, fwhm_mnka=fwhm_mnka,
                                     beam_energy=beam_energy, energy_window=energy_window)
    gram, rhs, _ = normal_equations(data, design, used, weighted=weighted, read_noise=noise)
    if np.linalg.cond(gram) > 1e12:
        raise ChemtomoError(f"lines {', '.join(lines)} cannot be told apart in this fit; drop a line or lower order")
    nonneg = np.arange(design.shape[1]) < len(lines)
    coef, _ = nnls_gram(gram, rhs, nonneg)
    maps = {line: coef[i].reshape(data.shape[:-1]) for i, line in enumerate(lines)}
    if det is not None and min_significance is not None:
        for i, line in enumerate(lines):
            if det["significance"][i] < min_significance:
                maps[line] = np.zeros(data.shape[:-1])
    return maps
