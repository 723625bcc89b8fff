"""Training of the learned spectral extractor (:mod:`chemtomo.spectral.learned`) on simulated EDX and EELS spectrum images.

Each training example is one simulated spectrum image (``size x size`` px):

* **elements**: 1-3 drawn from :data:`EDX_POOL` (EDX, lines by
  :func:`chemtomo.spectral.lines.auto_lines`, so K, L and M families and their overlaps) or
  1-3 edges of :data:`EELS_POOL` (EELS, onsets at least 15 eV apart, tails
  overlapping); :data:`HELD_OUT` elements (the benchmark's Fe, Pt, Au, S,
  Mo, Ti, Ba, O) never appear, so every benchmark element set is unseen;
* **geometry**: random particles (:func:`chemtomo.simulate.random_particle`,
  all shape families, solid / core-shell / alloy), one per pair of elements,
  projected along a random axis, pixel size 0.3-2 nm (thickness), plus a
  support film of 0-10 % of the mean areal density and, for EDX, an optional
  carbon or silicon support;
* **instrument**: EDX at 5, 10 or 20 eV per channel, Mn Ka resolution
  110-150 eV (known to the fit), 200 kV; EELS at 0.25, 0.5 or 1 eV per channel,
  power-law background ``K`` 3e-7-3e-6 A^2/eV and exponent 2.5-4, edge
  delays 0.6-1.4 x the model's (the fit's edge shape is deliberately not
  the truth);
* **dose**: mean counts per pixel per line on its footprint log-uniform in
  0.03-300 (EDX) or edge counts 1-10^4 (EELS), then Poisson counts.

The target is the expected counts of each line family (areal density x dose
x X-ray cross-section x detector) or of each edge in ``[onset, onset + 50)``
eV. Early stopping keeps the weights with the smallest validation loss on
fixed simulated images of the training pools (other seeds).

Run ``python -m chemtomo.training.spectral --minutes 30 --out src/chemtomo/spectral/weights/spectral_unet.pt``.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np
import torch

from ..core.errors import ChemtomoError
from ..nn.fit import fit
from ..nn.unet import add_inputs, architecture, build, initial_model, n_parameters, save_weights
from ..spectral.estimates import line_estimates
from ..spectral.learned import N_FEATURES, features, n_inputs

#: EDX training elements (with K, L or M lines in 0.2-20 keV).
EDX_POOL = ("Mg", "Al", "Si", "P", "Cl", "K", "Ca", "V", "Cr", "Mn", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As",
            "Se", "Sr", "Y", "Zr", "Nb", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "La", "Ce",
            "Nd", "Gd", "Hf", "Ta", "W", "Re", "Ir", "Hg", "Pb", "Bi")
#: EELS training elements (their default edges, :func:`chemtomo.physics.eels.default_edge`).
EELS_POOL = ("B", "C", "N", "F", "Na", "Mg", "Ca", "V", "Cr", "Mn", "Co", "Ni", "Cu", "Zn", "La", "Ce", "Nd")
#: Never used in training: the benchmark's element sets are unseen.
HELD_OUT = ("Fe", "Pt", "Au", "S", "Mo", "Ti", "Ba", "O")
#: Default architecture of the extractor.
ARCH = {"channels": [24, 48, 96], "in_channels": N_FEATURES, "out_channels": 2, "softplus": False}
PIX_RANGE, FILM_MAX = (0.3, 2.0), 0.10
#: Floor of a line's mean squared truth (units of its scale c) in the training loss: lines far below
#: their noise weigh at most 1 / REL_FLOOR times a strong one.
REL_FLOOR = 0.02
#: Dilution factors of the minor element in ``minor_fraction`` of the overlapping pairs (and EELS images).
MINOR_RANGE = (0.03, 0.5)


def _areal(rng, n, elements, compositions=None):
    """Areal densities (atoms/A^2) of `elements` in random particles, projected along a random axis."""
    from ..physics.elements import number_density
    from ..simulate import random_particle

    pix = rng.uniform(*PIX_RANGE)
    axis = int(rng.integers(3))
    els = list(elements)
    pairs = [els[i:i + 2] for i in range(0, len(els), 2)]
    if len(pairs[-1]) == 1 and len(els) > 1:
        pairs[-1] = [pairs[-1][0], els[0]]
    out = {el: np.zeros((n, n)) for el in els}
    for pair in pairs:
        vols, _ = random_particle(rng, (n, n, n), pair, compositions=compositions if len(pair) > 1 else None)
        for el in pair:
            out[el] += vols[el].sum(axis=axis) * pix * number_density(el) / 100.0
    mean = np.mean([a.mean() for a in out.values()])
    film = rng.uniform(0, FILM_MAX) * mean
    return {el: a + film for el, a in out.items()}, pix


@functools.lru_cache(maxsize=4)
def overlapping_pairs(max_gap: float = 0.12) -> tuple[tuple[str, str], ...]:
    """Pairs of :data:`EDX_POOL` elements with a mapped line of each within `max_gap` keV (heavy overlaps)."""
    from ..physics.xray import energy_axis
    from ..spectral.lines import auto_lines, line_energy

    e = energy_axis(2000, 0.01)
    lines = {}
    for el in EDX_POOL:
        try:
            lines[el] = [line_energy(l) for l in auto_lines(el, e)]
        except ChemtomoError:
            continue
    els = sorted(lines)
    return tuple((a, b) for i, a in enumerate(els) for b in els[i + 1:]
                 if min(abs(x - y) for x in lines[a] for y in lines[b]) <= max_gap)


def _level(truth):
    """Mean expected count on each present line's footprint (pixels above 1 % of its maximum), averaged over lines."""
    present = [t[t > 0.01 * t.max()].mean() for t in truth if t.max() > 0]
    return float(np.mean(present)) if present else 0.0


