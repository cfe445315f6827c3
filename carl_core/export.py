"""The aligned side-by-side video: two performances played together, frame by frame by DTW.

Kinovea-style tools sync two videos by one time offset; here B follows A through the DTW frame
mapping, so a slow start or a pause in one does not throw the rest out of step.

Timelines (``timeline=``):

- ``"a"``: A plays at its own pace (every frame of A at A's frame rate, or at ``fps``); B shows
  the frame matched to A's current time. The mapping is known at the embedded frames (often
  10 per second); between them B's time is interpolated linearly, so B moves smoothly too.
- ``"b"``: the same with B leading (needs ``b_to_a``).
- ``"path"``: a common timeline along the warping path: one output frame per path step, so
  both videos move, each pausing where the other does more. Needs ``path``.

Both videos are decoded once, front to back, at the output size (the timelines are monotone),
so memory does not grow with length. Each side carries its frame number in the file and its
time; with a ``confidence`` the estimated probability that the match is right too.

`export_alignment` is the one entry point: the CLI's ``align --export`` and the app's download
both call it with an alignment, its frame mapping and the embedded frames' times, so the two
cannot drift apart.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import AlignmentError, ConfigError
from .video import open_video, probe_video, write_video

if TYPE_CHECKING:
    from .align import Alignment, FrameMapping
    from .confidence import MatchConfidence

Progress = Callable[[int, int, str], None]
TIMELINES = ("a", "b", "path")


def _as_times(t: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise AlignmentError(f"{name} must be a non-empty list of finite times in seconds.")
    if np.any(np.diff(arr) < 0):
        raise AlignmentError(f"{name} must be sorted: one time per embedded frame, in order.")
    return arr


def _as_map(m: Sequence[int] | np.ndarray, n: int, m_len: int, name: str) -> np.ndarray:
    arr = np.asarray(m).reshape(-1)
    if arr.shape[0] != n:
        raise AlignmentError(f"{name} has {arr.shape[0]} entries for {n} frames; pass one match per frame.")
    if arr.size and (arr.min() < 0 or arr.max() >= m_len):
        raise AlignmentError(f"{name} points outside the other video's {m_len} embedded frames.")
    return arr.astype(np.int64)


def plan_timeline(
    a_to_b: Sequence[int] | np.ndarray,
    times_a: Sequence[float] | np.ndarray,
    times_b: Sequence[float] | np.ndarray,
    *,
    timeline: str = "a",
    fps: float | None = None,
    b_to_a: Sequence[int] | np.ndarray | None = None,
    path: tuple[Sequence[int], Sequence[int]] | None = None,
    span: tuple[float, float] | None = None,
    frame_times: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time in A, time in B, index of the embedded A frame at or before) for every output frame.

    Times are seconds from each video's first frame, non-decreasing on both sides. With
    ``fps=None`` the leading video shows each of its frames once: ``frame_times`` (the times of
    all its decoded frames; default its embedded frames). A grid at ``fps`` instead samples it
    from ``span`` (default: its first and last embedded frames); beyond the embedded frames the
    nearest match holds.
    """
    ta, tb = _as_times(times_a, "times_a"), _as_times(times_b, "times_b")
    if timeline not in TIMELINES:
        raise ConfigError(f"timeline must be one of {', '.join(TIMELINES)}, got {timeline!r}")
    if timeline == "path":
        if path is None:
            raise ConfigError("timeline 'path' needs the warping path (path_a, path_b)")
        pa, pb = (np.asarray(p, dtype=np.int64).reshape(-1) for p in path)
        if pa.shape != pb.shape or pa.size == 0:
            raise AlignmentError("path_a and path_b must be non-empty and of equal length.")
        if pa.min() < 0 or pa.max() >= ta.size or pb.min() < 0 or pb.max() >= tb.size:
            raise AlignmentError("the path points outside the embedded frames of A or B.")
        return ta[pa], tb[pb], pa
    if timeline == "b":
        if b_to_a is None:
            raise ConfigError("timeline 'b' needs b_to_a, the mapping from B's frames to A's")
        out_b, out_a, lead = plan_timeline(
            b_to_a, tb, ta, timeline="a", fps=fps, span=span, frame_times=frame_times
        )
        return out_a, out_b, np.asarray(_as_map(b_to_a, tb.size, ta.size, "b_to_a"))[lead]
    matched = tb[_as_map(a_to_b, ta.size, tb.size, "a_to_b")]
    if fps is None:
        # The leader's own frames, each once: a grid at its nominal rate drifts off its frames
        # wherever the file's timing is not exactly that rate (a rate of 30.0009 for frames 1/30 s
        # apart showed frame 0 twice and never the last).
        out_a = ta if frame_times is None else _as_times(frame_times, "frame_times")
    else:
        first, last = span if span is not None else (ta[0], ta[-1])
        count = max(1, int(math.floor((last - first) * fps + 1e-6)) + 1)
        out_a = first + np.arange(count) / fps
    # A monotone mapping interpolated stays monotone: B never jumps back.
    out_b = np.maximum.accumulate(np.interp(out_a, ta, matched))
    nearest = np.clip(np.searchsorted(ta, out_a + 1e-9, side="right") - 1, 0, ta.size - 1)
    return out_a, out_b, nearest


