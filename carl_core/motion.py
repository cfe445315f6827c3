"""Synthetic human motion as MediaPipe BlazePose landmark sequences, with frame-level phase labels.

Training data that teaches a pose model what to ignore, with no footage in it: a keyframed action
(``carl_core.motion_actions``) is re-timed, re-scaled and re-styled, played by a skeleton of random
proportions, seen by a random camera, and written as the ``PoseSequence`` that pose extraction
makes from a real video, with MediaPipe's errors imitated. Nothing is rendered.

1. Timeline: idle time, reps (partial ones too), holds and rests between them, per-segment tempo
   jitter, a smooth non-linear time warp, fidgeting and sway. Phase labels come from the keys.
2. Skeleton: forward kinematics from joint angles to the 33 landmarks (face, hands, feet). Its
   proportions are on MediaPipe's world scale (torso about 0.48 m in every clip), and the face has
   two shapes, because MediaPipe's world face is squeezed (eyes 3 cm apart) while the image shows
   the real one. Ground contact: feet do not slide, hands and toes stay on the floor in a push-up,
   the bar does not move in a pull-up.
3. Camera: azimuth all round, elevation, roll, focal length, image size and aspect, distance from
   how much of the frame the person fills (sometimes more than all of it), position in the frame,
   hand-held shake. Left-handers are the whole sequence mirrored.
4. MediaPipe's layout: image x, y relative to width and height; image z is world z on the scale of
   x, stretched about 3.5 times as MediaPipe's is; world landmarks in metres, hip-centred, in the
   camera's orientation (MediaPipe's world frame turns with the camera: the hip axis of a person
   filmed side-on lies along z).
5. MediaPipe's errors, measured on the real clips' reference landmarks by
   ``benchmarks/measure_pose_noise.py`` (statistics only; no clip is trained on): jitter per body
   part in image and world, growing with speed (MediaPipe's one-euro smoothing) and running down
   the limbs (a hand moves as one), a slow wobble that makes world bone lengths vary, noisier
   hidden landmarks, visibility (the far side of a side view, off-screen points), missing frames
   at the ends and in short runs (short gaps filled as pose extraction fills them), whole-body
   left/right flips (the estimate facing the wrong way), glitches.

``sample_motion`` draws one ``MotionSample`` in milliseconds, fast enough to draw in the training
loop (``benchmarks/bench_motion.py``); ``make_motion_dataset`` writes a dataset to disk and
``load_motion_dataset`` reads it back. ``benchmarks/motion_sheet.py`` draws a contact sheet.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator

from .errors import ConfigError, DataError
from .io import atomic_save_npy, atomic_write_text
from .motion_actions import ACTION_NAMES, ACTIONS, CHANNEL, CHANNELS, LATERAL, Action
from .progress import Progress
from .skeleton import DETECTED, INDEX, INTERPOLATED, MIRROR, MISSING, NUM_LANDMARKS, PoseSequence

# Landmark groups, for noise and visibility (and for the statistics that calibrate them).
GROUPS: dict[str, tuple[int, ...]] = {
    "face": tuple(range(11)),
    "torso": (11, 12, 23, 24),
    "arms": (13, 14, 15, 16),
    "hands": tuple(range(17, 23)),
    "legs": (25, 26, 27, 28),
    "feet": tuple(range(29, 33)),
}
_GROUP_OF = np.zeros(NUM_LANDMARKS, dtype=np.int64)
for _g, _ix in enumerate(GROUPS.values()):
    _GROUP_OF[list(_ix)] = _g

# ----------------------------------------------------------------------------- measured on MediaPipe
# What benchmarks/measure_pose_noise.py measures on MediaPipe's reference landmarks of the 13 full-body
# action clips of ../shared/data/real_clips_pose (medians over clips; rates per 1000 frames, pooled;
# see ``pose_noise_stats`` for the definitions). Statistics only: no clip is trained on. The noise
# and visibility constants further down are tuned so synthetic motion measures close to these.
MEASURED = {
    "jitter_image": 0.192, "jitter_world": 0.476,  # % of the torso, frame to frame
    "jitter_image_face": 0.284, "jitter_image_torso": 0.222, "jitter_image_arms": 0.495,
    "jitter_image_hands": 0.535, "jitter_image_legs": 0.135, "jitter_image_feet": 0.174,
    "jitter_world_face": 0.471, "jitter_world_torso": 0.168, "jitter_world_arms": 1.17,
    "jitter_world_hands": 1.59, "jitter_world_legs": 0.499, "jitter_world_feet": 0.709,
    "occluded_over_visible": 3.12, "world_z_over_xy": 2.51, "slow_over_jitter": 2.77,
    "bone_cv": 5.27, "z_stretch": 3.63,
    "vis_face": 0.999, "vis_torso": 0.999, "vis_arms": 0.715, "vis_hands": 0.739, "vis_legs": 0.882,
    "vis_feet": 0.872, "vis_near": 0.955, "vis_far": 0.703,
    "missing": 0.0377, "missing_runs": 2.38, "missing_edge_runs": 0.866, "flips": 3.46, "glitches": 6.28,
    "bone_m_upper_arm": 0.24, "bone_m_forearm": 0.23, "bone_m_thigh": 0.40, "bone_m_shin": 0.375,
    "bone_m_torso": 0.48, "bone_m_shoulders": 0.33, "bone_m_hips": 0.22,
}  # fmt: skip


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class MotionConfig:
    """Randomisation ranges. Pairs are (low, high) of a uniform draw unless said otherwise."""

    # timing
    fps: tuple[float, ...] = (24.0, 25.0, 30.0, 30.0, 30.0, 50.0, 60.0)  # one is picked
    reps: tuple[int, int] = (1, 4)  # capped by the action's own maximum
    tempo: tuple[float, float] = (0.65, 1.6)  # duration scale of a rep (log-uniform)
    segment_jitter: float = 0.18  # log-normal sigma of each movement's duration
    warp: tuple[float, float] = (0.0, 0.35)  # strength of the smooth time warp
    hold_prob: float = 0.15  # chance of a pause at a key
    hold: tuple[float, float] = (0.1, 0.9)  # seconds
    rest_prob: float = 0.5  # chance of a rest in the ready pose between reps
    rest: tuple[float, float] = (0.1, 1.5)
    idle: tuple[float, float] = (0.2, 2.0)  # seconds before the first rep and after the last
    max_seconds: float = 30.0
    # body and movement
    amplitude: tuple[float, float] = (0.7, 1.12)  # depth of a squat, length of a swing, ...
    rep_amplitude: float = 0.08  # sigma of each rep's amplitude around the sequence's
    partial_prob: float = 0.12  # chance that a rep is partial
    partial: tuple[float, float] = (0.4, 0.75)  # its amplitude factor
    style: float = 1.0  # scale of the per-person variation of each key (degrees from the template)
    fidget: float = 1.0  # scale of sway and fidgeting (more while idle)
    size: tuple[float, float] = (0.93, 1.07)  # overall size on MediaPipe's world scale
    limb: tuple[float, float] = (0.92, 1.08)  # arm and leg lengths, each
    ratio: tuple[float, float] = (0.93, 1.07)  # upper/lower segment ratios
    width: tuple[float, float] = (0.88, 1.12)  # shoulder and hip widths, each
    head: tuple[float, float] = (0.9, 1.1)
    mirror_prob: float = 0.5  # left-handed / left-footed
    # camera
    yaw: tuple[float, float] = (0.0, 360.0)  # azimuth round the person; 0: in front of them
    pitch: tuple[float, float] = (-10.0, 35.0)  # elevation; positive looks down
    overhead_prob: float = 0.03  # a camera nearly straight above
    roll: float = 2.5  # sigma, degrees
    hfov: tuple[float, float] = (38.0, 75.0)  # horizontal field of view, degrees
    sizes: tuple[tuple[int, int], ...] = (
        (1920, 1080), (1280, 720), (960, 540), (640, 480), (640, 360), (480, 360), (400, 225), (320, 240),
        (1080, 1920), (720, 1280), (480, 854), (406, 720), (1080, 1080), (354, 492),
    )  # fmt: skip
    fill: tuple[float, float] = (0.35, 0.92)  # the person's extent over the sequence / frame
    cut_prob: float = 0.08  # the person is larger than the frame (legs cut off, say)
    cut_fill: tuple[float, float] = (1.0, 1.6)
    shake_prob: float = 0.3  # hand-held camera
    shake: tuple[float, float] = (0.2, 1.5)  # degrees
    # MediaPipe's errors
    noise: bool = True
    noise_scale: float = 1.0
    flip_prob: float = 0.2  # the estimate faces the wrong way for a while (left and right swapped)
    glitch_prob: float = 0.25  # sequences with glitches
    dropout_edge_prob: float = 0.12  # missing frames at the start (and, separately, the end)
    dropout_prob: float = 0.2  # sequences with short missing runs inside
    max_interpolated_gap: int = 5  # gaps up to this many frames are filled, as pose extraction does

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if (
                isinstance(v, tuple)
                and len(v) == 2
                and all(isinstance(x, int | float) for x in v)
                and v[0] > v[1]
            ):
                raise ConfigError(f"motion config {f.name}: low {v[0]} is above high {v[1]}")
        if not self.fps or min(self.fps) <= 0:
            raise ConfigError(f"motion config fps: give positive frame rates, not {self.fps}")


NO_NOISE = dict(
    noise=False, flip_prob=0.0, glitch_prob=0.0, dropout_edge_prob=0.0, dropout_prob=0.0, shake_prob=0.0
)


@dataclass
class MotionSample:
    """One synthetic sequence. labels: (T,) phase index per frame (0 is ``ready``); events: (E, 2)
    int, the frame where each phase starts and that phase; action: index into ``ACTION_NAMES``."""

    pose: PoseSequence
    labels: np.ndarray
    action: int
    events: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    # (T,) where each frame is in the movement: 0 the ready pose, k at a rep's k-th key,
    # fractions between; holds keep their key's value, every rep starts again from 0 (a cyclic
    # action's last key, the ready pose, is both its end and 0). NaN while a non-cyclic action
    # walks back to the ready pose between reps. Comparable across performances (unlike frame
    # numbers); None for samples read from disk.
    position: np.ndarray | None = None

    @property
    def action_name(self) -> str:
        return ACTION_NAMES[self.action]

    @property
    def phases(self) -> tuple[str, ...]:
        return ACTIONS[self.action_name].phases


def num_phases(action: str) -> int:
    return len(ACTIONS[action].phases)


# ----------------------------------------------------------------------------- small helpers
def _u(rng: np.random.Generator, lo_hi: Sequence[float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _smooth_noise(rng: np.random.Generator, n: int, cols: int, tau: float) -> np.ndarray:
    """(n, cols) Gaussian noise of unit variance, correlated over about ``tau`` frames.

    Under two frames: white noise through a two-tap average. Otherwise a cubic B-spline through
    random knots ``tau`` frames apart, normalised to unit variance at every frame (four gathers,
    no filtering). Drawn in float32, which is faster and plenty.
    """
    if tau < 2.0:
        a = max(tau - 0.5, 0.0) / 1.5
        x = rng.standard_normal((n + 1, cols), dtype=np.float32)
        return (x[1:] + a * x[:-1]) / math.sqrt(1 + a * a)
    pos = np.arange(n) / tau
    idx = pos.astype(np.int64)
    u = pos - idx
    b = np.stack([(1 - u) ** 3, 3 * u**3 - 6 * u**2 + 4, -3 * u**3 + 3 * u**2 + 3 * u + 1, u**3], axis=1)
    b = (b / np.linalg.norm(b, axis=1, keepdims=True)).astype(np.float32)
    knots = rng.standard_normal((int(pos[-1]) + 4, cols), dtype=np.float32)
    return (
        b[:, :1] * knots[idx]
        + b[:, 1:2] * knots[idx + 1]
        + b[:, 2:3] * knots[idx + 2]
        + b[:, 3:] * knots[idx + 3]
    )


def _rot(axis: int, deg: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by ``deg`` about x (0), y (1) or z (2)."""
    r = np.radians(deg)
    c, s = np.cos(r), np.sin(r)
    m = np.zeros((len(r), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[:, axis, axis] = 1.0
    m[:, i, i] = c
    m[:, j, j] = c
    m[:, i, j] = -s
    m[:, j, i] = s
    return m


def _bounds(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate min and max over all points of (..., D) (column by column: numpy's
    axis-0 reductions over a few columns are many times slower)."""
    cols = [a[..., k] for k in range(a.shape[-1])]
    return np.array([c.min() for c in cols]), np.array([c.max() for c in cols])


def _chain(*ms: np.ndarray) -> np.ndarray:
    out = ms[0]
    for m in ms[1:]:
        out = out @ m
    return out


def _apply(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate fixed vectors v (3,) or (K, 3) by per-frame rotations m (T, 3, 3): (T, 3) or (T, K, 3)."""
    return m @ v if v.ndim == 1 else v @ m.transpose(0, 2, 1)


def _turn(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Rotate per-frame points p (T, K, 3) by per-frame rotations m (T, 3, 3)."""
    return p @ m.transpose(0, 2, 1)


def _axis_angle(axis: np.ndarray, rad: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations about unit axes (T, 3) by angles (T,) (Rodrigues)."""
    k = axis
    kx = np.zeros((len(k), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx[:, 1, 0], kx[:, 2, 0], kx[:, 2, 1] = k[:, 2], -k[:, 1], k[:, 0]
    s, c = np.sin(rad)[:, None, None], np.cos(rad)[:, None, None]
    return np.eye(3)[None] + s * kx + (1 - c) * (kx @ kx)


# ----------------------------------------------------------------------------- the body
@dataclass(frozen=True)
class Body:
    """Segment lengths in metres, on MediaPipe's world scale."""

    torso: float = 0.48  # hip midpoint to shoulder midpoint
    shoulder_width: float = 0.33
    hip_width: float = 0.22
    upper_arm: float = 0.235
    forearm: float = 0.22
    thigh: float = 0.40
    shin: float = 0.375
    hand: float = 1.0  # scale of the hand points
    foot: float = 1.0
    head: float = 1.0


def sample_body(rng: np.random.Generator, cfg: MotionConfig) -> Body:
    g = _u(rng, cfg.size)
    arm, leg = _u(rng, cfg.limb), _u(rng, cfg.limb)
    ra, rl = _u(rng, cfg.ratio), _u(rng, cfg.ratio)
    b = Body()
    return Body(
        torso=b.torso * g * _u(rng, cfg.ratio),
        shoulder_width=b.shoulder_width * g * _u(rng, cfg.width),
        hip_width=b.hip_width * g * _u(rng, cfg.width),
        upper_arm=b.upper_arm * g * arm * math.sqrt(ra),
        forearm=b.forearm * g * arm / math.sqrt(ra),
        thigh=b.thigh * g * leg * math.sqrt(rl),
        shin=b.shin * g * leg / math.sqrt(rl),
        hand=g * _u(rng, cfg.head),
        foot=g * _u(rng, cfg.head),
        head=g * _u(rng, cfg.head),
    )


# Face points 0-10 relative to the neck pivot (just above the shoulder midpoint), head upright,
# x to the person's left, y up, z forward. MediaPipe's world face (averaged from its world
# landmarks of frontal clips: the three points of an eye coincide) and the face an image shows.
_FACE_WORLD = np.array([
    (0.0, 0.14, 0.19),
    (0.017, 0.175, 0.17), (0.017, 0.175, 0.17), (0.017, 0.175, 0.17),
    (-0.017, 0.175, 0.17), (-0.017, 0.175, 0.17), (-0.017, 0.175, 0.17),
    (0.075, 0.155, 0.06), (-0.075, 0.155, 0.06),
    (0.022, 0.11, 0.15), (-0.022, 0.11, 0.15),
])  # fmt: skip
_FACE_IMAGE = np.array([
    (0.0, 0.19, 0.115),
    (0.018, 0.22, 0.095), (0.031, 0.22, 0.09), (0.044, 0.219, 0.075),
    (-0.018, 0.22, 0.095), (-0.031, 0.22, 0.09), (-0.044, 0.219, 0.075),
    (0.062, 0.205, 0.0), (-0.062, 0.205, 0.0),
    (0.024, 0.15, 0.095), (-0.024, 0.15, 0.095),
])  # fmt: skip
# Left hand (wrist frame: arm hanging, palm facing the thigh, thumb forward): pinky, index, thumb.
_HAND = np.array([(-0.008, -0.058, -0.018), (-0.008, -0.071, 0.022), (-0.006, -0.014, 0.015)])
# Left foot (ankle frame, foot flat): heel, foot index.
_FOOT = np.array([(0.0, -0.04, -0.022), (0.012, -0.04, 0.154)])
_LUMBAR = 0.1  # the spine bends this far (metres) above the hip midpoint


def forward_kinematics(body: Body, q: np.ndarray, flat_feet: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Joint angles (T, len(CHANNELS)) to landmarks (T, 33, 3) in metres, the pelvis at the origin.

    Body frame: x to the person's left, y up, z forward (where the person faces at yaw 0).
    Returns the landmarks with the face an image shows, and MediaPipe's world face (T, 11, 3).
    Left and right limbs run as one batch of 2T frames (the right side mirrored), for speed.
    """
    t = len(q)
    c = {name: q[:, i] for name, i in CHANNEL.items()}
    pts = np.empty((t, NUM_LANDMARKS, 3))
    legs = _chain(_rot(1, c["yaw"]), _rot(0, c["pitch"]), _rot(2, -c["roll"]))
    pelvis = legs @ _rot(1, c["turn"])
    lumbar = _apply(pelvis, np.array([0.0, _LUMBAR, -0.02]))
    chest = _chain(pelvis, _rot(0, c["spine_flex"]), _rot(2, -c["spine_side"]), _rot(1, c["spine_twist"]))
    up = body.torso - _LUMBAR
    neck = lumbar + _apply(chest, np.array([0.0, up + 0.02, 0.02]))
    head = _chain(chest, _rot(0, c["neck_flex"]), _rot(2, -c["neck_side"]), _rot(1, c["neck_turn"]))
    pts[:, :11] = neck[:, None] + _apply(head, _FACE_IMAGE * body.head)
    face_world = neck[:, None] + _apply(head, _FACE_WORLD * body.head)

    def both(j: str) -> np.ndarray:
        return np.concatenate([c[f"l_{j}"], c[f"r_{j}"]])

    sg = np.repeat([1.0, -1.0], t)
    flip = np.stack([sg, np.ones(2 * t), np.ones(2 * t)], axis=1)  # x of a right-side offset turns over
    chest2, pelvis2, legs2 = (np.concatenate([m, m]) for m in (chest, pelvis, legs))
    sh = (
        np.concatenate([lumbar, lumbar])
        + (chest2 @ (np.array([body.shoulder_width / 2, up, 0.02]) * flip)[..., None])[..., 0]
    )
    arm = _chain(
        chest2,
        _rot(0, -both("shoulder_flex")),
        _rot(2, sg * both("shoulder_abd")),
        _rot(1, sg * both("shoulder_rot")),
    )
    elbow = sh - body.upper_arm * arm[:, :, 1]
    fore = arm @ _rot(0, -both("elbow"))
    wrist = elbow - body.forearm * fore[:, :, 1]
    hand = _chain(
        fore,
        _rot(1, -sg * both("wrist_pron")),
        _rot(2, -sg * both("wrist_flex")),
        _rot(0, -both("wrist_dev")),
    )
    fingers = wrist[:, None] + (_HAND * body.hand)[None] * flip[:, None] @ hand.transpose(0, 2, 1)
    hip = (pelvis2 @ (np.array([body.hip_width / 2, 0.0, 0.0]) * flip)[..., None])[..., 0]
    hf, kn = both("hip_flex"), both("knee")
    thigh = _chain(legs2, _rot(0, -hf), _rot(2, sg * both("hip_abd")), _rot(1, sg * both("hip_rot")))
    knee = hip - body.thigh * thigh[:, :, 1]
    shin = thigh @ _rot(0, kn)
    ankle = knee - body.shin * shin[:, :, 1]
    plantar = both("ankle") + ((hf - kn - np.concatenate([c["pitch"], c["pitch"]])) if flat_feet else 0.0)
    foot = shin @ _rot(0, plantar)
    toes = ankle[:, None] + (_FOOT * body.foot)[None] * flip[:, None] @ foot.transpose(0, 2, 1)
    for i, sl in ((0, slice(0, t)), (1, slice(t, 2 * t))):
        pts[:, 11 + i], pts[:, 13 + i], pts[:, 15 + i] = sh[sl], elbow[sl], wrist[sl]
        pts[:, [17 + i, 19 + i, 21 + i]] = fingers[sl]
        pts[:, 23 + i], pts[:, 25 + i], pts[:, 27 + i] = hip[sl], knee[sl], ankle[sl]
        pts[:, [29 + i, 31 + i]] = toes[sl]
    return pts, face_world


_FEET = [INDEX[n] for n in ("left_heel", "left_foot_index", "right_heel", "right_foot_index")]
_WRISTS = [INDEX["left_wrist"], INDEX["right_wrist"]]
_TOES = [INDEX["left_foot_index"], INDEX["right_foot_index"]]


def _place(pts: np.ndarray, face_world: np.ndarray, action: Action, q: np.ndarray) -> np.ndarray:
    """Move (and for a plank, tip) the body so it meets the ground as ``action.support`` says.

    Returns the offset (T, 3) added to every point; ``pts`` and ``face_world`` change in place.
    """
    t = len(pts)
    if action.support == "plank":
        # Tip the body about the toes until the hands are as low as the toes.
        toes = (pts[:, _TOES[0]] + pts[:, _TOES[1]]) / 2
        v = (pts[:, _WRISTS[0]] + pts[:, _WRISTS[1]]) / 2 - toes
        lateral = np.cross(v, np.array([0.0, 1.0, 0.0]))
        lateral /= np.linalg.norm(lateral, axis=1, keepdims=True) + 1e-9
        elev = np.arctan2(v[:, 1], np.linalg.norm(v[:, [0, 2]], axis=1))
        r = _axis_angle(lateral, elev)
        pts[:] = _turn(r, pts - toes[:, None]) + toes[:, None]
        face_world[:] = _turn(r, face_world - toes[:, None]) + toes[:, None]
    off = np.zeros((t, 3))
    if action.support == "feet":
        off[:, 1] = -pts[:, _FEET, 1].min(1)
        # The lower foot carries the weight and does not slide; both when both are down.
        heights = pts[:, _FEET, 1].reshape(t, 2, 2).min(2) + off[:, 1:2]
        w = np.exp(-(heights - heights.min(1, keepdims=True)) / 0.015)
        w /= w.sum(1, keepdims=True)
        feet = (pts[:, _FEET[0::2]] + pts[:, _FEET[1::2]]) / 2
        moved = feet[1:] - feet[:-1]
        step = w[1:, 0:1] * moved[:, 0] + w[1:, 1:2] * moved[:, 1]
        off[1:, [0, 2]] = -np.cumsum(step[:, [0, 2]], axis=0)
    elif action.support in ("plank", "lying"):
        off[:, 1] = -pts.reshape(t, -1, 3)[:, :, 1].min(1)
        anchor = pts[:, _TOES if action.support == "plank" else _FEET].mean(1)
        off[:, [0, 2]] = anchor[:1, [0, 2]] - anchor[:, [0, 2]]
    elif action.support == "hang":
        anchor = (pts[:, _WRISTS[0]] + pts[:, _WRISTS[1]]) / 2
        off[:] = anchor[:1] - anchor
        off[:, 1] += -pts[0, :, 1].min() - off[0, 1]
    else:
        raise ConfigError(f"unknown support {action.support!r}")
    off += q[:, [CHANNEL["x"], CHANNEL["y"], CHANNEL["z"]]]
    pts += off[:, None]
    face_world += off[:, None]
    return off


# ----------------------------------------------------------------------------- the timeline
def _mirror_channels(v: np.ndarray) -> np.ndarray:
    out = v.copy()
    for name, i in CHANNEL.items():
        if name.startswith(("l_", "r_")):
            out[i] = v[CHANNEL[("r_" if name[0] == "l" else "l_") + name[2:]]]
    for name in LATERAL:
        out[CHANNEL[name]] = -out[CHANNEL[name]]
    return out


# Per-person variation of each channel, as a share of the action's ``style`` (degrees).
_STYLE = np.array([
    0.0 if n in ("x", "y", "z", "yaw") else
    0.3 if n in ("turn", "pitch", "roll") else
    1.5 if n.endswith(("shoulder_flex", "shoulder_abd", "neck_turn", "neck_flex")) else
    0.6 if n.endswith(("hip_abd", "hip_rot", "wrist_dev", "ankle")) else 1.0
    for n in CHANNELS
])  # fmt: skip
# Sway and fidgeting (degrees, or metres for x and z), doubled and more while idle.
_FIDGET = np.array([
    0.012 if n in ("x", "z") else 0.0 if n == "y" else
    1.0 if n in ("yaw", "turn", "pitch", "roll") else
    4.0 if n in ("neck_turn", "neck_flex") else
    3.0 if n.endswith(("shoulder_flex", "shoulder_abd", "elbow", "wrist_pron")) else
    1.5 for n in CHANNELS
])  # fmt: skip
_NONNEG = [CHANNEL[f"{s}_{j}"] for s in "lr" for j in ("elbow", "knee")]


@dataclass
class _Timeline:
    times: np.ndarray  # (K,) seconds of each key
    poses: np.ndarray  # (K, C)
    labels: np.ndarray  # (K,) label of the movement that ends at each key
    start: float  # the first rep starts moving
    end: float  # the last rep's last key
    pos_from: np.ndarray  # (K,) where in a rep the stretch that ends at each key starts ...
    pos_to: np.ndarray  # ... and ends: 0 the ready pose, k the rep's k-th key (NaN: no part of it)


def _timeline(
    action: Action, rng: np.random.Generator, cfg: MotionConfig, reps: int, fps: float
) -> _Timeline:
    """Key times, poses and labels of ``reps`` reps with idle time, holds and rests; every movement
    lasts at least three frames, so every phase shows in the frames even under the time warp."""
    phase = {name: i for i, name in enumerate(action.phases)}
    last = len(action.phases) - 1
    ready = action.pose(-1)
    keys = np.array([action.pose(k) for k in range(len(action.keys))])
    person = rng.normal(0.0, 0.5 * action.style * cfg.style, len(CHANNELS)) * _STYLE
    keys = keys + person + rng.normal(0.0, action.style * cfg.style, keys.shape) * _STYLE
    ready = ready + person
    keys[:, _NONNEG] = np.maximum(keys[:, _NONNEG], 0.0)
    if action.cyclic:
        keys[-1] = ready
    tempo = math.exp(_u(rng, (math.log(cfg.tempo[0]), math.log(cfg.tempo[1]))))
    amp = _u(rng, cfg.amplitude)
    alternate = rng.random() < action.alternate

    # Each stretch between two keys runs from one place in the movement to another (see
    # MotionSample.position): per stretch, not per key, since a rep's end (the ready pose again,
    # or the finish) is not where the next rep's first stretch starts from.
    times, poses, labels, pos_from, pos_to = [0.0], [ready], [0], [0.0], [0.0]

    def add(dt: float, pose: np.ndarray, label: int, at: float, came_from: float | None = None) -> None:
        times.append(times[-1] + max(dt, 1e-3))
        poses.append(pose)
        labels.append(label)
        pos_from.append(pos_to[-1] if came_from is None else came_from)
        pos_to.append(at)

    add(_u(rng, cfg.idle), ready, 0, 0.0)
    start = times[-1]
    for rep in range(reps):
        a = amp * (1 + rng.normal(0, cfg.rep_amplitude))
        if rng.random() < cfg.partial_prob:
            a *= _u(rng, cfg.partial)
        jitter = rng.normal(0.0, action.style * cfg.style / 3, keys.shape) * _STYLE
        mirror = alternate and rep % 2 == 1
        for k, key in enumerate(action.keys):
            pose = ready + a * (keys[k] + jitter[k] - ready)
            if action.cyclic and k == len(action.keys) - 1:
                pose = ready
            pose = _mirror_channels(pose) if mirror else pose
            dur = key.dur * tempo * math.exp(rng.normal(0, cfg.segment_jitter))
            add(max(dur, 3.0 / fps), pose, phase[key.phase], k + 1.0, float(k))
            if k < len(action.keys) - 1 and rng.random() < cfg.hold_prob:
                add(_u(rng, cfg.hold), pose, phase[action.keys[k + 1].phase], k + 1.0)
        if rep < reps - 1:
            if not action.cyclic:
                add(_u(rng, cfg.hold), poses[-1], last, pos_to[-1])
                # the walk back to the ready pose is no part of the movement
                add(_u(rng, (0.6, 1.5)) * tempo, ready, 0, np.nan, np.nan)
            if rng.random() < cfg.rest_prob:
                add(_u(rng, cfg.rest), ready, 0, 0.0, 0.0)
    end = times[-1]
    add(_u(rng, cfg.idle), poses[-1], last, pos_to[-1])
    return _Timeline(
        np.array(times), np.array(poses), np.array(labels), start, end, np.array(pos_from), np.array(pos_to)
    )


def _warp(rng: np.random.Generator, n: int, strength: float) -> np.ndarray:
    """A smooth monotone map of [0, 1] onto itself at n points."""
    g = np.clip(_smooth_noise(rng, n, 1, max(n / 6, 2.0))[:, 0], -2.0, 2.0) * strength
    rate = np.exp(g)
    w = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2)])
    return w / w[-1]


# ----------------------------------------------------------------------------- the camera
@dataclass(frozen=True)
class Camera:
    yaw: float
    pitch: float
    roll: float
    hfov: float
    width: int
    height: int
    fill: float
    shift: tuple[float, float]  # where the person sits in the frame, -1 .. 1 of the free room
    shake: float  # degrees, 0 for a fixed camera


def sample_camera(rng: np.random.Generator, cfg: MotionConfig) -> Camera:
    yaw = _u(rng, cfg.yaw)
    pitch = _u(rng, (60.0, 88.0)) if rng.random() < cfg.overhead_prob else _u(rng, cfg.pitch)
    roll = float(np.clip(rng.normal(0, cfg.roll), -3 * cfg.roll, 3 * cfg.roll))
    w, h = cfg.sizes[int(rng.integers(len(cfg.sizes)))]
    cut = rng.random() < cfg.cut_prob
    fill = _u(rng, cfg.cut_fill if cut else cfg.fill)
    shift = (_u(rng, (-1, 1)), _u(rng, (-1, 1)))
    shake = _u(rng, cfg.shake) if rng.random() < cfg.shake_prob else 0.0
    return Camera(yaw, pitch, roll, _u(rng, cfg.hfov), int(w), int(h), fill, shift, shake)


def _look(cam: Camera) -> np.ndarray:
    """Rotation from the scene (y up) to the camera (x right, y down, z along the view)."""
    yaw, el = math.radians(cam.yaw), math.radians(cam.pitch)
    back = np.array([math.sin(yaw) * math.cos(el), math.sin(el), math.cos(yaw) * math.cos(el)])
    f = -back
    right = np.cross(f, [0.0, 1.0, 0.0])
    if np.linalg.norm(right) < 1e-6:  # straight down
        right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    r = np.stack([right, down, f])
    return _rot(2, np.array([cam.roll]))[0] @ r


def _film(pts: np.ndarray, face_world: np.ndarray, cam: Camera, rng: np.random.Generator):
    """Image pixels (T, 33, 2), camera-frame points (T, 33, 3), world (T, 33, 3), focal length."""
    t = len(pts)
    look = _look(cam)
    lo, hi = _bounds(pts)
    centre = (lo + hi) / 2
    hips = (pts[:, 23] + pts[:, 24]) / 2
    full = np.concatenate([pts, face_world, hips[:, None]], axis=1) - centre
    if cam.shake > 0:
        n = _smooth_noise(rng, t, 3, 8.0) * cam.shake
        rot = _chain(_rot(0, n[:, 0]), _rot(1, n[:, 1]), _rot(2, n[:, 2] * 0.5)) @ look
        cam_pts = full @ rot.transpose(0, 2, 1)
    else:
        cam_pts = full @ look.T
    f = cam.width / 2 / math.tan(math.radians(cam.hfov) / 2)
    w, h = cam.width, cam.height
    body = cam_pts[:, :NUM_LANDMARKS]

    def project(dist: float) -> np.ndarray:
        return f * body[..., :2] / np.maximum(body[..., 2:] + dist, 0.05)

    # Distance so the person's extent over the whole sequence fills ``cam.fill`` of the frame.
    extent = float(np.linalg.norm(hi - lo))
    dist = extent / (2 * math.tan(math.radians(cam.hfov) / 2)) / cam.fill * 1.2 + 0.5
    for _ in range(2):
        span = project(dist).reshape(-1, 2)
        size = max(np.ptp(span[:, 0]) / w, np.ptp(span[:, 1]) / h)
        dist = max(dist * size / cam.fill, extent * 0.6 + 0.3)
    px = project(dist) + np.array([w, h]) / 2
    span = px.reshape(-1, 2)
    lo2, hi2 = _bounds(px)
    room = np.array([w, h]) - (hi2 - lo2)
    mid = (lo2 + hi2) / 2 - np.array([w, h]) / 2
    if cam.fill > 1.0:
        # Larger than the frame: keep the head in (people frame faces), lose the legs or the arms.
        top = lo2[1] - px[:, :11, 1].min()
        offset = np.array([-mid[0] + cam.shift[0] * max(room[0], 0) / 2, -lo2[1] - top + 0.08 * h])
    else:
        offset = -mid + np.array(cam.shift) * room / 2 * 0.9
    px = px + offset
    world = np.concatenate(
        [cam_pts[:, NUM_LANDMARKS : NUM_LANDMARKS + 11], cam_pts[:, 11:NUM_LANDMARKS]], axis=1
    )
    world = world - cam_pts[:, -1:]
    body = body + np.array([0.0, 0.0, dist])
    return px, body, world, f


# ----------------------------------------------------------------------------- MediaPipe's errors
# Calibrated so that pose_noise_stats of synthetic sequences falls near the measured figures
# (benchmarks/measure_pose_noise.py prints both side by side). Image noise in torso lengths of
# the image, world noise in metres; ``hf``: frame-to-frame jitter, ``lf``: slow wobble.
_NOISE_HF_IMAGE = np.array([0.00196, 0.00176, 0.00289, 0.00091, 0.0006, 0.00038])  # own, per group
_NOISE_LF_IMAGE = np.array([0.004, 0.004, 0.009, 0.005, 0.003, 0.002])
_NOISE_HF_WORLD = np.array([0.00098, 0.00043, 0.00214, 0.00112, 0.00095, 0.00057])
_NOISE_LF_WORLD = np.array([0.003, 0.0025, 0.009, 0.005, 0.006, 0.003])
_WORLD_Z = 2.7  # world depth noise over x, y noise
# Errors run down the limbs: a landmark's error is its own plus its parent's (elbow, wrist, the
# hand's points; knee, ankle, the foot's; the nose and the rest of the face), so a hand or a face
# moves as one and limb bones keep roughly their length, as MediaPipe's do.
_PARENT = {
    **dict.fromkeys(range(1, 11), 0), 13: 11, 14: 12, 15: 13, 16: 14, 17: 15, 19: 15, 21: 15, 18: 16, 20: 16,
    22: 16, 25: 23, 26: 24, 27: 25, 28: 26, 29: 27, 31: 27, 30: 28, 32: 28,
}  # fmt: skip
_CHAIN = np.eye(NUM_LANDMARKS)
for _child, _parent in sorted(_PARENT.items()):  # parents come first in BlazePose's order
    # A hand's, a foot's or the face's points move with their root; a joint takes part of its parent's error.
    _CHAIN[_child] += _CHAIN[_parent] * (
        1.0 if _child < 11 or _child in range(17, 23) or _child > 28 else 0.6
    )
# MediaPipe smooths with a one-euro filter, which smooths still landmarks hard and fast ones little:
# frame-to-frame jitter grows with speed (torso lengths per frame).
_JITTER_STILL, _JITTER_PER_SPEED = 0.35, 30.0
_OWN = np.where(
    np.isin(np.arange(NUM_LANDMARKS), range(1, 11)), 0.35, 1.0
)  # the face's points: mostly the nose's
# (2, 33, 5): own hf and lf noise of each landmark, image x, y then world x, y, z.
_NOISE_SCALE = np.stack(
    [
        np.concatenate(
            [np.repeat(img[_GROUP_OF, None], 2, 1), wld[_GROUP_OF, None] * [1.0, 1.0, _WORLD_Z]], 1
        )
        * _OWN[:, None]
        for img, wld in ((_NOISE_HF_IMAGE, _NOISE_HF_WORLD), (_NOISE_LF_IMAGE, _NOISE_LF_WORLD))
    ]
)
_OCCLUDED = 3.5  # noise of a hidden landmark (visibility 0) over a visible one
_QUALITY_SIGMA = 1.0  # log-normal spread of the noise level between sequences
_SMALL_PERSON = 60.0  # torso pixels below which noise grows as 1/size
# Visibility: logit = base - occlusion * (depth behind the body, per 0.15 m) - outside (torso lengths).
_VIS_BASE = np.array([6.5, 6.0, 4.2, 4.4, 4.6, 4.2])
_VIS_OCCLUDE = np.array([0.3, 0.6, 4.0, 3.8, 2.4, 2.0])
_VIS_OUTSIDE = 3.0


def _visibility(rng, px, cam_pts, torso_px, w, h, t):
    """(T, 33) MediaPipe-like visibility from self-occlusion and leaving the frame."""
    ref = np.zeros_like(cam_pts[..., 2])
    sh = (cam_pts[:, 11, 2] + cam_pts[:, 12, 2]) / 2
    hp = (cam_pts[:, 23, 2] + cam_pts[:, 24, 2]) / 2
    ref[:] = ((sh + hp) / 2)[:, None]
    ref[:, 11:23] = sh[:, None]
    ref[:, 23:] = hp[:, None]
    behind = np.clip((cam_pts[..., 2] - ref) / 0.15, 0.0, 2.0)
    out = np.maximum.reduce(
        [-px[..., 0], px[..., 0] - w, -px[..., 1], px[..., 1] - h, np.zeros_like(px[..., 0])]
    )
    out = out / torso_px[:, None]
    logit = _VIS_BASE[_GROUP_OF] - _VIS_OCCLUDE[_GROUP_OF] * behind - _VIS_OUTSIDE * out
    logit = logit + rng.normal(0, 0.6) + 0.8 * _smooth_noise(rng, t, NUM_LANDMARKS, 6.0)
    return 1.0 / (1.0 + np.exp(-logit))


def _add_noise(rng, cfg, px, world, vis, torso_px, fps):
    """Jitter and slow wobble on image pixels and world metres; more on a hidden or fast landmark."""
    t = len(px)
    speed = np.zeros((t, NUM_LANDMARKS))
    speed[1:] = np.linalg.norm(np.diff(px, axis=0), axis=-1) / torso_px[1:, None]
    speed[0] = speed[1] if t > 1 else 0.0
    fast = np.minimum(_JITTER_STILL + _JITTER_PER_SPEED * speed, 3.0)[..., None]
    q = cfg.noise_scale * math.exp(float(np.clip(rng.normal(0, _QUALITY_SIGMA), -2.5, 2.5)) * _QUALITY_SIGMA)
    small = np.maximum(1.0, _SMALL_PERSON / np.median(torso_px))
    per_frame = fps / 30.0
    # One draw for image (x, y) and world (x, y, z): columns 0-1 image, 2-4 world.
    hf = _smooth_noise(rng, t, NUM_LANDMARKS * 5, 0.7 * per_frame).reshape(t, NUM_LANDMARKS, 5)
    lf = _smooth_noise(rng, t, NUM_LANDMARKS * 5, 8.0 * per_frame).reshape(t, NUM_LANDMARKS, 5)
    scale_hf, scale_lf = _NOISE_SCALE
    n = (scale_hf * hf * fast + scale_lf * lf) * (1.0 + (_OCCLUDED - 1.0) * (1.0 - vis)[..., None])
    n = _CHAIN @ n
    px = px + n[..., :2] * (q * small * torso_px)[:, None, None]
    world = world + n[..., 2:] * (q * math.sqrt(small))
    return px, world, q * small


def _flip(image: np.ndarray, world: np.ndarray, rng: np.random.Generator, t: int) -> int:
    """The estimate faces the wrong way for a while: labels swap sides and depth turns over."""
    done = 0
    for _ in range(int(rng.integers(1, 4))):
        n = min(t // 3, int(rng.integers(4, 60)))
        s = int(rng.integers(0, max(t - n, 1)))
        sl = slice(s, s + n)
        image[sl] = image[sl][:, MIRROR]
        world[sl] = world[sl][:, MIRROR]
        world[sl, :, 2] *= -1.0
        image[sl, :, 2] *= -1.0  # MediaPipe's image z turns over with its world z
        done += n
    return done


def _glitch(px: np.ndarray, torso_px: np.ndarray, rng: np.random.Generator, t: int) -> int:
    """A few frames where a limb (or everything) jumps away and settles back."""
    count = int(rng.poisson(max(t / 150, 1)))
    for _ in range(count):
        s = int(rng.integers(0, t))
        if rng.random() < 0.3:
            weight = np.ones(NUM_LANDMARKS)
        else:  # one limb, more at its end
            root = int(rng.choice([11, 12, 23, 24]))  # a shoulder or hip: half its elbow or knee, all below
            weight = 0.5 * _CHAIN[:, root + 2] + 0.5 * _CHAIN[:, root + 4]
        jump = rng.normal(0, 0.35, 2) * torso_px[s]
        decay = np.exp(-np.arange(min(6, t - s)) / 1.5)
        px[s : s + len(decay)] += decay[:, None, None] * weight[None, :, None] * jump
    return count


def _dropouts(rng: np.random.Generator, cfg: MotionConfig, t: int, fps: float) -> np.ndarray:
    """(T,) bool: frames where nobody is found."""
    miss = np.zeros(t, dtype=bool)
    for end in (False, True):
        if rng.random() < cfg.dropout_edge_prob:
            n = int(min(t // 4, round(fps * math.exp(rng.normal(0.0, 0.8)))))
            if n > 0:
                miss[slice(t - n, t) if end else slice(0, n)] = True
    if rng.random() < cfg.dropout_prob:
        for _ in range(int(rng.poisson(max(t * 0.015, 1)))):
            n = int(rng.geometric(0.4))
            s = int(rng.integers(0, max(t - n, 1)))
            miss[s : s + n] = True
    return miss


def _fill_gaps(image: np.ndarray, world: np.ndarray, miss: np.ndarray, max_gap: int) -> np.ndarray:
    """Status per frame; gaps up to ``max_gap`` frames between found frames are interpolated."""
    status = np.where(miss, MISSING, DETECTED).astype(np.uint8)
    found = np.flatnonzero(~miss)
    if len(found) < 2:
        return status
    for a, b in zip(found[:-1], found[1:]):
        if 1 < b - a <= max_gap + 1:
            w = ((np.arange(a + 1, b) - a) / (b - a))[:, None, None]
            for arr in (image, world):
                arr[a + 1 : b] = (1 - w) * arr[a] + w * arr[b]
            status[a + 1 : b] = INTERPOLATED
    image[status == MISSING] = np.nan
    world[status == MISSING] = np.nan
    return status


# ----------------------------------------------------------------------------- error statistics
_BONES = ((11, 13), (12, 14), (13, 15), (14, 16), (23, 25), (24, 26), (25, 27), (26, 28))
_PAIRS = ((13, 14), (15, 16), (25, 26), (27, 28))  # elbows, wrists, knees, ankles


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [(int(a), int(b - a)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


def _med(x: np.ndarray, least: int = 20) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size >= least else float("nan")


def pose_noise_stats(seq: PoseSequence) -> dict[str, float]:
    """MediaPipe's error statistics of one pose sequence, as ``benchmarks/measure_pose_noise.py``
    measures them on the real clips and on synthetic motion alike (NaN where a figure does not apply).

    Jitter is the frame-to-frame residual ``x[t] - (x[t-1] + x[t+1]) / 2`` of detected frames, in %
    of the torso (image: pixels over the image torso; world: metres over the world torso); ``slow``
    is the residual against a 9-frame mean over it (how much of the error is slow). ``bone_cv``:
    spread of world bone lengths (%). Visibility: mean per group, of the far and near member of a
    limb pair seen side-on, and off-screen. Dropouts, flips (all limb pairs swap sides at once) and
    glitches (the median landmark jumps a quarter torso) are counted per 1000 frames.
    """
    out: dict[str, float] = {}
    t = len(seq)
    det = seq.status == DETECTED
    size = np.array([seq.width, seq.height], dtype=np.float64)
    px = seq.image[..., :2].astype(np.float64) * size
    vis = seq.image[..., 3].astype(np.float64)
    wld = seq.world[..., :3].astype(np.float64)
    torso_px = _med(np.linalg.norm((px[:, 11] + px[:, 12]) / 2 - (px[:, 23] + px[:, 24]) / 2, axis=1), 1)
    torso_w = _med(np.linalg.norm((wld[:, 11] + wld[:, 12]) / 2 - (wld[:, 23] + wld[:, 24]) / 2, axis=1), 1)
    ok = np.zeros(t, dtype=bool)
    ok[1:-1] = det[:-2] & det[1:-1] & det[2:]
    mid = np.flatnonzero(ok)

    def resid(a: np.ndarray) -> np.ndarray:
        return a[mid] - (a[mid - 1] + a[mid + 1]) / 2

    r_img = np.linalg.norm(resid(px), axis=-1) / torso_px * 100
    r_w = resid(wld)
    r_wn = np.linalg.norm(r_w, axis=-1) / torso_w * 100
    v = vis[mid]
    seen = v > 0.5
    for g, idx in GROUPS.items():
        sel = seen[:, idx]
        out[f"jitter_image_{g}"] = _med(r_img[:, idx][sel])
        out[f"jitter_world_{g}"] = _med(r_wn[:, idx][sel])
    out["jitter_image"] = _med(r_img[seen])
    out["jitter_world"] = _med(r_wn[seen])
    out["occluded_over_visible"] = _med(r_img[~seen], 50) / out["jitter_image"]
    out["world_z_over_xy"] = _med(np.abs(r_w[..., 2])[seen]) / _med(np.abs(r_w[..., :2])[seen])
    ok9 = np.zeros(t, dtype=bool)
    ok9[4:-4] = np.all([det[k : t - 8 + k] for k in range(9)], axis=0) if t > 8 else False
    m9 = np.flatnonzero(ok9)
    if m9.size:
        avg = np.mean([px[m9 + k] for k in range(-4, 5)], axis=0)
        slow = np.linalg.norm(px[m9] - avg, axis=-1) / torso_px * 100
        out["slow_over_jitter"] = _med(slow[vis[m9] > 0.5]) / out["jitter_image"]
    else:
        out["slow_over_jitter"] = float("nan")
    d = det
    lengths = np.stack([np.linalg.norm(wld[d, a] - wld[d, b], axis=-1) for a, b in _BONES])
    out["bone_cv"] = (
        float(np.median(lengths.std(1) / lengths.mean(1)) * 100) if d.sum() > 10 else float("nan")
    )
    for k, name in enumerate(("upper_arm", "forearm", "thigh", "shin")):
        out[f"bone_m_{name}"] = _med(lengths[2 * k : 2 * k + 2].ravel(), 1)
    out["bone_m_torso"] = torso_w
    out["bone_m_shoulders"] = _med(np.linalg.norm(wld[d, 11] - wld[d, 12], axis=-1), 1)
    out["bone_m_hips"] = _med(np.linalg.norm(wld[d, 23] - wld[d, 24], axis=-1), 1)
    # Image z against world z, on the scale of image x (MediaPipe stretches it).
    hz = (seq.image[d, 23, 2] + seq.image[d, 24, 2]) / 2
    zi = (seq.image[d, :, 2] - hz[:, None]).astype(np.float64)
    zw = wld[d, :, 2]
    hx = (px[d, 23, 0] + px[d, 24, 0]) / 2
    xi = (px[d, :, 0] - hx[:, None]) / seq.width
    xw = wld[d, :, 0]
    if d.sum() > 10:
        out["z_stretch"] = float((zi * zw).sum() / (zw * zw).sum() / ((xi * xw).sum() / (xw * xw).sum()))
    else:
        out["z_stretch"] = float("nan")
    vd = vis[d]
    for g, idx in GROUPS.items():
        out[f"vis_{g}"] = float(vd[:, idx].mean()) if vd.size else float("nan")
    inside = (px[d] >= 0).all(-1) & (px[d] <= size).all(-1)
    near, far = [], []
    for a, b in _PAIRS:
        dz = wld[d, a, 2] - wld[d, b, 2]
        sel = (np.abs(dz) > 0.1) & inside[:, a] & inside[:, b]
        near.append(np.where(dz < 0, vd[:, a], vd[:, b])[sel])
        far.append(np.where(dz < 0, vd[:, b], vd[:, a])[sel])
    near_v, far_v = np.concatenate(near), np.concatenate(far)
    out["vis_near"] = float(near_v.mean()) if near_v.size > 20 else float("nan")
    out["vis_far"] = float(far_v.mean()) if far_v.size > 20 else float("nan")
    out["offscreen"] = float((~inside).mean()) if inside.size else float("nan")
    out["vis_offscreen"] = float(vd[~inside].mean()) if (~inside).sum() > 20 else float("nan")
    missing = seq.status != DETECTED  # what the detector missed, filled in or not
    runs = _runs(missing)
    out["missing"] = float(missing.mean())
    out["missing_runs"] = len(runs) * 1000 / t
    out["missing_edge_runs"] = sum(1 for s, n in runs if s == 0 or s + n == t) * 1000 / t
    out["missing_run_median"] = float(np.median([n for _, n in runs])) if runs else float("nan")
    both = det[1:] & det[:-1]
    a, b = px[:-1][both], px[1:][both]
    swapped = np.zeros(len(a), dtype=np.int64)
    for left, right in _PAIRS:
        dist = lambda u, v: np.linalg.norm(u - v, axis=-1)  # noqa: E731
        same = dist(b[:, left], a[:, left]) + dist(b[:, right], a[:, right])
        swap = dist(b[:, left], a[:, right]) + dist(b[:, right], a[:, left])
        swapped += (swap < 0.4 * same) & (dist(a[:, left], a[:, right]) > 0.3 * torso_px)
    flips = int((swapped >= 2).sum())
    glitches = int((np.median(np.linalg.norm(b - a, axis=-1), axis=1) > 0.25 * torso_px).sum())
    out["flips"] = flips * 1000 / t
    out["glitches"] = glitches * 1000 / t
    out["frames"] = float(t)
    return out


_RATES = ("missing", "missing_runs", "missing_edge_runs", "flips", "glitches")


def summarise_noise_stats(stats: Sequence[dict[str, float]]) -> dict[str, tuple[float, float, float]]:
    """Median and quartiles of each ``pose_noise_stats`` figure over sequences; rates (missing
    frames, flips, glitches) pooled over all frames instead, as (rate, nan, nan)."""
    frames = np.array([s["frames"] for s in stats])
    out: dict[str, tuple[float, float, float]] = {}
    for key in stats[0]:
        if key == "frames":
            continue
        v = np.array([s[key] for s in stats], dtype=float)
        ok = np.isfinite(v)
        if key in _RATES:
            out[key] = (float((v[ok] * frames[ok]).sum() / frames[ok].sum()), math.nan, math.nan)
        elif ok.any():
            lo, mid, hi = np.percentile(v[ok], [25, 50, 75])
            out[key] = (float(mid), float(lo), float(hi))
        else:
            out[key] = (math.nan, math.nan, math.nan)
    return out


# ----------------------------------------------------------------------------- one sequence
def sample_motion(
    action: str | int,
    rng: np.random.Generator,
    cfg: MotionConfig | None = None,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
) -> MotionSample:
    """Draw one synthetic sequence of ``action`` (a name or an index into ``ACTION_NAMES``).

    ``fps`` and ``num_frames`` fix the frame rate and the length (the idle time stretches, or reps
    go and the tempo rises, to fit); otherwise both are drawn. Body, movement, camera and noise
    draw from separate streams spawned from ``rng``, so changing the camera ranges of ``cfg``
    leaves the movement the same.
    """
    cfg = cfg or MotionConfig()
    name = ACTION_NAMES[action] if isinstance(action, int | np.integer) else action
    if name not in ACTIONS:
        raise ConfigError(f"unknown action {name!r}: use one of {', '.join(ACTION_NAMES)}")
    act = ACTIONS[name]
    r_body, r_move, r_time, r_cam, r_noise = (
        np.random.default_rng(int(x)) for x in rng.integers(0, 2**63, size=5)
    )
    move = _movement(act, r_move, r_time, cfg, fps, num_frames)
    return _render(name, act, move, r_body, r_cam, r_noise, cfg)


def sample_motion_pair(
    action: str | int,
    rng: np.random.Generator,
    cfg: MotionConfig | None = None,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
) -> tuple[MotionSample, MotionSample]:
    """One movement of ``action`` performed by two people (body proportions, handedness) and
    filmed by two cameras with their own errors, on one timeline: frame k of either is the same
    moment of the movement, so the two are a positive pair for every frame."""
    cfg = cfg or MotionConfig()
    name = ACTION_NAMES[action] if isinstance(action, int | np.integer) else action
    if name not in ACTIONS:
        raise ConfigError(f"unknown action {name!r}: use one of {', '.join(ACTION_NAMES)}")
    act = ACTIONS[name]
    r_move, r_time, *looks = (np.random.default_rng(int(x)) for x in rng.integers(0, 2**63, size=8))
    move = _movement(act, r_move, r_time, cfg, fps, num_frames)
    first = _render(name, act, move, looks[0], looks[1], looks[2], cfg)
    second = _render(name, act, move, looks[3], looks[4], looks[5], cfg)
    return first, second


@dataclass
class _Movement:
    """What two performers of one movement share: joint angles over time, labels, timing."""

    q: np.ndarray  # (T, channels)
    labels: np.ndarray
    fps: float
    reps: int
    position: np.ndarray  # (T,) see MotionSample.position


def _movement(
    act: Action,
    r_move: np.random.Generator,
    r_time: np.random.Generator,
    cfg: MotionConfig,
    fps: float | None,
    num_frames: int | None,
) -> _Movement:
    fps = float(fps or cfg.fps[int(r_time.integers(len(cfg.fps)))])
    reps = int(r_move.integers(min(cfg.reps[0], act.reps), min(cfg.reps[1], act.reps) + 1))
    state = r_move.bit_generator.state
    while True:
        tl = _timeline(act, r_move, cfg, reps, fps)
        total = tl.times[-1]
        limit = num_frames / fps if num_frames else cfg.max_seconds
        if total <= limit or reps == 1:
            break
        reps -= 1
        r_move.bit_generator.state = state
    if num_frames:
        content = tl.end - tl.start
        idle = limit - content
        if idle < 0.05 * limit:  # too long even with one rep: speed it up
            tl.times = tl.times * (0.9 * limit / content)
            tl.start, tl.end = tl.start * 0.9 * limit / content, tl.end * 0.9 * limit / content
            content, idle = tl.end - tl.start, 0.1 * limit
        before = idle * _u(r_time, (0.2, 0.8))
        tl.times = np.concatenate([[0.0], tl.times[1:-1] - tl.start + before, [limit]])
        tl.end, tl.start = tl.end - tl.start + before, before
        t = int(num_frames)
    else:
        t = max(int(round(total * fps)), 2)
    duration = tl.times[-1]
    warp = _warp(r_time, t, _u(r_time, cfg.warp))
    tau = warp * duration
    q = PchipInterpolator(tl.times, tl.poses, axis=0)(tau)
    j = np.clip(
        np.searchsorted(tl.times, tau, side="left"), 1, len(tl.times) - 1
    )  # the stretch ending at key j
    labels = tl.labels[j]
    frac = np.clip((tau - tl.times[j - 1]) / np.maximum(tl.times[j] - tl.times[j - 1], 1e-9), 0.0, 1.0)
    position = tl.pos_from[j] + frac * (tl.pos_to[j] - tl.pos_from[j])
    # Fidgeting: always a little, more while idle before and after the action.
    idle_frames = np.convolve(((tau < tl.start) | (tau > tl.end)).astype(float), np.ones(9) / 9, mode="same")
    fid = (
        _smooth_noise(r_move, t, len(CHANNELS), 0.6 * fps)
        * _FIDGET
        * cfg.fidget
        * (0.4 + 1.6 * idle_frames)[:, None]
    )
    q = q + fid
    q[:, _NONNEG] = np.maximum(q[:, _NONNEG], 0.0)

    return _Movement(q, labels, fps, reps, position)


def _render(
    name: str,
    act: Action,
    move: _Movement,
    r_body: np.random.Generator,
    r_cam: np.random.Generator,
    r_noise: np.random.Generator,
    cfg: MotionConfig,
) -> MotionSample:
    """One performer (body, handedness) filmed by one camera, with MediaPipe-like errors."""
    q, labels, fps, reps = move.q, move.labels, move.fps, move.reps
    t = len(q)
    body = sample_body(r_body, cfg)
    pts, face_world = forward_kinematics(body, q, act.flat_feet)
    _place(pts, face_world, act, q)
    mirror = bool(r_body.random() < cfg.mirror_prob)
    if mirror:
        pts = pts[:, MIRROR] * np.array([-1.0, 1.0, 1.0])
        face_world = face_world[:, MIRROR[:11]] * np.array([-1.0, 1.0, 1.0])
    cam = sample_camera(r_cam, cfg)
    px, cam_pts, world, focal = _film(pts, face_world, cam, r_cam)
    w, h = cam.width, cam.height
    torso_px = np.linalg.norm((px[:, 11] + px[:, 12]) / 2 - (px[:, 23] + px[:, 24]) / 2, axis=1)
    torso_px = np.maximum(torso_px, 0.3 * np.median(torso_px) + 1e-6)
    vis = _visibility(r_noise, px, cam_pts, torso_px, w, h, t)
    noise_level = 0.0
    if cfg.noise:
        px, world, noise_level = _add_noise(r_noise, cfg, px, world, vis, torso_px, fps)
    hip_depth = (cam_pts[:, 23, 2] + cam_pts[:, 24, 2]) / 2
    stretch = MEASURED["z_stretch"] * math.exp(r_noise.normal(0, 0.08))
    z_img = stretch * world[..., 2] * (focal / hip_depth / w)[:, None]
    image = np.concatenate([px / np.array([w, h]), z_img[..., None], vis[..., None]], axis=-1).astype(
        np.float32
    )
    world4 = np.concatenate([world, vis[..., None]], axis=-1).astype(np.float32)
    flipped = glitches = 0
    if r_noise.random() < cfg.flip_prob:
        flipped = _flip(image, world4, r_noise, t)
    if r_noise.random() < cfg.glitch_prob:
        gpx = image[..., :2] * np.array([w, h])
        glitches = _glitch(gpx, torso_px, r_noise, t)
        image[..., :2] = gpx / np.array([w, h])
    miss = _dropouts(r_noise, cfg, t, fps)
    status = _fill_gaps(image, world4, miss, cfg.max_interpolated_gap)

    events = _events(labels)
    meta = {"source": "synthetic-motion", "action": name}
    pose = PoseSequence(image, world4, status, np.arange(t) / fps, np.arange(t, dtype=np.int64), w, h, meta)
    info = {
        "fps": fps, "reps": reps, "mirror": mirror, "camera": asdict(cam), "body": asdict(body),
        "noise_level": noise_level, "flipped_frames": flipped, "glitches": glitches,
    }  # fmt: skip
    return MotionSample(
        pose, labels.astype(np.int64), ACTION_NAMES.index(name), events.astype(np.int64), info,
        move.position.copy(),
    )  # fmt: skip


# ----------------------------------------------------------------------------- datasets on disk
INDEX_FILE = "index.json"


def _events(labels: np.ndarray) -> np.ndarray:
    """(E, 2): the frame where each phase starts, and that phase."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1]).astype(np.int64)
    return np.stack([starts, labels[starts]], axis=1)


def _dataset_job(job: tuple[str, str, np.random.SeedSequence, dict[str, Any], float | None, int | None]):
    """Worker: draw one sequence and write it (top-level so processes can run it)."""
    path, action, seq, cfg_kw, fps, num_frames = job
    s = sample_motion(
        action, np.random.default_rng(seq), MotionConfig(**cfg_kw), fps=fps, num_frames=num_frames
    )
    s.pose.save(path)
    atomic_save_npy(Path(path).with_suffix(".labels.npy"), s.labels)
    return len(s.labels), float(s.info["fps"]), s.info["mirror"]


def make_motion_dataset(
    out_dir: str | os.PathLike,
    n_per_action: int = 50,
    seed: int = 0,
    val_fraction: float = 0.2,
    *,
    actions: Sequence[str] | None = None,
    cfg: MotionConfig | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    workers: int | None = None,
    on_progress: Progress | None = None,
) -> Path:
    """Write synthetic motion to ``out_dir`` and return it.

    ``OUT/sequences/<action>_<i>.npz`` (a ``PoseSequence``, read it with ``PoseSequence.load``) and
    ``<action>_<i>.labels.npy`` (phase per frame) beside it, and ``OUT/index.json``: the action
    names, their phases, and the ``train`` and ``val`` splits (``val_fraction`` of each action's
    sequences). Sequence ``i`` depends only on ``seed`` and ``i``, not on ``workers``.
    """
    cfg = cfg or MotionConfig()
    names = tuple(actions or ACTION_NAMES)
    unknown = [a for a in names if a not in ACTIONS]
    if unknown:
        raise ConfigError(f"unknown actions {unknown}: use some of {', '.join(ACTION_NAMES)}")
    if n_per_action < 1 or not 0 <= val_fraction < 1:
        raise ConfigError("give at least one sequence per action and a val fraction in [0, 1)")
    out = Path(out_dir)
    (out / "sequences").mkdir(parents=True, exist_ok=True)
    seqs = np.random.SeedSequence(seed).spawn(len(names) * n_per_action)
    cfg_kw = asdict(cfg)
    records, jobs = [], []
    for a_i, action in enumerate(names):
        for i in range(n_per_action):
            name = f"{action}_{i:04d}"
            records.append({"name": name, "action": action, "file": f"sequences/{name}.npz"})
            jobs.append(
                (
                    str(out / records[-1]["file"]),
                    action,
                    seqs[a_i * n_per_action + i],
                    cfg_kw,
                    fps,
                    num_frames,
                )
            )
    workers = workers or min(2, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        # Forking is fast, but unsafe once other threads run (an app, a trainer): spawn then.
        safe_fork = sys.platform == "linux" and threading.active_count() == 1
        ctx = multiprocessing.get_context("fork" if safe_fork else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            results = pool.map(_dataset_job, jobs, chunksize=8)
            done = [_progress(on_progress, k, len(jobs), r, records) for k, r in enumerate(results)]
    else:
        done = [_progress(on_progress, k, len(jobs), _dataset_job(j), records) for k, j in enumerate(jobs)]
    for rec, (frames, rate, mirror) in zip(records, done):
        rec.update(frames=frames, fps=rate, mirror=mirror, labels=rec["file"][: -len(".npz")] + ".labels.npy")
    n_val = 0 if val_fraction == 0 else min(max(round(n_per_action * val_fraction), 1), n_per_action - 1)
    index = {
        "kind": "carl-motion",
        "version": 1,
        "seed": seed,
        "actions": list(names),
        "phases": {a: list(ACTIONS[a].phases) for a in names},
        "num_phases": {a: len(ACTIONS[a].phases) for a in names},
        "fps": fps,
        "num_frames": num_frames,
        "config": cfg_kw,
        "splits": {
            "train": [r for r in records if int(r["name"][-4:]) >= n_val],
            "val": [r for r in records if int(r["name"][-4:]) < n_val],
        },
    }
    atomic_write_text(out / INDEX_FILE, json.dumps(index, indent=1) + "\n")
    return out


def _progress(on_progress: Progress | None, k: int, n: int, result: Any, records: list[dict]) -> Any:
    if on_progress:
        on_progress(k + 1, n, records[k]["name"])
    return result


def load_motion_dataset(root: str | os.PathLike, split: str = "train") -> list[MotionSample]:
    """The sequences of one split of a dataset written by ``make_motion_dataset``."""
    root = Path(root)
    try:
        index = json.loads((root / INDEX_FILE).read_text())
        records = index["splits"][split]
    except FileNotFoundError:
        raise DataError(
            f"{root} has no {INDEX_FILE}: make one with `carl synth --kind motion --out {root}`"
        ) from None
    except KeyError:
        raise DataError(f"{root / INDEX_FILE} has no split {split!r} (it has train and val)") from None
    except ValueError as e:
        raise DataError(f"{root / INDEX_FILE} is not a motion dataset index ({e})") from None
    out = []
    for r in records:
        pose = PoseSequence.load(root / r["file"])
        try:
            labels = np.load(root / r["labels"], allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{root / r['labels']}: cannot read the phase labels ({e})") from None
        if len(labels) != len(pose):
            raise DataError(f"{root / r['labels']} has {len(labels)} labels for {len(pose)} frames")
        info = {k: r[k] for k in ("name", "fps", "mirror") if k in r}
        out.append(
            MotionSample(
                pose, labels.astype(np.int64), ACTION_NAMES.index(r["action"]), _events(labels), info
            )
        )
    return out
