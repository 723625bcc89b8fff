"""Denoise the count signals of a tilt series: the step behind ``reconstruct --denoise`` and recipes."""

from __future__ import annotations

import time

import numpy as np

from ..core.data import Signal, TiltSeries
from ..core.errors import ChemtomoError
from ..core.names import is_counts

#: the method ``--method auto`` means after denoising: denoised maps are no longer Poisson counts, so the
#: Poisson rules of ``auto`` (MLEM with the discrepancy stop, count-splitting weights of the joint methods)
#: do not hold; SIRT is the reconstruction of the denoise-then-reconstruct pipeline (Skorikov et al. 2021)
AUTO_AFTER_DENOISE = "sirt"


def denoise_series(series: TiltSeries, method: str, *, signals=None, options: dict | None = None
                   ) -> tuple[TiltSeries, dict]:
    """Denoise every projection map of the chosen signals of `series`.

    Parameters
    ----------
    series : TiltSeries
        The tilt series; never modified.
    method : str
        A denoiser of :data:`chemtomo.denoise.registry.DENOISERS`.
    signals : sequence of str, optional
        Signals to denoise. Default: every count signal (elements such as ``Au``
        and X-ray lines such as ``Au_La``, :func:`chemtomo.core.names.is_counts`);
        HAADF and other image signals are left as they are unless named here.
    options : dict, optional
        Options of the denoiser, the same for every signal; an automatic option
        left out is chosen per signal from its own counts. A ``guide`` option
        (``n2n``) given as a signal name (``guide="HAADF"``) is that signal's
        maps at this signal's angles (:func:`guide_images`; the guide may
        have more angles, e.g. HAADF every 2 degrees, X-ray maps every 10).

    Returns
    -------
    denoised : TiltSeries
        The same signals, angles and metadata, with the chosen signals denoised
        (float32 expected counts).
    record : dict
        ``{"method", "options", "signals": {name: {"options": resolved options, "seconds"}}}``
        for provenance.

    Raises
    ------
    ChemtomoError
        For an unknown method, option or signal name, or a signal that is not counts (NaN, negative values).
    """
    from .registry import DENOISERS, resolve_options

    if method not in DENOISERS:
        raise ChemtomoError(f"unknown denoiser {method!r}; choose one of {', '.join(DENOISERS)}")
    if signals is None:
        names = [n for n in series.names if is_counts(n)]
        if not names:
            raise ChemtomoError(f"the series has no count signals to denoise ({', '.join(series.names)}); "
                                "name the signals to denoise, e.g. --denoise-signal HAADF")
    else:
        names = list(signals)
        unknown = [n for n in names if n not in series]
        if unknown:
            raise ChemtomoError(f"cannot denoise {', '.join(unknown)}: the series has {', '.join(series.names)}")
    info = DENOISERS[method]
    out = dict(series.signals)
    record = {"method": method, "options": dict(options or {}), "signals": {}}
    given = dict(options or {})
    if isinstance(given.get("guide"), str):
        guide_name = given["guide"]
        if guide_name not in series:
            raise ChemtomoError(f"guide={guide_name}: the series has no such signal ({', '.join(series.names)})")
        given["guide"] = series[guide_name]
    for name in names:
        sig = series[name]
        start = time.perf_counter()
        try:
            opts = dict(given)
            if "guide" in opts and not isinstance(opts["guide"], str):
                opts["guide"] = guide_images(opts["guide"], sig.angles)
            opts = resolve_options(sig.data, method, **opts)
            data = info.function(sig.data, **opts)
        except ChemtomoError as err:
            raise type(err)(f"denoising signal {name}: {err}") from None
        out[name] = Signal(data, sig.angles, sig.units)
        if "guide" in opts:
            opts["guide"] = record["options"].get("guide")
        opts.pop("progress", None)
        record["signals"][name] = {"options": opts, "seconds": round(time.perf_counter() - start, 3)}
    metadata = dict(series.metadata, denoise=record)
    return TiltSeries(out, pixel_size=series.pixel_size, dose=series.dose,
                      acquisition_time=series.acquisition_time, metadata=metadata), record


#: angles (degrees) of a guide and of the maps it guides that are taken as the same
ANGLE_TOLERANCE = 0.05


def guide_index(guide_angles, angles) -> np.ndarray:
    """Index of each of `angles` (degrees) among `guide_angles` (within :data:`ANGLE_TOLERANCE`), -1 where the
    guide has no image at that angle."""
    angles = np.asarray(angles, dtype=np.float64)
    diff = np.abs(np.asarray(guide_angles, dtype=np.float64)[None, :] - angles[:, None])
    nearest = diff.argmin(axis=1)
    return np.where(diff[np.arange(len(angles)), nearest] > ANGLE_TOLERANCE, -1, nearest)


def guide_images(guide: Signal, angles) -> np.ndarray:
    """The guide's images at `angles` (degrees), shape ``(len(angles), ny, nu)``.

    The guide may have more angles than the maps it guides; each of `angles` must be among them
    (:func:`guide_index`), else a :class:`ChemtomoError` names the first missing one.
    """
    idx = guide_index(guide.angles, angles)
    if (idx < 0).any():
        raise ChemtomoError(f"the guide has no image at {np.asarray(angles)[idx < 0][0]:g} degrees; it needs one at "
                            "every angle of the maps it guides")
    return np.asarray(guide.data)[idx]
