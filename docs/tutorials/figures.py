"""Compute the numbers and draw the figures of the tutorials in docs/tutorials/.

Run ``python docs/tutorials/figures.py [--only haadf,multimodal,spectral]`` to write
``docs/img/tutorial_haadf.png``, ``docs/img/tutorial_multimodal.png`` and
``docs/img/tutorial_spectral.png`` and print every number the pages quote (under a
minute on two cores, CPU only). Each tutorial is one function, ``haadf_tutorial(n)``,
``multimodal_tutorial(n)`` and ``spectral_tutorial(n)``, returning its arrays and numbers
without drawing, so that ``tests/test_tutorials.py`` can run it at a small size; the
``draw_*`` functions make the figures. The code shown in the pages is the code of these
functions: same calls, same parameters.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

IMG = Path(__file__).resolve().parents[1] / "img"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


# ---------------------------------------------------------------------------------------------
# 1. Quantitative HAADF-STEM tomography
# ---------------------------------------------------------------------------------------------

HAADF_SPEC = "core-shell:sphere,ratio=0.6,interface=4,rotation=none,position=centre,size=0.8"


def haadf_tutorial(n: int = 64, *, dose: float = 1e4, iterations: int = 100, seed: int = 1) -> dict:
    """Simulate an Au@Ag sphere, its HAADF series, reconstruct with SIRT and unmix Au/Ag.

    Returns the truth, the reconstruction, the unmixed fractions, the calibration and the errors.
    """
    from chemtomo.quantify import alloying_index, calibrate, haadf_quant, particle_mask
    from chemtomo.recon import reconstruct_series
    from chemtomo.simulate import phantom_from_spec, simulate_series

    # 1. the particle: Au core, Ag shell, 4-voxel graded interface; concentrations 0..1
    truth = phantom_from_spec(HAADF_SPEC, ["Au", "Ag"], (n, n, n), seed=seed)
    # 2. HAADF tilt series: -70..70 deg every 2 deg, Poisson counting noise
    angles = np.arange(-70, 71, 2)
    series = simulate_series(truth, angles, signals=("HAADF",), dose=dose, voxel_size=0.5, rng=seed)
    # 3. reconstruct: SIRT with non-negativity
    recon = reconstruct_series(series, "sirt", iterations=iterations)
    volume = recon["HAADF"]
    # 4. mask, calibration of pure Au and pure Ag on the histogram, linear unmixing
    mask = particle_mask(volume)
    i_au, i_ag = calibrate(volume, mask)
    conc = haadf_quant(volume, ("Au", "Ag"), mask=mask)

    # errors against the ground truth
    total = truth["Au"] + truth["Ag"]
    inside = total > 0.5  # voxels at least half full in the truth
    frac_true = np.where(total > 0, truth["Au"] / np.maximum(total, 1e-9), 0.0)
    both = inside & mask
    err = conc["Au"][both] - frac_true[both]
    core = inside & (frac_true > 0.99)
    shell = inside & (frac_true < 0.01)
    mixed = inside & ~core & ~shell
    # expected pure intensities: HAADF per voxel of pure element, in the reconstruction's units
    from chemtomo.physics.scattering import SCATTERING_CONSTANT
    from chemtomo.physics.elements import atomic_number, number_density

    def pure(el):  # detected electrons per pixel per voxel length of pure element, at the dose per tilt
        return (dose / len(angles)) * (10 * 0.5) ** 2 * SCATTERING_CONSTANT * atomic_number(el) ** 1.7 \
            * 0.5 * number_density(el) / 100.0

    dice = 2 * np.sum(mask & inside) / (mask.sum() + inside.sum())
    out = {
        "truth": truth, "frac_true": frac_true, "volume": volume, "mask": mask, "conc": conc,
        "angles": angles, "series": series,
        "I_Au": i_au, "I_Ag": i_ag, "I_Au_expected": pure("Au"), "I_Ag_expected": pure("Ag"),
        "dice": float(dice),
        "mae": float(np.abs(err).mean()), "bias": float(err.mean()),
        "mae_core": float(np.abs(conc["Au"][core & mask] - 1).mean()),
        "mae_shell": float(np.abs(conc["Au"][shell & mask]).mean()),
        "mae_mixed": float(np.abs(conc["Au"][mixed & mask] - frac_true[mixed & mask]).mean()),
        "au_fraction_true": float(truth["Au"].sum() / total.sum()),
        "au_fraction_measured": float(conc["Au"][mask].sum() / mask.sum()),
        "alloying_true": alloying_index(frac_true, inside),
        "alloying_measured": alloying_index(conc["Au"], mask),
        "dose_per_tilt": dose / len(angles),
    }
    return out


def haadf_dose_sweep(n: int = 64, doses=(1e2, 1e3, 1e4, 1e5)) -> list:
    """Mean |error| of the unmixed Au fraction and of the particle's Au fraction at each total dose."""
    rows = []
    for d in doses:
        r = haadf_tutorial(n, dose=d)
        rows.append({"dose": d, "mae": r["mae"], "au_fraction": r["au_fraction_measured"],
                     "au_fraction_true": r["au_fraction_true"], "I_Au": r["I_Au"], "I_Ag": r["I_Ag"],
                     "I_Au_expected": r["I_Au_expected"], "I_Ag_expected": r["I_Ag_expected"]})
    return rows