class _Cursor:
    """Walks a video's frames front to back, giving the frame on show at a requested time."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int]):
        stream = open_video(path, size=size, chunk=16)
        self.times, self._numbers = stream.timestamps, stream.indices
        self._chunks = iter(stream)
        self._frames, self._times = next(self._chunks)  # open_video has checked one frame decodes

    def at(self, t: float) -> tuple[np.ndarray, int, float]:
        """(frame, frame number in the file, its time): the frame nearest to ``t`` (the later
        one on a tie), so a time a hair off a frame's own still shows that frame."""
        while self._times[-1] <= t:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            # The old chunk's last frame stays in front: a time before the new chunk may show it.
            self._frames = np.concatenate([self._frames[-1:], nxt[0]])
            self._times = np.concatenate([self._times[-1:], nxt[1]])
        k = max(int(np.searchsorted(self._times, t, side="right")) - 1, 0)
        if k + 1 < len(self._times) and self._times[k + 1] - t <= t - self._times[k]:
            k += 1
        shown = float(self._times[k])
        j = min(int(np.searchsorted(self.times, shown - 1e-9)), len(self._numbers) - 1)
        return self._frames[k], int(self._numbers[j]), shown


def _display_size(path: str | os.PathLike, height: int) -> tuple[int, int]:
    info = probe_video(path)
    width = max(2, int(round(height * info.width / max(info.height, 1) / 2)) * 2)
    return width, height


