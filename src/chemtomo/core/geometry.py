"""Single-axis parallel-beam tilt geometry.

Conventions (see ``docs/conventions.md``):

* volume ``v[y, z, x]``, shape ``(ny, nz, nx)``; y runs along the tilt axis,
  x is parallel to the detector axis u at 0 degrees, z is the beam direction
  at 0 degrees;
* tilt series ``p[a, y, u]``, shape ``(n_tilts, ny, nu)``;
* voxel ``(k, j)`` sits at ``z = k - (nz - 1)/2``, ``x = j - (nx - 1)/2``,
  detector pixel ``i`` at ``u = i - (nu - 1)/2``;
* at tilt theta (degrees) a point (x, z) projects to
  ``u = x cos(theta) + z sin(theta) + axis_offset``;
* projections are line integrals in voxel lengths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ChemtomoError, as_angles


@dataclass(frozen=True, eq=False)
class TiltGeometry:
    """Angles and array sizes of a single-axis tilt series.

    Parameters
    ----------
    angles : sequence of float
        Tilt angles in degrees, any order and spacing.
    volume_shape : (int, int, int)
        ``(ny, nz, nx)`` of the reconstructed volume, in voxels.
    n_u : int, optional
        Detector width in pixels; ``nx`` if omitted.
    axis_offset : float, default 0
        Position of the tilt axis on the detector, in pixels, relative to the
        detector centre: a point on the axis projects to ``u = axis_offset``
        at every tilt. Sub-pixel values are allowed.

    Examples
    --------
    >>> g = TiltGeometry(angles=[-60, 0, 60], volume_shape=(4, 8, 16))
    >>> g.projection_shape
    (3, 4, 16)
    >>> g[1:].angles.tolist()
    [0.0, 60.0]
    """

    angles: np.ndarray
    volume_shape: tuple[int, int, int]
    n_u: int | None = None
    axis_offset: float = 0.0
    _key: tuple = field(init=False, repr=False)

    def __post_init__(self):
        angles = as_angles(self.angles)
        angles.setflags(write=False)
        shape = tuple(int(s) for s in self.volume_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ChemtomoError(f"volume_shape must be three positive sizes (ny, nz, nx), got {self.volume_shape}")
        n_u = shape[2] if self.n_u is None else int(self.n_u)
        if n_u < 1:
            raise ChemtomoError(f"n_u must be a positive detector width in pixels, got {self.n_u}")
        offset = float(self.axis_offset)
        if not np.isfinite(offset):
            raise ChemtomoError(f"axis_offset must be a finite number of pixels, got {self.axis_offset}")
        object.__setattr__(self, "angles", angles)
        object.__setattr__(self, "volume_shape", shape)
        object.__setattr__(self, "n_u", n_u)
        object.__setattr__(self, "axis_offset", offset)
        object.__setattr__(self, "_key", (angles.tobytes(), shape, n_u, offset))

    @property
    def n_tilts(self) -> int:
        return int(self.angles.size)

    @property
    def projection_shape(self) -> tuple[int, int, int]:
        """``(n_tilts, ny, nu)``."""
        return (self.n_tilts, self.volume_shape[0], self.n_u)

    def with_volume_shape(self, volume_shape) -> "TiltGeometry":
        return TiltGeometry(self.angles, volume_shape, self.n_u, self.axis_offset)

    def __getitem__(self, index) -> "TiltGeometry":
        """The geometry of a subset of tilts (slice, index array or boolean mask)."""
        angles = np.atleast_1d(self.angles[index])
        return TiltGeometry(angles, self.volume_shape, self.n_u, self.axis_offset)

    def __eq__(self, other):
        return isinstance(other, TiltGeometry) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        a = self.angles
        uniform = a.size > 2 and np.allclose(np.diff(a), a[1] - a[0])
        if uniform:
            step = a[1] - a[0]
            ang = f"np.arange({a[0]:g}, {a[-1] + step / 2:g}, {step:g})"
        else:
            ang = "[" + ", ".join(f"{v:g}" for v in a) + "]"
        extra = "" if self.axis_offset == 0 else f", axis_offset={self.axis_offset:g}"
        return f"TiltGeometry(angles={ang}, volume_shape={self.volume_shape}, n_u={self.n_u}{extra})"


def parallel(angles, volume_shape, n_u=None, *, axis_offset=0.0) -> TiltGeometry:
    """Shorthand for :class:`TiltGeometry`."""
    return TiltGeometry(angles, volume_shape, n_u, axis_offset)
