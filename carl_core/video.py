"""Reading and fps sampling of videos (writing: ``video_writer.py``).

Every read starts with a PyAV probe: it opens the file, finds the video stream, decodes the
first frame and walks the packets (reading the file once, decoding nothing more) to learn the
true frame count and each frame's presentation timestamp, and whether the file holds less
than its header promises (``VideoInfo.damaged``: a cut-off copy or download).

PyAV decodes. Frames are matched to the probe's timestamps by pts, so a frame the decoder
drops never shifts the ones after it; that is also what lets it decode less: a frame that
sampling does not use and that no other frame references is left out by the decoder itself
(``skip_frame``), and a far wanted frame is reached by a keyframe seek, checked where it
lands. Resizing happens in YUV before the one colour conversion (``_ToRGB``). On 2 cores this
costs less CPU per frame than decord on every file measured, from a third to nine tenths of
it, every frame or sampled, at the model's size or the stored one
(``benchmarks/bench_decode.py``), so decord is used only on request (``backend="decord"``).
That also avoids decord's known faults: rotation metadata ignored, variable frame rates
counted, MPEG-TS files started late, cut-off files read forever (dmlc/decord#373), frames
that vary from run to run after a seek (dmlc/decord#195).

Frame ``i`` is the i-th frame in presentation order in both readers. Timestamps are the
frames' real presentation times in seconds, counted from the first frame (so the first frame
is at 0.0 even where a container starts later). Frames keep their stored pixel grid: a
non-square pixel aspect ratio is not stretched, and mirroring in a display matrix is ignored
(rotation by multiples of 90 degrees is applied).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from carl_core.errors import ConfigError, VideoError
from carl_core.progress import Progress
from carl_core.video_writer import write_video  # the writer's old home: imports keep working

__all__ = [
    "FrameStream",
    "BLANK_STD",
    "VideoInfo",
    "blank_frames",
    "check_fps",
    "check_video_file",
    "iter_video",
    "nearest_frames",
    "open_video",
    "probe_video",
    "read_video",
    "sample_indices",
    "write_video",
]

log = logging.getLogger(__name__)

# decord decodes this many frames per call, which bounds memory at full resolution.
_DECORD_SPAN = 32
# Seek instead of decoding through at least this many frames to reach the next wanted one.
_SEEK_GAP = 16
# Frame intervals that differ from the median by more than this (relative) make a video VFR.
_VFR_TOLERANCE = 0.02
# Give up finding a first frame after this many packets that decode to nothing.
_MAX_PACKETS_BEFORE_FIRST_FRAME = 512
_BACKENDS = ("auto", "decord", "pyav")
# PyAV leaves out the frames that no wanted frame needs (benchmarks/bench_decode.py turns this
# off to measure what it buys).
_SKIP_UNWANTED = True


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds. ``width``/``height`` are as displayed (after ``rotation``).

    ``damaged``: None for a whole file; for one that holds less than its header promises (cut
    off in a copy or a download) or whose data stops reading part-way, a sentence for the user
    naming the file and how much of it is readable, e.g. "clip.mp4 is cut off or damaged: only
    frames 0-99 of 250 could be read (40%) ...". Such a file still reads: what is there.
    """

    path: Path
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    rotation: int  # clockwise degrees applied for display: 0, 90, 180 or 270
    codec: str
    damaged: str | None = None


@dataclass(frozen=True)
class _Probe:
    info: VideoInfo
    stream_index: int
    pts: np.ndarray  # int64, presentation order, one per frame
    keyframes: np.ndarray  # indices of the frames a decoder can start from, sorted, starts with 0
    timed: bool  # every frame has its own pts, so decoded frames can be matched by pts
    container_format: str  # FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    timestamps: np.ndarray  # float64 seconds from the first frame
    coded_width: int
    coded_height: int
    vfr: bool


