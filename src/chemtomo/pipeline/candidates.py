"""A candidate pipeline of ``--method auto``: an optional denoiser of the projection maps, then a method."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ChemtomoError


@dataclass(frozen=True)
class Candidate:
    """One pipeline of the selection: an optional denoiser of the projection maps, then a method."""

    name: str
    method: str
    denoise: str | None = None

    @classmethod
    def parse(cls, name: str) -> "Candidate":
        """``"gaussian+sirt"`` -> denoiser gaussian, method sirt; ``"tv"`` -> method tv."""
        from ..denoise.registry import DENOISERS
        from ..recon.registry import METHODS

        parts = name.strip().split("+")
        if len(parts) > 2 or not all(parts):
            raise ChemtomoError(f"candidate {name!r} must be METHOD or DENOISER+METHOD, e.g. tv or gaussian+sirt")
        method = parts[-1]
        denoiser = parts[0] if len(parts) == 2 else None
        if method not in METHODS:
            raise ChemtomoError(f"candidate {name!r}: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if denoiser is not None and denoiser not in DENOISERS:
            raise ChemtomoError(f"candidate {name!r}: unknown denoiser {denoiser!r}; choose from {', '.join(DENOISERS)}")
        if denoiser is not None and METHODS[method].joint:
            raise ChemtomoError(f"candidate {name!r}: joint methods take the raw counts; drop the denoiser")
        return cls(name.strip(), method, denoiser)
