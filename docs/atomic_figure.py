"""Draw the atom-tracing and atom-counting figure of docs/atomic.md.

Run ``python docs/atomic_figure.py`` to write ``docs/img/atomic.png`` (about a
minute on two cores). Left: a 3 A thick slab of an MLEM reconstruction of a
simulated L1_0 FePt particle (about 1,000 atoms, 41 tilts over +-70 degrees),
true atoms as circles and traced atoms (refined against the tilt series) as
crosses, coloured by their assigned species. Middle: a simulated HAADF image
of Au columns at 5e4 e/A^2. Right: histogram of the fitted cross-sections
with the ICL-selected mixture and the counts it assigns.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chemtomo.atomic import (atomic_tilt_series, atoms_from_volume, column_cross_sections, count_atoms,  # noqa: E402
                             fit_columns, l10_particle, place, radius_for, score_atoms, simulate_columns)
from chemtomo.core.geometry import TiltGeometry  # noqa: E402
from chemtomo.core.projector import Projector  # noqa: E402
from chemtomo.recon import mlem  # noqa: E402
from chemtomo.report.figures import save_figure  # noqa: E402

V = 0.5


def main(out=Path(__file__).parent / "img" / "atomic.png"):
    shape = (88, 88, 88)
    truth = place(l10_particle(radius_for(1000, 3.85), rng=11), shape, V)
    geom = TiltGeometry(angles=np.linspace(-70, 70, 41), volume_shape=shape)
    series = atomic_tilt_series(truth, geom, V, dose=1e5, rng=12)
    recon = mlem(Projector(geom), series.astype(np.float32), 600)
    found, _ = atoms_from_volume(recon, V, ["Fe", "Pt"], series=series, angles=geom.angles)
    score = score_atoms(found, truth, max_distance=1.0, voxel_size=V)

    fig, ax = plt.subplots(1, 3, figsize=(14, 4.6))
    y0 = truth.positions[:, 1].mean()
    k = int(round(y0 / V))
    ax[0].imshow(recon[k - 3:k + 4].sum(axis=0), cmap="gray", origin="lower",
                 extent=[-V / 2, (shape[2] - 0.5) * V, -V / 2, (shape[1] - 0.5) * V])
    colours = {"Fe": "tab:orange", "Pt": "tab:cyan"}
    for atoms, marker, size in ((truth, "o", 40), (found, "x", 25)):
        near = np.abs(atoms.positions[:, 1] - k * V) < 1.5
        for sp, c in colours.items():
            sel = near & (atoms.species == sp)
            ax[0].scatter(atoms.positions[sel, 0], atoms.positions[sel, 2], s=size, marker=marker,
                          facecolors="none" if marker == "o" else c, edgecolors=c if marker == "o" else None,
                          linewidths=1, label=f"{sp} {'true' if marker == 'o' else 'traced'}")
    ax[0].set(xlabel="x (A)", ylabel="z (A)",
              title=f"FePt, 41 tilts: recall {score['recall']:.3f}, RMSD {score['rmsd_voxels']:.2f} voxel, "
                    f"species {score['species_accuracy']:.3f}")
    ax[0].title.set_fontsize(9)
    ax[0].legend(fontsize=7, loc="upper right")

    yy, xx = np.mgrid[:16, :16] - 7.5
    counts = np.clip(np.rint(2 * np.sqrt(np.maximum(0, 7.8**2 - yy**2 - xx**2)) / 1.5), 0, None).astype(int)
    sim = simulate_columns(counts, dose=5e4, rng=13)
    peaks = fit_columns(sim["image"], pixel_size=sim["pixel_size"])
    scs = column_cross_sections(peaks, dose=5e4)
    n, mix = count_atoms(scs)
    ax[1].imshow(sim["image"], cmap="gray")
    ax[1].scatter(peaks.positions[:, 1], peaks.positions[:, 0], s=6, c=n, cmap="viridis")
    ax[1].set(title="Au columns, 5e4 e/A^2: fitted centres coloured by count", xticks=[], yticks=[])
    ax[1].title.set_fontsize(9)
    ax[2].hist(scs, bins=120, color="0.6")
    grid = np.linspace(scs.min() * 0.9, scs.max() * 1.05, 800)
    dens = sum(w * np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))
               for w, m, s in zip(mix.weights, mix.means, mix.sds))
    ax[2].plot(grid, dens * len(scs) * (scs.max() - scs.min()) / 120, "k", lw=1)
    for m, c in zip(mix.means, np.unique(n)):
        ax[2].text(m, ax[2].get_ylim()[1] * 0.9, str(c), ha="center", fontsize=7)
    from scipy.spatial import cKDTree

    acc = np.mean(n == sim["counts"][cKDTree(sim["positions"]).query(peaks.positions)[1]])
    ax[2].set(xlabel="scattering cross-section (A^2)", ylabel="columns",
              title=f"ICL: {len(mix.means)} components, counts {acc:.3f} correct")
    ax[2].title.set_fontsize(9)
    fig.tight_layout()
    print(save_figure(fig, out), score)


if __name__ == "__main__":
    main()
