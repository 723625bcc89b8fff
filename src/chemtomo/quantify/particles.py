"""One table row per particle: size, composition (whole, core, shell), alloying index, shell thickness.

:func:`quantify_volumes` runs the whole chain on a set of element volumes
(the output of ``chemtomo reconstruct``):

1. segmentation (:func:`~chemtomo.quantify.segment.segment_particles`) of a
   reference volume: ``reference`` if given (e.g. "HAADF"), else the sum of the
   element volumes each scaled to its 99.9th percentile. The default is the
   element sum: it is about one in every pure phase, while HAADF is brighter in
   a heavy core than in its shell, and Otsu's level on HAADF then found the
   core alone (Au@Ag, HAADF 3:1);
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
"""

from __future__ import annotations

import csv
import io

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError
from .composition import _element, composition
from .haadf import alloying_index
from .haadf import otsu_threshold
from .profiles import interface_width, radial_profile
from .segment import particles_from_labels, segment_particles
from .shell import shell_thickness


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


def quantify_volumes(volumes: dict, *, voxel_size: float = 1.0, reference: str | None = None,
                     core: str | None = None, counts: bool = False, k_factors: dict | None = None,
                     coverage_threshold: float | None = None, threshold: float | None = None,
                     min_size: int = 27, min_distance: int = 3, labels=None, core_rule: str = "share") -> dict:
    """Segment the particles of a volume set and measure each one.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
        Element (or line) volumes, optionally with the `reference` volume.
    voxel_size : float, default 1.0
        Voxel edge in nm; sizes and thicknesses are returned in nm.
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
        Shell thickness (nm) above which the core counts as covered; default one voxel.
    threshold, min_size, min_distance
        Segmentation parameters (:func:`~chemtomo.quantify.segment.segment_particles`).
    labels : int array (ny, nz, nx), optional
        Use these particles instead of segmenting (e.g. the full data's, when
        quantifying resampled data); `threshold` (default Otsu's level of the
        reference) still sets the outer surface for the shell thickness.

    Returns
    -------
    dict
        ``{"rows": [one dict per particle], "threshold": level, "elements": [...],
        "thickness": {particle: ShellThickness}, "profiles": {particle: radial profiles},
        "labels": label volume}``.
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
    if not voxel_size > 0:
        raise ChemtomoError(f"voxel_size must be positive (nm), got {voxel_size!r}")
    ref = _reference(volumes, reference, elements)
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
    for k in range(1, parts.n + 1):
        m = parts.mask(k)
        n_vox = int(m.sum())
        row = {"particle": k, "voxels": n_vox, "volume_nm3": n_vox * voxel_size**3,
               "diameter_nm": (6 * n_vox / np.pi) ** (1 / 3) * voxel_size,
               "touches_border": bool(parts.touches_border[k - 1])}
        comp = composition(elements, m, counts=counts, k_factors=k_factors)
        row.update({f"at_{e}": x for e, x in comp["atomic"].items()})
        row.update({f"wt_{e}": x for e, x in comp["weight"].items()})
        if len(elements) == 2:
            first = next(iter(clipped.values()))
            share = np.divide(first, total, out=np.zeros_like(total), where=total > 0)
            row["alloying_index"] = alloying_index(share, m)
        radii, prof = radial_profile(clipped, m, voxel_size=voxel_size)
        profiles[k] = {"radius_nm": radii.tolist(), **{e: p.tolist() for e, p in prof.items()}}
        if core is not None:
            near = ndimage.binary_dilation(m, iterations=2)
            share, level = core_field[0], core_field[1]
            if core_rule == "otsu":
                level = otsu_threshold(share[near])
            share = np.where(near, share, 0.0)
            core_m = _largest(m & (share >= level))  # noise specks of the core element are not the core
            # the core ends where the particle ends: a core reaching the surface has no shell there (thickness 0)
            share = np.where(ndimage.binary_dilation(core_m, iterations=2) & m, share, 0.0)
            if core_m.any() and (m & ~core_m).any():
                try:  # the core element falls from its core level to zero across the core/shell interface
                    row["interface_width_nm"] = interface_width(radii, np.nan_to_num(prof[core_field[2]]))
                except ChemtomoError as err:
                    row["interface_error"] = str(err)
            for region, rm in (("core", core_m), ("shell", m & ~core_m)):
                row[f"{region}_voxels"] = int(rm.sum())
                if rm.any():
                    rc = composition(elements, rm, counts=counts, k_factors=k_factors)
                    row.update({f"{region}_at_{e}": x for e, x in rc["atomic"].items()})
            if core_m.any():
                field = np.where(parts.labels == k, ref, np.minimum(ref, parts.threshold * 0.5))
                try:
                    st = shell_thickness(share, field, core_level=level, particle_level=parts.threshold,
                                         voxel_size=voxel_size)
                    s = st.summary(cover)
                    thick[k] = st
                    row.update({"shell_mean_nm": s["mean"], "shell_std_nm": s["std"], "shell_min_nm": s["min"],
                                "shell_p05_nm": s["p05"], "shell_asymmetry": s["asymmetry"],
                                "shell_max_nm": s["max"], "coverage": s["coverage"],
                                "coverage_threshold_nm": cover, "thin_direction_yzx": s["thin_direction"],
                                "shell_unknown_fraction": s["unknown_fraction"]})
                except ChemtomoError as err:
                    row["shell_error"] = str(err)
        rows.append(row)
    return {"rows": rows, "threshold": parts.threshold, "elements": list(elements), "thickness": thick,
            "labels": parts.labels, "profiles": profiles}


def rows_to_csv(rows: list[dict]) -> str:
    """CSV text of the rows (union of their keys, in first-seen order; empty where a row has no value)."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (" ".join(f"{x:.4g}" for x in v) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def quantify_run(run_dir, out_dir=None, *, core: str | None = None, reference: str | None = "auto",
                 counts: str | bool = "auto", coverage_threshold: float | None = None, series=None,
                 n_splits: int = 0, rng=0, **options) -> dict:
    """Quantify a folder written by ``chemtomo reconstruct``; write the table, ``quantify.json`` and a figure.

    Writes ``particles.csv``, ``particles.parquet`` (one row per particle),
    ``quantify.json`` (rows and parameters) and ``particles.png`` (histograms
    and size against composition), all atomically.

    Parameters
    ----------
    run_dir : path
        Folder with ``chemtomo.json`` and one volume per signal.
    out_dir : path, optional
        Where to write; default ``run_dir/quantify``.
    core : str, optional
        Core element of core-shell particles.
    reference : str or None, default "auto"
        Volume to segment: "auto" (or None) segments the element sum (see
        :func:`quantify_volumes`); a name such as "HAADF" segments that volume.
    counts : bool or "auto", default "auto"
        Element volumes hold counts; "auto": True unless the provenance says the
        volumes were calibrated to concentrations.
    coverage_threshold : float, optional
        nm; see :func:`quantify_volumes`.
    series : TiltSeries, optional
        The tilt series the run was reconstructed from; with `n_splits` > 0 every
        number gets a standard deviation by count splitting
        (:func:`~chemtomo.quantify.uncertainty.split_uncertainty`), the method
        and options taken from the run's provenance.
    n_splits : int, default 0
        Count splits (two reconstructions each); 0: no uncertainties.
    rng : int, default 0
        Random source of the splits.
    **options
        More keywords of :func:`quantify_volumes`.

    Returns
    -------
    dict
        The :func:`quantify_volumes` result, plus the paths written.
    """
    import json
    from pathlib import Path

    from ..io.write import atomic_write, read_volume_set, to_json

    vs = read_volume_set(run_dir)
    vols = dict(vs.volumes)
    if reference == "auto":
        reference = None
    if counts == "auto":
        counts = not bool(vs.provenance.get("concentration", False))
    if counts and "k_factors" not in options:
        # counts per element without line names: equal k-factors unless the user gives some
        options["k_factors"] = {n: 1.0 for n in vols if n != reference}
    qopts = dict(reference=reference, core=core, counts=bool(counts), coverage_threshold=coverage_threshold, **options)
    res = quantify_volumes(vols, voxel_size=vs.voxel_size, **qopts)
    if n_splits:
        from .uncertainty import split_uncertainty

        if series is None:
            raise ChemtomoError("uncertainties need the tilt series the run was reconstructed from; give it")
        prov = vs.provenance
        methods = {r.get("method") for r in prov.get("signals", {}).values()}
        method = prov.get("method") or (methods.pop() if len(methods) == 1 else "auto")
        sds = split_uncertainty(series, method, res, n_splits=n_splits, rng=rng, iterations=prov.get("iterations"),
                                thickness=vols[next(iter(vols))].shape[1], options=prov.get("options") or None,
                                quantify_options=qopts)
        for row, sd in zip(res["rows"], sds):
            row.update(sd)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "quantify"
    out.mkdir(parents=True, exist_ok=True)
    from .batch import batch_figure, write_table

    paths = write_table(res["rows"], out / "particles")
    summary = {"run_dir": str(run_dir), "voxel_size_nm": vs.voxel_size, "reference": reference, "core": core,
               "counts": bool(counts), "k_factors": options.get("k_factors"), "threshold": res["threshold"],
               "elements": res["elements"], "uncertainty": f"count splitting, {n_splits} splits" if n_splits else None,
               "particles": res["rows"], "radial_profiles": res["profiles"]}
    with atomic_write(out / "quantify.json") as tmp:
        tmp.write_text(json.dumps(to_json(summary), indent=1), encoding="utf-8")
    paths += [out / "quantify.json", batch_figure(res["rows"], out / "particles.png")]
    res["paths"] = paths
    return res
