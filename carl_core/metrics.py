"""The paper's evaluation protocols, computed exactly as the authors' evaluation code computes them.

Follows ``evaluation/{kendalls_tau,retrieval,classification,event_completion}.py`` and
``evaluate.py`` of minghchen/CARL_code (itself after the TCC evaluation code):

- Kendall's tau: for every ordered pair of different validation videos, every ``stride``-th frame
  of one finds its nearest neighbour among every ``stride``-th frame of the other; tau-b between
  the query order and the neighbours' order; NaN pairs dropped, the rest averaged.
- Retrieval AP@K: every ``stride``-th frame of a video queries the ``stride``-th frames of all
  other videos; the fraction of its K nearest that share its phase, averaged over the query's
  frames, then over videos.
- Phase classification: a multinomial logistic regression (lbfgs, C=1, 100000 iterations) on the
  frames of the first ``max(1, int(fraction * N))`` training videos, in the given order (no
  shuffling, no seed), scored by frame accuracy on all validation frames.
- Phase progression ("event completion"): per phase boundary, a linear regression from the
  embedding to ``(t - last frame of that phase) / T``; mean R^2 over the boundaries.

Each video is a ``(T, D)`` array; labels are one int array ``(T,)`` per video. Everything that
can be vectorised without changing a single bit is: pairwise distances come from one ``cdist`` per
query video (scipy computes each pair independently, so the numbers are identical), sums run in
the same order as the authors' loops. ``evaluate_all`` reports what ``evaluate.py`` reports, and
``evaluate_per_action`` averages per-action results the way it averages PennAction's 13 actions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import optimize
from scipy.spatial.distance import cdist
from scipy.stats import kendalltau as _kendalltau
from sklearn.linear_model import LinearRegression, LogisticRegression

from .errors import ConfigError, DataError

ProgressFn = Callable[[int, int, str], None]

TASKS = ("kendalls_tau", "retrieval", "classification", "progression")


@dataclass(frozen=True)
class Protocol:
    """Evaluation settings; the defaults are the authors' default config (Pouring)."""

    stride: int = 5  # EVAL.KENDALLS_TAU_STRIDE, used by retrieval too
    distance: str = "sqeuclidean"  # EVAL.KENDALLS_TAU_DISTANCE, used by retrieval too
    ks: tuple[int, ...] = (5, 10, 15)  # EVAL.RETRIEVAL_KS; the first is the reported one
    fractions: tuple[float, ...] = (0.1, 0.5, 1.0)  # EVAL.CLASSIFICATION_FRACTIONS; last is reported


# configs/scl_transformer_config.yml (Pouring) and scl_transformer_action_config.yml (PennAction).
PROTOCOLS: Mapping[str, Protocol] = MappingProxyType(
    {
        "pouring": Protocol(stride=5, fractions=(0.1, 0.5, 1.0)),
        "penn_action": Protocol(stride=2, fractions=(1.0,)),
    }
)

# datasets/dataset_splits.py: DATASET_TO_NUM_CLASSES, in the order of their PennAction config.
NUM_PHASES: Mapping[str, int] = MappingProxyType(
    {
        "pouring": 5,
        "baseball_pitch": 4,
        "baseball_swing": 3,
        "bench_press": 2,
        "bowl": 3,
        "clean_and_jerk": 6,
        "golf_swing": 3,
        "jumping_jacks": 4,
        "pushup": 2,
        "pullup": 2,
        "situp": 2,
        "squat": 4,
        "tennis_forehand": 3,
        "tennis_serve": 4,
    }
)
PENN_ACTIONS: tuple[str, ...] = tuple(name for name in NUM_PHASES if name != "pouring")


# --------------------------------------------------------------------------- input checks


def _check_options(stride: int, distance: str) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int | np.integer) or stride < 1:
        raise ConfigError(f"stride must be a positive integer (the authors use 5 or 2), got {stride!r}.")
    try:
        cdist(np.zeros((1, 2)), np.ones((1, 2)), distance)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"unknown distance {distance!r}: use a scipy cdist metric such as 'sqeuclidean' or 'cosine'."
        ) from e


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fractions = tuple(fractions)
    if not fractions:
        raise ConfigError("fractions is empty: give at least one fraction of training videos, e.g. (1.0,).")
    for f in fractions:
        if not 0.0 < float(f) <= 1.0:
            raise ConfigError(f"each fraction of training videos must be in (0, 1], got {f!r}.")
    return fractions


