"""Filtered back projection for single-axis parallel-beam tilt series."""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ChemtomoError
from ..core.operators import like_input
from ._common import check_bounds, prepare_data, prepare_mask, project_feasible

FILTERS = ("ramp", "shepp-logan", "hann")


def angular_weights(angles) -> np.ndarray:
    """Angular interval each projection stands for, in radians.

    Angles are taken modulo 180 degrees (a projection at theta + 180 is the
    mirror of the one at theta). Each projection gets half the distance to
    its lower plus half the distance to its upper neighbour, neighbours
    wrapping around the half circle. If the widest gap is more than 1.5 times
    any other (a limited tilt range: the missing wedge), the two projections
    at its edges count their outer side as wide as their inner one instead.

    Examples
    --------
    >>> np.rad2deg(angular_weights([-60, -30, 0, 30, 60])).round(6).tolist()
    [30.0, 30.0, 30.0, 30.0, 30.0]
    >>> np.rad2deg(angular_weights([0, 45, 90, 135])).round(6).tolist()
    [45.0, 45.0, 45.0, 45.0]
    >>> np.rad2deg(angular_weights([0, 10, 20, 40])).round(6).tolist()
    [10.0, 10.0, 15.0, 20.0]
    """
    a = np.mod(np.asarray(angles, dtype=np.float64), 180.0)
    n = a.size
    if n == 1:
        return np.array([np.pi])
    order = np.argsort(a, kind="stable")
    s = a[order]
    gaps = np.append(np.diff(s), 180.0 - (s[-1] - s[0]))  # gaps[i]: from s[i] to the next, circularly
    widest = int(np.argmax(gaps))
    others = np.delete(gaps, widest)
    upper, lower = gaps.copy(), np.roll(gaps, 1)
    if gaps[widest] > 1.5 * max(others.max(), 1e-12):  # a missing wedge between s[widest] and the next
        nxt = (widest + 1) % n
        upper[widest] = lower[widest]
        lower[nxt] = upper[nxt]
    w = np.empty(n)
    w[order] = 0.5 * (lower + upper)
    return np.deg2rad(w)


def _filter_response(n_pad: int, name: str, device) -> torch.Tensor:
    """Real frequency response (rfft layout) of the discrete ramp times the window."""
    k = np.arange(n_pad)
    k = np.where(k <= n_pad // 2, k, k - n_pad)
    h = np.zeros(n_pad)
    h[0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    resp = np.real(np.fft.rfft(h))  # ~ |f| in cycles per pixel, no DC bias (Kak & Slaney)
    f = np.fft.rfftfreq(n_pad)
    if name == "shepp-logan":
        resp = resp * np.sinc(f)
    elif name == "hann":
        resp = resp * 0.5 * (1.0 + np.cos(2.0 * np.pi * f))
    return torch.as_tensor(resp, dtype=torch.float32, device=device)


def fbp(op, data, *, filter: str = "ramp", bounds=(None, None), mask=None):
    """Reconstruct a volume by filtered back projection.

    Parameters
    ----------
    op : Projector
        Projector from ``v[y, z, x]`` to ``p[a, y, u]``; its ``geometry`` gives the angles.
    data : array, shape op.range_shape
        Tilt series as line integrals in voxel lengths; never modified.
    filter : {"ramp", "shepp-logan", "hann"}, default "ramp"
        Ramp filter alone, or apodised by a sinc (Shepp-Logan) or a Hann window.
    bounds : (float | None, float | None), default (None, None)
        Box applied to the result; None leaves that side open.
    mask : bool array, shape op.domain_shape, optional
        Voxels allowed to be non-zero.

    Returns
    -------
    volume : array, shape op.domain_shape, float32, same type and device as `data`.

    Raises
    ------
    ChemtomoError
        If `data` has the wrong shape or non-finite values, `op` has no
        tilt geometry or `filter` is unknown.

    Notes
    -----
    Each projection is zero-padded along u to a power of two of at least
    ``2 nu``, filtered in Fourier space with the discrete ramp
    (spatial kernel ``h[0] = 1/4``, ``h[k] = -1 / (pi k)^2`` for odd k, whose
    response is about ``|f|``, f in cycles per pixel) times the window, and
    weighted by its angular interval ``dtheta_a`` in radians
    (:func:`angular_weights`). Then

        v = A^T (dtheta * (h * p))

    which approximates ``v(x, z) = int_0^pi (h * p_theta)(x cos theta + z sin theta) dtheta``,
    so a uniform object reconstructs to its value. Limited tilt ranges leave
    the usual missing-wedge artefacts.

    References
    ----------
    A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*,
    IEEE Press, 1988, ch. 3.

    Examples
    --------
    >>> from chemtomo.core.geometry import TiltGeometry
    >>> from chemtomo.core.projector import Projector
    >>> A = Projector(TiltGeometry(np.arange(0, 180, 4), (1, 32, 32)))
    >>> v = np.zeros((1, 32, 32), np.float32); v[:, 12:20, 12:20] = 1
    >>> rec = fbp(A, A(v))
    >>> bool(abs(rec[0, 14:18, 14:18].mean() - 1) < 0.05)
    True
    """
    b = prepare_data(op, data)
    geometry = getattr(op, "geometry", None)
    if geometry is None or not hasattr(geometry, "angles"):
        raise ChemtomoError(f"fbp needs a Projector with a tilt geometry, got {type(op).__name__}")
    if filter not in FILTERS:
        raise ChemtomoError(f"unknown filter {filter!r}; choose one of {', '.join(FILTERS)}")
    bounds = check_bounds(bounds)
    m = prepare_mask(mask, op.domain_shape, b.device)

    nu = b.shape[-1]
    n_pad = 1 << int(np.ceil(np.log2(max(2 * nu, 2))))
    resp = _filter_response(n_pad, filter, b.device)
    filtered = torch.fft.irfft(torch.fft.rfft(b, n=n_pad, dim=-1) * resp, n=n_pad, dim=-1)[..., :nu]
    w = torch.as_tensor(angular_weights(geometry.angles), dtype=torch.float32, device=b.device)
    filtered = filtered * w[:, None, None]
    x = op.T._apply(filtered.contiguous())
    return like_input(project_feasible(x, bounds, m), data)
