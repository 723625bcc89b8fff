"""``chemtomo report RUN_DIR``: one self-contained HTML page of a run, readable offline.

The page holds, as far as the run has them: the acquisition and reconstruction
summary (provenance), central orthogonal slices per volume, an RGB overlay of
up to three elements, radial and central line profiles, convergence curves
(relative update per iteration, recorded by ``chemtomo reconstruct``), the per-particle table
with composition histograms (after ``chemtomo quantify``), the count-splitting
curve of the regularisation weight (joint methods), the dose-quality plot (if
the folder or its parent holds a ``plan.json`` of ``chemtomo plan``) and an
interactive 3D view: isosurfaces per element (scikit-image marching cubes at
half of each volume's 99.5th percentile, on at most 64^3 voxels) drawn by
plotly.js, which is embedded in the page (no network needed). Images are PNG
data URIs; the file is written atomically.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from ..core.errors import ChemtomoError

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slices(volumes: dict) -> str:
    plt = _plt()
    names = list(volumes)
    fig, axes = plt.subplots(len(names), 3, figsize=(7.5, 2.4 * len(names)), squeeze=False)
    for i, n in enumerate(names):
        v = volumes[n]
        ny, nz, nx = v.shape
        top = float(np.percentile(v, 99.9)) or 1.0
        for j, (label, img) in enumerate((("x-z (central y)", v[ny // 2]), ("x-y (central z)", v[:, nz // 2]),
                                          ("z-y (central x)", v[:, :, nx // 2]))):
            axes[i, j].imshow(img, cmap="magma", vmin=0, vmax=top)
            axes[i, j].set_title(f"{n}: {label}", fontsize=8)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    fig.tight_layout()
    return _png(fig)


def _overlay(volumes: dict) -> str | None:
    names = [n for n in volumes if n != "HAADF"][:3]
    if len(names) < 2:
        return None
    plt = _plt()
    v0 = volumes[names[0]]
    nz = v0.shape[1]
    rgb = np.zeros(v0.shape[::2] + (3,))
    for c, n in enumerate(names):
        img = volumes[n][:, nz // 2, :]
        rgb[..., c] = np.clip(img / (float(np.percentile(volumes[n], 99.9)) or 1.0), 0, 1)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.imshow(rgb)
    ax.set_title(" / ".join(f"{n} ({c})" for n, c in zip(names, ("red", "green", "blue"))) + ", central x-y",
                 fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return _png(fig)


def _profiles(volumes: dict, quant: dict | None) -> str:
    from ..quantify.profiles import line_profile

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    shape = next(iter(volumes.values())).shape
    c = (np.array(shape) - 1) / 2
    pos, prof = line_profile(volumes, [c[0], c[1], 0], [c[0], c[1], shape[2] - 1])
    for k, (n, p) in enumerate(prof.items()):
        top = float(np.percentile(volumes[n], 99.9)) or 1.0
        axes[0].plot(pos, p / top, color=_COLOURS[k % len(_COLOURS)], label=n)
    axes[0].set_xlabel("x through the centre (voxels)", fontsize=8)
    axes[0].set_ylabel("value / 99.9th percentile", fontsize=8)
    axes[0].legend(fontsize=7)
    if quant and quant.get("radial_profiles"):
        k0, prof = next(iter(quant["radial_profiles"].items()))
        key = "radius_nm" if "radius_nm" in prof else "radius_vox"
        r = np.array(prof[key])
        for k, (n, p) in enumerate((n, p) for n, p in prof.items() if n != key):
            axes[1].plot(r, p, color=_COLOURS[k % len(_COLOURS)], label=n)
        axes[1].set_xlabel(f"radius from particle {k0}'s centre ({'nm' if key == 'radius_nm' else 'voxels'})",
                           fontsize=8)
        axes[1].legend(fontsize=7)
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "radial profiles: run chemtomo quantify", ha="center", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _weight_curve(info: dict) -> str | None:
    hist = info.get("weight_search")
    if not hist:
        return None
    plt = _plt()
    rule = str(info.get("weight_rule", "count-splitting"))
    w, score = np.array(hist, float).T
    fig, ax = plt.subplots(figsize=(3.8, 2.8))
    ax.semilogx(w, score - score.min(), "o-", color="k", ms=3)
    ax.axvline(info.get("weight", np.nan), color="r", lw=0.8)
    ax.set_xlabel("regularisation weight", fontsize=8)
    ax.set_ylabel("held-out " + ("views' squared error" if rule.startswith("held-out views") else "Poisson NLL")
                  + " (- min)", fontsize=8)
    ax.set_title(f"{rule} (red: chosen)", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _weight_caption(info: dict) -> str:
    """One line under the weight curve: the weight, its rule, and the lowest score's weight where they differ."""
    hist, weight = info.get("weight_search"), info.get("weight")
    if not hist or weight is None:
        return ""
    lowest, rule = min(hist, key=lambda t: t[1])[0], str(info.get("weight_rule", "count-splitting"))
    text = f"Weight {float(weight):.3g}, chosen by {html.escape(rule)}"
    if not np.isclose(float(lowest), float(weight)):
        text += f"; the lowest held-out score is at {float(lowest):.3g}"
        if "one standard error" in rule:
            text += ", and the largest weight within one standard error of it was taken"
    return f"<p>{text}.</p>"


