"""How far to trust each matched frame of an alignment: a calibrated probability, not a similarity.

The cosine similarity of a matched pair says little: with a model whose embeddings mostly track
progress through a clip, every pair of videos, a golf swing against a squat included, matches
at 0.8-0.95. What does tell a right match from a wrong one is how the match sits among the
alternatives, in two views of the frames:

- the aligned embeddings themselves (any model): does the matched frame of B stand out from
  B's other frames for this frame of A (a z-score against the row, the gap to the row's best,
  a ratio test against the best frame outside the match's neighbourhood), does B's frame point
  back at this frame of A (cycle consistency), does the row's nearest neighbour agree with DTW;
- optionally a context-free *content* view (``content=``: per-frame ImageNet features of the
  same frames, `carl_core.features`), the same questions asked of what the frames look like.
  A sequence model can be sure of a match the pictures contradict; the content view catches it.
  For a model of body pose the content view is each frame on its own as the model sees it
  (``content_kind="pose"``: ``EmbedResult.frame_embeddings``: the pose descriptor, with a share
  of the picture where the model fuses one), and its own models are fitted on synthetic human
  motion (the pose stream and the descriptor alone: synthetic motion has no pictures):
  pictures of two people differ where their poses agree, so the picture models would doubt
  every match across people.

Per frame, these features (smoothed along the video, with the same statistics over the whole
pair) go into a small logistic model fitted on synthetic pairs with known phase labels (same
action, different actions, black stretches, padded footage; `benchmarks/calibrate_confidence.py`,
coefficients in ``assets/confidence.json``). Its output is the estimated probability that the
frame's match is right, within a tolerance of a quarter of a movement phase (pose models: of
the way between two key poses, ``motion.MotionSample.position``). A pair-level model
on the pair's mean features gives the probability that the two videos show the same action at all.
Blank frames (black or uniform, flagged by the caller) get confidence 0 and a flag.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .align import Alignment, FrameMapping
from .errors import AlignmentError

__all__ = [
    "ContentKind",
    "MatchConfidence",
    "frame_mean_logit",
    "match_confidence",
    "match_features",
]

ContentKind = Literal["pictures", "pose"]
ASSET = Path(__file__).resolve().parents[1] / "assets" / "confidence.json"
_CHUNK = 1024  # rows of the similarity matrix held at once
MAX_CELLS = 40_000_000  # frame pairs measured in full (6,300 x 6,300); longer pairs are strided


# ----------------------------------------------------------------------------- features


def _unit(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise AlignmentError(f"{name} must be (frames, dim) embeddings with at least two frames.")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _smooth(v: np.ndarray, half: int) -> np.ndarray:
    """Moving average over 2*half+1 frames (shorter at the ends)."""
    if half < 1 or v.shape[0] < 3:
        return v
    c = np.concatenate([[0.0], np.cumsum(v)])
    i = np.arange(v.shape[0])
    lo, hi = np.maximum(i - half, 0), np.minimum(i + half + 1, v.shape[0])
    return (c[hi] - c[lo]) / (hi - lo)


def _one_way(x: np.ndarray, y: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Per frame of x (matched to ``match`` in y): z, gap, margin, nn_dist, cycle_dist.

    Distances are in fractions of the sequence length, so they mean the same for any length.
    """
    n, m = x.shape[0], y.shape[0]
    w = max(2, int(round(0.05 * m)))  # the match's neighbourhood in y
    out = np.empty((n, 5))
    col_best = np.full(m, -np.inf)
    col_arg = np.zeros(m, np.int64)
    for s in range(0, n, _CHUNK):
        sim = x[s : s + _CHUNK] @ y.T
        rows = np.arange(sim.shape[0])
        j = match[s : s + _CHUNK]
        matched = sim[rows, j]
        mu, sd = sim.mean(1), sim.std(1) + 1e-6
        best = sim.max(1)
        nn = sim.argmax(1)
        cols = np.arange(m)[None, :]
        outside = np.where(np.abs(cols - j[:, None]) > w, sim, -np.inf).max(1)
        outside = np.where(np.isfinite(outside), outside, matched)  # y shorter than the neighbourhood
        out[s : s + len(rows), 0] = (matched - mu) / sd
        out[s : s + len(rows), 1] = (best - matched) / sd
        out[s : s + len(rows), 2] = (matched - outside) / sd
        out[s : s + len(rows), 3] = np.abs(nn - j) / m
        better = sim.max(0) > col_best
        col_arg[better] = sim.argmax(0)[better] + s
        col_best[better] = sim.max(0)[better]
    out[:, 4] = np.abs(col_arg[match] - np.arange(n)) / n
    return out


