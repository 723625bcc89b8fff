"""Nanoparticle phantoms: per-element concentration volumes from analytic shapes.

A phantom is a dict ``{element: float32 array v[y, z, x]}`` of concentrations
in 0..1 whose sum per voxel is the particle's partial-volume occupancy (<= 1).
Shapes are signed-distance functions (:mod:`chemtomo.simulate.sdf`); occupancy
is ``clip(0.5 - sdf, 0, 1)`` with sdf in voxels, a linear ramp over one voxel.

Every phantom is described by a JSON-serialisable *spec* dict, and
:func:`render_phantom` turns a spec into volumes, identically on any machine.
:func:`random_spec` draws a spec (the ranges of Skorikov's generator, METHODS.md
section 5), :func:`parse_spec` builds one from a short text such as
``"core-shell:rod,aspect=3,interface=2"``.

Spec layout
-----------
``{"shape": [ny, nz, nx], "elements": [...], "seed": ..., "particles": [particle, ...]}``;
each particle is ``{"composition", "elements", "body", ...}``:

* ``body``: ``family``, ``size`` (largest extent along y, z or x, voxels),
  ``aspect``, ``truncation``, ``rounding``, ``tip_rounding``, ``thickness``
  (see :func:`chemtomo.simulate.sdf.make_body`), ``rotation`` (unit quaternion
  w, a_y, a_z, a_x, body to grid) and ``centre`` (voxels from the grid centre, y, z, x).
* ``composition``: ``single`` (``elements[0]``); ``alloy`` (``fractions``, one
  per element); ``gradient`` (fraction of ``elements[0]`` goes linearly with
  depth from ``gradient[1]`` at the surface to ``gradient[0]`` at the deepest
  point, the rest is ``elements[1]``); ``core-shell`` and ``multi-shell``
  (``elements`` from the core outwards, e.g. Au, Ag, Au for Au@Ag@Au).
* ``cores`` (core-shell, multi-shell): inner bodies, innermost first, each with
  the body keys above except size/rotation/centre plus ``ratio`` (its
  enclosing-sphere diameter over the outer body's) and ``offset`` (its centre
  shift in the body frame, in outer radii). Cores share the outer rotation and
  are clipped to the enclosing layer.
* ``interface`` (voxels, 0 = sharp) and ``interface_mode``: ``graded`` (linear
  ramp of that width across the core surface) or ``blur`` (Gaussian of
  standard deviation ``0.312 * interface``, the same 10-90 % rise of 0.8 width).

Text grammar (:func:`parse_spec`, :func:`phantom_from_spec`)
-----------------------------------------------------------
``[composition ":"] family ("," key "=" value)*``

* composition: ``single`` (default), ``alloy``, ``gradient``, ``core-shell``, ``multi-shell``.
* family: one of :data:`FAMILIES` or ``random``.
* keys (lists are separated by ``/``): ``size`` (largest extent, fraction of
  the smallest box side), ``aspect``, ``truncation``, ``rounding``, ``tip``,
  ``thickness``, ``rotation`` (``random``, ``none`` or ``w/a/b/c``),
  ``position`` (``random`` or ``centre``), ``n`` (particles in the field);
  core-shell and multi-shell: ``core`` (family or families, innermost first, or
  ``random``), ``ratio`` (one per core), ``offset`` (fraction of the outer radius),
  ``interface`` (voxels), ``mode`` (``graded`` or ``blur``); alloy:
  ``fractions``; gradient: ``gradient`` (centre/surface fraction of the first element).

Any parameter not given is drawn from the same distributions as
:func:`random_spec` with ``np.random.default_rng(seed)``, except the cores: a
core follows the particle (a centred copy of its family and shape keys scaled
by ``ratio``, so its volume fraction is about ``ratio**3``) unless ``core=``
names another family (whose shape keys are drawn; still centred unless
``offset=``); ``core=random`` draws family, shape and offset as random specs do. ``elements`` gives the
element names: core first for core-shell; the layers from the core outwards for
multi-shell (two names ``A, B`` mean ``A@B@A``).

>>> vols = phantom_from_spec("core-shell:cube,ratio=0.6,interface=2", ["Au", "Ag"], shape=(32, 32, 32))
>>> sorted(vols), vols["Au"].shape, bool((vols["Au"] + vols["Ag"]).max() <= 1)
(['Ag', 'Au'], (32, 32, 32), True)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError
from ..physics.counts import as_rng
from .sdf import FAMILIES, PLATES, body_sdf, extent, make_body, occupancy, quaternion_matrix

#: Kinds of composition a particle can have.
COMPOSITIONS = ("single", "alloy", "gradient", "core-shell", "multi-shell")
#: Families used for shells and cores (METHODS.md section 5).
CORE_SHELL_FAMILIES = ("sphere", "cube", "rod", "octahedron", "truncated-octahedron", "icosahedron", "decahedron", "bipyramid")
_SHAPE_KEYS = ("aspect", "truncation", "rounding", "tip_rounding", "thickness")
_MIN_ELEMENTS = {"single": 1, "alloy": 2, "gradient": 2, "core-shell": 2, "multi-shell": 2}


# ----------------------------------------------------------------------------- rendering


def render_phantom(spec: dict) -> dict[str, np.ndarray]:
    """Concentration volumes of a phantom spec.

    Parameters
    ----------
    spec : dict
        As described in the module docstring (e.g. from :func:`random_spec`,
        :func:`parse_spec` or ``json.loads`` of a stored spec).

    Returns
    -------
    volumes : dict of str to float32 array, shape ``spec["shape"]``
        One concentration volume per element of ``spec["elements"]``, values in
        0..1, summing to at most 1 per voxel.

    Raises
    ------
    ChemtomoError
        If the spec is malformed.
    """
    try:
        shape = tuple(int(n) for n in spec["shape"])
        elements = list(spec["elements"])
        particles = list(spec["particles"])
    except (KeyError, TypeError) as err:
        raise ChemtomoError(f"phantom spec needs shape, elements and particles, got keys {sorted(spec)}; "
                            "build it with random_spec or parse_spec") from err
    if len(shape) != 3 or min(shape) < 1:
        raise ChemtomoError(f"phantom shape must be three positive sizes (ny, nz, nx), got {shape}")
    out = {e: np.zeros(shape, np.float32) for e in elements}
    for particle in particles:
        _render_particle(particle, shape, out)
    if len(particles) > 1:  # overlapping particles: keep the sum <= 1
        total = sum(out.values())
        scale = 1 / np.maximum(total, 1)
        for v in out.values():
            v *= scale
    return out


def _scale(body, rotation, size):
    lo, hi = extent(body, rotation, 1.0)
    return size / float((hi - lo).max())


def _render_particle(p, shape, out):
    b = p["body"]
    body = make_body(b["family"], **{k: b[k] for k in _SHAPE_KEYS if k in b})
    rot, centre = b["rotation"], np.asarray(b["centre"], dtype=np.float64)
    scale = _scale(body, rot, b["size"])
    lo, hi = extent(body, rot, scale)
    mid = (np.asarray(shape) - 1) / 2
    box = tuple(slice(max(0, int(np.floor(c + lo_ + m)) - 1), min(n, int(np.ceil(c + hi_ + m)) + 2))
                for c, lo_, hi_, m, n in zip(centre, lo, hi, mid, shape))
    if any(s.stop <= s.start for s in box):
        return
    sdf = body_sdf(body, shape, rot, scale, centre, box)
    occ = occupancy(sdf)
    kind, els = p["composition"], p["elements"]
    missing = [e for e in els if e not in out]
    if missing or kind not in COMPOSITIONS:
        raise ChemtomoError(f"particle uses composition {kind!r} and elements {els} but the phantom has elements "
                            f"{list(out)}; compositions are {', '.join(COMPOSITIONS)}")
    if kind == "single":
        out[els[0]][box] += occ
    elif kind == "alloy":
        for e, f in zip(els, p["fractions"]):
            out[e][box] += np.float32(f) * occ
    elif kind == "gradient":
        depth = np.maximum(-sdf, 0)
        g_in, g_out = p["gradient"]
        frac = np.float32(g_out) + np.float32(g_in - g_out) * depth / max(float(depth.max()), 1e-6)
        out[els[0]][box] += occ * frac
        out[els[1]][box] += occ * (1 - frac)
    else:
        rot_m = quaternion_matrix(rot)
        radius = body.radius() * scale
        width, mode = float(p.get("interface", 0.0)), p.get("interface_mode", "graded")
        inner = []
        for c in p["cores"]:
            core = make_body(c["family"], **{k: c[k] for k in _SHAPE_KEYS if k in c})
            c_scale = c["ratio"] * radius / core.radius()
            c_centre = centre + rot_m @ (np.asarray(c.get("offset", (0, 0, 0)), dtype=np.float64) * radius)
            d = body_sdf(core, shape, rot, c_scale, c_centre, box)
            if width > 0 and mode == "graded":
                inner.append(np.clip(np.float32(0.5) - d / np.float32(width), 0, 1))
            else:
                frac = occupancy(d)
                if width > 0:
                    frac = ndimage.gaussian_filter(frac, 0.312 * width, mode="nearest")
                inner.append(frac)
        cum = inner + [np.ones_like(occ)]
        for k in range(len(cum) - 2, -1, -1):  # nested: each layer inside the next
            np.minimum(cum[k], cum[k + 1], out=cum[k])
        prev = 0
        for e, f in zip(els, cum):
            out[e][box] += occ * (f - prev)
            prev = f


# ----------------------------------------------------------------------------- random draws


def _random_rotation(rng):
    q = rng.normal(size=4)
    return (q / np.linalg.norm(q)).tolist()


def _draw_shape(rng, family):
    """Family parameters per METHODS.md section 5; always draws the same number of values."""
    u = rng.uniform(size=6)
    shape = {"aspect": 1.0, "truncation": 0.0, "rounding": 0.1 * u[0], "tip_rounding": 0.0, "thickness": 0.2}
    if family in ("sphere", "rod", "ellipsoid"):
        shape["rounding"] = 0.0
    if family == "rod":
        shape["aspect"] = 1 / (0.25 + 0.75 * u[1])  # height 1, diameter U(0.25, 1)
    elif family == "ellipsoid":
        shape["aspect"] = float(np.exp(np.log(0.5) + np.log(4) * u[1]))
    elif family == "bipyramid":
        shape["aspect"] = 1 / np.tan(np.deg2rad(12.5 + 5 * u[1]))  # tip angle 25-35 degrees
        shape["truncation"] = shape["rounding"]
    elif family in ("truncated-octahedron", "truncated-triangle"):
        shape["truncation"] = u[2]
    if family in PLATES:
        shape["thickness"] = 0.1 + 0.2 * u[3]
        shape["tip_rounding"] = 0.1 * u[4]
    return {k: float(v) for k, v in shape.items()}


def _draw_particle(rng, shape, elements, composition, family, size_range, opts, ordered):
    """One particle dict; `opts` holds text-grammar overrides, `ordered` keeps the user's element order."""
    if composition is None:
        allowed = [c for c in COMPOSITIONS if _MIN_ELEMENTS[c] <= len(elements)]
        composition = str(rng.choice(allowed))
    pool = CORE_SHELL_FAMILIES if composition in ("core-shell", "multi-shell") else FAMILIES
    family = str(rng.choice(pool)) if family in (None, "random") else family
    body = {"family": family, **_draw_shape(rng, family)}
    rotation = _random_rotation(rng)
    size = float(rng.uniform(*size_range)) * min(shape)
    position = rng.uniform(size=3)
    body.update({k: v for k, v in opts.items() if k in _SHAPE_KEYS})
    if "size" in opts:
        size = opts["size"] * min(shape)
    if "rotation" in opts:
        rotation = [1.0, 0.0, 0.0, 0.0] if opts["rotation"] == "none" else rotation if opts["rotation"] == "random" \
            else list(np.asarray(opts["rotation"]) / np.linalg.norm(opts["rotation"]))
    made = make_body(family, **{k: body[k] for k in _SHAPE_KEYS})
    lo, hi = extent(made, rotation, _scale(made, rotation, size))
    half = 0.475 * np.asarray(shape, dtype=np.float64)
    low, high = -half - lo, half - hi
    centre = np.where(low < high, low + position * (high - low), (low + high) / 2)
    if opts.get("position") == "centre":
        centre = np.zeros(3)
    body.update(size=size, rotation=[float(x) for x in rotation], centre=[float(x) for x in centre])

    shuffled = [str(e) for e in rng.permutation(elements)]
    els = list(elements) if ordered else shuffled
    if composition == "single":
        els = els[:1]
    elif composition in ("core-shell", "gradient"):
        els = els[:2]
    elif composition == "multi-shell" and len(els) == 2:
        els = [els[0], els[1], els[0]]
    particle = {"composition": composition, "elements": els, "body": body}
    if composition == "alloy":
        fr = opts.get("fractions", rng.dirichlet(np.ones(len(els))))
        if len(fr) != len(els) or min(fr) < 0 or sum(fr) <= 0:
            raise ChemtomoError(f"fractions={'/'.join(map(str, fr))} needs {len(els)} non-negative values, one per element")
        particle["fractions"] = [float(f) / float(sum(fr)) for f in fr]
    elif composition == "gradient":
        g = [float(rng.uniform(0.7, 1.0)), float(rng.uniform(0.0, 0.3))]
        particle["gradient"] = [float(x) for x in opts.get("gradient", g)]
        if len(particle["gradient"]) != 2 or not all(0 <= x <= 1 for x in particle["gradient"]):
            raise ChemtomoError(f"gradient takes two fractions in [0, 1] (centre/surface), got {particle['gradient']}")
    elif composition in ("core-shell", "multi-shell"):
        particle.update(_draw_cores(rng, len(els) - 1, opts, body if ordered else None))
    return particle


