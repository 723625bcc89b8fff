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
spectrum image per tilt, maps as ``chemtomo maps``; ``method`` default ``fit``, ``read_noise: 3.0`` or
``auto`` for CCD spectra). The recipe is the one settings object of a run
(``chemtomo reconstruct`` builds the same sections from its options); it is validated by pydantic
before anything runs: an unknown key or a wrong value stops with the file's line number,
the key and the allowed keys or values.

An optional ``denoise: {method: gaussian}`` step (any of
:data:`chemtomo.denoise.registry.DENOISERS`, with ``options`` and ``signals``,
default every count signal) denoises the projection maps between alignment
and reconstruction; ``reconstruct: {method: auto}`` then means SIRT
(denoised maps are no longer Poisson counts). An optional ``views: {step: 5,
range: [-75, 75], minutes: 1}`` step then fills unmeasured tilt angles with
synthesized views (:func:`chemtomo.views.synthesize_series`).

Relative input paths in a recipe file (``files: signals`` and ``angles``, ``spectra: files`` and their glob
patterns) name files relative to the folder holding the recipe, so a recipe runs the same from any
current folder; absolute paths are kept. :func:`load_recipe` resolves them; a :class:`Recipe` built in
Python without a file keeps its paths as given (relative to the current folder). A recipe names no
output path: ``--out DIR`` is a command-line argument, relative to the current folder like every
other one.

Every step writes into its own folder of ``DIR`` (``1-inputs``, ``2-align``, ``2b-denoise``, ``2c-views``,
``3-reconstruct``, ``4-quantify``, ``5-report`` with ``report: true``) and, when it has finished, a ``step.json`` with
the hash of its resolved settings and of the steps before it, its time and the
versions. ``--resume`` skips every step whose ``step.json`` matches (nothing is
recomputed), so a killed run continues where it stopped and a changed setting
reruns that step and the ones after it. ``DIR/recipe.resolved.json`` holds the
recipe with every default filled in, ``DIR/run.json`` the versions and timings.

``threads: N`` sets the CPU threads of the run (1 to the cores available; default: the free
cores, :func:`chemtomo.core.threads.default_threads`); ``chemtomo --threads N run`` overrides
it, and ``chemtomo batch`` runs each recipe with its per-worker count (default 1). The thread
count changes no result, so it is not part of any step's hash: ``--resume`` skips the same steps.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Field, FiniteFloat, NonNegativeFloat, PositiveFloat, PositiveInt,
                      ValidationError, field_validator, model_validator)

from ..core.errors import ChemtomoError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Simulate(_Model):
    phantom: str
    elements: list[str]
    dose: PositiveFloat
    size: int = Field(64, ge=8, le=1024)
    voxel_size: PositiveFloat = 0.5
    tilts: str = "-70:70:10"
    signals: list[str] = ["HAADF", "EDX"]
    seed: int = 0
    solid_angle: PositiveFloat = 0.7


def _signal_names(names):
    from ..core.names import parse_signal_name

    for name in names:
        try:
            parse_signal_name(name)
        except ChemtomoError as err:
            raise ValueError(str(err)) from None
    return names


class Files(_Model):
    signals: dict[str, str]
    angles: Union[str, dict[str, str], None] = None
    pixel_size: Optional[PositiveFloat] = None

    @field_validator("signals")
    @classmethod
    def _names(cls, v):
        if not v:
            raise ValueError("give at least one signal, NAME: PATH")
        return _signal_names(v)


class Spectra(_Model):
    """Spectrum images to map (as ``chemtomo maps``); ``read_noise``: CCD read-out noise per channel in electrons
    or ``auto`` (methods fit, regularised and learned; none for counting detectors)."""

    files: list[str]
    elements: list[str]
    method: Literal["window", "fit", "regularised", "learned"] = "fit"
    angles: Union[Literal["names"], list[float]] = "names"
    downsample: int = 1
    read_noise: Union[Literal["auto"], NonNegativeFloat, None] = None

    @model_validator(mode="after")
    def _noise(self):
        if self.read_noise is not None and self.method == "window":
            raise ValueError("read_noise is for methods fit, regularised and learned; drop it or use method: fit")
        return self


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
    method: Literal["xcorr", "com", "matching", "xcorr+matching", "com+matching"] = "xcorr"
    iterations: int = 5
    centre: Union[bool, Literal["auto"]] = "auto"
    rotation: Union[float, Literal["estimate"]] = "estimate"
    tilt_axis: Literal["auto", "y", "x"] = "auto"


class Denoise(_Model):
    method: str
    options: dict = {}
    signals: Optional[list[str]] = None

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        from ..denoise.registry import DENOISERS

        if v not in DENOISERS:
            raise ValueError(f"unknown denoiser {v!r}; allowed: {', '.join(DENOISERS)}")
        return v

    @model_validator(mode="after")
    def _options_known(self):
        from ..denoise.registry import denoiser_options

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

    @field_validator("step")
    @classmethod
    def _step(cls, v):
        if not v > 0:
            raise ValueError(f"step must be a positive angle step in degrees, got {v}")
        return v

    @field_validator("range")
    @classmethod
    def _range(cls, v):
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"the range must be LO:HI (low, high) in degrees with LO < HI, got {list(v)}")
        return v

    @field_validator("minutes")
    @classmethod
    def _minutes(cls, v):
        if not v > 0:
            raise ValueError(f"minutes must be > 0, got {v}")
        return v