def _dilute(rng, areal, factor):
    """Scale the areal density of one element of `areal` (drawn) by `factor` in place, if there are several."""
    if factor is None or len(areal) < 2:
        return
    if not 0 < factor <= 1:
        raise ChemtomoError(f"dilute is {factor}; give a factor in (0, 1]")
    areal[str(rng.choice(sorted(areal)))] *= factor


def _draw(rng, value, draw):
    return draw() if value is None else value


def simulate_edx(rng, n: int = 48, *, elements=None, counts=None, scale=None, fwhm_mnka=None,
                 compositions=None, dilute=None) -> dict:
    """One random EDX spectrum image with its truth (module notes); keywords fix what is otherwise drawn.

    Parameters
    ----------
    rng : numpy.random.Generator
    n : int
        Image size in pixels.
    elements : sequence of str, optional
        Elements (lines by :func:`chemtomo.spectral.lines.auto_lines`) or lines; default 1-3 elements from :data:`EDX_POOL`.
    counts : float, optional
        Mean counts per pixel per line on its footprint; default log-uniform 0.03-300.
    scale : float, optional
        Channel width in keV; default 0.005, 0.01 or 0.02.
    fwhm_mnka : float, optional
        Detector resolution at Mn Ka in eV; default 110-150.
    compositions : sequence of str, optional
        Particle compositions to draw from (:data:`chemtomo.simulate.phantoms.COMPOSITIONS`); default all.
    dilute : float, optional
        Factor (0-1] on the areal density of one element of the image, drawn at random: a minor element
        whose lines sit under a major one's; default none.

    Returns
    -------
    dict
        ``si`` (n, n, channels) counts, ``energy`` keV, ``lines``, ``truth`` (lines, n, n) expected counts,
        ``fwhm_mnka``, ``kind="edx"``.
    """
    from ..physics.xray import EDXDetector, energy_axis, xray_cross_section
    from ..simulate.spectrum import expected_spectra
    from ..spectral.lines import resolve_lines
    from ..spectral.model import fit_range

    while True:
        els = list(_draw(rng, elements, lambda: rng.choice(EDX_POOL, size=int(rng.integers(1, 4)), replace=False)))
        step = float(_draw(rng, scale, lambda: rng.choice([0.005, 0.01, 0.02])))
        e = energy_axis(int(20.0 / step), step)
        try:
            lines = resolve_lines(els, e)
            lo, hi = fit_range(e, lines)
        except ChemtomoError:
            if elements is not None:
                raise
            continue
        sub = e[(e >= lo - 2 * step) & (e <= hi + 2 * step)]
        areal, pix = _areal(rng, n, list(dict.fromkeys(x.split("_")[0] for x in els)), compositions)
        _dilute(rng, areal, dilute)
        support = rng.choice(["none", "C", "Si"])
        if support != "none":
            areal[support] = areal.get(support, 0) + rng.uniform(0.0, 0.5) * np.mean([a.mean() for a in areal.values()])
        det = EDXDetector(fwhm_mnka=float(_draw(rng, fwhm_mnka, lambda: rng.uniform(110, 150))))
        lam = expected_spectra(areal, sub, dose=1.0, pixel_size=pix, detector=det)
        unit = (10 * pix) ** 2 * det.solid_angle / (4 * np.pi) * det.efficiency
        truth = np.stack([areal[l.split("_")[0]] * unit * xray_cross_section(l) for l in lines])
        level = _level(truth)
        if not level > 0:
            continue
        f = _draw(rng, counts, lambda: np.exp(rng.uniform(np.log(0.03), np.log(300.0)))) / level
        return {"si": rng.poisson(lam * f), "energy": sub, "lines": lines, "truth": truth * f,
                "fwhm_mnka": det.fwhm_mnka, "kind": "edx"}