def _draw_cores(rng, n_cores, opts, outer=None):
    """Cores of a core-shell or multi-shell particle, innermost first.

    With `outer` (the particle's body; text specs) a core not named by ``core=``
    is a centred, scaled copy of the particle (its family and shape keys), so
    its volume fraction is about ``ratio**3``; ``core=random`` and random specs
    (``outer=None``) draw each core's family, shape and offset instead.
    """
    families = [str(f) for f in rng.choice(CORE_SHELL_FAMILIES, n_cores)]
    ratios = np.cumprod(rng.uniform(0.5, 0.9, n_cores))[::-1]  # innermost first
    off_centre = rng.uniform() < 0.25 and n_cores == 1
    direction = rng.normal(size=3)
    offset = rng.uniform() * (1 - ratios[-1]) * direction / np.linalg.norm(direction) * off_centre
    interface = float(rng.uniform(1, 6)) if rng.uniform() < 0.5 else 0.0
    mode = str(rng.choice(["graded", "blur"]))
    named = opts.get("core", [outer["family"]] * n_cores if outer is not None else None)
    if named is not None:
        if len(named) != n_cores:
            raise ChemtomoError(f"core and ratio need {n_cores} entries (innermost first), got core={'/'.join(named)}")
        families = [fam if g == "random" else g for g, fam in zip(named, families)]
        if outer is not None and "random" not in named:
            offset = np.zeros(3)
    ratios = opts.get("ratio", ratios)
    if "offset" in opts:
        offset = opts["offset"] * direction / np.linalg.norm(direction)
    if len(families) != n_cores or len(ratios) != n_cores:
        raise ChemtomoError(f"core and ratio need {n_cores} entries (innermost first), got core={'/'.join(families)} "
                            f"ratio={'/'.join(map(str, ratios))}")
    if not all(0 < r <= 1 for r in ratios) or list(ratios) != sorted(ratios):
        raise ChemtomoError(f"ratio values must rise from the core outwards within (0, 1], got {list(ratios)}")
    cores = []
    for k, (fam, ratio) in enumerate(zip(families, ratios)):
        core = {"family": fam, **_draw_shape(rng, fam), "ratio": float(ratio), "offset": [0.0, 0.0, 0.0]}
        if outer is not None and fam == outer["family"] and named[k] != "random":
            core.update({key: outer[key] for key in _SHAPE_KEYS})  # a scaled copy of the particle
        if k == n_cores - 1:
            core["offset"] = [float(x) for x in offset]
        cores.append(core)
    return {"cores": cores, "interface": float(opts.get("interface", interface)),
            "interface_mode": opts.get("mode", mode)}


