"""When does n2n (Noise2Noise on the user's own counts) help? Simulated Poisson count maps (issue 27).

Two scenes, each 15 images, Poisson counts with a mean of rho counts/px on the
footprint (pixels above 1 % of the maximum) plus 2 % of rho background:

* ``particle``: the 15 tilts (-70..70 degrees, 48 x 48 px) of the Ag of a held-out
  random core-shell particle (``random_particle(default_rng([1000, 0]))``), the
  kind of image the shipped U-Net was trained on;
* ``blobs``: 64 x 64 fields of 20 small rounded blobs (radius 3-6 px, like the
  quantum dots of the real repeated scans), unlike its training images.

Rows: ``raw``, ``gaussian`` (width by count splitting), ``unet`` (shipped
weights), ``n2n`` (shipped weights fine-tuned, ``--steps`` steps of 8 tiles of
32 px) and ``n2n-scratch`` (random weights). Score: RMSE against the noiseless
expectation as a fraction of the raw counts' RMSE (lower is better), and n2n's
best step. Run: ``python benchmarks/bench_n2n.py [--steps 400] [--rho 0.3,1,3]``
(about 5 minutes on one thread).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _util import machine, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.denoise import choose_sigma, denoise, gaussian
from chemtomo.denoise.n2n import _train
from chemtomo.simulate import random_particle
from chemtomo.testing import disc_images


def scene(kind: str) -> np.ndarray:
    """Noiseless maps ``(15, ny, nu)`` of the scene, arbitrary scale."""
    if kind == "particle":
        vols, _ = random_particle(np.random.default_rng([1000, 0]), (48, 48, 48), ["Au", "Ag"],
                                  compositions=("core-shell",))
        return np.asarray(Projector(TiltGeometry(np.linspace(-70, 70, 15), (48, 48, 48)))(vols["Ag"]), np.float64)
    return disc_images(15, 64, rng=5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rho", default="0.3,1,3")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    rows = []
    for kind in ("particle", "blobs"):
        p = scene(kind)
        foot = p > 0.01 * p.max()
        for rho in (float(r) for r in args.rho.split(",")):
            lam = p * rho / p[foot].mean() + 0.02 * rho
            y = np.random.default_rng(1).poisson(lam).astype(np.float64)
            raw = float(np.sqrt(np.mean((y - lam) ** 2)))
            score = lambda e: round(float(np.sqrt(np.mean((np.asarray(e, np.float64) - lam) ** 2))) / raw, 3)  # noqa: E731
            row = {"scene": kind, "rho": rho, "gaussian": score(gaussian(y, sigma=choose_sigma(y))),
                   "unet": score(denoise(y, "unet"))}
            for init, name in (("unet", "n2n"), ("scratch", "n2n-scratch")):
                out, info = _train(y[None], None, minutes=None, steps=args.steps, init=init, p=0.5, holdout=0.1,
                                   tile=32, batch=8, lr=3e-4, every=25, seed=0, save=None, device="cpu",
                                   progress=False, label=name)
                row[name] = score(out)
                row[f"{name} best step"] = info["n2n"]["best_step"]
            rows.append(row)
            print(table(rows[-1:], list(row)), flush=True)
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
