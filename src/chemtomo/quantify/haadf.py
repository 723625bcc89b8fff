"""Two-element composition from a quantitative HAADF reconstruction (Skorikov et al. 2019).

For two elements on the same lattice (Au and Ag: fcc, lattice parameters
4.078 and 4.086 A) a fully dense voxel holds the same number of atoms
whatever its composition, so its reconstructed HAADF intensity is linear in
the fraction ``c`` of the brighter element ``a``::

    I = c I_a + (1 - c) I_b    =>    c = (I - I_b) / (I_a - I_b), clipped to [0, 1]

The reference intensities ``I_a`` and ``I_b`` are calibrated in the same
reconstruction: from the two peaks of the intensity histogram inside the
particle (two Gaussians plus a band of mixed voxels, fitted by EM), or from regions
known to be pure.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError


def _volume(volume, name="volume") -> np.ndarray:
    v = np.asarray(volume, dtype=np.float64)
    if v.ndim != 3:
        raise ShapeError(f"{name} must be a 3D volume (ny, nz, nx), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ChemtomoError(f"{name} contains NaN or infinite values; replace them before quantifying")
    return v


def _mask(mask, shape, name="mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ShapeError(f"{name} has shape {m.shape} but the volume has shape {tuple(shape)}")
    return m.astype(bool)


def otsu_threshold(values, bins: int = 256) -> float:
    """Otsu's threshold of `values`: the cut maximising the between-class variance."""
    v = np.asarray(values, dtype=np.float64).ravel()
    hist, edges = np.histogram(v, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def particle_mask(volume, *, method: str = "otsu", threshold: float | None = None, fill_holes: bool = True,
                  largest: bool = True) -> np.ndarray:
    """Boolean mask of the particle in a reconstruction.

    Parameters
    ----------
    volume : array (ny, nz, nx)
        Reconstructed HAADF intensity.
    method : {"otsu", "value"}, default "otsu"
        ``"otsu"`` thresholds at Otsu's level of all voxel values; ``"value"``
        at `threshold`.
    threshold : float, optional
        Intensity threshold (volume units) for ``method="value"``.
    fill_holes : bool, default True
        Fill enclosed cavities (a dim core must not leave the mask).
    largest : bool, default True
        Keep only the largest 6-connected component.

    Returns
    -------
    mask : bool ndarray (ny, nz, nx)

    Raises
    ------
    ChemtomoError
        For an unknown method, a missing threshold or an empty mask.

    Examples
    --------
    >>> from chemtomo.testing import ball
    >>> m = particle_mask(ball((16, 16, 16), 5) * 3.0)
    >>> int(m.sum()) == int(ball((16, 16, 16), 5).sum())
    True
    """
    v = _volume(volume)
    if method == "otsu":
        level = otsu_threshold(v)
    elif method == "value":
        if threshold is None:
            raise ChemtomoError("method='value' needs threshold=<intensity>; or use method='otsu'")
        level = float(threshold)
    else:
        raise ChemtomoError(f"method must be 'otsu' or 'value', got {method!r}")
    m = v > level
    if largest and m.any():
        labels, n = ndimage.label(m)
        if n > 1:
            sizes = np.bincount(labels.ravel())[1:]
            m = labels == (int(np.argmax(sizes)) + 1)
    if fill_holes:
        m = ndimage.binary_fill_holes(m)
    if not m.any():
        raise ChemtomoError(f"the particle mask is empty at threshold {level:g}; check the volume or pass threshold=")
    return m


def _erode(m: np.ndarray, erode: int) -> np.ndarray:
    if erode <= 0:
        return m
    out = ndimage.binary_erosion(m, iterations=int(erode))
    return out if out.any() else m


def two_peak_fit(values, *, iterations: int = 300, tol: float = 1e-8):
    """Fit two Gaussian peaks plus the mixed voxels between them to `values` by EM.

    The model density is ``w_a N(I_a, s_a) + w_b N(I_b, s_b) + w_m U(I_b, I_a) * N(0, s)``:
    two pure-element peaks and a uniform band of intermediate compositions
    (interfaces, partial volume) blurred by the mean peak width ``s``. Without
    the band, a broad interface pulls the smaller peak towards the other.
    Peak means and widths are updated from their responsibilities (a
    generalised EM step: the band is held fixed in each M-step).

    Returns
    -------
    means, sigmas, weights : ndarray (2,), ndarray (2,), ndarray (3,)
        Peaks brighter first; weights of (bright, dim, band).
    """
    from scipy.special import ndtr

    v = np.asarray(values, dtype=np.float64).ravel()
    mu = np.percentile(v, [90.0, 10.0])
    sd = np.full(2, max(v.std() / 4, 1e-12))
    w = np.array([0.4, 0.4, 0.2])
    floor = (1e-6 * np.ptp(v)) ** 2 + 1e-30
    ll_old = -np.inf
    for _ in range(iterations):
        hi, lo = max(mu), min(mu)
        s = sd.mean()
        band = (ndtr((hi - v) / s) - ndtr((lo - v) / s)) / max(hi - lo, 1e-12)
        peaks = np.exp(-0.5 * ((v[:, None] - mu) / sd) ** 2) / (np.sqrt(2 * np.pi) * sd)
        dens = np.column_stack([peaks, band]) * w
        tot = np.maximum(dens.sum(axis=1, keepdims=True), 1e-300)
        r = dens / tot
        nk = np.maximum(r.sum(axis=0), 1e-12)
        w = nk / v.size
        mu = (r[:, :2] * v[:, None]).sum(axis=0) / nk[:2]
        sd = np.sqrt(np.maximum((r[:, :2] * (v[:, None] - mu) ** 2).sum(axis=0) / nk[:2], floor))
        ll = float(np.log(tot).sum())
        if abs(ll - ll_old) <= tol * abs(ll):
            break
        ll_old = ll
    order = np.argsort(mu)[::-1]
    return mu[order], sd[order], np.concatenate([w[:2][order], w[2:]])


def calibrate(volume, mask, *, method: str = "histogram", regions=None, erode: int = 2) -> tuple[float, float]:
    """Reference intensities ``(I_a, I_b)`` of the pure brighter and dimmer element.

    Parameters
    ----------
    volume : array (ny, nz, nx)
        Reconstructed HAADF intensity.
    mask : bool array (ny, nz, nx)
        Particle mask (see :func:`particle_mask`).
    method : {"histogram", "regions"}, default "histogram"
        ``"histogram"``: the two peak positions of a mixture of two Gaussians
        and a band of intermediate values (see :func:`two_peak_fit`), fitted
        by EM to the intensities inside the (eroded) mask. ``"regions"``: mean
        intensity inside each of the two pure-element masks in `regions`.
    regions : (bool array, bool array), optional
        Masks of pure element a (brighter) and pure element b, for
        ``method="regions"``.
    erode : int, default 2
        Voxels eroded from the mask (or from each region) first, to avoid the
        partial-volume blur at the surface and at interfaces.

    Returns
    -------
    (I_a, I_b) : (float, float)
        Intensities of pure a and pure b in volume units, ``I_a > I_b``
        for the histogram method.

    Raises
    ------
    ChemtomoError
        For an unknown method, missing or empty regions, or too few voxels.
    """
    v = _volume(volume)
    m = _mask(mask, v.shape)
    if method == "histogram":
        vals = v[_erode(m, erode)]
        if vals.size < 10:
            raise ChemtomoError(f"the mask holds {vals.size} voxels; the histogram fit needs at least 10")
        mu, _, _ = two_peak_fit(vals)
        return float(mu[0]), float(mu[1])
    if method == "regions":
        if regions is None or len(regions) != 2:
            raise ChemtomoError("method='regions' needs regions=(mask of pure a, mask of pure b)")
        out = []
        for i, r in enumerate(regions):
            rm = _erode(_mask(r, v.shape, f"regions[{i}]"), erode)
            if not rm.any():
                raise ChemtomoError(f"regions[{i}] is empty; give a mask of a pure-element region")
            out.append(float(v[rm].mean()))
        return out[0], out[1]
    raise ChemtomoError(f"method must be 'histogram' or 'regions', got {method!r}")


def unmix(volume, I_a: float, I_b: float, mask, *, outside: float = 0.0) -> np.ndarray:
    """Fraction of element a per voxel, ``c = (I - I_b) / (I_a - I_b)`` clipped to [0, 1].

    Parameters
    ----------
    volume : array (ny, nz, nx)
        Reconstructed HAADF intensity.
    I_a, I_b : float
        Intensities of pure a and pure b (see :func:`calibrate`).
    mask : bool array (ny, nz, nx)
        Particle mask.
    outside : float, default 0.0
        Value outside the mask (``np.nan`` to mark it).

    Returns
    -------
    conc : float64 ndarray (ny, nz, nx), the atomic fraction of a, 0..1 in the mask.

    Examples
    --------
    >>> import numpy as np
    >>> unmix(np.array([[[1.0, 2.0, 3.0]]]), 3.0, 1.0, np.ones((1, 1, 3), bool)).ravel().tolist()
    [0.0, 0.5, 1.0]
    """
    v = _volume(volume)
    m = _mask(mask, v.shape)
    if not (np.isfinite(I_a) and np.isfinite(I_b)) or I_a == I_b:
        raise ChemtomoError(f"I_a and I_b must be finite and different, got {I_a} and {I_b}")
    c = np.clip((v - I_b) / (I_a - I_b), 0.0, 1.0)
    return np.where(m, c, outside)


def haadf_quant(volume, elements=("Au", "Ag"), *, mask=None, method: str = "histogram", regions=None,
                erode: int = 2, gamma: float = 1.7) -> dict:
    """Composition of a two-element particle from its HAADF reconstruction.

    Parameters
    ----------
    volume : array (ny, nz, nx)
        Reconstructed HAADF intensity (e.g. SIRT).
    elements : (str, str), default ("Au", "Ag")
        The two elements, in any order; the one with the larger HAADF weight
        ``n_e Z_e^gamma`` is taken as the brighter.
    mask : bool array, optional
        Particle mask; :func:`particle_mask` (Otsu) if omitted.
    method, regions, erode
        Calibration, see :func:`calibrate`; `regions` in the order of `elements`.
    gamma : float, default 1.7
        Z exponent used only to decide which element is brighter.

    Returns
    -------
    dict of str to float64 ndarray
        Atomic fraction of each element, 0..1 inside the mask and summing to
        the mask; 0 outside.
    """
    from ..physics.scattering import haadf_weight

    if len(elements) != 2:
        raise ChemtomoError(f"haadf_quant unmixes exactly two elements, got {list(elements)}")
    v = _volume(volume)
    m = particle_mask(v) if mask is None else _mask(mask, v.shape)
    bright, dim = elements
    swap = haadf_weight(dim, gamma) > haadf_weight(bright, gamma)
    if swap:
        bright, dim = dim, bright
        if regions is not None:
            regions = (regions[1], regions[0])
    i_a, i_b = calibrate(v, m, method=method, regions=regions, erode=erode)
    c = unmix(v, i_a, i_b, m)
    return {bright: c, dim: m.astype(np.float64) - c}


def alloying_index(conc_a, mask) -> float:
    """Degree of alloying inside a particle, 0 (fully segregated) to 1 (homogeneous alloy).

    Defined as ``1 - var(c) / (m (1 - m))`` over the voxels of the mask, with
    ``m`` the mean fraction of element a. ``m (1 - m)`` is the variance of the
    fully segregated particle with the same overall composition (every voxel
    pure a or pure b), so the index is 0 for a sharp core-shell particle and
    1 for a uniform alloy; it is clipped to [0, 1]. It is the normalised form
    of the standard deviation of ``c`` suggested as an alloying measure for
    Skorikov et al. 2019 (their exact index is not verified).

    Parameters
    ----------
    conc_a : array (ny, nz, nx)
        Atomic fraction of element a (0..1).
    mask : bool array (ny, nz, nx)
        Particle mask.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((2, 2, 2), bool)
    >>> alloying_index(np.full((2, 2, 2), 0.3), m), alloying_index((np.arange(8) % 2).reshape(2, 2, 2), m)
    (1.0, 0.0)
    """
    c = np.asarray(conc_a, dtype=np.float64)
    mk = _mask(mask, c.shape)
    vals = c[mk]
    if vals.size == 0:
        raise ChemtomoError("the mask is empty; give the particle mask")
    mean = float(vals.mean())
    seg = mean * (1 - mean)
    if seg <= 1e-12:
        return 1.0
    return float(np.clip(1.0 - vals.var() / seg, 0.0, 1.0))