class _Label:
    """Draws 'A  frame 123  4.10 s  match 0.93' in a dark band at the top of a frame."""

    def __init__(self, height: int):
        from PIL import ImageFont

        self.size = max(10, height // 22)
        try:
            self.font = ImageFont.load_default(size=self.size)
        except (TypeError, OSError):  # Pillow built without FreeType: the bitmap font
            self.font = ImageFont.load_default()

    def __call__(self, frame: np.ndarray, text: str) -> np.ndarray:
        from PIL import Image, ImageDraw

        img = Image.fromarray(frame)
        draw = ImageDraw.Draw(img, "RGBA")
        pad = max(2, self.size // 4)
        box = draw.textbbox((pad, pad), text, font=self.font)
        draw.rectangle((0, 0, box[2] + pad, box[3] + pad), fill=(0, 0, 0, 160))
        draw.text((pad, pad), text, font=self.font, fill=(255, 255, 255, 255))
        return np.asarray(img)


def write_side_by_side(
    out: str | os.PathLike,
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    a_to_b: Sequence[int] | np.ndarray,
    times_a: Sequence[float] | np.ndarray,
    times_b: Sequence[float] | np.ndarray,
    *,
    height: int = 360,
    fps: float | None = None,
    timeline: str = "a",
    b_to_a: Sequence[int] | np.ndarray | None = None,
    path: tuple[Sequence[int], Sequence[int]] | None = None,
    confidence: Sequence[float] | np.ndarray | None = None,
    gap: int = 8,
    on_progress: Progress | None = None,
) -> Path:
    """Write an H.264 mp4 of A and B side by side following an alignment; return ``out``.

    ``a_to_b`` (and ``b_to_a``, ``path``) index the embedded frames, whose times in seconds
    are ``times_a`` and ``times_b`` (what ``embed_video`` returns). ``height``: output height
    in pixels (each side keeps its aspect ratio). ``fps``: output rate; by default every frame
    of the leading video once (A for timeline "a", B for "b"), and the embedding rate for
    "path". ``confidence``: per embedded frame of the leading video, the probability that its
    match is right, shown as "match 87%" (NaN: "no match").
    Most callers want `export_alignment`, which takes these from an alignment.
    """
    if not (isinstance(height, int) and 16 <= height <= 4320):
        raise ConfigError(f"height must be a whole number of pixels from 16 to 4320, got {height!r}")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 240):
        raise ConfigError(f"fps must be between 0 and 240, got {fps!r}")
    height += height % 2
    ta, tb = _as_times(times_a, "times_a"), _as_times(times_b, "times_b")
    rate = fps
    if rate is None:
        if timeline == "path":
            step = np.median(np.diff(ta)) if ta.size > 1 else 0.1
            rate = 1.0 / step if step > 0 else 10.0
        else:
            rate = probe_video(path_b if timeline == "b" else path_a).fps
        rate = float(min(max(rate, 1.0), 120.0))
    cur_a = _Cursor(path_a, _display_size(path_a, height))
    cur_b = _Cursor(path_b, _display_size(path_b, height))
    leader = cur_b if timeline == "b" else cur_a
    span = (float(leader.times[0]), float(leader.times[-1]))
    out_a, out_b, lead = plan_timeline(
        a_to_b, ta, tb, timeline=timeline, fps=fps, b_to_a=b_to_a, path=path, span=span,
        frame_times=leader.times,
    )  # fmt: skip
    conf = None if confidence is None else np.asarray(confidence, dtype=np.float64).reshape(-1)
    if conf is not None and timeline == "b":
        lead = np.clip(np.searchsorted(tb, out_b + 1e-9, side="right") - 1, 0, tb.size - 1)
    conf_at = None if conf is None else conf[np.clip(lead, 0, conf.size - 1)]
    label = _Label(height)
    total = len(out_a)

    def frames() -> Iterator[np.ndarray]:
        spacer = None
        for i in range(total):
            fa, na, sa = cur_a.at(out_a[i])
            fb, nb, sb = cur_b.at(out_b[i])
            match = ""
            if conf_at is not None:
                match = "  no match" if not np.isfinite(conf_at[i]) else f"  match {100 * conf_at[i]:.0f}%"
            fa = label(fa, f"A  frame {na}  {sa:.2f} s")
            fb = label(fb, f"B  frame {nb}  {sb:.2f} s{match}")
            if spacer is None:
                spacer = np.zeros((height, gap, 3), dtype=np.uint8)
            yield np.concatenate([fa, spacer, fb], axis=1)
            if on_progress and (i % 16 == 0 or i == total - 1):
                on_progress(i + 1, total, f"writing the side-by-side video: frame {i + 1} of {total}")

    return write_video(out, frames(), rate)


def export_alignment(
    out: str | os.PathLike,
    path_a: str | os.PathLike,
    path_b: str | os.PathLike,
    alignment: Alignment,
    mapping: FrameMapping,
    times_a: Sequence[float] | np.ndarray,
    times_b: Sequence[float] | np.ndarray,
    *,
    timeline: str = "a",
    confidence: MatchConfidence | None = None,
    height: int = 360,
    fps: float | None = None,
    on_progress: Progress | None = None,
) -> Path:
    """The side-by-side video of an alignment: the one export the CLI and the app both call.

    ``times_a``/``times_b``: seconds of the embedded frames that ``alignment`` indexes.
    ``confidence`` (`carl_core.confidence.match_confidence`): shown for the leading video's
    frames; frames the alignment leaves unmatched read "no match". Other arguments as in
    `write_side_by_side`.
    """
    conf = None
    if confidence is not None:
        lead_b = timeline == "b"
        values = confidence.b if lead_b else confidence.a
        covered = mapping.covered_b if lead_b else mapping.covered_a
        conf = np.where(covered, values, np.nan)
    return write_side_by_side(
        out, path_a, path_b, mapping.a_to_b, times_a, times_b,
        height=height, fps=fps, timeline=timeline, b_to_a=mapping.b_to_a,
        path=(alignment.path_a, alignment.path_b), confidence=conf, on_progress=on_progress,
    )  # fmt: skip


__all__ = ["TIMELINES", "export_alignment", "plan_timeline", "write_side_by_side"]