def draw_haadf(r: dict, sweep=None, path=IMG / "tutorial_haadf.png"):
    import matplotlib.pyplot as plt

    from chemtomo.report.figures import save_figure

    n = r["volume"].shape[0]
    k = n // 2
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    ax = axes.ravel()
    ax[0].imshow(r["series"]["HAADF"].data[len(r["angles"]) // 2], cmap="gray")
    ax[0].set_title(f"HAADF projection at 0 deg ({r['dose_per_tilt']:.0f} e/A^2 of {len(r['angles'])} tilts)",
                    fontsize=9)
    ax[1].imshow(r["volume"][k], cmap="gray")
    ax[1].set_title(f"SIRT reconstruction, slice y = {k} (x across, z down)", fontsize=9)
    im = ax[2].imshow(np.where(r["mask"][k], r["conc"]["Au"][k], np.nan), cmap="viridis", vmin=0, vmax=1)
    ax[2].set_title("unmixed Au fraction (haadf_quant)", fontsize=9)
    fig.colorbar(im, ax=ax[2], fraction=0.046)
    inside = (r["truth"]["Au"] + r["truth"]["Ag"]) > 0.5
    diff = np.where(r["mask"][k] & inside[k], r["conc"]["Au"][k] - r["frac_true"][k], np.nan)
    im = ax[3].imshow(diff, cmap="RdBu_r", vmin=-0.3, vmax=0.3)
    ax[3].set_title(f"Au fraction minus truth (mean |error| {r['mae']:.3f} in 3D)", fontsize=9)
    fig.colorbar(im, ax=ax[3], fraction=0.046)
    for a in ax[:4]:
        a.set(xticks=[], yticks=[])
    vals = r["volume"][r["mask"]]
    ax[4].hist(vals, bins=80, color="0.6", density=True)
    for m, c, el in zip((r["I_Au"], r["I_Ag"]), ("tab:orange", "tab:blue"), ("Au", "Ag")):
        ax[4].axvline(m, color=c, lw=1.5, label=f"I_{el} fitted {m:.3g}")
    ax[4].axvline(r["I_Au_expected"], color="tab:orange", ls="--", lw=1, label=f"I_Au expected {r['I_Au_expected']:.3g}")
    ax[4].axvline(r["I_Ag_expected"], color="tab:blue", ls="--", lw=1, label=f"I_Ag expected {r['I_Ag_expected']:.3g}")
    ax[4].set(xlabel="reconstructed HAADF intensity (e per pixel per voxel length)", ylabel="density")
    ax[4].set_title("intensities inside the mask: two peaks and the mixed band", fontsize=9)
    ax[4].legend(fontsize=7)
    if sweep:
        d = [s["dose"] for s in sweep]
        ax[5].semilogx(d, [s["mae"] for s in sweep], "o-", label="mean |error| of the Au fraction per voxel")
        ax[5].semilogx(d, [abs(s["au_fraction"] - s["au_fraction_true"]) for s in sweep], "s-",
                       label="|error| of the particle's Au fraction")
        ax[5].set(xlabel="total dose of the series (e/A^2)", ylabel="error (fraction)", ylim=(0, None))
        ax[5].set_title("dose: error against ground truth", fontsize=9)
        ax[5].legend(fontsize=7)
    else:
        ax[5].axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# 2. Multimodal reconstruction
# ---------------------------------------------------------------------------------------------

MULTI_SPEC = "core-shell:sphere,ratio=0.6,rotation=none,position=centre,size=0.7"
SEPARATE = ("sirt", "mlem", "tv")
# tv: the fixed weight the tutorial's table was made with (its default chooses the weight by count splitting);
# fused: its default, the TV weight by count splitting
OPTIONS = {"tv": {"weight": 1.0}}
JOINT = ("bimodal", "tnv", "tgv", "dtv", "fused")


def tuned_filtered_sirt(op, counts, scale, truth, iterations=200, sigmas=(0.5, 1.0, 1.5, 2.0, 3.0)):
    """SIRT of `counts` then a 3D Gaussian filter, iterations and width chosen on the truth: the best it can do."""
    from chemtomo.recon import sirt
    from chemtomo.testing import oracle_filtered

    return oracle_filtered(sirt, op, np.asarray(counts, np.float32), truth, iterations, scale=scale,
                           sigmas=sigmas)[3]


def multimodal_tutorial(n: int = 48, *, dose: float = 1e6, methods=SEPARATE + JOINT, seed: int = 1) -> dict:
    """HAADF + EDX (15 tilts, co-acquired) of an Au@Ag sphere; separate and joint reconstructions."""
    from chemtomo.core.data import TiltSeries
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.core.projector import Projector
    from chemtomo.recon import reconstruct_series
    from chemtomo.simulate import edx_expected, phantom_from_spec, simulate_series
    from chemtomo.testing import nrmse

    truth = phantom_from_spec(MULTI_SPEC, ["Au", "Ag"], (n, n, n), seed=seed)
    angles = np.arange(-70, 71, 10)  # 15 tilts, HAADF and EDX recorded in the same scan
    series = simulate_series(truth, angles, signals=("HAADF", "EDX"), dose=dose, voxel_size=0.5, rng=seed)

    # counts per voxel length of pure element (to turn counts volumes into concentrations)
    op = Projector(TiltGeometry(angles, (n, n, n)))
    expected = edx_expected(truth, op.geometry, None, voxel_size=0.5, dose=dose / len(angles))
    scale = {el: float(expected[f"{el}_La"].sum() / op(truth[el]).sum()) for el in ("Au", "Ag")}

    edx = TiltSeries({k: series[k] for k in ("Au", "Ag")}, pixel_size=series.pixel_size, dose=series.dose)
    results, seconds = {}, {}
    for m in methods:
        t = time.perf_counter()
        if m in SEPARATE:
            vs = reconstruct_series(edx, m, stop="discrepancy" if m == "mlem" else None, options=OPTIONS.get(m))
        else:
            vs = reconstruct_series(series, m, options=OPTIONS.get(m))
        seconds[m] = time.perf_counter() - t
        results[m] = {el: np.asarray(vs[el]) / scale[el] for el in ("Au", "Ag")}
        results[m]["provenance"] = vs.provenance
    # the strong separate baseline: SIRT + a 3D Gaussian filter, iterations and width tuned on the truth (an oracle)
    t = time.perf_counter()
    results["sirt+filter (tuned)"] = {el: tuned_filtered_sirt(op, series[el].data, scale[el], truth[el])
                                      for el in ("Au", "Ag")}
    results["sirt+filter (tuned)"]["provenance"] = {"info": {"tuned": "on the ground truth (oracle)"}}
    seconds["sirt+filter (tuned)"] = time.perf_counter() - t
    results = {"sirt+filter (tuned)": results.pop("sirt+filter (tuned)"), **results}
    errors = {m: {el: nrmse(results[m][el], truth[el]) for el in ("Au", "Ag")} for m in results}
    footprint = op(truth["Au"] + truth["Ag"]) > 0.5  # pixels that see the particle
    counts = {el: {"mean per pixel": float(series[el].data.mean()),
                   "mean on the particle": float(series[el].data[footprint].mean()),
                   "total": float(series[el].data.sum())} for el in ("Au", "Ag")}
    return {"truth": truth, "series": series, "results": results, "errors": errors, "seconds": seconds,
            "scale": scale, "counts": counts, "angles": angles, "dose": dose}


def draw_multimodal(r: dict, path=IMG / "tutorial_multimodal.png"):
    import matplotlib.pyplot as plt

    from chemtomo.report.figures import save_figure

    methods = list(r["results"])
    n = r["truth"]["Au"].shape[0]
    k = n // 2
    cols = ["truth"] + methods
    fig, ax = plt.subplots(2, len(cols), figsize=(2.0 * len(cols), 5.0))
    for j, name in enumerate(cols):
        for i, el in enumerate(("Au", "Ag")):
            img = r["truth"][el][k] if name == "truth" else r["results"][name][el][k]
            ax[i, j].imshow(img, cmap="inferno", vmin=0, vmax=1.2)
            ax[i, j].set(xticks=[], yticks=[])
            ax[i, j].set_xlabel(f"{el}" if name == "truth" else f"{el} NRMSE {r['errors'][name][el]:.2f}", fontsize=8)
        ax[0, j].set_title(name + (" (separate)" if name in SEPARATE else " (joint)" if name in JOINT else ""),
                           fontsize=8)
    fig.suptitle(f"Au@Ag sphere, 15 tilts, {r['dose']:.0e} e/A^2: central x-z slice (z vertical) of each element "
                 "(concentration 0-1.2), NRMSE vs truth", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# 3. The spectral domain
# ---------------------------------------------------------------------------------------------

SPECTRAL_SPEC = "core-shell:sphere,ratio=0.6,rotation=none,position=centre,size=0.8,core=random"
LINES = ["Pt_La", "Fe_Ka"]


def spectral_tutorial(n: int = 48, *, dose: float = 1e6, doses=(1e5, 1e6, 1e7, 1e8), solid_angles=(0.7, 4.5),
                      seed: int = 1, real: bool = True) -> dict:
    """EDX spectrum image of a Pt@Fe sphere at 0 deg; window and fit maps against the truth."""
    from chemtomo.core.geometry import TiltGeometry
    from chemtomo.physics.xray import EDXDetector, energy_axis
    from chemtomo.simulate import edx_expected, expected_spectra, phantom_from_spec, spectrum_image
    from chemtomo.simulate.haadf import areal_density
    from chemtomo.spectral import cliff_lorimer, fit_maps, window_maps
    from chemtomo.testing import nrmse

    truth = phantom_from_spec(SPECTRAL_SPEC, ["Pt", "Fe"], (n, n, n), seed=seed)
    geom = TiltGeometry([0.0], (n, n, n))
    areal = {el: a[0] for el, a in areal_density(truth, geom, voxel_size=0.5).items()}  # atoms/A^2, (ny, nu)
    energy = energy_axis(2048, 0.01)  # 0-20.47 keV, 10 eV channels

    def run(d, omega, rng):
        det = EDXDetector(solid_angle=omega)
        si = spectrum_image(areal, energy, dose=d, pixel_size=0.5, detector=det, rng=rng)
        exact = {k: v[0] for k, v in edx_expected(truth, geom, LINES, voxel_size=0.5, dose=d, detector=det).items()}
        win = window_maps(si, energy, LINES)
        fit = fit_maps(si, energy, LINES)
        return si, exact, win, fit

    si, exact, win, fit = run(dose, 0.7, seed)
    particle = sum(areal.values()) > 0
    err = {"window": {l: nrmse(win[l], exact[l]) for l in LINES}, "fit": {l: nrmse(fit[l], exact[l]) for l in LINES}}
    # share of the line family's counts that each method recovers over the particle (1 = unbiased)
    recovered = {m: {l: float(maps[l][particle].sum() / exact[l][particle].sum()) for l in LINES}
                 for m, maps in (("window", win), ("fit", fit))}
    # the same extraction on the noise-free spectra: what each method does without counting noise
    lam = expected_spectra(areal, energy, dose=dose, pixel_size=0.5, detector=EDXDetector(solid_angle=0.7))
    noise_free = {m: {l: {"nrmse": nrmse(maps[l], exact[l]),
                          "recovered": float(maps[l][particle].sum() / exact[l][particle].sum())} for l in LINES}
                  for m, maps in (("window", window_maps(lam, energy, LINES)), ("fit", fit_maps(lam, energy, LINES)))}
    # Cliff-Lorimer with theory k-factors, summed over the particle, against the true atomic fraction
    tot = {l: float(fit[l][particle].sum()) for l in LINES}
    cl = cliff_lorimer(tot)
    atoms = {el: float(areal[el].sum()) for el in ("Pt", "Fe")}
    pt_true = atoms["Pt"] / (atoms["Pt"] + atoms["Fe"])
    # dose budget: map error against dose and solid angle
    sweep = []
    for omega in solid_angles:
        for d in doses:
            _, ex, w, f = run(d, omega, seed + 1)
            sweep.append({"solid_angle": omega, "dose": d,
                          "counts_Pt": float(ex["Pt_La"][particle].mean()),
                          "counts_Fe": float(ex["Fe_Ka"][particle].mean()),
                          **{f"window_{l}": nrmse(w[l], ex[l]) for l in LINES},
                          **{f"fit_{l}": nrmse(f[l], ex[l]) for l in LINES}})
    out = {"truth": truth, "areal": areal, "energy": energy, "si": si, "exact": exact, "window": win, "fit": fit,
           "errors": err, "recovered": recovered, "noise_free": noise_free, "cliff_lorimer": cl,
           "pt_fraction_true": pt_true, "particle": particle, "sweep": sweep, "dose": dose,
           "counts_per_pixel": float(si.sum(axis=-1)[particle].mean())}
    if real and (DATA / "edx-si-FePt" / "core_shell.hdf5").is_file():
        out["real"] = spectral_real(DATA / "edx-si-FePt" / "core_shell.hdf5")
    return out


def spectral_real(path) -> dict:
    """Window and fit maps of the NIST FePt core-shell spectrum image (read through chemtomo.io)."""
    from chemtomo.io.instrument import read_spectrum_image
    from chemtomo.spectral import cliff_lorimer, fit_maps, window_maps

    s = read_spectrum_image(path)
    si, energy = s["spectrum_image"], s["energy"]
    win = window_maps(si, energy, LINES)
    fit = fit_maps(si, energy, LINES)
    cl = cliff_lorimer({l: float(fit[l].sum()) for l in LINES})
    return {"si": si, "cliff_lorimer": cl, "energy": energy, "window": win, "fit": fit, "pixel_size": s["pixel_size"],
            "beam_energy": s["beam_energy"], "shape": si.shape,
            "total_counts": float(si.sum()), "counts_per_pixel": float(si.sum(axis=-1).mean())}


def draw_spectral(r: dict, path=IMG / "tutorial_spectral.png"):
    import matplotlib.pyplot as plt

    from chemtomo.report.figures import save_figure

    real = "real" in r
    fig, ax = plt.subplots(2, 5, figsize=(17, 6.6))
    part = r["particle"]
    spec = r["si"][part].mean(axis=0)
    a = ax[0, 0]
    a.semilogy(r["energy"], np.maximum(spec, 1e-4), "k", lw=0.7)
    a.set(xlim=(0, 20), xlabel="energy (keV)", ylabel="counts / channel / pixel")
    a.set_title(f"simulated spectrum, mean over the particle\n({r['counts_per_pixel']:.0f} counts per pixel)",
                fontsize=9)
    for j, l in enumerate(LINES):
        vmax = r["exact"][l].max()
        for i, (name, img) in enumerate((("truth (expected)", r["exact"][l]), ("window", r["window"][l]),
                                          ("fit", r["fit"][l]))):
            b = ax[j, 1 + i]
            b.imshow(img, cmap="inferno", vmin=0, vmax=vmax)
            b.set(xticks=[], yticks=[])
            t = f"{l} {name}"
            if name != "truth (expected)":
                t += f": NRMSE {r['errors'][name.split()[0]][l]:.3f}"
            b.set_title(t, fontsize=9)
    b = ax[1, 0]
    for omega, mk in zip(sorted({s["solid_angle"] for s in r["sweep"]}), ("o", "s")):
        rows = [s for s in r["sweep"] if s["solid_angle"] == omega]
        for meth, ls in (("window", "--"), ("fit", "-")):
            for l, c in zip(LINES, ("tab:orange", "tab:red")):
                b.loglog([s["dose"] for s in rows], [s[f"{meth}_{l}"] for s in rows], ls, marker=mk, color=c,
                         label=f"{l} {meth}, {omega} sr", ms=4, lw=1)
    b.set(xlabel="dose (e/A^2)", ylabel="map NRMSE vs expected")
    b.set_title("dose budget: error vs dose and solid angle", fontsize=9)
    b.legend(fontsize=6)
    if real:
        rr = r["real"]
        for j, l in enumerate(LINES):
            b = ax[j, 4]
            b.imshow(rr["fit"][l], cmap="inferno")
            b.set(xticks=[], yticks=[])
            b.set_title(f"NIST FePt core_shell.hdf5: {l} fit", fontsize=9)
    else:
        for j in range(2):
            ax[j, 4].axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="haadf,multimodal,spectral")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import torch

    torch.set_num_threads(1)
    for name in args.only.split(","):
        t = time.perf_counter()
        if name == "haadf":
            r = haadf_tutorial()
            sweep = haadf_dose_sweep()
            print(draw_haadf(r, sweep))
            for row in sweep:
                print("  sweep:", {k: round(v, 4) for k, v in row.items()})
            for k in ("I_Au", "I_Ag", "I_Au_expected", "I_Ag_expected", "dice", "mae", "bias", "mae_core",
                      "mae_shell", "mae_mixed", "au_fraction_true", "au_fraction_measured", "alloying_true",
                      "alloying_measured", "dose_per_tilt"):
                print(f"  {k}: {r[k]:.4g}")
        elif name == "multimodal":
            r = multimodal_tutorial()
            print(draw_multimodal(r))
            print("  counts per pixel and tilt:", r["counts"])
            print("  scale (counts per voxel of pure element):", r["scale"])
            print("  | method | Au | Ag | s |")
            for m, e in r["errors"].items():
                info = r["results"][m]["provenance"]
                extra = info.get("info", {}) if "info" in info else {
                    s: v.get("iterations") for s, v in info.get("signals", {}).items()}
                print(f"  | {m} | {e['Au']:.3f} | {e['Ag']:.3f} | {r['seconds'][m]:.1f} | {extra}")
        elif name == "spectral":
            r = spectral_tutorial()
            print(draw_spectral(r))
            print("  counts per pixel on the particle:", r["counts_per_pixel"])
            print("  errors:", r["errors"])
            print("  recovered share of the line counts:", r["recovered"])
            print("  noise-free spectra:", r["noise_free"])
            print("  Cliff-Lorimer:", r["cliff_lorimer"], "true Pt fraction", r["pt_fraction_true"])
            for s in r["sweep"]:
                print("  ", s)
            if "real" in r:
                rr = r["real"]
                print("  real:", rr["shape"], rr["pixel_size"], rr["beam_energy"], rr["counts_per_pixel"], rr["cliff_lorimer"],
                      {l: float(rr["fit"][l].sum()) for l in LINES}, {l: float(rr["window"][l].sum()) for l in LINES})
        else:
            raise SystemExit(f"unknown tutorial {name!r}; choose from haadf, multimodal, spectral")
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
