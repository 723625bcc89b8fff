"""Checks and small phantoms for tests, usable by anyone writing an operator or solver."""

from __future__ import annotations

import numpy as np
import torch

from .core.operators import Operator


def check_operator(op: Operator, *, rng=0, rtol: float = 1e-5) -> float:
    """Check shapes, linearity and the adjoint of `op`; return the relative adjoint error.

    The adjoint error is ``|<Ax, y> - <x, A^T y>| / (||A|| ||x|| ||y||)`` for
    random non-negative ``x`` and ``y``, computed in float32 and compared with
    `rtol`.

    Raises
    ------
    AssertionError
        If a shape is wrong, `op` is not linear or the adjoint error exceeds `rtol`.
    """
    gen = np.random.default_rng(rng)
    x = gen.random(op.domain_shape, dtype=np.float32)
    x2 = gen.random(op.domain_shape, dtype=np.float32)
    y = gen.random(op.range_shape, dtype=np.float32)
    ax = op(x)
    aty = op.T(y)
    assert ax.shape == tuple(op.range_shape), f"A(x) has shape {ax.shape}, expected {op.range_shape}"
    assert aty.shape == tuple(op.domain_shape), f"A.T(y) has shape {aty.shape}, expected {op.domain_shape}"
    lin = op(2.0 * x + x2) - (2.0 * ax + op(x2))
    scale = np.linalg.norm(ax) * 3 + 1e-30
    assert np.linalg.norm(lin) / scale < 1e-5, "operator is not linear"
    norm = op.norm(iterations=20)
    lhs = float(np.vdot(ax.astype(np.float64), y))
    rhs = float(np.vdot(x.astype(np.float64), aty))
    err = abs(lhs - rhs) / (norm * np.linalg.norm(x) * np.linalg.norm(y))
    assert err < rtol, f"relative adjoint error {err:.2e} exceeds {rtol:.0e}"
    # the buffer-reusing forms used by the solvers agree with the plain ones
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    out = torch.full(tuple(op.range_shape), float("nan"))
    np.testing.assert_allclose(op._apply_into(xt, out).numpy(), ax, rtol=1e-5, atol=1e-5 * (np.abs(ax).max() + 1e-30),
                               err_msg="_apply_into differs from _apply")
    acc = torch.from_numpy(x2.copy())
    expect = x2 - 0.5 * aty
    np.testing.assert_allclose(op._adjoint_add(yt, acc, -0.5).numpy(), expect, rtol=1e-5,
                               atol=1e-5 * (np.abs(expect).max() + 1e-30), err_msg="_adjoint_add differs from _apply_adjoint")
    return err


def reference_project(volume, angles, nu=None, *, axis_offset=0.0, step=0.1):
    """Slow tilt-series projection straight from the geometry's definition.

    Samples each ray every `step` voxels and interpolates the volume
    bilinearly (zero outside), in float64. For tests of fast projectors.
    """
    from scipy.ndimage import map_coordinates

    v = np.asarray(volume, dtype=np.float64)
    ny, nz, nx = v.shape
    nu = nx if nu is None else nu
    u = np.arange(nu) - (nu - 1) / 2 - axis_offset
    half = 0.5 * np.hypot(nx, nz) + abs(axis_offset) + 2
    t = np.arange(-half, half + step / 2, step)
    out = np.empty((len(angles), ny, nu))
    for a, theta in enumerate(np.deg2rad(np.asarray(angles, dtype=np.float64))):
        c, s = np.cos(theta), np.sin(theta)
        # points on the ray: (x, z) = u * (c, s) + t * (-s, c)
        x = u[:, None] * c - t[None, :] * s + (nx - 1) / 2
        z = u[:, None] * s + t[None, :] * c + (nz - 1) / 2
        for yi in range(ny):
            vals = map_coordinates(v[yi], [z.ravel(), x.ravel()], order=1, mode="grid-constant", cval=0.0)
            out[a, yi] = vals.reshape(x.shape).sum(axis=1) * step
    return out


