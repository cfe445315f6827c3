"""Writing videos: RGB frames in, an H.264 (or other) file out, atomically.

Frames stream to the encoder one by one, so memory does not grow with length; the file
appears only when complete.

``deterministic=True`` makes the bytes a function of the frames alone, for data that must come
out the same in every process and on every machine (``synthetic.py``). By default x264 is not:
its output follows its thread count, which follows the CPUs a process may use, and its MB-tree
rate control, run by its SIMD code, gave 8 different files in 40 encodes of the same 64 x 64
frames on an AVX-512 machine here (none with MB-tree off, or with x264's plain C code). So:
one thread and no MB-tree, at a small cost in speed and size.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from carl_core.errors import ConfigError, VideoError

__all__ = ["write_video"]


# Encoders that understand a constant-rate-factor quality setting.
_CRF_CODECS = {"libx264", "libx265", "libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"}
# Chroma-subsampled pixel formats need even frame sizes.
_EVEN_PIX_FMTS = {"yuv420p", "yuvj420p", "yuv420p10le", "nv12", "yuv422p", "yuvj422p"}


def _as_rational(fps: float) -> Fraction:
    # limit_denominator(1001) turns 29.97002997 into 30000/1001 and keeps 12.5 as 25/2.
    if not (isinstance(fps, int | float | Fraction) and math.isfinite(fps) and fps > 0):
        raise ConfigError(f"the frame rate to write must be a positive number, got {fps!r}")
    return Fraction(fps).limit_denominator(1001)


def _rgb_frame(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise VideoError(f"frames to write must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise VideoError(f"frames to write must be (H, W, 3) RGB, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _pad_even(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    # Replicate the last row/column: no content is lost and the extra pixel is invisible.
    dh, dw = height - arr.shape[0], width - arr.shape[1]
    if dh == 0 and dw == 0:
        return arr
    return np.pad(arr, ((0, dh), (0, dw), (0, 0)), mode="edge")


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float,
    *,
    codec: str = "libx264",
    crf: int = 23,
    pix_fmt: str = "yuv420p",
    deterministic: bool = False,
) -> Path:
    """Encode RGB uint8 frames (H, W, 3) to ``path`` and return it.

    Frames are streamed to the encoder one by one, so memory does not grow with length.
    The container follows the suffix (.mp4, .mkv, .webm, .avi, .mov). The file appears
    only when complete (temporary file in the same folder, then ``os.replace``).
    Odd sizes are padded by one edge pixel where the pixel format needs even sizes.
    (H, W) or (H, W, 1) grayscale frames are accepted too. ``deterministic``: the same frames
    give the same bytes everywhere (see the module's docstring), a little slower.
    """
    path = Path(path)
    rate = _as_rational(fps)
    if not path.parent.is_dir():
        raise VideoError(f"Cannot write {path}: folder {path.parent} does not exist. Create it first.")
    # The temporary name keeps the real suffix so that FFmpeg picks the same container.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        count = _encode(tmp, frames, rate, codec=codec, crf=crf, pix_fmt=pix_fmt, deterministic=deterministic)
        if count == 0:
            raise VideoError(f"No frames to write to {path}: give at least one frame.")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a video is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _encode(
    tmp: Path,
    frames: Iterable[np.ndarray],
    rate: Fraction,
    *,
    codec: str,
    crf: int,
    pix_fmt: str,
    deterministic: bool,
) -> int:
    options: dict[str, str] = {}
    if tmp.suffix.lower() in (".mp4", ".mov", ".m4v"):
        options["movflags"] = "+faststart"  # a browser can start playing before the file has loaded
    count = 0
    with av.open(str(tmp), mode="w", options=options) as container:
        stream: av.video.stream.VideoStream | None = None
        shape = None
        for frame in frames:
            arr = _rgb_frame(frame)
            if stream is None:
                h, w = arr.shape[:2]
                if pix_fmt in _EVEN_PIX_FMTS:
                    h, w = h + h % 2, w + w % 2
                added = container.add_stream(codec, rate=rate)
                if not isinstance(added, av.video.stream.VideoStream):
                    raise ConfigError(f"{codec} is not a video codec: choose one such as libx264")
                stream = added
                stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
                stream.codec_context.time_base = 1 / rate
                codec_options: dict[str, str] = {}
                if codec in _CRF_CODECS:
                    codec_options["crf"] = str(crf)
                if codec.startswith("libvpx"):
                    codec_options["b"] = "0"  # constant quality mode for VP8/VP9
                if codec == "libx265":
                    codec_options["x265-params"] = "log-level=error"
                if deterministic and codec == "libx264":
                    codec_options["x264-params"] = "mbtree=0"
                stream.codec_context.options = codec_options
                if deterministic:
                    stream.codec_context.thread_count = 1
                shape = arr.shape
            elif arr.shape != shape:
                raise VideoError(f"all frames of a video must have the same shape: {shape} then {arr.shape}")
            video_frame = av.VideoFrame.from_ndarray(
                _pad_even(arr, stream.height, stream.width), format="rgb24"
            )
            video_frame.pts = count
            video_frame.time_base = stream.codec_context.time_base
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is not None:
            container.mux(stream.encode(None))
    return count
