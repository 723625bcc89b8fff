"""Batch runs: many particles, one recipe each, processed in parallel on Dask.

``chemtomo batch MANIFEST --out DIR [--workers N] [--scheduler tcp://host:port]``.
The manifest is a CSV file with the columns ``name`` and ``recipe`` (a recipe
path, relative to the manifest's folder), or a folder whose ``*.yaml`` files
are the recipes (named by their stems). Every recipe is validated before
anything runs. Each particle runs :func:`chemtomo.pipeline.run.run_recipe` into
``DIR/<name>`` as one Dask task, on a local cluster of `workers` processes
(one thread each, and ``OMP_NUM_THREADS=1`` for their libraries; ``threads_per_worker`` or
``chemtomo --threads N batch`` gives N, the recipes' own ``threads`` does not apply) or on
the scheduler given. The runs resume: the steps a
particle finished before (its ``step.json`` records) are skipped, so a killed
worker or a killed batch loses nothing that had finished, and a rerun skips
it. A particle that fails is recorded with its error and does not stop the
others. ``DIR/batch.json`` lists every particle's status and time, and when the
recipes quantify, ``DIR/particles.{csv,parquet,png}`` hold all particles.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from pathlib import Path

from ..core.errors import ChemtomoError
from ..core.threads import worker_env
from ..io.outputs import safe_name
from .recipe import Reconstruct


def read_manifest(manifest) -> dict:
    """``{name: recipe path}`` from a CSV manifest (columns name, recipe) or a folder of ``*.yaml`` recipes."""
    path = Path(manifest)
    if path.is_dir():
        items = {p.stem: p for p in sorted(path.glob("*.yaml"))}
    elif path.is_file():
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"name", "recipe"} <= set(reader.fieldnames):
                raise ChemtomoError(f"{path} needs the columns name and recipe, got {reader.fieldnames}")
            items = {}
            for row in reader:
                name = safe_name(row["name"].strip(), f"{path.name}: particle name") if row["name"].strip() else ""
                if not name or name in items:
                    raise ChemtomoError(f"{path}: names must be unique and non-empty, got {name!r} twice or empty")
                items[name] = (path.parent / row["recipe"].strip()).resolve()
    else:
        raise ChemtomoError(f"manifest {path} does not exist; give a CSV (name, recipe) or a folder of recipes")
    if not items:
        raise ChemtomoError(f"{path} lists no recipe")
    return items


def connect(scheduler: str):
    """A Dask client on the scheduler at `scheduler` (``tcp://HOST:PORT``), with a one-line error if it is unusable."""
    import re

    from distributed import Client

    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", str(scheduler).strip()):
        raise ChemtomoError(f"--scheduler {scheduler!r} is not a scheduler address; give tcp://HOST:PORT "
                            "(e.g. tcp://10.0.0.5:8786), or leave it out for a local cluster")
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, ValueError, TimeoutError) as exc:
        raise ChemtomoError(f"cannot connect to the Dask scheduler at {scheduler} ({type(exc).__name__}); check that "
                            "it runs and the address, or leave --scheduler out for a local cluster") from None


def _run_one(name: str, recipe: str, out_dir: str, threads: int) -> dict:
    """One particle, in a worker: the recipe with resume; status and seconds, never an exception."""
    from .run import run_recipe

    t0 = time.perf_counter()
    try:
        record = run_recipe(recipe, out_dir, resume=True, log=lambda *_: None, threads=max(1, int(threads)))
        skipped = all(s.get("skipped") for s in record["steps"].values())
        return {"name": name, "status": "skipped" if skipped else "done", "seconds": time.perf_counter() - t0}
    except Exception as err:  # recorded, the batch goes on
        return {"name": name, "status": "failed", "error": f"{type(err).__name__}: {err}",
                "seconds": time.perf_counter() - t0}


