"""EELS edge maps: power-law background, edge integration, Fourier-ratio deconvolution.

For each pixel the pre-edge background ``A E^-r`` is fitted by least squares
on ``log I = log A - r log E`` over a pre-edge window (all pixels at once: the
abscissa is shared, so slope and intercept are closed-form means), extrapolated
under the edge and subtracted; the edge map is the net counts in
``[onset, onset + width]`` (Egerton, *EELS in the Electron Microscope*, 3rd ed., 4.4).

Multiple scattering (optional, with a low-loss spectrum image of the same
pixels and dispersion): the **Fourier-ratio** method (Egerton 4.2.2) applied
to the background-subtracted edge::

    J1(E) = IFFT[ FFT(J_edge) FFT(z) I0 / FFT(J_low) ]

with ``I0`` the zero-loss counts (up to the first minimum after the zero-loss
peak of the mean low-loss spectrum) and ``z`` a unit-area Gaussian with the
measured zero-loss FWHM (the reconvolution function). ``J1`` is the
single-scattering edge referred to the zero-loss counts: ``J1 = I0 S`` with
``S`` the single-scattering edge per incident electron, so the map is smaller
than an uncorrected one by about ``I0 / I_total = exp(-t / lambda)``; ``J1 / I0``
divided by a partial cross-section gives areal densities (not done here).
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError, ShapeError
from ..physics.eels import edge_onset, pre_edge_start
from .lines import split_names


def _check(si, energy, name="spectrum image"):
    data = np.asarray(si, dtype=np.float64)
    e = np.asarray(energy, dtype=np.float64) if energy is not None else None
    if e is None or e.ndim != 1 or e.size < 4 or not np.all(np.diff(e) > 0):
        raise ChemtomoError(f"the {name} has no usable energy-loss axis; give channel energies in eV, increasing")
    if data.shape[-1] != e.size:
        raise ShapeError(f"the {name} has {data.shape[-1]} channels but the energy axis {e.size}; give one energy per channel")
    return data, e


def powerlaw_background(si, energy_ev, window) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``A E^-r`` to every spectrum over `window` (eV) by log-log least squares.

    Parameters
    ----------
    si : array (..., n_channels)
        Spectra in counts per channel.
    energy_ev : array (n_channels,)
        Energy loss of each channel in eV (> 0 inside the window).
    window : (float, float)
        Pre-edge fit window in eV.

    Returns
    -------
    amplitude, exponent : ndarray, shape ``si.shape[:-1]``
        ``A`` (counts per channel at 1 eV) and ``r``.
    """
    data, e = _check(si, energy_ev)
    sel = (e >= window[0]) & (e <= window[1]) & (e > 0)
    if sel.sum() < 3:
        raise ChemtomoError(f"the pre-edge window {window[0]:g}-{window[1]:g} eV holds {sel.sum()} channels; widen it")
    x = np.log(e[sel])
    y = np.log(np.clip(data[..., sel], 0.5, None))  # empty channels count as half a count
    xm = x.mean()
    slope = ((y - y.mean(-1, keepdims=True)) @ (x - xm)) / np.sum((x - xm) ** 2)
    intercept = y.mean(-1) - slope * xm
    return np.exp(intercept), -slope


def fourier_ratio(edge, energy_ev, low_loss, low_loss_energy_ev) -> np.ndarray:
    """Single-scattering edge by Fourier-ratio deconvolution (see module notes).

    Parameters
    ----------
    edge : array (..., n)
        Background-subtracted core-loss spectra (counts per channel).
    energy_ev : array (n,)
        Their energy loss in eV.
    low_loss : array (..., m)
        Low-loss spectra of the same pixels, zero-loss peak included.
    low_loss_energy_ev : array (m,)
        Their energy loss in eV, same dispersion as `energy_ev`.

    Returns
    -------
    single : ndarray, shape of `edge`
    """
    core, e = _check(edge, energy_ev, "core-loss spectrum image")
    low, el = _check(low_loss, low_loss_energy_ev, "low-loss spectrum image")
    de = e[1] - e[0]
    if core.shape[:-1] != low.shape[:-1] or abs((el[1] - el[0]) - de) > 1e-3 * de:
        raise ShapeError(
            f"low-loss {low.shape} at {el[1] - el[0]:g} eV/channel does not match core-loss {core.shape} at {de:g}; "
            "give both for the same pixels and dispersion"
        )
    mean = low.reshape(-1, el.size).mean(0)
    peak = int(np.argmax(mean))
    rises = np.flatnonzero(np.diff(mean[peak:]) > 0)
    stop = peak + (int(rises[0]) + 1 if rises.size else el.size - peak)
    i0 = low[..., :stop].sum(-1)
    above = np.flatnonzero(mean >= mean[peak] / 2)
    fw = max((above[-1] - above[0] + 1) * de, de)
    n = 1 << int(np.ceil(np.log2(2 * (e.size + el.size))))
    shift = np.round(el / de).astype(int) % n  # zero loss at index 0
    jl = np.zeros(low.shape[:-1] + (n,))
    jl[..., shift] = low
    pad = n - e.size
    taper = 0.5 * (1 + np.cos(np.pi * np.arange(pad) / pad))
    jk = np.concatenate([core, core[..., -1:] * taper], axis=-1)
    k = np.fft.rfftfreq(n, d=de)
    z = np.exp(-2 * (np.pi * k * fw / (2 * np.sqrt(2 * np.log(2)))) ** 2)  # FFT of a unit-area Gaussian
    fl = np.fft.rfft(jl, axis=-1)
    fl = np.where(np.abs(fl) > 1e-12 * np.abs(fl[..., :1]), fl, 1e-12 * np.abs(fl[..., :1]))
    out = np.fft.irfft(np.fft.rfft(jk, axis=-1) * z / fl, n=n, axis=-1) * i0[..., None]
    return out[..., : e.size]


