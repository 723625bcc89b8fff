"""A candidate pipeline of ``--method auto``: an optional denoiser of the projection maps, then a method."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ChemtomoError

#: prefix of a denoiser that takes the HAADF maps at the element maps' angles as its guide channel
GUIDED = "guided-"
#: the stage in place of a denoiser that fills the angles halfway between the measured ones with synthesized views
VIEWS = "views"


@dataclass(frozen=True)
class Candidate:
    """One pipeline of the selection: an optional denoiser of the projection maps, then a method.

    ``guide`` names the signal whose maps guide the denoiser (``"HAADF"`` for ``guided-unet+mlem``);
    ``views`` adds synthesized views halfway between the measured angles before the method (``views+mlem``,
    :func:`chemtomo.views.synthesize_views`).
    """

    name: str
    method: str
    denoise: str | None = None
    guide: str | None = None
    views: bool = False

    @classmethod
    def parse(cls, name: str) -> "Candidate":
        """``"gaussian+sirt"`` -> denoiser gaussian, method sirt; ``"tv"`` -> method tv;
        ``"guided-unet+mlem"`` -> the U-Net with the HAADF guide channel, then MLEM; ``"views+mlem"`` ->
        synthesized views between the measured ones, then MLEM."""
        from ..denoise.registry import DENOISERS, denoiser_options
        from ..recon.registry import METHODS

        parts = name.strip().split("+")
        if len(parts) > 2 or not all(parts):
            raise ChemtomoError(f"candidate {name!r} must be METHOD or DENOISER+METHOD, e.g. tv, gaussian+sirt or "
                                "guided-unet+mlem")
        method = parts[-1]
        denoiser = parts[0] if len(parts) == 2 else None
        guide, views = None, denoiser == VIEWS
        if views:
            denoiser = None
        if denoiser is not None and denoiser.startswith(GUIDED):
            denoiser, guide = denoiser[len(GUIDED):], "HAADF"
        if method not in METHODS:
            raise ChemtomoError(f"candidate {name!r}: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if denoiser is not None and denoiser not in DENOISERS:
            raise ChemtomoError(f"candidate {name!r}: unknown denoiser {denoiser!r}; choose from "
                                f"{', '.join(DENOISERS)}, or {VIEWS} (synthesized views)")
        if guide is not None and "guide" not in denoiser_options(denoiser):
            guided = [d for d in DENOISERS if "guide" in denoiser_options(d)]
            raise ChemtomoError(f"candidate {name!r}: denoiser {denoiser} takes no guide; guided ones are "
                                f"{', '.join(GUIDED + d for d in guided)}")
        if (denoiser is not None or views) and METHODS[method].joint:
            raise ChemtomoError(f"candidate {name!r}: joint methods take the raw counts; drop the "
                                f"{'views' if views else 'denoiser'}")
        return cls(name.strip(), method, denoiser, guide, views)