def check_video_file(path: str | os.PathLike) -> None:
    """Raise ``VideoError`` unless ``path`` is an existing, non-empty file (no decoding)."""
    _check_file(Path(path))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"Video not found: {path}. Check the path.")
    if not path.is_file():
        raise VideoError(f"{path} is not a file. Give the path to a video file.")
    if path.stat().st_size == 0:
        raise VideoError(
            f"{path} is empty (0 bytes). The copy or download probably failed; get the file again."
        )


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    # Cover art in audio files is a one-picture "video" stream; it is not a video.
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        holds = f"it holds only {', '.join(kinds)}" if kinds else "it holds no streams at all"
        raise VideoError(f"{path} has no video stream ({holds}). Give a file with video in it.")
    return streams[0]


def _rotation_of(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> int:
    # PyAV reports the display matrix counter-clockwise; older files carry a clockwise "rotate" tag.
    ccw = 0.0
    with contextlib.suppress(AttributeError, ValueError, TypeError):
        ccw = float(frame.rotation or 0)
    if ccw == 0:
        with contextlib.suppress(ValueError, TypeError):
            ccw = -float(stream.metadata.get("rotate", 0))
    return int(round(-ccw / 90.0)) * 90 % 360


def _rate(value: Fraction | None) -> float:
    return float(value) if value else 0.0


def _probe(path: str | os.PathLike) -> _Probe:
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path), mode="r")
    except av.error.EOFError as exc:
        raise VideoError(
            f"{path} holds no video frames: it ends before the first one (cut off?). Get the complete file."
        ) from exc
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"{path} is not a video that FFmpeg can read ({exc}). Convert it to MP4 (H.264)."
        ) from exc
    with container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        pts_list: list[int | None] = []
        key_list: list[bool] = []
        first: av.VideoFrame | None = None
        tries = 0
        read = 0  # packets with data, those an edit list discards included (the header counts them)
        read_error = None
        try:
            for packet in container.demux(stream):
                if first is None and tries < _MAX_PACKETS_BEFORE_FIRST_FRAME:
                    # Discarded packets are decoded too: later frames may reference them.
                    first = _first_frame(stream, packet if packet.size else None)
                    tries += 1
                read += packet.size > 0
                if packet.size == 0 or packet.is_discard:  # flush packet; frame cut by an edit list
                    continue
                pts_list.append(packet.pts if packet.pts is not None else packet.dts)
                key_list.append(packet.is_keyframe)
        except av.error.FFmpegError as exc:
            # Damaged or cut-off data: keep what was read so far.
            log.warning("%s: stopped reading packets early (%s)", path, exc)
            read_error = str(exc)
        if not pts_list:
            raise VideoError(f"{path} has a video stream but no frames. Record or export the video again.")
        if first is None:
            raise VideoError(
                f"No frame of {path} could be decoded: the file is damaged or its codec is unsupported. "
                "Re-encode it to MP4 (H.264)."
            )
        probe = _make_probe(path, container.format.name, stream, first, pts_list, key_list)
        claimed_s = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
        claimed_s = claimed_s or (container.duration or 0) / 1e6
        damaged = _damage(probe.info, read, stream.frames or 0, claimed_s, read_error)
        return dataclasses.replace(probe, info=dataclasses.replace(probe.info, damaged=damaged))


def _damage(info: VideoInfo, read: int, claimed: int, claimed_s: float, read_error: str | None) -> str | None:
    """A sentence for the user when the file holds less than its header promises, else None."""
    n, name = info.num_frames, info.path.name
    readable = f"frames 0-{n - 1}" if n > 1 else "frame 0"
    if claimed > read:
        return (
            f"{name} is cut off or damaged: only {readable} of {claimed} could be read "
            f"({100 * n // claimed}%); the rest is left out. Get the complete file to use all of it."
        )
    # Without a frame count (Matroska, WebM), the header's duration; the margin keeps a
    # soundtrack a little longer than the picture from counting as damage.
    if claimed_s and info.duration < 0.9 * claimed_s and claimed_s - info.duration > 1.0:
        return (
            f"{name} is cut off or damaged: only {readable}, {info.duration:.1f} s of the "
            f"{claimed_s:.1f} s its header gives, could be read ({100 * info.duration / claimed_s:.0f}%); "
            "the rest is left out. Get the complete file to use all of it."
        )
    if read_error:
        return (
            f"{name} is damaged: reading stopped after {readable} ({read_error}); the rest is left out. "
            "Get the complete file or re-encode it to MP4 (H.264)."
        )
    return None


