"""The linear model of EDX spectra shared by every map method: checked input, basis spectra, normal equations.

Every pixel's spectrum ``S(E)`` over a fit range (:func:`fit_range`) is modelled as::

    S(E) = sum_l a_l sum_i w_li G(E; E_li, FWHM(E_li)) + sum_j c_j B_j(E)

(:func:`design_matrix`): ``G`` a channel-integrated unit Gaussian with the detector
law ``FWHM(E)^2 = FWHM_MnKa^2 + 2.5 (E - 5.899 keV) 1000`` (eV,
:func:`chemtomo.physics.xray.fwhm`), the components ``E_li, w_li`` of a line family
every transition of its shell from xraylib (:func:`.lines.line_components`),
weighted so that ``a_l`` is the counts in the named family, and ``B_j`` Legendre
polynomials (optionally times the Kramers shape). :func:`normal_equations` forms
the weighted least-squares Gram matrix and right-hand sides of all pixels at once,
with the same weights for every pixel. :func:`.maps.fit_maps` solves them with
non-negative line amplitudes, :func:`.estimates.line_estimates` without, and
:func:`.regularised.regularised_maps` uses the design matrix in a Poisson fit.
The EELS counterpart is :mod:`.eels_model`.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.special import erf, eval_legendre

from ..core.errors import ChemtomoError, DataError, ShapeError
from ..physics.xray import fwhm
from .lines import energy_range, line_components, line_energy

_CHUNK = 8192  # pixels per block when forming D^T S
_SMOOTH_COUNTS = 500.0  # counts (all pixels) the smoothed mean spectrum holds per channel, at least


def check_spectrum_image(si, energy, *, finite: bool = False, nonnegative: bool = False):
    """`si` and `energy` as arrays ``(data, energy)``, checked: energy last, one channel per value, uniform axis.

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image, energy last.
    energy : array (n_channels,)
        Uniform channel energies (keV for EDX, eV for EELS).
    finite : bool, default False
        Also refuse NaN or infinite values.
    nonnegative : bool, default False
        Also refuse negative values (raw counts; implies `finite`).

    Returns
    -------
    data : ndarray
        `si` as an array (not copied).
    energy : ndarray of float64

    Raises
    ------
    ShapeError
        If the last axis of `si` does not match `energy`.
    ChemtomoError
        If the energy axis is missing or not uniform.
    DataError
        If `finite` or `nonnegative` and the values are not.
    """
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
    if (finite or nonnegative) and np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise DataError("the spectrum image contains NaN or infinite values; mask or fill them first")
    if nonnegative and data.size and data.min() < 0:
        raise DataError(f"the spectrum image has negative counts (minimum {data.min():g}); give raw counts (no background "
                        "subtraction), or for a CCD's read-out noise its standard deviation (read_noise, --read-noise "
                        "SIGMA or auto)")
    return data, e


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


def normal_equations(data, design, used, *, weighted: bool = True, read_noise: float = 0.0):
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
    read_noise : float, default 0
        Gaussian read-out noise standard deviation ``s`` (electrons) of every channel: the weights become
        ``1 / (mean + s^2)`` (:func:`chemtomo.physics.counts.read_noise_variance`).

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
        w = 1.0 / (np.maximum(smooth, max(0.1 * float(np.median(smooth)), 1e-9)) + float(read_noise) ** 2)
    dw = (design * w[:, None]).astype(np.float32)
    rhs = np.empty((design.shape[1], flat.shape[0]))
    for s in range(0, flat.shape[0], _CHUNK):
        rhs[:, s:s + _CHUNK] = (flat[s:s + _CHUNK, lo_i:hi_i + 1].astype(np.float32) @ dw).T
    return design.T @ (design * w[:, None]), rhs, mean
