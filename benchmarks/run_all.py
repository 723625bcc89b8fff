"""Run every benchmark script and save each table under benchmarks/results/ (copy them into docs/benchmarks.md).

Run: ``make bench`` or ``python benchmarks/run_all.py [name ...]`` (names: projector, memory, accuracy, phantoms, pdhg, multimodal, quantify, batch, denoise, atomic, atom-fields, auto, auto-maps, alloying, threads, n2n).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = {"projector": "bench_projector.py", "memory": "bench_memory.py", "accuracy": "bench_accuracy.py",
           "phantoms": "bench_phantoms.py", "pdhg": "bench_pdhg.py", "multimodal": "bench_multimodal.py",
           "quantify": "bench_quantify.py", "batch": "bench_batch.py", "denoise": "bench_denoise.py",
           "atomic": "bench_atomic.py", "atom-fields": "bench_atom_counting_fields.py", "auto": "bench_auto.py",
           "auto-maps": "bench_auto_maps.py", "alloying": "bench_alloying.py", "threads": "bench_threads.py", "n2n": "bench_n2n.py"}


def main(names: list[str]) -> int:
    (HERE / "results").mkdir(exist_ok=True)
    for name in names or list(SCRIPTS):
        if name not in SCRIPTS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(SCRIPTS)}", file=sys.stderr)
            return 2
        print(f"== {name}", flush=True)
        res = subprocess.run([sys.executable, SCRIPTS[name]], cwd=HERE, capture_output=True, text=True)
        out = res.stdout + (res.stderr if res.returncode else "")
        (HERE / "results" / f"{name}.md").write_text(out)
        print(out, flush=True)
        if res.returncode:
            return res.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