def ball(shape, radius, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A float32 ball of value 1 (voxel centres inside), centre offset from the grid centre in voxels."""
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 - c for n, c in zip(shape, centre)], indexing="ij")
    return (sum(g**2 for g in grids) <= radius**2).astype(np.float32)


def core_shell(shape, r_core, r_shell) -> dict[str, np.ndarray]:
    """Concentric core and shell balls: ``{"core": ..., "shell": ...}`` (shell excludes the core)."""
    core = ball(shape, r_core)
    return {"core": core, "shell": ball(shape, r_shell) - core}


def nrmse(estimate, truth) -> float:
    """Normalised root-mean-square error ||estimate - truth|| / ||truth||."""
    e = np.asarray(estimate, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    return float(np.linalg.norm(e - t) / np.linalg.norm(t))


def gaussian_blobs(shape, n=5, *, rng=0, width=(2.0, 5.0)) -> np.ndarray:
    """A smooth volume: a sum of `n` random Gaussian blobs inside the inscribed cylinder."""
    gen = np.random.default_rng(rng)
    ny, nz, nx = shape
    grids = np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in shape], indexing="ij")
    out = np.zeros(shape)
    r_max = 0.3 * min(nz, nx)
    for _ in range(n):
        c = [gen.uniform(-0.3, 0.3) * ny, *gen.uniform(-r_max, r_max, 2) / np.sqrt(2)]
        w = gen.uniform(*width)
        out += gen.uniform(0.5, 1.0) * np.exp(-sum((g - ci) ** 2 for g, ci in zip(grids, c)) / (2 * w**2))
    return out.astype(np.float32)


def disc_images(n: int = 15, size: int = 64, *, blobs: int = 20, rng=5) -> np.ndarray:
    """Images ``(n, size, size)`` of `blobs` random soft discs each (radius 3-6 px): scenes unlike a particle projection."""
    gen = np.random.default_rng(rng)
    yy, xx = np.mgrid[:size, :size]
    p = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(blobs):
            cy, cx, r = gen.uniform(0, size), gen.uniform(0, size), gen.uniform(3, 6)
            p[i] += np.clip(1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2, 0, None) ** 0.5
    return p


def best_filtered(method, op, data, iterations: int, score, *, scale: float = 1.0,
                  sigmas=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0), every: int = 5, dense: int = 0, **options):
    """Best iterate of an iterative reconstruction followed by a 3D Gaussian filter, by a score of your choice.

    ``method(op, data, iterations, callback=..., **options)`` runs (e.g. :func:`chemtomo.recon.sirt`);
    at iteration ``it`` (1-based) with ``it <= dense`` or ``it % every == 0``, the iterate over `scale`
    is filtered with each width of `sigmas` (voxels; 0: unfiltered) and ``score(volume)`` computed
    (lower is better: an error against the truth, or against held-out data).

    Returns
    -------
    score, iterations, sigma, volume
        The smallest score, the iteration and width that gave it, and that filtered volume (float32).
    """
    from scipy.ndimage import gaussian_filter

    best = [np.inf, None, None, None]

    def cb(i, x):
        it = i + 1
        if it <= dense or it % every == 0:
            c = np.asarray(x, dtype=np.float32) / scale
            for s in sigmas:
                v = gaussian_filter(c, s) if s else c
                e = score(v)
                if e < best[0]:
                    best[:] = [e, it, float(s), v]
        return False

    method(op, data, iterations, callback=cb, **options)
    return tuple(best)


def oracle_filtered(method, op, data, truth, iterations: int, *, scale: float = 1.0,
                    sigmas=(0.0, 0.5, 1.0, 1.5, 2.0, 3.0), every: int = 5, dense: int = 0, **options):
    """The best an iterative reconstruction followed by a 3D Gaussian filter can do, tuned on the truth.

    The strong classical baseline of the benchmarks and docs figures (an oracle: it needs the ground
    truth, so it is for scoring only): :func:`best_filtered` scored by :func:`nrmse` against `truth`.

    Returns
    -------
    error, iterations, sigma, volume
        The smallest NRMSE, the iteration and width that gave it, and that filtered volume (float32).
    """
    return best_filtered(method, op, data, iterations, lambda v: nrmse(v, truth), scale=scale, sigmas=sigmas,
                         every=every, dense=dense, **options)
