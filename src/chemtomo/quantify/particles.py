"""One table row per particle: size, composition (whole, core, shell), alloying index, shell thickness.

:func:`quantify_volumes` runs the whole chain on a set of element volumes
(the output of ``chemtomo reconstruct``):

1. segmentation (:func:`~chemtomo.quantify.segment.segment_particles`) of a
   reference volume: ``reference`` if given (e.g. "HAADF"), else the sum of the
   element volumes each scaled to its 99.9th percentile. The default is the
   element sum: it is about one in every pure phase, while HAADF is brighter in
   a heavy core than in its shell, and Otsu's level on HAADF then found the
   core alone (Au@Ag, HAADF 3:1). The reference is smoothed by a Gaussian of
   ``smooth`` voxels (default 1) before the threshold, and objects far smaller
   than the largest particle are dropped (``min_size=None``): on noisy
   reconstructions the noise otherwise forms hundreds of small "particles"
   (docs/quantify.md);
2. per particle, composition of the whole particle and, with ``core=ELEMENT``,
   of its core (voxels where that element makes up at least half of the
   local total, or with ``core_rule="otsu"`` where its volume exceeds its Otsu
   level) and shell (the rest);
3. with a core element, the shell thickness over the core's surface
   (:func:`~chemtomo.quantify.shell.shell_thickness`): core field = the core
   element's share, outer surface = the reference at the segmentation level;
4. with exactly two elements, the alloying index of the first element's share;
5. radial profiles of every element around the particle's centre of mass and,
   with a core element, the 10-90 % width of its fall across the interface.

Particles touching the volume border are kept but flagged (``touches_border``):
their size, composition and thickness describe only the part inside.

Lengths are in nm (columns ``*_nm``, volume ``volume_nm3``) with a voxel size, and
in voxels (``*_vox``; the volume is the ``voxels`` column) with ``voxel_size=None``,
when the pixel size is not known.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError
from .composition import _element, composition
from .haadf import alloying_index
from .haadf import otsu_threshold
from .profiles import interface_width, radial_profile
from .segment import auto_min_size, particles_from_labels, segment_particles
from .shell import shell_thickness


#: voxels added on every side of a particle's bounding box for its measurements (dilations of 2 + 2
#: voxels, the shell rays' end beyond the particle's surface)
BOX_MARGIN = 6


def _grown(box, shape, margin=BOX_MARGIN):
    """The slices of `box` grown by `margin` voxels on every side, within `shape`."""
    return tuple(slice(max(b.start - margin, 0), min(b.stop + margin, n)) for b, n in zip(box, shape))


def _composition(row: dict, prefix: str, elements: dict, mask, counts, k_factors) -> dict | None:
    """:func:`composition` of `mask`, or None with ``row[prefix + "composition_error"]`` saying why when the region
    holds no positive values (a particle of noise); other errors (bad k-factors) stop the run."""
    try:
        return composition(elements, mask, counts=counts, k_factors=k_factors)
    except ChemtomoError as err:
        if "not positive" not in str(err):
            raise
        row[f"{prefix}composition_error"] = str(err)
        return None


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of `mask`, cavities filled (empty stays empty)."""
    labels, n = ndimage.label(mask)
    if n > 1:
        mask = labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    return ndimage.binary_fill_holes(mask)


def _reference(volumes, reference, elements):
    if reference is not None:
        if reference not in volumes:
            raise ChemtomoError(f"reference {reference!r} is not among the volumes ({', '.join(volumes)})")
        return np.asarray(volumes[reference], np.float64)
    total = 0.0
    for name, v in elements.items():
        a = np.asarray(v, np.float64)
        top = float(np.percentile(a, 99.9))
        total = total + (a / top if top > 0 else a)
    return total


#: the pixel size chemtomo records when no input file carries one (:func:`chemtomo.io.read_tilt_series`)
UNKNOWN_PIXEL_SIZE = 1.0


def run_voxel_size(info: dict) -> float | None:
    """The voxel edge in nm of a run's ``chemtomo.json`` record, or None when no pixel size is known.

    A run records ``voxel_size`` (nm) and ``provenance.pixel_size_nm``; input files that carry no pixel
    size give 1.0 (:data:`UNKNOWN_PIXEL_SIZE`), so a missing, null or 1.0 value means "not known" (a
    true 1 nm voxel loses nothing: its lengths in voxels are the same numbers; ``voxel_size=`` of
    :func:`chemtomo.pipeline.quantify.quantify_run` and ``chemtomo quantify --pixel-size`` state it).
    """
    size = info.get("voxel_size")
    recorded = (info.get("provenance") or {}).get("pixel_size_nm", size)
    if size is None or recorded is None or float(size) == UNKNOWN_PIXEL_SIZE:
        return None
    return float(size)


def length_unit(voxel_size: float | None) -> str:
    """The suffix of the length columns: ``"nm"`` with a voxel size, ``"vox"`` (voxels) without one."""
    return "nm" if voxel_size is not None else "vox"


