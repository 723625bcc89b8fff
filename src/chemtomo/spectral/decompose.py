"""Low-rank denoising of spectrum images: PCA (SVD) or NMF with Poisson scaling.

Poisson scaling (Keenan and Kotula 2004, HyperSpy's ``normalize_poissonian_noise``):
the data matrix ``X`` (pixels x channels) is divided by ``sqrt(a_p b_c / N)``
with ``a`` the image (counts per pixel), ``b`` the spectrum (counts per
channel) and ``N`` the total, so that Poisson noise has unit variance where the
rank-1 mean model holds. Zero rows or columns keep a weight of 1.

Rank rule (``rank=None``):

* ``criterion="scree"``: keep the singular values of the scaled matrix above the
  Gavish-Donoho hard threshold for unit-variance noise,
  ``tau = lambda(beta) sqrt(n)``, ``lambda(beta) = sqrt(2 (beta + 1) + 8 beta /
  (beta + 1 + sqrt(beta^2 + 14 beta + 1)))``, ``beta = m / n <= 1`` (the noise
  floor of the scree plot);
* ``criterion="cv"``: count splitting: ``X = X1 + X2`` with ``X1 ~ Binomial(X, 1/2)``;
  the rank that minimises ``|| X2 - L_r(X1) ||^2`` (``L_r`` the rank-r PCA
  reconstruction of ``X1``) wins. Needs integer counts.

References
----------
M. Gavish and D. L. Donoho, IEEE Trans. Inf. Theory 60 (2014) 5040.
M. R. Keenan and P. G. Kotula, Surf. Interface Anal. 36 (2004) 203.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError

_MAX_RANK = 30


def _scaled(si):
    x = np.asarray(si)
    if x.ndim < 2 or x.shape[-1] < 2:
        raise ChemtomoError(f"a spectrum image needs pixels and channels (..., n_channels), got shape {x.shape}")
    m = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if not np.all(np.isfinite(m)) or m.min() < 0:
        raise ChemtomoError("the spectrum image has negative or non-finite values; give raw counts")
    a, b = m.sum(axis=1), m.sum(axis=0)
    total = max(m.sum(), 1e-300)
    ra = np.where(a > 0, np.sqrt(a / np.sqrt(total)), 1.0)
    rb = np.where(b > 0, np.sqrt(b / np.sqrt(total)), 1.0)
    return m, ra, rb


def _svd(m, k):
    if min(m.shape) <= 1500:
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        return u[:, :k], s, vt[:k]
    import torch

    t = torch.from_numpy(m.astype(np.float32))
    u, s, v = torch.svd_lowrank(t, q=min(k + 10, min(m.shape)), niter=3)
    return u[:, :k].double().numpy(), s.double().numpy(), v[:, :k].T.double().numpy()


def _gd_threshold(shape):
    m, n = sorted(shape)
    beta = m / n
    lam = np.sqrt(2 * (beta + 1) + 8 * beta / (beta + 1 + np.sqrt(beta**2 + 14 * beta + 1)))
    return lam * np.sqrt(n)


def pca_rank(si, *, criterion: str = "scree", max_rank: int = _MAX_RANK, rng=None) -> int:
    """Rank kept by :func:`denoise_pca` when ``rank=None`` (see module notes for the rules).

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts.
    criterion : {"scree", "cv"}, default "scree"
        Noise-floor threshold on the Poisson-scaled singular values, or count-splitting cross-validation.
    max_rank : int, default 30
        Largest rank considered.
    rng : None, int or numpy.random.Generator
        Randomness of the count split (``"cv"`` only).
    """
    if criterion not in ("scree", "cv"):
        raise ChemtomoError(f"unknown rank criterion {criterion!r}; use 'scree' or 'cv'")
    m, ra, rb = _scaled(si)
    kmax = max(1, min(max_rank, min(m.shape) - 1))
    if criterion == "scree":
        _, s, _ = _svd(m / ra[:, None] / rb[None, :], kmax + 1)
        return max(1, int(np.sum(s[: kmax + 1] > _gd_threshold(m.shape))))
    if not np.allclose(m, np.round(m)):
        raise ChemtomoError("criterion='cv' splits counts and needs integer counts; use criterion='scree'")
    from ..physics.counts import as_rng

    x1 = as_rng(rng).binomial(m.astype(np.int64), 0.5).astype(np.float64)
    x2 = m - x1
    u, s, vt = _svd(x1 / ra[:, None] / rb[None, :], kmax)
    errors, recon = [], np.zeros_like(m)
    for r in range(kmax):
        recon += np.outer(u[:, r] * s[r] * ra, vt[r] * rb)
        errors.append(np.sum((x2 - recon) ** 2))
    return int(np.argmin(errors)) + 1


def denoise_pca(si, rank: int | None = None, *, method: str = "pca", criterion: str = "scree",
                iterations: int = 200, rng=None) -> np.ndarray:
    """Low-rank denoised spectrum image (PCA by SVD, or NMF), with Poisson scaling.

    Parameters
    ----------
    si : array (..., n_channels)
        Spectrum image in counts, energy last.
    rank : int, optional
        Components kept; chosen by :func:`pca_rank` with `criterion` if omitted.
    method : {"pca", "nmf"}, default "pca"
        Truncated SVD of the scaled data, or NMF by Lee-Seung multiplicative updates
        (Kullback-Leibler, i.e. Poisson likelihood) on the scaled data.
    criterion : {"scree", "cv"}, default "scree"
        Rank rule when `rank` is None.
    iterations : int, default 200
        NMF iterations.
    rng : None, int or numpy.random.Generator
        For the count split and the NMF start.

    Returns
    -------
    denoised : ndarray, same shape as `si`, float64.
    """
    if method not in ("pca", "nmf"):
        raise ChemtomoError(f"unknown method {method!r}; use 'pca' or 'nmf'")
    shape = np.shape(si)
    if rank is None:
        rank = pca_rank(si, criterion=criterion, rng=rng)
    m, ra, rb = _scaled(si)
    if not (1 <= int(rank) < min(m.shape)):
        raise ChemtomoError(f"rank must be 1..{min(m.shape) - 1}, got {rank}")
    rank = int(rank)
    xs = m / ra[:, None] / rb[None, :]
    if method == "pca":
        u, s, vt = _svd(xs, rank)
        low = (u[:, :rank] * s[:rank]) @ vt[:rank]
    else:
        from ..physics.counts import as_rng

        gen = as_rng(rng)
        w = gen.random((xs.shape[0], rank)) + 0.1
        h = gen.random((rank, xs.shape[1])) + 0.1
        scale = np.sqrt(xs.mean() / max((w @ h).mean(), 1e-300))
        w, h = w * scale, h * scale
        for _ in range(iterations):
            wh = np.maximum(w @ h, 1e-12)
            h *= (w.T @ (xs / wh)) / np.maximum(w.sum(axis=0)[:, None], 1e-12)
            wh = np.maximum(w @ h, 1e-12)
            w *= ((xs / wh) @ h.T) / np.maximum(h.sum(axis=1)[None, :], 1e-12)
        low = w @ h
    return (low * ra[:, None] * rb[None, :]).reshape(shape)
