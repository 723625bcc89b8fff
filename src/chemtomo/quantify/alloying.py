"""Alloying of a core-shell particle over a time series of HAADF reconstructions (in-situ heating).

Calibrating every reconstruction on its own histogram (:func:`~chemtomo.quantify.haadf.calibrate`)
fails over such a series: as the particle homogenises the pure-core peak disappears and the fit
takes the mixed intensities for the pure ones, so the composition scale drifts from frame to frame.
And the voxel-wise :func:`~chemtomo.quantify.haadf.alloying_index` of a reconstruction is inflated by
its resolution: blur mixes core and shell just as diffusion does.

:func:`fit_alloying` fits one physical model to the whole series instead. The particle is a sphere
of radius ``R``; at an unknown time ``t_s`` it was a sharp core-shell sphere (core radius ``R_c``),
and since then the core element's atomic fraction ``c(r, t)`` has evolved by Fick's law in
spherical symmetry with no flux through the surface::

    dc/dt = D (1/r^2) d/dr (r^2 dc/dr),    c(r, t_s) = 1 for r < R_c, 0 otherwise

Each reconstruction is that particle's intensity ``I_shell + (I_core - I_shell) c`` seen through an
isotropic Gaussian blur of width ``sigma`` (the reconstruction's resolution). The outer surface of
the particle, sharp in reality, fixes ``sigma``; the core plateaus of the early frames and the
conserved mean fix the two intensities; the broadening of the interface over time fixes ``D`` and
``t_s``. All seven parameters are fitted together, by weighted least squares, to the radial
profiles of all frames (each shell weighted by the square root of its voxel count, as if every
voxel were fitted). One calibration serves the whole series, and the alloying index is computed on
the fitted, unblurred composition: the quantity that the truth defines.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares

from ..core.errors import ChemtomoError, ShapeError
from .haadf import _volume, alloying_index, particle_mask, unmix


@lru_cache(maxsize=4)
def _radial_modes(n: int):
    """Eigenmodes of spherical diffusion on ``u = r / R`` in [0, 1] (n finite-volume shells, no flux at u = 1).

    Returns ``(edges, volumes, lam, Q)``: the shell edges, shell volumes ``(u1^3 - u0^3) / 3``, and
    the eigen-decomposition ``W = Q diag(lam) Q^T`` of the symmetrised operator
    ``V^-1/2 S V^-1/2``, so that ``c(s) = V^-1/2 Q exp(lam s) Q^T V^1/2 c(0)`` for ``s = D t / R^2``.
    """
    edges = np.linspace(0.0, 1.0, n + 1)
    vol = (edges[1:] ** 3 - edges[:-1] ** 3) / 3.0
    du = 1.0 / n
    face = edges[1:-1] ** 2 / du  # conductance of each inner face
    S = np.zeros((n, n))
    i = np.arange(n - 1)
    S[i, i] -= face
    S[i + 1, i + 1] -= face
    S[i, i + 1] += face
    S[i + 1, i] += face
    w = 1.0 / np.sqrt(vol)
    lam, Q = np.linalg.eigh(S * w[:, None] * w[None, :])
    return edges, vol, np.minimum(lam, 0.0), Q


def radial_fraction(core_ratio: float, s, *, n: int = 200) -> np.ndarray:
    """Core-element fraction in n shells of a sphere, a time ``s = D t / R^2`` after a sharp core-shell start.

    Parameters
    ----------
    core_ratio : float
        Core radius over particle radius, in [0, 1].
    s : float or sequence of float
        Dimensionless times ``D t / R^2`` (>= 0).
    n : int, default 200
        Shells of equal width ``R / n``.

    Returns
    -------
    c : ndarray (len(s), n), or (n,) for a scalar `s`
        Mean fraction in each shell (the shell holding the initial interface starts partly filled).

    Examples
    --------
    >>> c = radial_fraction(0.5, [0.0, 10.0], n=100)
    >>> round(float(c[0, 0]), 6), round(float(c[0, -1]), 6), round(float(c[1, 0]), 4)   # long times: 0.5^3
    (1.0, 0.0, 0.125)
    """
    edges, vol, lam, Q = _radial_modes(int(n))
    q = float(np.clip(core_ratio, 0.0, 1.0))
    c0 = np.clip((np.minimum(edges[1:], q) ** 3 - edges[:-1] ** 3) / 3.0 / vol, 0.0, 1.0)
    sv = np.sqrt(vol)
    coeff = Q.T @ (sv * c0)
    ss = np.atleast_1d(np.asarray(s, dtype=np.float64))
    out = (np.exp(np.outer(ss, lam)) * coeff) @ Q.T / sv
    return out[0] if np.ndim(s) == 0 else out


def _blur_matrix(rho: np.ndarray, radius: float, sigma: float, n: int) -> np.ndarray:
    """Matrix taking n shell values of a sphere (radius in nm) to its isotropic 3D Gaussian blur at radii `rho`."""
    ds = radius / n
    s = (np.arange(n) + 0.5) * ds
    r = rho[:, None]
    kern = np.exp(-0.5 * ((r - s) / sigma) ** 2) - np.exp(-0.5 * ((r + s) / sigma) ** 2)
    return kern * (s * ds / (np.sqrt(2 * np.pi) * sigma)) / r


def shell_profile(volume, mask, *, voxel_size: float, bin_width: float = 0.5, margin: float = 3.0):
    """Radial profile of a volume about the centre of mass of `mask`, with the voxel count of each shell.

    Parameters
    ----------
    volume : array (ny, nz, nx)
    mask : bool array (ny, nz, nx)
        Particle mask; sets the centre and the extent.
    voxel_size : float
        Voxel edge in nm.
    bin_width : float, default 0.5
        Shell width in voxels.
    margin : float, default 3.0
        Voxels beyond the farthest mask voxel still profiled (the blurred surface).

    Returns
    -------
    radii : ndarray (n,)
        Shell centres in nm.
    mean : ndarray (n,)
        Mean of `volume` in each shell (0 where a shell is empty).
    count : ndarray (n,)
        Voxels per shell.
    """
    v = _volume(volume)
    m = np.asarray(mask, bool)
    if m.shape != v.shape:
        raise ShapeError(f"the mask has shape {m.shape} but the volume has shape {v.shape}")
    if not m.any():
        raise ChemtomoError("the particle mask is empty; check the volume or give a mask")
    centre = np.array(ndimage.center_of_mass(m))
    grids = np.meshgrid(*[np.arange(k, dtype=np.float64) for k in v.shape], indexing="ij", sparse=True)
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre))).ravel()
    n_bins = int(np.ceil((r[m.ravel()].max() + margin) / bin_width))
    idx = (r / bin_width).astype(int)
    keep = idx < n_bins
    count = np.bincount(idx[keep], minlength=n_bins)
    sums = np.bincount(idx[keep], weights=v.ravel()[keep], minlength=n_bins)
    return (np.arange(n_bins) + 0.5) * bin_width * voxel_size, sums / np.maximum(count, 1), count


def _check_series(volumes, times):
    vols = [_volume(v, f"volumes[{i}]") for i, v in enumerate(volumes)]
    t = np.asarray(times, dtype=np.float64)
    if len(vols) < 2 or t.ndim != 1 or t.size != len(vols):
        raise ChemtomoError(f"give at least two volumes and one time per volume, got {len(vols)} volumes and "
                            f"{t.size} times")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ChemtomoError(f"times must be finite and strictly increasing (s), got {t.tolist()}")
    shapes = {v.shape for v in vols}
    if len(shapes) > 1:
        raise ShapeError(f"the volumes of a series must share one shape, got {sorted(shapes)}")
    return vols, t


def fit_alloying(volumes, times, *, voxel_size: float, calibration=None, masks=None, n_shells: int = 200,
                 bin_width: float = 0.5, margin: float = 3.0) -> dict:
    """Fit radial interdiffusion of a core-shell sphere to a time series of HAADF reconstructions.

    Parameters
    ----------
    volumes : list of arrays (ny, nz, nx)
        HAADF reconstructions of one particle at increasing times, same grid and units.
    times : sequence of float
        Time of each volume in s, strictly increasing.
    voxel_size : float
        Voxel edge in nm.
    calibration : (float, float), optional
        Intensities ``(I_core, I_shell)`` of the pure core and shell elements, for the whole series
        (e.g. :func:`~chemtomo.quantify.haadf.calibrate` on the first frame, or on pure reference
        regions). Default: fitted jointly with the diffusion model.
    masks : list of bool arrays, optional
        Particle mask of each volume; :func:`~chemtomo.quantify.haadf.particle_mask` (Otsu) if
        omitted. Each frame is profiled about its own mask's centre of mass (the particle may drift).
    n_shells : int, default 200
        Shells of the model's radial grid.
    bin_width : float, default 0.5
        Width of the measured radial shells in voxels.
    margin : float, default 3.0
        Voxels beyond the mask fitted on each profile (the blurred surface fixes ``sigma``).

    Returns
    -------
    dict
        ``D`` (nm^2/s) and ``D_sd`` (its standard error from the fit), ``start`` (s, when the
        core-shell particle was sharp), ``I_core``, ``I_shell`` (the series calibration, volume units),
        ``calibration`` ("joint" or "given"), ``radius_nm``, ``core_radius_nm``, ``sigma_nm`` (blur),
        ``index`` (alloying index of the fitted unblurred composition at each time),
        ``index_voxels`` (voxel-wise index of each volume unmixed with the series calibration:
        lowered by blur, for comparison), ``core_fraction`` (mean core-element fraction),
        ``rms`` (residual RMS per frame, volume units), ``profiles`` (per frame ``radii_nm``,
        ``measured``, ``model``) and ``fraction_model`` (per frame: ``radii_nm``, unblurred ``c``).

    Raises
    ------
    ChemtomoError
        With fewer than two volumes, a time count that differs from the volume count, unsorted
        times, mismatched shapes, a bad calibration or empty masks.

    Notes
    -----
    Model for frame k at measured radius ``rho``::

        I_k(rho) = G_sigma * [ (I_shell + (I_core - I_shell) c(r, tau_k)) 1(r < R) ](rho),
        tau_k = D (t_k - t_0) + tau_0,   t_s = t_0 - tau_0 / D

    with ``c`` from :func:`radial_fraction` (eigenmodes of the finite-volume operator) and the 3D
    Gaussian ``G_sigma`` applied to the radial function exactly. The alloying index is
    ``1 - var(c) / (m (1 - m))`` over the sphere's volume (:func:`~chemtomo.quantify.haadf.alloying_index`).
    """
    vols, t = _check_series(volumes, times)
    if not (np.isfinite(voxel_size) and voxel_size > 0):
        raise ChemtomoError(f"voxel_size must be a positive size in nm, got {voxel_size}")
    h = float(voxel_size)
    if masks is None:
        masks = [particle_mask(v) for v in vols]
    elif len(masks) != len(vols):
        raise ChemtomoError(f"give one mask per volume: {len(masks)} masks for {len(vols)} volumes")
    profiles = [shell_profile(v, m, voxel_size=h, bin_width=bin_width, margin=margin) for v, m in zip(vols, masks)]
    if calibration is not None:
        cal = tuple(float(x) for x in calibration)
        if len(cal) != 2 or not all(np.isfinite(cal)) or cal[0] == cal[1]:
            raise ChemtomoError(f"calibration must be two different finite intensities (I_core, I_shell), "
                                f"got {calibration}")
    # starting values from the first frame
    m0 = np.asarray(masks[0], bool)
    r_part = (3.0 * m0.sum() / (4.0 * np.pi)) ** (1 / 3) * h
    rho0, prof0, _ = profiles[0]
    i_core = float(prof0[rho0 < 0.3 * r_part].mean()) if calibration is None else cal[0]
    i_shell = float(prof0[(rho0 > 0.75 * r_part) & (rho0 < 0.85 * r_part)].mean()) if calibration is None else cal[1]
    mean0 = float(vols[0][m0].mean())
    q0 = float(np.clip((mean0 - i_shell) / (i_core - i_shell), 0.01, 0.99) ** (1 / 3)) if i_core != i_shell else 0.5
    span = float(t[-1] - t[0])
    d0 = 0.05 * r_part**2 / span
    x0 = np.array([i_core, i_shell, r_part, q0, h, np.log(d0), 0.01 * r_part**2])
    lo = np.array([-np.inf, -np.inf, 0.5 * r_part, 0.02, 0.05 * h, np.log(1e-6 * r_part**2 / span), 0.0])
    hi = np.array([np.inf, np.inf, 1.5 * r_part, 0.98, 6.0 * h, np.log(1e2 * r_part**2 / span), r_part**2])
    free = np.ones(7, bool)
    if calibration is not None:
        free[:2] = False
    weights = [np.sqrt(c) for _, _, c in profiles]
    rel = t - t[0]

    def model(p):
        i_c, i_s, radius, q, sigma, log_d, tau0 = p
        tau = np.exp(log_d) * rel + tau0
        c = radial_fraction(q, tau / radius**2, n=n_shells)
        inten = i_s + (i_c - i_s) * c
        return [_blur_matrix(rho, radius, sigma, n_shells) @ inten[k] for k, (rho, _, _) in enumerate(profiles)], c

    def residuals(pf):
        p = x0.copy()
        p[free] = pf
        pred, _ = model(p)
        return np.concatenate([w * (y - f) for (_, y, _), f, w in zip(profiles, pred, weights)])

    res = least_squares(residuals, x0[free], bounds=(lo[free], hi[free]), x_scale="jac", xtol=1e-10, ftol=1e-10)
    p = x0.copy()
    p[free] = res.x
    i_c, i_s, radius, q, sigma, log_d, tau0 = (float(x) for x in p)
    d = float(np.exp(log_d))
    pred, c = model(p)
    # standard error of D from the Jacobian (log D is parameter 5 of the free ones)
    dof = max(res.fun.size - int(free.sum()), 1)
    s2 = float(res.fun @ res.fun) / dof
    try:
        cov = np.linalg.pinv(res.jac.T @ res.jac) * s2
        d_sd = d * float(np.sqrt(max(cov[int(free[:5].sum()), int(free[:5].sum())], 0.0)))
    except np.linalg.LinAlgError:
        d_sd = float("nan")
    _, vol, _, _ = _radial_modes(int(n_shells))
    index, core_frac = [], []
    for ck in c:
        mean = float((ck * vol).sum() / vol.sum())
        var = float(((ck - mean) ** 2 * vol).sum() / vol.sum())
        index.append(1.0 if mean * (1 - mean) <= 1e-12 else float(np.clip(1 - var / (mean * (1 - mean)), 0, 1)))
        core_frac.append(mean)
    index_vox = [alloying_index(unmix(v, i_c, i_s, m), m) for v, m in zip(vols, masks)]
    rms = [float(np.sqrt((cnt * (y - f) ** 2).sum() / cnt.sum())) for (_, y, cnt), f in zip(profiles, pred)]
    r_model = (np.arange(n_shells) + 0.5) / n_shells * radius
    return {
        "D": d, "D_sd": d_sd, "start": float(t[0] - tau0 / d), "I_core": i_c, "I_shell": i_s,
        "calibration": "joint" if calibration is None else "given", "radius_nm": radius,
        "core_radius_nm": q * radius, "sigma_nm": sigma, "times": t.tolist(), "index": index,
        "index_voxels": index_vox, "core_fraction": core_frac, "rms": rms,
        "profiles": [{"radii_nm": rho, "measured": y, "model": f} for (rho, y, _), f in zip(profiles, pred)],
        "fraction_model": [{"radii_nm": r_model, "c": ck} for ck in c],
        "success": bool(res.success), "evaluations": int(res.nfev),
    }
