"""``--method auto``: candidate pipelines scored on the data itself, the best one run on all of it.

No ground truth is needed to score a candidate (a denoiser, a reconstruction method, its
iterations and weights):

* **count signals** (X-ray or EELS maps that hold whole counts) by binomial count splitting:
  every count goes to a training half with probability 1/2
  (:func:`chemtomo.physics.counts.split_counts`); the candidate reconstructs the training half
  (denoised first if it denoises) and its reprojection predicts the other half. Without HAADF, a
  semi-convergent candidate's iterations are chosen by held-out views as
  well (decision 36, :func:`_views_path`): it fits the training half without every 4th view (:func:`held_views`),
  and its volume along the run predicts all the counts of the views left out, scored by their
  Poisson deviance (:func:`poisson_deviance`); the counts at the measured angles cannot see the
  streaks that build up between them. With those iterations it then fits the training half of all
  the views, and the test half alike; the two volumes choose the filter width (decision 37,
  :func:`split_width`), which no prediction of counts can, as they sum the volume's noise along
  rays. Candidates are ranked against each other by the squared error per held-out count
  of that fit (:func:`squared_error`), which estimates the squared error of the reprojection that
  the NRMSE of a volume is made of (decision 30). With HAADF (its volume supplies what lies between
  the angles, the element volumes mostly their proportions), for regularised candidates and for
  maps with fewer than 6 views, the run is scored by the deviance of the held-out half instead;
* **image signals** (HAADF) and maps that are not counts (normalised or background-subtracted) by
  held-out views: every 4th tilt except the first and last is left out, the rest is
  reconstructed and the left-out views are predicted, scored by their squared error relative to
  their mean square (:func:`relative_error`); candidates :data:`IMAGE_CANDIDATES`, ``tv`` with the
  least-squares term and its weight chosen by held-out views of the kept ones (decision 40), kept for its
  final run. With 4 or 5 views only the middle one is left out (a
  rough choice, which the ranking's rule says); with fewer auto asks for a named method. With HAADF,
  element maps that are not counts also get the joint candidates (decision 40,
  :func:`score_joint_images`): fitted with the least-squares term to the HAADF and all those maps without
  the same views (the HAADF without its views at those angles), each map's left-out views predicted and
  ranked with the map's own candidates; without HAADF, two or more such maps get ``tnv`` alike
  (:data:`ALONE_IMAGE_CANDIDATES`).

Semi-convergent methods (SIRT, MLEM, CGLS, ...) are scored along their run, at 1, 2, 3, 4, 5, 7, 10,
14, ... iterations, which chooses their iteration count, and also with their volume
Gaussian-filtered (:data:`FILTERS`), which chooses the filter width of the conventional
filtered-SIRT pipeline; a run ends once its score rose at 3 checkpoints in a row, so a
hopeless or overfitting candidate costs little
(:data:`PATIENCE`, :data:`LOSS`), and at the latest at the last checkpoint (450 iterations); a
best score there is noted in the ranking (the optimum is then not interior). Regularised methods
(``tv``, the joint methods) converge: they run their default iterations, are scored at the end, and choose their own weight
by count splitting on the training half. Joint candidates (HAADF with the element maps; without
HAADF, two or more element maps coupled by directional TV guided by their summed counts) are
scored like per-signal ones, on the element counts; the HAADF volume is the image candidates'
winner. Without HAADF images at the maps' angles, two or more element maps also get
``sum-guided-unet+mlem``: the guided U-Net with the U-Net-denoised sum of all the maps as its guide
(decision 32). Each element then takes its best candidate, or the mean of the volumes of two or more of
its :data:`MEAN_OF` best where that mean predicts the held-out counts clearly better
(:func:`clearly_better` on the squared error, by :data:`MEAN_MARGIN`, one standard error).

With HAADF and two or more element maps at common angles, every per-signal count candidate, and every
joint one (decision 43), also comes with a ``+haadf`` variant (decision 31): the HAADF volume,
reconstructed on the scored slices by the image candidates' winner, is split among the candidate's
element volumes in their proportions (:func:`chemtomo.recon.channels.partition`, the HAADF weights by
:func:`chemtomo.recon.channels.mix_weights` from the training halves). The variant reuses the
candidate's run (a joint candidate's element volumes too); the Gaussian width of its fractions
(:data:`FILTERS`) is chosen by the same squared error, and it is ranked like any candidate. Its final
run splits the HAADF volume of all slices with the width it was scored with and weights fitted to all
the data: the width is a setting the score chose and is kept, like iterations; the weights are fitted
by a fixed rule and are fitted again, like the volumes.

Without HAADF, for two or more element maps at common angles, every per-signal count candidate comes
with a ``+sum`` variant instead (decisions 33 and 35): the volume split among the element volumes is that
of their summed counts (:func:`summed_guide`, then MLEM; :func:`summed_volume`), with weight 1 per element
(one count is one count). Its iterations and filter width are chosen by a second split of the summed
training halves, not by the held-out counts that score the variant. Its final run reconstructs the
summed counts of all the data with those settings. An element takes a pick holding a ``+sum`` variant
only where it beats its best pick without them by :data:`SUM_MARGIN` standard errors
(:func:`_per_element`).

Cost: candidates are scored on at most :data:`SCORE_SLICES` slices (blocks of
:data:`BLOCK` neighbouring slices spread along the tilt axis); the winner then runs on all
slices and all counts with the iterations it was chosen with (chosen on half the counts, so at
most a little on the smooth side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..core.data import Signal, TiltSeries, VolumeSet
from ..core.errors import ChemtomoError
from ..core.names import is_counts
from ..recon._common import whole_counts
from ..recon.selection import FEWEST_VIEWS, HOLDOUT, held_views, views_apart, views_to_hold
from .candidates import PARTITION, SUM_PARTITION, SUMMED, Candidate

#: iterations at which an iterative candidate is scored
CHECKPOINTS = (1, 2, 3, 4, 5, 7, 10, 14, 20, 28, 40, 56, 80, 112, 160, 224, 320, 450)
#: checkpoints in a row with a rising score that end a candidate's run ...
PATIENCE = 3
#: ... once the score has also lost this share of its improvement since the first checkpoint (clear overfitting,
#: not a wobble of a filtered score)
LOSS = 0.1
#: largest number of slices (along the tilt axis y) the candidates are scored on
SCORE_SLICES = 32
#: neighbouring slices per block of the scored slices
BLOCK = 8
#: each element may also take the mean of the volumes of two or more of its MEAN_OF best candidates ...
MEAN_OF = 4
#: ... where that mean beats the best one by MEAN_MARGIN standard errors (2 was tried: decision 38)
MEAN_MARGIN = 1.0
#: training time (minutes) of the view-synthesis network of a ``views+`` candidate, per element map
VIEWS_MINUTES = 1.0
#: share of the counts in the training half of a count split
TRAIN_SHARE = 0.5
#: standard errors by which an element's pick with ``+sum`` variants must beat its pick without them (decision 35)
SUM_MARGIN = 2.0
#: widths (voxels) of the Gaussian filter of the volume tried with every unregularised candidate (0: none)
FILTERS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
#: widths (voxels) from which :func:`split_width` starts; it goes on past the last while that one is the best
SPLIT_FILTERS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

#: candidates per kind of signal group (``denoiser+method`` or ``method``)
COUNT_CANDIDATES = ("mlem", "sirt", "gaussian+sirt", "gaussian+mlem", "unet+sirt", "unet+mlem", "tv")
JOINT_CANDIDATES = ("dtv", "tnv")
#: options of a joint candidate on element maps that are not counts (background-subtracted or normalised)
JOINT_IMAGE_OPTIONS = {"data_term": "l2"}
#: joint candidates for two or more such maps without HAADF (``dtv`` needs count maps for its guide there)
ALONE_IMAGE_CANDIDATES = ("tnv",)
#: count candidates whose denoiser takes the HAADF maps as a guide (when HAADF has images at the maps' angles)
GUIDED_CANDIDATES = ("guided-unet+mlem",)
#: count candidates guided by the element maps' summed counts, for two or more maps at common angles when no HAADF
#: images can guide them
SUM_GUIDED_CANDIDATES = ("sum-guided-unet+mlem",)
#: joint candidates for two or more element maps without HAADF (directional TV guided by the summed counts)
ALONE_CANDIDATES = ("dtv",)
IMAGE_CANDIDATES = ("sirt", "mlem", "cgls", "tv")


@dataclass
class Score:
    """A candidate's held-out score (lower is better) and what it chose."""

    candidate: str
    score: float
    iterations: dict = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    filters: dict = field(default_factory=dict)
    per_signal: dict = field(default_factory=dict)
    #: Poisson deviance per held-out count of each signal's prediction (reported, not ranked on)
    deviance: dict = field(default_factory=dict)
    #: held-out data predicted per signal (not recorded): averaged for a mean of candidates
    predictions: dict = field(default_factory=dict, repr=False)
    #: the volume per signal on the scored slices behind each prediction (not recorded): a ``+haadf`` variant's input
    volumes: dict = field(default_factory=dict, repr=False)
    #: a ``+haadf`` or ``+sum`` variant's split: what is split (``source``), the fraction filter width (voxels),
    #: the weights, and for ``+sum`` the iterations and filter width of the summed volume
    partition: dict = field(default_factory=dict)
    #: a regularised image candidate's weight per signal, chosen by held-out views while scored and kept for its run
    weights: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, candidate: str, start: float, err: Exception) -> "Score":
        """A candidate that failed with `err`, after running since `start` (``time.perf_counter()``)."""
        return cls(candidate, np.inf, {}, time.perf_counter() - start, f"failed: {err}")

    def record(self) -> dict:
        return {"candidate": self.candidate, "score": None if not np.isfinite(self.score) else round(self.score, 6),
                "iterations": self.iterations, "filter_voxels": self.filters,
                "per_signal": {k: round(v, 6) for k, v in self.per_signal.items()},
                "deviance": {k: round(v, 6) for k, v in self.deviance.items()}, "seconds": round(self.seconds, 2),
                **({"partition": self.partition} if self.partition else {}),
                **({"weight": {k: round(v, 6) for k, v in self.weights.items()}} if self.weights else {}),
                **({"note": self.note} if self.note else {})}