def run_batch(manifest, out_dir, *, workers: int = 2, scheduler: str | None = None, threads_per_worker: int = 1,
              log=print) -> dict:
    """Run every recipe of `manifest` on Dask (module notes); returns the batch record (``batch.json``)."""
    from distributed import Client, LocalCluster, as_completed

    from ..io.write import atomic_write, to_json
    from .recipe import load_recipe

    items = read_manifest(manifest)
    for name, recipe in items.items():  # fail early, with line numbers, before any work
        load_recipe(recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cluster = None
    if scheduler:
        client = connect(scheduler)
    else:
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=int(threads_per_worker), processes=True,
                               dashboard_address=None, env=worker_env(threads_per_worker))
        client = Client(cluster)
    results = []
    try:
        futures = [client.submit(_run_one, name, str(recipe), str(out / name), threads_per_worker, pure=False,
                                 retries=1) for name, recipe in items.items()]
        for fut in as_completed(futures):
            res = fut.result()
            results.append(res)
            log(f"{res['name']}: {res['status']} ({res['seconds']:.1f} s)" + (f" {res['error']}" if "error" in res
                                                                              else ""))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    seconds = time.perf_counter() - t0
    computed = [r for r in results if r["status"] == "done"]
    record = {"particles": sorted(results, key=lambda r: r["name"]), "seconds": seconds,
              "workers": None if scheduler else workers, "scheduler": scheduler,
              "particles_per_hour": 3600 * len(computed) / seconds if computed else None}
    rows = []
    for name in items:
        q = out / name / "4-quantify" / "quantify.json"
        if q.is_file():
            rows += [{"name": name, **r} for r in json.loads(q.read_text())["particles"]]
    if rows:
        from .quantify import write_table
        from ..report.figures import batch_figure

        record["tables"] = [str(p) for p in write_table(rows, out / "particles")]
        record["figure"] = str(batch_figure(rows, out / "particles.png"))
    with atomic_write(out / "batch.json") as tmp:
        tmp.write_text(json.dumps(to_json(record), indent=1))
    failed = [r["name"] for r in results if r["status"] == "failed"]
    log(f"{len(results)} particles in {seconds:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return record


#: methods whose slices along y (the tilt axis) are reconstructed independently: slabs need no halo
SLICE_SEPARABLE = ("fbp", "sirt", "sart", "cgls", "mlem", "bimodal")


def _reconstruct_slab(series_arrays: dict, angles: dict, units: dict, pixel_size: float, settings: Reconstruct,
                      keep: tuple[int, int], threads: int) -> dict:
    """One slab in a worker: reconstruct the slab (with its halo), return the kept slices per volume."""
    import numpy as np

    from ..core.data import Signal, TiltSeries
    from ..core.threads import set_threads
    from .steps import reconstruct

    set_threads(max(1, int(threads)))
    series = TiltSeries({n: Signal(a, angles[n], units[n]) for n, a in series_arrays.items()}, pixel_size=pixel_size)
    vs = reconstruct(series, settings)
    a, b = keep
    return {n: np.ascontiguousarray(v[a:b]) for n, v in vs.volumes.items()}


def reconstruct_slabs(series, settings: Reconstruct, store, *, slab: int = 32, halo: int | None = None,
                      workers: int = 2, scheduler: str | None = None, threads_per_worker: int = 1, log=print) -> dict:
    """Reconstruct one large tilt series in slabs of slices across Dask workers, streaming into a Zarr group.

    The tilt axis is y, so a slab of y-slices of the tilt series holds all the
    data of the same slab of the volume. Slice-separable methods
    (:data:`SLICE_SEPARABLE`) give exactly the whole-volume result slab by slab;
    3D regularisers (TV, joint methods) couple neighbouring slices, so each slab
    is reconstructed with `halo` extra slices on each side (default 8 for them,
    0 for the separable ones) and only its own slices are kept.

    Parameters
    ----------
    series : TiltSeries
        The measured series.
    settings : Reconstruct
        The reconstruction section of a recipe (method, iterations, thickness, axis offset, stop,
        options), as for the whole volume; any of ``chemtomo methods``, joint ones included.
    store : path
        Zarr group to write: one array ``(ny, nz, nx)`` per volume, chunked by
        slab. Finished slabs are listed in its attributes; a rerun (after a
        killed worker or run) skips them, so nothing finished is lost.
    slab : int, default 32
        Slices per slab.
    halo : int, optional
        Extra slices per side; see above.
    workers, scheduler, threads_per_worker
        Local cluster size, or the address of a running Dask scheduler.
    iterations, thickness, options
        As for :func:`chemtomo.recon.reconstruct_series`.

    Returns
    -------
    dict
        ``{"arrays": names, "slabs": n, "computed": k, "skipped": n - k, "seconds": s}``.
    """
    import numpy as np
    import zarr
    from distributed import Client, LocalCluster, as_completed

    if slab < 1:
        raise ChemtomoError(f"slab must be at least one slice, got {slab}")
    ny, nu = series.image_shape
    if halo is None:
        halo = 0 if settings.method in SLICE_SEPARABLE else 8
    nz = nu if settings.thickness is None else int(settings.thickness)
    bounds = [(y0, min(y0 + slab, ny)) for y0 in range(0, ny, slab)]
    record = {**settings.model_dump(), "thickness": nz, "slab": slab, "halo": halo, "shape": [ny, nz, nu],
              "signals": series.names}
    store = Path(store)
    partial = store.parent / f".{store.stem}.partial{store.suffix}"  # slabs of an unfinished run
    if not partial.exists() and store.exists():
        finished = zarr.open_group(str(store), mode="r")
        if finished.attrs.get("chemtomo_slabs") == record and len(finished.attrs.get("done", [])) == len(bounds):
            log(f"{store.name}: every slab done before with the same settings, skipped")
            return {"arrays": sorted(finished.array_keys()), "slabs": len(bounds), "computed": 0,
                    "skipped": len(bounds), "seconds": 0.0}
    root = zarr.open_group(str(partial), mode="a")
    if root.attrs.get("chemtomo_slabs") not in (None, record):
        log(f"{partial.name} holds unfinished slabs of other settings: starting again")
        shutil.rmtree(partial)
        root = zarr.open_group(str(partial), mode="a")
    root.attrs["chemtomo_slabs"] = record
    done = set(root.attrs.get("done", []))
    todo = [i for i in range(len(bounds)) if i not in done]
    t0 = time.perf_counter()
    cluster = None
    if todo:
        client = connect(scheduler) if scheduler else Client(cluster := LocalCluster(
            n_workers=int(workers), threads_per_worker=int(threads_per_worker), processes=True,
            env=worker_env(threads_per_worker),
            dashboard_address=None))
        try:
            angles = {n: series[n].angles for n in series.names}
            units = {n: series[n].units for n in series.names}
            futures = {}
            for i in todo:
                y0, y1 = bounds[i]
                ya, yb = max(0, y0 - halo), min(ny, y1 + halo)
                arrays = {n: np.asarray(series[n].data[:, ya:yb, :], np.float32) for n in series.names}
                fut = client.submit(_reconstruct_slab, arrays, angles, units, series.pixel_size, settings,
                                    (y0 - ya, y0 - ya + (y1 - y0)), threads_per_worker, pure=False, retries=1)
                futures[fut] = i
            for fut in as_completed(list(futures)):
                i = futures[fut]
                y0, y1 = bounds[i]
                for name, part in fut.result().items():
                    if name not in root:
                        root.create_array(name, shape=(ny, nz, nu), chunks=(slab, nz, nu), dtype="float32",
                                          fill_value=0.0)
                    root[name][y0:y1] = part
                done.add(i)
                root.attrs["done"] = sorted(done)  # after the data: a slab listed is a slab written
                log(f"slab {i + 1}/{len(bounds)} (y {y0}..{y1 - 1}) written")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    root.attrs.update({"axes": ["y", "z", "x"], "voxel_size_nm": series.pixel_size})
    arrays = sorted(k for k in root.array_keys())
    if store.exists():  # the finished store is replaced only by a finished one
        old = store.parent / f".{store.stem}.old{store.suffix}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(store, old)
        os.replace(partial, store)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, store)
    return {"arrays": arrays, "slabs": len(bounds), "computed": len(todo),
            "skipped": len(bounds) - len(todo), "seconds": time.perf_counter() - t0}
