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
time; with ``similarity`` the match confidence too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .errors import AlignmentError, ConfigError
from .video import open_video, probe_video, write_video

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
    fps: float,
    b_to_a: Sequence[int] | np.ndarray | None = None,
    path: tuple[Sequence[int], Sequence[int]] | None = None,
    span: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time in A, time in B, index of the nearest embedded A frame) for every output frame.

    Times are seconds from each video's first frame, non-decreasing on both sides. ``span``:
    the leading video's first and last frame times (default: its first and last embedded
    frames); beyond the embedded frames the nearest match holds.
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
        out_b, out_a, lead = plan_timeline(b_to_a, tb, ta, timeline="a", fps=fps, span=span)
        return out_a, out_b, np.asarray(_as_map(b_to_a, tb.size, ta.size, "b_to_a"))[lead]
    matched = tb[_as_map(a_to_b, ta.size, tb.size, "a_to_b")]
    first, last = span if span is not None else (ta[0], ta[-1])
    count = max(1, int(math.floor((last - first) * fps + 1e-6)) + 1)
    out_a = first + np.arange(count) / fps
    # A monotone mapping interpolated stays monotone: B never jumps back.
    out_b = np.maximum.accumulate(np.interp(out_a, ta, matched))
    nearest = np.clip(np.searchsorted(ta, out_a, side="right") - 1, 0, ta.size - 1)
    return out_a, out_b, nearest


class _Cursor:
    """Walks a video's frames front to back, giving the frame on show at a requested time."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int]):
        stream = open_video(path, size=size, chunk=16)
        self.times, self._numbers = stream.timestamps, stream.indices
        self._chunks = iter(stream)
        self._frames, self._times = next(self._chunks)  # open_video has checked one frame decodes

    def at(self, t: float) -> tuple[np.ndarray, int, float]:
        """(frame, frame number in the file, its time): the last frame at or before ``t``."""
        while self._times[-1] <= t + 1e-9:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            # The old chunk's last frame stays in front: a time before the new chunk shows it.
            self._frames = np.concatenate([self._frames[-1:], nxt[0]])
            self._times = np.concatenate([self._times[-1:], nxt[1]])
        k = max(int(np.searchsorted(self._times, t + 1e-9, side="right")) - 1, 0)
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
    similarity: Sequence[float] | np.ndarray | None = None,
    gap: int = 8,
    on_progress: Progress | None = None,
) -> Path:
    """Write an H.264 mp4 of A and B side by side following an alignment; return ``out``.

    ``a_to_b`` (and ``b_to_a``, ``path``) index the embedded frames, whose times in seconds
    are ``times_a`` and ``times_b`` (what ``embed_video`` returns). ``height``: output height
    in pixels (each side keeps its aspect ratio). ``fps``: output rate; default A's frame rate
    for timeline "a", B's for "b", and the embedding rate for "path". ``similarity``: per
    embedded frame of the leading video, shown as the match confidence.
    """
    if not (isinstance(height, int) and 16 <= height <= 4320):
        raise ConfigError(f"height must be a whole number of pixels from 16 to 4320, got {height!r}")
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 240):
        raise ConfigError(f"fps must be between 0 and 240, got {fps!r}")
    height += height % 2
    ta, tb = _as_times(times_a, "times_a"), _as_times(times_b, "times_b")
    if fps is None:
        if timeline == "path":
            step = np.median(np.diff(ta)) if ta.size > 1 else 0.1
            fps = 1.0 / step if step > 0 else 10.0
        else:
            fps = probe_video(path_b if timeline == "b" else path_a).fps
        fps = float(min(max(fps, 1.0), 120.0))
    cur_a = _Cursor(path_a, _display_size(path_a, height))
    cur_b = _Cursor(path_b, _display_size(path_b, height))
    leader = cur_b if timeline == "b" else cur_a
    span = (float(leader.times[0]), float(leader.times[-1]))
    out_a, out_b, lead = plan_timeline(
        a_to_b, ta, tb, timeline=timeline, fps=fps, b_to_a=b_to_a, path=path, span=span
    )
    sim = None if similarity is None else np.asarray(similarity, dtype=np.float64).reshape(-1)
    if timeline == "b" and sim is not None:
        lead_b = np.clip(np.searchsorted(tb, out_b, side="right") - 1, 0, tb.size - 1)
        sim_at = sim[np.clip(lead_b, 0, sim.size - 1)]
    else:
        sim_at = None if sim is None else sim[np.clip(lead, 0, sim.size - 1)]
    label = _Label(height)
    total = len(out_a)

    def frames() -> Iterator[np.ndarray]:
        spacer = None
        for i in range(total):
            fa, na, sa = cur_a.at(out_a[i])
            fb, nb, sb = cur_b.at(out_b[i])
            match = "" if sim_at is None else f"  match {sim_at[i]:.2f}"
            fa = label(fa, f"A  frame {na}  {sa:.2f} s")
            fb = label(fb, f"B  frame {nb}  {sb:.2f} s{match}")
            if spacer is None:
                spacer = np.zeros((height, gap, 3), dtype=np.uint8)
            yield np.concatenate([fa, spacer, fb], axis=1)
            if on_progress and (i % 16 == 0 or i == total - 1):
                on_progress(i + 1, total, f"writing the side-by-side video: frame {i + 1} of {total}")

    return write_video(out, frames(), fps)


__all__ = ["TIMELINES", "plan_timeline", "write_side_by_side"]