def simulate_eels(rng, n: int = 48, *, edges=None, counts=None, dispersion=None, width: float = 50.0,
                  delay_spread: float = 0.4, compositions=None, dilute=None) -> dict:
    """One random EELS core-loss spectrum image with its truth (module notes); keywords fix what is otherwise drawn.

    Parameters
    ----------
    edges : sequence of str, optional
        Edges; default the default edges of 1-3 elements of :data:`EELS_POOL`.
    counts : float, optional
        Mean edge counts per pixel in ``[onset, onset + width)`` on its footprint; default log-uniform 1-1e4.
    dispersion : float, optional
        eV per channel; default 0.25, 0.5 or 1.
    delay_spread : float, default 0.4
        True edge delays are the model's times ``1 +- delay_spread`` (uniform).
    compositions, dilute
        As for :func:`simulate_edx` (`dilute`: a minor edge on a major one's tail).

    Returns
    -------
    dict
        ``si``, ``energy`` (eV), ``lines`` (the edges), ``truth`` (edges, n, n), ``kind="eels"``.
    """
    from ..physics.eels import EDGE_DELAY, default_edge, edge_cross_section, edge_onset, pre_edge_start
    from ..simulate.eels import eels_expected_spectra

    while True:
        names = edges if edges is not None else [
            default_edge(el) for el in rng.choice(EELS_POOL, size=int(rng.integers(1, 4)), replace=False)]
        names = sorted(names, key=edge_onset)
        onsets = [edge_onset(x) for x in names]
        if edges is None and (np.any(np.diff(onsets) < 15) or min(onsets) < 60):
            continue
        disp = float(_draw(rng, dispersion, lambda: rng.choice([0.25, 0.5, 1.0])))
        lo = min(pre_edge_start(o) for o in onsets) - rng.uniform(0, 50)
        hi = max(onsets) + width + rng.uniform(25, 150)
        e = np.arange(max(lo, 20.0), hi, disp)
        if e.size > 3000 and edges is None:
            continue
        els = sorted({x.split("_")[0] for x in names})
        areal, pix = _areal(rng, n, els, compositions)
        _dilute(rng, areal, dilute)
        delays = {x: EDGE_DELAY[x.partition("_")[2]] * rng.uniform(1 - delay_spread, 1 + delay_spread) for x in names}
        bg = (float(np.exp(rng.uniform(np.log(3e-7), np.log(3e-6)))), float(rng.uniform(2.5, 4.0)))
        lam = eels_expected_spectra(areal, e, [(x, delays[x]) for x in names], dose=1.0, pixel_size=pix,
                                    background=bg)
        n_e = (10.0 * pix) ** 2
        truth = np.stack([areal[x.split("_")[0]] * n_e * disp
                          * edge_cross_section(x, e, delay=delays[x])[(e >= o) & (e < o + width)].sum()
                          for x, o in zip(names, onsets)])
        level = _level(truth)
        if not level > 0:
            continue
        f = _draw(rng, counts, lambda: np.exp(rng.uniform(np.log(1.0), np.log(1e4)))) / level
        return {"si": rng.poisson(lam * f), "energy": e, "lines": names, "truth": truth * f, "kind": "eels"}


