"""Memory estimates checked before allocating: refuse with the size needed and a way out.

A command that would need more than :data:`FRACTION` of the memory available now stops
before it allocates, naming its estimate, what is available and what to change
(bin, crop, fewer tilts, ``--slab``). Estimates are upper bounds from the array
sizes a step holds at once, in bytes.
"""

from __future__ import annotations

import os

from .errors import ChemtomoError

FRACTION = 0.8  #: largest share of the available memory one command may plan to use
MAX_ANGLES = 20_000  #: more tilt angles than this is a typing error, not an acquisition


def available_bytes() -> int:
    """Memory available to this process now (bytes): psutil's ``available``, else the free pages."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def human(nbytes: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse `what` when it needs more than FRACTION of the available memory.

    Parameters
    ----------
    nbytes : float
        Estimated peak memory of the step (bytes).
    what : str
        The step, as the message names it (``"reconstructing 3 signals at 512 x 512 x 512"``).
    advice : str
        How to make it fit (``"bin the tilt series, crop it or use --slab"``).
    """
    available = available_bytes()
    if not nbytes == nbytes or nbytes > FRACTION * available:  # NaN counts as too much
        raise ChemtomoError(f"{what} needs about {human(nbytes)} of memory and {human(available)} is available; "
                            f"{advice}")


def check_angle_count(n: float, what: str) -> None:
    """Refuse more than MAX_ANGLES tilt angles (a step typed in the wrong unit)."""
    if not n <= MAX_ANGLES:
        raise ChemtomoError(f"{what} gives {n:.3g} tilt angles, more than {MAX_ANGLES}; check the step (degrees)")