def random_spec(rng, shape=(128, 128, 128), elements=("Au", "Ag"), *, families=None, compositions=None,
                max_particles: int = 1) -> dict:
    """Draw a random phantom spec (ranges of METHODS.md section 5).

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        Random source; the same seed gives the same spec.
    shape : (int, int, int), default (128, 128, 128)
        Grid shape ``(ny, nz, nx)``.
    elements : sequence of str, default ("Au", "Ag")
        Element names (any strings); the output volumes' keys.
    families : sequence of str, optional
        Families to draw from (default all of :data:`FAMILIES`; core-shell and
        multi-shell shells and cores use :data:`CORE_SHELL_FAMILIES`).
    compositions : sequence of str, optional
        Compositions to draw from (default all that the number of elements allows).
    max_particles : int, default 1
        Up to this many particles in the field (uniform count); one particle
        fills 75-90 % of the box, several are smaller and placed apart where possible.

    Returns
    -------
    spec : dict
        JSON-serialisable; :func:`render_phantom` turns it into volumes.
    """
    rng_in, rng = rng, as_rng(rng)
    elements = _check_elements(elements)
    comps = [c for c in (compositions or COMPOSITIONS) if _MIN_ELEMENTS.get(c, 99) <= len(elements)]
    if not comps:
        raise ChemtomoError(f"no composition in {compositions} works with {len(elements)} element(s); "
                            f"use one of {', '.join(COMPOSITIONS)}")
    fams = list(families or FAMILIES)
    n = int(rng.integers(1, max_particles + 1))
    particles = []
    for _ in range(n):
        comp = str(rng.choice(comps))
        pool = [f for f in fams if f in CORE_SHELL_FAMILIES] if comp in ("core-shell", "multi-shell") else fams
        fam = str(rng.choice(pool or CORE_SHELL_FAMILIES))
        particles.append(_draw_particle(rng, shape, elements, comp, fam, _size_range(n), {}, False))
    _spread(rng, particles, shape)
    seed = int(rng_in) if isinstance(rng_in, (int, np.integer)) else None
    return {"shape": [int(s) for s in shape], "elements": elements, "particles": particles, "seed": seed}


