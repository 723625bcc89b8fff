"""Unbiased whole-spectrum estimates of line (or edge) counts and whole-image detection statistics.

Every pixel's spectrum ``s`` is fitted by weighted least squares with the linear
model (EDX: :func:`.model.design_matrix`, line families + a Legendre background;
EELS: :func:`.eels_model.eels_design_matrix`, model edges + a power-law-like
background), the same weights ``W = 1 / mean spectrum`` for all pixels and *no*
non-negativity::

    a_hat = G^-1 D^T W s,     G = D^T W D

``a_hat`` is unbiased at any dose, uses every channel of the fit range (not a
window), separates overlapping lines by their shapes, and its noise covariance
for the mean pixel is ``G^-1``: standard deviation ``sigma_k`` (counts) and
correlation ``rho_kj`` between lines (:func:`line_estimates`). Summed over the
image, the estimates give each line's whole-image significance
(:func:`significance`, :func:`detection`); below :data:`DETECTION_Z` a line is
not detected and any map of it says little.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.counts import resolve_read_noise
from .eels_model import edge_detection, eels_design_matrix, is_eels
from .lines import resolve_lines, split_names
from .model import check_spectrum_image, design_matrix, normal_equations

#: Whole-image significance below which a line or edge counts as not detected in a spectrum image
#: (Currie's detection limit is about 3 standard deviations of the net counts).
DETECTION_Z = 3.0
_TINY = 1e-12


def line_estimates(si, energy, lines, *, fwhm_mnka: float = 130.0, beam_energy: float = 200.0,
                   width: float = 50.0, energy_window=None, counts: bool = True, delays=None,
                   read_noise=0.0) -> dict:
    """Unbiased whole-spectrum estimates of every line's (or edge's) counts per pixel and their noise (module notes).

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts, energy last.
    energy : array (n_channels,)
        Channel energies: keV for EDX, eV for EELS.
    lines : sequence of str or str
        X-ray lines or elements (EDX, :func:`.lines.resolve_lines`) or EELS edges (all named ``El_K``,
        ``El_L23``, ``El_M45``, ...).
    fwhm_mnka, beam_energy : float
        EDX detector resolution at Mn Ka (eV) and beam energy (keV).
    width : float, default 50
        EELS: edge counts are those in ``[onset, onset + width)`` eV.
    energy_window : (float, float), optional
        Fit range (keV for EDX, eV for EELS).
    counts : bool, default True
        `si` holds raw counts: refuse negative values. False for denoised spectra (e.g. after PCA).
    delays : dict of str to float, optional
        EELS: delayed maximum per edge in eV (e.g. ``edge_detection(...)["delays"]``); default the model's.
    read_noise : float or "auto", default 0
        Gaussian read-out noise standard deviation per channel in electrons (CCD spectra: negative readings
        are then accepted): weights ``1 / (mean + read_noise^2)`` (:func:`.model.normal_equations`);
        ``"auto"`` estimates it (:func:`chemtomo.physics.counts.estimate_read_noise`).

    Returns
    -------
    dict
        ``estimate`` ``(n_lines,) + si.shape[:-1]`` (counts, may be negative), ``sigma`` ``(n_lines,)``
        (counts, for the mean pixel), ``correlation`` ``(n_lines, n_lines)``, ``total`` ``si.shape[:-1]``
        (counts in the fit range), ``lines`` and ``kind`` (``"edx"`` or ``"eels"``).
    """
    s = resolve_read_noise(read_noise, si)
    data, e = check_spectrum_image(si, energy, finite=True, nonnegative=counts and s == 0)
    if is_eels(lines):
        kind = "eels"
        lines = split_names(lines)
        design, used = eels_design_matrix(e, lines, width=width, energy_window=energy_window, delays=delays)
    else:
        kind = "edx"
        lines = resolve_lines(lines, e, beam_energy=beam_energy)
        design, used = design_matrix(e, lines, fwhm_mnka=fwhm_mnka, beam_energy=beam_energy,
                                     energy_window=energy_window)
    gram, rhs, _ = normal_equations(data, design, used, read_noise=s)
    if np.linalg.cond(gram) > 1e12:
        raise ChemtomoError(f"lines {', '.join(lines)} cannot be told apart in this fit; drop a line or narrow the range")
    inv = np.linalg.inv(gram)
    k = len(lines)
    coef = (inv @ rhs)[:k]
    cov = inv[:k, :k]
    sigma = np.sqrt(np.clip(np.diag(cov), _TINY, None))
    total = data[..., used].sum(axis=-1, dtype=np.float64)
    return {"estimate": coef.reshape((k,) + data.shape[:-1]), "sigma": sigma,
            "correlation": cov / np.outer(sigma, sigma), "total": total, "lines": lines, "kind": kind}


def significance(estimate, sigma) -> np.ndarray:
    """Whole-image significance ``z_k = sum_p a_hat_kp / (sigma_k sqrt(P))`` of each line (its total over its noise).

    The estimates' weights are those of the mean pixel, so the total's standard deviation is exactly
    ``sigma_k sqrt(P)``: ``z`` below about 3 (:data:`DETECTION_Z`) means the line is not
    detected in the image.
    """
    a = np.asarray(estimate, dtype=np.float64).reshape(len(sigma), -1)
    return a.sum(axis=1) / (np.maximum(np.asarray(sigma, dtype=np.float64), _TINY) * np.sqrt(a.shape[1]))


def detection(si, energy, lines, **options) -> dict:
    """Whole-image significance of each line or edge in one spectrum image: its net counts over their noise.

    X-ray lines: the unbiased whole-spectrum estimates of :func:`line_estimates` summed over all
    pixels, over their standard deviation (:func:`significance`). EELS edges:
    :func:`.eels_model.edge_detection`, whose edge delays are fitted to the summed spectrum (with the
    model's delays, a present O K edge above Ti L2,3 read -13 at 1000 edge counts). Below
    :data:`DETECTION_Z` the line is not detected, and any map of it says little. `options` with the
    names of :func:`line_estimates` (``fwhm_mnka``, ``beam_energy``, ``width``,
    ``energy_window``, ``read_noise``) are used, others ignored. Returns ``{}`` when the lines cannot be fitted jointly
    (e.g. two that the model cannot tell apart).
    """
    keys = ("fwhm_mnka", "beam_energy", "width", "energy_window", "read_noise")
    kw = {k: v for k, v in options.items() if k in keys}
    try:
        if is_eels(lines):
            z = edge_detection(si, energy, lines,
                               **{k: v for k, v in kw.items() if k in ("width", "energy_window", "read_noise")})
            return dict(zip(lines, z["significance"].tolist()))
        est = line_estimates(si, energy, lines, **kw)
    except (ChemtomoError, np.linalg.LinAlgError):
        return {}
    return dict(zip(lines, significance(est["estimate"], est["sigma"]).tolist()))
