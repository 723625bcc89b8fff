"""The import contract: layers point down, no module imports itself back (docs/architecture.md).

Every ``import`` and ``from ... import`` in ``src/chemtomo`` counts, also those inside
functions (a lazy import is still a dependency). A failure names the offending file,
line and import, so that a new module lands in the right layer or the contract is
changed on purpose, with a record in docs/decisions.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "chemtomo"

#: layer of each top-level part of the package, bottom first; a part may import its own layer's
#: modules only inside itself, and any part of a lower layer
LAYERS = [
    {"_lazy"},
    {"__init__"},
    {"core"},
    {"physics", "testing"},
    {"io"},
    {"nn"},
    {"recon"},
    {"align", "denoise", "spectral", "atomic"},
    {"quantify"},
    {"simulate"},
    {"views", "training"},
    {"report"},
    {"pipeline"},
    {"plan", "demo"},
    {"cli"},
    {"__main__"},
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(line, module, submodules) for every import in `path`, relative ones resolved; `submodules` are the
    candidates ``module.name`` of ``from module import name``."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target, [f"{target}.{alias.name}" for alias in node.names]


def _graph():
    files = {_module(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        targets = set()
        for line, target, names in _imports(path):
            modules = [m for m in names if m in files]  # `from . import series` imports the module series
            for t in modules or [target]:
                if t.startswith("chemtomo") and t in files and t != name:
                    targets.add((t, line))
        edges[name] = targets
    return files, edges


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_has_a_layer():
    files, _ = _graph()
    missing = sorted({_part(m) for m in files} - set(RANK))
    assert not missing, f"give these parts of chemtomo a layer in LAYERS and docs/architecture.md: {missing}"


def test_imports_point_down_the_layers():
    files, edges = _graph()
    bad = []
    for source, targets in edges.items():
        a = _part(source)
        for target, line in targets:
            b = _part(target)
            if a != b and RANK.get(b, -1) >= RANK.get(a, -1):
                bad.append(f"{files[source].relative_to(SRC.parent)}:{line} imports {target} "
                           f"({a}, layer {RANK.get(a)} -> {b}, layer {RANK.get(b)})")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_no_analysis_package_imports_the_simulator():
    _, edges = _graph()
    analysis = {"recon", "align", "denoise", "spectral", "atomic", "quantify", "io", "core", "physics", "nn"}
    bad = [f"{s} -> {t}" for s, ts in edges.items() for t, _ in ts
           if _part(s) in analysis and _part(t) in ("simulate", "training")]
    assert not bad, bad


def _cycles(edges):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(t for t, _ in edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(t for t, _ in edges.get(nxt, ())))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    _, edges = _graph()
    cycles = _cycles(edges)
    assert not cycles, f"modules that import each other (directly or around a loop): {cycles}"


@pytest.mark.parametrize("edges, expected", [
    ({"a": {("b", 1)}, "b": {("c", 1)}, "c": {("a", 1)}, "d": {("a", 1)}}, [["a", "b", "c"]]),
    ({"a": {("b", 1)}, "b": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert _cycles(edges) == expected


def test_the_api_reference_lists_every_public_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_api", SRC.parents[1] / "docs" / "make_api.py")
    make_api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_api)
    page = (SRC.parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    assert page == make_api.page(), "docs/api.md is out of date: run python docs/make_api.py"
    assert "::: chemtomo.physics.counts" in page and "::: chemtomo.pipeline.run" in page