FEATURES = ("z", "gap", "margin", "nn_dist", "cycle_dist")


def match_features(x: Any, y: Any, a_to_b: np.ndarray, b_to_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw per-frame features of the matches both ways in one view: (n, 5) and (m, 5), columns
    `FEATURES`. Each is smoothed along its video over about 2% of its length.

    Long pairs (more than `MAX_CELLS` frame pairs) are measured on every s-th frame of each
    (s so that they fit), the mapping scaled alike, and the features interpolated back: they
    are relative to each sequence's length, so a stride changes them little.
    """
    xu, yu = _unit(x, "sequence A"), _unit(y, "sequence B")
    a_to_b, b_to_a = np.asarray(a_to_b, np.int64), np.asarray(b_to_a, np.int64)
    n, m = xu.shape[0], yu.shape[0]
    stride = max(1, math.ceil(math.sqrt(n * m / MAX_CELLS)))
    if stride > 1:
        ia, ib = np.arange(0, n, stride), np.arange(0, m, stride)
        fa_s = _one_way(xu[ia], yu[ib], np.minimum(a_to_b[ia] // stride, len(ib) - 1))
        fb_s = _one_way(yu[ib], xu[ia], np.minimum(b_to_a[ib] // stride, len(ia) - 1))
        fa = np.stack([np.interp(np.arange(n), ia, fa_s[:, k]) for k in range(fa_s.shape[1])], 1)
        fb = np.stack([np.interp(np.arange(m), ib, fb_s[:, k]) for k in range(fb_s.shape[1])], 1)
    else:
        fa, fb = _one_way(xu, yu, a_to_b), _one_way(yu, xu, b_to_a)
    for f in (fa, fb):
        half = max(1, f.shape[0] // 100)
        for k in range(f.shape[1]):
            f[:, k] = _smooth(f[:, k], half)
    return fa, fb


# ----------------------------------------------------------------------------- the calibrated model


def design(frame: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Inputs of the logistic model for one view: per-frame features, transformed to be roughly
    linear in log-odds, and the pair's means of them (the same on every frame)."""
    z, gap, margin, nn, cyc = (frame[:, k] for k in range(5))
    cols = [
        np.clip(z, -3, 8),
        np.log1p(np.clip(gap, 0, 20)),
        np.clip(margin, -6, 6),
        np.sqrt(np.clip(nn, 0, 1)),
        np.sqrt(np.clip(cyc, 0, 1)),
    ]
    per_frame = np.stack(cols, 1)
    pair_cols = np.broadcast_to(pair, per_frame.shape)
    return np.concatenate([per_frame, pair_cols], 1)


@dataclass(frozen=True)
class _Logistic:
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    bias: float

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        t = (inputs - self.mean) / self.scale @ self.coef + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(t, -40, 40)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _Logistic:
        return cls(
            np.asarray(d["mean"], float), np.asarray(d["scale"], float), np.asarray(d["coef"], float),
            float(d["bias"]),
        )  # fmt: skip


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, _Logistic]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    return {name: _Logistic.from_dict(d) for name, d in doc["models"].items()}


def _pair_means(feats: np.ndarray) -> np.ndarray:
    return design(feats, np.zeros(5))[:, :5].mean(0)


def model_inputs(
    model_views: tuple[np.ndarray, np.ndarray], content_views: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs for A's frames, for B's frames, pair inputs) of the calibrated models."""
    fa, fb = model_views
    pair = (_pair_means(fa) + _pair_means(fb)) / 2
    ia, ib = design(fa, pair), design(fb, pair)
    pair_in = pair
    if content_views is not None:
        ca, cb = content_views
        cpair = (_pair_means(ca) + _pair_means(cb)) / 2
        ia = np.concatenate([ia, design(ca, cpair)], 1)
        ib = np.concatenate([ib, design(cb, cpair)], 1)
        pair_in = np.concatenate([pair, cpair])
    return ia, ib, pair_in


def frame_mean_logit(pa: np.ndarray, pb: np.ndarray) -> float:
    """Log-odds of the lower of the two videos' mean match confidences (``pa``, ``pb``: the
    matched frames' probabilities; an empty side counts as even odds): the pose pair model's
    input, how sure the matches are on the whole, both ways. The pair means of the match
    features, which the picture models read, called a golf swing and a squat the same action
    (both are mostly a person standing); the matches' confidence tells them apart."""
    m = min(float(np.mean(p)) if len(p) else 0.5 for p in (pa, pb))
    m = min(max(m, 1e-4), 1 - 1e-4)
    return math.log(m / (1 - m))


