"""The synthetic videos' renderer: shapes and scenes to pixels, with numpy alone.

``synthetic.py`` decides what a video shows (actions as keyframe poses, timing, every random
choice, the dataset files); this module paints it: capsules and boxes in body units, placed,
scaled and mirrored onto a background with camera shake and sensor noise, one frame at a time
(``VideoPlan.render`` is a pure function of the plan and the frame index).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .synthetic import Action, Timeline


# --------------------------------------------------------------------------- drawing primitives
@dataclass(frozen=True)
class Capsule:
    """A segment with round caps (a disc when both ends coincide), in body units, y up."""

    ax: float
    ay: float
    bx: float
    by: float
    r: float
    colour: str


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle, in body units, y up."""

    x0: float
    y0: float
    x1: float
    y1: float
    colour: str


Op = Capsule | Box


def draw_capsule(canvas: np.ndarray, ax: float, ay: float, bx: float, by: float, r: float, col: np.ndarray):
    """Paint a capsule (pixel coordinates) over its bounding box only; few numpy calls, in place."""
    h, w = canvas.shape[:2]
    x0, x1 = max(int(min(ax, bx) - r - 1.0), 0), min(int(max(ax, bx) + r + 2.0), w)
    y0, y1 = max(int(min(ay, by) - r - 1.0), 0), min(int(max(ay, by) + r + 2.0), h)
    if x0 >= x1 or y0 >= y1:
        return
    # arange over float bounds can round up to one element more than the box holds: trimmed.
    px = np.arange(x0 - ax, x1 - ax, 1.0, dtype=np.float32)[None, : x1 - x0]
    py = np.arange(y0 - ay, y1 - ay, 1.0, dtype=np.float32)[: y1 - y0, None]
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    if ll > 1e-6:
        t = px * np.float32(dx / ll) + py * np.float32(dy / ll)
        np.clip(t, 0.0, 1.0, out=t)
        ex, ey = px - t * np.float32(dx), py - t * np.float32(dy)
        d = ex * ex
        d += ey * ey
    else:
        d = px * px + py * py
    np.sqrt(d, out=d)
    # Coverage falls off linearly over one pixel of distance: cheap anti-aliasing.
    alpha = np.float32(r + 0.5) - d
    np.clip(alpha, 0.0, 1.0, out=alpha)
    region = canvas[y0:y1, x0:x1]
    region += alpha[..., None] * (col - region)


def draw_box(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, col: np.ndarray):
    h, w = canvas.shape[:2]
    i0, i1 = max(int(math.floor(y0)), 0), min(int(math.ceil(y1)) + 1, h)
    j0, j1 = max(int(math.floor(x0)), 0), min(int(math.ceil(x1)) + 1, w)
    if j0 >= j1 or i0 >= i1:
        return
    xs = np.arange(j0, j1, dtype=np.float32)
    ys = np.arange(i0, i1, dtype=np.float32)
    cx = np.clip(np.minimum(xs - x0 + 0.5, x1 - xs + 0.5), 0.0, 1.0)
    cy = np.clip(np.minimum(ys - y0 + 0.5, y1 - ys + 0.5), 0.0, 1.0)
    alpha = cy[:, None] * cx[None, :]
    region = canvas[i0:i1, j0:j1]
    region += alpha[..., None] * (col - region)


