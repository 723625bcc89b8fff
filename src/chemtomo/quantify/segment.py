"""Particle segmentation of reconstructed volumes: threshold, clean-up, separation of touching particles.

The rule, documented once:

1. threshold at Otsu's level of the volume (or a given value);
2. fill enclosed cavities (a dim core stays inside its particle);
3. remove connected objects smaller than `min_size` voxels (noise specks);
4. split touching particles by a watershed on the Euclidean distance map,
   seeded by its maxima at least `min_distance` voxels apart (scikit-image);
   pieces below `min_size` after the split are dropped too;
5. with ``min_size=None`` (the data-driven size, :func:`auto_min_size`) also
   remove the connected objects holding less than :data:`RELATIVE_MIN_SIZE` of
   the voxels of the largest piece: reconstruction noise above the threshold
   forms blobs far smaller than the particles (docs/quantify.md); watershed
   pieces below that size join the large piece they touch most (a bump on a
   particle is not a particle);
6. label the particles 1..N by decreasing size and flag those touching the
   volume border (they are cut off, so their numbers would be wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.errors import ChemtomoError, ShapeError
from .haadf import _volume, otsu_threshold


@dataclass(frozen=True)
class Particles:
    """Labelled particles of a volume.

    Attributes
    ----------
    labels : int32 ndarray (ny, nz, nx)
        0 outside, 1..n for the particles, by decreasing size.
    threshold : float
        Intensity level used (volume units).
    sizes : ndarray (n,)
        Voxels per particle.
    touches_border : ndarray (n,) of bool
        Whether particle k + 1 touches the volume's border.
    """

    labels: np.ndarray
    threshold: float
    sizes: np.ndarray
    touches_border: np.ndarray

    @property
    def n(self) -> int:
        """Number of particles."""
        return int(self.sizes.size)

    def mask(self, k: int | None = None) -> np.ndarray:
        """Mask of particle `k` (1-based), or of all particles."""
        if k is None:
            return self.labels > 0
        if not 1 <= k <= self.n:
            raise ChemtomoError(f"particle {k} does not exist; labels run from 1 to {self.n}")
        return self.labels == k


#: smallest object kept in any case, voxels (a 3 x 3 x 3 cube: below it nothing is resolved)
MIN_SIZE = 27
#: with ``min_size=None``, objects below this fraction of the largest piece's voxels are dropped as noise
#: (a twentieth: an equivalent diameter 37 % of the largest's)
RELATIVE_MIN_SIZE = 1 / 20


def auto_min_size(largest: int) -> int:
    """The data-driven smallest object in voxels: :data:`MIN_SIZE`, or :data:`RELATIVE_MIN_SIZE` of `largest`
    (the voxels of the largest particle) if that is more."""
    return max(MIN_SIZE, int(np.ceil(RELATIVE_MIN_SIZE * largest)))


def _border_labels(labels: np.ndarray) -> set[int]:
    faces = [labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]]
    return {int(v) for f in faces for v in np.unique(f) if v}


#: with ``min_distance=None``, a watershed seed must stand this share of its object's inscribed radius above
#: the saddle to its neighbour (h-maxima of the distance map): a neck splits two particles when it is at
#: least a fifth narrower than the larger one, at any voxel size
SPLIT_DEPTH = 0.2


def segment_particles(volume, *, threshold: float | None = None, min_size: int | None = MIN_SIZE,
                      separate: bool = True, min_distance: int | None = 3) -> Particles:
    """Segment and label the particles of a reconstructed volume.

    Parameters
    ----------
    volume : array (ny, nz, nx)
        Reconstructed intensity (HAADF) or a total concentration.
    threshold : float, optional
        Intensity level; Otsu's level of the volume if omitted.
    min_size : int or None, default 27
        Objects with fewer voxels are removed (noise); None: the data-driven size, 27 or a twentieth of
        the largest piece's voxels if more (:func:`auto_min_size`, applied to whole connected objects so
        that the watershed pieces of one object stay together).
    separate : bool, default True
        Split touching particles by a watershed on the distance map.
    min_distance : int or None, default 3
        Smallest distance in voxels between two particle centres (watershed
        seeds); a neck narrower than the particles splits them. None: seeds from the data, the
        maxima of the distance map that stand :data:`SPLIT_DEPTH` of their object's inscribed radius
        above their surroundings, whatever the voxel size (a fixed distance over-splits large
        particles: 17 pieces of the QD1 dots at full resolution, 5 at half).

    Returns
    -------
    Particles
        Labels, threshold, sizes and border flags (module notes give the rule).

    Raises
    ------
    ChemtomoError
        For a non-3D or non-finite volume, or when nothing is left after the
        threshold and clean-up.
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    v = _volume(volume)
    if min_size is not None and not (isinstance(min_size, (int, np.integer)) and min_size >= 1):
        raise ChemtomoError(f"min_size must be a whole number of voxels >= 1 (or None: from the data), got {min_size!r}")
    if threshold is None and not v.max() > v.min():
        raise ChemtomoError(f"the volume is constant ({v.min():g}): no particle left to segment; check the input")
    level = otsu_threshold(v) if threshold is None else float(threshold)
    floor = MIN_SIZE if min_size is None else int(min_size)
    fg = ndimage.binary_fill_holes(v > level)
    labels, n = ndimage.label(fg)
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        fg = np.isin(labels, np.flatnonzero(sizes >= floor) + 1)
    if fg.all():
        raise ChemtomoError(f"every voxel is above the threshold {level:g}: no background; pass a higher threshold=")
    if not fg.any():
        raise ChemtomoError(f"no particle left at threshold {level:g} after removing objects below {floor} "
                            "voxels; check the volume, or pass threshold= or a smaller min_size=")
    coarse, _ = ndimage.label(fg)
    if separate:
        dist = ndimage.distance_transform_edt(fg)
        if min_distance is None:
            from skimage.morphology import h_maxima

            radius = np.concatenate([[1.0], np.asarray(ndimage.maximum(dist, coarse, np.arange(1, coarse.max() + 1)))])
            markers, _ = ndimage.label(h_maxima(dist / np.maximum(radius[coarse], 1e-9), SPLIT_DEPTH))
            markers = markers.astype(np.int32)
        else:
            peaks = peak_local_max(dist, min_distance=int(min_distance), labels=coarse, exclude_border=False)
            markers = np.zeros(fg.shape, np.int32)
            markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        labels = watershed(-dist, markers, mask=fg)
        if min_size is None:  # small pieces join their particle (below)
            labels = _merge_fragments(labels, auto_min_size(int(np.bincount(labels.ravel())[1:].max())))
        sizes = np.bincount(labels.ravel())
        labels[sizes[labels] < floor] = 0  # fragments the watershed cut off are noise as well
    else:
        labels = coarse
    if min_size is None and labels.any():
        # whole objects far smaller than the largest particle (piece) are noise blobs
        smallest = auto_min_size(int(np.bincount(labels.ravel())[1:].max()))
        objects = np.bincount(coarse.ravel())
        labels = np.where(objects[coarse] >= smallest, labels, 0)
    return particles_from_labels(labels, level)


