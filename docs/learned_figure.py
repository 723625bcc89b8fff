"""Draw the learned-methods figure of docs/denoise.md (the tutorial of the learned family).

Run ``python docs/learned_figure.py`` to write ``docs/img/learned.png`` (about three minutes on
two cores). A held-out simulated Au@Ag core-shell particle (64^3, 13 tilts from -60 to 60
degrees, 1 count/px on the footprint, 2 % background). Row 1: the Ag map at 0 degrees - noiseless,
raw counts, Gaussian (count-splitting width), ``unet``, ``n2n`` (30 s of fine-tuning on the
stack itself). Row 2: the central x-z slice of the Ag volume - truth, raw counts with SIRT and
a 3D Gaussian filter, and SIRT after each denoiser, then with 12 synthesized views added
(``unet`` maps, views at 5-degree steps). SIRT iterations and the filter width are chosen on
the ground truth for every panel (the same oracle for all), so the panels compare the inputs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chemtomo.core.geometry import TiltGeometry  # noqa: E402
from chemtomo.core.projector import Projector  # noqa: E402
from chemtomo.denoise import denoise  # noqa: E402
from chemtomo.recon import sirt  # noqa: E402
from chemtomo.report.figures import save_figure  # noqa: E402
from chemtomo.simulate import phantom_from_spec  # noqa: E402
from chemtomo.testing import oracle_filtered  # noqa: E402
from chemtomo.views import fill_angles, synthesize_views  # noqa: E402

N, RHO, BG = 64, 1.0, 0.02


def best_sirt(angles, data, scale, truth, iterations=150):
    """SIRT volume (concentration) with iterations and a 3D Gaussian width tuned on the truth; and its NRMSE."""
    op = Projector(TiltGeometry(np.asarray(angles, float), (N, N, N)))
    err, _, _, vol = oracle_filtered(sirt, op, np.asarray(data - BG * RHO, np.float32), truth, iterations,
                                     scale=scale)
    return vol, err


def main(out=Path(__file__).parent / "img" / "learned.png"):
    vols = phantom_from_spec("core-shell:cube,core=octahedron,ratio=0.6,interface=2,position=centre", ["Au", "Ag"],
                             (N, N, N), seed=5)
    truth = vols["Ag"]
    angles = np.arange(-60.0, 60.5, 10.0)
    p = np.asarray(Projector(TiltGeometry(angles, (N, N, N)))(truth), np.float64)
    scale = RHO / p[p > 0.01 * p.max()].mean()
    lam = p * scale + BG * RHO
    counts = np.random.default_rng(7).poisson(lam).astype(np.float64)
    maps = {"raw": counts, "gaussian": denoise(counts, "gaussian"), "unet": denoise(counts, "unet"),
            "n2n": denoise(counts, "n2n", minutes=0.5)}
    recs = {name: best_sirt(angles, m, scale, truth) for name, m in maps.items()}
    new = fill_angles(angles, 5.0)
    merged, merged_angles, info = synthesize_views(maps["unet"], angles, new, minutes=1.0)
    recs["unet + views"] = best_sirt(merged_angles, merged, scale, truth)
    k = int(np.argmin(np.abs(angles)))
    fig, ax = plt.subplots(2, 6, figsize=(13, 4.8))
    top = [("noiseless", lam[k])] + [(n, np.asarray(m)[k]) for n, m in maps.items()]
    vmax = float(lam[k].max())
    for a, (name, img) in zip(ax[0], top):
        a.imshow(img, cmap="magma", vmin=0, vmax=vmax)
        a.set_title(f"{name} (0 deg)", fontsize=9)
    ax[0, -1].axis("off")
    bottom = [("truth", truth, None)] + [(n, v, e) for n, (v, e) in recs.items()]
    vmax = float(truth.max())
    for a, (name, v, e) in zip(ax[1], bottom):
        a.imshow(v[N // 2], cmap="viridis", vmin=0, vmax=vmax)
        a.set_title(name + ("" if e is None else f"\nNRMSE {e:.3f}"), fontsize=9)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"Ag map of a core-shell particle at {RHO:g} count/px, 13 tilts: denoising, then SIRT "
                 f"(iterations and filter tuned on the truth); last: + 12 synthesized views "
                 f"({info['holdout']['used']})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out)
    for name, (_, e) in recs.items():
        print(f"{name}: NRMSE {e:.3f}")
    return out


if __name__ == "__main__":
    main()