def _check_embs(embs_list: Sequence[np.ndarray], split: str) -> list[np.ndarray]:
    """Per-video (T, D) arrays, kept in their dtype (the distances and fits must see what theirs see)."""
    if embs_list is None:
        raise DataError(f"no {split} embeddings given: pass a list with one (frames, dims) array per video.")
    videos = [np.asarray(e) for e in embs_list]
    if not videos:
        raise DataError(f"the {split} set has no videos: pass one (frames, dims) array per video.")
    dim = None
    for i, v in enumerate(videos):
        if v.ndim != 2:
            raise DataError(
                f"{split} video {i}: embeddings must be a 2-D array (frames, dims), got shape {v.shape}."
            )
        if v.shape[0] == 0:
            raise DataError(f"{split} video {i} has no (labelled) frames: remove it from the evaluation.")
        if not np.issubdtype(v.dtype, np.number) or np.issubdtype(v.dtype, np.complexfloating):
            raise DataError(f"{split} video {i}: embeddings must be real numbers, got dtype {v.dtype}.")
        if dim is None:
            dim = v.shape[1]
        elif v.shape[1] != dim:
            raise DataError(
                f"{split} video {i} has {v.shape[1]}-d embeddings but video 0 has {dim}-d: "
                "embed all videos with the same model."
            )
        if not np.all(np.isfinite(v)):
            raise DataError(
                f"{split} video {i}: embeddings contain NaN or inf; the model diverged or the input is bad."
            )
    return videos


def _check_labels(
    labels_list: Sequence[np.ndarray], videos: list[np.ndarray], split: str
) -> list[np.ndarray]:
    if labels_list is None:
        raise DataError(f"no {split} labels given: pass one int array of frame-level phase labels per video.")
    labels = [np.asarray(lab) for lab in labels_list]
    if len(labels) != len(videos):
        raise DataError(
            f"the {split} set has {len(videos)} embedding arrays but {len(labels)} label arrays: "
            "pass one label array per video, in the same order."
        )
    out = []
    for i, (lab, v) in enumerate(zip(labels, videos)):
        if lab.ndim != 1 or lab.shape[0] != v.shape[0]:
            raise DataError(
                f"{split} video {i}: {v.shape[0]} frames of embeddings but labels of shape {lab.shape}; "
                "give one phase label per frame."
            )
        if not np.issubdtype(lab.dtype, np.integer):
            if not np.issubdtype(lab.dtype, np.number) or not np.all(np.mod(lab, 1) == 0):
                raise DataError(f"{split} video {i}: phase labels must be integers, got dtype {lab.dtype}.")
            lab = lab.astype(np.int64)
        if np.any(lab < 0):
            raise DataError(
                f"{split} video {i} has negative labels (unlabelled frames): drop those frames first, "
                "or use evaluate_all, which drops them as the authors' evaluate.py does."
            )
        out.append(lab)
    return out


