"""Draw the phantom gallery: every shape family and every composition kind.

Run ``python docs/gallery.py`` to write ``docs/img/phantom_gallery.png``.
Rows 1-2: projection along z of each family (one element, random
orientation). Row 3: central y-slice of each composition (Au yellow, Ag blue;
the field of several particles is a maximum projection).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chemtomo.simulate.phantoms import phantom_from_spec  # noqa: E402
from chemtomo.simulate.sdf import FAMILIES  # noqa: E402

N = 96
COMPOSITIONS = [
    ("single:icosahedron", ["Au"], "single"),
    ("alloy:sphere,fractions=0.6/0.4,position=centre", ["Au", "Ag"], "alloy 60/40"),
    ("gradient:cube,gradient=1/0,rotation=none,rounding=0.1,position=centre", ["Au", "Ag"], "radial gradient"),
    ("core-shell:cube,core=octahedron,ratio=0.7,interface=0,rotation=none,position=centre", ["Au", "Ag"], "core-shell, sharp"),
    ("core-shell:sphere,core=sphere,ratio=0.6,interface=6,mode=blur,position=centre", ["Au", "Ag"], "diffuse (blur)"),
    ("core-shell:rod,core=sphere,aspect=2.5,ratio=0.6,offset=0.4,interface=0,rotation=none,position=centre",
     ["Au", "Ag"], "off-centre core"),
    ("multi-shell:sphere,core=sphere/sphere,ratio=0.4/0.7,interface=0,position=centre", ["Au", "Ag", "Au"], "Au@Ag@Au"),
    ("core-shell:random,n=4", ["Au", "Ag"], "field of 4"),
]
COLOURS = {"Au": (1.0, 0.75, 0.1), "Ag": (0.3, 0.6, 1.0)}


def rgb(volumes, index):
    img = np.zeros(volumes[next(iter(volumes))][index].shape + (3,))
    for e, v in volumes.items():
        img += v[index][..., None] * np.array(COLOURS[e])
    return np.clip(img, 0, 1)


def main(path=Path(__file__).parent / "img" / "phantom_gallery.png"):
    cols = 8
    rows = -(-len(FAMILIES) // cols) + -(-len(COMPOSITIONS) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8))
    for ax in axes.ravel():
        ax.axis("off")
    for k, family in enumerate(FAMILIES):
        vol = phantom_from_spec(f"{family},position=centre", ["Au"], (N, N, N), seed=k + 3)["Au"]
        ax = axes.ravel()[k]
        ax.imshow(vol.sum(axis=1), cmap="gray")  # projection along z (beam at 0 degrees)
        ax.set_title(family.replace("truncated-", "trunc. "), fontsize=8)
    start = -(-len(FAMILIES) // cols) * cols
    for k, (text, elements, title) in enumerate(COMPOSITIONS):
        vols = phantom_from_spec(text, elements, (N, N, N), seed=k)
        ax = axes.ravel()[start + k]
        if text.endswith(",n=4"):  # a field: maximum projection along y
            ax.imshow(rgb({e: v.max(axis=0, keepdims=True) for e, v in vols.items()}, 0))
        else:
            ax.imshow(rgb(vols, np.s_[N // 2]))
        ax.set_title(title, fontsize=8)
    fig.suptitle("rows 1-2: shape families (projection along z); row 3: compositions "
                 "(central y-slice, Au yellow, Ag blue, both white)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")


if __name__ == "__main__":
    main()
