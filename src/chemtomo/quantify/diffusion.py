"""Fickian interdiffusion inside a particle: 3D finite differences and a fit of D.

Fick's second law ``dc/dt = D laplacian(c)`` is integrated on the voxel grid
of the particle mask with the explicit 7-point scheme. A flux passes between
two face neighbours only when both are inside the mask, so no material leaves
the particle (zero-flux, Neumann, boundary at its surface) and the total
``sum(c)`` inside the mask is conserved to rounding. The step is
``dt <= h^2 / (6 D)`` (stability of the explicit scheme), shortened so that
a whole number of steps reaches each requested time.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..core.errors import ChemtomoError, ShapeError

#: fraction of the explicit stability limit h^2 / (6 D) used as the largest step
SAFETY = 0.9


def _links(mask: np.ndarray) -> list[np.ndarray]:
    """Per axis, a float array (n-1 along that axis) that is 1 where both neighbours are inside."""
    out = []
    for ax in range(3):
        a = np.swapaxes(mask, 0, ax)
        out.append(np.swapaxes((a[1:] & a[:-1]).astype(np.float64), 0, ax))
    return out


def _step(c: np.ndarray, links, k: float) -> None:
    """One explicit step in place; ``k = D dt / h^2``."""
    flux = []
    for ax, link in enumerate(links):
        a = np.swapaxes(c, 0, ax)
        flux.append(np.swapaxes((a[1:] - a[:-1]) * np.swapaxes(link, 0, ax), 0, ax) * k)
    for ax, f in enumerate(flux):
        a = np.swapaxes(c, 0, ax)
        fa = np.swapaxes(f, 0, ax)
        a[:-1] += fa
        a[1:] -= fa


def _check(c0, mask, voxel_size):
    c = np.asarray(c0, dtype=np.float64)
    if c.ndim != 3:
        raise ShapeError(f"the concentration must be a 3D volume (ny, nz, nx), got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ChemtomoError("the concentration contains NaN or infinite values; set voxels outside the mask to 0")
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ChemtomoError(f"voxel_size must be a positive size in nm, got {voxel_size}")
    if mask is None:
        m = np.ones(c.shape, bool)
    else:
        m = np.asarray(mask).astype(bool)
        if m.shape != c.shape:
            raise ShapeError(f"mask has shape {m.shape} but the concentration has shape {c.shape}")
    return c, m


def _evolve(c0: np.ndarray, mask: np.ndarray, D: float, times, h: float) -> list[np.ndarray]:
    """Concentration at each of the increasing `times` (s, from 0), starting from `c0`."""
    c = np.where(mask, c0, 0.0)
    links = _links(mask)
    out, t_now = [], 0.0
    for t in times:
        span = t - t_now
        if span > 0 and D > 0:
            dt_max = SAFETY * h * h / (6.0 * D)
            n = int(np.ceil(span / dt_max))
            k = D * (span / n) / (h * h)
            for _ in range(n):
                _step(c, links, k)
        t_now = t
        out.append(c.copy())
    return out


def diffuse(c0, D: float, t: float, *, voxel_size: float, mask=None) -> np.ndarray:
    """Evolve a concentration field by Fick's second law for time `t`.

    Parameters
    ----------
    c0 : array (ny, nz, nx)
        Initial concentration (e.g. the atomic fraction of one element).
    D : float
        Diffusion coefficient in nm^2/s, >= 0.
    t : float
        Time in s, >= 0.
    voxel_size : float
        Voxel edge in nm.
    mask : bool array (ny, nz, nx), optional
        The particle; no flux crosses its surface and values outside are 0.
        The whole grid (no flux at the grid faces) if omitted.

    Returns
    -------
    c : float64 ndarray (ny, nz, nx)

    Raises
    ------
    ChemtomoError
        For a negative `D` or `t`, non-finite values or mismatched shapes.

    Notes
    -----
    Explicit scheme ``c += D dt / h^2 * sum_faces link (c_nb - c)`` with
    ``link = 1`` only between two mask voxels; the number of steps is
    ``ceil(t / (0.9 h^2 / (6 D)))``, so the cost grows with ``D t / h^2``.

    Examples
    --------
    >>> import numpy as np
    >>> c = np.zeros((1, 1, 20)); c[..., :10] = 1
    >>> out = diffuse(c, 1.0, 5.0, voxel_size=1.0)
    >>> round(float(out.sum()), 6), bool(0.4 < out[0, 0, 9] < 0.6)
    (10.0, True)
    """
    c, m = _check(c0, mask, voxel_size)
    if not (np.isfinite(D) and D >= 0) or not (np.isfinite(t) and t >= 0):
        raise ChemtomoError(f"D (nm^2/s) and t (s) must be non-negative, got D={D} and t={t}")
    return _evolve(c, m, float(D), [float(t)], float(voxel_size))[0]


def fit_diffusion(volumes, times, *, voxel_size: float, mask=None, bounds=None, xtol: float = 1e-4):
    """Fit the diffusion coefficient to a time series of concentration volumes.

    Parameters
    ----------
    volumes : list of arrays (ny, nz, nx)
        Concentration of one element at each time, same mask and grid; the
        first one is the initial condition.
    times : list of float
        Time of each volume in s (increasing; only differences matter).
    voxel_size : float
        Voxel edge in nm.
    mask : bool array, optional
        Particle mask (no-flux surface); the whole grid if omitted.
    bounds : (float, float), optional
        Search interval for D in nm^2/s. Default ``(1e-4, 1) * L^2 / T`` with
        ``L`` the largest mask extent in nm and ``T`` the time span: beyond
        ``L^2 / T`` the particle is homogeneous and the cost is flat.
    xtol : float, default 1e-4
        Tolerance on ``log D``.

    Returns
    -------
    D : float
        Diffusion coefficient in nm^2/s.
    info : dict
        ``cost`` (sum of squared residuals at D), ``rms`` (residual RMS per
        mask voxel and later volume), ``evaluations``, ``bounds``,
        ``simulated`` (list of volumes at `times`).

    Raises
    ------
    ChemtomoError
        With fewer than two volumes, unsorted times or mismatched shapes.

    Notes
    -----
    Minimises ``sum_k sum_{v in mask} (c_sim(v, t_k; D) - c_k(v))^2`` over
    ``log D`` by bounded Brent search, where ``c_sim`` is :func:`diffuse`
    started from ``volumes[0]``.
    """
    if len(volumes) < 2 or len(volumes) != len(times):
        raise ChemtomoError(f"give at least two volumes and one time per volume, got {len(volumes)} volumes "
                            f"and {len(times)} times")
    t = np.asarray(times, dtype=np.float64) - float(times[0])
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ChemtomoError(f"times must be finite and strictly increasing (s), got {list(times)}")
    c0, m = _check(volumes[0], mask, voxel_size)
    obs = []
    for i, v in enumerate(volumes[1:], 1):
        vi = np.asarray(v, dtype=np.float64)
        if vi.shape != c0.shape:
            raise ShapeError(f"volumes[{i}] has shape {vi.shape} but volumes[0] has shape {c0.shape}")
        obs.append(vi[m])
    h = float(voxel_size)
    if bounds is None:
        idx = np.argwhere(m)
        extent = float((idx.max(axis=0) - idx.min(axis=0) + 1).max()) * h
        bounds = (1e-4 * extent**2 / t[-1], extent**2 / t[-1])
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (0 < lo < hi):
        raise ChemtomoError(f"bounds must be 0 < low < high in nm^2/s, got {bounds}")
    n_eval = [0]

    def cost(log_d):
        n_eval[0] += 1
        sims = _evolve(c0, m, float(np.exp(log_d)), t, h)[1:]
        return float(sum(((s[m] - o) ** 2).sum() for s, o in zip(sims, obs)))

    res = minimize_scalar(cost, bounds=(np.log(lo), np.log(hi)), method="bounded", options={"xatol": xtol})
    d = float(np.exp(res.x))
    sim = _evolve(c0, m, d, t, h)
    n = m.sum() * len(obs)
    return d, {"cost": float(res.fun), "rms": float(np.sqrt(res.fun / n)), "evaluations": n_eval[0],
               "bounds": (lo, hi), "simulated": sim}
