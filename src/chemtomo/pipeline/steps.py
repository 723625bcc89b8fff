"""The steps of a run as functions of a :class:`~chemtomo.core.data.TiltSeries` and one settings section.

Every caller (``chemtomo reconstruct``, ``chemtomo run`` recipes, ``chemtomo batch``,
the demo) builds a :class:`~chemtomo.pipeline.recipe.Recipe` and calls these
functions, through :func:`chemtomo.pipeline.run.process` (in memory) or
:func:`chemtomo.pipeline.run.run_recipe` (checkpointed steps on disk), so an
option exists in one place and reaches every method. Each step returns the
new series (or volumes) and a JSON-able record for the provenance.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Callable

from ..core.data import TiltSeries, VolumeSet
from .recipe import Align, Denoise, Inputs, Reconstruct, Views

#: ``progress(name, done, total)``: called as work advances, for progress bars
Progress = Callable[[str, int, int], None]


def read_inputs(inputs: Inputs, folder: Path | None = None, progress: Progress | None = None) -> TiltSeries:
    """The tilt series of a recipe's ``inputs``: simulated (into ``folder/simulation``), files, or spectrum images
    (`progress` as :func:`chemtomo.spectral.series.maps_series` takes it)."""
    from ..io import read_tilt_series

    if inputs.simulate is not None:
        from ..simulate.command import simulate_to_directory

        if folder is None:
            raise ValueError("simulated inputs need a folder to write the simulation into")
        s = inputs.simulate
        sim = Path(folder) / "simulation"
        simulate_to_directory(sim, s.phantom, s.elements, tilts=s.tilts, signals=tuple(s.signals), dose=s.dose,
                              size=s.size, seed=s.seed, voxel_size=s.voxel_size, solid_angle=s.solid_angle)
        names = [p.stem for p in sorted(sim.glob("*.mrc"))]
        return read_tilt_series({n: sim / f"{n}.mrc" for n in names}, None)
    if inputs.files is not None:
        f = inputs.files
        return read_tilt_series(f.signals, f.angles, pixel_size=f.pixel_size)
    from ..spectral.series import maps_series

    sp = inputs.spectra
    files = sorted({p for pattern in sp.files for p in (glob.glob(pattern) or [pattern])})
    noise = {} if sp.read_noise is None else {"read_noise": sp.read_noise}
    return maps_series(files, sp.elements, method=sp.method, angles=sp.angles, downsample=sp.downsample,
                       progress=progress, **noise)


def align(series: TiltSeries, settings: Align, progress: Progress | None = None) -> tuple[TiltSeries, dict]:
    """Align every signal on the reference signal; the record holds the shifts per tilt (pixels)."""
    from ..align import align_series

    aligned, info = align_series(series, reference=settings.reference, method=settings.method,
                                 iterations=settings.iterations, centre=settings.centre, rotation=settings.rotation,
                                 tilt_axis=settings.tilt_axis, progress=progress)
    return aligned, info


def denoise(series: TiltSeries, settings: Denoise, progress: bool = False) -> tuple[TiltSeries, dict]:
    """Denoise the chosen signals' projection maps (:func:`chemtomo.denoise.series.denoise_series`)."""
    from ..denoise.registry import denoiser_options
    from ..denoise.series import denoise_series

    options = dict(settings.options)
    if progress and "progress" in denoiser_options(settings.method):
        options.setdefault("progress", True)
    return denoise_series(series, settings.method, signals=settings.signals, options=options)


def views(series: TiltSeries, settings: Views, *, thickness: int | None = None, progress: bool = False
          ) -> tuple[TiltSeries, dict]:
    """Fill unmeasured angles with synthesized views (:func:`chemtomo.views.synthesize_series`)."""
    from ..views import synthesize_series

    options = {"minutes": settings.minutes} | ({"progress": True} if progress else {})
    return synthesize_series(series, settings.step, signals=settings.signals, limits=settings.range,
                             thickness=thickness, options=options)


def resolve_method(settings: Reconstruct, *, changed_by: str | None = None) -> tuple[str, str | None]:
    """The method to run: ``auto`` after denoising or view synthesis means SIRT (the maps are no longer counts).

    Returns ``(method, reason)``; `reason` is None when nothing was changed.
    """
    from ..denoise.series import AUTO_AFTER_DENOISE

    if settings.method == "auto" and changed_by is not None:
        why = {"denoise": "denoised maps are no longer Poisson counts",
               "views": "synthesized views are not Poisson counts"}[changed_by]
        return AUTO_AFTER_DENOISE, f"--method auto after {changed_by}: {AUTO_AFTER_DENOISE} ({why})"
    return settings.method, None


def reconstruct(series: TiltSeries, settings: Reconstruct, *, method: str | None = None,
                progress: Progress | None = None) -> VolumeSet:
    """Reconstruct every signal with the settings' named method, geometry and options (:func:`reconstruct_series`);
    ``auto`` is :func:`chemtomo.pipeline.auto.run`, which calls this for its candidates."""
    from ..recon.series import reconstruct_series

    return reconstruct_series(series, method or settings.method, iterations=settings.iterations,
                              thickness=settings.thickness, axis_offset=settings.axis_offset, stop=settings.stop,
                              options=dict(settings.options), progress=progress)
