"""Write docs/api.md: one mkdocstrings entry for every public module of chemtomo, grouped by layer.

``python docs/make_api.py`` rewrites the page; ``make docs`` runs it before building the site, and
``tests/test_architecture.py`` checks that the page is current, so a new module is documented the
day it lands. Public: every module whose name does not start with ``_``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "chemtomo"

#: page sections in data-flow order: (title, top-level parts of the package)
SECTIONS = [
    ("Data model, geometry, operators", ["core"]),
    ("Physics shared by simulation and analysis", ["physics"]),
    ("Files", ["io"]),
    ("Networks", ["nn"]),
    ("Reconstruction", ["recon"]),
    ("Alignment", ["align"]),
    ("Denoising", ["denoise"]),
    ("View synthesis", ["views"]),
    ("Spectra", ["spectral"]),
    ("Atomic resolution", ["atomic"]),
    ("Quantification", ["quantify"]),
    ("Simulation", ["simulate"]),
    ("Training and data sets", ["training"]),
    ("Report", ["report"]),
    ("Pipeline: recipes, runner, batch", ["pipeline"]),
    ("Planning, demo, command line, testing", ["plan", "demo", "cli", "testing"]),
]


def public_modules() -> list[str]:
    """Dotted names of every public module and package of chemtomo."""
    names = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts[1:]) or "__main__" in parts:
            continue
        names.append(".".join(parts))
    return names


def page() -> str:
    modules = public_modules()
    placed, lines = set(), ["# API reference", "",
                            "Generated from the docstrings by `docs/make_api.py`: every public module, in data-flow "
                            "order (see [architecture](architecture.md)).", ""]
    for title, parts in SECTIONS:
        chosen = [m for m in modules if m.split(".")[1:2] and m.split(".")[1] in parts and m != "chemtomo"]
        if not chosen:
            continue
        lines += [f"## {title}", *[f"::: {m}" for m in chosen], ""]
        placed.update(chosen)
    rest = [m for m in modules if m not in placed and m != "chemtomo"]
    if rest:
        lines += ["## Other", *[f"::: {m}" for m in rest], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    target = ROOT / "docs" / "api.md"
    target.write_text(page(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
