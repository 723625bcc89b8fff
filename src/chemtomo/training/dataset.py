"""Phantom data sets on disk for training: many random particles streamed into one Zarr group.

Layout of the group written by :func:`write_dataset`::

    <path>/            attrs: "chemtomo" = "phantom-dataset", "config" (the call's
                       arguments), "axes" = ["particle", "y", "z", "x"] and
                       "specs" = {index: phantom spec} for every finished particle
    <path>/<element>   array (n, ny, nz, nx), float16 or float32, one chunk per
                       particle (or per `chunk` block), Zstd-compressed

Particle ``i`` is ``random_spec(np.random.default_rng([seed, i]), ...)``, so any
particle can be regenerated from the seed alone, or from its stored spec with
:func:`chemtomo.simulate.phantoms.render_phantom`. A particle counts as written
once its spec is in the attrs; specs are flushed after the volumes, so a rerun
after an interruption redoes at most the last few particles and skips the rest.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError
from ..simulate.phantoms import random_spec, render_phantom

_KIND = "phantom-dataset"


def _config(n_particles, shape, elements, seed, dtype, chunk, families, compositions, max_particles):
    return {"n_particles": int(n_particles), "shape": [int(s) for s in shape], "elements": list(elements),
            "seed": int(seed), "dtype": str(np.dtype(dtype)), "chunk": [int(c) for c in chunk],
            "families": list(families) if families else None,
            "compositions": list(compositions) if compositions else None, "max_particles": int(max_particles)}


def write_dataset(path, n_particles: int, shape=(128, 128, 128), *, elements=("Au", "Ag"), seed: int = 0,
                  chunk=None, dtype="float16", workers: int = 2, families=None, compositions=None,
                  max_particles: int = 1) -> "PhantomDataset":
    """Generate random phantoms and stream them into a Zarr group, resuming where a previous run stopped.

    Parameters
    ----------
    path : str or Path
        Zarr group directory; created if missing.
    n_particles : int
        Number of phantoms (the first axis of every array).
    shape : (int, int, int), default (128, 128, 128)
        Volume shape ``(ny, nz, nx)`` in voxels.
    elements : sequence of str, default ("Au", "Ag")
        Element names; one array each.
    seed : int, default 0
        Particle ``i`` is drawn with ``np.random.default_rng([seed, i])``.
    chunk : (int, int, int), optional
        Chunk shape inside one volume; default the whole volume (one particle per chunk).
    dtype : {"float16", "float32"}, default "float16"
        Stored precision of the concentrations (float16: error below 5e-4).
    workers : int, default 2
        Processes generating particles; 1 works in this process.
    families, compositions : sequence of str, optional
        Restrict the draws, as in :func:`chemtomo.simulate.phantoms.random_spec`.
    max_particles : int, default 1
        Up to this many particles per volume.

    Returns
    -------
    dataset : PhantomDataset
        Lazy view of the finished group (:func:`read_dataset`).

    Raises
    ------
    ChemtomoError
        If `path` holds something else or a data set written with other arguments.
    """
    import zarr

    shape = tuple(int(s) for s in shape)
    chunk = tuple(int(c) for c in (chunk or shape))
    if np.dtype(dtype) not in (np.float16, np.float32):
        raise ChemtomoError(f"dtype must be float16 or float32, got {dtype}")
    if n_particles < 1 or len(shape) != 3 or len(chunk) != 3:
        raise ChemtomoError(f"need n_particles >= 1 and 3-D shape and chunk, got {n_particles}, {shape}, {chunk}")
    config = _config(n_particles, shape, elements, seed, dtype, chunk, families, compositions, max_particles)
    root = zarr.open_group(str(path), mode="a")
    if root.attrs.get("chemtomo") is None:
        if len(list(root.keys())):
            raise ChemtomoError(f"{path} is a Zarr group but not a chemtomo phantom data set; choose an empty path")
        for e in config["elements"]:
            root.create_array(e, shape=(n_particles, *shape), chunks=(1, *chunk), dtype=dtype, fill_value=0)
        root.attrs.update({"chemtomo": _KIND, "config": config, "axes": ["particle", "y", "z", "x"], "specs": {}})
    elif root.attrs.get("config") != config:
        raise ChemtomoError(f"{path} holds a phantom data set written with other arguments "
                            f"({root.attrs.get('config')}); rerun with those or choose a new path")
    specs = dict(root.attrs.get("specs", {}))
    todo = [i for i in range(n_particles) if str(i) not in specs]
    pending = {}

    def flush():
        specs.update(pending)
        root.attrs["specs"] = specs
        pending.clear()

    last = time.monotonic()
    for i, spec in _generate(str(path), todo, config, workers):
        pending[str(i)] = spec
        if len(pending) >= 64 or time.monotonic() - last > 10:
            flush()
            last = time.monotonic()
    flush()
    return read_dataset(path)


def _generate(path, todo, config, workers):
    """Yield ``(index, spec)`` as particles are written, at most 2 * workers in flight."""
    if workers <= 1:
        for i in todo:
            yield i, _make_one(path, i, config)
        return
    # zarr >= 3 resets its event loop after fork (os.register_at_fork); spawn where fork is missing
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        queue, running = iter(todo), {}
        while True:
            while len(running) < 2 * workers:
                i = next(queue, None)
                if i is None:
                    break
                running[pool.submit(_make_one, path, i, config)] = i
            if not running:
                return
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield running.pop(fut), fut.result()


def _make_one(path, i, config):
    """Draw, render and store particle `i`; returns its spec."""
    import zarr

    rng = np.random.default_rng([config["seed"], i])
    spec = random_spec(rng, config["shape"], config["elements"], families=config["families"],
                       compositions=config["compositions"], max_particles=config["max_particles"])
    spec["seed"] = [config["seed"], i]
    volumes = render_phantom(spec)
    for e, v in volumes.items():
        zarr.open_array(f"{path}/{e}", mode="r+")[i] = v.astype(config["dtype"])
    return spec


class PhantomDataset:
    """Lazy, read-only view of a phantom data set; ``ds[i]`` reads particle ``i`` as float32 arrays.

    Attributes
    ----------
    arrays : dict of str to zarr.Array
        One (n, ny, nz, nx) array per element, read on indexing.
    elements : list of str
    config : dict
        Arguments of the :func:`write_dataset` call.
    """

    def __init__(self, group):
        self._group = group
        self.config = dict(group.attrs["config"])
        self.elements = list(self.config["elements"])
        self.arrays = {e: group[e] for e in self.elements}
        self._specs = dict(group.attrs.get("specs", {}))

    def __len__(self) -> int:
        return self.config["n_particles"]

    def __repr__(self) -> str:
        return f"PhantomDataset({len(self.completed)}/{len(self)} particles, shape={tuple(self.config['shape'])}, elements={self.elements})"

    @property
    def completed(self) -> list[int]:
        """Indices of the particles written so far."""
        return sorted(int(i) for i in self._specs)

    def spec(self, i: int) -> dict:
        """The stored phantom spec of particle `i` (render it with ``render_phantom``)."""
        self._check(i)
        return self._specs[str(i)]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        self._check(i)
        return {e: np.asarray(a[i], dtype=np.float32) for e, a in self.arrays.items()}

    def _check(self, i):
        if str(i) not in self._specs:
            raise ChemtomoError(f"particle {i} is not in this data set ({len(self.completed)} of {len(self)} written); "
                                "run write_dataset again to finish it")


def read_dataset(path) -> PhantomDataset:
    """Open a data set written by :func:`write_dataset` for lazy reading.

    Raises
    ------
    ChemtomoError
        If `path` is not such a data set.
    """
    import zarr

    if not Path(path).exists():
        raise ChemtomoError(f"{path} does not exist; write it with write_dataset first")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as err:  # zarr raises several types for non-groups
        raise ChemtomoError(f"{path} is not a Zarr group ({type(err).__name__}); give a phantom data set directory") from None
    if group.attrs.get("chemtomo") != _KIND:
        raise ChemtomoError(f"{path} is a Zarr group but not a chemtomo phantom data set")
    return PhantomDataset(group)