#: An edge's tail (model shape, ``(E / E_peak)^-3``) above this fraction of its jump at another edge's pre-edge
#: window means the two overlap for the window method (:func:`overlapping_edges`).
OVERLAP_TAIL = 0.1


def overlapping_edges(edges, *, width: float = 50.0, pre_edge=None) -> list[tuple[str, str, float]]:
    """Pairs ``(lower, upper, tail)`` where `upper`'s pre-edge window sits on `lower`'s edge or tail.

    ``tail`` is the lower edge's model shape (:func:`chemtomo.physics.eels.edge_shape`: its jump, then
    ``(E / E_peak)^-3``) at the start of the upper edge's pre-edge window; pairs with ``tail`` above
    :data:`OVERLAP_TAIL`, or whose window starts below the lower edge's ``onset + width``, are returned.
    There the power law fitted before the upper edge is a sum of the background and the lower edge's
    tail, and its extrapolation under the upper edge is not reliable.
    """
    from ..physics.eels import EDGE_DELAY

    items = sorted(split_names(edges), key=edge_onset)
    out = []
    for i, upper in enumerate(items):
        on_u = edge_onset(upper)
        start = (pre_edge or {}).get(upper, (pre_edge_start(on_u), 0.0))[0]
        for lower in items[:i]:
            on_l = edge_onset(lower)
            if on_l >= on_u:
                continue
            peak = on_l + EDGE_DELAY[lower.partition("_")[2]]
            tail = 1.0 if start <= peak else float((start / peak) ** -3.0)
            if tail > OVERLAP_TAIL or start < on_l + width:
                out.append((lower, upper, tail))
    return out


def eels_maps(si, energy_ev, edges, *, width: float = 50.0, pre_edge=None, low_loss=None,
              low_loss_energy_ev=None, check: bool = True) -> dict:
    """Background-subtracted edge maps from an EELS spectrum image (the window method).

    Trust it for one edge, or edges far apart (:func:`overlapping_edges` empty), at high counts: the
    log-log fit of the pre-edge window is biased where its channels hold few counts (totals off by
    -0.04 x to -18 x the truth at 37 and 3.7 edge counts per pixel, ``docs/benchmarks.md``), and
    an edge on another's tail is extrapolated with the wrong background. :func:`.maps.fit_maps` fits
    all edges with the background and is the default of ``chemtomo maps``.

    Parameters
    ----------
    si : array (..., n_channels)
        Core-loss spectrum image in counts, energy last.
    energy_ev : array (n_channels,)
        Energy loss per channel in eV.
    edges : sequence of str
        Edges such as ``"O_K"``, ``"Fe_L23"`` (onsets from xraylib, :func:`chemtomo.physics.eels.edge_onset`).
    width : float, default 50
        Integration window ``[onset, onset + width]`` in eV.
    pre_edge : dict of str to (float, float), optional
        Fit window per edge in eV; default ``[onset - max(20, 0.12 onset), onset - max(3, 0.01 onset)]``.
    low_loss, low_loss_energy_ev : array, optional
        Low-loss spectrum image and its energies (eV) for Fourier-ratio deconvolution of each edge.
    check : bool, default True
        Refuse edges whose windows overlap (:func:`overlapping_edges`); False integrates them anyway.

    Returns
    -------
    maps : dict of str to ndarray, shape ``si.shape[:-1]``
        Net edge counts per pixel (single-scattering counts if a low-loss image is given).
    """
    data, e = _check(si, energy_ev)
    edges = split_names(edges)
    clash = overlapping_edges(edges, width=width, pre_edge=pre_edge) if check else []
    if clash:
        lower, upper, tail = clash[0]
        raise ChemtomoError(
            f"{upper}'s pre-edge window sits on the tail of {lower} (still {100 * tail:.0f} % of its jump there): "
            f"the window method cannot separate them; use method 'fit' (--method fit, the default), 'regularised' "
            "or 'learned', or check=False to integrate anyway")
    out = {}
    for edge in edges:
        onset = edge_onset(edge)
        win = (pre_edge or {}).get(edge, (pre_edge_start(onset), onset - max(3.0, 0.01 * onset)))
        if win[0] < e[0] or onset + width > e[-1] + (e[1] - e[0]):
            raise ChemtomoError(
                f"{edge} at {onset:.0f} eV needs {win[0]:.0f}-{onset + width:.0f} eV but the spectrum covers "
                f"{e[0]:.0f}-{e[-1]:.0f} eV; map only the edges inside the range (--elements), record a "
                f"wider energy range, or (Python) give a smaller width= or another pre_edge= window"
            )
        amp, r = powerlaw_background(data, e, win)
        bg = amp[..., None] * np.clip(e, 1e-3, None) ** -r[..., None]
        net = np.where(e >= win[0], data - bg, 0.0)
        if low_loss is not None:
            net = np.where(e >= onset, net, 0.0)
            net = fourier_ratio(net, e, low_loss, low_loss_energy_ev)
        sel = (e >= onset) & (e < onset + width)
        out[edge] = net[..., sel].sum(-1)
    return out