def _auto_ranking(choice: dict | None) -> str | None:
    """Bars of every candidate's held-out score above the best, per signal group; the chosen one in red."""
    if not choice:
        return None
    groups = ([("counts: " + ", ".join(choice["counts"]["signals"]), choice["counts"])] if "counts" in choice else [])
    groups += [(name, rec) for name, rec in choice.get("views", {}).items()]
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 0.35 * max(len(g[1]["ranking"])
                                                                                   for g in groups) + 1.2))
    for ax, (label, rec) in zip(np.atleast_1d(axes), groups):
        ranks = [r for r in rec["ranking"] if r["score"] is not None]
        names = [r["candidate"] for r in ranks][::-1]
        scores = np.array([r["score"] for r in ranks][::-1])
        ax.barh(names, scores - scores.min(), color=["#c33" if n == rec["chosen"]["candidate"] else "#888"
                                                      for n in names])
        ax.set_xlabel("held-out score - best (lower is better)", fontsize=8)
        ax.set_title(f"auto, {label} (red: chosen)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def _convergence(prov: dict) -> str | None:
    curves = {n: r["convergence"] for n, r in prov.get("signals", {}).items() if r.get("convergence")}
    if prov.get("convergence"):
        curves[f"{prov.get('method', 'joint')} (all channels)"] = prov["convergence"]
    curves = {n: c for n, c in curves.items() if c.get("iteration")}
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    for k, (n, c) in enumerate(curves.items()):
        ax.semilogy(c["iteration"], np.maximum(c["relative_change"], 1e-12), color=_COLOURS[k % len(_COLOURS)],
                    label=n)
    ax.set_xlabel("iteration", fontsize=8)
    ax.set_ylabel("relative update", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _view3d(volumes: dict, max_size: int = 64) -> str:
    import plotly.graph_objects as go
    from skimage.measure import marching_cubes

    traces = []
    names = [n for n in volumes if n != "HAADF"] or list(volumes)
    for k, n in enumerate(names):
        v = np.asarray(volumes[n], np.float32)
        step = max(1, int(np.ceil(max(v.shape) / max_size)))
        v = v[::step, ::step, ::step]
        level = 0.5 * float(np.percentile(v, 99.5))
        if not level > float(v.min()) or level >= float(v.max()):
            continue
        verts, faces, _, _ = marching_cubes(v, level)
        verts = verts * step
        traces.append(go.Mesh3d(x=verts[:, 2], y=verts[:, 1], z=verts[:, 0], i=faces[:, 0], j=faces[:, 1],
                                k=faces[:, 2], color=_COLOURS[k % len(_COLOURS)], opacity=0.35 if k else 0.8,
                                name=n, showlegend=True))
    fig = go.Figure(traces)
    fig.update_layout(scene=dict(xaxis_title="x", yaxis_title="z", zaxis_title="y (tilt axis)", aspectmode="data"),
                      margin=dict(l=0, r=0, t=30, b=0), height=520, title="isosurfaces (drag to rotate)")
    return fig.to_html(full_html=False, include_plotlyjs=True, div_id="view3d")


def _table(rows: list[dict]) -> str:
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys and not isinstance(r[k], (list, dict))]

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v)) if v is not None else ""

    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(k))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


