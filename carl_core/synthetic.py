"""Procedural action videos with frame-level phase labels (painted by ``synthetic_render.py``).

Small, fast, fully deterministic stand-ins for PennAction and Pouring: a stick figure doing
squats, lateral arm raises, jumping jacks or a ball throw, and a bottle pouring into a cup.
Each action is a chain of keyframe poses; phase ``p`` (1 .. K-2) moves from key ``p-1`` to key
``p``, the idle frames before the action are phase 0 and those after it phase K-1, so labels
are non-decreasing, every phase appears in every video, and the first and last segment absorb
the idle time, as in the authors' label files (``dataset_preparation/dataset_utils.py``).

Every video varies in what a model should become invariant to: a non-uniform time warp with
pauses, idle time at both ends, colours, limb thickness, background (colour, gradient, floor,
texture, clutter), scale, position, facing direction, camera shake and sensor noise. All random
choices are drawn up front from one ``numpy.random.Generator``, so a seed fixes a video, and
frames are rendered lazily one at a time (numpy only), so long videos stream in constant memory.
They are encoded deterministically (``write_video(deterministic=True)``): a seed fixes the
file's bytes too, in any process (and on any machine, as far as x264's SIMD code is bit-exact).

``make_dataset`` writes the authors' processed layout (``videos/*.mp4``, ``train.pkl`` and
``val.pkl`` as PennAction's ``(videos, action_to_indices)``, plus ``info.json``), so the
same loaders and evaluation protocols run on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .errors import ConfigError
from .io import atomic_open, atomic_write_text
from .progress import Progress
from .synthetic_render import Box, Capsule, Op, VideoPlan, background_image, camera_shake, random_colour
from .video_writer import write_video

Params = Mapping[str, float]


# --------------------------------------------------------------------------- figures and scenes
SHIN, THIGH, TORSO, UPPER_ARM, FOREARM, HEAD_R = 0.25, 0.25, 0.3, 0.15, 0.14, 0.075


def _dir(theta: float) -> tuple[float, float]:
    """Unit vector at angle theta from straight up, positive towards where the figure faces."""
    return math.sin(theta), math.cos(theta)


def _add(p: tuple[float, float], length: float, theta: float) -> tuple[float, float]:
    d = _dir(theta)
    return p[0] + length * d[0], p[1] + length * d[1]


def _cap(a: tuple[float, float], b: tuple[float, float], r: float, colour: str) -> Capsule:
    return Capsule(a[0], a[1], b[0], b[1], r, colour)


def _side_joints(p: Params) -> dict[str, tuple[float, float]]:
    """Joints of a figure seen from the side, facing +x; the front foot stays planted."""
    ankle = (p.get("x", 0.0), 0.0)
    knee = _add(ankle, SHIN, p["shin"])
    hip = _add(knee, THIGH, p["thigh"])
    # The back leg hangs from the hip, so it can step without lifting the figure.
    knee_b = _add(hip, -THIGH, p.get("bthigh", p["thigh"]))
    ankle_b = _add(knee_b, -SHIN, p.get("bshin", p["shin"]))
    neck = _add(hip, TORSO, p["torso"])
    shoulder = _add(neck, -0.03, p["torso"])
    elbow = _add(shoulder, UPPER_ARM, p["arm_u"])
    hand = _add(elbow, FOREARM, p["arm_f"])
    elbow_b = _add(shoulder, UPPER_ARM, p.get("barm_u", p["arm_u"]))
    hand_b = _add(elbow_b, FOREARM, p.get("barm_f", p["arm_f"]))
    head = _add(neck, 0.1, 0.8 * p["torso"])
    return dict(
        ankle=ankle, knee=knee, hip=hip, knee_b=knee_b, ankle_b=ankle_b, neck=neck, shoulder=shoulder,
        elbow=elbow, hand=hand, elbow_b=elbow_b, hand_b=hand_b, head=head,
    )  # fmt: skip


def _side_figure(j: dict[str, tuple[float, float]], limb: float) -> list[Op]:
    sh = j["shoulder"]
    # Far limbs first, in a darker shade, so the near ones are drawn over them.
    return [
        _cap(sh, j["elbow_b"], limb, "far"),
        _cap(j["elbow_b"], j["hand_b"], limb, "far"),
        _cap(j["hip"], j["knee_b"], limb, "far"),
        _cap(j["knee_b"], j["ankle_b"], limb, "far"),
        _cap(j["ankle_b"], (j["ankle_b"][0] + 0.07, j["ankle_b"][1]), limb * 0.8, "far"),
        _cap(j["hip"], j["neck"], limb * 1.6, "body"),
        _cap(j["ankle"], j["knee"], limb, "body"),
        _cap(j["knee"], j["hip"], limb, "body"),
        _cap(j["ankle"], (j["ankle"][0] + 0.07, j["ankle"][1]), limb * 0.8, "body"),
        _cap(j["head"], j["head"], HEAD_R, "head"),
        _cap(sh, j["elbow"], limb, "body"),
        _cap(j["elbow"], j["hand"], limb, "body"),
    ]


def _front_figure(p: Params, limb: float, lift: float = 0.0) -> list[Op]:
    """A figure facing the camera: arms raised sideways by ``arm``, legs spread by ``legs``."""
    ops: list[Op] = []
    hip_y, sh_y = 0.5 + lift, 0.8 + lift
    a, spread, bend = p["arm"], p["legs"], p.get("elbow", 0.1)
    for s in (-1.0, 1.0):
        hip = (s * 0.055, hip_y)
        foot = (hip[0] + s * 0.5 * math.sin(spread), hip_y - 0.5 * math.cos(spread))
        knee = ((hip[0] + foot[0]) / 2, (hip[1] + foot[1]) / 2)
        ops += [_cap(hip, knee, limb, "body"), _cap(knee, foot, limb, "body")]
        ops.append(_cap(foot, (foot[0] + s * 0.05, foot[1]), limb * 0.8, "body"))
    ops.append(_cap((0.0, hip_y), (0.0, sh_y + 0.02), limb * 1.7, "body"))
    ops.append(_cap((-0.11, sh_y), (0.11, sh_y), limb, "body"))
    ops.append(_cap((0.0, sh_y + 0.13), (0.0, sh_y + 0.13), HEAD_R, "head"))
    for s in (-1.0, 1.0):
        sh = (s * 0.11, sh_y)
        elbow = (sh[0] + s * UPPER_ARM * math.sin(a), sh[1] - UPPER_ARM * math.cos(a))
        hand = (elbow[0] + s * FOREARM * math.sin(a + bend), elbow[1] - FOREARM * math.cos(a + bend))
        ops += [_cap(sh, elbow, limb, "body"), _cap(elbow, hand, limb, "body")]
    return ops


def _draw_squat(p: Params, phase: int, u: float, limb: float) -> list[Op]:
    return _side_figure(_side_joints(p), limb)


def _draw_arm_raise(p: Params, phase: int, u: float, limb: float) -> list[Op]:
    return _front_figure(p, limb)


def _draw_jumping_jack(p: Params, phase: int, u: float, limb: float) -> list[Op]:
    # The figure leaves the ground while it opens and closes.
    lift = 0.07 * math.sin(math.pi * u) if phase in (1, 2) else 0.0
    return _front_figure(p, limb, lift)


_THROW_RELEASE = 2  # index of the key at which the ball leaves the hand


def _draw_throw(p: Params, phase: int, u: float, limb: float) -> list[Op]:
    j = _side_joints(p)
    ops = _side_figure(j, limb)
    ball_r = 0.055
    if phase <= _THROW_RELEASE:
        hx, hy = j["hand"]
        ops.append(Capsule(hx + 0.03, hy + 0.03, hx + 0.03, hy + 0.03, ball_r, "ball"))
    elif phase == _THROW_RELEASE + 1:
        # After release the ball flies forward and up, then falls, out of the picture by the end.
        rx, ry = _side_joints(THROW_KEYS[_THROW_RELEASE])["hand"]
        bx, by = rx + 0.03 + 2.2 * u, ry + 0.03 + 0.5 * u - 0.3 * u * u
        ops.append(Capsule(bx, by, bx, by, ball_r, "ball"))
    return ops


CUP_X0, CUP_X1, CUP_H = -0.31, -0.09, 0.25


def _draw_pouring(p: Params, phase: int, u: float, limb: float) -> list[Op]:
    ops: list[Op] = [Box(-0.75, -0.06, 0.85, 0.0, "table")]
    # Cup: liquid first, then three walls over it.
    fill = p["cfill"]
    if fill > 0.01:
        ops.append(Box(CUP_X0 + 0.01, 0.01, CUP_X1 - 0.01, 0.01 + (CUP_H - 0.03) * fill, "liquid"))
    w = 0.018
    ops += [
        Capsule(CUP_X0, 0.0, CUP_X0, CUP_H, w, "cup"),
        Capsule(CUP_X1, 0.0, CUP_X1, CUP_H, w, "cup"),
        Capsule(CUP_X0, 0.0, CUP_X1, 0.0, w, "cup"),
    ]
    # Bottle: axis tilts towards the cup (-x) by ``tilt``; base at (bx, by).
    base, tilt = (p["bx"], p["by"]), p["tilt"]
    ax, ay = -math.sin(tilt), math.cos(tilt)

    def at(d: float) -> tuple[float, float]:
        return base[0] + d * ax, base[1] + d * ay

    mouth = at(0.47)
    if phase == 2:  # the stream exists only while pouring
        ops.append(_cap(mouth, (mouth[0], 0.01 + (CUP_H - 0.03) * fill), 0.016, "liquid"))
    ops.append(_cap(at(0.07), at(0.30), 0.07, "bottle"))
    if p["bfill"] > 0.02:
        ops.append(_cap(at(0.07), at(0.07 + 0.23 * p["bfill"]), 0.045, "liquid"))
    ops.append(_cap(at(0.30), mouth, 0.028, "bottle"))
    # An arm holding the bottle, reaching in from beyond the right edge of the picture.
    ops.append(_cap((2.6, 0.5 + 0.4 * p["by"]), at(0.2), max(limb, 0.035), "skin"))
    return ops


# --------------------------------------------------------------------------- the action registry
@dataclass(frozen=True)
class Action:
    """An action: phase names, K-1 keyframes, nominal move durations and a drawing function."""

    name: str
    phases: tuple[str, ...]
    keys: tuple[Params, ...]
    weights: tuple[float, ...]  # nominal relative duration of each move phase (1 .. K-2)
    draw: Callable[[Params, int, float, float], list[Op]]
    extent: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max in body units
    easing: float = 1.0  # how strongly moves slow down at their ends (0: not at all)

    @property
    def num_phases(self) -> int:
        return len(self.phases)

    def pose(self, phase: int, u: float) -> dict[str, float]:
        """Pose parameters in ``phase`` at progress ``u`` in [0, 1]."""
        if phase <= 0:
            return dict(self.keys[0])
        if phase >= self.num_phases - 1:
            return dict(self.keys[-1])
        a, b = self.keys[phase - 1], self.keys[phase]
        return {k: a[k] + (b[k] - a[k]) * u for k in a}

    def ops(self, phase: int, u: float, limb: float) -> list[Op]:
        return self.draw(self.pose(phase, u), phase, u, limb)


_STAND = dict(x=0.0, shin=0.0, thigh=0.0, torso=0.05, arm_u=math.pi, arm_f=math.pi)
_SQUAT_BOTTOM = dict(x=0.0, shin=0.6, thigh=-1.45, torso=0.6, arm_u=1.55, arm_f=1.5)

_LEGS_APART = dict(x=0.0, shin=-0.15, thigh=-0.15, bshin=0.2, bthigh=0.2)
THROW_KEYS: tuple[Params, ...] = (
    {**_LEGS_APART, "torso": 0.0, "arm_u": 2.6, "arm_f": 0.6, "barm_u": 2.8, "barm_f": 0.9},  # ready
    {**_LEGS_APART, "torso": -0.3, "arm_u": -1.9, "arm_f": -0.6, "barm_u": 1.6, "barm_f": 1.4},  # wound
    {**_LEGS_APART, "torso": 0.45, "arm_u": 0.3, "arm_f": 0.7, "barm_u": 2.8, "barm_f": 2.6},  # release
    {**_LEGS_APART, "torso": 0.1, "arm_u": 3.0, "arm_f": 2.9, "barm_u": 3.0, "barm_f": 3.0},  # relaxed
)

_ARMS_DOWN = dict(arm=0.12, legs=0.06, elbow=0.1)
_POUR_REST = dict(bx=0.3, by=0.0, tilt=0.0, bfill=1.0, cfill=0.0)

ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "squat": Action(
            "squat",
            ("stand", "down", "up", "stand_end"),
            (_STAND, _SQUAT_BOTTOM, _STAND),
            (1.0, 1.0),
            _draw_squat,
            (-0.45, 0.5, 0.0, 1.05),
        ),
        "arm_raise": Action(
            "arm_raise",
            ("rest", "raise_side", "raise_up", "lower", "rest_end"),
            (_ARMS_DOWN, {**_ARMS_DOWN, "arm": math.pi / 2}, {**_ARMS_DOWN, "arm": 2.95}, _ARMS_DOWN),
            (1.0, 0.8, 1.4),
            _draw_arm_raise,
            (-0.45, 0.45, 0.0, 1.15),
        ),
        "jumping_jack": Action(
            "jumping_jack",
            ("stand", "open", "close", "stand_end"),
            (_ARMS_DOWN, {"arm": 2.8, "legs": 0.38, "elbow": 0.15}, _ARMS_DOWN),
            (1.0, 1.0),
            _draw_jumping_jack,
            (-0.45, 0.45, 0.0, 1.2),
            easing=0.5,
        ),
        "ball_throw": Action(
            "ball_throw",
            ("ready", "wind_up", "throw", "follow_through", "finish"),
            THROW_KEYS,
            (1.3, 0.7, 1.0),
            _draw_throw,
            (-0.45, 0.55, 0.0, 1.1),
        ),
        "pouring": Action(
            "pouring",
            ("idle", "tilt", "pour", "return", "idle_end"),
            (
                _POUR_REST,
                dict(bx=0.25, by=0.555, tilt=1.8, bfill=0.95, cfill=0.0),
                dict(bx=0.2, by=0.62, tilt=2.2, bfill=0.1, cfill=0.85),
                {**_POUR_REST, "bfill": 0.1, "cfill": 0.85},
            ),
            (1.0, 1.5, 1.0),
            _draw_pouring,
            (-0.5, 0.6, -0.06, 1.1),
        ),
    }
)


# --------------------------------------------------------------------------- configuration
@dataclass
class SynthConfig:
    """What ``make_dataset`` and ``render_video`` produce. Sizes are (height, width) in pixels."""

    num_videos: int = 100
    classes: tuple[str, ...] = field(default_factory=lambda: tuple(ACTIONS))
    size: tuple[int, int] = (128, 128)
    fps: float = 30.0
    min_len: int = 60  # frames per video, idle time included
    max_len: int = 140
    seed: int = 0
    val_fraction: float = 0.2
    idle_fraction: tuple[float, float] = (0.04, 0.2)  # idle share at each end, drawn per video
    pause_prob: float = 0.5  # chance that a move phase holds still for a while
    jitter: float = 0.015  # largest camera shake, as a fraction of the smaller side
    noise: float = 6.0  # largest sensor noise standard deviation, in grey levels
    crf: int = 23
    workers: int = 0  # processes for make_dataset; 0: up to 2, as the CPU allows
    pkl_format: str = "penn_action"  # "penn_action": (videos, action_to_indices); "list": videos

    def __post_init__(self) -> None:
        self.classes = tuple(self.classes)
        self.size = tuple(int(s) for s in self.size)  # type: ignore[assignment]
        self.idle_fraction = tuple(float(f) for f in self.idle_fraction)  # type: ignore[assignment]
        unknown = [c for c in self.classes if c not in ACTIONS]
        if not self.classes or unknown:
            raise ConfigError(f"unknown synthetic action(s) {unknown}; choose from {', '.join(ACTIONS)}")
        if len(self.size) != 2 or min(self.size) < 32 or any(s % 2 for s in self.size):
            raise ConfigError(f"size must be (height, width), even and at least 32 pixels, got {self.size}")
        most_phases = max(ACTIONS[c].num_phases for c in self.classes)
        if self.min_len < 4 * most_phases or self.max_len < self.min_len:
            raise ConfigError(
                f"need {4 * most_phases} <= min_len <= max_len so every phase shows, "
                f"got min_len={self.min_len}, max_len={self.max_len}"
            )
        if self.num_videos < 1:
            raise ConfigError("num_videos must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        lo, hi = self.idle_fraction
        if not (len(self.idle_fraction) == 2 and 0.0 <= lo <= hi <= 0.3):
            raise ConfigError(f"idle_fraction must be (low, high) with 0 <= low <= high <= 0.3, got {lo, hi}")
        if self.fps <= 0:
            raise ConfigError(f"fps must be positive, got {self.fps}")
        if self.pkl_format not in ("penn_action", "list"):
            raise ConfigError(f"pkl_format must be 'penn_action' or 'list', got {self.pkl_format!r}")


# --------------------------------------------------------------------------- timing
@dataclass
class Timeline:
    """Per frame: phase label and progress ``u`` in [0, 1] through that phase."""

    labels: np.ndarray  # int64 (n,)
    progress: np.ndarray  # float32 (n,)


def _split_frames(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Integers >= minimum summing to total, proportional to weights (largest remainder)."""
    spare = total - minimum * len(weights)
    share = spare * weights / weights.sum()
    out = np.floor(share).astype(np.int64)
    rest = spare - int(out.sum())
    out[np.argsort(share - out)[::-1][:rest]] += 1
    return out + minimum


