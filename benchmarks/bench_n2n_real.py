"""Noise2Noise on real repeated EDX scans (``../shared/data/edx-repeated-scans``, Apache-2.0; issue 6).

The data (Han et al. 2021): 15 repeated fast scans of one field of InP/ZnSe/ZnS
quantum dots, a HAADF image and Se, S and Zn X-ray maps per frame. The maps
are stored as uint8 with one detected X-ray shown as a fixed grey value (220
or 221 for Se, 123/124 for S, 50/51 for Zn; no pixel holds two), so the counts
are ``map > 0``: about 0.003 counts/px per frame, 200 counts per frame and
element over 256 x 256 pixels. The frames drift (up to 17 px): they are
registered on the HAADF frames (:func:`chemtomo.align.frame_shifts`) and the
count maps moved by whole pixels (:func:`chemtomo.align.shift_whole`), as Han
et al. registered theirs; the score ignores a 20 px border.

Protocol: the first ``--train`` frames (7) are the noisy data every method
sees; the mean of the other frames (8) is the reference, itself noisy. Each
method estimates the per-frame expected counts from the training frames alone.
Score: squared error against the reference minus the reference's own noise
(the per-pixel sample variance across the reference frames over their number,
an unbiased estimate), i.e. an unbiased estimate of the squared error against
the unknown expectation; it is reported as a fraction of the raw mean's error
(lower is better; 0 = perfect) and as PSNR against the reference's maximum.

Methods: ``raw`` (the mean of the training frames), ``box11`` (the 11 x 11
moving average of EDX software, Han et al.'s baseline), ``gaussian`` (width
by count splitting), ``bm3d``, ``unet`` (shipped supervised weights),
``n2n`` (the shipped U-Net fine-tuned by binomial splitting of the summed
training frames), ``n2n-frames`` (fine-tuned on pairs of halves of the
training frames), ``n2n-scratch`` (binomial splitting from random weights:
noisy data only) and ``n2n-haadf`` (binomial splitting with the HAADF frames'
mean as a guide channel). Run:
``python benchmarks/bench_n2n_real.py [--data ../shared/data] [--minutes 2]`` (about 15 minutes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from _util import machine, table
from chemtomo.align import frame_shifts, shift_whole
from chemtomo.denoise import denoise
from chemtomo.denoise.n2n import n2n, n2n_frames
from chemtomo.io.matlab import read_mat_stack

ELEMENTS = {"Se": "Sei_img", "S": "Si_img", "Zn": "Zni_img"}
BORDER = 20


def load(data: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """Registered counts ``(15, 256, 256)`` per element (``map > 0``), HAADF frames, and the frame shifts (px)."""
    path = data / "edx-repeated-scans" / "SAIT_024_2_6.mat"
    haadf = read_mat_stack(path, "haadf_stem").astype(np.float64)
    shifts = frame_shifts(haadf)
    counts = {el: shift_whole((read_mat_stack(path, key) > 0).astype(np.float64), -shifts)
              for el, key in ELEMENTS.items()}
    return counts, shift_whole(haadf, -shifts), shifts


def score(estimate: np.ndarray, ref_frames: np.ndarray) -> tuple[float, float]:
    """Unbiased squared error against the expectation (reference noise removed) and PSNR (dB) against the reference."""
    inner = (slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    ref_frames, estimate = ref_frames[inner], estimate[inner[1:]]
    ref = ref_frames.mean(0)
    noise = float(ref_frames.var(0, ddof=1).mean() / ref_frames.shape[0])
    mse = float(np.mean((estimate - ref) ** 2))
    return mse - noise, 10 * np.log10(ref.max() ** 2 / mse)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--train", type=int, default=7, help="frames the methods see (the rest are the reference)")
    ap.add_argument("--minutes", type=float, default=2.0, help="training budget of each n2n run")
    ap.add_argument("--methods", default="raw,box11,gaussian,bm3d,unet,n2n,n2n-frames,n2n-scratch,n2n-haadf")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    counts, haadf, shifts = load(args.data)
    k = args.train
    guide = haadf[:k].mean(0)
    print(f"machine: {machine()}; largest HAADF frame shift {np.abs(shifts).max():.1f} px; "
          f"train frames 0-{k - 1}, reference frames {k}-{haadf.shape[0] - 1}; n2n budget {args.minutes} min")
    rows = []
    for el, c in counts.items():
        train, ref = c[:k], c[k:]
        total = train.sum(0)
        runs = {
            "raw": lambda: total,
            "box11": lambda: uniform_filter(total, 11, mode="reflect"),
            "gaussian": lambda: denoise(total, "gaussian"),
            "bm3d": lambda: denoise(total, "bm3d"),
            "unet": lambda: denoise(total, "unet"),
            "n2n": lambda: n2n(total, minutes=args.minutes),
            "n2n-frames": lambda: n2n_frames(train, minutes=args.minutes)[0] * k,
            "n2n-scratch": lambda: n2n(total, minutes=args.minutes, init="scratch", lr=1e-3),
            "n2n-haadf": lambda: n2n(total, minutes=args.minutes, guide=guide),
            "n2n-frames-haadf": lambda: n2n_frames(train, minutes=args.minutes, guide=guide)[0] * k,
        }
        base = None
        for name in args.methods.split(","):
            t = time.perf_counter()
            est = np.asarray(runs[name](), np.float64) / k
            sec = time.perf_counter() - t
            err, psnr = score(est, ref)
            base = err if name == "raw" else base
            rows.append({"element": el, "counts/px/frame": float(c.mean()), "method": name,
                         "error / raw": err / base if base else float("nan"), "PSNR vs ref (dB)": psnr,
                         "seconds": sec})
            print(rows[-1], flush=True)
    print(table(rows, ["element", "counts/px/frame", "method", "error / raw", "PSNR vs ref (dB)", "seconds"]))


if __name__ == "__main__":
    main()
