"""Command-line interface: ``chemtomo reconstruct | denoise | methods | simulate | demo`` and more.

Bad input ends with one line on stderr saying what is wrong and how to fix
it, and exit status 2; no traceback.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .core.errors import ChemtomoError
from .io.outputs import check_output_file, output_folder, safe_name

app = typer.Typer(add_completion=False, no_args_is_help=True, help="3D elemental maps from electron tomography.")
err = Console(stderr=True, soft_wrap=True)  # one error, one line
out = Console()
#: the explicit ``--threads`` of the running command (None: the default, :func:`chemtomo.core.threads.default_threads`)
_threads_given: int | None = None


@app.callback()
def _threads(
    threads: Optional[int] = typer.Option(
        None, "--threads", help="CPU threads, 1 to the cores available (default: the cores not busy now, or "
        "OMP_NUM_THREADS if set). With `batch` and `reconstruct --slab`: threads per worker (default 1)."),
):
    """3D elemental maps from electron tomography."""
    global _threads_given
    from .core.threads import check_threads, default_threads, set_threads

    _threads_given = None if threads is None else check_threads(threads)
    set_threads(_threads_given or default_threads())


def _worker_threads(workers: int, scheduler: str | None) -> int:
    """Threads per Dask worker: 1 unless --threads asks; a local cluster may not use more threads than cores."""
    from .core.threads import available_cores

    n = _threads_given or 1
    if scheduler is None and n > 1 and workers * n > available_cores():
        raise ChemtomoError(f"--workers {workers} x --threads {n} = {workers * n} threads on {available_cores()} "
                            "cores would oversubscribe them; lower --workers or --threads")
    return n


def _pairs(values: List[str], option: str) -> dict[str, str]:
    pairs = {}
    for v in values:
        if "=" not in v:
            raise ChemtomoError(f"{option} {v!r} must look like NAME=PATH, e.g. {option} HAADF=haadf.mrc")
        name, path = v.split("=", 1)
        if not name or not path:
            raise ChemtomoError(f"{option} {v!r} must look like NAME=PATH, e.g. {option} HAADF=haadf.mrc")
        if name in pairs:
            raise ChemtomoError(f"{option} names {name!r} twice; give each signal once")
        pairs[name] = path
    return pairs


def _options(values: List[str]) -> dict:
    """``KEY=VALUE`` strings to a dict; numbers become floats or ints, ``true``/``false`` booleans."""
    opts = {}
    for key, value in _pairs(values, "--option").items():
        if value.lower() in ("true", "false"):
            opts[key] = value.lower() == "true"
            continue
        for cast in (int, float):
            try:
                opts[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            opts[key] = value
    return opts


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False, disable=not err.is_terminal,
    )


def _bar_progress(bar):
    """A ``progress(name, done, total)`` callable that draws one bar per name."""
    tasks = {}

    def progress(name, i, total):
        if name not in tasks:
            tasks[name] = bar.add_task(f"{name}", total=total)
        bar.update(tasks[name], completed=i, total=total)

    return progress


def _input_paths(*groups) -> list[Path]:
    """The file paths in ``NAME=PATH`` / ``PATH`` options (for the output checks: inputs are never overwritten)."""
    paths = []
    for group in groups:
        for v in group or []:
            text = str(v)
            paths.append(Path(text.split("=", 1)[1] if "=" in text and not Path(text).exists() else text))
    return paths


def _read_series(signal: List[str], angles: List[str] | None, pixel_size: float | None):
    """The TiltSeries of ``--signal NAME=PATH`` options and ``--angles FILE`` or ``NAME=FILE`` ones."""
    from .core.names import parse_signal_name
    from .io import read_tilt_series

    sig = _pairs(signal, "--signal")
    for name in sig:
        parse_signal_name(name)
    ang: object = None
    if angles:
        named = [a for a in angles if "=" in a and not Path(a).exists()]
        if named and len(named) != len(angles):
            raise ChemtomoError("give --angles either once as FILE for all signals or as NAME=FILE for each signal, not both")
        ang = _pairs(angles, "--angles") if named else (angles[0] if len(angles) == 1 else None)
        if ang is None:
            raise ChemtomoError("--angles FILE was given several times; use NAME=FILE to give each signal its own angles")
        if isinstance(ang, dict):
            unknown = set(ang) - set(sig)
            if unknown:
                raise ChemtomoError(f"--angles names {', '.join(sorted(unknown))} but no --signal has that name")
    series = read_tilt_series(sig, ang, pixel_size=pixel_size)
    _print_notes(series.metadata.get("notes", {}))
    return series


def _print_notes(notes: dict) -> None:
    """The readers' notes per signal (what they fixed or could not find), one line each."""
    for name, lines in notes.items():
        for note in lines:
            out.print(f"note: {name}: {note}", markup=False, highlight=False)


