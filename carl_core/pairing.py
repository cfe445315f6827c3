"""Two embedded videos in; the alignment, its confidence and what to be wary of out.

`align_pair` is the one path the CLI's ``align`` and the app's Align tab take: DTW (with open
ends solved so that they cannot degenerate, `carl_core.align.dtw`), the frame mappings, the
calibrated confidence of every match (`carl_core.confidence`), and, with open ends, the ends of
the path that touch blank frames left unmatched (a man walking out of the picture matched to a
black tail; other matches to nothing show as low confidence). `pair_warnings` says, in plain
words, when a result cannot mean much: lengths far apart, a video mostly blank, low confidence.

`content_features` gives the context-free view that the confidence checks matches against:
ImageNet EfficientNet-Lite0 features (`carl_core.features`) at up to `CONTENT_FPS`. A model of
body pose brings its own (`pose_content`): each frame's pose on its own, which the embedding
already computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .align import MAX_WARP, Alignment, FrameMapping, dtw, trim_path
from .confidence import ContentKind, MatchConfidence, match_confidence

__all__ = [
    "CONTENT_FPS",
    "PICTURE_FALLBACK",
    "PairAlignment",
    "align_pair",
    "bodiless",
    "content_features",
    "pair_warnings",
    "pose_content",
]

ProgressFn = Callable[[int, int, str], None]

CONTENT_FPS = 5.0  # the content view changes slowly; more frames would double the embedding time
LENGTH_RATIO = MAX_WARP  # see pair_warnings
MIN_FRAMES = 8
MOSTLY_BLANK = 0.5
LOW_CONFIDENCE = 0.3
SAME_ACTION = 0.5


@dataclass(frozen=True, eq=False)
class PairAlignment:
    """An alignment of two videos with everything shown about it."""

    alignment: Alignment
    mapping: FrameMapping
    confidence: MatchConfidence
    warnings: tuple[str, ...]


def _blank_ends(
    al: Alignment, blank_a: np.ndarray, blank_b: np.ndarray, begin: bool, end: bool
) -> tuple[int, int] | None:
    """Path steps to keep: open ends leave out the leading / trailing steps that touch a blank
    frame on either side (a black tail matches nothing). None where nothing is left out."""
    bad = blank_a[al.path_a] | blank_b[al.path_b]
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return None
    k0 = int(good[0]) if begin else 0
    k1 = int(good[-1]) if end else len(al) - 1
    return None if (k0, k1) == (0, len(al) - 1) else (k0, k1)


def align_pair(
    x: Any,
    y: Any,
    *,
    metric: str = "sqeuclidean",
    method: str = "auto",
    band: int | None = None,
    open_begin: bool = False,
    open_end: bool = False,
    content: tuple[Any, Any] | None = None,
    content_kind: ContentKind = "pictures",
    blank_a: Any = None,
    blank_b: Any = None,
    durations: tuple[float, float] | None = None,
    names: tuple[str, str] = ("A", "B"),
    on_progress: ProgressFn | None = None,
) -> PairAlignment:
    """Align embeddings ``x`` of A and ``y`` of B and judge every match.

    ``open_begin``/``open_end``: either video may start / end with frames that match nothing
    (`dtw` with "both" and its default skip cost: subsequence alignment both ways, the better
    fit kept), and end steps that touch a blank frame are then left unmatched too. ``content``:
    context-free features of the same frames (`content_features`, or with ``content_kind="pose"``
    `pose_content`); ``blank_a``/``blank_b``:
    per-frame flags of black or uniform frames; ``durations`` (seconds) and ``names`` feed the
    warnings. Other arguments as in `dtw`.
    """
    al = dtw(
        x,
        y,
        metric,  # type: ignore[arg-type]
        method,  # type: ignore[arg-type]
        band=band,
        open_begin="both" if open_begin else False,
        open_end="both" if open_end else False,
        on_progress=on_progress,
    )
    if (open_begin or open_end) and (blank_a is not None or blank_b is not None):
        n, m = len(x), len(y)
        ba = np.zeros(n, bool) if blank_a is None else np.asarray(blank_a, bool)
        bb = np.zeros(m, bool) if blank_b is None else np.asarray(blank_b, bool)
        cut = _blank_ends(al, ba, bb, open_begin, open_end)
        if cut is not None:
            al = trim_path(al, x, y, *cut)
    mapping = al.mapping(x, y)
    conf = match_confidence(
        x, y, al, mapping, content=content, content_kind=content_kind, blank_a=blank_a, blank_b=blank_b
    )
    warnings = pair_warnings(
        len(mapping.a_to_b), len(mapping.b_to_a), durations=durations, confidence=conf, names=names,
        covered=(mapping.covered_a, mapping.covered_b),
    )  # fmt: skip
    return PairAlignment(al, mapping, conf, tuple(warnings))


def pair_warnings(
    n_a: int,
    n_b: int,
    *,
    durations: tuple[float, float] | None = None,
    confidence: MatchConfidence | None = None,
    covered: tuple[np.ndarray, np.ndarray] | None = None,
    names: tuple[str, str] = ("A", "B"),
) -> list[str]:
    """Plain sentences on why an alignment of A (``n_a`` frames) and B may not mean much.

    - Lengths or durations differ more than `LENGTH_RATIO` times. Performances of one action
      differ in tempo, but within that: the real pairs this was checked on differ 2.6 times
      (golf: 8.8 s and 3.3 s; squats: 10.7 s and 28.4 s) and the synthetic ones up to 2 times.
      Beyond 4, most frames of the longer video must share a frame of the shorter, so the
      mapping says more about the lengths than about the action (3 frames against 851: 284).
    - Fewer than `MIN_FRAMES` frames: too short to show a movement at all.
    - More than half of a video's frames blank (black or uniform).
    - Low confidence overall: the covered frames' mean confidence under `LOW_CONFIDENCE`, or
      the pair-level estimate that both show the same action under `SAME_ACTION`.
    """
    out: list[str] = []
    label = {0: f"A ({names[0]})", 1: f"B ({names[1]})"}
    counts = (n_a, n_b)
    for k in (0, 1):
        if counts[k] < MIN_FRAMES:
            out.append(
                f"Video {label[k]} has only {counts[k]} frame{'s' * (counts[k] != 1)}: too short to show a "
                "movement, so its matches say little. Use a longer clip or embed more frames per second."
            )
    if durations is not None and min(durations) > 0:
        ratio, longer = max(durations) / min(durations), int(durations[1] > durations[0])
        what = f"{durations[longer]:.1f} s against {durations[1 - longer]:.1f} s"
    else:
        ratio, longer = max(counts) / max(min(counts), 1), int(n_b > n_a)
        what = f"{counts[longer]} frames against {counts[1 - longer]}"
    if ratio > LENGTH_RATIO:
        out.append(
            f"Video {label[longer]} is {ratio:.0f} times as long as {label[1 - longer]} ({what}): each "
            f"frame of the shorter must stand for about {ratio:.0f} of the longer, so the matching says "
            "more about the lengths than about the movement. Trim the longer video to the action, or "
            "turn on open begin and end."
        )
    if confidence is not None:
        for k, blank in enumerate((confidence.blank_a, confidence.blank_b)):
            if blank.size and blank.mean() > MOSTLY_BLANK:
                out.append(
                    f"Video {label[k]} is mostly blank ({100 * blank.mean():.0f}% of its frames black or "
                    "uniform): there is little to match."
                )
        ca, cb = confidence.a, confidence.b
        if covered is not None:
            ca, cb = ca[covered[0]], cb[covered[1]]
        mean = float(np.mean(np.r_[ca, cb])) if ca.size + cb.size else 0.0
        if confidence.pair < SAME_ACTION:
            out.append(
                f"These videos may not show the same action (estimated {100 * confidence.pair:.0f}% "
                "likely): treat the matches as a guess."
            )
        elif mean < LOW_CONFIDENCE:
            out.append(
                f"Most matches are uncertain (mean confidence {100 * mean:.0f}%): check them by eye "
                "before relying on them."
            )
    return out


def content_features(
    embedder: Any, path: str | os.PathLike, times: Any, on_progress: ProgressFn | None = None
) -> np.ndarray:
    """Context-free features of a video's frames at ``times`` (seconds): ``embedder`` (an
    `carl_core.embed.Embedder` of `carl_core.features.imagenet_features`) at up to `CONTENT_FPS`
    frames per second, each time taking the nearest embedded frame."""
    from .video import nearest_frames

    feats, stamps = embedder.embed(path, CONTENT_FPS, on_progress=on_progress)
    return feats[nearest_frames(stamps, times)]


PICTURE_FALLBACK = "efficientnet_lite0"  # the ImageNet features a pair falls back on (`bodiless`)


def bodiless(results: Mapping[str, Any]) -> dict[str, float]:
    """Of videos embedded by a model of body pose (anything with a ``pose``: `EmbedResult`s, by
    name), those with a readable body in under `MIN_BODY_SHARE` of their frames, with that share.

    Such a video is embedded by its pictures alone, and a video with a body by its pose: two
    spaces that cannot be compared. So where any video of a pair is listed here, the pair is
    aligned on plain ImageNet features (`PICTURE_FALLBACK`) for both, in the app and in
    ``carl align`` alike. Videos embedded without poses are never listed."""
    from .fusion import body_share, reads_pose

    return {
        name: body_share(r.pose)
        for name, r in results.items()
        if r.pose is not None and len(r.pose) and not reads_pose(r.pose)
    }


def pose_content(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The pose content view of two videos embedded by a model of body pose (`EmbedResult`s):
    each frame's context-free embedding (``frame_embeddings``: its pose descriptor, beside the
    picture's share where the model fuses one), for `align_pair` with ``content_kind="pose"``.
    None where either was not embedded from poses, or shows a body in under `MIN_BODY_SHARE`
    of its frames: there the pictures carry the match, and `content_features` checks it."""
    if a.pose is None or b.pose is None or bodiless({"a": a, "b": b}):
        return None
    return a.frame_embeddings, b.frame_embeddings