class Reconstruct(_Model):
    """The reconstruction step: method, iterations, geometry (thickness in voxels, axis offset in pixels), options."""

    method: str = "auto"
    iterations: Optional[PositiveInt] = None
    thickness: Optional[PositiveInt] = None
    axis_offset: FiniteFloat = 0.0
    stop: Optional[Literal["none", "discrepancy"]] = None
    options: dict = {}
    candidates: Optional[list[str]] = None

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v):
        if v is not None:
            from .candidates import Candidate

            if not v:
                raise ValueError("candidates is empty; name at least one, e.g. [tv, dtv]")
            for c in v:
                Candidate.parse(c)
        return v

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        from ..recon.registry import check_method

        if v != "auto":
            check_method(v, {})
        return v

    @model_validator(mode="after")
    def _valid(self):
        from ..recon.registry import check_method

        if self.method != "auto":
            check_method(self.method, self.options, iterations=self.iterations,
                         stop=None if self.stop == "none" else self.stop)
            if self.candidates is not None:
                raise ValueError("candidates are for method auto; drop them or use method: auto")
        elif self.options:
            raise ValueError("options need a named method (auto chooses its candidates' settings); give method: too")
        elif self.stop == "discrepancy":
            raise ValueError("auto chooses iterations on held-out data; stop: discrepancy is for a named method")
        return self


class Quantify(_Model):
    """The quantification step (as ``chemtomo quantify``): `smooth` Gaussian sigma in voxels before the
    threshold, `min_size` in voxels (None: the data-driven default, docs/quantify.md)."""

    core: Optional[str] = None
    core_rule: Literal["share", "otsu"] = "share"
    coverage_threshold: Optional[float] = None
    smooth: NonNegativeFloat = 1.0
    min_size: Optional[PositiveInt] = None


class Outputs(_Model):
    formats: list[Literal["mrc", "tiff", "zarr", "hspy"]] = ["mrc"]


class Recipe(_Model):
    inputs: Inputs
    align: Optional[Align] = None
    denoise: Optional[Denoise] = None
    views: Optional[Views] = None
    reconstruct: Reconstruct = Reconstruct()
    quantify: Optional[Quantify] = None
    outputs: Outputs = Outputs()
    report: bool = False
    threads: Optional[int] = None

    @field_validator("threads")
    @classmethod
    def _threads(cls, v):
        from ..core.threads import check_threads

        if v is not None:
            try:
                check_threads(v, "the thread count")
            except ChemtomoError as err:
                raise ValueError(str(err)) from None
        return v


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
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise ChemtomoError(f"recipe {path} is {path.stat().st_size} bytes; a recipe is a short YAML text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChemtomoError(f"recipe {path} is not a text file (not UTF-8); give the YAML recipe") from None
    try:
        root = yaml.compose(text)
        if _expanded_size(root) > MAX_RECIPE_NODES:
            raise ChemtomoError(f"recipe {path} expands to more than {MAX_RECIPE_NODES} values (aliases or nesting); "
                                "write the recipe out plainly")
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ChemtomoError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ChemtomoError(f"recipe {path} is nested too deeply; a recipe has a few levels of keys") from None
    if not isinstance(data, dict):
        raise ChemtomoError(f"{path} must be a mapping with inputs:, reconstruct:, ... at the top")
    try:
        return resolve_paths(Recipe.model_validate(data), Path(os.path.abspath(path)).parent)
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


def _joined(base: Path, name: str) -> str:
    """`name` relative to `base` (absolute names unchanged); in a glob pattern `base` is escaped."""
    if Path(name).is_absolute():
        return name
    if glob.has_magic(name):
        return os.path.join(glob.escape(str(base)), name)
    return str(base / name)


def resolve_paths(recipe: Recipe, base) -> Recipe:
    """A copy of `recipe` whose relative input paths (files, angle files, spectrum patterns) are joined to `base`.

    :func:`load_recipe` calls it with the recipe file's folder; absolute paths are kept.
    """
    base = Path(base)
    inputs = recipe.inputs
    if inputs.files is not None:
        f = inputs.files
        angles = f.angles
        if isinstance(angles, dict):
            angles = {k: _joined(base, v) for k, v in angles.items()}
        elif angles is not None:
            angles = _joined(base, angles)
        files = f.model_copy(update={"signals": {k: _joined(base, v) for k, v in f.signals.items()},
                                     "angles": angles})
        inputs = inputs.model_copy(update={"files": files})
    if inputs.spectra is not None:
        sp = inputs.spectra
        inputs = inputs.model_copy(update={"spectra": sp.model_copy(
            update={"files": [_joined(base, p) for p in sp.files]})})
    return recipe.model_copy(update={"inputs": inputs})


MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_NODES = 100_000
MAX_RECIPE_DEPTH = 32


def _expanded_size(node, depth: int = 0, memo: dict | None = None) -> int:
    """Values in a composed YAML tree with every alias expanded, counted without expanding; deep trees refused."""
    if node is None:
        return 0
    if depth > MAX_RECIPE_DEPTH:
        raise RecursionError
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 0  # a cycle counts once
    children = node.value if isinstance(node.value, list) else []
    total = 1
    for child in children:
        pair = child if isinstance(child, tuple) else (child,)
        total += sum(_expanded_size(c, depth + 1, memo) for c in pair)
    memo[id(node)] = total
    return total


def settings(model: type[BaseModel], flags: dict[str, str] | None = None, **values):
    """One settings section from command-line values; a bad value stops with one line naming its flag.

    `flags` maps field names to the options that set them (``{"iterations": "--iterations"}``).
    """
    try:
        return model(**values)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            field = str(e["loc"][0]) if e["loc"] else ""
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{(flags or {}).get(field, field)}: {msg}" if field else msg)
        raise ChemtomoError("; ".join(parts)) from None
