"""Learned spectral extraction on real data: the figure and agreement tables of docs/spectral.md (issue 10).

Run ``python docs/spectral_figure.py`` (a few minutes on two cores; needs ``../shared/data``) to write
``docs/img/spectral_real.png`` and print the tables.

The reference for "no invented structure" is the classical fit **at high counts**: the spectra summed
over ``b x b`` pixel blocks, then fitted (:func:`chemtomo.spectral.fit_maps`), against which a method's
map summed over the same blocks is correlated. A per-pixel NNLS fit is not a high-count reference for a
weak line: at a fraction of a count per pixel its non-negativity clips the noise to a positive bias
that follows the local count level (L2083's Ni: 14 x the counts of the unbiased estimate). The noise
ceiling of each reference is the Spearman-Brown correlation ``sqrt(2 r / (1 + r))`` from the
correlation ``r`` of the references of two binomial halves of the counts: no map can agree with the
reference better than the reference agrees with the truth.

* NIST FePt core-shell spectrum image (``edx-si-FePt/core_shell.hdf5``, 64 x 64 px, 216 counts/px):
  Fe Ka and Pt La by window, fit and ``learned`` on all counts and on binomially thinned copies (10 %
  and 2 %, :func:`chemtomo.physics.counts.split_counts`); reference: all counts, 4 x 4 blocks.
* L2083 EDX tilt series (``edx-tilt-L2083``, 16 Bruker files, binned 2 x 2 to 128 x 128 px): eight
  lines by the per-pixel fit and ``learned``, every tilt on its own; reference: 8 x 8 blocks of each
  tilt, compared summed over the tilts and tilt by tilt; also the unbiased whole-spectrum estimate
  (:func:`chemtomo.spectral.line_estimates`, no non-negativity) summed over the same blocks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chemtomo.io.instrument import read_spectrum_image  # noqa: E402
from chemtomo.report.figures import save_figure  # noqa: E402
from chemtomo.physics.counts import split_counts
from chemtomo.spectral import fit_maps, line_estimates, window_maps  # noqa: E402
from chemtomo.spectral.learned import learned_maps  # noqa: E402
from chemtomo.spectral.series import angles_from_names  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FEPT_LINES = ["Fe_Ka", "Pt_La"]
L2083_LINES = ["O_Ka", "Mg_Ka", "Si_Ka", "S_Ka", "Fe_Ka", "Ni_Ka", "Pt_Ma", "Ga_Ka"]
FRACTIONS = (1.0, 0.1, 0.02)
FEPT_BLOCK, L2083_BLOCK = 4, 8


def blocks(x, b):
    """Sum ``b x b`` pixel blocks of maps ``(..., ny, nx)``."""
    x = np.asarray(x)
    ny, nx = (np.array(x.shape[-2:]) // b) * b
    x = x[..., :ny, :nx]
    return x.reshape(x.shape[:-2] + (ny // b, b, nx // b, b)).sum(axis=(-3, -1))


def block_spectra(si, b):
    """Sum ``b x b`` pixel blocks of a spectrum image ``(ny, nx, n_channels)``."""
    return np.moveaxis(blocks(np.moveaxis(np.asarray(si), -1, 0), b), 0, -1)


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def ceiling(ref_a, ref_b):
    """Highest correlation any map can reach with the full-count reference, from its two halves' agreement."""
    r = max(corr(ref_a, ref_b), 0.0)
    return float(np.sqrt(2 * r / (1 + r)))


def reference(si, e, lines, b):
    """High-count classical maps: the fit of the spectra summed over ``b x b`` blocks."""
    return fit_maps(block_spectra(si, b), e, lines)


def fept():
    d = read_spectrum_image(DATA / "edx-si-FePt" / "core_shell.hdf5")
    si, e = np.asarray(d["spectrum_image"]).astype(np.int64), d["energy"]
    ref, full = reference(si, e, FEPT_LINES, FEPT_BLOCK), fit_maps(si, e, FEPT_LINES)
    half = split_counts(si, 0.5, rng=np.random.default_rng(11))
    ref_a, ref_b = (reference(h, e, FEPT_LINES, FEPT_BLOCK) for h in half)
    ceil = {line: ceiling(ref_a[line], ref_b[line]) for line in FEPT_LINES}
    rows, panels = [], {}
    for p in FRACTIONS:
        part = si if p == 1 else split_counts(si, p, rng=np.random.default_rng(7))[0]
        got = {"window": window_maps(part, e, FEPT_LINES), "fit": fit_maps(part, e, FEPT_LINES)}
        got["learned"], std = learned_maps(part, e, FEPT_LINES)
        for m, maps in got.items():
            for line in FEPT_LINES:
                rows.append((f"{p:g}", m, line, float(maps[line].sum() / p),
                             corr(blocks(maps[line], FEPT_BLOCK), ref[line]), corr(maps[line], full[line])))
        panels[p] = (got, std)
    return full, ceil, rows, panels