def random_particle(rng, shape=(128, 128, 128), elements=("Au", "Ag"), *, families=None, compositions=None,
                    max_particles: int = 1) -> tuple[dict[str, np.ndarray], dict]:
    """Draw and render a random phantom: ``(volumes, spec)``; see :func:`random_spec`.

    >>> import json
    >>> vols, spec = random_particle(7, (24, 24, 24), ["Pt", "Ni"])
    >>> json.loads(json.dumps(spec)) == spec
    True
    """
    spec = random_spec(rng, shape, elements, families=families, compositions=compositions, max_particles=max_particles)
    return render_phantom(spec), spec


def _size_range(n):
    return (0.75, 0.9) if n == 1 else tuple(np.array([0.3, 0.45]) * (2 / n) ** (1 / 3))


def _spread(rng, particles, shape, tries=100):
    """Move the particles of a field apart (enclosing spheres), keeping each inside the box."""
    if len(particles) < 2:
        return
    half = 0.475 * np.asarray(shape, dtype=np.float64)
    placed = []
    for p in particles:
        b = p["body"]
        body = make_body(b["family"], **{k: b[k] for k in _SHAPE_KEYS})
        scale = _scale(body, b["rotation"], b["size"])
        lo, hi = extent(body, b["rotation"], scale)
        r = body.radius() * scale
        for _ in range(tries):
            c = rng.uniform(np.minimum(-half - lo, half - hi), np.maximum(-half - lo, half - hi))
            if all(np.linalg.norm(c - c2) > r + r2 for c2, r2 in placed):
                break
        placed.append((c, r))
        b["centre"] = [float(x) for x in c]