# ----------------------------------------------------------------------------- the result


@dataclass(frozen=True, eq=False)
class MatchConfidence:
    """Estimated probability that each frame's match is right, both ways, and for the pair.

    ``a[i]``: the probability that frame i of A is matched to the right frame of B (within a
    quarter of a movement phase); ``b`` likewise for B. ``pair``: the probability that the
    two videos show the same action at all. ``blank_a``/``blank_b``: frames flagged blank
    (their confidence is 0). ``content``: whether the content view took part; ``content_kind``:
    which ("pictures" or "pose").
    """

    a: np.ndarray
    b: np.ndarray
    pair: float
    blank_a: np.ndarray
    blank_b: np.ndarray
    content: bool = False
    content_kind: ContentKind = "pictures"

    def to_dict(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(per-frame fields for the alignment JSON's ``mapping``, pair-level ``confidence``)."""
        per_frame = {
            "confidence_a": np.round(self.a, 4).tolist(),
            "confidence_b": np.round(self.b, 4).tolist(),
            "blank_a": self.blank_a.tolist(),
            "blank_b": self.blank_b.tolist(),
        }
        pair = {
            "same_action": round(float(self.pair), 4),
            "views": ["embeddings", "content" if self.content_kind == "pictures" else "pose"]
            if self.content
            else ["embeddings"],
            "calibration": "assets/confidence.json",
        }
        return per_frame, pair


def _flags(blank: Any, n: int, name: str) -> np.ndarray:
    if blank is None:
        return np.zeros(n, bool)
    arr = np.asarray(blank, dtype=bool).reshape(-1)
    if arr.shape[0] != n:
        raise AlignmentError(f"{name} has {arr.shape[0]} flags for {n} frames; pass one per frame.")
    return arr


def match_confidence(
    x: Any,
    y: Any,
    alignment: Alignment,
    mapping: FrameMapping | None = None,
    *,
    content: tuple[Any, Any] | None = None,
    content_kind: ContentKind = "pictures",
    blank_a: Any = None,
    blank_b: Any = None,
    calibration: str | Path | None = None,
) -> MatchConfidence:
    """Calibrated confidence of each matched frame of ``alignment`` (of embeddings x, y).

    ``mapping``: the alignment's frame mapping (computed when not given). ``content``:
    context-free features of the same frames of A and B, which make the estimate hold even for
    a model that is sure of wrong matches: ImageNet features (``content_kind="pictures"``), or
    for a pose model its frame embeddings (``"pose"``, see the module doc). ``blank_a``/``blank_b``:
    per-frame flags of black or uniform frames. ``calibration``: a JSON of fitted models
    (default: ``assets/confidence.json``).
    """
    if mapping is None:
        mapping = alignment.mapping(x, y)
    n, m = mapping.a_to_b.shape[0], mapping.b_to_a.shape[0]
    ba, bb = _flags(blank_a, n, "blank_a"), _flags(blank_b, m, "blank_b")
    views = match_features(x, y, mapping.a_to_b, mapping.b_to_a)
    cviews = None
    if content is not None:
        ca, cb = content
        if np.shape(ca)[0] != n or np.shape(cb)[0] != m:
            raise AlignmentError("content features must have one row per aligned frame of A and of B.")
        cviews = match_features(ca, cb, mapping.a_to_b, mapping.b_to_a)
    if content_kind not in ("pictures", "pose"):
        raise AlignmentError(f"content_kind={content_kind!r} is unknown; use 'pictures' or 'pose'.")
    if content_kind == "pose" and cviews is None:
        raise AlignmentError("content_kind='pose' needs the pose content view (content=).")
    models = _load(str(calibration or ASSET))
    kind = "model" if cviews is None else "content" if content_kind == "pictures" else "pose"
    ia, ib, pin = model_inputs(views, cviews)
    pa, pb = models[f"frame_{kind}"](ia), models[f"frame_{kind}"](ib)
    if kind == "pose":  # its pair model reads how sure the frames' matches are on the whole
        pin = np.array([frame_mean_logit(pa[mapping.covered_a], pb[mapping.covered_b])])
    pair = float(models[f"pair_{kind}"](pin[None])[0])
    # A blank frame shows nothing to match; a frame matched to a blank one is matched to nothing.
    pa = np.where(ba | bb[mapping.a_to_b], 0.0, pa)
    pb = np.where(bb | ba[mapping.b_to_a], 0.0, pb)
    return MatchConfidence(pa, pb, pair, ba, bb, content=cviews is not None, content_kind=content_kind)
