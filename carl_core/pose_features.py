"""From body landmarks to what the pose model reads, per frame.

A pose model (``ModelConfig.backbone == "pose"``) takes, for each frame, the 33 landmarks of a
``PoseSequence`` packed as one (33, 8) array (``pose_array``): image x, y, z, visibility, then
world x, y, z, visibility; NaN where nobody was found. Its "backbone" is ``PoseFeatures``,
which has no weights: it turns each frame into a vector that says what the body does, not
where it stands or who it is:

- world coordinates (metres, MediaPipe's camera-aligned frame, y down) centred between the
  hips and divided by the torso's length, so a tall and a short person doing the same squat
  give the same numbers;
- joint angles (elbows, shoulders, hips, knees, ankles) and the tilt of each limb segment from
  the vertical: unchanged by the camera's yaw and by the body's size;
- each landmark's visibility, and a flag for a frame with no person (all else zero there).

Facing: MediaPipe's world frame turns with the camera, so a golfer filmed from the front and
one filmed from the side give rotated coordinates. ``canonical_facing`` rotates a whole video
about the vertical so that the body faces the camera on average (one rotation per video, so a
turn within it stays visible). The alternative, learning the invariance by training on random
rotations and mirror images (``augment_pose``), is configured by ``ModelConfig.pose_facing``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .skeleton import INDEX, MIRROR, NUM_LANDMARKS, PoseSequence

RAW_CHANNELS = 8  # image x, y, z, visibility; world x, y, z, visibility

_L_HIP, _R_HIP = INDEX["left_hip"], INDEX["right_hip"]
_L_SH, _R_SH = INDEX["left_shoulder"], INDEX["right_shoulder"]

# Angle at the middle landmark of each triple.
_JOINTS = (
    (11, 13, 15), (12, 14, 16),  # elbows
    (13, 11, 23), (14, 12, 24),  # shoulders
    (11, 23, 25), (12, 24, 26),  # hips
    (23, 25, 27), (24, 26, 28),  # knees
    (25, 27, 31), (26, 28, 32),  # ankles
)  # fmt: skip
# Segments whose tilt from the vertical is read: upper arms, forearms, thighs, shins.
_SEGMENTS = ((11, 13), (12, 14), (13, 15), (14, 16), (23, 25), (24, 26), (25, 27), (26, 28))

FEATURES = NUM_LANDMARKS * 3 + len(_JOINTS) + len(_SEGMENTS) + 1 + NUM_LANDMARKS + 1  # kind "world"


def pose_array(seq: PoseSequence) -> np.ndarray:
    """(T, 33, 8) float32 model input of a pose sequence; image x and z in units of the frame's
    height (so image coordinates are isotropic), NaN where nobody was found."""
    image = seq.image.astype(np.float32).copy()
    image[..., 0] *= seq.aspect
    image[..., 2] *= seq.aspect
    return np.concatenate([image, seq.world.astype(np.float32)], axis=-1)


def _yaw_of(world: np.ndarray) -> np.ndarray:
    """Per frame (T,), the angle in the ground plane (x, z) of the body's left-right axis
    (hips and shoulders averaged): 0 when the person faces the camera."""
    axis = (world[:, _L_HIP] - world[:, _R_HIP]) + (world[:, _L_SH] - world[:, _R_SH])
    return np.arctan2(axis[:, 2], axis[:, 0])


def rotate_yaw(raw: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """World coordinates of (T, 33, 8) rotated about the vertical (y) axis by ``angle``
    (radians, one value or one per frame); image coordinates are left alone."""
    out = raw.copy()
    c, s = np.cos(angle), np.sin(angle)
    c, s = np.broadcast_to(c, (len(raw),))[:, None], np.broadcast_to(s, (len(raw),))[:, None]
    x, z = raw[..., 4], raw[..., 6]
    out[..., 4] = c * x + s * z
    out[..., 6] = -s * x + c * z
    return out


def usual_facing(raw: np.ndarray) -> float | None:
    """The facing a video holds most of the time (radians; None where nobody is found).

    The densest yaw on the circle (a 20-degree kernel), refined by the circular mean of the
    frames near it: a golfer's follow-through or a walk-off turns the body for a while, and a
    plain mean would land between the two facings.
    """
    yaw = _yaw_of(raw[..., 4:7])
    yaw = yaw[np.isfinite(yaw)]
    if not len(yaw):
        return None
    grid = np.linspace(-np.pi, np.pi, 180, endpoint=False)
    density = np.exp(np.cos(grid[:, None] - yaw[None, :]) / np.radians(20) ** 2).sum(axis=1)
    mode = grid[np.argmax(density)]
    near = yaw[np.cos(yaw - mode) > np.cos(np.radians(30))]
    return float(np.arctan2(np.sin(near).mean(), np.cos(near).mean()))


def canonical_facing(raw: np.ndarray) -> np.ndarray:
    """Rotate a whole sequence about the vertical so that the body faces the camera in its
    ``usual_facing``: one rotation for the whole video, so that a turn within it stays visible."""
    yaw = usual_facing(raw)
    return raw.copy() if yaw is None else rotate_yaw(raw, yaw)


def mirror_pose(raw: np.ndarray) -> np.ndarray:
    """The mirror image: left and right landmarks swap, and x changes sign (image x about the
    frame's centre line, world x about the hips)."""
    out = raw[:, MIRROR].copy()
    out[..., 4] = -out[..., 4]
    out[..., 0] = -out[..., 0]
    return out


def model_input(seq: PoseSequence, facing: str) -> np.ndarray:
    """What a pose model with ``pose_facing=facing`` reads from a sequence: (T, 33, 8)."""
    raw = pose_array(seq)
    return canonical_facing(raw) if facing == "sequence" else raw


def augment_pose(
    raw: np.ndarray, rng: np.random.Generator, *, rotate: bool, mirror: bool, noise: float = 0.0
) -> np.ndarray:
    """A training view of (T, 33, 8) landmarks: a random yaw (``rotate``), mirrored half the
    time (``mirror``), world jitter of ``noise`` metres."""
    out = raw
    if rotate:
        out = rotate_yaw(out, rng.uniform(-np.pi, np.pi))
    if mirror and rng.random() < 0.5:
        out = mirror_pose(out)
    if noise > 0:
        out = out.copy()
        out[..., 4:7] += rng.normal(0.0, noise, size=out[..., 4:7].shape).astype(out.dtype)
    return out


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


# Left/right pairs of joints (angle at the middle landmark) and of limb segments, and the
# landmarks whose height and visibility are read, for the invariant features.
_PAIRED_JOINTS = (((11, 13, 15), (12, 14, 16)), ((13, 11, 23), (14, 12, 24)),
                  ((11, 23, 25), (12, 24, 26)), ((23, 25, 27), (24, 26, 28)))  # fmt: skip
_PAIRED_SEGMENTS = (((11, 13), (12, 14)), ((13, 15), (14, 16)), ((23, 25), (24, 26)), ((25, 27), (26, 28)))
_PAIRED_POINTS = ((15, 16), (13, 14), (25, 26), (27, 28))  # wrists, elbows, knees, ankles
_VISIBLE = ((11, 12), (13, 14), (15, 16), (23, 24), (25, 26), (27, 28))

INVARIANT_FEATURES = 2 * (2 * 4 + 2 * 4 + 2) + 2 * 4 + 3 + 2 * len(_VISIBLE) + 1 + 1
WORLD_FEATURES = FEATURES


def _sorted_pairs(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """(N, K) left and right values -> (N, 2K), each pair in increasing order: the same numbers
    for a body and its mirror image, and where MediaPipe swaps a limb's sides."""
    both = torch.stack([left, right], dim=-1)
    return both.sort(dim=-1).values.flatten(1)


def _angles(c: torch.Tensor) -> torch.Tensor:
    """Cosines (N, K) -> (N, 2K) (cos, sin): the dot product of two such rows is the mean cosine
    of the angle differences, so every angle counts alike whatever its value."""
    c = c.clamp(-1, 1)
    return torch.cat([c, (1 - c * c).clamp_min(0).sqrt()], dim=1)


class PoseFeatures(nn.Module):
    """(N, 33, 8) landmarks -> per-frame features; no weights: the pose model's frozen "backbone".

    ``kind="invariant"`` (the default): what the body does, the same from any camera yaw, for
    any body size, and for a body and its mirror image (left-handed, filmed from the other side,
    or MediaPipe swapping a limb's sides): joint angles and limb tilts from the vertical as
    (cos, sin), the trunk's tilt and twist, heights of wrists, elbows, knees and ankles over the
    hips and the spread of wrists, elbows and ankles (in torso lengths), with each left/right
    pair sorted; visibilities likewise. ``kind="world"``: the world coordinates themselves,
    centred on the hips and scaled by the torso, with the angles (see ``model_input`` for the
    facing); it tells left from right, and needs the facing handled.
    A frame with nobody is all zeros but its last value, a flag.
    """

    def __init__(self, kind: str = "invariant"):
        super().__init__()
        self.kind = kind
        self.out_channels = INVARIANT_FEATURES if kind == "invariant" else WORLD_FEATURES

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        raw = raw.float()
        world, vis = raw[..., 4:7], raw[..., 7]
        found = torch.isfinite(world).all(dim=-1).all(dim=-1)  # (N,)
        world = torch.nan_to_num(world, nan=0.0)
        vis = torch.nan_to_num(vis, nan=0.0)
        out = self._invariant(world, vis) if self.kind == "invariant" else self._world(world, vis)
        out = torch.cat([out, (~found).float()[:, None]], dim=1)
        return torch.where(found[:, None], out, torch.zeros_like(out).index_fill_(1, _last(out), 1.0))

    @staticmethod
    def _world(world: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        hips = (world[:, _L_HIP] + world[:, _R_HIP]) / 2
        shoulders = (world[:, _L_SH] + world[:, _R_SH]) / 2
        torso = (shoulders - hips).norm(dim=-1).clamp_min(0.05)
        body = ((world - hips[:, None]) / torso[:, None, None]).clamp(-6, 6)
        a, b, c = (torch.tensor(i, device=world.device) for i in zip(*_JOINTS))
        joint = (_unit(world[:, a] - world[:, b]) * _unit(world[:, c] - world[:, b])).sum(-1)
        s0, s1 = (torch.tensor(i, device=world.device) for i in zip(*_SEGMENTS))
        tilt = _unit(world[:, s1] - world[:, s0])[..., 1]  # y is down: 1 points straight down
        trunk = _unit(hips - shoulders)[:, 1:2]
        return torch.cat([body.flatten(1), joint, tilt, trunk, vis], dim=1)

    @staticmethod
    def _invariant(world: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        def joint(a: int, b: int, c: int) -> torch.Tensor:
            return (_unit(world[:, a] - world[:, b]) * _unit(world[:, c] - world[:, b])).sum(-1)

        def tilt(a: int, b: int) -> torch.Tensor:
            return _unit(world[:, b] - world[:, a])[:, 1]  # y is down: 1 points straight down

        hips = (world[:, _L_HIP] + world[:, _R_HIP]) / 2
        shoulders = (world[:, _L_SH] + world[:, _R_SH]) / 2
        torso = (shoulders - hips).norm(dim=-1).clamp_min(0.05)
        cosines = [_sorted_pairs(joint(*l), joint(*r)) for l, r in _PAIRED_JOINTS]
        cosines += [_sorted_pairs(tilt(*l), tilt(*r)) for l, r in _PAIRED_SEGMENTS]
        hip_axis = (world[:, _L_HIP] - world[:, _R_HIP])[:, [0, 2]]
        shoulder_axis = (world[:, _L_SH] - world[:, _R_SH])[:, [0, 2]]
        twist = (_unit(hip_axis) * _unit(shoulder_axis)).sum(-1)  # the same mirrored
        cosines.append(torch.stack([_unit(hips - shoulders)[:, 1], twist], dim=1))
        heights = [
            _sorted_pairs((world[:, l, 1] - hips[:, 1]) / torso, (world[:, r, 1] - hips[:, 1]) / torso)
            for l, r in _PAIRED_POINTS
        ]

        def spread(l: int, r: int) -> torch.Tensor:
            return (world[:, l] - world[:, r])[:, [0, 2]].norm(dim=-1) / torso

        spreads = torch.stack([spread(15, 16), spread(13, 14), spread(27, 28)], dim=1)
        lengths = torch.tanh(torch.cat([*heights, spreads], dim=1) / 2)
        seen = torch.cat([_sorted_pairs(vis[:, l][:, None], vis[:, r][:, None]) for l, r in _VISIBLE], dim=1)
        return torch.cat([_angles(torch.cat(cosines, dim=1)), lengths, seen, vis[:, :1]], dim=1)


DESCRIPTOR = 2 * (2 * 4 + 2 * 4 + 2) + 2 * 4 + 3  # the invariant features' angles and lengths


def pose_descriptor(seq: PoseSequence) -> np.ndarray:
    """(T, DESCRIPTOR) unit rows: each frame's pose on its own, without context or weights, what
    a picture's pose is compared with (the invariant features' angles and lengths; see
    ``PoseFeatures``). All zeros where nobody was found."""
    with torch.no_grad():
        f = PoseFeatures("invariant")(torch.from_numpy(pose_array(seq)))[:, :DESCRIPTOR]
    return torch.nn.functional.normalize(f, dim=1).numpy()


# Half-width of the window over which the descriptor's change is read, seconds: 3 frames at
# 30 fps. The middle of the plateau (0.07-0.13 s) found on held-out synthetic motion
# (benchmarks/descriptor_motion.py).
MOTION_WINDOW_S = 0.1


def motion_descriptor(seq: PoseSequence, weight: float, window: float = MOTION_WINDOW_S) -> np.ndarray:
    """(T, 2 * DESCRIPTOR) unit rows: each frame's ``pose_descriptor`` beside ``weight`` times its
    change from ``window`` seconds before to as long after (the frames nearest those times, by
    ``seq.times``, so any frame rate). A held pose and the first frames that leave it look the
    same to the pose alone; their change tells them apart, so DTW places where a hold ends (the
    bottom of a slow squat). The change is zero where a frame it needs has nobody."""
    from .video import nearest_frames

    d = pose_descriptor(seq)
    n = len(d)
    if n == 0 or weight == 0:
        return np.concatenate([d, np.zeros_like(d)], axis=1)
    t = np.asarray(seq.times, dtype=np.float64)
    i = np.arange(n)
    after = np.maximum(nearest_frames(t, t + window), np.minimum(i + 1, n - 1))  # at least one frame away
    before = np.minimum(nearest_frames(t, t - window), np.maximum(i - 1, 0))
    found = np.abs(d).sum(axis=1) > 0  # frames with nobody are all zeros
    change = (d[after] - d[before]) / 2
    change[~(found & found[after] & found[before])] = 0
    out = np.concatenate([d, weight * change], axis=1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _last(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor([x.shape[1] - 1], device=x.device)


__all__ = [
    "FEATURES",
    "INVARIANT_FEATURES",
    "RAW_CHANNELS",
    "PoseFeatures",
    "augment_pose",
    "DESCRIPTOR",
    "MOTION_WINDOW_S",
    "motion_descriptor",
    "canonical_facing",
    "pose_descriptor",
    "usual_facing",
    "mirror_pose",
    "model_input",
    "pose_array",
    "rotate_yaw",
]
