"""Cost of one PDHG iteration of the joint methods against its parts (issue 5, "Speed").

Problem: ``--size`` slices of ``--size`` x ``--size`` voxels, 3 elements
(three concentric shells) + HAADF; HAADF 71 tilts, EDX 15 tilts per element,
Poisson counts (about 1 per pixel). The joint problem is assembled exactly
as :func:`chemtomo.recon.multimodal.tnv` / ``tgv`` do (``haadf="mix"``:
3 channels; ``haadf="channel"``: 4 channels).

Columns:

* ``projectors``: one forward and one adjoint projection of every data term
  (HAADF 71 tilts + 3 x EDX 15 tilts), the "two projector applications";
* ``stencil``: the regulariser's finite differences, forward and adjoint
  (gradient; TGV adds the symmetrised gradient and the identity);
* ``iteration``: one full PDHG iteration, the mean of ``--repeats``
  iterations after 5 warm-up ones (the active set of the dual projections
  then is realistic);
* ``prox in it.``: the time of that iteration spent in the regulariser's
  dual projections (l2 balls; spectral-norm balls for TNV);
* the ratios ``iteration / (projectors + stencil)`` (the bar: 1.5) and
  ``(iteration - prox) / (projectors + stencil)``.

With ``--full N`` a complete run of N iterations of TNV (weight given, no
automatic search) is timed as well. Run:
``python benchmarks/bench_pdhg.py --size 256 --full 300``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _util import best_of, machine, peak_rss_gib, table
from chemtomo.core.geometry import TiltGeometry
from chemtomo.core.projector import Projector
from chemtomo.core.diff import edge_directions
from chemtomo.recon.multimodal import BALANCE, _Problem
from chemtomo.recon.pdhg import pdhg
from chemtomo.recon.regularisers import DTV, TGV, TNV, TV
from chemtomo.testing import ball

ELEMENTS = ("Au", "Ag", "Pd")


def make_problem(n, rng=0):
    gen = np.random.default_rng(rng)
    shells = [ball((n, n, n), 0.2 * n), ball((n, n, n), 0.3 * n), ball((n, n, n), 0.4 * n)]
    vols = {"Au": shells[0], "Ag": shells[1] - shells[0], "Pd": shells[2] - shells[1]}
    ah = Projector(TiltGeometry(np.linspace(-70, 70, 71), (n, n, n)))
    ae = Projector(TiltGeometry(np.linspace(-70, 70, 15), (n, n, n)))
    ops = {"HAADF": ah, **{e: ae for e in ELEMENTS}}
    z = {"Au": 79, "Ag": 47, "Pd": 46}
    h = sum(z[e] ** 1.7 * v for e, v in vols.items())
    make_problem.guide = h  # the directional-TV guide
    data = {"HAADF": gen.normal(ah(h), 0.02 * float(ah(h).max())).astype(np.float32)}
    for e, v in vols.items():
        p = ae(v)
        data[e] = gen.poisson(p / p[p > 0].mean()).astype(np.float32)  # ~1 count per pixel on the particle
    return ops, data


def projector_cost(problem, repeats):
    """Seconds of one forward + adjoint pass of every data term (best of `repeats`)."""
    x = torch.rand(problem.shape)
    return sum(best_of(lambda: op._apply_adjoint(op._apply(x)), repeats) for _, op in problem.terms())


def stencil_cost(problem, regulariser, repeats):
    """Seconds of the regulariser's finite differences, forward and adjoint (best of `repeats`)."""
    x = torch.rand(problem.shape)
    prim = [x] + [torch.rand(s) for s in regulariser.aux_shapes(problem.shape)]
    stencil = 0.0
    for _, ops in regulariser.blocks(problem.shape):
        buf = sum(op._apply(prim[j]) for j, op in ops.items())
        out = [torch.zeros_like(p) for p in prim]

        def stencil_pass():
            for m, (j, op) in enumerate(ops.items()):
                if m == 0:
                    op._apply_into(prim[j], buf)
                else:
                    buf.add_(op._apply(prim[j]))
            for j, op in ops.items():
                op._adjoint_add(buf, out[j])

        stencil += best_of(stencil_pass, repeats)
    return stencil


