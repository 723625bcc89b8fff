"""Test-session settings: one torch thread per test process.

`make test` runs two test processes (pytest-xdist) on the project's 2-core machines; with torch's
default of one thread per core each, the processes would oversubscribe the cores, which made
some runs many times slower (docs/decisions.md).
"""

import torch

torch.set_num_threads(1)