def _check_same_dim(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    if a[0].shape[1] != b[0].shape[1]:
        raise DataError(
            f"training embeddings are {a[0].shape[1]}-d but validation embeddings are {b[0].shape[1]}-d: "
            "embed both splits with the same model."
        )


def _strided(videos: list[np.ndarray], stride: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Every stride-th frame per video, their concatenation and the start offsets of each video."""
    parts = [v[::stride] for v in videos]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])])
    return parts, np.concatenate(parts, axis=0), offsets


# --------------------------------------------------------------------------- alignment metrics


_TAU_PAIRS_PER_CHUNK = 4_000_000  # bounds the (frame pairs x candidate videos) comparison arrays
_TAU_MAX_VECTOR_FRAMES = 512  # longer queries go through scipy pair by pair, in O(n log n)


def _tau_b_vs_order(nns: np.ndarray) -> np.ndarray:
    """scipy's ``kendalltau(arange(n), nns[:, j]).statistic`` for every column j, bit for bit.

    With x = 0..n-1 there are no ties in x, so tau-b reduces to integer counts of discordant and
    tied pairs in y; the final float operations are scipy's, in scipy's order.
    """
    n, m = nns.shape
    taus = np.full(m, np.nan)
    if n < 2:  # scipy: too few samples, NaN
        return taus
    if n > _TAU_MAX_VECTOR_FRAMES:
        order = np.arange(n)
        for j in range(m):
            taus[j] = _kendalltau(order, nns[:, j]).statistic
        return taus
    tot = n * (n - 1) // 2
    first, second = np.nonzero(np.triu(np.ones((n, n), dtype=bool), k=1))  # all pairs a < b
    chunk = max(1, _TAU_PAIRS_PER_CHUNK // tot)
    for s in range(0, m, chunk):
        y_a, y_b = nns[first, s : s + chunk], nns[second, s : s + chunk]
        dis = np.count_nonzero(y_a > y_b, axis=0)
        ytie = np.count_nonzero(y_a == y_b, axis=0)
        con_minus_dis = tot - ytie - 2 * dis
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = con_minus_dis / np.sqrt(tot) / np.sqrt(tot - ytie)
        tau = np.minimum(1.0, np.maximum(-1.0, tau))
        tau[ytie == tot] = np.nan  # all frames matched to one frame: scipy returns NaN
        taus[s : s + chunk] = tau
    return taus


def _nn_metrics(
    videos: list[np.ndarray],
    labels: list[np.ndarray] | None,
    ks: Sequence[int],
    stride: int,
    distance: str,
    with_tau: bool,
) -> tuple[float, dict[int, float]]:
    """Kendall's tau and AP@K from one distance matrix per query video (theirs computes it per task).

    Each query's distances to all stride-th frames come from one ``cdist`` call; scipy computes
    each pair on its own, so the slices are bit for bit what their per-pair calls return.
    """
    n = len(videos)
    parts, stacked, offsets = _strided(videos, stride)
    label_parts = [lab[::stride] for lab in labels] if labels is not None else []
    taus = np.zeros(n * (n - 1))
    precisions = np.zeros((len(ks), n))
    for i, query in enumerate(parts):
        full = cdist(query, stacked, distance)
        if with_tau:
            nns = np.stack(
                [np.argmin(full[:, offsets[j] : offsets[j + 1]], axis=1) for j in range(n) if j != i], axis=1
            )
            taus[i * (n - 1) : (i + 1) * (n - 1)] = _tau_b_vs_order(nns)  # their order: i, then j
        if ks:
            dists = np.concatenate((full[:, : offsets[i]], full[:, offsets[i + 1] :]), axis=1)
            cand_labels = np.concatenate([lab for j, lab in enumerate(label_parts) if j != i])
            # argsort (not argpartition), so ties among distances break exactly as theirs do; one
            # sort serves every K.
            ranked = np.argsort(dists, axis=1)
            query_labels = label_parts[i].astype(np.int64)[:, None]
            for r, k in enumerate(ks):
                hits = query_labels == cand_labels[ranked[:, :k]]
                # cumsum adds the per-frame precisions left to right, like their loop.
                precisions[r, i] = np.cumsum(hits.mean(axis=1))[-1] / len(query)
    return _nanless_mean(taus), {k: _nanless_mean(precisions[r]) for r, k in enumerate(ks)}


def _nanless_mean(values: np.ndarray) -> float:
    """Their 'Remove NaNs' then np.mean; NaN (as np.mean of nothing) when nothing is left."""
    kept = values[~np.isnan(values)]
    return float(np.mean(kept)) if kept.size else float("nan")


def kendalls_tau(embs_list: Sequence[np.ndarray], stride: int = 5, distance: str = "sqeuclidean") -> float:
    """Mean Kendall's tau-b of nearest-neighbour alignments over all ordered pairs of videos.

    Pairs whose tau is undefined (a one-frame query, or every frame matched to the same frame) are
    dropped as the authors drop them; NaN when no pair is left.
    """
    _check_options(stride, distance)
    videos = _check_embs(embs_list, "evaluation")
    if len(videos) < 2:
        raise DataError("Kendall's tau compares videos with each other: give at least two videos.")
    return _nn_metrics(videos, None, (), stride, distance, with_tau=True)[0]


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(ks)
    if not ks:
        raise ConfigError("no retrieval K given: give at least one, e.g. ks=(5,).")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"K must be a positive integer (the authors use 5, 10, 15), got {k!r}.")
    return ks


def retrieval_aps(
    embs_list: Sequence[np.ndarray],
    labels_list: Sequence[np.ndarray],
    ks: Sequence[int] = (5, 10, 15),
    stride: int = 5,
    distance: str = "sqeuclidean",
) -> dict[int, float]:
    """``{K: retrieval_ap(..., K)}`` for several K at the cost of one."""
    _check_options(stride, distance)
    ks = _check_ks(ks)
    videos = _check_embs(embs_list, "evaluation")
    labels = _check_labels(labels_list, videos, "evaluation")
    if len(videos) < 2:
        raise DataError("retrieval searches the other videos for each query: give at least two videos.")
    return _nn_metrics(videos, labels, ks, stride, distance, with_tau=False)[1]


def retrieval_ap(
    embs_list: Sequence[np.ndarray],
    labels_list: Sequence[np.ndarray],
    k: int,
    stride: int = 5,
    distance: str = "sqeuclidean",
) -> float:
    """Mean precision of the K nearest frames from other videos sharing the query frame's phase."""
    return retrieval_aps(embs_list, labels_list, (k,), stride, distance)[k]


# --------------------------------------------------------------------------- linear probes


def _logistic_accepts_multi_class() -> bool:
    return "multi_class" in LogisticRegression().get_params()


def _multinomial_binary_predict(x: np.ndarray, y: np.ndarray, x_val: np.ndarray) -> np.ndarray:
    """Two-class ``LogisticRegression(multi_class='multinomial', lbfgs)`` as scikit-learn <= 1.7 fits it.

    Newer scikit-learn dropped ``multi_class`` and always fits a binary model to two classes: the
    same classifier at the optimum, but with twice the effective C, so it stops elsewhere. This
    follows their multinomial lbfgs path step by step (float64 data, zero start, softmax loss
    averaged over samples plus ||W||^2 / (2 C n), L-BFGS-B with gtol=1e-4, maxls=50) and predicts
    with the class-1 row as they do.
    """
    try:  # private API; when it moves, fall back to the binary model with the equivalent optimum
        from sklearn._loss.loss import HalfMultinomialLoss
        from sklearn.linear_model._linear_loss import LinearModelLoss
    except ImportError:
        model = LogisticRegression(C=2.0, max_iter=100000, solver="lbfgs").fit(x, y)
        return model.predict(x_val)
    x64 = np.ascontiguousarray(x, dtype=np.float64)
    classes, encoded = np.unique(y, return_inverse=True)
    w0 = np.zeros((2, x64.shape[1] + 1), order="F").ravel(order="F")
    loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=2), fit_intercept=True)
    result = optimize.minimize(
        loss.loss_gradient,
        w0,
        method="L-BFGS-B",
        jac=True,
        args=(x64, encoded.astype(np.float64), None, 1.0 / x64.shape[0], 1),
        options={"maxiter": 100000, "maxls": 50, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps},
    )
    row = result.x.reshape((2, -1), order="F")[1]
    scores = (np.asarray(x_val) @ row[None, :-1].T + row[-1:]).ravel()
    return classes[(scores > 0).astype(int)]


