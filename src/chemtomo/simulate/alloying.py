"""Ground truth for in-situ alloying: an A@B core-shell sphere that interdiffuses by Fick's law.

At time `start` the particle is a sharp core-shell sphere (core element 1,
shell element 0 in the atomic fraction ``c`` of the core element). From then on
``c`` evolves by ``dc/dt = D laplacian(c)`` with no flux through the particle
surface (:func:`chemtomo.quantify.diffusion.diffuse`, explicit 3D finite
differences on the voxel grid), so the particle homogenises towards its mean
composition. Each state is returned as a phantom ``{core element: c, shell
element: 1 - c}`` inside the particle (0 outside), ready for
:func:`chemtomo.simulate.simulate_series`.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError
from ..quantify.diffusion import diffuse
from ..quantify.haadf import alloying_index


def alloying_series(times, D: float, *, shape=(48, 48, 48), radius: float | None = None, core_ratio: float = 0.6,
                    voxel_size: float = 0.5, start: float | None = None, elements=("Au", "Ag")) -> dict:
    """States of a core-shell sphere alloying by interdiffusion at the given times.

    Parameters
    ----------
    times : sequence of float
        Times of the states in s, strictly increasing.
    D : float
        Interdiffusion coefficient in nm^2/s, >= 0.
    shape : (int, int, int), default (48, 48, 48)
        Volume shape (ny, nz, nx) in voxels.
    radius : float, optional
        Particle radius in nm; default 0.4 of the smallest edge (a diameter of 0.8 of it).
    core_ratio : float, default 0.6
        Core radius over particle radius, in (0, 1).
    voxel_size : float, default 0.5
        Voxel edge in nm.
    start : float, optional
        Time in s at which the particle was a sharp core-shell sphere (<= ``times[0]``);
        default ``times[0]``.
    elements : (str, str), default ("Au", "Ag")
        Core element, shell element.

    Returns
    -------
    dict
        ``phantoms`` (list of {element: array (ny, nz, nx)}, one per time),
        ``fraction`` (list of the core element's atomic fraction, 0 outside),
        ``mask`` (bool particle), ``index`` (list of the true
        :func:`~chemtomo.quantify.haadf.alloying_index`), ``times``, ``D``,
        ``start``, ``radius_nm``, ``core_radius_nm``, ``voxel_size``, ``elements``.

    Raises
    ------
    ChemtomoError
        For unsorted times, a start after the first time, or impossible sizes.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size < 1 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ChemtomoError(f"times must be finite and strictly increasing (s), got {list(np.ravel(times))}")
    start = float(t[0]) if start is None else float(start)
    if start > t[0]:
        raise ChemtomoError(f"start ({start} s) must not be after the first time ({t[0]} s)")
    if not (np.isfinite(D) and D >= 0):
        raise ChemtomoError(f"D must be a non-negative diffusion coefficient in nm^2/s, got {D}")
    if len(shape) != 3 or min(shape) < 4:
        raise ChemtomoError(f"shape must be three edges of at least 4 voxels, got {shape}")
    if not 0 < core_ratio < 1:
        raise ChemtomoError(f"core_ratio must be between 0 and 1, got {core_ratio}")
    if len(elements) != 2 or elements[0] == elements[1]:
        raise ChemtomoError(f"elements must be two different symbols (core, shell), got {list(elements)}")
    h = float(voxel_size)
    radius = 0.4 * min(shape) * h if radius is None else float(radius)
    if not 0 < radius <= 0.5 * (min(shape) - 1) * h:
        raise ChemtomoError(f"radius {radius} nm does not fit in {shape} voxels of {h} nm")
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * h for n in shape], indexing="ij", sparse=True)
    r = np.sqrt(sum(g**2 for g in grids))
    mask = r < radius
    c = (r < core_ratio * radius).astype(np.float64)
    fractions, now = [], start
    for tk in t:
        c = diffuse(c, D, float(tk - now), voxel_size=h, mask=mask)
        now = float(tk)
        fractions.append(c)
    core, shell = elements
    phantoms = [{core: np.where(mask, f, 0.0), shell: np.where(mask, 1.0 - f, 0.0)} for f in fractions]
    return {"phantoms": phantoms, "fraction": fractions, "mask": mask,
            "index": [alloying_index(f, mask) for f in fractions], "times": t.tolist(), "D": float(D),
            "start": start, "radius_nm": radius, "core_radius_nm": core_ratio * radius, "voxel_size": h,
            "elements": (core, shell)}
