"""A candidate pipeline of ``--method auto``: an optional denoiser of the projection maps, a method, and
optionally the element volumes sharing out the HAADF volume or the volume of their summed counts."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ChemtomoError

#: prefix of a denoiser that takes the HAADF maps at the element maps' angles as its guide channel
GUIDED = "guided-"
#: prefix of a denoiser guided by the U-Net-denoised sum of all the element maps (no HAADF needed)
SUM_GUIDED = "sum-guided-"
#: the ``guide`` of a :data:`SUM_GUIDED` candidate: the element maps' summed counts, not a signal of the series
SUMMED = "summed counts"
#: the stage in place of a denoiser that fills the angles halfway between the measured ones with synthesized views
VIEWS = "views"
#: the last stage that splits the HAADF volume among the element volumes (:func:`chemtomo.recon.channels.partition`)
PARTITION = "haadf"
#: the last stage that splits the volume of the element maps' summed counts among the element volumes
SUM_PARTITION = "sum"


@dataclass(frozen=True)
class Candidate:
    """One pipeline of the selection: an optional denoiser of the projection maps, then a method.

    ``guide`` names the signal whose maps guide the denoiser (``"HAADF"`` for ``guided-unet+mlem``), or is
    :data:`SUMMED` for ``sum-guided-unet+mlem``: the guide is then the U-Net-denoised sum of all the element
    maps at each angle, which has more counts than any one of them and marks where the particle is;
    ``views`` adds synthesized views halfway between the measured angles before the method (``views+mlem``,
    :func:`chemtomo.views.synthesize_views`). ``partition`` splits the HAADF volume among the element volumes
    in their proportions afterwards (``unet+mlem+haadf``, :func:`chemtomo.recon.channels.partition`), or, as
    :data:`SUM_PARTITION`, the volume of the element maps' summed counts (``unet+mlem+sum``, no HAADF needed).
    """

    name: str
    method: str
    denoise: str | None = None
    guide: str | None = None
    views: bool = False
    partition: str | None = None

    @property
    def base(self) -> str:
        """The name without the partition stage."""
        return self.name[: -len("+" + self.partition)] if self.partition else self.name

    @classmethod
    def parse(cls, name: str) -> "Candidate":
        """``"gaussian+sirt"`` -> denoiser gaussian, method sirt; ``"tv"`` -> method tv;
        ``"guided-unet+mlem"`` -> the U-Net with the HAADF guide channel, then MLEM;
        ``"sum-guided-unet+mlem"`` -> the same guided by the element maps' summed counts; ``"views+mlem"`` ->
        synthesized views between the measured ones, then MLEM; ``"unet+mlem+haadf"`` -> the U-Net, MLEM,
        then the HAADF volume split among the elements in their MLEM proportions (``"dtv+haadf"``: in the
        proportions of the joint method's element volumes); ``"unet+mlem+sum"`` -> the same with the volume of the
        maps' summed counts split instead."""
        from ..denoise.registry import DENOISERS, denoiser_options
        from ..recon.registry import METHODS

        parts = name.strip().split("+")
        partition = parts[-1] if len(parts) > 1 and parts[-1] in (PARTITION, SUM_PARTITION) else None
        if partition:
            parts = parts[:-1]
        if len(parts) > 2 or not all(parts):
            raise ChemtomoError(f"candidate {name!r} must be METHOD or DENOISER+METHOD, optionally followed by "
                                f"+{PARTITION} or +{SUM_PARTITION}, e.g. tv, gaussian+sirt, guided-unet+mlem or "
                                f"unet+mlem+{PARTITION}")
        method = parts[-1]
        denoiser = parts[0] if len(parts) == 2 else None
        guide, views = None, denoiser == VIEWS
        if views:
            denoiser = None
        if denoiser is not None and denoiser.startswith(GUIDED):
            denoiser, guide = denoiser[len(GUIDED):], "HAADF"
        elif denoiser is not None and denoiser.startswith(SUM_GUIDED):
            denoiser, guide = denoiser[len(SUM_GUIDED):], SUMMED
        if method not in METHODS:
            raise ChemtomoError(f"candidate {name!r}: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if denoiser is not None and denoiser not in DENOISERS:
            raise ChemtomoError(f"candidate {name!r}: unknown denoiser {denoiser!r}; choose from "
                                f"{', '.join(DENOISERS)}, or {VIEWS} (synthesized views)")
        if guide is not None and "guide" not in denoiser_options(denoiser):
            guided = [d for d in DENOISERS if "guide" in denoiser_options(d)]
            raise ChemtomoError(f"candidate {name!r}: denoiser {denoiser} takes no guide; guided ones are "
                                f"{', '.join(p + d for p in (GUIDED, SUM_GUIDED) for d in guided)}")
        if (denoiser is not None or views) and METHODS[method].joint:
            raise ChemtomoError(f"candidate {name!r}: joint methods take the raw counts; drop the "
                                f"{'views' if views else 'denoiser'}")
        if partition == SUM_PARTITION and METHODS[method].joint:
            raise ChemtomoError(f"candidate {name!r}: joint methods couple the elements themselves; drop "
                                f"+{partition} (a joint method's element volumes can share out the HAADF volume: "
                                f"{method}+{PARTITION})")
        return cls(name.strip(), method, denoiser, guide, views, partition)
