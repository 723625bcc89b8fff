"""Acquisition effects: continuous tilting, drift, beam damage, dose accounting.

Conventions: angles in degrees, listed in acquisition order; shifts in
detector pixels ``(dy, du)``; dose in e-/A^2; time in s; beam current in pA;
pixel size in nm.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..core.geometry import TiltGeometry
from ..core.projector import Projector
from ..physics.counts import as_rng

#: elementary charge in C
_E_CHARGE = 1.602176634e-19


class SweptProjector:
    """Projector for continuous (fast) tilting: each image averages a swept angular range.

    The exposure of tilt ``a`` covers ``angles[a] - sweep/2 .. angles[a] + sweep/2``;
    the image is the mean of `n_sub` projections at evenly spaced sub-angles
    (midpoints of `n_sub` equal sub-intervals). Callable like a
    :class:`~chemtomo.core.projector.Projector`: ``v[y, z, x] -> p[a, y, u]``.

    Parameters
    ----------
    geometry : TiltGeometry
        Nominal (mid-exposure) angles in degrees.
    sweep : float
        Angular range swept during one exposure, in degrees, >= 0.
    n_sub : int, default 5
        Sub-angles per exposure.
    """

    def __init__(self, geometry: TiltGeometry, sweep: float, n_sub: int = 5):
        if not (np.isfinite(sweep) and sweep >= 0):
            raise ChemtomoError(f"sweep must be an angular range >= 0 in degrees, got {sweep}")
        if int(n_sub) < 1:
            raise ChemtomoError(f"n_sub must be a positive number of sub-angles, got {n_sub}")
        self.geometry, self.sweep, self.n_sub = geometry, float(sweep), int(n_sub)
        offsets = (np.arange(self.n_sub) + 0.5) / self.n_sub * self.sweep - self.sweep / 2
        sub = (geometry.angles[:, None] + offsets[None, :]).ravel()
        self._inner = Projector(TiltGeometry(sub, geometry.volume_shape, geometry.n_u, geometry.axis_offset))
        self.domain_shape, self.range_shape = geometry.volume_shape, geometry.projection_shape

    def __call__(self, volume):
        p = np.asarray(self._inner(np.asarray(volume, dtype=np.float32)))
        n_t, ny, nu = self.range_shape
        return p.reshape(n_t, self.n_sub, ny, nu).mean(axis=1)


def as_projector(geometry_or_projector):
    """A :class:`Projector` for a :class:`TiltGeometry`; projectors pass through."""
    if isinstance(geometry_or_projector, TiltGeometry):
        return Projector(geometry_or_projector)
    if callable(geometry_or_projector) and hasattr(geometry_or_projector, "geometry"):
        return geometry_or_projector
    raise ChemtomoError(
        f"expected a TiltGeometry or a projector with a .geometry, got {type(geometry_or_projector).__name__}"
    )


def project(projector, volume) -> np.ndarray:
    """Apply `projector` to a NumPy volume and return a float64 NumPy stack."""
    return np.asarray(projector(np.ascontiguousarray(volume, dtype=np.float32)), dtype=np.float64)


def random_shifts(n_tilts: int, sigma: float, *, walk: bool = False, rng=None) -> np.ndarray:
    """Random per-tilt image shifts (drift and tilt-axis jitter), in pixels.

    Parameters
    ----------
    n_tilts : int
        Number of tilts.
    sigma : float
        Standard deviation of each shift component in pixels (per step if `walk`).
    walk : bool, default False
        If True the shifts are a random walk (accumulating drift), else independent.
    rng : None, int or numpy.random.Generator

    Returns
    -------
    shifts : ndarray, shape (n_tilts, 2)
        ``(dy, du)`` in pixels; the content of image ``a`` moves by ``shifts[a]``.
    """
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ChemtomoError(f"sigma must be a shift spread >= 0 in pixels, got {sigma}")
    s = as_rng(rng).normal(0.0, sigma, size=(int(n_tilts), 2))
    return np.cumsum(s, axis=0) if walk else s


def damage_factors(dose_per_tilt, critical_dose: float | None) -> np.ndarray:
    """Mass remaining during each exposure under exponential beam damage.

    The mass decays as ``exp(-D / D_c)`` with accumulated dose ``D``. Tilts are
    exposed in the order given; the factor for tilt ``a`` is the average over
    its own exposure, from ``D_a`` (dose of all earlier tilts) to ``D_a + d_a``:
    ``D_c / d_a * (exp(-D_a / D_c) - exp(-(D_a + d_a) / D_c))``. Mass loss is
    taken uniform, so it scales the whole projection.

    Parameters
    ----------
    dose_per_tilt : array_like, shape (n_tilts,)
        Dose of each exposure in e-/A^2.
    critical_dose : float or None
        1/e dose in e-/A^2; None means no damage (all factors 1).

    Returns
    -------
    factors : ndarray, shape (n_tilts,), in (0, 1].
    """
    d = np.atleast_1d(np.asarray(dose_per_tilt, dtype=np.float64))
    if critical_dose is None:
        return np.ones_like(d)
    if not (np.isfinite(critical_dose) and critical_dose > 0):
        raise ChemtomoError(f"critical_dose must be a positive dose in e-/A^2, got {critical_dose}")
    before = np.concatenate([[0.0], np.cumsum(d)[:-1]])
    x, dx = before / critical_dose, d / critical_dose
    safe = np.where(dx > 0, dx, 1.0)
    avg = np.exp(-x) * (-np.expm1(-dx)) / safe
    return np.where(dx > 0, avg, np.exp(-x))


def dose_from_time(time: float, *, beam_current: float, n_pixels: int, pixel_size: float) -> float:
    """Total dose in e-/A^2 of scanning `n_pixels` pixels per image for `time` seconds in all.

    ``dose = I t / (e n_pixels A_pixel)`` with `beam_current` ``I`` in pA and
    pixel area ``A_pixel = (10 pixel_size)^2`` A^2. The time covers all tilts;
    dose and time split equally over the tilts (see :func:`dwell_time`).
    """
    _check_positive(time=time, beam_current=beam_current, n_pixels=n_pixels, pixel_size=pixel_size)
    electrons = beam_current * 1e-12 * time / _E_CHARGE
    return float(electrons / (n_pixels * (10.0 * pixel_size) ** 2))


def time_from_dose(dose: float, *, beam_current: float, n_pixels: int, pixel_size: float) -> float:
    """Total acquisition time in s that delivers `dose` e-/A^2; inverse of :func:`dose_from_time`."""
    _check_positive(dose=dose, beam_current=beam_current, n_pixels=n_pixels, pixel_size=pixel_size)
    return float(dose * n_pixels * (10.0 * pixel_size) ** 2 * _E_CHARGE / (beam_current * 1e-12))


def dwell_time(time: float, n_pixels: int, n_tilts: int) -> float:
    """Dwell time per pixel in s when `time` is spread evenly over `n_tilts` images of `n_pixels`."""
    _check_positive(time=time, n_pixels=n_pixels, n_tilts=n_tilts)
    return float(time / (n_pixels * n_tilts))


def _check_positive(**values):
    for name, v in values.items():
        if not (np.isfinite(v) and v > 0):
            raise ChemtomoError(f"{name} must be positive, got {v}")
