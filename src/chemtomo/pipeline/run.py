"""The one runner: a :class:`~chemtomo.pipeline.recipe.Recipe` applied to a tilt series, in memory or step by step on disk.

* :func:`process` runs denoise -> view synthesis -> reconstruct in memory and
  returns the volumes with their provenance; ``chemtomo reconstruct`` and the
  demo call it.
* :func:`run_recipe` runs every step of a recipe into its own folder with a
  ``step.json`` checkpoint (hash of the settings, of the steps before and of
  the input files' contents; time, versions) and a manifest of its files'
  hashes; each step folder is staged and swapped in whole
  (:mod:`chemtomo.io.outputs`). ``--resume`` skips a step only when its hash
  matches and its files are intact, and redoes it otherwise;
  ``chemtomo run`` and ``chemtomo batch`` call it.

Both call the same step functions (:mod:`chemtomo.pipeline.steps`) with the
same settings sections, so an option reaches every method the same way.
"""

from __future__ import annotations

import glob
import hashlib
import json
import platform
import shutil
import time
import uuid
from pathlib import Path

from ..core.data import TiltSeries, VolumeSet
from . import steps
from .recipe import Denoise, Reconstruct, Recipe, Views, load_recipe


def _log(*_):
    return None


def process(series: TiltSeries, reconstruct: Reconstruct, *, denoise: Denoise | None = None,
            views: Views | None = None, progress: steps.Progress | None = None, log=_log) -> VolumeSet:
    """Denoise (if asked), synthesize views (if asked) and reconstruct `series`: the sections of a recipe.

    Parameters
    ----------
    series : TiltSeries
        The (aligned) tilt series; never modified.
    reconstruct, denoise, views : sections of a :class:`~chemtomo.pipeline.recipe.Recipe`
        What to run; None skips denoising or view synthesis.
    progress : callable(name, done, total), optional
        Progress of the reconstruction; denoisers and view synthesis show their own bars when given.
    log : callable(str), optional
        One line per finished step.

    Returns
    -------
    VolumeSet
        With ``provenance["denoise"]`` and ``provenance["views_synthesis"]`` when those steps ran.
    """
    denoised = synthesized = None
    if denoise is not None:
        series, denoised = steps.denoise(series, denoise, progress=progress is not None)
        for name, rec in denoised["signals"].items():
            log(f"{name}: denoised with {denoise.method} ({format_options(rec['options'])}, {rec['seconds']:.2f} s)")
    if views is not None:
        series, synthesized = steps.views(series, views, thickness=reconstruct.thickness, progress=progress is not None)
        for name, rec in synthesized["signals"].items():
            log(f"{name}: {len(rec['new_angles'])} views synthesized ({rec['holdout']['used']} chosen on "
                "held-out views)")
    return _reconstruct(series, reconstruct, denoised, synthesized, progress=progress, log=log)


def _reconstruct(series, settings: Reconstruct, denoised: dict | None, synthesized: dict | None, *, progress, log
                 ) -> VolumeSet:
    """The reconstruction step after the optional ones, whose records go into the provenance."""
    changed_by = "denoise" if denoised is not None else "views" if synthesized is not None else None
    method, why = steps.resolve_method(settings, changed_by=changed_by)
    if why:
        log(why)
    if method == "auto":
        from . import auto

        volumes = auto.run(series, thickness=settings.thickness, axis_offset=settings.axis_offset,
                           iterations=settings.iterations, candidates=settings.candidates, progress=progress, log=log)
        for line in auto.table(volumes.provenance["auto"]):
            log(line)
    else:
        volumes = steps.reconstruct(series, settings, method=method, progress=progress)
    if denoised is not None:
        volumes.provenance["denoise"] = denoised
    if synthesized is not None:
        volumes.provenance["views_synthesis"] = synthesized
    return volumes


