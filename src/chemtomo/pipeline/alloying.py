"""Alloying over a time series of reconstruction runs on disk: ``chemtomo alloying RUN... --times ...``.

Reads the HAADF volume of each run (folders written by ``chemtomo reconstruct``), fits one radial
interdiffusion model to the whole series (:func:`chemtomo.quantify.alloying.fit_alloying`) and
writes ``alloying.csv`` / ``alloying.parquet`` (one row per time), ``alloying.json`` (D, start
time, series calibration, blur, profiles) and ``alloying.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError
from ..io.write import atomic_write, read_volume_set, to_json
from ..physics.scattering import haadf_weight
from ..quantify.alloying import fit_alloying
from ..quantify.haadf import calibrate, particle_mask
from ..report.figures import save_figure
from .quantify import write_table


def _volume(run_dir, signal: str):
    vs = read_volume_set(run_dir)
    if signal in vs.volumes:
        return np.asarray(vs.volumes[signal], np.float64), vs.voxel_size
    raise ChemtomoError(f"{run_dir} holds no volume {signal!r} (it has {', '.join(vs.names)}); give --signal NAME")


def alloying_runs(run_dirs, times, out_dir, *, signal: str = "HAADF", calibration: str = "joint",
                  elements=("Au", "Ag")) -> dict:
    """Fit interdiffusion to a series of runs and write the table, ``alloying.json`` and the figure.

    Parameters
    ----------
    run_dirs : list of path
        Reconstruction folders of one particle, in time order.
    times : sequence of float
        Time of each run in s, strictly increasing.
    out_dir : path
        Folder to write into (created).
    signal : str, default "HAADF"
        Volume of each run to use.
    calibration : {"joint", "first"}, default "joint"
        ``"joint"``: the pure intensities are fitted with the diffusion model on the whole series.
        ``"first"``: the histogram calibration (:func:`~chemtomo.quantify.haadf.calibrate`) of the
        first run, held for the whole series.
    elements : (str, str), default ("Au", "Ag")
        Core element, shell element (labels of the table and figure).

    Returns
    -------
    dict
        The :func:`~chemtomo.quantify.alloying.fit_alloying` result, plus ``rows`` and ``paths``.

    Raises
    ------
    ChemtomoError
        For a time count that differs from the run count, unsorted times, an unknown calibration,
        a missing volume, or runs of different voxel sizes or shapes.
    """
    run_dirs = [Path(r) for r in run_dirs]
    t = [float(x) for x in times]
    if len(t) != len(run_dirs):
        raise ChemtomoError(f"give one time per run: {len(t)} times for {len(run_dirs)} runs")
    if len(run_dirs) < 2:
        raise ChemtomoError("an alloying series needs at least two runs (times)")
    if any(b <= a for a, b in zip(t, t[1:])) or not all(np.isfinite(t)):
        raise ChemtomoError(f"--times must be strictly increasing seconds, one per run in order, got {t}")
    if calibration not in ("joint", "first"):
        raise ChemtomoError(f"calibration must be 'joint' or 'first', got {calibration!r}")
    if len(elements) != 2:
        raise ChemtomoError(f"elements must be two symbols, core then shell, got {list(elements)}")
    core, shell = elements
    vols, sizes = zip(*(_volume(r, signal) for r in run_dirs))
    if len(set(sizes)) > 1:
        raise ChemtomoError(f"the runs have different voxel sizes {sorted(set(sizes))} nm; reconstruct them alike")
    if len({v.shape for v in vols}) > 1:
        raise ChemtomoError(f"the runs have different volume shapes {sorted({v.shape for v in vols})}; "
                            "reconstruct them on one grid")
    h = float(sizes[0])
    masks = [particle_mask(v) for v in vols]
    cal = calibrate(vols[0], masks[0]) if calibration == "first" else None
    if cal is not None:  # the histogram gives (bright, dim); the model wants (core, shell)
        cal = cal if haadf_weight(core) >= haadf_weight(shell) else (cal[1], cal[0])
    res = fit_alloying(list(vols), t, voxel_size=h, calibration=cal, masks=masks)
    if calibration == "first":
        res["calibration"] = "first"
    rows = [{"run": str(r), "time_s": tk, "alloying_index": ik, "alloying_index_voxels": iv,
             f"{core}_fraction": fk, "rms": rk}
            for r, tk, ik, iv, fk, rk in zip(run_dirs, t, res["index"], res["index_voxels"],
                                             res["core_fraction"], res["rms"])]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_table(rows, out / "alloying")
    summary = {"runs": [str(r) for r in run_dirs], "signal": signal, "elements": {"core": core, "shell": shell},
               "voxel_size_nm": h, "D_nm2_per_s": res["D"], "D_sd_nm2_per_s": res["D_sd"],
               "start_s": res["start"], "calibration": res["calibration"],
               f"I_{core}": res["I_core"], f"I_{shell}": res["I_shell"], "radius_nm": res["radius_nm"],
               "core_radius_nm": res["core_radius_nm"], "blur_sigma_nm": res["sigma_nm"], "rows": rows,
               "profiles": res["profiles"], "fraction_model": res["fraction_model"]}
    with atomic_write(out / "alloying.json") as tmp:
        tmp.write_text(json.dumps(to_json(summary), indent=1), encoding="utf-8")
    paths += [out / "alloying.json", alloying_figure(res, out / "alloying.png", elements=(core, shell))]
    res.update(rows=rows, paths=paths)
    return res


def alloying_figure(res: dict, path, *, elements=("Au", "Ag")) -> Path:
    """Measured and model radial profiles of every frame, the unblurred model fraction, and the index against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    core, _ = elements
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.0))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(res["times"])))
    for tk, prof, frac, col in zip(res["times"], res["profiles"], res["fraction_model"], colours):
        axes[0].plot(prof["radii_nm"], prof["measured"], ".", ms=3, color=col)
        axes[0].plot(prof["radii_nm"], prof["model"], "-", lw=1, color=col, label=f"{tk:g} s")
        axes[1].plot(frac["radii_nm"], frac["c"], "-", color=col)
    axes[0].set_xlabel("radius (nm)", fontsize=8)
    axes[0].set_ylabel("HAADF intensity (dots: measured, lines: model)", fontsize=7)
    axes[0].legend(fontsize=6)
    axes[1].set_xlabel("radius (nm)", fontsize=8)
    axes[1].set_ylabel(f"{core} fraction (fitted, unblurred)", fontsize=8)
    axes[2].plot(res["times"], res["index"], "o-k", ms=3, label="model (unblurred)")
    axes[2].plot(res["times"], res["index_voxels"], "s--", color="0.5", ms=3, label="voxels (blurred)")
    axes[2].set_xlabel("time (s)", fontsize=8)
    axes[2].set_ylabel("alloying index", fontsize=8)
    axes[2].set_ylim(0, 1.02)
    axes[2].legend(fontsize=7)
    axes[2].set_title(f"D = {res['D']:.3g} +- {res['D_sd']:.2g} nm^2/s", fontsize=8)
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
