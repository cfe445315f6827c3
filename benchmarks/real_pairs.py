"""Ground truth on real people: labelled events, and the videos the real-clip harness embeds.

The labels (``tests/data/real_events.json``, described in ``tests/data/README.md``) cut segments
out of the real clips in ``../shared/data/real_clips`` and pair them: different people doing the
same action, other views, other forms. Each segment names the moments a coach would name (top of
the backswing, impact, bottom of the squat, ...) as frame numbers of the original clip.

This module reads and checks the labels, scores an alignment against them, and makes the three
kinds of video that ``eval_real.py`` embeds, each with the clip frame behind every one of its
frames (``Video.sources``), so that a method reading landmarks can look them up:

- a **cut**: a segment re-encoded on its own, as a user would drop it in;
- a **warped copy**: a clip played at a smoothly varying speed (0.6x to 1.6x), with the true
  frame map known;
- a **padded copy**: a segment with a few seconds of other footage before and after.

Videos are written once into a cache folder outside the repository (``CARL_REAL_CUTS``, default
``~/.cache/carl_studio/real_cuts``), keyed by the clip's content and what was made of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LABELS = REPO / "tests" / "data" / "real_events.json"
# Beside the checkout, as tests/conftest.py finds them; CARL_REAL_CLIPS points elsewhere.
REAL_CLIPS = Path(os.environ.get("CARL_REAL_CLIPS") or REPO.parent / "shared" / "data" / "real_clips")
REAL_POSE = REAL_CLIPS.parent / "real_clips_pose"

QUALITY_CRF = 12  # x264 at crf 12 is visually lossless: the cut differs from the clip by re-encoding only
TOLERANCE_SECONDS = 0.1  # an event lands within max(its label's tol, 0.1 s of frames) of the truth
WARP_SPEEDS = (0.6, 1.6)
PAD_SECONDS = 2.0
# Other footage around a padded segment: people doing something else, in another place.
PAD_FILLERS = ("mmaction2__test_video_structuralize.mp4", "mmaction2__demo.mp4", "mmaction2__test.avi")


# ----------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class Event:
    name: str
    frame: int  # in the original clip's numbering
    tol: int  # the labeller's uncertainty, +- frames
    how: str = "eye"
    note: str = ""


@dataclass(frozen=True)
class Segment:
    name: str
    clip: str
    start: int
    end: int  # exclusive
    events: dict[str, Event]
    note: str = ""

    @property
    def length(self) -> int:
        return self.end - self.start

    def local(self, event: str) -> int:
        """The event's frame in the cut's own numbering."""
        return self.events[event].frame - self.start


@dataclass(frozen=True)
class Pair:
    name: str
    a: str
    b: str
    events: tuple[str, ...] | None = None  # None: all events (the two segments must share them)
    note: str = ""


@dataclass(frozen=True)
class Stretch:
    start: int
    end: int
    kind: str
    note: str = ""


@dataclass(frozen=True)
class ClipNotes:
    person: bool = True
    stretches: tuple[Stretch, ...] = ()
    cuts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Labels:
    segments: dict[str, Segment]
    pairs: list[Pair]
    clips: dict[str, ClipNotes] = field(default_factory=dict)

    def pair_events(self, pair: Pair) -> tuple[str, ...]:
        if pair.events is not None:
            return pair.events
        return tuple(self.segments[pair.a].events)

    def notes(self, clip: str) -> ClipNotes:
        return self.clips.get(clip, ClipNotes())


def load_labels(path: str | os.PathLike = LABELS) -> Labels:
    """Read the labels file (``_schema`` inside it says what each field means)."""
    doc = json.loads(Path(path).read_text())
    segments = {}
    for name, s in doc["segments"].items():
        events = {
            en: Event(en, int(e["frame"]), int(e["tol"]), e.get("how", "eye"), e.get("note", ""))
            for en, e in s["events"].items()
        }
        segments[name] = Segment(name, s["clip"], int(s["start"]), int(s["end"]), events, s.get("note", ""))
    pairs = [
        Pair(p["name"], p["a"], p["b"], tuple(p["events"]) if "events" in p else None, p.get("note", ""))
        for p in doc["pairs"]
    ]
    clips = {
        c: ClipNotes(
            bool(v.get("person", True)),
            tuple(
                Stretch(int(s["start"]), int(s["end"]), s["kind"], s.get("note", ""))
                for s in v.get("stretches", [])
            ),
            tuple(int(f) for f in v.get("cuts", [])),
        )
        for c, v in doc.get("clips", {}).items()
    }
    return Labels(segments, pairs, clips)


def check_labels(labels: Labels, clips_dir: Path | None = None) -> list[str]:
    """Everything wrong with the labels, as sentences (empty when all is well).

    With ``clips_dir``, the clips must exist there and every frame must lie inside its clip.
    """
    problems = []
    lengths: dict[str, int] = {}
    if clips_dir is not None:
        from carl_core.video import probe_video

        for clip in sorted({s.clip for s in labels.segments.values()} | set(labels.clips)):
            path = clips_dir / clip
            if not path.is_file():
                problems.append(f"clip {clip} is not in {clips_dir}")
            else:
                lengths[clip] = probe_video(path).num_frames
    for s in labels.segments.values():
        where = f"segment {s.name}"
        if not 0 <= s.start < s.end:
            problems.append(f"segment {s.name}: range [{s.start}, {s.end}) is empty or negative")
        if s.clip in lengths and s.end > lengths[s.clip]:
            problems.append(f"segment {s.name}: ends at {s.end}, but {s.clip} has {lengths[s.clip]} frames")
        if len(s.events) < 2:
            problems.append(f"segment {s.name}: needs at least two events")
        for e in s.events.values():
            if not s.start <= e.frame < s.end:
                problems.append(f"{where}: event {e.name} at {e.frame} is outside [{s.start}, {s.end})")
            if e.tol < 0:
                problems.append(f"segment {s.name}: event {e.name} has a negative tol")
            if e.how not in ("eye", "pose+eye"):
                problems.append(f"segment {s.name}: event {e.name} has how={e.how!r} (eye or pose+eye)")
        frames = [e.frame for e in s.events.values()]
        if frames != sorted(frames) or len(set(frames)) != len(frames):
            problems.append(f"segment {s.name}: events are not listed in strictly increasing frame order")
    names = [p.name for p in labels.pairs]
    if len(set(names)) != len(names):
        problems.append("pair names repeat")
    for p in labels.pairs:
        if p.a not in labels.segments or p.b not in labels.segments:
            missing = p.a if p.a not in labels.segments else p.b
            problems.append(f"pair {p.name}: segment {missing} is not defined")
            continue
        a, b = labels.segments[p.a], labels.segments[p.b]
        wanted = p.events if p.events is not None else tuple(a.events)
        if p.events is None and set(a.events) != set(b.events):
            problems.append(f"pair {p.name}: {p.a} and {p.b} label different events; list the shared ones")
        for e in wanted:
            for seg in (a, b):
                if e not in seg.events:
                    problems.append(f"pair {p.name}: event {e} is missing from segment {seg.name}")
        if len(wanted) < 3:
            problems.append(f"pair {p.name}: compares fewer than three events")
    for clip, notes in labels.clips.items():
        for st in notes.stretches:
            if not 0 <= st.start < st.end or (clip in lengths and st.end > lengths[clip]):
                problems.append(f"clip {clip}: stretch [{st.start}, {st.end}) lies outside the clip")
        for c in notes.cuts:
            if c < 0 or (clip in lengths and c >= lengths[clip]):
                problems.append(f"clip {clip}: cut at {c} lies outside the clip")
    return problems


# ----------------------------------------------------------------------------- scoring


def tolerance(label_tol: int, fps: float, seconds: float = TOLERANCE_SECONDS) -> int:
    """Frames within which a mapped event counts as landed: the label's own uncertainty, but never
    less than ``seconds`` of video (3 frames at 30 fps, 6 at 60, 1 at 10)."""
    return max(int(label_tol), math.ceil(seconds * fps - 1e-9))


@dataclass(frozen=True)
class EventHit:
    """One event of one segment carried to the other segment through an alignment."""

    event: str
    direction: str  # "a->b" or "b->a"
    true: int  # in the target cut's numbering
    mapped: int
    tol: int  # frames, after `tolerance`
    target_len: int

    @property
    def error(self) -> int:
        return abs(self.mapped - self.true)

    @property
    def landed(self) -> bool:
        return self.error <= self.tol

    @property
    def error_pct(self) -> float:
        return 100.0 * self.error / self.target_len


def carry_events(
    a_to_b: np.ndarray,
    b_to_a: np.ndarray,
    events: Sequence[str],
    frames_a: Sequence[int],
    frames_b: Sequence[int],
    tols_a: Sequence[int],
    tols_b: Sequence[int],
) -> list[EventHit]:
    """Each event of A mapped into B (``a_to_b``) and each event of B into A, against the truth.

    Frames are in the cuts' numbering; tolerances already in frames of the target.
    """
    hits = []
    for k, name in enumerate(events):
        hits.append(
            EventHit(name, "a->b", int(frames_b[k]), int(a_to_b[frames_a[k]]), int(tols_b[k]), len(b_to_a))
        )
        hits.append(
            EventHit(name, "b->a", int(frames_a[k]), int(b_to_a[frames_b[k]]), int(tols_a[k]), len(a_to_b))
        )
    return hits


def align_and_carry(
    x: np.ndarray,
    y: np.ndarray,
    events: Sequence[str],
    frames_a: Sequence[int],
    frames_b: Sequence[int],
    tols_a: Sequence[int],
    tols_b: Sequence[int],
) -> list[EventHit]:
    """DTW (``carl_core.align.dtw``, default options) of embeddings ``x`` and ``y``, then the
    events carried both ways through its frame mapping."""
    from carl_core.align import dtw

    aln = dtw(x, y)
    m = aln.mapping(x, y)
    return carry_events(m.a_to_b, m.b_to_a, events, frames_a, frames_b, tols_a, tols_b)


def summarise(hits: Sequence[EventHit]) -> dict[str, float]:
    """Share of events landed and mean absolute error in % of the target segment's length."""
    if not hits:
        return {"landed": float("nan"), "error_pct": float("nan"), "events": 0}
    return {
        "landed": float(np.mean([h.landed for h in hits])),
        "error_pct": float(np.mean([h.error_pct for h in hits])),
        "events": len(hits),
    }


