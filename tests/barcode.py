"""Test clips whose every frame carries its own number as a barcode, and a reader for it.

Ten bits in a 2 x 5 grid of black or white blocks under the label band the export draws at the
top: big flat blocks survive scaling and H.264, so the number of each decoded frame of an
export can be read back exactly, wherever it sits in the output picture.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SIZE = 128  # pixels, square
BITS = 10
_ROWS, _COLS = 2, 5
_TOP = 0.3  # the code fills the picture below this fraction of its height


def _blocks(h: int, w: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) of each bit's block in an h x w picture, least significant bit first."""
    top = int(round(_TOP * h))
    bh, bw = (h - top) / _ROWS, w / _COLS
    return [
        (int(top + r * bh), int(top + (r + 1) * bh), int(c * bw), int((c + 1) * bw))
        for r in range(_ROWS)
        for c in range(_COLS)
    ]


def picture(number: int, tint: int = 0) -> np.ndarray:
    """A SIZE x SIZE RGB frame showing ``number`` (< 1024); ``tint`` colours the top band."""
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[: int(_TOP * SIZE)] = (tint, 80, 160)
    for bit, (y0, y1, x0, x1) in enumerate(_blocks(SIZE, SIZE)):
        if number >> bit & 1:
            img[y0:y1, x0:x1] = 255
    return img


def read(region: np.ndarray) -> int:
    """The number shown by one side of a decoded frame (its whole picture, any size)."""
    h, w = region.shape[:2]
    value = 0
    for bit, (y0, y1, x0, x1) in enumerate(_blocks(h, w)):
        dy, dx = (y1 - y0) // 4, (x1 - x0) // 4
        if region[y0 + dy : y1 - dy, x0 + dx : x1 - dx].mean() > 127:
            value |= 1 << bit
    return value


def write_clip(path: Path, count: int, *, hiccup_at: int | None = None, tint: int = 0) -> Path:
    """``count`` barcode frames at 30 fps. ``hiccup_at``: from that frame on, every frame comes
    half a frame late, so the file's nominal rate (frames over duration) is not the spacing of
    its frames, as in many phone and web videos."""
    tb = Fraction(1, 15360)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = tb
        stream.codec_context.options = {"crf": "18"}
        for k in range(count):
            frame = av.VideoFrame.from_ndarray(picture(k, tint), format="rgb24")
            frame.pts = k * 512 + (256 if hiccup_at is not None and k >= hiccup_at else 0)
            frame.time_base = tb
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def read_export(path: Path, gap: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(A's frame number, B's frame number) shown by every frame of a side-by-side export of two
    square barcode clips."""
    from carl_core.video import read_video

    frames, _ = read_video(path)
    h = frames.shape[1]
    a = np.array([read(f[:, :h]) for f in frames])
    b = np.array([read(f[:, h + gap : 2 * h + gap]) for f in frames])
    return a, b