def format_options(opts: dict) -> str:
    """``k=v, ...`` with floats to 3 significant digits."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in opts.items())


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _versions() -> dict:
    import numpy
    import torch

    from .. import __version__

    return {"chemtomo": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch.__version__}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _write_series(series, folder: Path) -> None:
    from ..io import write_stack

    folder.mkdir(parents=True, exist_ok=True)
    for name in series.names:
        write_stack(folder / f"{name}.mrc", series[name].data, series[name].angles, pixel_size=series.pixel_size)
    (folder / "signals.json").write_text(json.dumps(series.names))


def _step_record(folder: Path) -> dict:
    """A finished step's ``step.json`` (empty if missing or damaged: the step is redone)."""
    try:
        rec = json.loads((folder / "step.json").read_text())
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def _read_series(folder: Path):
    from ..io import read_tilt_series

    names = json.loads((folder / "signals.json").read_text())
    return read_tilt_series({n: folder / f"{n}.mrc" for n in names}, None)


def run_recipe(recipe: Recipe | str | Path, out_dir, *, resume: bool = False, log=print,
               progress: steps.Progress | None = None, threads: int | None = None) -> dict:
    """Run a recipe into `out_dir`, one checkpointed folder per step (module notes); returns ``run.json``'s record.

    Steps: ``1-inputs``, ``2-align``, ``2b-denoise``, ``2c-views``, ``3-reconstruct``, ``4-quantify``,
    ``5-report``; each writes ``step.json`` (hash of its settings and of the steps before it, seconds,
    versions) when done, and ``resume=True`` skips a step whose ``step.json`` matches.
    A recipe file's relative input paths name files beside it (:func:`~chemtomo.pipeline.recipe.load_recipe`);
    a :class:`Recipe` object's are taken as given.
    `threads` (CPU threads, :func:`chemtomo.core.threads.set_threads`) overrides the recipe's
    ``threads``; with neither, the threads are left as they are. The count used is in ``run.json``.
    """
    from ..core.threads import check_threads, set_threads
    from ..io.outputs import check_output_folder, inputs_hash, lock

    if not isinstance(recipe, Recipe):
        recipe_path = Path(recipe)
        recipe = load_recipe(recipe)
    else:
        recipe_path = None
    if threads is not None or recipe.threads is not None:
        set_threads(check_threads(threads, "threads") if threads is not None else recipe.threads)
    inputs = _input_files(recipe.inputs) + ([recipe_path] if recipe_path else [])
    out = check_output_folder(out_dir, inputs=inputs)
    with lock(out):
        if resume or not out.exists() or not any(out.iterdir()):
            out.mkdir(parents=True, exist_ok=True)
            return _run_steps(recipe, out, resume=resume, log=log, progress=progress,
                              inputs_key=inputs_hash(_input_files(recipe.inputs)))
        # a new run over a finished one: build it beside, swap it in only when complete
        from ..io.outputs import publish

        stage = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
        try:
            record = _run_steps(recipe, stage, resume=False, log=log, progress=progress,
                                inputs_key=inputs_hash(_input_files(recipe.inputs)))
            publish(stage, out)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return record


def _input_files(inputs) -> list[Path]:
    """The files a recipe's inputs read (their contents enter the first step's hash)."""
    if inputs.files is not None:
        angles = inputs.files.angles
        names = [*inputs.files.signals.values(), *(angles.values() if isinstance(angles, dict) else
                                                   [angles] if angles else [])]
        return [Path(p) for p in names]
    if inputs.spectra is not None:
        return sorted(Path(p) for pattern in inputs.spectra.files for p in (glob.glob(pattern) or [pattern]))
    return []


