"""Atom counting in atomic-resolution HAADF-STEM images (De Backer et al. 2013, van den Bos et al. 2016 route).

1. :func:`fit_columns`: one 2D Gaussian per atomic column, all fitted at once
   and refined jointly; the scattering cross-section (SCS) of a column is the
   Gaussian's volume above the background, in A^2 when the dose is given.
2. :func:`count_atoms`: a Gaussian mixture with equal widths on the SCSs, the
   number of components chosen by ICL; component ``k`` (from the lowest) holds
   columns of ``n_min + k`` atoms, or each component is matched to the
   nearest entry of a simulated SCS library when one is given.
3. Mixed columns: :func:`lensing_cross_section` writes a column's SCS as the
   sum of each atom's contribution, the increment its species adds at that
   depth in a pure column (the pure-column SCS curves are inputs, from image
   simulations), and :func:`unscramble_columns` picks, per column of known
   length, the core/shell split whose predicted SCS is closest.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..physics.counts import as_rng, poisson
from scipy import ndimage
from scipy.optimize import nnls

from .fit import Peaks, _offsets, boxes, check_image, fit_gaussians, gaussian_values, local_maxima, render_peaks, suppress
from .mixture import Mixture, select_mixture
from ..physics.scattering import atom_cross_section, pixel_weights
from .trace import refine_jointly


def pure_column_scs(species: str, n_max: int, *, exponent: float = 0.85, gamma: float = 1.7) -> np.ndarray:
    """Model SCS (A^2) of pure columns of 0..n_max atoms: ``k Z^gamma n^exponent``.

    An exponent below 1 mimics channelling's sublinear growth with thickness.
    Replace by values from image simulations (e.g. abTEM) for real data.
    """
    return atom_cross_section(species, gamma)[0] * np.arange(n_max + 1) ** exponent


def simulate_columns(counts, *, spacing: float = 2.04, pixel_size: float = 0.2, sigma: float = 0.45,
                     scs=None, species: str = "Au", dose: float = 5e4, variation: float = 0.01,
                     background: float = 0.0, rng=None) -> dict:
    """Noisy HAADF image of a square lattice of atomic columns with the given numbers of atoms.

    Parameters
    ----------
    counts : int array (rows, cols)
        Atoms per column (0 leaves the site empty).
    spacing : float, default 2.04
        Column spacing in Angstrom (Au [100]: a/2).
    pixel_size : float, default 0.2
        Angstrom.
    sigma : float, default 0.45
        Column width (probe and vibration), Angstrom.
    scs : array, optional
        SCS (A^2) of a column of ``n`` atoms at index ``n``; default
        :func:`pure_column_scs` of `species`.
    dose : float, default 5e4
        Electrons per A^2.
    variation : float, default 0.01
        Relative standard deviation of each column's SCS about the model (the
        spread real columns of equal length show: neighbours, strain, probe).
    background : float, default 0
        Expected counts per pixel added everywhere.
    rng : int or Generator, optional

    Returns
    -------
    dict
        ``image`` (Poisson counts), ``expected``, ``positions`` (n, 2) in pixels
        (row, col), ``counts`` (n,), ``scs`` (n,) true SCS in A^2, ``dose``, ``pixel_size``.
    """
    counts = np.asarray(counts, int)
    if counts.ndim != 2 or (counts < 0).any():
        raise ChemtomoError("counts must be a 2D array of non-negative integers (atoms per column)")
    rng = as_rng(rng)
    table = pure_column_scs(species, int(counts.max())) if scs is None else np.asarray(scs, float)
    if len(table) <= counts.max():
        raise ChemtomoError(f"scs has {len(table)} entries; it needs one for every count up to {counts.max()}")
    r, c = np.nonzero(counts > 0)
    n = counts[r, c]
    true = table[n] * (1 + variation * rng.standard_normal(len(n)))
    step = spacing / pixel_size
    margin = 3 * step
    pos = np.c_[r, c] * step + margin
    shape = (int(np.ceil((counts.shape[0] - 1) * step + 2 * margin)) + 1,
             int(np.ceil((counts.shape[1] - 1) * step + 2 * margin)) + 1)
    s = sigma / pixel_size
    w = dose * true
    expected = pixel_weights(pos[:, 0], shape[0], s).T @ (w[:, None] * pixel_weights(pos[:, 1], shape[1], s))
    expected = expected + background
    return {"image": poisson(expected, rng=rng), "expected": expected, "positions": pos, "counts": n,
            "scs": true, "dose": dose, "pixel_size": pixel_size}


def noise_variance(image, expected, *, noise="auto") -> np.ndarray:
    """Per-pixel noise variance (image units^2) of an image whose noise-free value is `expected`.

    Parameters
    ----------
    image : ndarray (ny, nx)
        The measured image.
    expected : ndarray (ny, nx)
        Its fitted expectation (background plus the columns' Gaussians).
    noise : {"auto", "poisson", "fit"} or float, default "auto"
        ``"poisson"``: the image holds electron counts, variance = `expected`
        (at least 1 count, so that an empty vacuum does not make single
        counts significant). ``"fit"``: variance ``a + b * expected`` with
        ``a, b >= 0`` fitted to the residual ``image - expected`` (robust
        spread in 20 quantile bins of `expected`): read noise plus
        gain-scaled Poisson noise, learnt from the fit residual wherever the
        pixels lie, so it does not depend on how much of the field is vacuum.
        ``"auto"``: ``"poisson"`` when every pixel is a non-negative integer,
        else ``"fit"``. A number: a constant standard deviation, image units.
    """
    img = np.asarray(image, float)
    lam = np.asarray(expected, float)
    if not isinstance(noise, str):
        sd = float(noise)
        if not np.isfinite(sd) or sd <= 0:
            raise ChemtomoError(f"noise must be a positive standard deviation, got {noise!r}")
        return np.full(img.shape, sd * sd)
    if noise == "auto":
        noise = "poisson" if (img >= 0).all() and (img == np.round(img)).all() else "fit"
    if noise == "poisson":
        return np.maximum(lam, 1.0)
    if noise != "fit":
        raise ChemtomoError(f"noise must be 'auto', 'poisson', 'fit' or a standard deviation, got {noise!r}")
    r = (img - lam).ravel()
    level = lam.ravel()
    edges = np.unique(np.quantile(level, np.linspace(0, 1, 21)))
    if len(edges) < 2:
        edges = np.array([level[0], level[0] + 1.0])
    bin_ = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in np.unique(bin_):
        rb = r[bin_ == b]
        if rb.size >= 10:
            rows.append((level[bin_ == b].mean(), (1.4826 * np.median(np.abs(rb - np.median(rb)))) ** 2, rb.size))
    m, v, n = np.array(rows).T
    w = np.sqrt(n)
    (a, b), _ = nnls(np.c_[np.ones_like(m), m] * w[:, None], v * w)
    floor = (1e-6 * max(float(np.abs(img).max()), 1e-300)) ** 2
    return np.maximum(a + b * lam, floor)


def column_significance(image, peaks: Peaks, variance, *, sigma=None, removed=None) -> tuple[np.ndarray, np.ndarray]:
    """Matched-filter height of each column and its standard error, in image units.

    Every column is read with the fitted Gaussians of the `removed` columns
    (bool (n,), default all) other than itself subtracted, in a
    box of 3 widths, and fitted by least squares with a Gaussian ``w`` of
    width `sigma` (pixels; default the columns' height-weighted median
    width) at its fitted centre plus a constant (so a wrong common
    background cannot make a column): height ``sum(u d) / sum(u w)`` with
    ``u = w - mean(w)``, standard error ``sqrt(sum(u^2 var)) / sum(u w)``
    from the per-pixel `variance` (:func:`noise_variance`).
    """
    img = np.asarray(image, float)
    n = len(peaks)
    if sigma is None:
        s = np.sort(peaks.sigma, axis=0)
        order = np.argsort(peaks.sigma, axis=0)
        cum = np.cumsum(np.maximum(peaks.height, 0)[order], axis=0)
        sigma = s[np.argmax(cum >= cum[-1] / 2, axis=0), [0, 1]]
    sig = np.broadcast_to(np.asarray(sigma, float), (n, 2))
    radius = max(2, int(np.ceil(3 * sig.max())))
    offs = _offsets(radius, 2)
    removed = np.ones(n, bool) if removed is None else np.asarray(removed, bool)
    resid, base = boxes(img - render_peaks(img.shape, peaks.take(removed)), peaks.positions, radius)
    centre = peaks.positions - base
    data = resid + removed[:, None] * gaussian_values(offs, centre, peaks.height, peaks.sigma)
    inside = boxes(np.ones(img.shape), peaks.positions, radius)[0]
    w = gaussian_values(offs, centre, np.ones(n), sig) * inside
    u = (w - np.sum(w, axis=1, keepdims=True) / np.sum(inside, axis=1, keepdims=True)) * inside   # free constant
    uw = np.sum(u * w, axis=1)
    amp = np.sum(u * data, axis=1) / uw
    err = np.sqrt(np.sum(u * u * boxes(np.asarray(variance, float), peaks.positions, radius)[0], axis=1)) / uw
    return amp, err


def fit_columns(image, *, pixel_size: float, min_distance: float = 1.0, threshold: float | None = None,
                threshold_sigmas: float = 5.0, noise="auto", radius: int | None = None, sigma: float | None = None,
                refine: int = 3, positions=None) -> Peaks:
    """Find and fit one 2D Gaussian per atomic column of an atomic-resolution image.

    Detection: every local maximum of the image smoothed over 1 pixel that
    stands above the lowest value within `min_distance` is a candidate (the
    highest of any two closer than `min_distance` kept); all candidates are
    fitted jointly; a candidate is a column when its matched-filter height
    (:func:`column_significance`, neighbours removed) exceeds `threshold`,
    or `threshold_sigmas` standard errors from the noise model
    (:func:`noise_variance`); the columns are then refitted without the
    rejected candidates. Columns centred within one column width of the
    image edge are dropped (cut by the edge, their cross-section cannot be
    measured). Neither step looks at the image's overall spread,
    so a field filled with columns and one with a wide vacuum margin get
    the same threshold.

    Parameters
    ----------
    image : ndarray (ny, nx)
        HAADF counts (or intensities).
    pixel_size : float
        Angstrom.
    min_distance : float, default 1.0
        Smallest column separation, Angstrom.
    threshold : float, optional
        Smallest column height above the background, image units (counts
        per pixel); replaces `threshold_sigmas` when given.
    threshold_sigmas : float, default 5
        Smallest column height in standard errors of the noise.
    noise : {"auto", "poisson", "fit"} or float, default "auto"
        Noise model, see :func:`noise_variance` (``"auto"``: Poisson for
        integer counts, else learnt from the fit residual).
    radius : int, optional
        Box half-width in pixels of the joint refinement, default the minimum
        distance (neighbours are subtracted before each column is refitted);
        the first fit uses half of it.
    sigma : float, optional
        Starting width in pixels; default a quarter of the minimum distance.
    refine : int, default 3
        Joint refinement sweeps (each column fitted with its neighbours
        removed); a common background is re-estimated after each sweep.
    positions : array (n, 2), optional
        Known column positions (pixels); skips detection.

    Returns
    -------
    Peaks
        The SCS of each column is :attr:`~chemtomo.atomic.fit.Peaks.volume`
        over the dose (see :func:`column_cross_sections`).
    """
    img = check_image(image, (2,), "image")
    if pixel_size <= 0 or min_distance <= 0:
        raise ChemtomoError("pixel_size and min_distance must be positive, in Angstrom")
    if threshold is not None and not threshold > 0:
        raise ChemtomoError(f"threshold must be a positive height in image units, got {threshold}")
    if not threshold_sigmas > 0:
        raise ChemtomoError(f"threshold_sigmas must be positive, got {threshold_sigmas}")
    dmin = min_distance / pixel_size
    radius = radius if radius is not None else max(2, int(np.ceil(dmin)))
    sigma0 = sigma if sigma is not None else max(dmin / 4, 0.8)
    bg = float(np.percentile(img, 5))
    detect = positions is None
    if detect:
        sm = ndimage.gaussian_filter(img, 1.0)
        low = ndimage.minimum_filter(sm, size=2 * int(np.ceil(dmin)) + 1)
        cand = local_maxima(sm, -np.inf)
        cand = cand[sm[tuple(cand.T)] > low[tuple(cand.T)]]
        if not len(cand):
            raise ChemtomoError("the image has no local maximum; check that it shows atomic columns")
        positions = cand[suppress(cand, sm[tuple(cand.T)], dmin)]
    peaks = fit_gaussians(img - bg, positions, radius=max(2, int(round(dmin / 2))), sigma=sigma0, background=False)
    peaks, bg = _refine_columns(img, peaks, bg, radius, refine)
    if detect:
        var = noise_variance(img, bg + render_peaks(img.shape, peaks), noise=noise)
        # rounds: each column is tested with the columns accepted so far removed, so that a flat background
        # taken up by overlapping candidates cannot make itself significant
        keep = np.zeros(len(peaks), bool)
        width = None
        for _ in range(20):
            amp, err = column_significance(img - bg, peaks, var, sigma=width, removed=keep)
            new = amp > threshold if threshold is not None else amp > threshold_sigmas * err
            if not new.any() or (new == keep).all():
                break
            keep = new
            width = np.median(peaks.sigma[keep], axis=0)
        if keep.any():
            # a column centred within one width of the edge is cut by it: its cross-section is not measurable
            edge = np.array(img.shape) - 0.5 - width
            keep &= np.all((peaks.positions >= width - 0.5) & (peaks.positions <= edge), axis=1)
        if not keep.any():
            what = f"{threshold:g} (image units)" if threshold is not None else f"{threshold_sigmas:g} noise sigmas"
            raise ChemtomoError(f"no column above the threshold of {what}; lower the threshold or check the image")
        peaks, bg = _refine_columns(img, peaks.take(keep), bg, radius, refine)
    peaks = peaks.take(suppress(peaks.positions, peaks.height, dmin))
    return Peaks(peaks.positions, peaks.height, peaks.sigma, np.full(len(peaks), bg), peaks.rfactor)


def _refine_columns(img, peaks: Peaks, bg: float, radius: int, sweeps: int) -> tuple[Peaks, float]:
    """Joint refinement sweeps, the common background re-estimated after each from the residual's median."""
    for _ in range(sweeps):
        peaks = refine_jointly(img - bg, peaks, radius=radius, background=False)
        bg += float(np.median(img - bg - render_peaks(img.shape, peaks)))
    return peaks, bg


def column_cross_sections(peaks: Peaks, *, dose: float | None = None) -> np.ndarray:
    """SCS of each fitted column: its Gaussian's volume (counts) over the dose (e/A^2), in A^2; counts without dose.

    The image sums ``dose * SCS`` counts over a column (the probe visits
    ``dose * pixel_size**2`` electrons per pixel), so the pixel size cancels.
    """
    vol = peaks.volume
    return vol / dose if dose else vol


def count_atoms(scs, *, max_components: int = 30, library=None, criterion: str = "icl") -> tuple[np.ndarray, Mixture]:
    """Number of atoms in each column from its scattering cross-section.

    Parameters
    ----------
    scs : array (n,)
        Cross-sections of the columns (any consistent unit).
    max_components : int, default 30
        Largest number of mixture components tried.
    library : array, optional
        Expected SCS of a column of ``i`` atoms at index ``i`` (e.g. from image
        simulations, same unit as `scs`). Each component is labelled with the
        library count nearest its mean. Without a library the components are
        taken as consecutive counts (no missing thickness) from
        ``n_min = round(mean_0 / (mean_1 - mean_0))``, which assumes the SCS
        grows about linearly over the thinnest columns; channelling makes it
        sublinear further on, so give a library from image simulations when
        the thinnest columns hold more than two or three atoms.
    criterion : {"icl", "bic"}, default "icl"

    Returns
    -------
    counts : int array (n,)
    mixture : Mixture
        The selected equal-width mixture.
    """
    x = np.asarray(scs, float).ravel()
    if x.size < 4 or not np.isfinite(x).all():
        raise ChemtomoError("count_atoms needs at least 4 finite cross-sections")
    ks = range(1, min(max_components, x.size // 2) + 1)
    mix = select_mixture(x, ks, criterion=criterion, equal_variance=True, init="linspace")
    comp = mix.predict(x)
    if library is not None:
        lib = np.asarray(library, float)
        labels = np.argmin(np.abs(mix.means[:, None] - lib[None, :]), axis=1)
    else:
        labels = np.arange(len(mix.means)) + _first_count(mix.means)
    return labels[comp], mix


def _first_count(means: np.ndarray) -> int:
    """Atoms in the lowest component: its mean over the first step between components (linear at the thin end)."""
    step = means[1] - means[0] if len(means) > 1 else means[0]
    return max(1, int(round(means[0] / step)))


def lensing_cross_section(sequence, pure_scs: dict) -> float:
    """SCS of a mixed column from the species of its atoms, entrance surface first.

    Each atom contributes the increment its species' pure column gains at
    that depth, ``S_Z(k) - S_Z(k - 1)`` for the k-th atom: the probe's
    channelling (lensing) by the atoms above is taken from the pure columns.
    `pure_scs` maps each species to its pure-column SCS for 0, 1, 2, ... atoms.
    """
    total = 0.0
    for k, z in enumerate(sequence, start=1):
        table = pure_scs[z]
        if k >= len(table):
            raise ChemtomoError(f"pure_scs[{z!r}] covers {len(table) - 1} atoms; the column has {len(sequence)}")
        total += table[k] - table[k - 1]
    return float(total)


def _core_shell_sequence(length: int, n_core: int, core: str, shell: str) -> list:
    top = (length - n_core) // 2
    return [shell] * top + [core] * n_core + [shell] * (length - n_core - top)


def unscramble_columns(scs, lengths, pure_scs: dict, *, core: str = "Au", shell: str = "Ag") -> np.ndarray:
    """Number of core atoms in each mixed column of known length (core-shell arrangement along the beam).

    For a column of ``L`` atoms every split ``n_core = 0..L`` is tried, with
    the core atoms in the middle and the shell atoms shared above and below
    (prior knowledge of a core-shell particle); the split whose
    :func:`lensing_cross_section` is closest to the measured SCS wins.
    """
    scs = np.asarray(scs, float).ravel()
    lengths = np.asarray(lengths, int).ravel()
    if scs.shape != lengths.shape:
        raise ChemtomoError(f"{scs.size} cross-sections but {lengths.size} column lengths")
    cache: dict[int, np.ndarray] = {}
    out = np.empty(len(scs), int)
    for i, (s, n) in enumerate(zip(scs, lengths)):
        if n not in cache:
            cache[n] = np.array([lensing_cross_section(_core_shell_sequence(n, m, core, shell), pure_scs)
                                 for m in range(n + 1)])
        out[i] = int(np.argmin(np.abs(cache[n] - s)))
    return out
