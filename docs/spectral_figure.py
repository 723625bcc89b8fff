"""Learned spectral extraction on real data: the figure and correlation table of docs/spectral.md (issue 10).

Run ``python docs/spectral_figure.py`` (about a minute on two cores; needs ``../shared/data``) to write
``docs/img/spectral_real.png`` and print the tables.

* NIST FePt core-shell spectrum image (``edx-si-FePt/core_shell.hdf5``, 64 x 64 px, 216 counts/px):
  Fe Ka and Pt La by the per-pixel NNLS fit (``fit_maps``) and by ``learned`` on all counts and on
  binomially thinned copies (10 % and 2 % of the counts, :func:`chemtomo.simulate.noise.split_counts`),
  with the learned standard deviation.
* L2083 EDX tilt series (``edx-tilt-L2083``, 16 Bruker files, binned 2 x 2 to 128 x 128 px): eight
  lines by ``fit`` and ``learned``, every tilt on its own.

Agreement (no invented structure): Pearson correlation of a method's map with the full-count
``fit`` map after summing ``BIN`` x ``BIN`` pixels (FePt) or all 16 tilts and 4 x 4 pixels (L2083).
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
from chemtomo.simulate.noise import split_counts  # noqa: E402
from chemtomo.spectral import fit_maps, window_maps  # noqa: E402
from chemtomo.spectral.learned import learned_maps  # noqa: E402
from chemtomo.spectral.series import maps_series  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FEPT_LINES = ["Fe_Ka", "Pt_La"]
L2083_LINES = ["O_Ka", "Mg_Ka", "Si_Ka", "S_Ka", "Fe_Ka", "Ni_Ka", "Pt_Ma", "Ga_Ka"]
FRACTIONS = (1.0, 0.1, 0.02)
BIN = 4


def binned(img, b):
    ny, nx = (np.array(img.shape[-2:]) // b) * b
    x = np.asarray(img)[..., :ny, :nx]
    return x.reshape(x.shape[:-2] + (ny // b, b, nx // b, b)).sum(axis=(-3, -1))


def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def fept():
    d = read_spectrum_image(DATA / "edx-si-FePt" / "core_shell.hdf5")
    si, e = np.asarray(d["spectrum_image"]).astype(np.int64), d["energy"]
    ref = fit_maps(si, e, FEPT_LINES)
    rows, panels = [], {}
    for p in FRACTIONS:
        part = si if p == 1 else split_counts(si, p, rng=np.random.default_rng(7))[0]
        got = {"window": window_maps(part, e, FEPT_LINES), "fit": fit_maps(part, e, FEPT_LINES)}
        got["learned"], std = learned_maps(part, e, FEPT_LINES, return_std=True)
        for m, maps in got.items():
            for line in FEPT_LINES:
                rows.append((f"{p:g}", m, line, float(maps[line].sum() / p),
                             corr(binned(maps[line], BIN), binned(ref[line], BIN)), corr(maps[line], ref[line])))
        panels[p] = (got, std)
    return ref, rows, panels


def l2083():
    files = sorted((DATA / "edx-tilt-L2083").glob("*.bcf"))
    fit = maps_series(files, L2083_LINES, method="fit", angles="names", downsample=2)
    learned, std = maps_series(files, L2083_LINES, method="learned", angles="names", downsample=2, return_std=True)
    rows = []
    for line in L2083_LINES:
        a, b = fit[line].data, learned[line].data
        rows.append((line, float(a.sum()), float(b.sum()), corr(binned(a.sum(0), BIN), binned(b.sum(0), BIN)),
                     corr(binned(a, BIN), binned(b, BIN))))
    return fit, learned, std, rows


def main():
    if not DATA.is_dir():
        sys.exit(f"{DATA} not found: this figure needs the shared real data")
    ref, rows, panels = fept()
    print(f"FePt core-shell: correlation with the full-count fit map ({BIN}x{BIN}-pixel sums / single pixels)\n")
    print("| counts kept | method | line | counts (scaled to all) | r binned | r per pixel |\n|---|---|---|---|---|---|")
    for p, m, line, total, rb, rp in rows:
        print(f"| {p} | {m} | {line} | {total:.0f} | {rb:.3f} | {rp:.3f} |")
    fit, learned, std, lrows = l2083()
    print("\nL2083: fit vs learned, all counts (sum of the 16 tilts, 4x4 px / each tilt, 4x4 px)\n")
    print("| line | fit counts | learned counts | r (tilt sum, binned) | r (per tilt, binned) |\n|---|---|---|---|---|")
    for line, a, b, r1, r2 in lrows:
        print(f"| {line} | {a:.3g} | {b:.3g} | {r1:.3f} | {r2:.3f} |")

    fig, ax = plt.subplots(3, 6, figsize=(15, 7.8))
    for r, line in enumerate(FEPT_LINES):
        imgs = [("fit, all counts", ref[line]), ("learned, all", panels[1.0][0]["learned"][line]),
                ("fit, 2 % of counts", panels[0.02][0]["fit"][line]),
                ("learned, 2 %", panels[0.02][0]["learned"][line]), ("learned sd, 2 %", panels[0.02][1][line]),
                ("window, 2 %", panels[0.02][0]["window"][line])]
        for c, (title, img) in enumerate(imgs):
            ax[r, c].imshow(img, cmap="magma" if "sd" not in title else "viridis")
            ax[r, c].set_title(f"FePt {line}: {title}", fontsize=8)
    zero = int(np.argmin(np.abs(fit["O_Ka"].angles)))
    for c, line in enumerate(["O_Ka", "Si_Ka", "Fe_Ka"]):
        ax[2, 2 * c].imshow(fit[line].data[zero], cmap="magma")
        ax[2, 2 * c].set_title(f"L2083 {line} 0 deg: fit", fontsize=8)
        ax[2, 2 * c + 1].imshow(learned[line].data[zero], cmap="magma")
        ax[2, 2 * c + 1].set_title(f"L2083 {line} 0 deg: learned", fontsize=8)
    for a in ax.ravel():
        a.axis("off")
    fig.tight_layout()
    out = save_figure(fig, Path(__file__).with_name("img") / "spectral_real.png", dpi=110)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
