"""Recipes: a whole run (inputs, alignment, reconstruction, quantification) declared in one YAML file.

``chemtomo run recipe.yaml --out DIR [--resume]``. Example::

    inputs:
      simulate: {phantom: "core-shell:sphere,ratio=0.6", elements: [Au, Ag], size: 48, dose: 3.0e+7,
                 tilts: "-70:70:10"}
    align: {reference: HAADF, method: xcorr}
    reconstruct: {method: auto}
    quantify: {core: Au}

Inputs are exactly one of ``simulate`` (:func:`chemtomo.simulate.command.simulate_to_directory`),
``files`` (tilt-series stacks, as ``chemtomo reconstruct --signal``) or ``spectra`` (one
spectrum image per tilt, maps as ``chemtomo maps``). The recipe is validated by pydantic
before anything runs: an unknown key or a wrong value stops with the file's line number,
the key and the allowed keys or values.

An optional ``denoise: {method: gaussian}`` step (any of
:data:`chemtomo.denoise.registry.DENOISERS`, with ``options`` and ``signals``,
default every count signal) denoises the projection maps between alignment
and reconstruction; ``reconstruct: {method: auto}`` then means SIRT
(denoised maps are no longer Poisson counts). An optional ``views: {step: 5,
range: [-75, 75], minutes: 1}`` step then fills unmeasured tilt angles with
synthesized views (:func:`chemtomo.denoise.views.synthesize_series`).

Every step writes into its own folder of ``DIR`` (``1-inputs``, ``2-align``, ``2b-denoise``, ``2c-views``,
``3-reconstruct``, ``4-quantify``, ``5-report`` with ``report: true``) and, when it has finished, a ``step.json`` with
the hash of its resolved settings and of the steps before it, its time and the
versions. ``--resume`` skips every step whose ``step.json`` matches (nothing is
recomputed), so a killed run continues where it stopped and a changed setting
reruns that step and the ones after it. ``DIR/recipe.resolved.json`` holds the
recipe with every default filled in, ``DIR/run.json`` the versions and timings.
"""

from __future__ import annotations

import glob
import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .core.errors import ChemtomoError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Simulate(_Model):
    phantom: str
    elements: list[str]
    dose: float
    size: int = 64
    voxel_size: float = 0.5
    tilts: str = "-70:70:10"
    signals: list[str] = ["HAADF", "EDX"]
    seed: int = 0
    solid_angle: float = 0.7


class Files(_Model):
    signals: dict[str, str]
    angles: Union[str, dict[str, str], None] = None
    pixel_size: Optional[float] = None


class Spectra(_Model):
    files: list[str]
    elements: list[str]
    method: Literal["window", "fit", "regularised", "learned"] = "fit"
    angles: Union[Literal["names"], list[float]] = "names"
    downsample: int = 1


class Inputs(_Model):
    simulate: Optional[Simulate] = None
    files: Optional[Files] = None
    spectra: Optional[Spectra] = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("simulate", "files", "spectra") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of simulate, files, spectra (got {', '.join(given) or 'none'})")
        return self


class Align(_Model):
    reference: str = "HAADF"
    method: Literal["xcorr", "com", "matching", "xcorr+matching", "com+matching"] = "xcorr+matching"
    iterations: int = 5
    centre: bool = True


class Denoise(_Model):
    method: str
    options: dict = {}
    signals: Optional[list[str]] = None

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        from .denoise.registry import DENOISERS

        if v not in DENOISERS:
            raise ValueError(f"unknown denoiser {v!r}; allowed: {', '.join(DENOISERS)}")
        return v

    @model_validator(mode="after")
    def _options_known(self):
        from .denoise.registry import denoiser_options

        accepted = denoiser_options(self.method)
        unknown = sorted(set(self.options) - set(accepted))
        if unknown:
            raise ValueError(f"denoiser {self.method} has no option {', '.join(unknown)}; "
                             f"its options are {', '.join(accepted)}")
        return self


class Views(_Model):
    step: float
    range: Optional[tuple[float, float]] = None
    minutes: float = 1.0
    signals: Optional[list[str]] = None

    @model_validator(mode="after")
    def _valid(self):
        if not self.step > 0:
            raise ValueError(f"step must be a positive angle step in degrees, got {self.step}")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high] in degrees with low < high, got {list(self.range)}")
        if not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        return self