def example(rng, n: int = 48, eels_fraction: float = 0.3, overlap_fraction: float = 0.0,
            minor_fraction: float = 0.0, eels_minor: bool = False, eels_minor_range=MINOR_RANGE):
    """Features ``(K, N_FEATURES, n, n)``, targets ``(K, n, n)`` on the scale ``c`` and ``c`` ``(K,)`` of one random image.

    A fraction `overlap_fraction` of the EDX images holds a pair of :func:`overlapping_pairs`; in a
    fraction `minor_fraction` of those, one element of the pair is diluted by a factor log-uniform in
    :data:`MINOR_RANGE` (a minor line under a major one); with `eels_minor`, so is a fraction
    `minor_fraction` of the EELS images (a minor edge on a major one's tail), by a factor log-uniform in
    `eels_minor_range` (down to 0.001: an edge nearly absent, e.g. only in the support film).
    """
    def dilution(span=MINOR_RANGE):
        if minor_fraction and rng.random() < minor_fraction:
            return float(np.exp(rng.uniform(*np.log(span))))
        return None

    while True:
        u = rng.random()
        if u < eels_fraction:
            sim = simulate_eels(rng, n, dilute=dilution(eels_minor_range) if eels_minor else None)
        elif u < eels_fraction + overlap_fraction * (1 - eels_fraction):
            pairs = overlapping_pairs()
            pair = list(pairs[int(rng.integers(len(pairs)))])
            sim = simulate_edx(rng, n, elements=pair, dilute=dilution())
        else:
            sim = simulate_edx(rng, n)
        try:
            est = line_estimates(sim["si"], sim["energy"], sim["lines"], fwhm_mnka=sim.get("fwhm_mnka", 130.0))
        except ChemtomoError:
            continue
        x, c = features(est["estimate"], est["sigma"], est["correlation"], est["total"])
        return x, torch.as_tensor(sim["truth"], dtype=torch.float32) / c[:, None, None], c


def loss_terms(model, x, y, s, rel_floor: float = REL_FLOOR):
    """Training terms: squared NRMSE of each map (denominator floored at `rel_floor`, units of the
    scale c), mean over lines; Gaussian NLL of the error for the std head (mean detached); plain squared error."""
    out = model(x)
    m = torch.nn.functional.softplus(out[:, 0])
    log_sd = out[:, 1].clamp(-10, 10)
    err = ((m - y) ** 2).mean(dim=(1, 2))
    rel = (err / (y ** 2).mean(dim=(1, 2)).clamp_min(rel_floor)).mean()
    nll = (0.5 * (m.detach() - y) ** 2 * torch.exp(-2 * log_sd) + log_sd).mean()
    return rel, nll, err.mean()


