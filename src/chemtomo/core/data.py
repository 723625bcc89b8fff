"""Data containers: tilt series in, volume sets out.

A :class:`TiltSeries` holds one or more named signals (``HAADF``, ``Au``,
``Ag_La``, ...), each a stack ``p[a, y, u]`` with its own tilt angles, all on
the same detector grid. A :class:`VolumeSet` holds one reconstructed volume
``v[y, z, x]`` per signal or element with its provenance. Both convert to and
from NumPy arrays and HyperSpy signals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ChemtomoError, ShapeError, as_angles, check_finite
from .geometry import TiltGeometry


@dataclass(frozen=True)
class Signal:
    """One tilt-series stack.

    Parameters
    ----------
    data : array, shape (n_tilts, ny, nu)
        Images, one per tilt; counts for EDX/EELS maps, detector units for HAADF.
    angles : array, shape (n_tilts,)
        Tilt angles in degrees.
    units : str, default "counts"
        Units of the values.
    """

    data: np.ndarray
    angles: np.ndarray
    units: str = "counts"

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3 or 0 in data.shape:
            raise ShapeError(f"a tilt series must be a stack (n_tilts, ny, nu), got shape {data.shape}")
        angles = as_angles(self.angles)
        if angles.size != data.shape[0]:
            raise ShapeError(
                f"angles has {angles.size} entries but the stack has {data.shape[0]} images; "
                "pass one angle per image"
            )
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "angles", angles)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.data.shape[1:])


@dataclass
class TiltSeries:
    """Named tilt-series signals on one detector grid.

    Parameters
    ----------
    signals : dict of str to Signal
        ``{"HAADF": Signal(...), "Au": Signal(...)}``; each keeps its own angles.
    pixel_size : float, default 1.0
        Detector pixel size in nm.
    dose : float, optional
        Total electron dose of the series in e-/A^2.
    acquisition_time : float, optional
        Total acquisition time in s.
    metadata : dict
        Free-form provenance (instrument, file names, ...).
    """

    signals: dict[str, Signal]
    pixel_size: float = 1.0
    dose: float | None = None
    acquisition_time: float | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.signals:
            raise ChemtomoError("a tilt series needs at least one signal, e.g. HAADF or an element map")
        shapes = {name: s.image_shape for name, s in self.signals.items()}
        if len(set(shapes.values())) > 1:
            listing = ", ".join(f"{n} {s[0]}x{s[1]}" for n, s in shapes.items())
            raise ShapeError(f"all signals must share one image size (ny, nu), got {listing}; crop or bin them to match")
        if not (np.isfinite(self.pixel_size) and self.pixel_size > 0):
            raise ChemtomoError(f"pixel_size must be a positive size in nm, got {self.pixel_size}")

    @classmethod
    def from_arrays(cls, arrays: dict, angles, *, units=None, **kwargs) -> "TiltSeries":
        """Build from ``{name: stack}`` and one angle list, or ``{name: angles}`` per signal."""
        units = units or {}
        sig = {}
        for name, data in arrays.items():
            a = angles[name] if isinstance(angles, dict) else angles
            sig[name] = Signal(np.asarray(data), a, units.get(name, "counts"))
        return cls(sig, **kwargs)

    @property
    def names(self) -> list[str]:
        return list(self.signals)

    @property
    def image_shape(self) -> tuple[int, int]:
        return next(iter(self.signals.values())).image_shape

    def __getitem__(self, name: str) -> Signal:
        try:
            return self.signals[name]
        except KeyError:
            raise ChemtomoError(f"no signal named {name!r}; this tilt series has {', '.join(self.names)}") from None

    def __contains__(self, name):
        return name in self.signals

    def geometry(self, name: str, thickness: int | None = None, *, axis_offset: float = 0.0) -> TiltGeometry:
        """The :class:`TiltGeometry` of signal `name` for a volume `thickness` voxels thick (default nu)."""
        ny, nu = self.image_shape
        nz = nu if thickness is None else int(thickness)
        if nz < 1:
            raise ChemtomoError(f"thickness must be a positive number of voxels, got {thickness}")
        return TiltGeometry(self[name].angles, (ny, nz, nu), nu, axis_offset)

    def check_finite(self) -> None:
        for name, s in self.signals.items():
            check_finite(s.data, f"signal {name}")

    def to_hyperspy(self, name: str):
        """Signal `name` as a HyperSpy ``Signal2D`` with a tilt navigation axis in degrees."""
        import hyperspy.api as hs

        s = self[name]
        sig = hs.signals.Signal2D(np.asarray(s.data))
        sig.metadata.General.title = name
        sig.metadata.Signal.quantity = s.units
        nav = sig.axes_manager.navigation_axes[0]
        nav.name, nav.units = "tilt", "deg"
        if s.angles.size > 1 and np.allclose(np.diff(s.angles), s.angles[1] - s.angles[0]):
            nav.offset, nav.scale = float(s.angles[0]), float(s.angles[1] - s.angles[0])
        sig.metadata.set_item("Tomography.tilts", s.angles.tolist())
        for ax, axname in zip(sig.axes_manager.signal_axes, ("u", "y")):
            ax.name, ax.units, ax.scale = axname, "nm", self.pixel_size
        return sig

    @classmethod
    def from_hyperspy(cls, signals: dict, angles=None, **kwargs) -> "TiltSeries":
        """Build from ``{name: hyperspy Signal2D}`` whose navigation axis is the tilt.

        Angles (degrees) come from `angles` if given (a sequence, or a HyperSpy
        signal such as etspy's ``TomoTilts``), else from ``metadata.Tomography.tilts``
        (a list, or the tilt signal etspy keeps there), else from an etspy
        ``TomoStack``'s ``tilts``, else from a per-image
        ``Acquisition_instrument.TEM.Stage.tilt_alpha``, else from the navigation
        axis. etspy's placeholders (all-zero tilts, a ``Projections`` axis 0, 1,
        2, ...) are not angles: with nothing else, pass `angles`.
        """

        def values(a):  # a sequence or a HyperSpy signal (its data) as a float vector; None stays None
            a = a.data if hasattr(a, "axes_manager") else a
            return None if a is None else np.asarray(a, dtype=np.float64).ravel()

        sig, pixel = {}, None
        for name, s in signals.items():
            n = s.data.shape[0] if np.ndim(s.data) == 3 else 1
            a = values(angles[name] if isinstance(angles, dict) else angles)
            for source in (s.metadata.get_item("Tomography.tilts"), getattr(s, "tilts", None)):
                if a is None and source is not None:
                    a = values(source)
                    a = None if n > 1 and a.size == n and not a.any() else a  # etspy's all-zero placeholder
            stage = s.metadata.get_item("Acquisition_instrument.TEM.Stage.tilt_alpha")
            if a is None and stage is not None and np.size(stage) == n > 1 and np.ptp(values(stage)) > 0:
                a = values(stage)
            if a is None:
                nav = s.axes_manager.navigation_axes
                placeholder = bool(nav) and str(nav[0].name).lower() == "projections" and (
                    getattr(nav[0], "offset", None), getattr(nav[0], "scale", None)) == (0, 1)
                if not nav or placeholder:
                    raise ChemtomoError(f"signal {name} carries no tilt angles (no Tomography.tilts, stage tilts or "
                                        "calibrated navigation axis); pass angles= in degrees")
                a = nav[0].axis
            units = s.metadata.Signal.get_item("quantity", "counts") or "counts"
            sig[name] = Signal(np.asarray(s.data), a, units)
            ax = s.axes_manager.signal_axes[0]
            if pixel is None and ax.units in ("nm", "µm", "um", "Å", "A"):
                pixel = float(ax.scale) * {"nm": 1.0, "µm": 1e3, "um": 1e3, "Å": 0.1, "A": 0.1}[ax.units]
        kwargs.setdefault("pixel_size", pixel or 1.0)
        return cls(sig, **kwargs)


@dataclass
class VolumeSet:
    """Reconstructed volumes ``v[y, z, x]``, one per signal or element.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
        One volume per name, all the same shape.
    voxel_size : float, default 1.0
        Edge of a voxel in nm.
    provenance : dict
        Method, parameters, angles, version and timings, written to the JSON sidecar.
    """

    volumes: dict[str, np.ndarray]
    voxel_size: float = 1.0
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        shapes = {np.shape(v) for v in self.volumes.values()}
        if len(shapes) > 1:
            raise ShapeError(f"all volumes in a set must have one shape, got {sorted(shapes)}")
        if any(len(s) != 3 for s in shapes):
            raise ShapeError(f"volumes must be 3D arrays v[y, z, x], got shapes {sorted(shapes)}")

    @property
    def names(self) -> list[str]:
        return list(self.volumes)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.volumes[name]
        except KeyError:
            raise ChemtomoError(f"no volume named {name!r}; this set has {', '.join(self.names)}") from None

    def to_hyperspy(self, name: str):
        """Volume `name` as a HyperSpy signal with axes y, z, x in nm."""
        import hyperspy.api as hs

        s = hs.signals.BaseSignal(np.asarray(self[name])).transpose(signal_axes=3)
        s.metadata.General.title = name
        for ax, axname in zip(s.axes_manager.signal_axes, ("x", "z", "y")):
            ax.name, ax.units, ax.scale = axname, "nm", self.voxel_size
        return s

    @classmethod
    def from_hyperspy(cls, signals: dict, **kwargs) -> "VolumeSet":
        """Build from ``{name: hyperspy signal}`` holding ``v[y, z, x]`` arrays."""
        vols = {name: np.asarray(s.data) for name, s in signals.items()}
        if "voxel_size" not in kwargs:
            ax = next(iter(signals.values())).axes_manager.signal_axes[0]
            kwargs["voxel_size"] = float(ax.scale) if ax.units == "nm" else 1.0
        return cls(vols, **kwargs)
