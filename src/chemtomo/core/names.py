"""Signal names: ``HAADF``, an element (``Au``) or an X-ray line (``Au_La``)."""

from __future__ import annotations

import re

from .errors import ChemtomoError

ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb "
    "Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm"
).split()

#: image signals that are not element-specific (detector intensities, not X-ray counts)
IMAGE_SIGNALS = ("HAADF", "ADF", "BF", "ABF", "DF")

_LINE = re.compile(r"^(?P<el>[A-Z][a-z]?)(?:_(?P<line>[KLMN][a-z]?\d?))?$")


def parse_signal_name(name: str) -> tuple[str, str | None]:
    """Split a signal name into ``(kind_or_element, line)``.

    Returns ``("HAADF", None)`` for image signals, ``("Au", None)`` for an
    element and ``("Au", "La")`` for an X-ray line.

    >>> parse_signal_name("Au_La")
    ('Au', 'La')
    >>> parse_signal_name("HAADF")
    ('HAADF', None)
    """
    if name.upper() in IMAGE_SIGNALS:
        return name.upper(), None
    m = _LINE.match(name)
    if not m or m["el"] not in ELEMENTS:
        raise ChemtomoError(
            f"signal name {name!r} is neither HAADF nor an element or X-ray line; "
            "use e.g. HAADF, Au or Au_La"
        )
    return m["el"], m["line"]


def is_counts(name: str) -> bool:
    """True for element and X-ray-line signals (Poisson counts), False for image signals."""
    return parse_signal_name(name)[0] not in IMAGE_SIGNALS