class _Timed:
    """Wrap a regulariser so that the time spent in its dual projections is recorded."""

    def __init__(self, reg):
        self.reg, self.seconds = reg, 0.0

    def aux_shapes(self, shape):
        return self.reg.aux_shapes(shape)

    def blocks(self, shape):
        out = []
        for part, ops in self.reg.blocks(shape):
            out.append((_TimedPart(part, self), ops))
        return out


class _TimedPart:
    def __init__(self, part, owner):
        self.part, self.owner = part, owner

    def prox_conj(self, q, sigma):
        t = time.perf_counter()
        res = self.part.prox_conj(q, sigma)
        self.owner.seconds += time.perf_counter() - t
        return res


def iteration_cost(problem, regulariser, repeats, warmup=5):
    """Mean seconds per iteration beyond the first `warmup` (duals are then realistic), and of the prox in it."""
    reg = _Timed(regulariser)
    norms = problem.norms(regulariser)
    terms = problem.terms()
    t = time.perf_counter()
    pdhg(terms, reg, warmup, norms=norms, balance=BALANCE)
    first, prox_first = time.perf_counter() - t, reg.seconds
    reg.seconds = 0.0
    t = time.perf_counter()
    pdhg(terms, reg, warmup + repeats, norms=norms, balance=BALANCE)
    total = time.perf_counter() - t
    return (total - first) / repeats, (reg.seconds - prox_first) / repeats


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10, help="iterations timed after 5 warm-up ones")
    ap.add_argument("--full", type=int, default=0, help="also time a complete run of this many iterations")
    ap.add_argument("--full-regulariser", default="tnv,dtv", help="regularisers of the complete runs: tnv, dtv")
    args = ap.parse_args()
    n = args.size
    t0 = time.perf_counter()
    ops, data = make_problem(n)
    print(f"# PDHG iteration cost, {n} slices of {n}x{n}, 3 elements + HAADF (71 + 3x15 tilts)")
    print(f"machine: {machine()}; problem set-up {time.perf_counter() - t0:.1f} s\n")
    rows = []
    cases = [("TNV", "mix", TNV(0.1)), ("TNV", "channel", TNV(0.1)), ("TV (channel-wise)", "mix", TV(0.1)),
             ("TGV frobenius", "mix", TGV(0.1, 0.4)), ("TGV nuclear", "mix", TGV(0.1, 0.4, "nuclear")),
             ("directional TV", "mix", DTV(0.1, edge_directions(make_problem.guide)))]
    problems, projs = {}, {}
    for name, haadf, reg in cases:
        if haadf not in problems:
            problems[haadf] = _Problem(ops, data, list(ELEMENTS), haadf=haadf)
            projs[haadf] = projector_cost(problems[haadf], 5)
        problem, proj = problems[haadf], projs[haadf]
        stencil = stencil_cost(problem, reg, 3)
        it, prox = iteration_cost(problem, reg, args.repeats)
        rows.append({"regulariser": name, "HAADF": haadf, "channels": problem.shape[0], "projectors s": proj,
                     "stencil s": stencil, "iteration s": it,
                     "prox in it. s": prox, "it / (proj + stencil)": it / (proj + stencil),
                     "(it - prox) / (proj + stencil)": (it - prox) / (proj + stencil)})
        print(table(rows[-1:], list(rows[0])).splitlines()[-1], flush=True)
    print()
    print(table(rows, list(rows[0])))
    if args.full:
        problem = problems["mix"]
        for name in args.full_regulariser.split(","):
            reg = {"tnv": lambda: TNV(0.1), "dtv": lambda: DTV(0.1, edge_directions(make_problem.guide))}[name]()
            t = time.perf_counter()
            problem.solve(reg, args.full)
            el = time.perf_counter() - t
            print(f"\n{name.upper()} (HAADF mix), {args.full} iterations at {n}^3 x {problem.shape[0]} channels: "
                  f"{el:.0f} s ({el / args.full:.2f} s per iteration); peak RSS {peak_rss_gib():.1f} GiB", flush=True)

if __name__ == "__main__":
    main()