def _merge_fragments(labels: np.ndarray, smallest: int) -> np.ndarray:
    """Join each watershed piece below `smallest` voxels to the piece of at least that size it touches most.

    A bump on a particle's surface seeds a piece of its own; it is part of that particle, not another
    one. Repeated until nothing changes (a chain of small pieces joins too); then the small pieces left,
    which form objects of small pieces only, are joined within each object (each to its most touched
    larger neighbour), so that such an object is kept or dropped whole by the size rule. Every join
    removes a label, so it ends.
    """
    out = labels.copy()
    for only_large in (True, False):
        while True:
            sizes = np.bincount(out.ravel())
            small = [k for k in np.flatnonzero((sizes > 0) & (sizes < smallest)) if k]
            boxes = ndimage.find_objects(out)
            changed = False
            for k in small:
                box = tuple(slice(max(sl.start - 1, 0), sl.stop + 1) for sl in boxes[k - 1])
                piece = out[box] == k
                if not piece.any():  # joined to a larger piece in this pass
                    continue
                near = out[box][ndimage.binary_dilation(piece) & ~piece]
                near = near[(near > 0) & (near != k)]
                if only_large:
                    near = near[sizes[near] >= smallest]
                else:  # to larger neighbours only: a join never goes both ways
                    near = near[(sizes[near] > sizes[k]) | ((sizes[near] == sizes[k]) & (near > k))]
                if near.size:
                    out[box][piece] = np.bincount(near).argmax()
                    changed = True
            if not changed:
                break
    return out


def particles_from_labels(labels, threshold: float) -> Particles:
    """:class:`Particles` from a label volume (0 background), relabelled 1..n by decreasing size."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ShapeError(f"labels must be a 3D array of non-negative integers, got {labels.dtype} {labels.shape}")
    if not labels.any():
        raise ChemtomoError("the label volume has no particle (all zero)")
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(sizes > 0)
    order = keep[np.argsort(-sizes[keep], kind="stable")]
    relabel = np.zeros(labels.max() + 1, np.int32)
    relabel[order + 1] = np.arange(1, len(order) + 1)
    labels = relabel[labels]
    border = _border_labels(labels)
    return Particles(labels, float(threshold), sizes[order],
                     np.array([k in border for k in range(1, len(order) + 1)]))


def element_masks(volumes: dict, particles: Particles, *, fraction: float = 0.5) -> dict:
    """Per element, the voxels of the particles where it makes up at least `fraction` of the local total.

    Parameters
    ----------
    volumes : dict of str to array (ny, nz, nx)
        Concentration (or count) volumes per element, on one grid.
    particles : Particles
        From :func:`segment_particles`.
    fraction : float, default 0.5
        Threshold on the element's share ``c_e / sum_k c_k``, in (0, 1].

    Returns
    -------
    dict of str to bool ndarray
    """
    if not volumes:
        raise ChemtomoError("element_masks needs at least one element volume")
    if not 0 < fraction <= 1:
        raise ChemtomoError(f"fraction must lie in (0, 1], got {fraction!r}")
    shape = particles.labels.shape
    vols = {}
    for name, v in volumes.items():
        arr = _volume(v, name)
        if arr.shape != shape:
            raise ShapeError(f"the {name} volume has shape {arr.shape} but the particle labels have {shape}; "
                             "give all volumes on one grid")
        if (arr < 0).any():
            arr = np.clip(arr, 0, None)
        vols[name] = arr
    total = sum(vols.values())
    inside = particles.mask() & (total > 0)
    return {name: inside & (v >= fraction * np.where(inside, total, np.inf)) for name, v in vols.items()}