def _logistic_val_accuracy(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> float:
    """Their fit_linear_model: multinomial logistic regression, lbfgs, max_iter=100000, C=1."""
    n_classes = np.unique(y).size
    if n_classes < 2:
        raise DataError(
            f"the training videos used contain only phase {np.unique(y)[0]}: a classifier needs at "
            "least two phases; use more training videos or a larger fraction."
        )
    if _logistic_accepts_multi_class():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated there, but what they ran
            model = LogisticRegression(max_iter=100000, solver="lbfgs", multi_class="multinomial", verbose=0)
            model.fit(x, y)
        return float(model.score(x_val, y_val))
    if n_classes == 2:
        return float(np.average(y_val == _multinomial_binary_predict(x, y, x_val)))
    # Three or more classes: lbfgs fits the multinomial model by default.
    model = LogisticRegression(max_iter=100000, solver="lbfgs", verbose=0).fit(x, y)
    return float(model.score(x_val, y_val))


def _num_used(fraction: float, num_videos: int) -> int:
    return max(1, int(fraction * num_videos))  # the first videos, in the given order


def phase_classification(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    val_embs: Sequence[np.ndarray],
    val_labels: Sequence[np.ndarray],
    fractions: Sequence[float] = (1.0,),
) -> dict[float, float]:
    """Validation frame accuracy of a linear classifier trained on a fraction of the training videos."""
    fractions = _check_fractions(fractions)
    train_v = _check_embs(train_embs, "training")
    train_l = _check_labels(train_labels, train_v, "training")
    val_v = _check_embs(val_embs, "validation")
    val_l = _check_labels(val_labels, val_v, "validation")
    _check_same_dim(train_v, val_v)
    x_val, y_val = np.concatenate(val_v), np.concatenate(val_l)
    by_count: dict[int, float] = {}  # fractions that select the same videos give the same fit
    out = {}
    for fraction in fractions:
        used = _num_used(fraction, len(train_v))
        if used not in by_count:
            x, y = np.concatenate(train_v[:used]), np.concatenate(train_l[:used])
            by_count[used] = _logistic_val_accuracy(x, y, x_val, y_val)
        out[fraction] = by_count[used]
    return out


def _progress_targets(labels: np.ndarray, num_classes: int, split: str, index: int) -> np.ndarray:
    """Per boundary c < num_classes - 1: (t - last frame of phase c) / T, as their event_completion."""
    length = len(labels)
    columns = []
    for c in range(num_classes - 1):
        frames = np.flatnonzero(labels == c)
        if frames.size == 0:
            raise DataError(
                f"{split} video {index} has no frame of phase {c}: phase progression needs every phase "
                f"0..{num_classes - 2} in every video (is num_classes={num_classes} right?)."
            )
        columns.append((np.arange(float(length)) - frames[-1]) / length)
    return np.stack(columns, axis=1)


def phase_progression(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    val_embs: Sequence[np.ndarray],
    val_labels: Sequence[np.ndarray],
    num_classes: int,
    fractions: Sequence[float] = (1.0,),
) -> dict[float, float]:
    """Validation R^2 of linear regressions to the progress relative to each phase boundary, averaged."""
    fractions = _check_fractions(fractions)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2 (phases per video), got {num_classes!r}.")
    train_v = _check_embs(train_embs, "training")
    train_l = _check_labels(train_labels, train_v, "training")
    val_v = _check_embs(val_embs, "validation")
    val_l = _check_labels(val_labels, val_v, "validation")
    _check_same_dim(train_v, val_v)
    train_t = [_progress_targets(lab, num_classes, "training", i) for i, lab in enumerate(train_l)]
    val_t = [_progress_targets(lab, num_classes, "validation", i) for i, lab in enumerate(val_l)]
    x_val, y_val = np.concatenate(val_v, axis=0), np.concatenate(val_t, axis=0)
    by_count: dict[int, float] = {}
    out = {}
    for fraction in fractions:
        used = _num_used(fraction, len(train_v))
        if used not in by_count:
            x, y = np.concatenate(train_v[:used], axis=0), np.concatenate(train_t[:used], axis=0)
            # One regressor per column, as their VectorRegression (not one multi-output fit).
            scores = [LinearRegression().fit(x, y[:, c]).score(x_val, y_val[:, c]) for c in range(y.shape[1])]
            by_count[used] = float(np.mean(scores))
        out[fraction] = by_count[used]
    return out


# --------------------------------------------------------------------------- FineGym's classifier


@dataclass(frozen=True)
class SGDProbe:
    """The linear classifier ``evaluate_finegym.py`` trains (configs/scl_transformer_finegym_config.yml)."""

    lr: float = 50.0  # EVAL.CLASSIFICATION_LR, cosine-annealed per epoch
    epochs: int = 100  # EVAL.CLASSIFICATION_EPOCHS
    videos_per_batch: int = 10  # their batch_size: the frames of 10 videos per step
    momentum: float = 0.9
    weight_decay: float = 1e-6
    fractions: tuple[float, ...] = (0.1, 0.5, 1.0)  # EVAL.CLASSIFICATION_FRACTIONS; last is reported


def _draw_seed(gen: Any) -> int:
    """One int64 draw, as DataLoader and RandomSampler take theirs from the global generator."""
    import torch

    return int(torch.empty((), dtype=torch.int64).random_(generator=gen).item())


def _batches(videos: list[Any], labels: list[Any], order: list[int], size: int, drop_last: bool):
    """The frames of ``size`` videos at a time, concatenated, as their collate function and torch.cat."""
    import torch

    for s in range(0, len(order), size):
        idx = order[s : s + size]
        if drop_last and len(idx) < size:
            return
        yield torch.cat([videos[i] for i in idx]), torch.cat([labels[i] for i in idx])


def sgd_classification(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    val_embs: Sequence[np.ndarray],
    val_labels: Sequence[np.ndarray],
    num_classes: int,
    probe: SGDProbe = SGDProbe(),
    *,
    seed: int = 0,
    on_progress: ProgressFn | None = None,
) -> dict[float, float]:
    """Validation frame accuracy of FineGym's SGD linear classifier, per fraction of training videos.

    As ``evaluate_finegym.py`` on one process: frames labelled < 0 are dropped per video; for each
    fraction a fresh ``Linear(D, num_classes)`` is trained on the first ``max(videos_per_batch,
    int(fraction * N))`` training videos for ``epochs`` epochs of SGD (momentum 0.9, weight decay
    1e-6, cross-entropy, learning rate ``lr * (1 + cos(pi * e / epochs)) / 2`` in epoch e), each
    step on the concatenated frames of ``videos_per_batch`` shuffled videos, the last incomplete
    batch dropped; the score is the last epoch's accuracy over all validation frames.

    Their randomness comes from torch's global generator (the classifier's initialisation, then
    per epoch the DataLoader's base seed, the shuffling seed and the validation loader's base
    seed); here it comes, in the same order, from a private generator seeded with ``seed``, so a
    run equals theirs after ``torch.manual_seed(seed)`` draw for draw, and touches no global state.
    """
    import math

    import torch

    fractions = _check_fractions(probe.fractions)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    if probe.epochs < 1 or probe.videos_per_batch < 1 or not probe.lr > 0:
        raise ConfigError(f"the classifier needs epochs >= 1, videos_per_batch >= 1 and lr > 0, got {probe}.")
    train_e, train_l = _drop_unlabelled(train_embs, train_labels, "training")
    val_e, val_l = _drop_unlabelled(val_embs, val_labels, "validation")
    for split, labels in (("training", train_l), ("validation", val_l)):
        top = max((int(lab.max()) for lab in labels if lab.size), default=-1)
        if top >= num_classes:
            raise DataError(
                f"the {split} labels go up to {top} but num_classes is {num_classes}: "
                "give the number of classes of the label set (99 or 288 for FineGym)."
            )
    if not sum(len(lab) for lab in val_l):
        raise DataError("the validation videos have no labelled frame to score the classifier on.")
    dims = {v.shape[1] for v in train_e + val_e if v.ndim == 2}
    if len(dims) != 1:
        raise DataError(f"the embeddings have different dimensions {sorted(dims)}: embed all with one model.")
    (dim,) = dims
    xs = [torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for v in train_e]
    ys = [torch.from_numpy(lab.astype(np.int64)) for lab in train_l]
    val_x = [torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for v in val_e]
    val_y = [torch.from_numpy(lab.astype(np.int64)) for lab in val_l]
    batch = probe.videos_per_batch
    gen = torch.Generator().manual_seed(int(seed))
    total_steps, done = len(fractions) * probe.epochs, 0
    out: dict[float, float] = {}
    for fraction in fractions:
        used = min(len(xs), max(batch, int(fraction * len(xs))))
        if used < batch:
            raise DataError(
                f"{used} training videos, fewer than one batch of {batch}: their classifier drops the "
                "incomplete batch and would train on nothing; use more videos or a smaller videos_per_batch."
            )
        linear = torch.nn.Linear(dim, num_classes)
        with torch.no_grad():  # nn.Linear's own initialisation, drawn from our generator
            torch.nn.init.kaiming_uniform_(linear.weight, a=math.sqrt(5), generator=gen)
            bound = 1 / math.sqrt(dim)
            torch.nn.init.uniform_(linear.bias, -bound, bound, generator=gen)
        optimizer = torch.optim.SGD(
            linear.parameters(), lr=probe.lr, momentum=probe.momentum, weight_decay=probe.weight_decay
        )
        loss_fn = torch.nn.CrossEntropyLoss()
        for epoch in range(probe.epochs):
            for group in optimizer.param_groups:
                group["lr"] = probe.lr * (1 + math.cos(math.pi * epoch / (1.0 * probe.epochs))) / 2
            _draw_seed(gen)  # the training DataLoader iterator's base seed
            shuffle = torch.Generator().manual_seed(_draw_seed(gen))  # RandomSampler's
            order = torch.randperm(used, generator=shuffle).tolist()
            for x, y in _batches(xs, ys, order, batch, drop_last=True):
                optimizer.zero_grad()
                loss_fn(linear(x), y).backward()
                optimizer.step()
            _draw_seed(gen)  # the validation DataLoader iterator's base seed
            done += 1
            if on_progress is not None:
                on_progress(done, total_steps, f"classifier on {fraction:g} of the videos: epoch {epoch + 1}")
        correct = total = 0
        with torch.no_grad():  # in batches of videos as theirs: the same float32 products
            for x, y in _batches(val_x, val_y, list(range(len(val_x))), batch, drop_last=False):
                correct += int((torch.max(linear(x), 1)[1] == y).sum())
                total += len(y)
        out[fraction] = correct / total
    return out


# --------------------------------------------------------------------------- the reports


def _resolve(protocol: Protocol | str) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol {protocol!r}: use one of {sorted(PROTOCOLS)}.")
    return PROTOCOLS[protocol]


def _drop_unlabelled(
    embs: Sequence[np.ndarray], labels: Sequence[np.ndarray], split: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Keep frames with label >= 0, as their get_embeddings_dataset does before any task runs."""
    videos = [np.asarray(e) for e in embs] if embs is not None else None
    if videos is None or not videos:
        raise DataError(f"the {split} set has no videos: pass one (frames, dims) array per video.")
    labs = [np.asarray(lab) for lab in labels] if labels is not None else []
    if len(labs) != len(videos):
        raise DataError(
            f"the {split} set has {len(videos)} embedding arrays but {len(labs)} label arrays: "
            "pass one label array per video, in the same order."
        )
    out_e, out_l = [], []
    for i, (v, lab) in enumerate(zip(videos, labs)):
        if not np.issubdtype(lab.dtype, np.number):
            raise DataError(f"{split} video {i}: phase labels must be integers, got dtype {lab.dtype}.")
        if v.ndim != 2 or lab.ndim != 1 or lab.shape[0] != v.shape[0]:
            raise DataError(
                f"{split} video {i}: embeddings of shape {v.shape} and labels of shape {lab.shape}; "
                "give a (frames, dims) array and one phase label per frame."
            )
        valid = lab >= 0
        out_e.append(v[valid])
        out_l.append(lab[valid])
    return out_e, out_l


def evaluate_all(
    train_embs: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    val_embs: Sequence[np.ndarray],
    val_labels: Sequence[np.ndarray],
    num_classes: int,
    protocol: Protocol | str = "pouring",
    tasks: Sequence[str] = TASKS,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """All four protocols on one dataset, as ``evaluate.py`` runs them.

    ``protocol`` is a Protocol or a name in PROTOCOLS ("pouring" is the authors' default config).
    Frames labelled < 0 are dropped first. Kendall's tau and retrieval use the validation videos.
    Returns ``{"kendalls_tau": tau, "retrieval": {K: AP}, "classification": {fraction: acc},
    "progression": {fraction: R^2}, "reported": {...}}`` where ``reported`` holds the one number per
    task that their evaluate.py logs as the dataset's metric: tau, AP at the first K, and the
    classification / progression score at the last fraction.
    """
    proto = _resolve(protocol)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ConfigError(f"unknown or no evaluation tasks {unknown or list(tasks)}: choose from {TASKS}.")
    _check_options(proto.stride, proto.distance)
    ks, fractions = _check_ks(proto.ks), _check_fractions(proto.fractions)
    train_e, train_l = _drop_unlabelled(train_embs, train_labels, "training")
    val_e, val_l = _drop_unlabelled(val_embs, val_labels, "validation")
    want_tau, want_retrieval = "kendalls_tau" in tasks, "retrieval" in tasks
    steps = ["alignment"] if want_tau or want_retrieval else []
    steps += [t for t in ("classification", "progression") if t in tasks]
    result: dict[str, Any] = {}
    reported: dict[str, float] = {}
    for done, step in enumerate(steps):
        if on_progress is not None:
            on_progress(done, len(steps), f"evaluating {step}")
        if step == "alignment":
            # Tau and retrieval share each query's distances: computed once instead of twice.
            videos = _check_embs(val_e, "validation")
            labels = _check_labels(val_l, videos, "validation")
            if len(videos) < 2:
                raise DataError(
                    "Kendall's tau and retrieval compare videos: give at least two validation videos."
                )
            tau, aps = _nn_metrics(
                videos, labels, ks if want_retrieval else (), proto.stride, proto.distance, with_tau=want_tau
            )
            if want_tau:
                result["kendalls_tau"] = reported["kendalls_tau"] = tau
            if want_retrieval:
                result["retrieval"], reported["retrieval"] = aps, aps[ks[0]]
        elif step == "classification":
            result[step] = phase_classification(train_e, train_l, val_e, val_l, fractions)
            reported[step] = result[step][fractions[-1]]
        else:
            result[step] = phase_progression(train_e, train_l, val_e, val_l, num_classes, fractions)
            reported[step] = result[step][fractions[-1]]
    if on_progress is not None:
        on_progress(len(steps), len(steps), "evaluation done")
    result["reported"] = reported
    return result


@dataclass(frozen=True)
class ActionSplits:
    """One action's (one dataset's) embeddings and frame labels, as evaluate_all takes them."""

    train_embs: Sequence[np.ndarray]
    train_labels: Sequence[np.ndarray]
    val_embs: Sequence[np.ndarray]
    val_labels: Sequence[np.ndarray]
    num_classes: int


def _mean(values: list[Any]) -> Any:
    """Their average over datasets: sum(...) / len(...), in the given order, NaN propagating."""
    if isinstance(values[0], dict):
        return {key: _mean([v[key] for v in values]) for key in values[0]}
    return sum(values) / len(values)


def evaluate_per_action(
    actions: Mapping[str, ActionSplits],
    protocol: Protocol | str = "penn_action",
    tasks: Sequence[str] = TASKS,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Evaluate each action on its own and average over actions, as evaluate.py does for PennAction.

    Returns ``{"per_action": {name: evaluate_all(...)}, "mean": {...}}``; ``mean`` has the same
    keys as one action's result, each the plain mean over actions (``mean["reported"]`` are the
    ``metrics/all_<task>`` figures of their evaluate.py).
    """
    if not actions:
        raise DataError("no actions given: pass a mapping from action name to its ActionSplits.")
    per_action: dict[str, dict[str, Any]] = {}
    names = list(actions)
    for done, name in enumerate(names):
        if on_progress is not None:
            on_progress(done, len(names), f"evaluating {name}")
        split = actions[name]
        try:
            per_action[name] = evaluate_all(
                split.train_embs,
                split.train_labels,
                split.val_embs,
                split.val_labels,
                split.num_classes,
                protocol=protocol,
                tasks=tasks,
            )
        except DataError as e:
            raise DataError(f"action {name!r}: {e}") from e
    if on_progress is not None:
        on_progress(len(names), len(names), "evaluation done")
    results = [per_action[n] for n in names]
    mean = {key: _mean([r[key] for r in results]) for key in results[0]}
    return {"per_action": per_action, "mean": mean}