def _run_steps(recipe: Recipe, out: Path, *, resume: bool, log, progress, inputs_key: str) -> dict:
    """The steps of :func:`run_recipe` into `out` (locked by the caller)."""
    from ..io import write_volume_set
    from ..io.outputs import publish, verify_manifest
    from ..io.write import atomic_write, to_json

    resolved = recipe.model_dump()
    with atomic_write(out / "recipe.resolved.json") as tmp:
        tmp.write_text(json.dumps(resolved, indent=1))
    record = {"versions": _versions(), "threads": _threads(), "steps": {}}
    upstream = inputs_key

    def step(name, settings, work, load):
        """Run `work(stage)` into a staging folder, record step.json, swap it onto ``out/name``; or skip it."""
        nonlocal upstream
        folder = out / name
        key = _hash([upstream, settings])
        if resume and folder.is_dir():
            done = _step_record(folder)
            problems = verify_manifest(folder)
            if done.get("hash") == key and not problems:
                log(f"{name}: done before, skipped")
                record["steps"][name] = done | {"skipped": True}
                upstream = key
                return load(folder)
            log(f"{name}: " + (problems[0] if problems else "inputs or settings changed") + ", redone")
        stage = out / f".{name}.staging-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
        try:
            t0 = time.perf_counter()
            result = work(stage)
            info = {"hash": key, "seconds": round(time.perf_counter() - t0, 3), "versions": record["versions"],
                    "settings": settings}
            (stage / "step.json").write_text(json.dumps(to_json(info), indent=1))
            publish(stage, folder)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        log(f"{name}: {info['seconds']:.1f} s")
        record["steps"][name] = info
        upstream = key
        return load(folder) if result is None else result

    def series_step(name, settings, record_name, work):
        """A step whose `work()` returns ``(series, record)``; both are written and read back on resume."""

        def run(folder):
            new, rec = work()
            _write_series(new, folder / "series")
            (folder / record_name).write_text(json.dumps(to_json(rec), indent=1))
            return new, rec

        def load(folder):
            return _read_series(folder / "series"), json.loads((folder / record_name).read_text())

        return step(name, settings, run, load)

    def inputs_work(folder):
        series = steps.read_inputs(recipe.inputs, folder, progress=progress)
        _write_series(series, folder / "series")
        return series

    series = step("1-inputs", resolved["inputs"], inputs_work, lambda f: _read_series(f / "series"))
    if recipe.align is not None:
        series, _ = series_step("2-align", resolved["align"], "align.json",
                                lambda: steps.align(series, recipe.align, progress=progress))
    show = progress is not None
    denoised = synthesized = None
    if recipe.denoise is not None:
        series, denoised = series_step("2b-denoise", resolved["denoise"], "denoise.json",
                                       lambda: steps.denoise(series, recipe.denoise, progress=show))
    if recipe.views is not None:
        series, synthesized = series_step(
            "2c-views", resolved["views"], "views.json",
            lambda: steps.views(series, recipe.views, thickness=recipe.reconstruct.thickness, progress=show))

    def recon_work(folder):
        vs = _reconstruct(series, recipe.reconstruct, denoised, synthesized, progress=progress, log=log)
        write_volume_set(vs, folder, formats=tuple(recipe.outputs.formats))

    recon_dir = step("3-reconstruct", [resolved["reconstruct"], resolved["outputs"]], recon_work, lambda f: f)
    if recipe.quantify is not None:
        from .quantify import quantify_run

        q = recipe.quantify

        def quant_work(folder):
            quantify_run(recon_dir, folder, core=q.core, core_rule=q.core_rule,
                         coverage_threshold=q.coverage_threshold, smooth=q.smooth, min_size=q.min_size)

        step("4-quantify", resolved["quantify"], quant_work, lambda f: f)
    if recipe.report:
        from ..report.html import build_report

        def report_work(folder):
            quant = out / "4-quantify" / "quantify.json"
            if quant.is_file():  # the report reads RUN_DIR/quantify
                (recon_dir / "quantify").mkdir(exist_ok=True)
                for f in (out / "4-quantify").iterdir():
                    if f.is_file() and f.name != "step.json":
                        (recon_dir / "quantify" / f.name).write_bytes(f.read_bytes())
            build_report(recon_dir, folder / "report.html")

        step("5-report", True, report_work, lambda f: f / "report.html")
    with atomic_write(out / "run.json") as tmp:
        tmp.write_text(json.dumps(to_json(record), indent=1))
    return record
