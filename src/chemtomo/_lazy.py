"""Lazy public names for packages (PEP 562), so that importing a package does no work."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, str]):
    """``(__getattr__, __all__)`` for `package`, whose public names load from their submodules on first use.

    `names` maps each public name to its submodule relative to `package` (``"lines"``,
    ``"core.geometry"``). Assign the pair at the package's top level:
    ``__getattr__, __all__ = lazy_exports(__name__, _LAZY)``.
    """

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(names)