def _first_frame(stream: av.video.stream.VideoStream, packet: av.Packet | None) -> av.VideoFrame | None:
    try:
        frames = stream.decode(packet)
    except av.error.FFmpegError:
        return None
    return frames[0] if frames else None


def _make_probe(
    path: Path,
    container_format: str,
    stream: av.video.stream.VideoStream,
    first: av.VideoFrame,
    pts_list: list[int | None],
    key_list: list[bool],
) -> _Probe:
    n = len(pts_list)
    nominal_fps = _rate(stream.average_rate) or _rate(stream.guessed_rate)
    time_base = float(stream.time_base) if stream.time_base else 0.0
    if any(p is None for p in pts_list) or time_base <= 0:
        # No usable timing: fall back to a constant rate.
        fps = nominal_fps or 25.0
        pts = np.arange(n, dtype=np.int64)
        timestamps = pts / fps
        vfr, timed = False, False
        keyframes = np.zeros(1, dtype=np.int64)
    else:
        raw = np.asarray(pts_list, dtype=np.int64)
        pts = np.sort(raw)
        timestamps = (pts - pts[0]) * time_base
        timed = len(np.unique(pts)) == n  # duplicate pts cannot tell frames apart
        keyframes = np.union1d([0], np.searchsorted(pts, raw[np.asarray(key_list, dtype=bool)]))
        steps = np.diff(pts)
        vfr = False
        if len(steps) >= 2:
            median = float(np.median(steps))
            tolerance = max(1.0, _VFR_TOLERANCE * median)
            vfr = bool(np.any(np.abs(steps - median) > tolerance))
        span = float(timestamps[-1])
        fps = nominal_fps or ((n - 1) / span if n > 1 and span > 0 else 25.0)
    frame_step = float(np.median(np.diff(timestamps))) if n > 1 else 1.0 / fps
    duration = float(timestamps[-1]) + frame_step
    rotation = _rotation_of(first, stream)
    coded_w, coded_h = first.width, first.height
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    info = VideoInfo(
        path=path,
        num_frames=n,
        fps=float(fps),
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        codec=stream.codec_context.name,
    )
    return _Probe(
        info,
        stream.index,
        pts,
        keyframes,
        timed,
        container_format,
        timestamps,
        coded_w,
        coded_h,
        vfr,
    )


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps, duration, displayed size, rotation and codec of a video.

    Raises ``VideoError`` for a missing, empty, non-video or frameless file.
    """
    return _probe(path).info


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def check_fps(fps: float | None) -> None:
    """``ConfigError`` unless ``fps`` is a positive finite number of frames per second, or None."""
    if fps is not None and not (
        isinstance(fps, int | float) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0
    ):
        raise ConfigError(
            f"fps must be a positive number (frames per second) or None for every frame, got {fps!r}"
        )


def nearest_frames(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the frame whose time (``times``, increasing) is nearest each of ``at``; ties go
    to the earlier frame. Times outside the video take its first or last frame."""
    times, at = np.asarray(times, dtype=np.float64), np.asarray(at, dtype=np.float64)
    if len(times) < 2:
        return np.zeros(len(at), dtype=np.int64)
    hi = np.clip(np.searchsorted(times, at), 1, len(times) - 1)
    lo = hi - 1
    return np.where(at - times[lo] <= times[hi] - at, lo, hi)