def _check_elements(elements):
    els = [elements] if isinstance(elements, str) else list(elements)
    if not els or not all(isinstance(e, str) and e for e in els):
        raise ChemtomoError(f"elements must be a non-empty list of names such as ['Au', 'Ag'], got {elements!r}")
    return list(dict.fromkeys(els))


# ----------------------------------------------------------------------------- text grammar

_KEYS = {  # key -> (compositions it applies to or None for all, parser)
    "size": (None, float), "aspect": (None, float), "truncation": (None, float), "rounding": (None, float),
    "tip": (None, float), "thickness": (None, float), "n": (None, int),
    "rotation": (None, lambda v: v if v in ("random", "none") else [float(x) for x in v.split("/")]),
    "position": (None, lambda v: v if v in ("random", "centre", "center") else _bad("position", v, "random or centre")),
    "core": (("core-shell", "multi-shell"), lambda v: v.split("/")),
    "ratio": (("core-shell", "multi-shell"), lambda v: [float(x) for x in v.split("/")]),
    "offset": (("core-shell",), float), "interface": (("core-shell", "multi-shell"), float),
    "mode": (("core-shell", "multi-shell"), lambda v: v if v in ("graded", "blur") else _bad("mode", v, "graded or blur")),
    "fractions": (("alloy",), lambda v: [float(x) for x in v.split("/")]),
    "gradient": (("gradient",), lambda v: [float(x) for x in v.split("/")]),
}


def _bad(key, value, allowed):
    raise ChemtomoError(f"{key}={value} is not valid; use {allowed}")