class Reconstruct(_Model):
    method: str = "auto"
    iterations: Optional[int] = None
    thickness: Optional[int] = None
    stop: Optional[Literal["none", "discrepancy"]] = None
    options: dict = {}

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        from .recon.joint import JOINT_METHODS
        from .recon.registry import METHODS

        allowed = ["auto", *METHODS, *JOINT_METHODS]
        if v not in allowed:
            raise ValueError(f"unknown method {v!r}; allowed: {', '.join(allowed)}")
        return v


class Quantify(_Model):
    core: Optional[str] = None
    core_rule: Literal["share", "otsu"] = "share"
    coverage_threshold: Optional[float] = None


class Outputs(_Model):
    formats: list[Literal["mrc", "tiff", "zarr"]] = ["mrc"]


class Recipe(_Model):
    inputs: Inputs
    align: Optional[Align] = None
    denoise: Optional[Denoise] = None
    views: Optional[Views] = None
    reconstruct: Reconstruct = Reconstruct()
    quantify: Optional[Quantify] = None
    outputs: Outputs = Outputs()
    report: bool = False


def _node_line(node, loc) -> int | None:
    """1-based line of the YAML node at path `loc` (keys and indices), or of the deepest one found."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if nxt is None:
                return line
            line, node = nxt[0].start_mark.line + 1, nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _allowed_keys(loc) -> list[str]:
    model = Recipe
    for key in loc:
        field = model.model_fields.get(str(key))
        if field is None:
            return []
        ann = field.annotation
        args = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not args:
            return []
        model = args[0]
    return list(model.model_fields)


def load_recipe(path) -> Recipe:
    """Read and validate a recipe file; errors name the line, the key and what is allowed."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ChemtomoError(f"recipe {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data, root = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as err:
        raise ChemtomoError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ChemtomoError(f"{path} must be a mapping with inputs:, reconstruct:, ... at the top")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = [k for k in e["loc"] if not (isinstance(k, str) and k.startswith("function-"))]
            where = ".".join(str(k) for k in loc) or "(top)"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = f"unknown key; allowed: {', '.join(_allowed_keys(loc[:-1]))}"
            lines.append(f"{path.name} line {_node_line(root, loc)}: {where}: {msg}")
        raise ChemtomoError("; ".join(lines)) from None


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _versions() -> dict:
    import numpy
    import torch

    from . import __version__

    return {"chemtomo": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch.__version__}


def _write_series(series, folder: Path) -> None:
    from .io import write_stack

    folder.mkdir(parents=True, exist_ok=True)
    for name in series.names:
        write_stack(folder / f"{name}.mrc", series[name].data, series[name].angles, pixel_size=series.pixel_size)
    (folder / "signals.json").write_text(json.dumps(series.names))


def _read_series(folder: Path):
    from .io import read_tilt_series

    names = json.loads((folder / "signals.json").read_text())
    return read_tilt_series({n: folder / f"{n}.mrc" for n in names}, None)


def _inputs(recipe: Recipe, folder: Path):
    from .io import read_tilt_series

    inp = recipe.inputs
    if inp.simulate is not None:
        from .simulate.command import simulate_to_directory

        s = inp.simulate
        simulate_to_directory(folder / "simulation", s.phantom, s.elements, tilts=s.tilts, signals=tuple(s.signals),
                              dose=s.dose, size=s.size, seed=s.seed, voxel_size=s.voxel_size,
                              solid_angle=s.solid_angle)
        sim = folder / "simulation"
        names = [p.stem for p in sorted(sim.glob("*.mrc"))]
        return read_tilt_series({n: sim / f"{n}.mrc" for n in names}, None)
    if inp.files is not None:
        f = inp.files
        return read_tilt_series(f.signals, f.angles, pixel_size=f.pixel_size)
    from .spectral.series import maps_series

    sp = inp.spectra
    files = sorted({p for pattern in sp.files for p in (glob.glob(pattern) or [pattern])})
    return maps_series(files, sp.elements, method=sp.method, angles=sp.angles, downsample=sp.downsample)


def _series_step(step, name: str, settings, record_name: str, work):
    """Run (or resume) a step whose `work()` returns ``(TiltSeries, record)``: the series and the record's JSON
    are written into the step's folder and read back on resume."""
    from .io.write import atomic_write, to_json

    def run(folder):
        out_series, rec = work()
        _write_series(out_series, folder / "series")
        with atomic_write(folder / record_name) as tmp:
            tmp.write_text(json.dumps(to_json(rec), indent=1))
        return out_series, rec

    def load(folder):
        return _read_series(folder / "series"), json.loads((folder / record_name).read_text())

    return step(name, settings, run, load)


def run_recipe(recipe: Recipe | str | Path, out_dir, *, resume: bool = False, log=print) -> dict:
    """Run a recipe into `out_dir` (module notes); returns the run record (``run.json``)."""
    from .io import write_volume_set
    from .io.write import atomic_write, to_json

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = recipe.model_dump()
    with atomic_write(out / "recipe.resolved.json") as tmp:
        tmp.write_text(json.dumps(resolved, indent=1))
    record = {"versions": _versions(), "steps": {}}
    upstream = ""

    def step(name, settings, work, load):
        nonlocal upstream
        folder = out / name
        key = _hash([upstream, settings])
        marker = folder / "step.json"
        if resume and marker.is_file() and json.loads(marker.read_text()).get("hash") == key:
            log(f"{name}: done before, skipped")
            record["steps"][name] = json.loads(marker.read_text()) | {"skipped": True}
            upstream = key
            return load(folder)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        result = work(folder)
        info = {"hash": key, "seconds": round(time.perf_counter() - t0, 3), "versions": record["versions"],
                "settings": settings}
        with atomic_write(marker) as tmp:
            tmp.write_text(json.dumps(to_json(info), indent=1))
        log(f"{name}: {info['seconds']:.1f} s")
        record["steps"][name] = info
        upstream = key
        return result

    def inputs_work(folder):
        series = _inputs(recipe, folder)
        _write_series(series, folder / "series")
        return series

    series = step("1-inputs", resolved["inputs"], inputs_work, lambda f: _read_series(f / "series"))
    if recipe.align is not None:
        from .align import align_series

        a = recipe.align

        def align_work(folder):
            aligned, _ = align_series(series, reference=a.reference, method=a.method, iterations=a.iterations,
                                      centre=a.centre)
            _write_series(aligned, folder / "series")
            return aligned

        series = step("2-align", resolved["align"], align_work, lambda f: _read_series(f / "series"))
    denoised = None
    if recipe.denoise is not None:
        from .denoise.series import denoise_series

        d = recipe.denoise

        series, denoised = _series_step(
            step, "2b-denoise", resolved["denoise"], "denoise.json",
            lambda: denoise_series(series, d.method, signals=d.signals, options=d.options))
    views = None
    if recipe.views is not None:
        from .views import synthesize_series

        vw = recipe.views

        series, views = _series_step(
            step, "2c-views", resolved["views"], "views.json",
            lambda: synthesize_series(series, vw.step, signals=vw.signals, limits=vw.range,
                                      thickness=recipe.reconstruct.thickness, options={"minutes": vw.minutes}))
    r = recipe.reconstruct

    def recon_work(folder):
        from .denoise.series import AUTO_AFTER_DENOISE
        from .recon.series import reconstruct_series

        changed = denoised is not None or views is not None
        method = AUTO_AFTER_DENOISE if changed and r.method == "auto" else r.method
        vs = reconstruct_series(series, method, iterations=r.iterations, thickness=r.thickness, stop=r.stop,
                                options=r.options)
        if denoised is not None:
            vs.provenance["denoise"] = denoised
        if views is not None:
            vs.provenance["views_synthesis"] = views
        write_volume_set(vs, folder, formats=tuple(recipe.outputs.formats))
        return folder

    recon_dir = step("3-reconstruct", [resolved["reconstruct"], resolved["outputs"]], recon_work, lambda f: f)
    if recipe.quantify is not None:
        from .pipeline.quantify import quantify_run

        q = recipe.quantify

        def quant_work(folder):
            quantify_run(recon_dir, folder, core=q.core, core_rule=q.core_rule,
                         coverage_threshold=q.coverage_threshold)
            return folder

        step("4-quantify", resolved["quantify"], quant_work, lambda f: f)
    if recipe.report:
        from .report.html import build_report

        def report_work(folder):
            quant = out / "4-quantify" / "quantify.json"
            if quant.is_file():  # the report reads RUN_DIR/quantify
                (recon_dir / "quantify").mkdir(exist_ok=True)
                for f in (out / "4-quantify").iterdir():
                    if f.is_file() and f.name != "step.json":
                        (recon_dir / "quantify" / f.name).write_bytes(f.read_bytes())
            return build_report(recon_dir, folder / "report.html")

        step("5-report", True, report_work, lambda f: f / "report.html")
    with atomic_write(out / "run.json") as tmp:
        tmp.write_text(json.dumps(to_json(record), indent=1))
    return record