def _nearest_on_grid(timestamps: np.ndarray, fps: float, duration: float) -> np.ndarray:
    """Indices of the frames nearest to the times 0, 1/fps, 2/fps, ... before ``duration``."""
    n = len(timestamps)
    count = max(1, math.ceil(duration * fps - 1e-9))
    targets = np.arange(count, dtype=np.float64) / fps
    after = np.clip(np.searchsorted(timestamps, targets, side="left"), 0, n - 1)
    before = np.clip(after - 1, 0, n - 1)
    # Ties go to the earlier frame; the small slack absorbs rounding of stored timestamps.
    take_before = (targets - timestamps[before]) <= (timestamps[after] - targets) + 1e-9
    return np.unique(np.where(take_before, before, after))


def sample_indices(num_frames: int, src_fps: float, fps: float | None) -> np.ndarray:
    """Frame indices that resample a constant-rate video from ``src_fps`` to ``fps``.

    Takes, for each time ``k / fps``, the nearest frame (ties to the earlier one), so
    60 -> 10 fps gives frames 0, 6, 12, ... With ``fps`` None or not below ``src_fps``
    every frame is kept: frames are never repeated.
    """
    check_fps(fps)
    if num_frames < 0:
        raise ConfigError(f"num_frames must be >= 0, got {num_frames}")
    if num_frames == 0:
        return np.zeros(0, dtype=np.int64)
    if fps is None or fps >= src_fps:
        return np.arange(num_frames, dtype=np.int64)
    if not (math.isfinite(src_fps) and src_fps > 0):
        raise ConfigError(f"src_fps must be a positive number of frames per second, got {src_fps!r}")
    timestamps = np.arange(num_frames, dtype=np.float64) / src_fps
    return _nearest_on_grid(timestamps, fps, num_frames / src_fps).astype(np.int64)


def _select(probe: _Probe, fps: float | None, indices: Iterable[int] | None) -> np.ndarray:
    n = probe.info.num_frames
    if indices is not None:
        if fps is not None:
            raise ConfigError("give either fps or indices, not both")
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices).astype(np.int64)
        if idx.ndim != 1:
            raise ConfigError(f"indices must be one-dimensional, got shape {idx.shape}")
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ConfigError(
                f"{probe.info.path.name} has frames 0 to {n - 1}: ask for frame indices in that range"
            )
        return idx
    check_fps(fps)
    if probe.vfr and fps is not None and fps < probe.info.num_frames / probe.info.duration:
        return _nearest_on_grid(probe.timestamps, fps, probe.info.duration).astype(np.int64)
    return sample_indices(n, probe.info.fps, fps)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


Size = int | tuple[int, int] | None