def parse_spec(text: str, elements, shape=(128, 128, 128), *, seed=0) -> dict:
    """Build a phantom spec from the text grammar of the module docstring.

    Parameters
    ----------
    text : str
        E.g. ``"cube"``, ``"core-shell:rod,aspect=3,interface=2"``, ``"alloy:sphere,fractions=0.7/0.3"``.
    elements : sequence of str
        Element names (core first; multi-shell layers from the core outwards).
    shape : (int, int, int), default (128, 128, 128)
        Grid shape ``(ny, nz, nx)``.
    seed : int or numpy.random.Generator, default 0
        Source of every parameter the text does not fix.

    Returns
    -------
    spec : dict
        JSON-serialisable spec for :func:`render_phantom`.

    Raises
    ------
    ChemtomoError
        For an unknown composition, family or key, a malformed value, or too few elements.
    """
    head, *mods = [s.strip() for s in str(text).split(",")]
    composition, _, family = head.rpartition(":")
    composition = composition or "single"
    if composition not in COMPOSITIONS:
        raise ChemtomoError(f"unknown composition {composition!r} in {text!r}; use one of {', '.join(COMPOSITIONS)}")
    if family not in FAMILIES + ("random",):
        raise ChemtomoError(f"unknown shape family {family!r} in {text!r}; use one of {', '.join(FAMILIES)} or random")
    opts = {}
    for mod in mods:
        key, eq, value = mod.partition("=")
        if not eq or key not in _KEYS:
            raise ChemtomoError(f"bad modifier {mod!r} in {text!r}; use key=value with keys {', '.join(_KEYS)}")
        comps, parse = _KEYS[key]
        if comps and composition not in comps:
            raise ChemtomoError(f"{key}= applies to {' and '.join(comps)}, not to {composition}")
        try:
            opts["tip_rounding" if key == "tip" else key] = parse(value)
        except ValueError as err:
            raise ChemtomoError(f"cannot read {mod!r} in {text!r}: {err}; numbers and /-separated lists only") from None
    if not 0 < opts.get("size", 0.5) <= 1 or opts.get("n", 1) < 1:
        raise ChemtomoError(f"size must be in (0, 1] of the box and n >= 1, got {text!r}")
    if isinstance(opts.get("rotation"), list) and (len(opts["rotation"]) != 4 or not any(opts["rotation"])):
        raise ChemtomoError(f"rotation takes random, none or a quaternion w/a/b/c, got {text!r}")
    if opts.get("position") == "center":
        opts["position"] = "centre"
    if "core" in opts and any(f not in FAMILIES + ("random",) for f in opts["core"]):
        raise ChemtomoError(f"unknown core family in core={'/'.join(opts['core'])}; use one of {', '.join(FAMILIES)} "
                            "or random")
    raw = [elements] if isinstance(elements, str) else list(elements)
    _check_elements(raw)
    if len(raw) < _MIN_ELEMENTS[composition]:
        raise ChemtomoError(f"{composition} needs at least {_MIN_ELEMENTS[composition]} elements, got {raw}")
    rng = as_rng(seed)
    n = max(1, opts.pop("n", 1))
    particles = [_draw_particle(rng, shape, raw, composition, family, _size_range(n), opts, True) for _ in range(n)]
    if n > 1:
        _spread(rng, particles, shape)
    return {"shape": [int(s) for s in shape], "elements": _check_elements(raw), "particles": particles,
            "seed": seed if isinstance(seed, int) else None, "text": str(text)}


def phantom_from_spec(spec: str, elements, shape=(128, 128, 128), *, seed=0) -> dict[str, np.ndarray]:
    """Concentration volumes of a phantom described by text: ``render_phantom(parse_spec(...))``.

    Parameters
    ----------
    spec : str
        Text grammar of the module docstring, e.g. ``"core-shell:cube"``.
    elements : sequence of str
        Element names; the keys of the result.
    shape : (int, int, int), default (128, 128, 128)
        Grid shape ``(ny, nz, nx)``.
    seed : int or numpy.random.Generator, default 0
        Source of the parameters the text leaves open.

    Returns
    -------
    volumes : dict of str to float32 array, shape `shape`.

    Raises
    ------
    ChemtomoError
        If `spec` cannot be parsed (an unknown family lists the valid ones).
    """
    return render_phantom(parse_spec(spec, elements, shape, seed=seed))