# --------------------------------------------------------------------------- appearance
def random_colour(rng: np.random.Generator, bright: bool) -> np.ndarray:
    """A saturated-ish colour, bright or dark, so the figure stands out from its background."""
    hue = rng.uniform(0, 2 * np.pi)
    sat = rng.uniform(0.25, 0.9)
    val = rng.uniform(170, 250) if bright else rng.uniform(15, 95)
    rgb = val * (1 - sat * 0.5 * (1 - np.cos(hue - np.array([0.0, 2.1, 4.2]))))
    return rgb.astype(np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid, bilinearly upsampled."""
    grid = rng.uniform(-1, 1, size=(cells + 1, cells + 1)).astype(np.float32)
    yi, xi = np.linspace(0, cells, h, dtype=np.float32), np.linspace(0, cells, w, dtype=np.float32)
    y0, x0 = np.minimum(yi.astype(int), cells - 1), np.minimum(xi.astype(int), cells - 1)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bot = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def background_image(rng: np.random.Generator, h: int, w: int, ground: float) -> np.ndarray:
    base = rng.uniform(20, 235, size=3).astype(np.float32)
    other = np.clip(base + rng.normal(0, 45, size=3), 0, 255).astype(np.float32)
    kind = rng.choice(["solid", "gradient", "floor"])
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    if kind == "gradient":
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)[..., None]
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = base + t * (other - base)
    elif kind == "floor":
        img[int(ground + rng.uniform(-2, 4)) :] = other
    tex = rng.uniform(0, 30)
    img += tex * smooth_noise(rng, h, w, int(rng.integers(3, 12)))[..., None]
    img += rng.uniform(0, 8) * smooth_noise(rng, h, w, int(rng.integers(12, 24)))[..., None]
    for _ in range(int(rng.integers(0, 4))):  # static clutter: blurry blobs the model must ignore
        col = np.clip(img.mean((0, 1)) + rng.normal(0, 40, size=3), 0, 255).astype(np.float32)
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.04, 0.15) * min(h, w)
        yy, xx = np.ogrid[0:h, 0:w]
        a = np.clip((r - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)) / 3.0, 0, 1).astype(np.float32)
        img += rng.uniform(0.2, 0.6) * a[..., None] * (col - img)
    return np.clip(img, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------- a video, planned
@dataclass
class VideoPlan:
    """Everything random about one video, drawn up front; ``frames()`` renders it lazily."""

    action: Action
    timeline: Timeline
    size: tuple[int, int]
    background: np.ndarray  # float32 (H + 2 pad, W + 2 pad, 3)
    pad: int
    colours: dict[str, np.ndarray]
    limb: float  # limb radius in body units
    scale: float  # pixels per body unit
    origin: tuple[float, float]  # pixel position of body (0, 0) in the padded canvas
    flip: float  # +1 faces right, -1 faces left
    shake: np.ndarray  # int (n, 2): per-frame camera offset (dy, dx)
    noise_sigma: float
    noise_seed: int
    noise_offset: np.ndarray  # int (n, 2): where each frame's noise window starts
    _noise: np.ndarray | None = field(default=None, repr=False)

    @property
    def labels(self) -> np.ndarray:
        return self.timeline.labels

    def __len__(self) -> int:
        return len(self.timeline.labels)

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as uint8 (H, W, 3); a pure function of the plan and ``i``."""
        canvas = self.background.copy()
        s, (ox, oy), f = self.scale, self.origin, self.flip
        phase, u = int(self.timeline.labels[i]), float(self.timeline.progress[i])
        for op in self.action.ops(phase, u, self.limb):
            col = self.colours[op.colour]
            if isinstance(op, Capsule):
                x0, y0, x1, y1 = ox + f * s * op.ax, oy - s * op.ay, ox + f * s * op.bx, oy - s * op.by
                draw_capsule(canvas, x0, y0, x1, y1, max(op.r * s, 0.6), col)
            else:
                xa, xb = sorted((ox + f * s * op.x0, ox + f * s * op.x1))
                draw_box(canvas, xa, oy - s * op.y1, xb, oy - s * op.y0, col)
        h, w = self.size
        dy, dx = (int(v) + self.pad for v in self.shake[i])
        frame = canvas[dy : dy + h, dx : dx + w]
        if self.noise_sigma > 0:
            # A window of one noise field per video, at a random place per frame: as good as
            # fresh noise to the eye and to a network, and far cheaper to draw.
            ny, nx = self.noise_offset[i]
            frame = frame + self._noise_field()[ny : ny + h, nx : nx + w]
        np.clip(frame, 0, 255, out=frame)
        return frame.astype(np.uint8)

    def _noise_field(self) -> np.ndarray:
        if self._noise is None:
            h, w = self.size
            rng = np.random.default_rng(self.noise_seed)
            shape = (h + h // 2, w + w // 2, 3)
            self._noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(self.noise_sigma)
        return self._noise

    def frames(self) -> Iterator[np.ndarray]:
        """All frames in order, one at a time."""
        for i in range(len(self)):
            yield self.render(i)


def camera_shake(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A smooth random walk (hand-held camera), clipped to +-amplitude pixels."""
    if amplitude < 0.5:
        return np.zeros((n, 2), np.int64)
    steps = rng.normal(0, amplitude * 0.35, size=(n, 2))
    pos = np.zeros((n, 2))
    for t in range(1, n):
        pos[t] = 0.85 * pos[t - 1] + steps[t]
    return np.clip(np.rint(pos), -amplitude, amplitude).astype(np.int64)


__all__ = [
    "Box",
    "Capsule",
    "Op",
    "VideoPlan",
    "background_image",
    "camera_shake",
    "draw_box",
    "draw_capsule",
    "random_colour",
    "smooth_noise",
]