# ----------------------------------------------------------------------------- warps and pads


def warp_positions(num_frames: int, seed: int, speeds: tuple[float, float] = WARP_SPEEDS) -> np.ndarray:
    """Source positions (float, increasing, from 0 to num_frames - 1) of a copy played at a speed
    that swings smoothly between ``speeds``: output frame k shows source position p[k]."""
    rng = np.random.default_rng(seed)
    lo, hi = speeds
    mid, amp = (lo + hi) / 2, (hi - lo) / 2
    cycles = rng.uniform(1.5, 3.0)
    phase = rng.uniform(0, 2 * np.pi)
    approx = num_frames / mid
    k = np.arange(int(2 * num_frames / lo) + 2)
    speed = mid + amp * np.sin(2 * np.pi * cycles * k / approx + phase)
    pos = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    pos = pos[pos <= num_frames - 1]
    return pos * ((num_frames - 1) / pos[-1])  # end on the last frame (speeds grow by < 1.6 / n)


def true_warp_maps(pos: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(where each source frame lies in the copy, float; which source frame each copy frame shows, float)."""
    return np.interp(np.arange(num_frames), pos, np.arange(len(pos))), pos


def stable_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


# ----------------------------------------------------------------------------- videos


@dataclass(frozen=True)
class Video:
    """A video file the harness made (or a clip itself), with the clip frame behind each frame."""

    path: Path
    fps: float
    sources: tuple[tuple[str, np.ndarray], ...]  # consecutive parts: (clip name, its frame indices)

    def __len__(self) -> int:
        return sum(len(f) for _, f in self.sources)


def cache_dir() -> Path:
    root = Path(os.environ.get("CARL_REAL_CUTS") or Path.home() / ".cache" / "carl_studio" / "real_cuts")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _tag(clips_dir: Path, parts: Sequence[tuple[str, np.ndarray]], extra: str = "") -> str:
    """Names what a made video holds: the clips (name, size, time), their frames, the quality."""
    h = hashlib.sha256(f"crf{QUALITY_CRF}:{extra}".encode())
    for clip, idx in parts:
        st = (clips_dir / clip).stat()
        h.update(f"{clip}:{st.st_size}:{int(st.st_mtime)}:".encode())
        h.update(np.ascontiguousarray(idx, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


def _frames(
    path: Path, indices: np.ndarray, size: tuple[int, int] | None = None, chunk: int = 32
) -> Iterator[np.ndarray]:
    """Frames ``indices`` (repeats allowed) of a clip, decoded a few at a time: memory stays flat."""
    from PIL import Image

    from carl_core.video import read_video

    for s in range(0, len(indices), chunk):
        part = indices[s : s + chunk]
        frames, _ = read_video(path, indices=part.tolist())
        if len(frames) != len(part):
            raise RuntimeError(f"{path.name}: asked for {len(part)} frames from {part[0]}, got {len(frames)}")
        for f in frames:
            if size is not None and (f.shape[1], f.shape[0]) != size:
                f = np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR))
            yield f


def _write(out: Path, frames: Iterator[np.ndarray], fps: float) -> None:
    from carl_core.video import write_video

    write_video(out, frames, fps, crf=QUALITY_CRF)


def _check_count(out: Path, expected: int) -> None:
    from carl_core.video import probe_video

    got = probe_video(out).num_frames
    if got != expected:
        out.unlink()
        raise RuntimeError(f"{out.name} decodes to {got} frames, expected {expected}; removed it")


def original(clips_dir: Path, clip: str) -> Video:
    """A clip as it is, every frame."""
    from carl_core.video import probe_video

    info = probe_video(clips_dir / clip)
    return Video(clips_dir / clip, info.fps, ((clip, np.arange(info.num_frames)),))


def cut(clips_dir: Path, seg: Segment, cache: Path | None = None) -> Video:
    """Frames [start, end) of the segment's clip, re-encoded at the clip's frame rate."""
    from carl_core.video import probe_video

    src = clips_dir / seg.clip
    fps = probe_video(src).fps
    idx = np.arange(seg.start, seg.end)
    tag = _tag(clips_dir, [(seg.clip, idx)])
    out = (cache or cache_dir()) / f"{Path(seg.clip).stem}__{seg.start}-{seg.end}__{tag}.mp4"
    if not out.exists():
        _write(out, _frames(src, idx), fps)
        _check_count(out, len(idx))
    return Video(out, fps, ((seg.clip, idx),))


def warped(clips_dir: Path, clip: str, cache: Path | None = None) -> tuple[Video, np.ndarray]:
    """The whole clip played at a smoothly varying speed; returns the video and the source
    position (float) behind each of its frames. Frames show the nearest source frame."""
    from carl_core.video import probe_video

    src = clips_dir / clip
    info = probe_video(src)
    pos = warp_positions(info.num_frames, stable_seed(clip))
    idx = np.rint(pos).astype(np.int64)
    out = (cache or cache_dir()) / f"{Path(clip).stem}__warp__{_tag(clips_dir, [(clip, idx)])}.mp4"
    if not out.exists():
        _write(out, _frames(src, idx), info.fps)
        _check_count(out, len(idx))
    return Video(out, info.fps, ((clip, idx),)), pos


def padded(
    clips_dir: Path, seg: Segment, cache: Path | None = None, seconds: float = PAD_SECONDS
) -> tuple[Video, int]:
    """The segment with ``seconds`` of other footage (resized to its frame size) before and after;
    returns the video and the offset of the segment's first frame in it."""
    from carl_core.video import probe_video

    src = clips_dir / seg.clip
    info = probe_video(src)
    before, after = [f for f in PAD_FILLERS if f != seg.clip][:2]
    n = round(seconds * info.fps)
    parts = (
        (before, np.arange(n)),
        (seg.clip, np.arange(seg.start, seg.end)),
        (after, np.arange(n)),
    )
    size = (info.width, info.height)
    tag = _tag(clips_dir, parts, f"{size}")
    out = (cache or cache_dir()) / f"{Path(seg.clip).stem}__{seg.start}-{seg.end}__pad{n}__{tag}.mp4"
    if not out.exists():

        def frames() -> Iterator[np.ndarray]:
            for clip, idx in parts:
                yield from _frames(clips_dir / clip, idx, size)

        _write(out, frames(), info.fps)
        _check_count(out, sum(len(i) for _, i in parts))
    return Video(out, info.fps, parts), n


__all__ = [
    "LABELS",
    "REAL_CLIPS",
    "REAL_POSE",
    "ClipNotes",
    "Event",
    "EventHit",
    "Labels",
    "Pair",
    "Segment",
    "Stretch",
    "Video",
    "align_and_carry",
    "carry_events",
    "check_labels",
    "cut",
    "load_labels",
    "original",
    "padded",
    "summarise",
    "tolerance",
    "true_warp_maps",
    "warp_positions",
    "warped",
]