def quantify_volumes(volumes: dict, *, voxel_size: float | None = 1.0, reference: str | None = None,
                     core: str | None = None, counts: bool = False, k_factors: dict | None = None,
                     coverage_threshold: float | None = None, threshold: float | None = None,
                     min_size: int | None = None, min_distance: int | None = None, labels=None,
                     core_rule: str = "share",
                     smooth: float = 1.0, progress=None) -> dict:
    """Segment the particles of a volume set and measure each one.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
        Element (or line) volumes, optionally with the `reference` volume.
    voxel_size : float or None, default 1.0
        Voxel edge in nm; sizes and thicknesses are returned in nm (``*_nm`` columns). None: the
        pixel size is not known, lengths are in voxels (``*_vox`` columns, no ``volume_nm3``).
    reference : str, optional
        Name of the volume to segment (e.g. "HAADF"); it is not an element.
        Default: the element sum (module notes). A "HAADF" volume is never an element.
    core : str, optional
        Element forming the core of core-shell particles (e.g. "Au"); turns on
        core/shell composition and shell thickness.
    core_rule : {"share", "otsu"}, default "share"
        The core: voxels where the core element makes up at least half of the
        local total (needs calibrated volumes), or where its own volume exceeds
        Otsu's level near the particle (any scaling: real maps with unknown
        k-factors). Both on volumes smoothed by a 1-voxel Gaussian.
    counts : bool, default False
        Element volumes hold counts (Cliff-Lorimer k-factors, see
        :func:`~chemtomo.quantify.composition.composition`).
    k_factors : dict, optional
        Cliff-Lorimer k-factors for ``counts=True``.
    coverage_threshold : float, optional
        Shell thickness (nm, or voxels without a voxel size) above which the core counts as covered;
        default one voxel.
    smooth : float, default 1.0
        Gaussian sigma in voxels applied to the reference before the threshold (segmentation and the
        outer surface of the shell thickness; compositions use the volumes as given); 0: none.
    min_size : int or None, default None
        Smallest particle in voxels; None: 27, or a twentieth of the largest particle's voxels if more
        (:func:`~chemtomo.quantify.segment.auto_min_size`).
    threshold, min_distance
        Segmentation parameters (:func:`~chemtomo.quantify.segment.segment_particles`); `threshold`
        is a level of the smoothed reference.
    labels : int array (ny, nz, nx), optional
        Use these particles instead of segmenting (e.g. the full data's, when
        quantifying resampled data); `threshold` (default Otsu's level of the
        reference) still sets the outer surface for the shell thickness.
    progress : callable(name, done, total), optional
        Called as ``("particles", measured, particles)`` after each particle.

    Returns
    -------
    dict
        ``{"rows": [one dict per particle], "threshold": level, "elements": [...],
        "thickness": {particle: ShellThickness}, "profiles": {particle: radial profiles},
        "labels": label volume, "length_unit": "nm" or "vox", "smooth": sigma (voxels),
        "min_size": the smallest particle size used (voxels; None with `labels`)}``.
    """
    if not volumes:
        raise ChemtomoError("quantify needs at least one volume")
    shapes = {np.shape(v) for v in volumes.values()}
    if len(shapes) > 1:
        raise ShapeError(f"the volumes differ in shape ({sorted(shapes)}); quantify needs them on one grid")
    elements = {n: np.asarray(v, np.float64) for n, v in volumes.items() if n not in (reference, "HAADF")}
    if not elements:
        raise ChemtomoError("quantify needs at least one element volume besides the reference")
    if core is not None and core not in {_element(n) for n in elements}:
        raise ChemtomoError(f"core element {core!r} has no volume; the elements are {', '.join(elements)}")
    unit = length_unit(voxel_size)
    if voxel_size is None:
        voxel_size = 1.0  # lengths in voxels
    elif not (isinstance(voxel_size, (int, float, np.integer, np.floating)) and np.isfinite(voxel_size)
              and voxel_size > 0):
        raise ChemtomoError(f"voxel_size must be positive (nm) or None (unknown: lengths in voxels), got {voxel_size!r}")
    if not (isinstance(smooth, (int, float, np.integer, np.floating)) and np.isfinite(smooth) and smooth >= 0):
        raise ChemtomoError(f"smooth must be a Gaussian sigma >= 0 in voxels (0: none), got {smooth!r}")
    sigma = float(smooth)
    ref = _reference(volumes, reference, elements)
    if sigma > 0:
        ref = ndimage.gaussian_filter(ref, sigma)
    if labels is None:
        parts = segment_particles(ref, threshold=threshold, min_size=min_size, min_distance=min_distance)
    else:
        if np.shape(labels) != ref.shape:
            raise ShapeError(f"labels have shape {np.shape(labels)} but the volumes {ref.shape}")
        parts = particles_from_labels(labels, otsu_threshold(ref) if threshold is None else threshold)
    cover = voxel_size if coverage_threshold is None else float(coverage_threshold)
    clipped = {n: np.clip(v, 0, None) for n, v in elements.items()}
    total = sum(clipped.values())
    if core_rule not in ("share", "otsu"):
        raise ChemtomoError(f"core_rule must be 'share' or 'otsu', got {core_rule!r}")
    core_field = None
    if core is not None:
        name = next(n for n in elements if _element(n) == core)
        smooth = ndimage.gaussian_filter(clipped[name], 1.0)
        if core_rule == "share":
            smooth_total = ndimage.gaussian_filter(total, 1.0)
            smooth = np.divide(smooth, smooth_total, out=np.zeros_like(total),
                               where=smooth_total > 1e-12 * max(float(total.max()), 1e-300))
        core_field = (smooth, 0.5, name)
    rows, thick, profiles = [], {}, {}
    boxes = ndimage.find_objects(parts.labels)
    for k in range(1, parts.n + 1):
        # every particle is measured in its bounding box grown by BOX_MARGIN: the work per particle scales
        # with its size, not the volume's (428 noise particles of a 256^3 volume took minutes)
        box = _grown(boxes[k - 1], parts.labels.shape)
        origin = np.array([b.start for b in box], dtype=np.float64)
        labels_k = parts.labels[box]
        m = labels_k == k
        el_k = {n: v[box] for n, v in elements.items()}
        cl_k = {n: v[box] for n, v in clipped.items()}
        total_k = total[box]
        n_vox = int(m.sum())
        row = {"particle": k, "voxels": n_vox} | ({"volume_nm3": n_vox * voxel_size**3} if unit == "nm" else {})
        row.update({f"diameter_{unit}": (6 * n_vox / np.pi) ** (1 / 3) * voxel_size,
                    "touches_border": bool(parts.touches_border[k - 1])})
        comp = _composition(row, "", el_k, m, counts, k_factors)
        if comp is not None:
            row.update({f"at_{e}": x for e, x in comp["atomic"].items()})
            row.update({f"wt_{e}": x for e, x in comp["weight"].items()})
        if len(elements) == 2:
            first = next(iter(cl_k.values()))
            share = np.divide(first, total_k, out=np.zeros_like(total_k), where=total_k > 0)
            row["alloying_index"] = alloying_index(share, m)
        radii, prof = radial_profile(cl_k, m, voxel_size=voxel_size)
        profiles[k] = {f"radius_{unit}": radii.tolist(), **{e: p.tolist() for e, p in prof.items()}}
        if core is not None:
            near = ndimage.binary_dilation(m, iterations=2)
            share, level = core_field[0][box], core_field[1]
            if core_rule == "otsu":
                level = otsu_threshold(share[near])
            share = np.where(near, share, 0.0)
            core_m = _largest(m & (share >= level))  # noise specks of the core element are not the core
            # the core ends where the particle ends: a core reaching the surface has no shell there (thickness 0)
            share = np.where(ndimage.binary_dilation(core_m, iterations=2) & m, share, 0.0)
            if core_m.any() and (m & ~core_m).any():
                try:  # the core element falls from its core level to zero across the core/shell interface
                    row[f"interface_width_{unit}"] = interface_width(radii, np.nan_to_num(prof[core_field[2]]))
                except ChemtomoError as err:
                    row["interface_error"] = str(err)
            for region, rm in (("core", core_m), ("shell", m & ~core_m)):
                row[f"{region}_voxels"] = int(rm.sum())
                rc = _composition(row, f"{region}_", el_k, rm, counts, k_factors) if rm.any() else None
                if rc is not None:
                    row.update({f"{region}_at_{e}": x for e, x in rc["atomic"].items()})
            if core_m.any():
                ref_k = ref[box]
                field = np.where(m, ref_k, np.minimum(ref_k, parts.threshold * 0.5))
                try:
                    st = shell_thickness(share, field, core_level=level, particle_level=parts.threshold,
                                         voxel_size=voxel_size)
                    st = replace(st, points=st.points + origin, centre=st.centre + origin)  # the volume's voxels
                    s = st.summary(cover)
                    thick[k] = st
                    row.update({f"shell_mean_{unit}": s["mean"], f"shell_std_{unit}": s["std"],
                                f"shell_min_{unit}": s["min"], f"shell_p05_{unit}": s["p05"],
                                "shell_asymmetry": s["asymmetry"], f"shell_max_{unit}": s["max"],
                                "coverage": s["coverage"], f"coverage_threshold_{unit}": cover,
                                "thin_direction_yzx": s["thin_direction"],
                                "shell_unknown_fraction": s["unknown_fraction"]})
                except ChemtomoError as err:
                    row["shell_error"] = str(err)
        rows.append(row)
        if progress is not None:
            progress("particles", k, parts.n)
    return {"rows": rows, "threshold": parts.threshold, "elements": list(elements), "thickness": thick,
            "labels": parts.labels, "profiles": profiles, "length_unit": unit, "smooth": sigma,
            "min_size": (None if labels is not None else int(min_size) if min_size is not None
                         else auto_min_size(int(parts.sizes[0])))}