@app.command()
def reconstruct(
    signal: List[str] = typer.Option(..., "--signal", help="NAME=PATH of a tilt-series stack (n_tilts, ny, nu); repeat per signal."),
    angles: List[str] = typer.Option(
        None, "--angles", help="Text file with one angle (degrees) per line for all signals, or NAME=FILE per signal."
    ),
    method: str = typer.Option("auto", "--method", help="Reconstruction method (see `chemtomo methods`)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: NAME.mrc per signal and chemtomo.json."),
    iterations: Optional[int] = typer.Option(None, "--iterations", min=1, help="Iterations of iterative methods."),
    thickness: Optional[int] = typer.Option(None, "--thickness", min=1, help="Volume thickness nz in voxels (default nu)."),
    axis_offset: float = typer.Option(0.0, "--axis-offset", help="Tilt-axis position on the detector, pixels from centre."),
    formats: str = typer.Option("mrc", "--format", help="Comma-separated volume formats: mrc, tiff, zarr (OME-Zarr, with its scale), hspy (HyperSpy)."),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", help="Pixel size in nm (overrides the files)."),
    stop: Optional[str] = typer.Option(None, "--stop", help="Early stopping: none or discrepancy (Poisson noise level)."),
    option: List[str] = typer.Option(None, "--option", help="Method option KEY=VALUE, e.g. weight=2 or filter=hann; repeatable."),
    slab: Optional[int] = typer.Option(None, "--slab", min=1, help="Split into slabs of this many slices across Dask workers; writes DIR/volumes.zarr."),
    workers: int = typer.Option(2, "--workers", min=1, help="Local Dask workers for --slab."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address for --slab."),
    denoise_method: Optional[str] = typer.Option(None, "--denoise", help="Denoise each projection map of the EDX/EELS count signals first: gaussian, median, tv, bm3d, pca, unet or n2n."),
    denoise_option: List[str] = typer.Option(None, "--denoise-option", help="Denoiser option KEY=VALUE, e.g. sigma=2; repeatable."),
    denoise_signal: List[str] = typer.Option(None, "--denoise-signal", help="Signal to denoise (default: every count signal; HAADF only if named); repeatable."),
    views_synthesis: Optional[float] = typer.Option(None, "--views-synthesis", help="Fill unmeasured angles on a grid of this step (degrees) with views synthesized from a reconstruction refined by a U-Net trained on the measured views (after --denoise)."),
    views_range: Optional[str] = typer.Option(None, "--views-range", help="LO:HI angle range (degrees) to fill with --views-synthesis; beyond the measured range it fills part of the missing wedge."),
    views_minutes: float = typer.Option(1.0, "--views-minutes", help="Training time per signal for --views-synthesis (minutes)."),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="With --method auto: the candidates to score, comma-separated (METHOD, DENOISER+METHOD, guided-unet+METHOD with HAADF as the guide, sum-guided-unet+METHOD with the element maps' summed counts as the guide, or views+METHOD with synthesized views; any of them +haadf to share the HAADF volume out among the elements, or +sum the volume of their summed counts; e.g. tv,dtv,gaussian+sirt,n2n+mlem,unet+mlem+haadf)."),
    rank_only: bool = typer.Option(False, "--rank-only", help="With --method auto: score the candidates, print and save the ranking (DIR/auto.json), reconstruct nothing."),
    tilt_axis: str = typer.Option("auto", "--tilt-axis", help="Direction of the tilt axis in the images: y (along the rows' index, IMOD), x (along the columns' index: HyperSpy, etspy, tomviz; the images are transposed) or auto (measured on the data; transposed only when clear)."),
    handedness: str = typer.Option("chemtomo", "--handedness", help="chemtomo, or etspy (or tomviz, the same): the angles negated, so that the volume's z runs as in etspy's, ASTRA's and tomviz's volumes (with chemtomo's signs they are its z-mirror)."),
):
    """Reconstruct one volume per signal and write DIR/NAME.mrc plus DIR/chemtomo.json."""
    from .io import write_volume_set
    from .pipeline.recipe import Denoise, Outputs, Reconstruct, Views, settings
    from .pipeline.run import process

    if denoise_option and denoise_method is None:
        raise ChemtomoError("--denoise-option needs --denoise METHOD; add the denoiser or drop the option")
    if views_range is not None and views_synthesis is None:
        raise ChemtomoError("--views-range needs --views-synthesis STEP; add the step or drop the range")
    if slab is not None and (denoise_method is not None or views_synthesis is not None):
        raise ChemtomoError("--denoise and --views-synthesis do not combine with --slab; denoise each stack with "
                            "`chemtomo denoise` first")
    recon = settings(Reconstruct, {"iterations": "--iterations", "thickness": "--thickness", "stop": "--stop",
                                   "axis_offset": "--axis-offset", "options": "--option", "method": "--method",
                                   "candidates": "--candidates"},
                     method=method, iterations=iterations, thickness=thickness, axis_offset=axis_offset, stop=stop,
                     options=_options(option or []),
                     candidates=None if candidates is None else [c for c in candidates.split(",") if c.strip()])
    if rank_only and method != "auto":
        raise ChemtomoError("--rank-only ranks the candidates of --method auto; use it with --method auto")
    denoise_settings = None if denoise_method is None else settings(
        Denoise, {"method": "--denoise", "options": "--denoise-option"}, method=denoise_method,
        options=_options(denoise_option or []), signals=denoise_signal or None)
    views_settings = None if views_synthesis is None else settings(
        Views, {"step": "--views-synthesis", "range": "--views-range", "minutes": "--views-minutes"},
        step=views_synthesis, range=_angle_range(views_range), minutes=views_minutes, signals=denoise_signal or None)
    fmts = settings(Outputs, {"formats": "--format"},
                    formats=[f.strip().lower() for f in formats.split(",") if f.strip()]).formats
    inputs = _input_paths(signal, angles)
    if slab is not None:
        from .io.outputs import check_output_folder, lock
        from .pipeline.batch import reconstruct_slabs

        if recon.method == "auto":
            raise ChemtomoError("--slab needs a named --method (slabs are reconstructed independently); choose one "
                                "with --rank-only on the same data first")
        out_abs = check_output_folder(out_dir, inputs=inputs)
        series, _ = _oriented(_read_series(signal, angles, pixel_size), tilt_axis, handedness)
        with lock(out_abs):
            out_abs.mkdir(parents=True, exist_ok=True)
            info = reconstruct_slabs(series, recon, out_abs / "volumes.zarr", slab=slab, workers=workers,
                                     scheduler=scheduler, threads_per_worker=_worker_threads(workers, scheduler),
                                     log=out.print)
        out.print(f"{', '.join(info['arrays'])}: {info['computed']} slabs computed, {info['skipped']} skipped, "
                  f"{info['seconds']:.1f} s -> {out_dir / 'volumes.zarr'}")
        return
    with output_folder(out_dir, inputs=inputs) as stage:
        series, orientation = _oriented(_read_series(signal, angles, pixel_size), tilt_axis, handedness)
        if rank_only:
            import json

            from .io.write import to_json
            from .pipeline import auto

            choice = auto.select(series, thickness=thickness, axis_offset=axis_offset, iterations=iterations,
                                 candidates=recon.candidates, log=out.print)
            for line in auto.table(choice):
                out.print(line, markup=False, highlight=False)
            (stage / "auto.json").write_text(json.dumps(to_json(choice), indent=1))
        else:
            with _progress() as bar:
                vs = process(series, recon, denoise=denoise_settings, views=views_settings,
                             progress=_bar_progress(bar), log=lambda line: out.print(line, markup=False,
                                                                                     highlight=False))
            vs.provenance["orientation"] = orientation
            paths = write_volume_set(vs, stage, formats=tuple(fmts))
    if rank_only:
        out.print(f"ranking only: wrote {out_dir / 'auto.json'}")
        return
    if "signals" in vs.provenance:
        for name, rec in vs.provenance["signals"].items():
            how = (f"mean of {rec['candidate']}" if rec.get("combine") == "mean" else
                   f"{rec['method']} ({rec.get('iterations') or '-'} iterations, {rec.get('seconds', 0.0):.2f} s)")
            out.print(f"{name}: {how} -> {out_dir / (name + '.mrc')}")
        runs = [vs.provenance["joint"]] + vs.provenance.get("joint_more", []) if "joint" in vs.provenance else []
        for p in runs:
            if p:
                names = [n for n in p.get("angles_deg", vs.names) if n not in vs.provenance["signals"]]
                out.print(f"{', '.join(names)}: {p['method']} jointly ({p['iterations']} iterations, "
                          f"{p['seconds']:.2f} s)")
    else:
        p = vs.provenance
        out.print(f"{', '.join(vs.names)}: {p['method']} jointly ({p['iterations']} iterations, {p['seconds']:.2f} s)")
    out.print(f"wrote {len(paths)} files to {out_dir}")


