"""Composition of particles and regions: atomic and weight fractions, from concentrations or counts.

Volumes are keyed by element (``"Au"``) or X-ray line (``"Au_La"``); the element
is the part before the first underscore. Two kinds of input:

* concentration volumes (atoms per voxel, or any unit common to all elements,
  e.g. what :func:`chemtomo.quantify.haadf_quant` or a calibrated joint
  reconstruction gives): the atomic fraction of element e in a region is
  ``sum_region c_e / sum_region sum_k c_k``;
* count volumes (EDX counts per voxel, e.g. MLEM of raw maps): summed counts
  become atomic fractions by the Cliff-Lorimer ratio ``x_e ~ k_e I_e``
  (:func:`chemtomo.spectral.quant.cliff_lorimer`; theory k-factors for line
  names, or given ``k_factors``), or mass fractions by zeta factors,
  ``C_e ~ zeta_e I_e`` (:func:`chemtomo.spectral.quant.zeta_factor`).

Weight fractions follow from atomic ones with xraylib's atomic weights. Negative
voxel values (reconstruction noise) are kept in the sums: clipping them would
bias low concentrations upwards.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ChemtomoError, ShapeError


def _element(name: str) -> str:
    return name.split("_")[0]


def atomic_weight(element: str) -> float:
    """Standard atomic weight of `element` (g/mol), from xraylib."""
    import xraylib

    try:
        z = xraylib.SymbolToAtomicNumber(element)
    except ValueError:
        z = 0
    if not z:
        raise ChemtomoError(f"{element!r} is not an element symbol; name volumes by element (Au) or line (Au_La)")
    return float(xraylib.AtomicWeight(z))


def _check(volumes, mask):
    if not volumes:
        raise ChemtomoError("composition needs at least one element volume")
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in volumes.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) > 1:
        raise ShapeError(f"the element volumes differ in shape ({sorted(shapes)}); give them on one grid")
    shape = shapes.pop()
    m = np.asarray(mask)
    if m.shape != shape:
        raise ShapeError(f"the mask has shape {m.shape} but the volumes have {shape}")
    m = m.astype(bool)
    if not m.any():
        raise ChemtomoError("the region is empty (mask has no voxel): no composition to measure")
    for n, a in arrays.items():
        if not np.isfinite(a[m]).all():
            raise ChemtomoError(f"the {n} volume has NaN or infinite values in the region")
    return arrays, m


def composition(volumes: dict, mask, *, counts: bool = False, k_factors: dict | None = None,
                zeta: dict | None = None, beam_energy: float = 200.0) -> dict:
    """Atomic and weight fractions of the elements inside `mask`.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
        Concentration (``counts=False``) or count volumes per element or line.
    mask : bool array (ny, nz, nx)
        The region (a particle, its core or shell).
    counts : bool, default False
        The volumes hold X-ray counts: use Cliff-Lorimer k-factors.
    k_factors : dict, optional
        ``{name: k}`` with ``x ~ k I``; theory k-factors of the line names if omitted.
    zeta : dict, optional
        ``{name: zeta}`` zeta factors (Watanabe and Williams 2006) for
        ``counts=True``: mass fractions ``C ~ zeta I`` (the dose cancels in the
        fractions); replaces the k-factors.
    beam_energy : float, default 200
        keV, for theory k-factors.

    Returns
    -------
    dict
        ``{"atomic": {element: fraction}, "weight": {element: fraction},
        "amount": {element: summed volume}, "voxels": n}``; fractions sum to 1.

    Raises
    ------
    ChemtomoError
        Empty region, volumes of other shapes, non-finite values, a total that
        is not positive, or count volumes named by element without k-factors.
    """
    arrays, m = _check(volumes, mask)
    amount = {n: float(a[m].sum()) for n, a in arrays.items()}
    if counts and zeta is not None:
        missing = [n for n in arrays if n not in zeta]
        if missing:
            raise ChemtomoError(f"no zeta factor for {', '.join(missing)}")
        mass = {_element(n): zeta[n] * max(v, 0.0) for n, v in amount.items()}
        mtot = sum(mass.values())
        if not mtot > 0:
            raise ChemtomoError("the summed counts in the region are not positive; is the mask on the particle?")
        moles = {e: w / atomic_weight(e) for e, w in mass.items()}
        ntot = sum(moles.values())
        return {"atomic": {e: v / ntot for e, v in moles.items()}, "weight": {e: v / mtot for e, v in mass.items()},
                "amount": {_element(n): v for n, v in amount.items()}, "voxels": int(m.sum())}
    if counts:
        if k_factors is None:
            bare = [n for n in arrays if "_" not in n]
            if bare:
                raise ChemtomoError(f"count volumes {', '.join(bare)} are named by element; name them by line "
                                    "(Au_La) for theory k-factors, or pass k_factors")
            from ..spectral.quant import theory_k_factors

            k_factors = theory_k_factors(list(arrays), beam_energy)
        missing = [n for n in arrays if n not in k_factors]
        if missing:
            raise ChemtomoError(f"no k-factor for {', '.join(missing)}")
        weighted = {n: k_factors[n] * max(v, 0.0) for n, v in amount.items()}
    else:
        weighted = dict(amount)
    total = sum(weighted.values())
    if not total > 0:
        raise ChemtomoError("the summed amounts in the region are not positive; is the mask on the particle?")
    atomic = {_element(n): v / total for n, v in weighted.items()}
    mass = {e: x * atomic_weight(e) for e, x in atomic.items()}
    mtot = sum(mass.values())
    return {"atomic": atomic, "weight": {e: v / mtot for e, v in mass.items()},
            "amount": {_element(n): v for n, v in amount.items()}, "voxels": int(m.sum())}


def core_shell_regions(core_mask, particle_mask) -> dict:
    """``{"core", "shell", "whole"}`` masks of a core-shell particle; the core is cut to the particle."""
    core, whole = np.asarray(core_mask, bool), np.asarray(particle_mask, bool)
    if core.shape != whole.shape:
        raise ShapeError(f"core mask {core.shape} and particle mask {whole.shape} differ in shape")
    core = core & whole
    return {"core": core, "shell": whole & ~core, "whole": whole}
