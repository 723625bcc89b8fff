"""Signed-distance functions (SDFs) of convex nanoparticle bodies on voxel grids.

A body lives in its own frame at unit scale. :func:`make_body` builds one of
the shape families in :data:`FAMILIES`; :func:`body_sdf` evaluates it on a
rotated, scaled and shifted voxel grid without a Python loop over voxels.

Conventions
-----------
* Coordinates are ``(y, z, x)``, the order of the array axes of ``v[y, z, x]``.
  A body's symmetry axis (rod axis, plate normal, bipyramid axis) is its second
  coordinate, so with the identity rotation it points along z.
* Signed distance is negative inside. Polyhedra are intersections of
  half-spaces; inside a convex polyhedron ``max_f (n_f . p - d_f)`` is the exact
  distance. Rounded bodies are the Minkowski sum of the body inset by ``r`` and
  a ball of radius ``r``: ``sdf = sdf_inset - r``. That needs the exact
  distance outside the inset body, which is computed only in the band of
  voxels where it can change the occupancy (nearest face, else nearest edge).
* Plates are prisms: a 2-D polygon (rounded tips) extruded along the normal,
  with rounded edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, HalfspaceIntersection

from ..core.errors import ChemtomoError

#: Shape families known to :func:`make_body`.
FAMILIES = (
    "sphere", "ellipsoid", "cube", "octahedron", "truncated-octahedron", "icosahedron", "decahedron",
    "rod", "bipyramid", "triangle", "truncated-triangle", "hexagon", "square",
)
#: Platelet families (prisms); their thickness is a fraction of the in-plane size.
PLATES = ("triangle", "truncated-triangle", "hexagon", "square")

_PHI = (1 + 5**0.5) / 2


@dataclass(frozen=True)
class AffineGrid:
    """Body-frame coordinates of a block of voxels: ``p = origin + i*steps[0] + k*steps[1] + j*steps[2]``."""

    origin: np.ndarray  # (3,) body coordinates of voxel (0, 0, 0) of the block
    steps: np.ndarray  # (3, 3) body displacement per index step along y, z, x
    shape: tuple

    def linear(self, n, c: float = 0.0) -> np.ndarray:
        """``n . p - c`` on the block as float32, computed separably."""
        n = np.asarray(n, dtype=np.float64)
        a = [np.arange(m) * float(n @ s) for m, s in zip(self.shape, self.steps)]
        plane = (float(n @ self.origin) - c + a[0][:, None] + a[1][None, :]).astype(np.float32)
        return plane[:, :, None] + a[2].astype(np.float32)[None, None, :]

    def points(self, index) -> np.ndarray:
        """Body coordinates (float64, shape (M, 3)) of the voxels ``index`` (a tuple of 3 index arrays)."""
        return self.origin + _dot(np.stack(index, axis=1).astype(np.float64), self.steps.T)


# ----------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class Ellipsoid:
    radii: tuple  # semi-axes along the body's y, z, x

    def sdf(self, grid: AffineGrid, voxel: float) -> np.ndarray:
        r = np.asarray(self.radii, dtype=np.float64)
        comp = [grid.linear(np.eye(3)[k]) for k in range(3)]
        if np.ptp(r) == 0:
            return np.sqrt(comp[0] ** 2 + comp[1] ** 2 + comp[2] ** 2) - np.float32(r[0])
        k0 = np.sqrt(sum((c / np.float32(rk)) ** 2 for c, rk in zip(comp, r)))
        k1 = np.sqrt(sum((c / np.float32(rk * rk)) ** 2 for c, rk in zip(comp, r)))
        return k0 * (k0 - 1) / np.maximum(k1, np.float32(1e-12))  # Quilez's bound, exact on the surface

    def support(self, u):
        return np.sqrt(((np.asarray(u) * self.radii) ** 2).sum(-1))

    def radius(self) -> float:
        return float(max(self.radii))


@dataclass(frozen=True)
class Capsule:
    half_length: float  # half length of the axis segment (body axis 1)
    r: float

    def sdf(self, grid: AffineGrid, voxel: float) -> np.ndarray:
        y, z, x = (grid.linear(np.eye(3)[k]) for k in range(3))
        dz = np.abs(z) - np.float32(self.half_length)
        np.maximum(dz, 0, out=dz)
        return np.sqrt(y * y + dz * dz + x * x) - np.float32(self.r)

    def support(self, u):
        return self.half_length * np.abs(np.asarray(u)[..., 1]) + self.r

    def radius(self) -> float:
        return self.half_length + self.r


@dataclass(frozen=True)
class Polytope:
    normals: np.ndarray  # (F, 3) unit outward normals of the inset body
    offsets: np.ndarray  # (F,) plane offsets of the inset body
    vertices: np.ndarray  # (V, 3) vertices of the inset body
    edges: np.ndarray  # (E, 2) vertex indices
    r: float  # rounding radius

    def sdf(self, grid: AffineGrid, voxel: float) -> np.ndarray:
        s = grid.linear(self.normals[0], self.offsets[0])
        for n, d in zip(self.normals[1:], self.offsets[1:]):
            np.maximum(s, grid.linear(n, d), out=s)
        if self.r > 0:
            a, b = self.vertices[self.edges[:, 0]], self.vertices[self.edges[:, 1]]
            _exact_band(s, grid.points, self.normals, self.offsets, a, b, self.r + voxel)
        return s - np.float32(self.r)

    def support(self, u):
        return (np.asarray(u) @ self.vertices.T).max(-1) + self.r

    def radius(self) -> float:
        return float(np.linalg.norm(self.vertices, axis=1).max() + self.r)


@dataclass(frozen=True)
class Prism:
    normals: np.ndarray  # (F, 2) in-plane outward normals (body axes 0 and 2) of the inset polygon
    offsets: np.ndarray  # (F,)
    vertices: np.ndarray  # (V, 2) inset polygon
    half_thickness: float  # of the inset slab
    r_tip: float  # in-plane rounding of the polygon corners
    r_edge: float  # rounding of all edges

    def sdf(self, grid: AffineGrid, voxel: float) -> np.ndarray:
        n3 = np.insert(self.normals, 1, 0.0, axis=1)
        s = grid.linear(n3[0], self.offsets[0])
        for n, d in zip(n3[1:], self.offsets[1:]):
            np.maximum(s, grid.linear(n, d), out=s)
        if self.r_tip + self.r_edge > 0:
            pts = lambda idx: grid.points(idx)[:, [0, 2]]  # noqa: E731
            _exact_band(s, pts, self.normals, self.offsets, self.vertices, self.vertices, self.r_tip + self.r_edge + voxel)
        s -= np.float32(self.r_tip)
        dz = np.abs(grid.linear(np.eye(3)[1])) - np.float32(self.half_thickness)
        out = np.minimum(np.maximum(s, dz), 0)
        np.maximum(s, 0, out=s)
        np.maximum(dz, 0, out=dz)
        return out + np.sqrt(s * s + dz * dz) - np.float32(self.r_edge)

    def support(self, u):
        u = np.asarray(u)
        uxy = u[..., [0, 2]]
        return ((uxy @ self.vertices.T).max(-1) + self.r_tip * np.linalg.norm(uxy, axis=-1)
                + self.half_thickness * np.abs(u[..., 1]) + self.r_edge)

    def radius(self) -> float:
        rho = np.linalg.norm(self.vertices, axis=1).max() + self.r_tip
        return float(np.hypot(rho, self.half_thickness) + self.r_edge)


def _exact_band(s, points, normals, offsets, seg_a, seg_b, band):
    """Replace the plane bound ``s`` by the exact outside distance where ``0 < s < band`` (in place).

    Outside a convex polytope the nearest boundary point lies inside the face
    of largest plane distance (if the foot point of that plane is inside the
    polytope) or else on an edge (in 2-D: a vertex), given as segments a-b.
    """
    index = np.nonzero((s > 0) & (s < band))
    if not index[0].size:
        return
    for start in range(0, index[0].size, 1 << 16):
        idx = tuple(i[start:start + (1 << 16)] for i in index)
        p = points(idx)
        a = _dot(p, normals) - offsets  # plane values (M, F)
        f = a.argmax(1)
        top = a[np.arange(len(f)), f]
        foot = (a - top[:, None] * (normals @ normals.T)[f]).max(1) <= 1e-9
        p = p[~foot]
        ab = seg_b - seg_a
        ab2 = np.maximum((ab * ab).sum(1), 1e-300)
        pa = _dot(p, ab) - (seg_a * ab).sum(1)  # (p - a) . ab
        t = np.clip(pa / ab2, 0, 1)
        d2 = (p * p).sum(1)[:, None] - 2 * _dot(p, seg_a) + (seg_a * seg_a).sum(1) - t * (2 * pa - t * ab2)
        top[~foot] = np.sqrt(np.maximum(d2.min(1), 0))
        s[idx] = top


def _dot(p, n):
    """``p @ n.T`` for (M, d) by (K, d) with small d (faster than BLAS for d <= 3)."""
    out = np.multiply.outer(p[:, 0], n[:, 0])
    for c in range(1, p.shape[1]):
        out += np.multiply.outer(p[:, c], n[:, c])
    return out


# ----------------------------------------------------------------------------- construction


def _hull3(vertices):
    """Unique facet planes and true edges of the convex hull of `vertices`."""
    hull = ConvexHull(vertices)
    eq = hull.equations
    _, facet = np.unique(np.round(eq, 8), axis=0, return_inverse=True)
    facet = facet.ravel()
    planes = np.array([eq[facet == k][0] for k in range(facet.max() + 1)])
    edges = set()
    for s, simplex in enumerate(hull.simplices):
        for k in range(3):
            if facet[hull.neighbors[s, k]] != facet[s]:
                edges.add(tuple(sorted(np.delete(simplex, k))))
    return planes[:, :3], -planes[:, 3], np.array(sorted(edges))


def _inset_vertices(normals, offsets, r):
    """Vertices of the polytope ``n . p <= d - r`` (the origin must stay inside)."""
    if r <= 0:
        return None
    hs = HalfspaceIntersection(np.column_stack([normals, -(offsets - r)]), np.zeros(normals.shape[1]))
    return np.unique(np.round(hs.intersections, 10), axis=0)


def _polytope(vertices, rounding):
    v = np.unique(np.round(np.asarray(vertices, dtype=np.float64), 10), axis=0)
    normals, offsets, _ = _hull3(v)
    r = rounding * 2 * offsets.min()  # fraction of the smallest width
    v = _inset_vertices(normals, offsets, r) if r > 0 else v
    normals, offsets, edges = _hull3(v)
    return Polytope(normals, offsets, v, edges, float(r))


def _polygon(n_sides, start_deg):
    t = np.deg2rad(start_deg + 360.0 * np.arange(n_sides) / n_sides)
    return np.column_stack([np.cos(t), np.sin(t)])


def _plate_polygon(family, truncation):
    if family == "triangle":
        return _polygon(3, 90)
    if family == "hexagon":
        return _polygon(6, 0)
    if family == "square":
        return _polygon(4, 45)
    tri = _polygon(3, 90)  # truncated triangle: cut each corner at truncation/3 of the edges
    tau = truncation / 3
    return np.concatenate([tri + tau * (np.roll(tri, s, axis=0) - tri) for s in (1, -1)])


def _prism(polygon, thickness, rounding, tip_rounding):
    poly = np.unique(np.round(polygon, 10), axis=0)
    hull = ConvexHull(poly)
    normals, offsets = hull.equations[:, :2], -hull.equations[:, 2]
    size = max(np.linalg.norm(a - b) for a in poly for b in poly)
    half = 0.5 * thickness * size
    r_edge = min(rounding * 2 * half, 0.45 * offsets.min())
    r_tip = max(0.0, min(tip_rounding * 2 * offsets.min(), 0.9 * offsets.min() - r_edge))
    inset = r_tip + r_edge
    if inset > 0:
        poly = _inset_vertices(normals, offsets, inset)
        hull = ConvexHull(poly)
        normals, offsets = hull.equations[:, :2], -hull.equations[:, 2]
    return Prism(normals, offsets, poly, half - r_edge, float(r_tip), float(r_edge))


def make_body(family: str, *, aspect: float = 1.0, truncation: float = 0.0, rounding: float = 0.0,
              tip_rounding: float = 0.0, thickness: float = 0.2):
    """Build a body of a shape family at unit scale, centred on the origin.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES`.
    aspect : float, default 1
        Elongation along the body's symmetry axis (body axis 1). ``rod``: length
        over diameter (>= 1). ``bipyramid``: half length over pentagon
        circumradius (tip half-angle ``atan(1/aspect)``). ``ellipsoid``: axis-1
        semi-axis over the other two. Polyhedra: stretch factor. Ignored by
        ``sphere`` and plates.
    truncation : float in [0, 1], default 0
        ``truncated-octahedron``: 0 octahedron, 2/3 Archimedean truncated
        octahedron, 1 cuboctahedron. ``truncated-triangle``: corner cut, 0
        triangle, 1 regular hexagon. ``bipyramid``: tips cut at ``1 - truncation``
        of the half length (at most 0.9). Ignored otherwise.
    rounding : float in [0, 0.45], default 0
        Edge rounding radius as a fraction of the body's smallest width (twice
        the inradius; plates: the thickness).
    tip_rounding : float in [0, 0.45], default 0
        Plates only: in-plane corner radius as a fraction of the polygon's inner diameter.
    thickness : float, default 0.2
        Plates only: thickness as a fraction of the in-plane size.

    Returns
    -------
    body : Ellipsoid, Capsule, Polytope or Prism
        With ``sdf(grid, voxel)``, ``support(u)`` and ``radius()``.

    Raises
    ------
    ChemtomoError
        For an unknown family or parameters out of range.
    """
    if family not in FAMILIES:
        raise ChemtomoError(f"unknown shape family {family!r}; use one of {', '.join(FAMILIES)}")
    for name, value, hi in (("rounding", rounding, 0.45), ("tip_rounding", tip_rounding, 0.45), ("truncation", truncation, 1.0)):
        if not 0 <= value <= hi:
            raise ChemtomoError(f"{name} must be in [0, {hi}], got {value}; it is a fraction of the body size")
    if not aspect > 0 or (family == "rod" and aspect < 1):
        raise ChemtomoError(f"aspect must be > 0 (rod: >= 1, length over diameter), got {aspect} for {family}")
    if family == "bipyramid" and truncation > 0.9:
        raise ChemtomoError(f"bipyramid truncation must be <= 0.9 (1 would flatten it), got {truncation}")
    if family in PLATES and not 0 < thickness <= 1:
        raise ChemtomoError(f"thickness must be in (0, 1] of the plate size, got {thickness}")
    stretch = np.array([1.0, aspect, 1.0])
    if family == "sphere":
        return Ellipsoid((1.0, 1.0, 1.0))
    if family == "ellipsoid":
        return Ellipsoid((1.0, float(aspect), 1.0))
    if family == "rod":
        return Capsule(float(aspect) - 1.0, 1.0)
    if family in PLATES:
        return _prism(_plate_polygon(family, truncation), thickness, rounding, tip_rounding)
    if family == "cube":
        v = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T * stretch
    elif family == "octahedron":
        v = np.concatenate([np.eye(3), -np.eye(3)]) * stretch
    elif family == "truncated-octahedron":
        c = 1 - truncation / 2
        v = [np.roll(np.array([sa * c, sb * (1 - c), 0.0]), k) for sa in (-1, 1) for sb in (-1, 1) for k in range(3)]
        v += [np.roll(np.array([sa * (1 - c), sb * c, 0.0]), k) for sa in (-1, 1) for sb in (-1, 1) for k in range(3)]
        v = np.array(v) * stretch
    elif family == "icosahedron":
        base = [np.array([0.0, a, b * _PHI]) for a in (-1, 1) for b in (-1, 1)]
        v = np.array([np.roll(x, k) for x in base for k in range(3)]) * stretch
    else:  # decahedron (five regular tetrahedra round an axis) or pentagonal bipyramid
        deca = family == "decahedron"
        pent = _polygon(5, 90) * (1 / (2 * np.sin(np.pi / 5)) if deca else 1.0)
        h = 0.5 * aspect if deca else float(aspect)
        rings = [np.column_stack([pent[:, 0], np.zeros(5), pent[:, 1]])]
        t = 0.0 if deca else truncation
        for sign in (-1, 1):
            rings.append(np.column_stack([t * pent[:, 0], np.full(5, sign * h * (1 - t)), t * pent[:, 1]]))
        v = np.concatenate(rings)
    return _polytope(v, rounding)


# ----------------------------------------------------------------------------- placement


def quaternion_matrix(q) -> np.ndarray:
    """Rotation matrix (body to grid frame) of the quaternion ``q = (w, a0, a1, a2)``, normalised first."""
    w, a, b, c = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (b * b + c * c), 2 * (a * b - c * w), 2 * (a * c + b * w)],
        [2 * (a * b + c * w), 1 - 2 * (a * a + c * c), 2 * (b * c - a * w)],
        [2 * (a * c - b * w), 2 * (b * c + a * w), 1 - 2 * (a * a + b * b)],
    ])


def extent(body, rotation, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the placed body along y, z, x, relative to its centre, in voxels."""
    rot = quaternion_matrix(rotation)
    return -scale * body.support(-rot), scale * body.support(rot)


def body_sdf(body, shape, rotation, scale: float, centre, box=None) -> np.ndarray:
    """Signed distance in voxels of a placed body on (a block of) the voxel grid.

    Parameters
    ----------
    body : Ellipsoid, Capsule, Polytope or Prism
        From :func:`make_body`.
    shape : (int, int, int)
        Grid shape ``(ny, nz, nx)``; voxel ``(i, k, j)`` is at ``i - (ny-1)/2`` etc.
    rotation : (4,) quaternion
        Body to grid rotation.
    scale : float
        Voxels per body unit.
    centre : (3,) float
        Body centre relative to the grid centre, in voxels (y, z, x).
    box : tuple of 3 slices, optional
        Block of the grid to evaluate; the whole grid if omitted.

    Returns
    -------
    sdf : float32 array, shape of the block, in voxels (negative inside).
    """
    box = box or tuple(slice(0, n) for n in shape)
    rot = quaternion_matrix(rotation)
    start = np.array([b.start - (n - 1) / 2 for b, n in zip(box, shape)])
    grid = AffineGrid(rot.T @ (start - np.asarray(centre, dtype=np.float64)) / scale, rot / scale,
                      tuple(b.stop - b.start for b in box))
    out = body.sdf(grid, 1.0 / scale)
    out *= np.float32(scale)
    return out


def occupancy(sdf) -> np.ndarray:
    """Partial-volume occupancy ``clip(0.5 - sdf, 0, 1)`` of a signed distance in voxels (float32)."""
    return np.clip(np.float32(0.5) - sdf, 0, 1, dtype=np.float32)