def _oriented(series, tilt_axis: str, handedness: str = "chemtomo"):
    """`series` with its tilt axis along y (:func:`chemtomo.align.orientation.orient`), saying what was found,
    and its angles negated for etspy's handedness (:func:`chemtomo.align.orientation.with_handedness`)."""
    from .align.orientation import orient, with_handedness

    series, record = orient(with_handedness(series, handedness), tilt_axis)
    record["handedness"] = handedness
    if record["warning"]:
        out.print(f"[yellow]warning:[/] {record['warning']}")
    if record["transposed"]:
        out.print(f"tilt axis along x in the images ({'measured on ' + record['signal'] if record['stated'] == 'auto' else 'as given'}): "
                  "images transposed to chemtomo's convention (axis along y); the volumes are v[y, z, x] of the "
                  "transposed images")
    return series, record


def _angle_range(text: str | None):
    """``LO:HI`` in degrees to a pair (None stays None)."""
    if text is None:
        return None
    try:
        limits = tuple(float(v) for v in text.split(":"))
    except ValueError:
        limits = ()
    if len(limits) != 2:
        raise ChemtomoError(f"--views-range must be LO:HI in degrees with LO < HI, got {text!r}")
    return limits


@app.command()
def denoise(
    in_path: Path = typer.Argument(..., metavar="IN", help="Count maps (n_tilts, ny, nu) or one map: MRC, TIFF or any stack chemtomo reads."),
    out_path: Path = typer.Argument(..., metavar="OUT", help="Denoised stack: .mrc (with IN's angles as .tlt) or .tif/.tiff."),
    method: str = typer.Option(..., "--method", help="Denoiser: gaussian, median, tv, bm3d, pca, unet or n2n (docs/denoise.md)."),
    option: List[str] = typer.Option(None, "--option", help="Denoiser option KEY=VALUE, e.g. sigma=2 or minutes=3; repeatable."),
    frames: bool = typer.Option(False, "--frames", help="IN holds repeated scans of one field (n_frames, ny, nu): write their denoised mean (n2n trains on pairs of frame halves)."),
    guide: Optional[Path] = typer.Option(None, "--guide", help="HAADF image(s) of the same field as a guide channel (unet: the shipped guided network; n2n): one image or one per map (per frame with --frames: their mean)."),
):
    """Denoise EDX/EELS count maps; options left out are chosen from the data (count splitting)."""
    from .denoise.registry import DENOISERS, denoiser_options, resolve_options
    from .io import read_stack
    from .pipeline.run import format_options
    from .io.write import write_stack, write_tiff_stack

    suffix = out_path.suffix.lower()
    check_output_file(out_path, inputs=[in_path, guide, in_path.with_suffix(".tlt")], what="OUT",
                      suffixes=(".mrc", ".st", ".ali", ".mrcs", ".tif", ".tiff"))
    data, meta = read_stack(in_path)
    given = _options(option or [])
    if "progress" in denoiser_options(method):
        given.setdefault("progress", True)
    angles = meta.get("angles")
    if guide is not None:
        if "guide" not in denoiser_options(method):
            raise ChemtomoError(f"--guide is for unet and n2n; {method} takes no guide image")
        g, _ = read_stack(guide)
        given["guide"] = g.mean(axis=0) if frames or g.shape[0] == 1 else g
    if frames:
        if data.ndim != 3 or data.shape[0] < 2:
            raise ChemtomoError(f"--frames needs a stack of at least 2 frames, {in_path.name} has shape {data.shape}")
        n = data.shape[0]
        if method == "n2n":
            from .denoise.n2n import n2n_frames

            opts = resolve_options(data[0], method, **given)
            result, _ = n2n_frames(data, **{k: v for k, v in opts.items() if k != "p"})
        else:
            total = data.sum(axis=0)
            opts = resolve_options(total, method, **given)
            result = DENOISERS[method].function(total, **opts) / n
        result, angles = result[None], None
        what = f"mean of {n} frames"
    else:
        opts = resolve_options(data, method, **given)
        result = DENOISERS[method].function(data, **opts)
        what = f"{data.shape[0]} maps"
    opts.pop("progress", None)
    if guide is not None:
        opts["guide"] = guide.name
    writer = write_tiff_stack if suffix in (".tif", ".tiff") else write_stack
    writer(out_path, result, angles, pixel_size=meta.get("pixel_size", 1.0))
    out.print(f"{in_path.name}: {what} denoised with {method} ({format_options(opts)}) -> {out_path}")


@app.command()
def methods():
    """List every reconstruction method with one line each."""
    from .recon.registry import METHODS

    width = max(len(n) for n in METHODS)
    out.print(f"{'auto':<{width}}  scores candidate pipelines on the data and runs the best. Count maps: count "
              "splitting; without HAADF iterations by held-out views and filter widths by the two count halves' "
              "volumes; with HAADF each candidate (dtv and tnv too) also shares the HAADF volume out among the "
              "elements, CANDIDATE+haadf; without HAADF the U-Net is also guided by the maps' summed counts, "
              "sum-guided-unet+mlem, and each candidate also shares the summed counts' volume out, CANDIDATE+sum, "
              "taken only where clearly better. HAADF and maps that are not counts (background-subtracted EELS "
              "maps): held-out views, with sirt, mlem, cgls and tv; such maps also get the joint methods with a "
              "least-squares term (dtv and tnv with HAADF, tnv for two or more maps without). --candidates "
              "restricts them or names others, --rank-only ranks (docs/methods.md)",
              markup=False)
    for name, m in METHODS.items():
        kind = ("(joint: all element maps, with HAADF or without) " if m.alone else
                "(joint: HAADF + all element maps) " if m.joint else "")
        out.print(f"{name:<{width}}  {kind}{m.help}", markup=False)


