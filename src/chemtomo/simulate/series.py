"""Top-level simulation: phantom -> noisy HAADF + EDX tilt series with dose bookkeeping.

HAADF and EDX are recorded simultaneously at every tilt (one scan per tilt),
so both see the same dose per tilt, ``dose / n_tilts``. Tilts are exposed in
the order given (this matters for beam damage and drift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ChemtomoError
from ..core.data import Signal, TiltSeries
from ..core.geometry import TiltGeometry
from .acquisition import SweptProjector, damage_factors, dose_from_time, random_shifts, time_from_dose
from ..core.shifts import apply_shifts
from .edx import edx_counts, edx_expected, holder_shadow
from ..physics.xray import EDXDetector, default_line, parse_line
from .eels import detect, eels_expected_maps
from ..physics.eels import EDGE_DELAY, default_edge, is_edge
from ..physics.elements import material_elements
from .haadf import haadf_expected
from ..physics.counts import as_rng


@dataclass(frozen=True)
class Acquisition:
    """Microscope and stage settings of a simulated tilt series.

    Parameters
    ----------
    beam_current : float, default 250.0
        Probe current in pA; converts between dose and time.
    sweep : float, default 0.0
        Angle swept during each exposure in degrees (continuous tilting); 0 is step-and-shoot.
    drift : float, default 0.0
        Standard deviation of random per-tilt image shifts (dy, du) in pixels.
    critical_dose : float or None, default None
        1/e dose of exponential mass loss in e-/A^2; None is no damage.
    shadow_angle : float or None, default None
        Tilt in degrees beyond which the holder shadows the EDX detector (on `shadow_side`).
    shadow_side : int, default 1
        +1 shadows positive tilts, -1 negative ones.
    probe_sigma : float, default 0.0
        Gaussian probe blur of the HAADF images in pixels.
    background : float, default 0.0
        Uniform EDX background as a fraction of the mean particle signal.
    absorption : bool, default False
        Self-absorption of the X-rays on their way to the detector (Beer-Lambert
        with xraylib attenuation); slower.
    """

    beam_current: float = 250.0
    sweep: float = 0.0
    drift: float = 0.0
    critical_dose: float | None = None
    shadow_angle: float | None = None
    shadow_side: int = 1
    probe_sigma: float = 0.0
    background: float = 0.0
    absorption: bool = False


def simulate_series(phantom: dict, angles, *, signals=("HAADF", "EDX"), dose: float | None = None,
                    time: float | None = None, voxel_size: float = 1.0, solid_angle=0.7,
                    acquisition: Acquisition = Acquisition(), eels_detector: str = "counting",
                    rng=None) -> TiltSeries:
    """Simulate a noisy multi-signal tilt series of a phantom.

    Parameters
    ----------
    phantom : dict of str to array (ny, nz, nx)
        Volume fraction (0..1) per material: an element symbol (the pure solid element) or a compound of
        :data:`chemtomo.physics.elements.COMPOUNDS` such as ``"TiO2"``, whose elements get their
        stoichiometric densities (signals per element: ``"EDX"`` and ``"EELS"`` give Ti and O maps).
        Gases given as elements (``"O"``) are refused: give their compound.
    angles : sequence of float
        Tilt angles in degrees, in acquisition order.
    signals : sequence of str, default ("HAADF", "EDX")
        ``"HAADF"``; ``"EDX"`` for the default line of every element (signal named by
        the element, e.g. ``"Au"``); or explicit lines such as ``"Au_Ma"`` (signal named by the line);
        ``"EELS"`` for the usual core-loss edge of every element
        (:func:`~chemtomo.physics.eels.default_edge`) or explicit edges such as ``"Fe_L23"``
        (background-subtracted edge maps, 50 eV windows, signal named by the edge).
    dose : float, optional
        Total dose of the series in e-/A^2, spread evenly over the tilts.
    time : float, optional
        Total acquisition time in s; gives the dose through ``acquisition.beam_current``.
        Give exactly one of `dose` and `time`.
    voxel_size : float, default 1.0
        Voxel edge and detector pixel size in nm.
    solid_angle : float or EDXDetector, default 0.7
        EDX collection solid angle in sr, or a full :class:`EDXDetector`.
    acquisition : Acquisition
        Beam current, continuous tilting, drift, damage, shadowing, probe blur, EDX background.
    eels_detector : {"counting", "ccd"}, default "counting"
        EELS camera (:func:`~chemtomo.simulate.eels.detect`): electron counting
        (Poisson) or a CCD (gain 1, read-out noise 3).
    rng : None, int or numpy.random.Generator
        Random source; the same seed gives identical data.

    Returns
    -------
    TiltSeries
        HAADF in detected electrons, EDX maps in counts (float32), ``pixel_size`` =
        `voxel_size`, ``dose`` and ``acquisition_time`` filled. ``metadata`` holds
        ``lines`` (signal -> X-ray line), ``dose_per_tilt``, ``shifts`` (true (dy, du)
        per tilt in pixels), ``damage`` and ``shadow`` factors, ``beam_energy`` and ``solid_angle``.

    Raises
    ------
    ChemtomoError
        If neither or both of `dose` and `time` are given, or the phantom is empty or inconsistent.
    """
    if not phantom:
        raise ChemtomoError("phantom is empty; give {element: concentration volume (ny, nz, nx)}")
    shapes = {np.shape(v) for v in phantom.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ChemtomoError(f"phantom volumes must all be 3D with one shape (ny, nz, nx), got {sorted(shapes)}")
    ny, nz, nx = next(iter(shapes))
    geom = TiltGeometry(angles, (ny, nz, nx))
    n_pix = ny * geom.n_u
    if (dose is None) == (time is None):
        raise ChemtomoError("give exactly one of dose (total e-/A^2) or time (total s) to set the exposure")
    if dose is None:
        dose = dose_from_time(time, beam_current=acquisition.beam_current, n_pixels=n_pix, pixel_size=voxel_size)
    else:
        time = time_from_dose(dose, beam_current=acquisition.beam_current, n_pixels=n_pix, pixel_size=voxel_size)
    detector = solid_angle if isinstance(solid_angle, EDXDetector) else EDXDetector(solid_angle=solid_angle)
    gen = as_rng(rng)
    per_tilt = np.full(geom.n_tilts, dose / geom.n_tilts)
    damage = damage_factors(per_tilt, acquisition.critical_dose)
    effective = per_tilt * damage  # uniform mass loss scales the signal like a lower dose
    proj = SweptProjector(geom, acquisition.sweep) if acquisition.sweep > 0 else geom
    shifts = random_shifts(geom.n_tilts, acquisition.drift, rng=gen)

    def finish(img):
        return apply_shifts(img, shifts) if acquisition.drift > 0 else img

    out, lines = {}, {}
    wanted = list(signals)
    if eels_detector not in ("counting", "ccd"):
        raise ChemtomoError(f"eels_detector must be 'counting' or 'ccd', got {eels_detector!r}")
    if "HAADF" in wanted:
        lam = haadf_expected(phantom, proj, voxel_size=voxel_size, dose=effective, probe_sigma=acquisition.probe_sigma)
        out["HAADF"] = gen.poisson(np.clip(finish(lam), 0, None))
    edx_lines, edges = {}, {}
    for s in wanted:
        if s == "EDX":
            edx_lines.update({el: default_line(el) for el in material_elements(phantom)})
        elif s == "EELS":
            edges.update({default_edge(el): default_edge(el) for el in material_elements(phantom)})
        elif is_edge(s):
            edges[s] = s
        elif s != "HAADF":
            parse_line(s)
            edx_lines[s] = s
    if edges:
        items = [(e, EDGE_DELAY[e.partition("_")[2]]) for e in edges
                 if e.partition("_")[0] in material_elements(phantom)]
        lam = eels_expected_maps(phantom, proj, items, voxel_size=voxel_size, dose=effective)
        for e in edges:  # an element absent from the phantom gives an empty map
            out[e] = detect(finish(lam[e]) if e in lam else np.zeros(geom.projection_shape), eels_detector, rng=gen)
            lines[e] = e
    shadow = holder_shadow(geom.angles, acquisition.shadow_angle, side=acquisition.shadow_side)
    if edx_lines:
        lam = edx_expected(phantom, proj, list(edx_lines.values()), voxel_size=voxel_size, dose=effective * shadow,
                           detector=detector, absorption=acquisition.absorption)
        lam = {name: finish(lam[line]) for name, line in edx_lines.items()}
        counts = edx_counts(lam, background=acquisition.background, rng=gen)
        out.update(counts)
        lines.update(edx_lines)
    def units(name):
        if name == "HAADF":
            return "electrons"
        return "detector units" if name in edges and eels_detector == "ccd" else "counts"

    sig = {name: Signal(np.asarray(v, dtype=np.float32), geom.angles, units(name)) for name, v in out.items()}
    meta = {
        "simulated": True,
        "lines": lines,
        "eels_detector": eels_detector if edges else None,
        "dose_per_tilt": per_tilt.tolist(),
        "damage": damage.tolist(),
        "shadow": shadow.tolist(),
        "shifts": shifts.tolist(),
        "beam_energy": 200.0,
        "solid_angle": detector.solid_angle,
        "beam_current_pA": acquisition.beam_current,
    }
    return TiltSeries(sig, pixel_size=voxel_size, dose=float(dose), acquisition_time=float(time), metadata=meta)
