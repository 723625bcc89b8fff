"""Energy calibration of EDX spectra, checked against the known X-ray lines of the elements mapped.

A spectrum image whose energy axis is off (a wrong zero offset in the file) puts every line a
fixed distance from where the map methods integrate or fit it, and the maps lose counts without a
word. :func:`energy_offset` measures that distance on the summed spectrum: the background-removed
sum is correlated with a model of the expected peaks (every transition of the lines' shells at
its xraylib energy and weight, Gaussian with the detector's FWHM), over shifts of up to
``search`` keV; the best shift, refined by a parabola, is the offset of the file's axis.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from ..core.errors import ChemtomoError
from ..core.search import grid_minimum
from ..physics.xray import fwhm
from .lines import line_components

#: an offset is reported when it exceeds this (keV) and half a channel
TOLERANCE = 0.01
#: the correlation peak must stand this many of its own noise standard deviations above zero
MIN_SIGNIFICANCE = 5.0


def energy_offset(spectrum, energy, lines, *, fwhm_mnka: float = 130.0, beam_energy: float = 200.0,
                  search: float = 0.1) -> dict:
    """How far (keV) the known lines sit from their energies on `energy`.

    Parameters
    ----------
    spectrum : array (..., n_channels)
        Counts; all leading axes are summed (a spectrum image gives its sum spectrum).
    energy : array (n_channels,)
        The file's channel energies in keV.
    lines : sequence of str
        X-ray lines expected in the spectrum (``"Fe_Ka"``); every transition of their shells counts.
    fwhm_mnka, beam_energy : float
        Detector FWHM at Mn Ka (eV) and beam energy (keV).
    search : float, default 0.1
        Largest offset tried, keV.

    Returns
    -------
    dict
        ``offset`` (keV: the lines sit at their energy + offset on this axis; correct the axis by
        subtracting it), ``significance`` (the correlation at the offset over its noise),
        ``reliable`` (``significance >= MIN_SIGNIFICANCE``) and ``off`` (reliable and
        ``|offset|`` above :data:`TOLERANCE` and half a channel).

    Examples
    --------
    >>> from chemtomo.physics.xray import energy_axis
    >>> e = energy_axis(1024, 0.01)
    >>> peak = 1000 * np.exp(-0.5 * ((e - 6.404 - 0.03) / 0.055) ** 2)  # Fe Ka 30 eV high
    >>> abs(energy_offset(peak + 5, e, ["Fe_Ka"])["offset"] - 0.03) < 0.01  # Fe Ka1/Ka2 weighted: 6.40 keV
    True
    """
    e = np.asarray(energy, dtype=np.float64)
    s = np.asarray(spectrum, dtype=np.float64).reshape(-1, e.size).sum(axis=0)
    if e.size < 8:
        raise ChemtomoError(f"an energy calibration check needs a spectrum, got {e.size} channels")
    step = float(e[1] - e[0])
    sigma0 = fwhm(6.0, fwhm_mnka) / 2354.8  # keV at Mn Ka, for the background's scale
    width = max(5, int(round(8 * sigma0 / step)) | 1)
    net = s - median_filter(s, size=width, mode="nearest")  # peaks without the slowly varying background
    shifts = np.arange(-search, search + step / 8, step / 4)
    comps = [line_components(line, beam_energy) for line in lines]
    centres = np.concatenate([c[0] for c in comps])
    weights = np.concatenate([c[1] for c in comps])
    keep = (centres > e[0] + 3 * sigma0) & (centres < e[-1] - 3 * sigma0)
    if not keep.any():
        raise ChemtomoError(f"none of the lines {', '.join(lines)} lies inside the spectrum's range "
                            f"{e[0]:.2f}-{e[-1]:.2f} keV; the calibration cannot be checked")
    centres, weights = centres[keep], weights[keep]
    sig = fwhm(centres, fwhm_mnka) / 2354.8

    def model(shift):
        return (weights[:, None] * np.exp(-0.5 * ((e[None, :] - centres[:, None] - shift) / sig[:, None]) ** 2)).sum(0)

    models = np.stack([model(d) for d in shifts])
    score = models @ net
    noise = np.sqrt(np.maximum((models**2) @ np.maximum(s, 1.0), 1e-30))  # Poisson noise of each correlation
    z = score / noise
    i = int(np.argmax(z))
    offset = grid_minimum(shifts, -z)
    reliable = bool(z[i] >= MIN_SIGNIFICANCE)
    return {"offset": float(offset), "significance": float(z[i]), "reliable": reliable,
            "off": bool(reliable and abs(offset) > max(TOLERANCE, 0.5 * step))}