@app.command()
def simulate(
    phantom: str = typer.Option("core-shell:rod", "--phantom", help="Phantom spec, e.g. sphere, core-shell:cube, alloy:octahedron,fractions=0.3/0.7 (docs/simulation.md)."),
    elements: str = typer.Option("Au,Ag", "--elements", help="Comma-separated elements or compounds such as TiO2, Fe3O4 (solid densities, docs/simulation.md); core first for core-shell."),
    dose: Optional[float] = typer.Option(None, "--dose", help="Total dose of the series in e-/A^2."),
    time: Optional[float] = typer.Option(None, "--time", help="Total acquisition time in s (instead of --dose)."),
    tilts: str = typer.Option("-70:70:10", "--tilts", help="start:stop:step in degrees (inclusive), a comma list or a file."),
    signals: str = typer.Option("HAADF,EDX", "--signals", help="HAADF, EDX (one map per element), EELS (one edge map per element), lines like Au_Ma or edges like Fe_L23."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder."),
    size: int = typer.Option(64, "--size", min=8, help="Phantom edge in voxels."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same data."),
    voxel_size: float = typer.Option(0.5, "--voxel-size", help="Voxel and pixel size in nm."),
    solid_angle: float = typer.Option(0.7, "--solid-angle", help="EDX detector solid angle in sr (0.7 classic, 4.5 modern)."),
    drift: float = typer.Option(0.0, "--drift", help="Random per-tilt image shifts, standard deviation in pixels."),
    sweep: float = typer.Option(0.0, "--sweep", help="Angle swept during each exposure in degrees (continuous tilting)."),
    critical_dose: Optional[float] = typer.Option(None, "--critical-dose", help="1/e dose of beam damage in e-/A^2."),
    shadow_angle: Optional[float] = typer.Option(None, "--shadow-angle", help="Tilt (degrees) beyond which the holder shadows the EDX detector."),
    absorption: bool = typer.Option(False, "--absorption", help="Include X-ray self-absorption (slower)."),
    eels_detector: str = typer.Option("counting", "--eels-detector", help="EELS camera: counting (Poisson) or ccd (gain, read-out noise)."),
):
    """Simulate a nanoparticle and its noisy tilt series; write MRC stacks, angles.tlt and truth/."""
    from .simulate.command import simulate_to_directory
    from .simulate.series import Acquisition

    acq = Acquisition(drift=drift, sweep=sweep, critical_dose=critical_dose, shadow_angle=shadow_angle,
                      absorption=absorption)
    tilt_file = [tilts] if Path(tilts).is_file() else []
    with output_folder(out_dir, inputs=tilt_file) as stage:
        rec = simulate_to_directory(
        stage, phantom, [e.strip() for e in elements.split(",") if e.strip()], tilts=tilts,
        signals=tuple(s.strip() for s in signals.split(",") if s.strip()), dose=dose, time=time, size=size,
        seed=seed, voxel_size=voxel_size, solid_angle=solid_angle, acquisition=acq, eels_detector=eels_detector,
        )
    out.print(f"simulated {phantom} ({', '.join(rec['elements'])}), {len(rec['angles_deg'])} tilts, "
              f"{rec['dose_e_per_A2']:.3g} e-/A^2 in {rec['acquisition_time_s']:.3g} s -> {out_dir}")
    out.print(f"reconstruct with: chemtomo reconstruct --angles {out_dir / 'angles.tlt'} "
              + " ".join(f"--signal {n}={out_dir / (n + '.mrc')}" for n in rec["signals"]) + f" --method auto --out {out_dir / 'recon'}")


@app.command()
def maps(
    inputs: List[Path] = typer.Argument(..., help="Spectrum-image files, one per tilt (.bcf, .emd, .hspy, .dm4, ...)."),
    elements: Optional[str] = typer.Option(None, "--elements", help="Comma-separated elements or lines, e.g. Fe,Pt or Fe,Pt_Ma, or EELS edges, e.g. O_K,Fe_L23. Default: the list the first file stores (a Bruker .bcf's selection)."),
    energy_correction: float = typer.Option(0.0, "--energy-correction", help="keV added to every file's energy axis, when a note says the known lines sit off their energies (e.g. -0.030)."),
    spectrum: Optional[str] = typer.Option(None, "--spectrum", help="Files with several spectrum images (Velox .emd with EDS and EELS): the one to map, by title or index (`chemtomo signals FILE` lists them). Default: the first."),
    method: Optional[str] = typer.Option(None, "--method", help="window (integration with background windows), fit (NNLS model), regularised (joint Poisson fit with a spatial prior, for low dose) or learned (network on whole-spectrum estimates, low dose; writes std/<line>.mrc uncertainties). Default: fit for EELS edges (O_K,Fe_L23; window refuses edges on one another's tails), window for X-ray lines."),
    angles: Optional[Path] = typer.Option(None, "--angles", help="Text file with one angle in degrees per input file (not needed for a single file: 0 degrees)."),
    angles_from_names: bool = typer.Option(False, "--angles-from-names", help="Take each tilt angle from the number in its file name."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: <line>.mrc, HAADF.mrc, angles.tlt."),
    downsample: int = typer.Option(1, "--downsample", min=1, help="Bin the spectrum images spatially by this factor."),
    weights: List[Path] = typer.Option(None, "--weights", help="With --method learned: a network's weights (.pt with its .json, from python -m chemtomo.training.spectral); repeat for an ensemble. Default: the shipped two networks."),
    keep_undetected: bool = typer.Option(False, "--keep-undetected", help="EELS edges with --method fit or learned: keep the maps of edges below detection (significance < 3 in a tilt); by default those maps are empty."),
    read_noise: Optional[str] = typer.Option(None, "--read-noise", help="CCD spectra: Gaussian read-out noise per channel in electrons (SIGMA), or auto to estimate it per tilt; for fit, regularised and learned (negative readings are then accepted)."),
):
    """Elemental maps from a tilt series of spectrum images, ready for `chemtomo reconstruct`."""
    from .pipeline.maps import maps_to_directory
    from .spectral.eels_model import is_eels
    from .spectral.estimates import DETECTION_Z

    with output_folder(out_dir, inputs=[*inputs, angles, *(weights or [])]) as stage, _progress() as bar:
        summary = maps_to_directory(list(map(str, inputs)), elements, stage, method=method,
                                    angles=str(angles) if angles else None, angles_from_names=angles_from_names,
                                    downsample=downsample, weights=weights or None, keep_undetected=keep_undetected,
                                    progress=_bar_progress(bar), read_noise=read_noise, signal=spectrum,
                                    energy_correction=energy_correction)
    if summary["elements_from_file"]:
        out.print(f"elements from {inputs[0].name}: {', '.join(summary['elements_from_file'])} (--elements to choose)")
    for note in summary["notes"]:
        out.print(f"note: {note}")
    out.print(f"{summary['n_tilts']} tilts, {summary['image_shape'][0]}x{summary['image_shape'][1]} px: "
              f"{', '.join(summary['signals'])} -> {out_dir}")
    method = summary["method"]
    emptied = method in ("learned", "fit") and not keep_undetected and is_eels(summary["lines"])
    for line, low in summary["undetected"].items():
        out.print(f"[yellow]warning:[/] {line} is below detection (significance < {DETECTION_Z:g}) in {len(low)} of "
                  f"{summary['n_tilts']} tilts ({', '.join(f'{a:g}' for a in low)} deg): "
                  + ("its map there is empty (--keep-undetected keeps the fitted one)" if emptied else
                     "its map there is mostly noise" + (" and the network's prior" if method == "learned" else "")))


@app.command()
def signals(
    inputs: List[Path] = typer.Argument(..., help="Instrument or HyperSpy files (.emd, .bcf, .hspy, .dm4, ...)."),
):
    """List the signals a file holds (index, title, shape, kind), to choose a spectrum image with `maps --spectrum`."""
    from .io.instrument import list_signals

    for path in inputs:
        out.print(f"{path}:", markup=False, highlight=False)
        for info in list_signals(path):
            out.print(f"  {info.describe()}", markup=False, highlight=False)


@app.command()
def align(
    signal: List[str] = typer.Option(..., "--signal", help="NAME=PATH of a tilt-series stack; repeat per signal."),
    angles: Optional[str] = typer.Option(None, "--angles", help="Text file with one angle (degrees) per line for all signals."),
    reference: str = typer.Option("HAADF", "--reference", help="Signal whose shifts are found and applied to every signal."),
    method: str = typer.Option("xcorr", "--method", help="xcorr (phase/cross-correlation, fast), com, matching, xcorr+matching (projection matching after it: slower, for a little more) or com+matching."),
    iterations: int = typer.Option(5, "--iterations", min=1, help="Projection-matching rounds."),
    rotation: str = typer.Option("estimate", "--rotation", help="In-plane tilt-axis rotation in degrees, or 'estimate' (from where the axis crosses each band of rows; not applied, with a warning, when the data do not pin it)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: aligned NAME.mrc, shifts.txt, angles.tlt."),
    centre: Optional[bool] = typer.Option(None, "--centre/--no-centre",
                                          help="Put the object's centre of mass on the tilt axis, or not (specimens filling the field). Default: centred when most of the image frame is vacuum."),
    tilt_axis: str = typer.Option("auto", "--tilt-axis", help="Direction of the tilt axis in the images: y (along the rows' index, IMOD), x (along the columns' index: HyperSpy, etspy, tomviz) or auto (measured on the data)."),
):
    """Align a tilt series (orientation, drift, tilt-axis offset and rotation) and write the aligned stacks."""
    from .align.apply import align_lines, align_to_directory

    if rotation != "estimate":
        try:
            rot: object = float(rotation)
        except ValueError:
            raise ChemtomoError(f"--rotation {rotation!r} must be a number of degrees or 'estimate'") from None
    else:
        rot = rotation
    with output_folder(out_dir, inputs=_input_paths(signal, [angles] if angles else [])) as stage, \
            _progress() as bar:
        summary = align_to_directory(_pairs(signal, "--signal"), angles, stage, reference=reference, method=method,
                                     iterations=iterations, rotation=rot, centre="auto" if centre is None else centre,
                                     tilt_axis=tilt_axis,
                                     progress=_bar_progress(bar))
    _print_notes(summary["notes"])
    for line in align_lines(summary):
        out.print(line)
    out.print(f"-> {out_dir} (alignment.json holds every parameter)")
    for warning in summary["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}")


@app.command()
def quantify(
    run_dirs: List[Path] = typer.Argument(..., help="Folder(s) written by `chemtomo reconstruct` (chemtomo.json + volumes)."),
    core: Optional[str] = typer.Option(None, "--core", help="Core element of core-shell particles, e.g. Au."),
    core_rule: str = typer.Option("share", "--core-rule", help="share (calibrated volumes) or otsu (maps of any scale)."),
    reference: str = typer.Option("auto", "--reference", help="Volume to segment (auto: the sum of the element volumes; or a name such as HAADF)."),
    coverage_threshold: Optional[float] = typer.Option(None, "--coverage-threshold", help="Shell thickness in nm (voxels without a pixel size) that counts as covered (default one voxel)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder (default RUN_DIR/quantify; needed for several runs: the batch table)."),
    uncertainty: int = typer.Option(0, "--uncertainty", min=0, help="Count splits for standard deviations (needs --signal)."),
    signal: List[str] = typer.Option(None, "--signal", help="NAME=PATH of the tilt series the run came from (for --uncertainty)."),
    angles: List[str] = typer.Option(None, "--angles", help="Angles of those signals, as for `reconstruct`."),
    smooth: float = typer.Option(1.0, "--smooth", help="Gaussian smoothing (sigma, voxels) of the segmented volume before the threshold; 0: none."),
    min_size: Optional[int] = typer.Option(None, "--min-size", help="Smallest particle in voxels (default: 27, or a twentieth of the largest particle if more: drops noise blobs)."),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", help="Voxel edge in nm (default the run's; lengths are in voxels when the run records none)."),
):
    """Segment the particles and write one row per particle (size, composition, shell thickness, coverage)."""
    import math

    if coverage_threshold is not None:
        _positive(**{"--coverage-threshold": coverage_threshold})
    _positive(**{"--pixel-size": pixel_size})
    if not (math.isfinite(smooth) and smooth >= 0):
        raise ChemtomoError(f"--smooth takes a Gaussian sigma in voxels >= 0 (0: no smoothing), got {smooth:g}")
    if min_size is not None and min_size < 1:
        raise ChemtomoError(f"--min-size takes a number of voxels >= 1, got {min_size}; leave it out for the "
                            "size chosen from the data")
    if uncertainty and not signal:
        raise ChemtomoError("--uncertainty N re-reconstructs split data: give the run's tilt series with --signal NAME=PATH")
    if len(run_dirs) > 1 and (signal or out_dir is None):
        raise ChemtomoError("with several runs give --out for the batch table, and no --signal (uncertainties are per run)")
    if len(run_dirs) > 1:
        names = [safe_name(r.resolve().name, "run folder name") for r in run_dirs]
        if len(set(names)) != len(names):
            raise ChemtomoError("several runs have the same folder name; their tables would share a folder: "
                                "rename them")
    target_dir = out_dir if out_dir is not None else run_dirs[0] / "quantify"
    with output_folder(target_dir, inputs=[*_input_paths(signal, angles), *[
            f for r in run_dirs if r.is_dir() for f in r.iterdir() if f.name != "quantify"]]) as stage:
        with _progress() as bar:
            batch = _quantify_runs(run_dirs, stage, out_dir, core, reference, coverage_threshold, signal, angles,
                                   uncertainty, core_rule, _bar_progress(bar), smooth=smooth, min_size=min_size,
                                   pixel_size=pixel_size)
    if len(run_dirs) > 1:
        out.print(f"batch of {len(batch)} particles from {len(run_dirs)} runs: {out_dir / 'batch.csv'}, "
                  f"{out_dir / 'batch.png'}")


def _quantify_runs(run_dirs, stage, out_dir, core, reference, coverage_threshold, signal, angles, uncertainty,
                   core_rule, progress=None, *, smooth=1.0, min_size=None, pixel_size=None):
    """`quantify` for each run into `stage`; returns the batch rows (lengths in nm, or voxels without a pixel size)."""
    from .pipeline.quantify import quantify_run, write_table
    from .report.figures import batch_figure

    series = _read_series(signal, angles, None) if signal else None
    batch = []
    for run_dir in run_dirs:
        target = stage / run_dir.resolve().name if len(run_dirs) > 1 else stage
        shown = out_dir / run_dir.resolve().name if len(run_dirs) > 1 else (out_dir or run_dir / "quantify")
        res = quantify_run(run_dir, target, core=core, reference=None if reference == "none" else reference,
                           coverage_threshold=coverage_threshold, series=series, n_splits=uncertainty,
                           core_rule=core_rule, progress=progress, smooth=smooth, min_size=min_size,
                           voxel_size=pixel_size)
        u = res["length_unit"]
        label = {"nm": "nm", "vox": "voxels"}[u]
        if u == "vox":
            out.print(f"{run_dir.name}: no pixel size recorded: lengths in voxels (--pixel-size NM gives nm)")
        out.print(f"{run_dir.name}: {len(res['rows'])} particles of at least {res['min_size']} voxels "
                  f"(smoothed by {res['smooth']:g} voxels)")
        for row in res["rows"]:
            comp = ", ".join(f"{k[3:]} {v:.3f}" + (f" +- {row[k + '_sd']:.3f}" if k + "_sd" in row else "")
                             for k, v in row.items() if k.startswith("at_") and not k.endswith("_sd"))
            shell = f", shell {row[f'shell_mean_{u}']:.2f} {label} (5th pct. {row[f'shell_p05_{u}']:.2f}), " \
                f"coverage {row['coverage']:.2f}" if f"shell_mean_{u}" in row else ""
            edge = " [touches the border]" if row["touches_border"] else ""
            out.print(f"{run_dir.name} particle {row['particle']}: {row[f'diameter_{u}']:.1f} {label}, {comp}{shell}"
                      f"{edge}")
            batch.append({"run": str(run_dir), **row})
        out.print(f"wrote {', '.join(str(shown / Path(p).name) for p in res['paths'])}")
    if len(run_dirs) > 1:
        write_table(batch, stage / "batch")
        batch_figure(batch, stage / "batch.png")
    return batch


@app.command()
def alloying(
    run_dirs: List[Path] = typer.Argument(..., help="Reconstruction folders of one particle (`chemtomo reconstruct`), in time order."),
    times: str = typer.Option(..., "--times", help="Time of each run in s, comma-separated, strictly increasing, e.g. 0,100,200."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: alloying.csv/.parquet, alloying.json, alloying.png."),
    signal: str = typer.Option("HAADF", "--signal", help="Volume of each run to use."),
    calibration: str = typer.Option("joint", "--calibration", help="joint (pure intensities fitted with the diffusion model on the whole series) or first (histogram of the first run, held for all)."),
    elements: str = typer.Option("Au,Ag", "--elements", help="Core element, shell element."),
):
    """Fit interdiffusion of a core-shell particle to a time series: D, alloying index per time, one calibration."""
    from .pipeline.alloying import alloying_runs

    t = _floats(times, "--times", "0,100,200")
    els = [e.strip() for e in elements.split(",") if e.strip()]
    with output_folder(out_dir, inputs=[f for r in run_dirs if r.is_dir() for f in r.iterdir()]) as stage:
        res = alloying_runs(run_dirs, t, stage, signal=signal, calibration=calibration, elements=els)
    for row in res["rows"]:
        out.print(f"{Path(row['run']).name} t = {row['time_s']:g} s: alloying index {row['alloying_index']:.3f} "
                  f"(voxels {row['alloying_index_voxels']:.3f}), {els[0]} fraction {row[els[0] + '_fraction']:.3f}")
    out.print(f"D = {res['D']:.4g} +- {res['D_sd']:.2g} nm^2/s, sharp core-shell at t = {res['start']:.4g} s, "
              f"I_{els[0]} {res['I_core']:.4g}, I_{els[1]} {res['I_shell']:.4g} ({res['calibration']} calibration), "
              f"blur sigma {res['sigma_nm']:.2f} nm -> {out_dir}")


@app.command()
def plan(
    phantom: str = typer.Option(..., "--phantom", help="Particle spec, e.g. core-shell:sphere,ratio=0.6 (docs/simulation.md)."),
    elements: str = typer.Option(..., "--elements", help="Comma-separated elements, core first, e.g. Au,Ag."),
    size: int = typer.Option(48, "--size", min=8, help="Volume edge in voxels."),
    voxel_size: float = typer.Option(0.5, "--voxel-size", help="nm per voxel."),
    doses: str = typer.Option("1e6,3e6,1e7,3e7", "--doses", help="Comma-separated total doses in e-/A^2."),
    tilts: str = typer.Option("15,29", "--tilts", help="Comma-separated numbers of tilts over -70..70 degrees."),
    methods: str = typer.Option("mlem,tv,dtv", "--methods", help="Comma-separated reconstruction methods."),
    target: Optional[float] = typer.Option(0.2, "--target", help="Largest acceptable error of the worst element (scaled NRMSE); 0: none."),
    resolution: Optional[float] = typer.Option(None, "--resolution", help="Smallest feature to resolve in nm (Fourier-shell error against the truth)."),
    signal: str = typer.Option("EDX", "--signal", help="EDX or EELS."),
    solid_angle: float = typer.Option(0.7, "--solid-angle", help="EDX collection solid angle in sr."),
    eels_detector: str = typer.Option("counting", "--eels-detector", help="EELS camera: counting or ccd."),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Noise realisations per grid point."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: plan.csv, plan.json, plan.png."),
):
    """Recommend the cheapest acquisition (dose, tilts, method) that meets an error target, by simulation."""
    import json

    from .io.write import to_json
    from .plan import plan as run_plan, plan_figure
    from .pipeline.quantify import write_table

    with output_folder(out_dir) as stage, _progress() as bar:
        result = run_plan(phantom, [e.strip() for e in elements.split(",") if e.strip()], shape=(size,) * 3,
                          voxel_size=voxel_size, doses=_floats(doses, "--doses"),
                          tilts=_tilt_counts(_floats(tilts, "--tilts")),
                          methods=[m.strip() for m in methods.split(",") if m.strip()], target=target or None,
                          resolution=resolution, signal=signal,
                          solid_angle=solid_angle, eels_detector=eels_detector, repeats=repeats, seed=seed,
                          progress=_bar_progress(bar))
        paths = write_table(result.rows, stage / "plan")
        (stage / "plan.json").write_text(json.dumps(to_json({
            "settings": result.settings, "recommendation": result.recommendation, "rows": result.rows}), indent=1),
            encoding="utf-8")
        paths = [out_dir / Path(p).name for p in paths + [stage / "plan.json", plan_figure(result, stage / "plan.png")]]
    out.print(result.summary())
    out.print(f"wrote {', '.join(str(p) for p in paths)}")


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML (inputs, align, reconstruct, quantify, outputs)."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: one subfolder per step, run.json, recipe.resolved.json."),
    resume: bool = typer.Option(False, "--resume", help="Skip the steps that finished before with the same settings."),
):
    """Run a whole recipe; every step records its settings, versions and time, and --resume continues."""
    from .pipeline.run import run_recipe

    with _progress() as bar:
        run_recipe(recipe, out_dir, resume=resume, log=out.print, progress=_bar_progress(bar), threads=_threads_given)
    out.print(f"wrote {out_dir}")


@app.command()
def batch(
    manifest: Path = typer.Argument(..., help="CSV with columns name, recipe; or a folder of *.yaml recipes."),
    out_dir: Path = typer.Option(..., "--out", help="Output folder: one run folder per particle, batch.json, particles.*"),
    workers: int = typer.Option(2, "--workers", min=1, help="Local Dask worker processes (one thread each unless --threads)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
):
    """Run one recipe per particle on Dask; finished particles are skipped on a rerun."""
    from .pipeline.batch import run_batch

    rec = run_batch(manifest, out_dir, workers=workers, scheduler=scheduler,
                    threads_per_worker=_worker_threads(workers, scheduler), log=out.print)
    if any(r["status"] == "failed" for r in rec["particles"]):
        raise ChemtomoError(f"some particles failed; see {out_dir / 'batch.json'}")


def _floats(text: str, option: str, example: str = "") -> list[float]:
    """Comma-separated numbers of `option`; anything else stops with one line."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        hint = f", e.g. {option} {example}" if example else ""
        raise ChemtomoError(f"{option} takes comma-separated numbers, got {text!r}{hint}") from None


def _tilt_counts(values) -> list[int]:
    """Numbers of tilts: whole numbers >= 2."""
    bad = [v for v in values if not (v == v and v == int(v) and v >= 2)] if values else ["none"]
    if bad:
        raise ChemtomoError(f"--tilts takes whole numbers of tilts >= 2 (e.g. 15,29), got {bad[0]}")
    return [int(v) for v in values]


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="Folder written by `chemtomo reconstruct` (and `chemtomo quantify`)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="HTML file (default RUN_DIR/report.html)."),
):
    """Write a self-contained HTML report of a run: slices, overlay, profiles, particles, 3D view."""
    from .report.html import build_report

    if out_file is not None:
        inputs = [f for f in run_dir.rglob("*") if f.is_file()] if run_dir.is_dir() else []
        check_output_file(out_file, inputs=inputs, suffixes=(".html", ".htm"))
    out.print(f"wrote {build_report(run_dir, out_file)}")


@app.command()
def atoms(
    volume: Path = typer.Argument(..., metavar="VOLUME", help="Atomic-resolution reconstruction (MRC/TIFF, axes ordered y, z, x)."),
    voxel_size: float = typer.Option(..., "--voxel-size", help="Voxel edge in Angstrom."),
    species: str = typer.Option(..., "--species", help="Distinct elements from the lightest to the heaviest (Z-contrast order), e.g. Fe,Pt."),
    out_path: Path = typer.Option(..., "--out", help="Atom table: .csv (x,y,z,species,...) or .xyz (extended XYZ)."),
    min_distance: float = typer.Option(2.0, "--min-distance", help="Smallest inter-atomic distance, Angstrom."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Peak threshold in volume units (default 1 % of the maximum)."),
    keep_non_atoms: bool = typer.Option(False, "--keep-non-atoms", help="Keep non-atom peaks, species X."),
    series_path: Optional[Path] = typer.Option(None, "--series", help="The tilt series VOLUME came from (MRC + .tlt): refine the atoms against it."),
    angles_path: Optional[Path] = typer.Option(None, "--angles", help="Angles (degrees, one per line) of --series if it has no .tlt."),
):
    """Trace the atoms of an atomic-resolution volume and classify their species (docs/atomic.md)."""
    from .atomic import atoms_from_volume, check_species
    from .io import read_volume
    from .io.atoms import write_atoms_csv, write_atoms_xyz

    suffix = out_path.suffix.lower()
    _positive(**{"--voxel-size": voxel_size, "--min-distance": min_distance})
    check_output_file(out_path, inputs=[volume, series_path, angles_path], suffixes=(".csv", ".xyz", ".extxyz"))
    names = check_species(species)
    vol, _ = read_volume(volume)
    series = angles = None
    if series_path is not None:
        from .io import read_angles, read_stack

        series, meta = read_stack(series_path)
        angles = read_angles(angles_path) if angles_path else meta.get("angles")
        if angles is None:
            raise ChemtomoError(f"no angles for {series_path.name}: give --angles FILE or put a .tlt next to it")
    found, cols = atoms_from_volume(vol, voxel_size, names, threshold=threshold, min_distance=min_distance,
                                    keep_non_atoms=keep_non_atoms, series=series, angles=angles)
    info = cols.pop("info")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        write_atoms_csv(out_path, found, **cols)
    else:
        write_atoms_xyz(out_path, found, comment=f"chemtomo atoms from {volume.name}", **cols)
    counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
    out.print(f"{volume.name}: {info['peaks']} peaks, {info['non_atoms']} non-atoms, {counts} -> {out_path}")


@app.command("count-atoms")
def count_atoms_cmd(
    image: Path = typer.Argument(..., metavar="IMAGE", help="Atomic-resolution HAADF image (TIFF/MRC, one 2D image)."),
    pixel_size: float = typer.Option(..., "--pixel-size", help="Pixel size in Angstrom."),
    dose: Optional[float] = typer.Option(None, "--dose", help="Electron dose in e/A^2 (cross-sections in A^2; counts otherwise)."),
    out_path: Path = typer.Option(..., "--out", help="CSV of columns: row, col (pixels), scs, atoms."),
    min_distance: float = typer.Option(1.0, "--min-distance", help="Smallest column separation, Angstrom."),
    library: Optional[Path] = typer.Option(None, "--library", help="Text file: expected SCS of 0, 1, 2, ... atoms, one per line."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Smallest column height above the background, image units (replaces --threshold-sigmas)."),
    threshold_sigmas: float = typer.Option(5.0, "--threshold-sigmas", help="Smallest column height in noise standard errors."),
    noise: str = typer.Option("auto", "--noise", help="Noise model: auto (poisson for integer counts, else fit), poisson, fit, or a standard deviation in image units."),
):
    """Count atoms per column: 2D Gaussian fits, cross-sections, Gaussian mixture with ICL (docs/atomic.md)."""
    import numpy as np

    from .atomic import column_cross_sections, count_atoms, fit_columns
    from .io import read_stack
    from .io.write import atomic_write

    _positive(**{"--pixel-size": pixel_size, "--dose": dose, "--min-distance": min_distance})
    check_output_file(out_path, inputs=[image, library], suffixes=(".csv",))
    data, _ = read_stack(image)
    img = np.squeeze(np.asarray(data, float))
    if img.ndim != 2:
        raise ChemtomoError(f"{image.name} holds {data.shape}; give one 2D image")
    try:
        noise_model = float(noise)
    except ValueError:
        noise_model = noise
    peaks = fit_columns(img, pixel_size=pixel_size, min_distance=min_distance, threshold=threshold,
                        threshold_sigmas=threshold_sigmas, noise=noise_model)
    scs = column_cross_sections(peaks, dose=dose)
    lib = np.loadtxt(library, ndmin=1) if library else None
    n, mix = count_atoms(scs, library=lib)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_path) as tmp:
        np.savetxt(tmp, np.c_[peaks.positions, scs, n], delimiter=",", header="row,col,scs,atoms", comments="",
                   fmt=["%.3f", "%.3f", "%.6g", "%d"])
    out.print(f"{image.name}: {len(peaks)} columns, {len(mix.means)} mixture components (ICL), "
              f"{int(n.min())}-{int(n.max())} atoms per column -> {out_path}")


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Folder for volumes, table and figure."),
    size: int = typer.Option(64, "--size", min=16, help="Phantom edge in voxels."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
):
    """Simulate a low-dose Au@Ag nanorod, reconstruct it with every method and score each."""
    from .demo import run_demo

    with output_folder(out_dir) as stage, _progress() as bar:
        run_demo(stage, size=size, seed=seed, console=out, progress=_bar_progress(bar))
    out.print(f"wrote {out_dir}")


def _positive(**values) -> None:
    """Refuse option values that are not finite and > 0 (``_positive(**{"--dose": dose})``); None means unset."""
    from .core.errors import check_positive

    for flag, value in values.items():
        if value is not None:
            check_positive(value, flag)


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure ends as one line ``error: ...`` on stderr and exit status 2.

    ChemtomoError carries its own advice; errors from the OS, memory, nesting and text
    decoding are translated here; anything else is an internal error, reported in one
    line too (``CHEMTOMO_DEBUG=1`` shows the traceback).
    """
    try:
        app(args=argv, standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        return 130
    except Exception as exc:  # noqa: BLE001 - this is the boundary
        if os.environ.get("CHEMTOMO_DEBUG"):
            raise
        err.print(f"error: {_one_line(exc)}", markup=False, highlight=False, soft_wrap=True)
        return 2
    return 0


def _one_line(exc: BaseException) -> str:
    """The one-line message for any exception reaching the command line."""
    if isinstance(exc, ChemtomoError):
        text = str(exc)
    elif _is_usage_error(exc):
        text = (f"{exc.format_message()} (chemtomo --help lists the commands, chemtomo COMMAND --help "
                "their options)")
    elif isinstance(exc, MemoryError):
        text = ("not enough memory for this input; bin or crop the data, reconstruct in slabs (--slab) or use a "
                "machine with more memory")
    elif isinstance(exc, RecursionError):
        text = "an input is nested too deeply to read; check it is the file you meant"
    elif isinstance(exc, UnicodeDecodeError):
        text = (f"a text input is not UTF-8 text ({exc.reason} at byte {exc.start}); give a text file "
                "(recipe, manifest, angle list) saved as UTF-8")
    elif isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        advice = {errno.ENOSPC: "free disk space or write elsewhere", errno.EACCES: "check the permissions",
                  errno.EPERM: "check the permissions", errno.EROFS: "write to a writable folder",
                  errno.ENAMETOOLONG: "use a shorter name", errno.EISDIR: "give a file, not a folder",
                  errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EEXIST: "choose a new name",
                  errno.ENOENT: "check the path"}.get(exc.errno, "check the path and the disk")
        text = f"{what}{where}; {advice}"
    else:
        text = (f"internal error ({type(exc).__name__}: {exc}); this is a bug in chemtomo: rerun with "
                "CHEMTOMO_DEBUG=1 and report the traceback")
    return " ".join(text.split())


def _is_usage_error(exc: Exception) -> bool:
    """A command-line usage error from click, or from the copy of click that newer typer versions ship."""
    return any(cls.__name__ == "ClickException" and cls.__module__.endswith("click.exceptions")
               for cls in type(exc).__mro__)


if __name__ == "__main__":
    sys.exit(main())
