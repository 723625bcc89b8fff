"""Batch runs: many particles, one recipe each, processed in parallel on Dask.

``chemtomo batch MANIFEST --out DIR [--workers N] [--scheduler tcp://host:port]``.
The manifest is a CSV file with the columns ``name`` and ``recipe`` (a recipe
path, relative to the manifest's folder), or a folder whose ``*.yaml`` files
are the recipes (named by their stems). Every recipe is validated before
anything runs. Each particle runs :func:`chemtomo.recipe.run_recipe` into
``DIR/<name>`` as one Dask task, on a local cluster of `workers` processes
(one thread each) or on the scheduler given. The runs resume: the steps a
particle finished before (its ``step.json`` records) are skipped, so a killed
worker or a killed batch loses nothing that had finished, and a rerun skips
it. A particle that fails is recorded with its error and does not stop the
others. ``DIR/batch.json`` lists every particle's status and time, and when the
recipes quantify, ``DIR/particles.{csv,parquet,png}`` hold all particles.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from .core.errors import ChemtomoError


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
                name = row["name"].strip()
                if not name or name in items:
                    raise ChemtomoError(f"{path}: names must be unique and non-empty, got {name!r} twice or empty")
                items[name] = (path.parent / row["recipe"].strip()).resolve()
    else:
        raise ChemtomoError(f"manifest {path} does not exist; give a CSV (name, recipe) or a folder of recipes")
    if not items:
        raise ChemtomoError(f"{path} lists no recipe")
    return items


def _run_one(name: str, recipe: str, out_dir: str, threads: int) -> dict:
    """One particle, in a worker: the recipe with resume; status and seconds, never an exception."""
    import torch

    from .recipe import run_recipe

    torch.set_num_threads(max(1, int(threads)))
    t0 = time.perf_counter()
    try:
        record = run_recipe(recipe, out_dir, resume=True, log=lambda *_: None)
        skipped = all(s.get("skipped") for s in record["steps"].values())
        return {"name": name, "status": "skipped" if skipped else "done", "seconds": time.perf_counter() - t0}
    except Exception as err:  # recorded, the batch goes on
        return {"name": name, "status": "failed", "error": f"{type(err).__name__}: {err}",
                "seconds": time.perf_counter() - t0}


def run_batch(manifest, out_dir, *, workers: int = 2, scheduler: str | None = None, threads_per_worker: int = 1,
              log=print) -> dict:
    """Run every recipe of `manifest` on Dask (module notes); returns the batch record (``batch.json``)."""
    from distributed import Client, LocalCluster, as_completed

    from .io.write import atomic_write, to_json
    from .recipe import load_recipe

    items = read_manifest(manifest)
    for name, recipe in items.items():  # fail early, with line numbers, before any work
        load_recipe(recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=int(threads_per_worker), processes=True,
                               dashboard_address=None)
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
        from .quantify.batch import batch_figure, write_table

        record["tables"] = [str(p) for p in write_table(rows, out / "particles")]
        record["figure"] = str(batch_figure(rows, out / "particles.png"))
    with atomic_write(out / "batch.json") as tmp:
        tmp.write_text(json.dumps(to_json(record), indent=1))
    failed = [r["name"] for r in results if r["status"] == "failed"]
    log(f"{len(results)} particles in {seconds:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return record