def _move_progress(n: int, rng: np.random.Generator, easing: float, pause_prob: float) -> np.ndarray:
    """A random monotone speed profile through one move, ending exactly at 1."""
    knots = rng.lognormal(0.0, 0.45, size=rng.integers(2, 6))
    speed = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(knots)), knots)
    # Real movements start and stop gently; how gently varies from video to video.
    bell = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** (easing * rng.uniform(0.3, 1.2))
    speed = speed * (0.15 + bell)
    if n >= 8 and rng.random() < pause_prob:
        length = int(rng.integers(max(2, n // 8), max(3, n // 3)))
        start = int(rng.integers(1, n - length))
        speed[start : start + length] = 0.0
    cum = np.cumsum(speed)
    return (cum / cum[-1]).astype(np.float32)


def _sample_timeline(action: Action, n: int, rng: np.random.Generator, cfg: SynthConfig) -> Timeline:
    k = action.num_phases
    lo, hi = cfg.idle_fraction
    idle = [max(2, round(n * rng.uniform(lo, hi))) for _ in range(2)]
    while sum(idle) > n - 3 * (k - 2):  # short videos: every move keeps at least 3 frames
        idle[int(idle[1] > idle[0])] -= 1
    weights = np.asarray(action.weights) * rng.lognormal(0.0, 0.35, size=k - 2)
    moves = _split_frames(n - sum(idle), weights, minimum=3)
    lengths = [idle[0], *moves.tolist(), idle[1]]
    labels = np.repeat(np.arange(k, dtype=np.int64), lengths)
    progress = [np.zeros(idle[0], np.float32)]
    progress += [_move_progress(m, rng, action.easing, cfg.pause_prob) for m in moves]
    progress.append(np.ones(idle[1], np.float32))
    return Timeline(labels, np.concatenate(progress))


def plan_video(
    action: str | Action, rng: np.random.Generator, cfg: SynthConfig, timeline: Timeline | None = None
) -> VideoPlan:
    """Draw every random choice of one video. ``timeline`` overrides the sampled timing."""
    act = ACTIONS[action] if isinstance(action, str) else action
    if timeline is None:
        timeline = _sample_timeline(act, int(rng.integers(cfg.min_len, cfg.max_len + 1)), rng, cfg)
    h, w = cfg.size
    amp = float(rng.uniform(0, 1) * cfg.jitter * min(h, w))
    pad = int(math.ceil(amp)) + 1
    x0, x1, y0, y1 = act.extent
    # Scale and place the figure so that it always stays inside the picture.
    scale = float(rng.uniform(0.5, 0.82) * h / (y1 - y0))
    scale = min(scale, 0.95 * w / (x1 - x0))
    flip = float(rng.choice([-1.0, 1.0]))
    half_left, half_right = (-x0, x1) if flip > 0 else (x1, -x0)
    cx = (
        rng.uniform(half_left * scale + 1, w - half_right * scale - 1) if w > (x1 - x0) * scale + 2 else w / 2
    )
    ground = rng.uniform(y1 * scale + 1, h - 1 + y0 * scale) if h > (y1 - y0) * scale + 2 else h * 0.95
    background = background_image(rng, h + 2 * pad, w + 2 * pad, ground + pad)
    bright = float(background.mean()) < 128
    body = random_colour(rng, bright)
    colours = {
        "body": body,
        "far": (body * 0.65 + background.mean((0, 1)) * 0.35).astype(np.float32),
        "head": body if rng.random() < 0.5 else random_colour(rng, bright),
        "ball": random_colour(rng, bright),
        "bottle": body,
        "liquid": random_colour(rng, not bright) if rng.random() < 0.3 else random_colour(rng, bright),
        "cup": random_colour(rng, bright),
        "table": random_colour(rng, not bright),
        "skin": random_colour(rng, bright),
    }
    return VideoPlan(
        action=act,
        timeline=timeline,
        size=(h, w),
        background=background,
        pad=pad,
        colours=colours,
        limb=float(rng.uniform(0.028, 0.05)),
        scale=scale,
        origin=(float(cx) + pad, float(ground) + pad),
        flip=flip,
        shake=camera_shake(rng, len(timeline.labels), amp),
        noise_sigma=float(rng.uniform(0, cfg.noise)) if rng.random() < 0.6 else 0.0,
        noise_seed=int(rng.integers(2**62)),
        noise_offset=rng.integers(0, [h // 2 + 1, w // 2 + 1], size=(len(timeline.labels), 2)),
    )


def render_video(
    action: str, rng: np.random.Generator, cfg: SynthConfig | None = None
) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """One video of ``action``: a lazy iterator of uint8 (H, W, 3) frames and its phase labels.

    All randomness is drawn from ``rng`` before this returns, so the frames do not depend on
    when, or whether, the iterator is consumed.
    """
    if action not in ACTIONS:
        raise ConfigError(f"unknown synthetic action {action!r}; choose from {', '.join(ACTIONS)}")
    plan = plan_video(action, rng, cfg or SynthConfig())
    return plan.frames(), plan.labels.copy()


# --------------------------------------------------------------------------- files
def write_synthetic_video(
    path: str | os.PathLike, action: str, seed: int = 0, cfg: SynthConfig | None = None
) -> tuple[Path, np.ndarray]:
    """Render one video of ``action`` from ``seed`` to ``path``; returns the path and labels."""
    cfg = cfg or SynthConfig()
    frames, labels = render_video(action, np.random.default_rng(seed), cfg)
    return write_video(path, frames, cfg.fps, crf=cfg.crf, deterministic=True), labels


def _render_job(job: tuple[str, str, np.random.SeedSequence, dict[str, Any]]) -> tuple[np.ndarray, str]:
    """Worker: render and encode one dataset video (top-level so processes can run it).

    Returns its labels and a digest of the rendered frames (before encoding), so that a
    dataset says what it holds whatever the encoder makes of it.
    """
    path, action, seq, cfg_kw = job
    cfg = SynthConfig(**cfg_kw)
    frames, labels = render_video(action, np.random.default_rng(seq), cfg)
    digest = hashlib.blake2b(digest_size=16)

    def hashed() -> Iterator[np.ndarray]:
        for frame in frames:
            digest.update(frame.tobytes())
            yield frame

    write_video(path, hashed(), cfg.fps, crf=cfg.crf, deterministic=True)
    return labels, digest.hexdigest()


def _config_from(kw: dict[str, Any]) -> SynthConfig:
    names = {f.name for f in fields(SynthConfig)}
    unknown = sorted(set(kw) - names)
    if unknown:
        raise ConfigError(f"unknown synthetic option(s) {unknown}; valid: {', '.join(sorted(names))}")
    return SynthConfig(**kw)


def make_dataset(
    out_dir: str | os.PathLike,
    num_videos: int = 100,
    seed: int = 0,
    on_progress: Progress | None = None,
    **kw: Any,
) -> Path:
    """Write a synthetic dataset in the authors' processed layout and return its folder.

    ``OUT/videos/<name>.mp4``, ``OUT/train.pkl``, ``OUT/val.pkl`` (PennAction's
    ``(videos, action_to_indices)``, or a plain list with ``pkl_format="list"``; each video a
    dict with ``id``, ``name``, ``video_file`` relative to OUT, ``seq_len``, ``frame_label``,
    ``action_label``, ``action``) and ``OUT/info.json``. Other keyword arguments are
    ``SynthConfig`` fields. Classes are balanced; each class puts ``val_fraction`` of its videos
    (at least one, if it has two or more) in val.
    """
    cfg = _config_from({"num_videos": num_videos, "seed": seed, **kw})
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    master = np.random.default_rng(cfg.seed)
    n, classes = cfg.num_videos, cfg.classes
    actions = [classes[i] for i in master.permutation(np.arange(n) % len(classes))]
    seqs = np.random.SeedSequence(cfg.seed).spawn(n)
    names = [f"{a}_{i:04d}" for i, a in enumerate(actions)]
    cfg_kw = asdict(cfg)
    jobs = [(str(out / "videos" / f"{nm}.mp4"), a, s, cfg_kw) for nm, a, s in zip(names, actions, seqs)]

    labels: list[np.ndarray] = []
    digests: list[str] = []
    workers = cfg.workers or min(2, os.cpu_count() or 1)
    if workers > 1 and n > 1:
        # Forking is fast, but unsafe once other threads run (an app, a trainer): spawn then.
        safe_fork = sys.platform == "linux" and threading.active_count() == 1
        ctx = multiprocessing.get_context("fork" if safe_fork else "spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n), mp_context=ctx) as pool:
            for i, (lab, digest) in enumerate(pool.map(_render_job, jobs)):
                labels.append(lab)
                digests.append(digest)
                if on_progress:
                    on_progress(i + 1, n, names[i])
    else:
        for i, job in enumerate(jobs):
            lab, digest = _render_job(job)
            labels.append(lab)
            digests.append(digest)
            if on_progress:
                on_progress(i + 1, n, names[i])

    in_val = np.zeros(n, bool)
    for c in classes:
        idx = [i for i, a in enumerate(actions) if a == c]
        n_val = round(len(idx) * cfg.val_fraction)
        if cfg.val_fraction > 0 and len(idx) >= 2:
            n_val = min(max(n_val, 1), len(idx) - 1)
        in_val[idx[:n_val]] = True  # the order within a class is already random
    if cfg.val_fraction > 0 and n >= 2 and not in_val.any():
        in_val[-1] = True  # tiny sets (one video per class) still get a val split to evaluate on

    for split, chosen in (("train", ~in_val), ("val", in_val)):
        videos: list[dict[str, Any]] = []
        action_to_indices: list[list[int]] = [[] for _ in classes]
        for i in map(int, np.flatnonzero(chosen)):
            a = classes.index(actions[i])
            vid = len(videos)
            videos.append(
                {
                    "id": vid,
                    "name": names[i],
                    "video_file": f"videos/{names[i]}.mp4",
                    "seq_len": len(labels[i]),
                    "frame_label": labels[i].astype(np.int64),
                    "action_label": a,
                    "action": actions[i],
                }
            )
            action_to_indices[a].append(vid)
        data = (videos, action_to_indices) if cfg.pkl_format == "penn_action" else videos
        with atomic_open(out / f"{split}.pkl") as f:
            pickle.dump(data, f, protocol=4)

    info = {
        "classes": list(classes),
        "phases": {c: list(ACTIONS[c].phases) for c in classes},
        "num_phases": {c: ACTIONS[c].num_phases for c in classes},
        "seed": cfg.seed,
        "fps": cfg.fps,
        "size": list(cfg.size),
        "num_videos": n,
        "splits": {"train": int((~in_val).sum()), "val": int(in_val.sum())},
        "pkl_format": cfg.pkl_format,
        "config": {k: v for k, v in cfg_kw.items() if k != "workers"},
        "frames_blake2b": dict(zip(names, digests)),  # of each video's rendered frames, before encoding
    }
    atomic_write_text(out / "info.json", json.dumps(info, indent=2))
    return out


def long_timeline(
    action: str | Action, num_frames: int, rng: np.random.Generator, cfg: SynthConfig
) -> Timeline:
    """Repetitions of ``action`` back to back (labels restart at 0 for each), cut to ``num_frames``."""
    act = ACTIONS[action] if isinstance(action, str) else action
    parts, total = [], 0
    while total < num_frames:
        part = _sample_timeline(act, int(rng.integers(cfg.min_len, cfg.max_len + 1)), rng, cfg)
        parts.append(part)
        total += len(part.labels)
    labels = np.concatenate([p.labels for p in parts])[:num_frames]
    progress = np.concatenate([p.progress for p in parts])[:num_frames]
    return Timeline(labels, progress)


def render_long_video(
    path: str | os.PathLike,
    minutes: float,
    action: str = "squat",
    *,
    seed: int = 0,
    cfg: SynthConfig | None = None,
    on_progress: Progress | None = None,
) -> tuple[Path, np.ndarray]:
    """Write a video of ``minutes`` of repeated ``action`` and return (path, per-frame labels).

    Frames stream from the renderer to the encoder one at a time, so memory stays flat however
    long the video; only the labels (one int per frame) are kept.
    """
    cfg = cfg or SynthConfig()
    if action not in ACTIONS:
        raise ConfigError(f"unknown synthetic action {action!r}; choose from {', '.join(ACTIONS)}")
    n = max(1, round(minutes * 60 * cfg.fps))
    rng = np.random.default_rng(seed)
    plan = plan_video(action, rng, cfg, long_timeline(action, n, rng, cfg))

    def frames() -> Iterator[np.ndarray]:
        step = max(1, n // 100)
        for i, frame in enumerate(plan.frames()):
            yield frame
            if on_progress and ((i + 1) % step == 0 or i + 1 == n):
                on_progress(i + 1, n, "rendering")

    return write_video(path, frames(), cfg.fps, crf=cfg.crf, deterministic=True), plan.labels.copy()


def contact_sheet(frames: Sequence[np.ndarray], columns: int = 8) -> np.ndarray:
    """Tile frames into one image (for a look at a video at a glance)."""
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // columns)
    sheet = np.full((rows * (h + 2), columns * (w + 2), 3), 255, np.uint8)
    for k, f in enumerate(frames):
        r, c = divmod(k, columns)
        sheet[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = f
    return sheet