#: the report's particle table shows at most this many particles (the largest); the CSV holds all
MAX_TABLE_ROWS = 20


def _particle_table(rows: list[dict], limit: int = MAX_TABLE_ROWS) -> list[str]:
    """The `limit` largest particles (by voxels) as a table, and a line saying how many more the CSV holds."""
    shown = sorted(rows, key=lambda r: -(r.get("voxels") or 0))[:limit]
    parts = [_table(shown)]
    if len(rows) > limit:
        parts.insert(0, f"<p>{len(rows)} particles: the {limit} largest are shown; all {len(rows)}, "
                        f"{len(rows) - limit} more, are in quantify/particles.csv.</p>")
    return parts


def build_report(run_dir, path=None) -> Path:
    """Write ``RUN_DIR/report.html`` (or `path`) for a folder written by ``chemtomo reconstruct``.

    Returns the path written.
    """
    from .. import __version__
    from ..io.write import SIDECAR, atomic_write, read_volume_set
    from ..quantify.particles import run_voxel_size

    run = Path(run_dir)
    vs = read_volume_set(run)
    volumes = {n: np.asarray(v, np.float32) for n, v in vs.volumes.items()}
    if not volumes:
        raise ChemtomoError(f"{run} holds no volume to report")
    prov = vs.provenance
    qpath = run / "quantify" / "quantify.json"
    quant = json.loads(qpath.read_text()) if qpath.is_file() else None
    plan = next((p for p in (run / "plan.json", run.parent / "plan.json") if p.is_file()), None)
    try:
        known = run_voxel_size(json.loads((run / SIDECAR).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        known = vs.voxel_size
    voxel = f"voxel {known:g} nm" if known is not None else "no pixel size recorded (lengths in voxels)"
    parts = [f"<h1>chemtomo report: {html.escape(run.name)}</h1>",
             f"<p>chemtomo {__version__}; volumes {', '.join(volumes)} of shape "
             f"{next(iter(volumes.values())).shape} (y, z, x), {voxel}.</p>",
             "<h2>Acquisition and reconstruction</h2>", _summary(prov)]
    parts += ["<h2>Orthogonal slices</h2>", f"<img alt='slices' src='{_slices(volumes)}'>"]
    ov = _overlay(volumes)
    if ov:
        parts += ["<h2>Overlay</h2>", f"<img alt='overlay' src='{ov}'>"]
    parts += ["<h2>Profiles</h2>", f"<img alt='profiles' src='{_profiles(volumes, quant)}'>"]
    conv = _convergence(prov)
    if conv:
        parts += ["<h2>Convergence</h2>", f"<img alt='convergence' src='{conv}'>"]
    ranking = _auto_ranking(prov.get("auto"))
    if ranking:
        parts += ["<h2>Method choice (auto)</h2>", f"<img alt='auto ranking' src='{ranking}'>"]
    info = prov.get("info", {}) or prov.get("joint", {}).get("info", {})
    curve = _weight_curve(info)
    if curve:
        parts += ["<h2>Parameter choice</h2>", f"<img alt='weight search' src='{curve}'>", _weight_caption(info)]
    if quant:
        from .figures import batch_figure

        parts += ["<h2>Particles</h2>", *_particle_table(quant["particles"])]
        tmp = run / "quantify" / "particles.png"
        if not tmp.is_file():
            batch_figure(quant["particles"], tmp)
        parts.append("<img alt='composition histograms' src='data:image/png;base64,"
                     + base64.b64encode(tmp.read_bytes()).decode() + "'>")
    if plan is not None:
        png = plan.with_name("plan.png")
        parts += ["<h2>Dose planner</h2>", f"<p>{html.escape(json.dumps(json.loads(plan.read_text())['recommendation']))}</p>"]
        if png.is_file():
            parts.append("<img alt='dose-quality' src='data:image/png;base64,"
                         + base64.b64encode(png.read_bytes()).decode() + "'>")
    parts += ["<h2>3D view</h2>", _view3d(volumes)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>chemtomo report</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:auto;padding:1em}img{max-width:100%}"
            "table{border-collapse:collapse;font-size:11px}td,th{border:1px solid #ccc;padding:2px 4px}"
            ".scroll{overflow-x:auto}</style></head><body>" + "\n".join(parts) + "</body></html>")
    out = Path(path) if path is not None else run / "report.html"
    with atomic_write(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def _run_facts(rec: dict) -> list[str]:
    """The known facts of one reconstruction record: iterations and seconds, each only if recorded."""
    facts = []
    if rec.get("iterations") is not None:
        facts.append(f"{rec['iterations']} iterations")
    if rec.get("seconds") is not None:
        facts.append(f"{rec['seconds']:.2f} s")
    return facts


def _tilts(angles) -> str:
    return f"{len(angles)} tilts {min(angles):g}..{max(angles):g} deg" if angles else ""


def _signal_text(rec: dict) -> str:
    """One signal's reconstruction: its method (or the mean of several pipelines), iterations, time, tilts."""
    if rec.get("members"):
        parts = []
        for m in rec["members"]:
            name = m.get("candidate") or m.get("method")
            parts.append(f"{name} (joint)" if m.get("joint") else
                         " ".join([name] + ([f"({', '.join(_run_facts(m))})"] if _run_facts(m) else [])))
        return f"mean of {len(parts)} pipelines: " + "; ".join(parts)
    name = rec.get("candidate") or rec.get("method") or "unknown method"
    facts = _run_facts(rec) + ([_tilts(rec.get("angles_deg"))] if rec.get("angles_deg") else [])
    return name + (f" ({', '.join(facts)})" if facts else "")


def _joint_items(joint: dict, label: str) -> list[tuple[str, str]]:
    """Rows of a joint reconstruction record (all channels in one run): method, channels, tilts, chosen settings."""
    angles = joint.get("angles_deg") if isinstance(joint.get("angles_deg"), dict) else {}
    facts = _run_facts(joint)
    items = [(label, f"{joint.get('method', 'unknown method')} (joint"
                     + (f": {', '.join(angles)}" if angles else "") + ")"
                     + (f", {', '.join(facts)}" if facts else ""))]
    items += [(f"{name} tilts", _tilts(a)) for name, a in angles.items() if a]
    info = joint.get("info") or {}
    for k in ("weight", "weight_rule", "deviance_ratio", "haadf_weights"):
        if k in info:
            v = info[k]
            items.append((k, json.dumps(v) if isinstance(v, dict) else f"{v:.4g}" if isinstance(v, float) else str(v)))
    return items


def _summary(prov: dict) -> str:
    """The run's provenance as a table: only what it records (no placeholder for a missing number)."""
    items = []
    if prov.get("method") == "auto":
        auto = prov.get("auto") or {}
        groups = ([(f"counts: {', '.join(auto['counts'].get('signals', []))}", auto["counts"])]
                  if "counts" in auto else []) + list(auto.get("views", {}).items())
        for label, rec in groups:
            chosen = (rec.get("chosen") or {}).get("candidate", "unknown")
            n = len(rec.get("ranking", []))
            items.append((f"auto ({label})", f"{chosen}, best of {n} candidate{'s' if n != 1 else ''}"
                                             + (f" ({rec['rule']})" if rec.get("rule") else "")))
        times = [f"{what} {auto[k]:.1f} s" for k, what in (("seconds", "selection"), ("final_seconds", "final run"))
                 if auto.get(k) is not None]
        if times:
            items.append(("auto time", ", ".join(times)))
        if prov.get("joint"):
            items += _joint_items(prov["joint"], "joint run")
        for more in prov.get("joint_more", []):  # another joint run (another candidate, or maps that are not counts)
            items += _joint_items(more, "joint run")
    elif prov.get("info") is not None or isinstance(prov.get("angles_deg"), dict):  # a joint method
        items += _joint_items(prov, "method")
    for name, rec in prov.get("signals", {}).items():
        items.append((name, _signal_text(rec)))
    den = prov.get("denoise")
    if den:
        items.append(("denoised", f"{den.get('method')} ({', '.join(den.get('signals', {}))}) before reconstruction"))
    if prov.get("views_synthesis"):
        vs = prov["views_synthesis"]
        items.append(("views synthesized", ", ".join(f"{n}: {len(r.get('new_angles', []))} views"
                                                     for n, r in vs.get("signals", {}).items())))
    if not items:
        return "<p>no provenance recorded</p>"
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                               for k, v in items) + "</table>"