def l2083():
    files = sorted((DATA / "edx-tilt-L2083").glob("*.bcf"))
    angles = angles_from_names(files)
    order = np.argsort(angles, kind="stable")
    files, angles = [files[i] for i in order], angles[order]
    rng = np.random.default_rng(3)
    keys = ("fit", "learned", "estimate", "ref", "ref_a", "ref_b", "est_a", "est_b")
    out = {k: {line: [] for line in L2083_LINES} for k in keys}
    for path in files:
        d = read_spectrum_image(path, downsample=2)
        si, e = np.asarray(d["spectrum_image"]), np.asarray(d["energy"])
        est = line_estimates(si, e, L2083_LINES)
        got = {"fit": fit_maps(si, e, L2083_LINES), "learned": learned_maps(si, e, L2083_LINES)[0],
               "estimate": dict(zip(est["lines"], est["estimate"])),
               "ref": reference(si, e, L2083_LINES, L2083_BLOCK)}
        a, b = split_counts(si, 0.5, rng=rng)
        got["ref_a"], got["ref_b"] = (reference(h, e, L2083_LINES, L2083_BLOCK) for h in (a, b))
        for key, h in (("est_a", a), ("est_b", b)):
            got[key] = dict(zip(est["lines"], line_estimates(h, e, L2083_LINES)["estimate"]))
        for k in keys:
            for line in L2083_LINES:
                out[k][line].append(got[k][line])
    maps = {k: {line: np.stack(v) for line, v in d.items()} for k, d in out.items()}
    rows = []
    for line in L2083_LINES:
        ref = maps["ref"][line]
        fit_b, learned_b = blocks(maps["fit"][line], L2083_BLOCK), blocks(maps["learned"][line], L2083_BLOCK)
        rows.append({"line": line, "fit counts": maps["fit"][line].sum(), "estimate counts": maps["estimate"][line].sum(),
                     "reference counts": ref.sum(), "learned counts": maps["learned"][line].sum(),
                     "r fit": corr(fit_b.sum(0), ref.sum(0)), "r learned": corr(learned_b.sum(0), ref.sum(0)),
                     "r learned per tilt": corr(learned_b, ref),
                     "ceiling": ceiling(maps["ref_a"][line].sum(0), maps["ref_b"][line].sum(0)),
                     "r learned unbiased": corr(learned_b.sum(0), blocks(maps["estimate"][line], L2083_BLOCK).sum(0)),
                     "ceiling unbiased": ceiling(*(blocks(maps[k][line], L2083_BLOCK).sum(0) for k in ("est_a", "est_b")))})
    return maps, rows, angles


def main():
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this figure needs the shared real data")
    full, ceil, rows, panels = fept()
    print(f"FePt core-shell: correlation with the high-count reference (all counts, {FEPT_BLOCK}x{FEPT_BLOCK}-px "
          f"summed spectra, fit; noise ceiling Fe {ceil['Fe_Ka']:.3f}, Pt {ceil['Pt_La']:.3f}) and, per pixel, "
          "with the full-count per-pixel fit\n")
    print("| counts kept | method | line | counts (scaled to all) | r with reference | r per pixel |\n|---|---|---|---|---|---|")
    for p, m, line, total, rb, rp in rows:
        print(f"| {p} | {m} | {line} | {total:.0f} | {rb:.3f} | {rp:.3f} |")
    maps, lrows, angles = l2083()
    print(f"\nL2083 (16 tilts, each mapped alone): counts, and correlation with the high-count reference "
          f"({L2083_BLOCK}x{L2083_BLOCK}-px summed spectra, fit) summed over the tilts (per tilt for the last r)\n")
    print("| line | per-pixel fit counts | unbiased estimate counts | reference counts | learned counts | "
          "r per-pixel fit | r learned | r learned per tilt | noise ceiling | r learned, unbiased blocks | "
          "noise ceiling |\n|---|---|---|---|---|---|---|---|---|---|---|")
    for r in lrows:
        print(f"| {r['line']} | {r['fit counts']:.3g} | {r['estimate counts']:.3g} | {r['reference counts']:.3g} | "
              f"{r['learned counts']:.3g} | {r['r fit']:.3f} | {r['r learned']:.3f} | {r['r learned per tilt']:.3f} | "
              f"{r['ceiling']:.3f} | {r['r learned unbiased']:.3f} | {r['ceiling unbiased']:.3f} |")

    fig, ax = plt.subplots(4, 6, figsize=(15, 10.4))
    for r, line in enumerate(FEPT_LINES):
        imgs = [("fit, all counts", full[line]), ("learned, all", panels[1.0][0]["learned"][line]),
                ("fit, 2 % of counts", panels[0.02][0]["fit"][line]),
                ("learned, 2 %", panels[0.02][0]["learned"][line]), ("learned sd, 2 %", panels[0.02][1][line]),
                ("window, 2 %", panels[0.02][0]["window"][line])]
        for c, (title, img) in enumerate(imgs):
            ax[r, c].imshow(img, cmap="magma" if "sd" not in title else "viridis")
            ax[r, c].set_title(f"FePt {line}: {title}", fontsize=8)
    zero = int(np.argmin(np.abs(angles)))
    for c, line in enumerate(["O_Ka", "Si_Ka", "Fe_Ka"]):
        ax[2, 2 * c].imshow(maps["fit"][line][zero], cmap="magma")
        ax[2, 2 * c].set_title(f"L2083 {line} 0 deg: fit", fontsize=8)
        ax[2, 2 * c + 1].imshow(maps["learned"][line][zero], cmap="magma")
        ax[2, 2 * c + 1].set_title(f"L2083 {line} 0 deg: learned", fontsize=8)
    for c, line in enumerate(["S_Ka", "Ni_Ka"]):
        for j, (key, title) in enumerate([("fit", "per-pixel fit"), ("ref", f"fit of {L2083_BLOCK}x{L2083_BLOCK}-px sums"),
                                          ("learned", "learned")]):
            ax[3, 3 * c + j].imshow(maps[key][line].sum(0), cmap="magma")
            ax[3, 3 * c + j].set_title(f"L2083 {line}, tilt sum: {title}", fontsize=8)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout()
    out = save_figure(fig, Path(__file__).with_name("img") / "spectral_real.png", dpi=100)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