def _target_size(probe: _Probe, size: Size) -> tuple[int, int] | None:
    """Coded-orientation (width, height) of the decoded frames.

    ``size`` an int: the displayed shorter side becomes ``size``, keeping the aspect ratio.
    ``size`` a (width, height) pair: exactly that displayed size (the model's square input,
    squashed in one resampling step by the decoder instead of a second pass in torch).
    """
    if size is None:
        return None
    if isinstance(size, tuple):
        if not (len(size) == 2 and all(isinstance(v, int | np.integer) and v > 0 for v in size)):
            raise ConfigError(f"size must be a positive int, a (width, height) pair or None, got {size!r}")
        w, h = int(size[0]), int(size[1])
        return (h, w) if probe.info.rotation in (90, 270) else (w, h)
    if not (isinstance(size, int | np.integer) and size > 0):
        raise ConfigError(f"size must be a positive int, a (width, height) pair or None, got {size!r}")
    w, h = probe.coded_width, probe.coded_height
    scale = size / min(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _upright(frames: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return frames
    # np.rot90 turns counter-clockwise for positive k; rotation is clockwise.
    return np.ascontiguousarray(np.rot90(frames, k=-(rotation // 90), axes=(-3, -2)))


def _decord_frames(probe: _Probe, wanted: np.ndarray, out_wh: tuple[int, int] | None, threads: int):
    """Yield (index, frame) for the sorted unique ``wanted`` indices with decord.

    Reads back-to-back ranges from wanted[0] to wanted[-1], so decord never seeks after its
    first position.
    """
    import decord  # optional: there are no decord wheels for some platforms

    w, h = out_wh if out_wh else (-1, -1)
    path = str(probe.info.path)
    reader = decord.VideoReader(path, ctx=decord.cpu(0), width=w, height=h, num_threads=threads)
    if len(reader) != probe.info.num_frames:
        raise RuntimeError(f"decord counts {len(reader)} frames, the packets {probe.info.num_frames}")
    expected = (out_wh[1], out_wh[0]) if out_wh else (probe.coded_height, probe.coded_width)
    for start in range(int(wanted[0]), int(wanted[-1]) + 1, _DECORD_SPAN):
        span = np.arange(start, min(start + _DECORD_SPAN, int(wanted[-1]) + 1))
        keep = np.isin(span, wanted)
        batch = reader.get_batch(span.tolist())
        # A bridge set elsewhere (decord.bridge.set_bridge) changes the return type.
        arr = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        if arr.shape != (len(span), *expected, 3):
            raise RuntimeError(f"decord returned shape {arr.shape}, expected {(len(span), *expected, 3)}")
        for idx, frame in zip(span[keep], arr[keep]):
            yield int(idx), frame


class _SeekMissed(Exception):
    """A keyframe seek did not land on a known frame at or before the wanted one."""


def _pyav_frames(probe: _Probe, wanted: np.ndarray, out_wh: tuple[int, int] | None, threads: int):
    """Yield (index, frame) for the sorted unique ``wanted`` indices with PyAV."""
    pending, seek = wanted, True
    while len(pending):
        try:
            for idx, frame in _pyav_scan(probe, pending, out_wh, threads, seek=seek):
                yield idx, frame
                pending = pending[pending > idx]
            return
        except _SeekMissed:  # decode the frames still missing from the start, without seeking
            seek = False


def _keyframe_before(probe: _Probe, index: int) -> int:
    return int(probe.keyframes[np.searchsorted(probe.keyframes, index, side="right") - 1])


def _pyav_scan(probe: _Probe, wanted: np.ndarray, out_wh: tuple[int, int] | None, threads: int, seek: bool):
    with av.open(str(probe.info.path), mode="r") as container:
        stream = container.streams[probe.stream_index]
        assert isinstance(stream, av.video.stream.VideoStream)  # the probe chose it as the video
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        # Matching frames by pts keeps a frame the decoder drops from shifting the ones after it.
        # AVI stores no presentation times (its pts are in decode order), so there we count.
        timed = probe.timed and "avi" not in container.format.name
        by_pts = {int(p): i for i, p in enumerate(probe.pts)} if timed else {}
        seek = seek and bool(by_pts)
        # Frames that no wanted frame needs are not decoded at all: the decoder drops unwanted
        # frames that nothing references (codec_context.skip_frame), and matching by pts keeps
        # every decoded frame's identity. Counting frames would miss the dropped ones: timed only.
        sparse = _SKIP_UNWANTED and timed and len(wanted) < len(probe.pts)
        keep = {int(p) for p in probe.pts[wanted]} if sparse else None
        to_rgb = _ToRGB(out_wh)
        pos = 0  # next entry of ``wanted``
        counter = 0  # index of the next frame the decoder gives, where pts do not tell
        while pos < len(wanted):
            landing = None
            key = _keyframe_before(probe, int(wanted[pos]))
            if seek and key - counter >= _SEEK_GAP:  # a seek is cheaper than decoding up to the keyframe
                try:
                    container.seek(int(probe.pts[key]), stream=stream, backward=True, any_frame=False)
                except av.error.FFmpegError as exc:
                    raise _SeekMissed from exc
                stream.codec_context.flush_buffers()
                landing = key
            for frame in _decoded(container, stream, keep):
                idx = by_pts.get(frame.pts, counter) if frame.pts is not None else counter
                if landing is not None:
                    # Only a known keyframe at or before the wanted frame gives a sure position.
                    if frame.pts not in by_pts or idx > wanted[pos] or not frame.key_frame:
                        raise _SeekMissed
                    landing = None
                counter = idx + 1
                while pos < len(wanted) and wanted[pos] < idx:
                    pos += 1  # that frame never came out of the decoder
                if pos == len(wanted):
                    return
                if wanted[pos] == idx:
                    yield idx, to_rgb(frame)
                    pos += 1
                    if pos == len(wanted):
                        return
                    if seek and _keyframe_before(probe, int(wanted[pos])) - counter >= _SEEK_GAP:
                        break  # the next wanted frame is far ahead: seek to it
            else:
                if landing is not None:
                    raise _SeekMissed  # nothing decoded after the seek
                return  # end of stream


class _ToRGB:
    """Decoded frames to uint8 RGB arrays, resized, with swscale contexts kept from frame to frame.

    4:2:0 frames are scaled in YUV, then converted: swscale's scaled path to packed RGB is
    plain C, its planar scaling and its unscaled YUV-to-RGB are SIMD, so two passes cost about
    half of one (0.2 against 0.4-0.6 ms for 640x360 to 224x224 on 2 cores). The colours
    differ only in the chroma of the small picture: half the output size, as in the source.
    Single-threaded: decoding runs beside the model's threads, which fill the cores.
    """

    _PLANAR_420 = ("yuv420p", "yuvj420p")

    def __init__(self, out_wh: tuple[int, int] | None):
        self.out_wh = out_wh
        self.scale, self.convert = VideoReformatter(), VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self.out_wh is None:
            return self.convert.reformat(frame, format="rgb24", threads=1).to_ndarray()
        w, h = self.out_wh
        if frame.format.name in self._PLANAR_420 and w % 2 == 0 and h % 2 == 0:
            # AREA: a proper low-pass for downscaling, and faster than BILINEAR in swscale.
            frame = self.scale.reformat(
                frame, width=w, height=h, format=frame.format.name, interpolation="AREA", threads=1
            )
            return self.convert.reformat(frame, format="rgb24", threads=1).to_ndarray()
        return self.scale.reformat(
            frame, width=w, height=h, format="rgb24", interpolation="AREA", threads=1
        ).to_ndarray()


def _decoded(container, stream, keep: set[int] | None = None) -> Iterator[av.VideoFrame]:
    """Every frame that decodes; damaged packets are skipped, a cut-off file ends the stream.

    ``keep``: the pts of the frames wanted; other frames are decoded only where a later frame
    references them.
    """
    context = stream.codec_context
    skipping = False
    try:
        for packet in container.demux(stream):
            if keep is not None:
                skip = packet.size > 0 and packet.pts is not None and packet.pts not in keep
                if skip != skipping:
                    context.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            try:
                yield from stream.decode(packet)
            except av.error.FFmpegError as exc:
                log.debug("skipping a packet that does not decode: %s", exc)
    except av.error.FFmpegError as exc:
        log.warning("%s: stopped reading early (%s)", container.name, exc)
        with contextlib.suppress(av.error.FFmpegError):
            yield from stream.decode(None)


def _frames(probe: _Probe, wanted: np.ndarray, out_wh: tuple[int, int] | None, backend: str, threads: int):
    """(index, frame) pairs for sorted unique ``wanted``: PyAV, or decord where asked for."""
    if backend != "decord":
        yield from _pyav_frames(probe, wanted, out_wh, threads)
        return
    try:
        yield from _decord_frames(probe, wanted, out_wh, threads)
    except Exception as exc:  # decord raises many types
        raise VideoError(f"decord cannot read {probe.info.path}: {exc}") from exc


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(_BACKENDS)}, got {backend!r}")


def _chunks(
    probe: _Probe,
    order: np.ndarray,
    size: Size,
    chunk: int,
    backend: str,
    threads: int,
    on_progress: Progress | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode the frames ``order`` (sorted, unique); yield (indices, frames upright, timestamps).

    Frames that do not decode are missing from the indices, so a damaged stretch never
    shifts the frames after it.
    """
    out_wh = _target_size(probe, size)
    total = len(order)
    buffer: list[np.ndarray] = []
    got: list[int] = []
    done = 0
    for idx, frame in _frames(probe, order, out_wh, backend, threads):
        buffer.append(frame)
        got.append(idx)
        if len(buffer) == chunk:
            done += len(buffer)
            yield np.asarray(got), _upright(np.stack(buffer), probe.info.rotation), probe.timestamps[got]
            buffer, got = [], []
            if on_progress:
                on_progress(done, total, f"decoding {probe.info.path.name}")
    if buffer:
        done += len(buffer)
        yield np.asarray(got), _upright(np.stack(buffer), probe.info.rotation), probe.timestamps[got]
    if total and done == 0:
        raise VideoError(
            f"No frame of {probe.info.path} could be decoded: the file is damaged. "
            "Re-encode it to MP4 (H.264)."
        )
    if done < total:
        log.warning(
            "%s: only %d of %d frames decode; the file is cut off or damaged", probe.info.path, done, total
        )
    if on_progress:
        on_progress(done, total, f"decoded {probe.info.path.name}")


def _empty(probe: _Probe, size: Size) -> np.ndarray:
    wh = _target_size(probe, size) or (probe.coded_width, probe.coded_height)
    w, h = (wh[1], wh[0]) if probe.info.rotation in (90, 270) else wh
    return np.zeros((0, h, w, 3), dtype=np.uint8)


class FrameStream:
    """A probed video, ready to stream: ``info``, the planned frames, and chunks on iteration.

    ``len(stream)`` and ``timestamps`` are what the plan holds; a damaged or cut-off file can
    yield fewer frames (those that decode), never more. Iterating yields
    ``(frames (t, H, W, 3) uint8 RGB upright, timestamps (t,) s)`` chunks; each iteration
    decodes the file again from the start.
    """

    def __init__(
        self,
        probe: _Probe,
        order: np.ndarray,
        size: Size,
        chunk: int,
        backend: str,
        threads: int,
        on_progress: Progress | None,
    ):
        self._probe, self._order = probe, order
        self._size, self._chunk, self._backend, self._on_progress = size, chunk, backend, on_progress
        self._threads = threads

    @property
    def info(self) -> VideoInfo:
        return self._probe.info

    @property
    def indices(self) -> np.ndarray:
        """Frame indices (presentation order) that the stream will decode."""
        return self._order

    @property
    def timestamps(self) -> np.ndarray:
        """Seconds from the first frame of each planned frame."""
        return self._probe.timestamps[self._order]

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return ((frames, times) for _, frames, times in self.indexed())

    def indexed(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks ``(indices (t,) int64, frames, timestamps)``: each frame's index in the file,
        which differs from the plan's where a damaged stretch did not decode."""
        return _chunks(
            self._probe, self._order, self._size, self._chunk, self._backend, self._threads, self._on_progress
        )


# Frames whose (grey, about 32 x 32) picture varies less than this, in grey levels of 0-255, are
# blank: black, a fade's end, a uniform card. Measured on the real clips at the model's input
# size: the lowest per-frame standard deviation of any picture with content is 27 (a dim
# indoor clip, mmaction2__test.mp4); a fade to black (ikramaliokz__squat.mp4, frames 768-783)
# falls 49, 43, ..., 15, 10, 6.3 and then under 6 to 0, the last faint figure being at 10; a
# blurred title card over the action (tayyab__pushup2.mp4's first frames) is at 76-81.
BLANK_STD = 8.0


def blank_frames(frames: np.ndarray) -> np.ndarray:
    """(t,) bool: which uint8 (t, H, W, 3) frames are blank (nearly uniform: black, white, grey).

    Cheap: the standard deviation of a strided grey copy of about 32 x 32 pixels per frame.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) == 0:
        return np.zeros(len(frames), dtype=bool)
    step = max(1, min(frames.shape[1:3]) // 32)
    grey = frames[:, ::step, ::step].mean(axis=3, dtype=np.float32)
    return grey.std(axis=(1, 2)) < BLANK_STD


def open_video(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    size: Size = None,
    chunk: int = 64,
    backend: str = "auto",
    on_progress: Progress | None = None,
    threads: int = 0,
) -> FrameStream:
    """Probe a video (rejecting bad files now) and plan its frames; iterate the result to decode.

    Arguments as in ``iter_video``. ``threads``: the decoder's threads; 0 lets it choose (the
    fastest when decoding is all that runs), 1 costs the least CPU per frame, for when other
    work fills the cores (``embed.py`` decodes beside the model).
    """
    _check_backend(backend)
    if chunk < 1:
        raise ConfigError(f"chunk must be at least 1 frame, got {chunk}")
    probe = _probe(path)
    order = _select(probe, fps, None)
    _target_size(probe, size)  # validate now rather than on first iteration
    if not (isinstance(threads, int) and threads >= 0):
        raise ConfigError(f"threads must be 0 (the decoder's choice) or a positive count, got {threads!r}")
    return FrameStream(probe, order, size, chunk, backend, threads, on_progress)


def iter_video(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    size: Size = None,
    chunk: int = 64,
    backend: str = "auto",
    on_progress: Progress | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream a video as chunks ``(frames (t, H, W, 3) uint8 RGB upright, timestamps (t,) s)``.

    Memory stays flat however long the video: at most ``chunk`` frames are held. ``fps`` and
    ``size`` mean the same as in ``read_video``. A cut-off file yields what decodes.
    The file is probed (and bad files rejected) when this is called, not on first iteration.
    """
    return iter(open_video(path, fps=fps, size=size, chunk=chunk, backend=backend, on_progress=on_progress))


def read_video(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    size: Size = None,
    indices: Iterable[int] | None = None,
    backend: str = "auto",
    on_progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a video to ``(frames (T, H, W, 3) uint8 RGB upright, timestamps (T,) float64 s)``.

    ``fps``: resample to this rate by picking frames (``sample_indices``; by real timestamps
    for variable-rate videos); None keeps every frame. ``size``: resize at decode time so the
    shorter displayed side is ``size``, keeping the aspect ratio; a ``(width, height)`` pair
    gives exactly that displayed size. ``indices``: exactly these
    frames, in this order (repeats allowed). ``backend``: "auto" or "pyav" (PyAV), or
    "decord". A cut-off file gives the frames that decode.
    """
    _check_backend(backend)
    probe = _probe(path)
    wanted = _select(probe, fps, indices)
    if len(wanted) == 0:
        return _empty(probe, size), np.zeros(0, dtype=np.float64)
    order = np.unique(wanted)
    frames: np.ndarray | None = None
    times = np.zeros(len(order), dtype=np.float64)
    got = np.zeros(len(order), dtype=np.int64)
    filled = 0
    for chunk_idx, chunk_frames, chunk_times in _chunks(probe, order, size, 64, backend, 0, on_progress):
        if frames is None:  # allocate once: concatenating chunks would double the peak memory
            frames = np.empty((len(order), *chunk_frames.shape[1:]), dtype=np.uint8)
        end = filled + len(chunk_frames)
        frames[filled:end], times[filled:end], got[filled:end] = chunk_frames, chunk_times, chunk_idx
        filled = end
    assert frames is not None  # _chunks raises when nothing decodes
    if filled == len(wanted) and np.array_equal(got, wanted):
        return frames, times  # the common case: every frame, in order, no copy
    # Reorder or repeat as asked; requested frames that did not decode (damaged or cut-off
    # file) are left out.
    got = got[:filled]
    slot = np.searchsorted(got, wanted).clip(0, max(filled - 1, 0))
    keep = got[slot] == wanted
    return frames[slot[keep]], times[slot[keep]]