def train_extractor(*, minutes: float = 30.0, steps: int | None = None, size: int = 48, batch_images: int = 4,
                    seed: int = 0, lr: float = 1e-3, arch: dict | None = None, out=None, device=None,
                    n_val: int = 24, progress: bool = True, init=None, overlap_fraction: float = 0.0,
                    rel_floor: float = REL_FLOOR, minor_fraction: float = 0.0, eels_minor: bool = False,
                    eels_minor_range=MINOR_RANGE) -> tuple:
    """Train the extractor; return ``(model, info)`` and write both to `out` (``.pt`` + ``.json``) if given.

    `init` (a weights file) continues from earlier weights (their architecture); `overlap_fraction` of the
    EDX images hold heavily overlapping line pairs (:func:`overlapping_pairs`); `rel_floor` floors each
    line's mean squared truth in the relative loss (units of its scale c): lower values weigh lines far below
    their noise more, so that the network learns to leave them near zero; `minor_fraction` of the overlapping
    pairs (and with `eels_minor` of the EELS images, by a factor in `eels_minor_range`) have one element
    diluted (:func:`example`).
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    if init is not None:
        model = initial_model(init, dev).train()
        n_in = n_inputs(model, str(init))
        if n_in < N_FEATURES:  # weights of an earlier feature set: the new inputs start at zero
            model = add_inputs(model, N_FEATURES - n_in).train()
        arch = architecture(model)
    else:
        arch = {**ARCH, **(arch or {})}
        model = build(arch).to(dev)
    rng = np.random.default_rng([seed, 1])
    draw = functools.partial(example, n=size, overlap_fraction=overlap_fraction, minor_fraction=minor_fraction,
                             eels_minor=eels_minor, eels_minor_range=tuple(eels_minor_range))
    val = [draw(np.random.default_rng([seed, 2, i])) for i in range(n_val)]

    def batch_loss(step):
        xs, ys, ss = zip(*(draw(rng) for _ in range(batch_images)))
        rel, nll, _ = loss_terms(model, torch.cat(xs).to(dev), torch.cat(ys).to(dev), torch.cat(ss).to(dev), rel_floor)
        return rel + nll

    def check(step):
        terms = np.zeros(3)
        with torch.no_grad():
            for x, y, s in val:
                terms += [t.item() / len(val) for t in loss_terms(model, x.to(dev), y.to(dev), s.to(dev), rel_floor)]
        return {"val_rel": terms[0], "val_nll": terms[1], "val_mse": terms[2]}

    minutes = minutes if steps is None else None  # a step budget has no time budget
    record = fit(model, batch_loss, steps=steps, minutes=minutes, lr=lr, every=100,
                 check=check, keep_best="val_rel", label="spectral extractor", progress=progress, clip=1.0)
    info = {"architecture": arch, "parameters": n_parameters(model),
            "training": {"minutes": minutes, "steps": record["steps"], "seconds": record["seconds"], "size": size,
                         "batch_images": batch_images, "seed": seed, "lr": lr, "gradient_clip": 1.0, "rel_floor": rel_floor,
                         "device": str(dev),
                         "edx_pool": list(EDX_POOL), "eels_pool": list(EELS_POOL), "held_out": list(HELD_OUT),
                         "edx_counts_per_line": [0.03, 300.0], "eels_edge_counts": [1.0, 1e4],
                         "eels_fraction": 0.3, "overlap_fraction": overlap_fraction,
                         "minor_fraction": minor_fraction, "minor_range": list(MINOR_RANGE), "eels_minor": eels_minor,
                         "eels_minor_range": list(eels_minor_range) if eels_minor else None,
                         "init": None if init is None else str(init), "best_step": record["best_step"]},
            "validation": {"images": n_val, "seeds": f"default_rng([{seed}, 2, i]), i < {n_val}",
                           "rel_squared_error": record["best"], "curve": record["curve"]},
            "date": time.strftime("%Y-%m-%d")}
    if out is not None:
        save_weights(model.cpu(), out, info)
    return model, info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--batch-images", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--init", default=None, help="continue from these weights (.pt with its .json)")
    ap.add_argument("--overlap-fraction", type=float, default=0.0, help="share of EDX images with overlapping pairs")
    ap.add_argument("--rel-floor", type=float, default=REL_FLOOR, help="floor of a line's mean squared truth in the loss")
    ap.add_argument("--minor-fraction", type=float, default=0.0,
                    help="share of the overlapping pairs with one element diluted (a minor line under a major one)")
    ap.add_argument("--eels-minor", action="store_true", help="dilute one element in --minor-fraction of EELS images too")
    ap.add_argument("--eels-minor-range", type=float, nargs=2, default=MINOR_RANGE, metavar=("LO", "HI"),
                    help="dilution factors of the EELS minor edges (log-uniform)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    _, info = train_extractor(minutes=args.minutes, steps=args.steps, size=args.size,
                              batch_images=args.batch_images, seed=args.seed, lr=args.lr, out=args.out,
                              init=args.init, overlap_fraction=args.overlap_fraction, rel_floor=args.rel_floor,
                              minor_fraction=args.minor_fraction, eels_minor=args.eels_minor,
                              eels_minor_range=tuple(args.eels_minor_range))
    print(json.dumps({k: v for k, v in info["validation"].items() if k != "curve"}, indent=1))


if __name__ == "__main__":
    main()