def deviance_terms(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Poisson deviance of each pixel, ``2 (t log(t / mu) - (t - mu))`` (float64)."""
    t = np.asarray(counts, dtype=np.float64)
    mu = np.maximum(np.asarray(expected, dtype=np.float64), 1e-6)
    return 2.0 * (np.where(t > 0, t * np.log(np.maximum(t, 1e-300) / mu), 0.0) - (t - mu))


def poisson_deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """Poisson deviance per count, ``2 sum(t log(t / mu) - (t - mu)) / sum(t)``; 0 for a perfect prediction.

    >>> round(poisson_deviance(np.array([2.0, 0.0]), np.array([2.0, 1e-9])), 4)
    0.0
    """
    return float(deviance_terms(counts, expected).sum() / max(float(np.sum(counts)), 1.0))


def squared_terms(counts: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Squared error of each pixel, ``(t - mu)^2`` (float64)."""
    return (np.asarray(expected, dtype=np.float64) - np.asarray(counts, dtype=np.float64)) ** 2


def squared_error(counts: np.ndarray, expected: np.ndarray) -> float:
    """Squared error per held-out count, ``sum((t - mu)^2) / sum(t)``.

    Held-out Poisson counts ``t`` of mean ``m`` give ``E[(t - mu)^2] = (m - mu)^2 + m``: the score is
    about 1 (the counts' own noise) plus the prediction's mean squared error per mean count, so it ranks
    predictions as their squared error against the noise-free projections does.

    >>> squared_error(np.array([2.0, 2.0]), np.array([2.0, 4.0]))
    1.0
    """
    return float(squared_terms(counts, expected).sum() / max(float(np.sum(counts)), 1.0))


def clearly_better(counts: np.ndarray, expected: np.ndarray, reference: np.ndarray, terms=squared_terms,
                   margin: float = 1.0) -> bool:
    """True if `expected` predicts the held-out `counts` better than `reference` by more than `margin` standard
    errors of the paired difference of their pixel `terms` (squared errors, or :func:`deviance_terms`; the
    one-standard-error rule: a more complex choice must win by more than the noise of the score)."""
    d = terms(counts, expected) - terms(counts, reference)
    return bool(-d.sum() > margin * np.sqrt(d.size * d.var()))


def _deviances(test_rows: dict, preds: dict) -> dict:
    """Poisson deviance per held-out count of each signal's prediction."""
    return {n: poisson_deviance(test_rows[n], p) for n, p in preds.items()}


def relative_error(measured: np.ndarray, predicted: np.ndarray) -> float:
    """Squared error of a prediction relative to the mean square of the measurement.

    >>> relative_error(np.array([1.0, 1.0]), np.array([1.0, 0.0]))
    0.5
    """
    m = np.asarray(measured, dtype=np.float64)
    return float(((np.asarray(predicted, dtype=np.float64) - m) ** 2).sum() / max((m ** 2).sum(), 1e-30))


def score_rows(ny: int, slices: int = SCORE_SLICES, block: int = BLOCK) -> np.ndarray:
    """The rows (slices along y) candidates are scored on: all if few, else blocks spread evenly.

    >>> score_rows(10).tolist() == list(range(10)), score_rows(100, 16, 8).tolist()[:3]
    (True, [31, 32, 33])
    """
    if ny <= slices:
        return np.arange(ny)
    n_blocks = max(1, slices // block)
    starts = np.linspace(0, ny - block, n_blocks + 2)[1:-1].round().astype(int)
    return np.unique(np.concatenate([np.arange(s, s + block) for s in starts]))


def _sub(series: TiltSeries, names, rows, data=None) -> TiltSeries:
    """The signals `names` restricted to `rows` (optionally with replacement data)."""
    sig = {}
    for n in names:
        arr = series[n].data if data is None or n not in data else data[n]
        sig[n] = Signal(np.ascontiguousarray(np.asarray(arr, dtype=np.float32)[:, rows]), series[n].angles,
                        series[n].units)
    return TiltSeries(sig, pixel_size=series.pixel_size)


class _PathScore:
    """Callback that scores the current volume at the checkpoints (unfiltered and Gaussian-filtered with each
    width of `filters`) and stops once the best score of a checkpoint kept rising.

    `predict(x)` gives the held-out data predicted from volume `x` and `loss(prediction)` its score; the best
    prediction is kept (:attr:`prediction`) so that candidates can be averaged after the runs.
    """

    def __init__(self, predict, loss, checkpoints, filters=(0.0,)):
        self.predict, self.loss, self.checkpoints, self.filters = predict, loss, set(checkpoints), tuple(filters)
        self.best, self.best_iter, self.best_filter, self.rises, self.last = np.inf, 0, 0.0, 0, np.inf
        self.first, self.prediction, self.volume = None, None, None

    def evaluate(self, x) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(best score, its filter width, its prediction, the filtered volume) of volume `x` over the widths."""
        from scipy.ndimage import gaussian_filter

        x = np.asarray(x, dtype=np.float32)
        best = (np.inf, 0.0, None, None)
        for w in self.filters:
            vol = gaussian_filter(x, w) if w > 0 else x
            pred = np.asarray(self.predict(vol), dtype=np.float32)
            value = self.loss(pred)
            if value < best[0] or best[2] is None:
                best = (value, w, pred, vol)
        return best

    def __call__(self, i, x) -> bool:
        it = i + 1
        if it not in self.checkpoints:
            return False
        value, width, pred, vol = self.evaluate(x)
        self.first = value if self.first is None else self.first
        if value < self.best:
            self.best, self.best_iter, self.best_filter, self.prediction, self.volume = value, it, width, pred, vol
        self.rises = self.rises + 1 if value > self.last else 0
        self.last = value
        return self.rises >= PATIENCE and value > self.best + LOSS * (self.first - self.best)


def _run_path(method: str, op, data, max_iterations: int, predict, loss, options: dict):
    """Run `method` scoring along its path; (best score, its iterations, its filter width in voxels, its
    prediction of the held-out data, its filtered volume).

    Semi-convergent methods are also scored with their volume filtered by each width of :data:`FILTERS`.
    """
    from ..recon.registry import METHODS

    m = METHODS[method]
    cb = _PathScore(predict, loss, (), FILTERS if m.stoppable else (0.0,))
    if m.iterations is None:  # direct
        value, width, pred, vol = cb.evaluate(m.function(op, data, **options))
        return value, 0, width, pred, vol
    # semi-convergent methods are scored along their run; regularised ones converge and are scored at the end
    points = [c for c in CHECKPOINTS if c <= max_iterations] if m.stoppable else [max_iterations]
    cb.checkpoints = set(points)
    vol = m.function(op, data, max(points), callback=[cb], **options)
    if cb.best_iter == 0:  # no checkpoint reached (a method that ends early by itself)
        value, width, pred, vol = cb.evaluate(vol)
        return value, max(points), width, pred, vol
    return cb.best, cb.best_iter, cb.best_filter, cb.prediction, cb.volume


def _max_iterations(method: str, given: int | None) -> int:
    """Most iterations of a scored run: `given`, else the last checkpoint for semi-convergent methods (their run
    ends once their score rose, :class:`_PathScore`) and the default for regularised ones, which converge."""
    from ..recon.registry import METHODS

    if given is not None:
        return int(given)
    m = METHODS[method]
    return int(CHECKPOINTS[-1] if m.stoppable else (m.iterations or 1))


def _at_edge(method: str, iterations: int, max_iterations: int) -> bool:
    """True if a semi-convergent run was best at its last checkpoint (more iterations might have scored better)."""
    from ..recon.registry import METHODS

    points = [c for c in CHECKPOINTS if c <= max_iterations]
    return bool(METHODS[method].stoppable and points and iterations >= points[-1])


def _edge_note(edges: dict) -> str:
    return "; ".join(f"{n}: best at the last checkpoint ({it} iterations), more might score better"
                     for n, it in edges.items())


def _denoised(train: dict, cand: Candidate, series: TiltSeries, summed=None) -> dict:
    """The training halves, denoised per projection map when the candidate denoises (guided: by the guide's
    images at each map's angles, or by `summed`, the training halves' :func:`summed_guide`)."""
    if cand.denoise is None:
        return train
    from ..denoise.registry import denoise
    from ..denoise.series import guide_images

    out = {}
    for n, d in train.items():
        options = ({} if cand.guide is None else {"guide": summed} if cand.guide == SUMMED else
                   {"guide": guide_images(series[cand.guide], series[n].angles)})
        out[n] = np.asarray(denoise(d, cand.denoise, **options), dtype=np.float32)
    return out


def summed_guide(maps) -> np.ndarray:
    """The guide of a ``sum-guided-`` candidate: the sum of the count stacks `maps` (all at the same angles),
    denoised by the U-Net (:func:`chemtomo.denoise.unet.unet`); float32 expected counts."""
    from ..denoise.unet import unet

    return np.asarray(unet(np.sum([np.asarray(m, dtype=np.float64) for m in maps], axis=0)), dtype=np.float32)


def summed_volume(op, summed, held_out=None, *, iterations=None, settings=None) -> tuple[np.ndarray, dict]:
    """The volume of the element maps' summed counts that a ``+sum`` candidate splits: MLEM of `summed` (the
    summed maps denoised, :func:`summed_guide`) through projector `op`.

    With `held_out` (the summed held-out counts at `op`'s angles and slices), MLEM's iterations and filter width
    are chosen along its run by their Poisson deviance (:func:`_run_path`, at most `iterations`); else `settings`
    (``total_iterations``, ``total_filter_voxels``, as returned before) fixes them. Returns (float32 volume,
    record ``{"source", "total_iterations", "total_filter_voxels"}``).
    """
    if held_out is not None:
        _, its, width, _, vol = _run_path("mlem", op, summed, _max_iterations("mlem", iterations), op,
                                          lambda pred: poisson_deviance(held_out, pred), {})
    else:
        its, width = int(settings["total_iterations"]), float(settings["total_filter_voxels"])
        vol = _settled("mlem", op, summed, its, width)
    return np.asarray(vol, dtype=np.float32), {"source": SUMMED, "total_iterations": int(its),
                                               "total_filter_voxels": float(width)}


def _same_angles(series: TiltSeries, names) -> bool:
    return all(np.array_equal(np.round(series[n].angles, 3), np.round(series[names[0]].angles, 3)) for n in names)


def views_step(angles) -> float:
    """Angle step (degrees) of a ``views+`` candidate: one synthesized view halfway between measured neighbours."""
    return float(np.median(np.diff(np.sort(np.asarray(angles, dtype=np.float64))))) / 2


def _filled(series: TiltSeries, names, thickness, progress=False) -> TiltSeries:
    """`series` with synthesized views halfway between the measured angles of each of `names` (the pipeline's
    views step, :func:`chemtomo.pipeline.steps.views`); the selection and the final run both fill this way."""
    from . import steps
    from .recipe import Views

    for n in names:
        series, _ = steps.views(series, Views(step=views_step(series[n].angles), minutes=VIEWS_MINUTES, signals=[n]),
                                thickness=thickness, progress=progress)
    return series


def partition_weights(series: TiltSeries, names, haadf_volume, rows, *, thickness, axis_offset) -> np.ndarray:
    """HAADF weight per element map of `names` (:func:`chemtomo.recon.channels.mix_weights`): from the HAADF
    images at the maps' angles (all slices) where the HAADF series has them, else from the reprojection there of
    `haadf_volume`, the HAADF volume of slices `rows`. An element of weight 0 keeps its own volume in a split;
    all of them 0 is an error."""
    from ..core.projector import Projector
    from ..denoise.series import guide_index
    from ..recon.channels import mix_weights

    angles = series[names[0]].angles
    idx = guide_index(series["HAADF"].angles, angles)
    if (idx >= 0).all():
        images = np.asarray(series["HAADF"].data, dtype=np.float32)[idx]
        maps = [np.asarray(series[n].data, dtype=np.float32) for n in names]
    else:
        sub = _sub(series, names, rows)
        images = np.asarray(Projector(sub.geometry(names[0], thickness, axis_offset=axis_offset))(haadf_volume))
        maps = [np.asarray(sub[n].data) for n in names]
    r = mix_weights(images, maps)
    if not (r > 0).any():
        raise ChemtomoError("no element map has a HAADF weight (the HAADF signal tracks none of their counts), so "
                            "the HAADF volume cannot be split among the elements")
    return r


def _partitioned(base: Score, names, haadf_volume, weights, ops: dict, test_rows: dict) -> tuple:
    """(total squared error, fraction filter, per signal, predictions) of `base`'s volumes sharing out
    `haadf_volume`, with the Gaussian width of :data:`FILTERS` of the fractions that predicts the held-out
    counts best."""
    from ..recon.channels import partition

    best = None
    for opt in ({"smooth_voxels": w} for w in FILTERS):
        parts = partition(haadf_volume, [base.volumes[n] for n in names], weights, smooth=opt["smooth_voxels"])
        preds = {n: np.asarray(ops[n](x), dtype=np.float32) for n, x in zip(names, parts)}
        per = {n: squared_error(test_rows[n], preds[n]) for n in names}
        if best is None or sum(per.values()) < best[0]:
            best = (sum(per.values()), opt, per, preds)
    return best


def score_counts(series: TiltSeries, names, candidates, *, thickness, axis_offset, iterations=None, rng=0,
                 haadf=None, log=None) -> list[Score]:
    """Score count candidates on the element maps `names` by count splitting (module notes).

    `haadf` is the HAADF volume on the scored slices (:func:`score_rows`) that ``+haadf`` candidates split;
    ``+sum`` candidates split the volume of the summed counts (:func:`summed_volume` of the training halves).
    """
    from ..core.projector import Projector
    from ..physics.counts import split_counts
    from ..recon.registry import METHODS

    gen = np.random.default_rng(rng)
    train, test = {}, {}
    for n in names:
        a, b = split_counts(np.rint(series[n].data).astype(np.int64), TRAIN_SHARE, rng=gen)
        train[n], test[n] = a.astype(np.float32), b.astype(np.float32)
    rows = score_rows(series.image_shape[0])
    test_rows = {n: t[:, rows] for n, t in test.items()}
    # the training halves' summed guide, once for the sum-guided and +sum candidates
    summed = (summed_guide(list(train.values()))
              if any(c.guide == SUMMED or c.partition == SUM_PARTITION for c in candidates) else None)
    # the test halves' summed guide, for the filter width of sum-guided candidates by split volumes (decision 37),
    # only where _score_alone takes that width
    summed_test = (summed_guide(list(test.values())) if any(
        c.guide == SUMMED and _by_views(c, series, series[n].data.shape[0]) for c in candidates for n in names)
        else None)
    denoised = {}  # training halves per (denoiser, guide) (None: as they are), shared by the candidates
    filled = {}  # their scored rows with synthesized views, per (denoiser, guide), shared by the views+ candidates
    alone = {}  # per-signal candidate -> its Score, shared with its +haadf variant
    totals = {}  # split source -> (its volume on the scored slices, weights, record), for the +haadf/+sum variants
    scores = []
    for cand in candidates:
        start = time.perf_counter()
        m = METHODS[cand.method]
        try:
            if m.joint and not _applies(cand, "counts", series, names):
                continue
            base = Candidate.parse(cand.base) if cand.partition else cand
            if base.name not in alone:
                alone[base.name] = (
                    _score_joint(series, names, base, train, test_rows, rows, thickness=thickness,
                                 axis_offset=axis_offset) if m.joint else
                    _score_alone(series, names, base, (train, test), test_rows, rows, denoised, filled,
                                 thickness=thickness, axis_offset=axis_offset, iterations=iterations,
                                 summed=(summed, summed_test)))
            score = alone[base.name]
            if not cand.partition:
                scores.append(score)
            else:
                if cand.partition not in totals:
                    if cand.partition == PARTITION:
                        if haadf is None:
                            raise ChemtomoError("+haadf candidates need a HAADF signal")
                        # weights from the training halves, all slices where the HAADF images allow
                        halves = _sub(series, ["HAADF"] + list(names), np.arange(series.image_shape[0]), data=train)
                        w = partition_weights(halves, names, haadf, rows, thickness=thickness,
                                              axis_offset=axis_offset)
                        totals[PARTITION] = (haadf, w, {"source": "HAADF"})
                    else:  # the training halves summed and denoised on all slices, then cut to the scored ones
                        op = Projector(_sub(series, [names[0]], rows).geometry(names[0], thickness,
                                                                              axis_offset=axis_offset))
                        # its settings from a split of the summed training halves, not from the held-out counts
                        # that score the variant: tuned on those, it would predict them too well
                        inner, check = split_counts(np.rint(sum(train[n] for n in names)).astype(np.int64), 0.5,
                                                    rng=gen)
                        _, settings = summed_volume(op, summed_guide([inner])[:, rows], check[:, rows].astype(np.float32),
                                                    iterations=iterations)
                        vol, info = summed_volume(op, summed[:, rows], settings=settings)
                        totals[SUM_PARTITION] = (vol, np.ones(len(names)), info)
                volume, weights, info = totals[cand.partition]
                sub = _sub(series, list(names), rows, data=train)
                ops = {n: Projector(sub.geometry(n, thickness, axis_offset=axis_offset)) for n in names}
                total, fractions, per, preds = _partitioned(score, names, volume, weights, ops, test_rows)
                scores.append(Score(cand.name, total, dict(score.iterations), time.perf_counter() - start, score.note,
                                    filters=dict(score.filters), per_signal=per, predictions=preds,
                                    deviance=_deviances(test_rows, preds),
                                    partition=info | fractions | {"weights": {n: round(float(w), 6)
                                                                              for n, w in zip(names, weights)}}))
        except ChemtomoError as err:
            scores.append(Score.failed(cand.name, start, err))
        if log is not None:
            s = scores[-1]
            log(f"auto: {s.candidate}: held-out squared error per count {s.score:.5g} ({s.seconds:.1f} s)")
    return scores, test_rows


def _score_joint(series, names, cand: Candidate, train, test_rows, rows, *, thickness, axis_offset) -> Score:
    """Score a joint count candidate: the training halves of the maps `names` (with the HAADF, if any) on the scored
    `rows`, fitted together; its volumes are kept for a ``+haadf`` variant."""
    from ..core.projector import Projector
    from ..recon.series import reconstruct_series

    start = time.perf_counter()
    sub = _sub(series, [n for n in ("HAADF",) if n in series] + list(names), rows, data=train)
    vs = reconstruct_series(sub, cand.method, thickness=thickness, axis_offset=axis_offset)
    per, preds = {}, {}
    for n in names:
        op = Projector(sub.geometry(n, thickness, axis_offset=axis_offset))
        preds[n] = np.asarray(op(vs[n]), dtype=np.float32)
        per[n] = squared_error(test_rows[n], preds[n])
    return Score(cand.name, sum(per.values()), {n: vs.provenance.get("iterations") for n in names},
                 time.perf_counter() - start, per_signal=per, predictions=preds, deviance=_deviances(test_rows, preds),
                 volumes={n: np.asarray(vs[n], dtype=np.float32) for n in names})


def _score_alone(series, names, cand: Candidate, halves, test_rows, rows, denoised, filled, *, thickness,
                 axis_offset, iterations, summed=(None, None)) -> Score:
    """Score a per-signal count candidate: each map reconstructed from its (denoised) training half.

    `halves` are the (training, test) halves of all the maps, `summed` their summed guides (for a sum-guided
    candidate), `denoised` and `filled` caches of the fitted halves shared by the candidates.
    """
    from ..core.projector import Projector
    from ..recon.registry import METHODS

    start = time.perf_counter()
    m = METHODS[cand.method]
    key = (cand.denoise, cand.guide)
    if key not in denoised:
        denoised[key] = _denoised(halves[0], cand, series, summed[0])
    sub = _sub(series, names, rows, data=denoised[key])
    if cand.views and key not in filled:
        filled[key] = _filled(sub, names, thickness)
    fit = filled[key] if cand.views else sub
    total, its, widths, per, preds, devs, vols, edges = 0.0, {}, {}, {}, {}, {}, {}, {}
    most = _max_iterations(cand.method, iterations)
    raw = cand.denoise is None and not cand.views  # the fitted data are counts
    options = {"data_term": "kl"} if cand.method == "tv" and raw else {}
    for n in names:
        op = Projector(sub.geometry(n, thickness, axis_offset=axis_offset))  # the measured angles
        fit_op = Projector(fit.geometry(n, thickness, axis_offset=axis_offset)) if cand.views else op
        d = _as_fitted(m, fit[n].data)
        # without HAADF, iterations by the held-out views' counts (decision 36), the filter width by the volumes
        # of the two halves (decision 37)
        if _by_views(cand, series, d.shape[0]):
            held = held_views(d.shape[0])
            it, _ = _views_path(cand.method, op.geometry, d, held, np.asarray(series[n].data)[:, rows], most)
            if ("test",) + key not in denoised:
                denoised[("test",) + key] = _denoised(halves[1], cand, series, summed[1])
            b = _as_fitted(m, np.asarray(denoised[("test",) + key][n], dtype=np.float32)[:, rows])
            a = _settled(cand.method, op, d, it, 0.0)
            width = split_width(a, _settled(cand.method, op, b, it, 0.0), rows)
            vol = _blur(a, width, rows)
            preds[n], vols[n] = np.asarray(op(vol), dtype=np.float32), vol
            devs[n] = poisson_deviance(test_rows[n], preds[n])
        else:
            devs[n], it, width, preds[n], vols[n] = _run_path(  # stopped and filtered by the deviance
                cand.method, fit_op, d, most, op, lambda pred, _t=test_rows[n]: poisson_deviance(_t, pred), options)
        value = squared_error(test_rows[n], preds[n])  # ranked by the squared error
        total += value
        its[n], widths[n], per[n] = it, width, value
        if _at_edge(cand.method, it, most):
            edges[n] = it
    return Score(cand.name, total, its, time.perf_counter() - start, _edge_note(edges), filters=widths,
                 per_signal=per, predictions=preds, deviance=devs, volumes=vols)


def _by_views(cand: Candidate, series: TiltSeries, n_views: int) -> bool:
    """Whether count candidate `cand` on a map of `n_views` views takes its iterations from held-out views and its
    filter width from the volumes of both halves (decisions 36 and 37): a semi-convergent method fitted to the
    measured views, without HAADF in `series`, with views to leave out."""
    from ..recon.registry import METHODS

    return (METHODS[cand.method].stoppable and not cand.views and "HAADF" not in series
            and held_views(n_views).size > 0)


def _as_fitted(method, data) -> np.ndarray:
    """`data` as `method` (a registry entry) fits it: negative values set to 0 for a count method."""
    d = np.asarray(data)
    return np.maximum(d, 0) if method.counts and (d < 0).any() else d


def _views_path(method: str, geometry, train, held, counts, max_iterations: int) -> tuple[int, float]:
    """(iterations, filter width) of a count candidate's run chosen by held-out views (decision 36).

    `method` fits the training half `train` (as fitted: denoised or not; its views those of `geometry`, a
    :class:`~chemtomo.core.geometry.TiltGeometry`) at the views that are not `held`; its
    volume along the run, scaled by 1/:data:`TRAIN_SHARE`, predicts all the measured `counts` of the `held`
    views, scored by their Poisson deviance. The counts at the measured angles cannot see the streaks that
    build up between them; views left out can.
    """
    from ..core.projector import Projector

    kept = np.setdiff1d(np.arange(train.shape[0]), held)
    measured = np.asarray(counts, dtype=np.float32)[held]
    _, it, width, _, _ = _run_path(method, Projector(geometry[kept]), np.ascontiguousarray(train[kept]),
                                   max_iterations, Projector(geometry[held]),
                                   lambda pred: poisson_deviance(measured, pred / TRAIN_SHARE), {})
    return it, width


def _blur(vol: np.ndarray, width: float, rows) -> np.ndarray:
    """`vol` (its slices those of `rows` along y) Gaussian-filtered by `width` voxels within each run of
    neighbouring slices."""
    from scipy.ndimage import gaussian_filter

    if width <= 0:
        return vol
    cuts = np.flatnonzero(np.diff(np.asarray(rows)) > 1) + 1
    return np.concatenate([gaussian_filter(v, width) for v in np.split(vol, cuts, axis=0)], axis=0)


def split_width(a: np.ndarray, b: np.ndarray, rows=None, widths=SPLIT_FILTERS) -> float:
    """Gaussian filter width (voxels) of the volume of all the counts, from volumes `a` and `b` reconstructed
    alike from the two halves of a count split (decision 37).

    With ``m = (a + b) / 2`` (noise as in the volume of all the counts, for a linear reconstruction) and
    ``d = a - b`` (noise only, four times the covariance of m's), ``|m - G m|^2 + d.G d / 2`` estimates the
    squared error of the filtered ``G m`` against the noise-free volume up to a constant (Stein's unbiased
    risk estimate with the noise covariance taken from ``d``). Unlike held-out counts, which sum the
    volume along rays, it sees the noise of every voxel. The widths go on past the last (x1.5) while the
    last is the best, up to half the volume's smallest size. `rows`: the slices of `a` and `b` along y
    (the filter stays within runs of neighbouring ones).

    >>> rng = np.random.default_rng(0); s = np.zeros((8, 16, 16)); s[2:6, 4:12, 4:12] = 1
    >>> split_width(s + rng.normal(0, .5, s.shape), s + rng.normal(0, .5, s.shape)) > 0
    True
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rows = np.arange(a.shape[0]) if rows is None else rows
    m, d = (a + b) / 2, a - b

    def risk(w):
        return float(np.sum((m - _blur(m, w, rows)) ** 2) + np.sum(d * _blur(d, w, rows)) / 2)

    widths = list(widths)
    values = [risk(w) for w in widths]
    while int(np.argmin(values)) == len(widths) - 1 and widths[-1] * 1.5 <= min(a.shape) / 2:
        widths.append(widths[-1] * 1.5)
        values.append(risk(widths[-1]))
    return float(widths[int(np.argmin(values))])


def _settled(method: str, op, data, iterations: int, width: float) -> np.ndarray:
    """`method`'s volume after `iterations`, Gaussian-filtered with `width` voxels (0: not)."""
    from scipy.ndimage import gaussian_filter

    from ..recon.registry import METHODS

    vol = np.asarray(METHODS[method].function(op, data, iterations), dtype=np.float32)
    return gaussian_filter(vol, width) if width > 0 else vol


def _image_held(n_views: int, name: str) -> np.ndarray:
    """The views of image signal `name` left out to score it: :func:`held_views`, or the middle one of 4 or 5 (a
    choice on little evidence, which the ranking's rule says); below 4 an error that says what to do instead."""
    return views_to_hold(n_views, f"signal {name}", "name a method instead, e.g. --method sirt",
                         held=held_views(n_views))


def score_joint_images(series: TiltSeries, names, candidates, *, thickness, axis_offset, log=None) -> list[Score]:
    """Score joint candidates on element maps that are not counts (`names`), with HAADF if there is one, by
    held-out views.

    Each map leaves out the views :func:`score_images` leaves out (and the HAADF its views at those angles); the
    candidate reconstructs the rest with the least-squares data term (its weight by held-out views of those,
    :mod:`chemtomo.recon.multimodal`), and its element volumes predict the left-out views, scored per map by
    :func:`relative_error`, as the map's own candidates are.
    """
    from ..core.projector import Projector
    from ..recon.series import reconstruct_series

    rows = score_rows(series.image_shape[0])
    held = {n: _image_held(series[n].data.shape[0], n) for n in names}
    angles = np.concatenate([series[n].angles[held[n]] for n in names])
    signals, keep_h = {}, np.array([0])
    if "HAADF" in series:
        h = series["HAADF"]
        keep_h = views_apart(h.angles, angles)
        signals["HAADF"] = Signal(np.ascontiguousarray(h.data[keep_h][:, rows], dtype=np.float32), h.angles[keep_h],
                                  h.units)
    measured, ops = {}, {}
    for n in names:
        kept = np.setdiff1d(np.arange(series[n].data.shape[0]), held[n])
        data = np.asarray(series[n].data, dtype=np.float32)[:, rows]
        signals[n] = Signal(np.ascontiguousarray(data[kept]), series[n].angles[kept], series[n].units)
        measured[n] = data[held[n]]
        one = TiltSeries({n: Signal(data[held[n]], series[n].angles[held[n]])}, pixel_size=series.pixel_size)
        ops[n] = Projector(one.geometry(n, thickness, axis_offset=axis_offset))
    train = TiltSeries(signals, pixel_size=series.pixel_size)
    scores = []
    for cand in candidates:
        start = time.perf_counter()
        try:
            if keep_h.size == 0:
                raise ChemtomoError("every HAADF view lies at a left-out angle of the maps")
            vs = reconstruct_series(train, cand.method, thickness=thickness, axis_offset=axis_offset,
                                    options=JOINT_IMAGE_OPTIONS)
            preds = {n: np.asarray(ops[n](np.asarray(vs[n])), dtype=np.float32) for n in names}
            per = {n: relative_error(measured[n], preds[n]) for n in names}
            scores.append(Score(cand.name, sum(per.values()), {n: vs.provenance.get("iterations") for n in names},
                                time.perf_counter() - start, per_signal=per, predictions=preds))
        except ChemtomoError as err:
            scores.append(Score.failed(cand.name, start, err))
        if log is not None:
            s = scores[-1]
            log(f"auto: {', '.join(names)}: {s.candidate}: held-out view error {s.score:.5g} ({s.seconds:.1f} s)")
    return scores


def score_images(series: TiltSeries, name: str, candidates, *, thickness, axis_offset, iterations=None,
                 log=None) -> list[Score]:
    """Score candidates on one signal by held-out views (module notes)."""
    from ..core.geometry import TiltGeometry
    from ..core.projector import Projector
    from ..recon.registry import METHODS
    from ..recon.tv import views_weight

    sig = series[name]
    n_views = sig.data.shape[0]
    held = _image_held(n_views, name)
    kept = np.setdiff1d(np.arange(n_views), held)
    rows = score_rows(series.image_shape[0])
    data = np.asarray(sig.data, dtype=np.float32)[:, rows]
    nu = data.shape[2]
    nz = nu if thickness is None else int(thickness)
    op = Projector(TiltGeometry(sig.angles[kept], (rows.size, nz, nu), nu, axis_offset))
    op_held = Projector(TiltGeometry(sig.angles[held], (rows.size, nz, nu), nu, axis_offset))
    measured = data[held]
    scores = []
    for cand in candidates:
        start = time.perf_counter()
        m = METHODS[cand.method]
        if m.joint or cand.denoise is not None or (m.counts and (data < 0).any()):
            continue
        if cand.method == "tv" and kept.size < FEWEST_VIEWS:  # too few kept views to choose its weight by
            continue
        try:
            most = _max_iterations(cand.method, iterations)
            options, weights = {}, {}
            if cand.method == "tv":  # least squares, its weight by held-out views of the kept ones, kept for the run
                weights[name], _, _ = views_weight(op, data[kept], most)
                options = {"data_term": "l2", "weight": weights[name]}
            value, it, width, _, _ = _run_path(cand.method, op, data[kept], most, op_held,
                                            lambda pred: relative_error(measured, pred), options)
            note = _edge_note({name: it}) if _at_edge(cand.method, it, most) else ""
            scores.append(Score(cand.name, value, {name: it}, time.perf_counter() - start, note,
                                filters={name: width}, weights=weights))
        except ChemtomoError as err:
            scores.append(Score.failed(cand.name, start, err))
        if log is not None:
            s = scores[-1]
            log(f"auto: {name}: {s.candidate}: held-out view error {s.score:.5g} ({s.seconds:.1f} s)")
    return scores


def groups(series: TiltSeries) -> dict:
    """``{"counts": [element maps with whole counts], "views": [every other signal], "maps": [the element maps
    among those (not counts: background-subtracted or normalised)]}``."""
    counts = [n for n in series.names if n != "HAADF" and is_counts(n) and whole_counts(series[n].data)]
    views = [n for n in series.names if n not in counts]
    return {"counts": counts, "views": views, "maps": [n for n in views if n != "HAADF" and is_counts(n)]}


def default_candidates(series: TiltSeries) -> dict:
    """The candidates auto tries for each group of `series` (module notes)."""
    g = groups(series)
    joint = JOINT_CANDIDATES if "HAADF" in series else ALONE_CANDIDATES if len(g["counts"]) >= 2 else ()
    guided = [c for c in map(Candidate.parse, GUIDED_CANDIDATES) if _applies(c, "counts", series, g["counts"])]
    if not guided:
        guided = [c for c in map(Candidate.parse, SUM_GUIDED_CANDIDATES) if _applies(c, "counts", series, g["counts"])]
    alone = [Candidate.parse(c) for c in COUNT_CANDIDATES] + guided
    # +haadf variants with HAADF; +sum variants without it, taken only by a clear margin (decision 35)
    kind = PARTITION if "HAADF" in series else SUM_PARTITION
    split = [Candidate.parse(f"{c.name}+{kind}") for c in alone]
    if kind == PARTITION:  # the joint methods' element volumes share out the HAADF volume too (decision 43)
        split += [Candidate.parse(f"{c}+{kind}") for c in joint]
    split = [c for c in split if _applies(c, "counts", series, g["counts"])]
    counts = alone + [Candidate.parse(c) for c in joint if g["counts"]] + split
    maps = ([Candidate.parse(c) for c in JOINT_CANDIDATES] if "HAADF" in series and g["maps"] else
            [Candidate.parse(c) for c in ALONE_IMAGE_CANDIDATES] if len(g["maps"]) >= 2 else [])
    return {"counts": counts, "views": [Candidate.parse(c) for c in IMAGE_CANDIDATES], "maps": maps}


def select(series: TiltSeries, *, thickness=None, axis_offset=0.0, iterations=None, candidates=None, rng=0,
           log=None) -> dict:
    """Score the candidates of every signal group; the ranking and the winner of each group.

    Parameters
    ----------
    series : TiltSeries
        Never modified.
    thickness, axis_offset : as for :func:`chemtomo.recon.series.reconstruct_series`
    iterations : int, optional
        Most iterations of an iterative candidate (default: 450 for semi-convergent ones, which stop once
        their held-out score rose; the default for regularised ones).
    candidates : sequence of str, optional
        Restrict the candidates (``["tv", "dtv"]``); each group keeps those that apply to it.
    rng : int, default 0
        Seed of the count split: the same seed gives the same choice.
    log : callable(str), optional
        One line per scored candidate.

    Returns
    -------
    dict
        ``{"counts": {"signals", "rule", "ranking", "chosen"}, "views": {name: {...}}, "seconds"}``:
        each ranking is a list of :meth:`Score.record` dicts, best first.
    """
    start = time.perf_counter()
    defaults = default_candidates(series)
    if candidates is not None:
        chosen = [Candidate.parse(c) for c in candidates]
        if not chosen:
            raise ChemtomoError("--candidates is empty; name at least one, e.g. --candidates tv,dtv")
        g = groups(series)
        pick = {k: [c for c in chosen if _applies(c, k, series, g["counts"])] for k in defaults}
    else:
        pick = defaults
    g = groups(series)
    out: dict = {"views": {}}
    for name in g["views"]:
        # named candidates that cannot score image signals (joint, denoised) leave them to the image defaults
        views = pick["views"] or defaults["views"]
        ranking = sorted(score_images(series, name, views, thickness=thickness, axis_offset=axis_offset,
                                      iterations=iterations, log=log), key=lambda s: s.score)
        if not ranking:
            raise ChemtomoError(f"no candidate applies to {name}; add one such as sirt to --candidates")
        n_views = series[name].data.shape[0]
        rough = "" if held_views(n_views).size else f"; one view of {n_views} left out (the middle one): a rough choice"
        out["views"][name] = {"rule": "held-out views: squared error relative to their mean square" + rough,
                              "held_out_every": HOLDOUT, "ranking": [s.record() for s in ranking],
                              "chosen": ranking[0].record()}
    if g["maps"] and pick["maps"]:  # joint candidates on HAADF and the maps, ranked with each map's own
        joint = score_joint_images(series, g["maps"], pick["maps"], thickness=thickness, axis_offset=axis_offset,
                                   log=log)
        for name in g["maps"]:
            rec = out["views"][name]
            entries = [s.record() | {"score": round(s.per_signal[name], 6) if name in s.per_signal else None,
                                     "iterations": {name: s.iterations.get(name)},
                                     "joint": {"signals": [n for n in ("HAADF",) if n in series] + g["maps"],
                                               "options": JOINT_IMAGE_OPTIONS}}
                       for s in joint]
            rec["ranking"] = sorted(rec["ranking"] + entries,
                                    key=lambda r: np.inf if r["score"] is None else r["score"])
            rec["chosen"] = rec["ranking"][0]
            rec["rule"] += (f"; joint candidates ({', '.join(c.name for c in pick['maps'])}) fit "
                            f"{'HAADF and ' if 'HAADF' in series else ''}{', '.join(g['maps'])} together without "
                            "those views")
    if g["counts"]:
        if not pick["counts"]:
            why = (" (guided candidates need a HAADF signal with an image at every angle of the maps)"
                   if candidates is not None and any(c.guide == "HAADF" for c in chosen) else
                   " (sum-guided candidates need two or more count maps at the same angles)"
                   if candidates is not None and any(c.guide == SUMMED for c in chosen) else
                   f" (+{PARTITION} candidates need a HAADF signal and two or more maps at the same angles)"
                   if candidates is not None and any(c.partition == PARTITION for c in chosen) else
                   f" (+{SUM_PARTITION} candidates need two or more count maps at the same angles)"
                   if candidates is not None and any(c.partition == SUM_PARTITION for c in chosen) else "")
            raise ChemtomoError(f"no candidate applies to the count signals {', '.join(g['counts'])}{why}; add one "
                                "such as mlem or gaussian+sirt to --candidates")
        haadf = None
        if any(c.partition == PARTITION for c in pick["counts"]):
            rows = score_rows(series.image_shape[0])
            haadf, _ = _volume(_sub(series, ["HAADF"], rows), "HAADF", _members(out["views"]["HAADF"]["chosen"],
                               "HAADF")[0], thickness=thickness, axis_offset=axis_offset)
        scores, test_rows = score_counts(series, g["counts"], pick["counts"], thickness=thickness,
                                         axis_offset=axis_offset, iterations=iterations, rng=rng, haadf=haadf, log=log)
        records, entry = [s.record() for s in scores], _per_element(scores, g["counts"], test_rows)
        chosen = None
        if entry and "sum_margin" in entry[0]:  # the +sum rule's choice, even where a +sum candidate scores lower
            chosen = next((r for r in records if r["candidate"] == entry[0]["candidate"]), entry[0])
            entry = [] if chosen is not entry[0] else entry
        ranking = sorted(records + entry, key=lambda r: (r is not chosen, np.inf if r["score"] is None else r["score"]))
        runs = ("iterations and filters by the Poisson deviance of the held-out half" if "HAADF" in series else
                "iterations by the Poisson deviance of held-out views, filter widths by the volumes of both halves "
                "(below 6 views both by the held-out half's deviance)")
        out["counts"] = {"signals": g["counts"], "rule": f"count splitting: squared error per held-out count; {runs}"
                         + (f"; +sum variants only where {SUM_MARGIN:g} standard errors better" if chosen else ""),
                         "ranking": ranking, "chosen": ranking[0]}
    out = {k: out[k] for k in ("counts", "views") if k in out}  # counts first, as before
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def _members(record: dict, name: str) -> list[dict]:
    """The pipelines whose volumes signal `name` takes under ranking entry `record` (their mean if several).

    A ``+haadf`` or ``+sum`` member also holds ``partition``: its split as scored (:attr:`Score.partition`), and
    the iterations and filter widths of every element map, which it needs all of."""
    split = record.get("partition")
    return record.get("members", {}).get(name) or [
        {"candidate": record["candidate"], "iterations": record["iterations"].get(name),
         "filter_voxels": record.get("filter_voxels", {}).get(name, 0.0),
         **({"weight": record["weight"][name]} if name in record.get("weight", {}) else {}),
         **({"partition": split | {"iterations": record["iterations"], "filter_voxels": record["filter_voxels"]}}
            if split else {})}]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two predictions are the same up to float rounding (e.g. SIRT and MLEM where all views coincide)."""
    return a.shape == b.shape and bool(np.abs(a - b).max() <= 1e-5 * max(float(np.abs(a).max()), 1e-30))


def _pick(scores: list[Score], n: str, test_rows: dict) -> tuple:
    """(members, squared error, prediction) of element `n`'s best pipeline among `scores`: its best candidate, or
    the mean of two or more of its :data:`MEAN_OF` best where that mean is :func:`clearly_better`; candidates
    with the same prediction count once among those (decision 38)."""
    from itertools import combinations

    ranked = sorted(scores, key=lambda s: s.per_signal[n])
    options = [((ranked[0],), ranked[0].per_signal[n], ranked[0].predictions[n])]
    top = []  # the MEAN_OF best with distinct predictions: a duplicate would weigh its pipeline twice in a mean
    for s in ranked:
        if len(top) == MEAN_OF:
            break
        if not any(_same(s.predictions[n], t.predictions[n]) for t in top):
            top.append(s)
    for k in range(2, len(top) + 1):
        for group in combinations(top, k):
            mean = np.mean([s.predictions[n] for s in group], axis=0)
            if clearly_better(test_rows[n], mean, ranked[0].predictions[n], margin=MEAN_MARGIN):
                options.append((group, squared_error(test_rows[n], mean), mean))
    return min(options, key=lambda o: o[1])


def _per_element(scores: list[Score], names, test_rows: dict) -> list[dict]:
    """Each element's best pipeline, as one more ranking entry when that is not one candidate for all.

    An element takes its best candidate, or the mean of the volumes of two or more of its :data:`MEAN_OF` best
    candidates where that mean is :func:`clearly_better` (:func:`_pick`). It is scored like them: projection is
    linear, so the mean volume predicts the mean of their predictions of the held-out counts. With ``+sum``
    variants among the candidates, an element takes a pick that holds one only where it predicts the held-out
    counts better than its pick without them by :data:`SUM_MARGIN` standard errors (decision 35); the entry then
    says so (``sum_margin``) and is the choice even where a ``+sum`` candidate alone scores lower. The entry lists
    each element's ``members``.
    """
    ok = [s for s in scores if all(np.isfinite(s.per_signal.get(n, np.inf)) and n in s.predictions for n in names)]
    if not ok:
        return []

    def summed(pick):
        return any(Candidate.parse(s.candidate).partition == SUM_PARTITION for s in pick[0])

    plain = [s for s in ok if not summed(((s,),))]
    gated = bool(plain) and len(plain) < len(ok)
    picks = {}
    for n in names:
        picks[n] = _pick(plain if gated else ok, n, test_rows)
        if gated:
            every = _pick(ok, n, test_rows)
            if summed(every) and clearly_better(test_rows[n], every[2], picks[n][2], margin=SUM_MARGIN):
                picks[n] = every
    labels = {n: " & ".join(s.candidate for s in p[0]) for n, p in picks.items()}
    if not gated and len(set(labels.values())) == 1 and len(picks[names[0]][0]) == 1:
        return []  # one candidate for every element: it is in the ranking already
    members = {n: [_members(s.record(), n)[0] for s in p[0]] for n, p in picks.items()}
    name = labels[names[0]] if len(set(labels.values())) == 1 else "best per element"
    return [{"candidate": name, "score": round(sum(p[1] for p in picks.values()), 6),
             "iterations": {n: "/".join(str(m["iterations"]) for m in members[n]) for n in names},
             "filter_voxels": {n: max(m["filter_voxels"] or 0.0 for m in members[n]) for n in names},
             "per_signal": {n: round(p[1], 6) for n, p in picks.items()},
             "deviance": {n: round(poisson_deviance(test_rows[n], p[2]), 6) for n, p in picks.items()},
             "per_signal_candidate": labels, "members": members, "seconds": 0.0,
             **({"sum_margin": SUM_MARGIN} if gated else {})}]


def _applies(cand: Candidate, group: str, series: TiltSeries, counts=()) -> bool:
    """Whether `cand` can score the `group` of `series` (joint: with HAADF, or alone on two or more `counts` maps;
    guided: with a guide that has images at every count map's angles; ``+haadf``: with HAADF and two or more
    `counts` maps at the same angles)."""
    from ..denoise.series import guide_index
    from ..recon.registry import METHODS

    m = METHODS[cand.method]
    if group == "views":
        return not m.joint and cand.denoise is None and not cand.views and not cand.partition
    if group == "maps":  # joint candidates on element maps that are not counts, with HAADF or two or more alone
        maps = groups(series)["maps"]
        return (m.joint and not cand.partition and bool(maps)
                and ("HAADF" in series or (m.alone and cand.method != "dtv" and len(maps) >= 2)))
    if cand.partition == PARTITION and not ("HAADF" in series and len(counts) >= 2 and _same_angles(series, counts)):
        return False
    if cand.partition == SUM_PARTITION and not (len(counts) >= 2 and _same_angles(series, counts)):
        return False
    if cand.guide == SUMMED:
        return len(counts) >= 2 and _same_angles(series, counts)
    if cand.guide is not None:
        return cand.guide in series and all((guide_index(series[cand.guide].angles, series[n].angles) >= 0).all()
                                            for n in counts)
    return not m.joint or "HAADF" in series or (m.alone and len(counts) >= 2)


def _volume(series: TiltSeries, n: str, m: dict, *, thickness, axis_offset, progress=None) -> tuple:
    """(volume, provenance record) of signal `n` reconstructed by the per-signal pipeline of member `m` (its
    denoiser, synthesized views, method, iterations and filter width) from all of its data in `series`."""
    from scipy.ndimage import gaussian_filter

    from ..recon.registry import METHODS
    from . import steps
    from .recipe import Denoise, Reconstruct

    cand = Candidate.parse(m["candidate"])
    its = m["iterations"] or None
    # a weight chosen while scored (tv on an image signal) is kept, with the data term it was chosen for
    options = {"data_term": "l2", "weight": m["weight"]} if m.get("weight") is not None else {}
    settings = Reconstruct(method=cand.method, iterations=its if METHODS[cand.method].iterations else None,
                           thickness=thickness, axis_offset=axis_offset, options=options)
    one = TiltSeries({n: series[n]}, pixel_size=series.pixel_size)
    denoised = None
    if cand.denoise:  # signal n alone is denoised; a guide is taken from the series by name
        options = {"guide": cand.guide} if cand.guide else {}
        source = series
        if cand.guide == SUMMED:  # the summed maps of all the count signals, as scored
            names = groups(series)["counts"]
            source = TiltSeries({n: series[n], SUMMED: Signal(summed_guide([series[k].data for k in names]),
                                                              series[n].angles, series[n].units)},
                                pixel_size=series.pixel_size)
        full, denoised = steps.denoise(source, Denoise(method=cand.denoise, signals=[n], options=options))
        if cand.guide == SUMMED:
            denoised["guide_of"] = names
        one = TiltSeries({n: full[n]}, pixel_size=series.pixel_size)
    if cand.views:
        one = _filled(one, [n], thickness, progress=bool(progress))
    vs = steps.reconstruct(one, settings, progress=progress)
    width = m.get("filter_voxels") or 0.0
    record = (vs.provenance["signals"][n] | ({"denoise": denoised} if denoised else {})
              | ({"views_synthesis": one.metadata["views_synthesis"]} if cand.views else {})
              | {"candidate": cand.name, "filter_voxels": width})
    return (gaussian_filter(np.asarray(vs[n]), width) if width > 0 else np.asarray(vs[n])), record


def _split_run(series: TiltSeries, names, cand: Candidate, settings: dict, haadf_volume, *, thickness, axis_offset,
               progress=None, joint=None) -> tuple[dict, dict]:
    """A ``+haadf`` or ``+sum`` candidate on all the data: its per-signal pipeline on every map of `names` (their
    iterations and filter widths in `settings`; for a joint candidate the volumes of its run on all the data,
    `joint`, a VolumeSet), then the volume it splits shared out among them with the fraction
    width it was scored with; (volumes, records) per map. ``+haadf`` splits `haadf_volume` with HAADF weights
    fitted to all the data, as the scored run fitted them to its half; ``+sum`` the volume of all the summed counts,
    reconstructed with the iterations and filter width it was scored with (:func:`summed_volume`), weights 1."""
    from ..core.projector import Projector
    from ..recon.channels import partition

    vols, records = {}, {}
    for n in names:
        if joint is not None:
            vols[n], records[n] = np.asarray(joint[n]), {"method": cand.method}  # its run: provenance "joint"
            continue
        m = {"candidate": cand.base, "iterations": settings["iterations"].get(n),
             "filter_voxels": settings["filter_voxels"].get(n, 0.0)}
        vols[n], records[n] = _volume(series, n, m, thickness=thickness, axis_offset=axis_offset, progress=progress)
    if cand.partition == PARTITION:
        total, info = haadf_volume, {"source": "HAADF"}
        weights = partition_weights(series, names, haadf_volume, np.arange(series.image_shape[0]),
                                    thickness=thickness, axis_offset=axis_offset)
    else:
        op = Projector(series.geometry(names[0], thickness, axis_offset=axis_offset))
        total, info = summed_volume(op, summed_guide([series[n].data for n in names]), settings=settings)
        weights = np.ones(len(names))
    parts = partition(total, [vols[n] for n in names], weights, smooth=settings["smooth_voxels"])
    info |= {"smooth_voxels": settings["smooth_voxels"], "weights": {n: float(w) for n, w in zip(names, weights)}}
    return dict(zip(names, parts)), {n: records[n] | {"candidate": cand.name, "partition": info} for n in names}


def run(series: TiltSeries, *, thickness=None, axis_offset=0.0, iterations=None, candidates=None, rng=0,
        progress=None, log=None) -> VolumeSet:
    """Select (:func:`select`), then run each group's winner on all of its data; provenance ``auto`` holds the scores."""
    from ..recon.registry import METHODS
    from ..recon.series import reconstruct_series

    choice = select(series, thickness=thickness, axis_offset=axis_offset, iterations=iterations,
                    candidates=candidates, rng=rng, log=log)
    start = time.perf_counter()
    members = {}  # signal -> the pipelines whose volumes it takes (their mean if several)
    if "counts" in choice:
        for n in choice["counts"]["signals"]:
            members[n] = _members(choice["counts"]["chosen"], n)
    for name, rec in choice["views"].items():
        members[name] = _members(rec["chosen"], name)
    def joint_run(n: str) -> tuple:
        """(signals, options) of the joint run that signal `n` takes its volume from, as it was scored: the count
        maps' with their HAADF, or the maps that are not counts with theirs and the least-squares term."""
        how = choice["views"][n]["chosen"].get("joint", {}) if n in choice["views"] else {}
        names = how.get("signals") or [k for k in ("HAADF",) if k in series] + choice["counts"]["signals"]
        return tuple(names), how.get("options", {})

    joint = {}  # (joint candidate without +haadf, its signals) -> its volumes, run once over the signals it was
    joint_info = []  # scored on
    for n, ms in members.items():
        for m in ms:
            cand = Candidate.parse(m["candidate"])
            if not METHODS[cand.method].joint:
                continue
            names, options = joint_run(n)
            if (cand.base, names) not in joint:
                joint[cand.base, names] = reconstruct_series(
                    TiltSeries({k: series[k] for k in names}, pixel_size=series.pixel_size), cand.method,
                    thickness=thickness, axis_offset=axis_offset, options=options, progress=progress)
                joint_info.append(joint[cand.base, names].provenance)
    volumes, signals = {}, {}
    split = {}  # +haadf candidate -> (its volume per count signal, their record), run once for all of them
    views_first = sorted(members, key=lambda n: n not in choice["views"])  # the HAADF volume before its split
    for n in views_first:
        parts, records = [], []
        for m in members[n]:
            cand = Candidate.parse(m["candidate"])
            if METHODS[cand.method].joint and not cand.partition:
                parts.append(np.asarray(joint[cand.name, joint_run(n)[0]][n]))
                records.append({"method": cand.method, "candidate": cand.name, "joint": True})
            elif cand.partition:
                if cand.name not in split:
                    base = (joint[cand.base, joint_run(n)[0]] if METHODS[cand.method].joint else None)
                    split[cand.name] = _split_run(series, choice["counts"]["signals"], cand, m["partition"],
                                                  volumes.get("HAADF"), thickness=thickness, axis_offset=axis_offset,
                                                  progress=progress, joint=base)
                parts.append(split[cand.name][0][n])
                records.append(split[cand.name][1][n])
            else:
                vol, rec = _volume(series, n, m, thickness=thickness, axis_offset=axis_offset, progress=progress)
                parts.append(vol)
                records.append(rec)
        volumes[n] = parts[0] if len(parts) == 1 else np.mean(parts, axis=0, dtype=np.float32)
        if len(records) == 1 and not records[0].get("joint"):
            signals[n] = records[0]
        elif len(records) > 1:
            signals[n] = {"method": " & ".join(r["method"] for r in records),
                          "candidate": " & ".join(r["candidate"] for r in records), "combine": "mean",
                          "members": records}
    from .. import __version__

    choice["final_seconds"] = round(time.perf_counter() - start, 2)
    provenance = {"software": f"chemtomo {__version__}", "method": "auto", "thickness": thickness
                  if thickness is not None else series.image_shape[1], "axis_offset": axis_offset, "auto": choice,
                  "signals": signals, "pixel_size_nm": series.pixel_size, "dose_e_per_A2": series.dose}
    if joint_info:  # the first joint run; any others (another candidate, or the maps that are not counts) after it
        provenance["joint"] = joint_info[0]
        if len(joint_info) > 1:
            provenance["joint_more"] = joint_info[1:]
    ordered = {n: volumes[n] for n in series.names if n in volumes}
    return VolumeSet(ordered, voxel_size=series.pixel_size, provenance=provenance)


def table(choice: dict) -> list[str]:
    """Lines of the ranking for the CLI: one per candidate and group, the chosen one marked."""
    lines = []
    groups_ = ([("counts: " + ", ".join(choice["counts"]["signals"]), choice["counts"])] if "counts" in choice
               else []) + [(name, rec) for name, rec in choice["views"].items()]
    for label, rec in groups_:
        lines.append(f"auto, {label} ({rec['rule']}):")
        for i, s in enumerate(rec["ranking"]):
            which = s.get("per_signal_candidate", {})
            its = ", ".join(f"{k} {which[k] + ' ' if k in which else ''}{v}"
                            + (f" (filter {s['filter_voxels'][k]:g})" if s.get("filter_voxels", {}).get(k) else "")
                            for k, v in s["iterations"].items() if v) or "-"
            mark = "->" if i == 0 else "  "
            score = "failed" if s["score"] is None else f"{s['score']:.5g}"
            note = f"  ({s['note']})" if s.get("note") else ""
            if s.get("weight"):
                its += "; weight " + ", ".join(f"{v:.3g}" for v in s["weight"].values())
            split = s.get("partition")
            if split:
                its += f"; fractions filter {split['smooth_voxels']:g}" if split.get("smooth_voxels") else ""
            lines.append(f"  {mark} {s['candidate']:<22} {score:>12}  iterations: {its:<24} {s['seconds']:.1f} s{note}")
    return lines
