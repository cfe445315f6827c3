"""The body-pose vocabulary shared by pose extraction, synthetic motion and the pose model.

MediaPipe's BlazePose layout: 33 landmarks, each in two frames of reference.

- ``image``: x and y relative to the frame's width and height (0 to 1, may leave that range when
  a limb leaves the picture), z a depth on the scale of x (smaller is nearer the camera, the
  hips' midpoint at about 0), and visibility (0 to 1: how likely the landmark is in view and
  not occluded).
- ``world``: metres, origin between the hips, y pointing down (MediaPipe's convention), and the
  same visibility.

A ``PoseSequence`` holds one person's landmarks for every frame of a video, in the video's
order. A frame where nobody was found is kept, as NaN, never dropped: frame ``k`` of the
sequence is always the ``k``-th frame asked for, so poses line up with embeddings and times.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import atomic_open

NAMES = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
NUM_LANDMARKS = len(NAMES)
INDEX = {name: i for i, name in enumerate(NAMES)}

# Bones drawn over the video (MediaPipe's POSE_CONNECTIONS, face outline left out).
CONNECTIONS = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),  # shoulders, arms
    (15, 17), (15, 19), (15, 21), (17, 19), (16, 18), (16, 20), (16, 22), (18, 20),  # hands
    (11, 23), (12, 24), (23, 24),  # torso
    (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),  # left leg
    (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),  # right leg
    (0, 2), (0, 5), (2, 7), (5, 8), (9, 10),  # face
)  # fmt: skip


def _mirror_permutation() -> np.ndarray:
    perm = np.arange(NUM_LANDMARKS)
    for i, name in enumerate(NAMES):
        for a, b in (("left", "right"), ("right", "left")):
            if a in name:
                perm[i] = INDEX[name.replace(a, b)]
    return perm


# MIRROR[i]: the landmark that takes i's place when the body is mirrored (left <-> right).
MIRROR = _mirror_permutation()
LIMB_LANDMARKS = (11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
VISIBLE = 0.5  # landmark visibility from which a landmark counts as seen

# Status of a frame in a PoseSequence.
MISSING, DETECTED, INTERPOLATED = 0, 1, 2


@dataclass
class PoseSequence:
    """One person's 33 landmarks in every frame of a video.

    image, world: float32 (T, 33, 4), see the module docstring; NaN where ``status`` is MISSING.
    status: uint8 (T,): MISSING, DETECTED, or INTERPOLATED (a short gap filled from its ends).
    times: float64 (T,) seconds from the first frame; indices: int64 (T,) frame numbers in the file.
    width, height: the frame size in pixels (image x and y are relative to these).
    blank: (T,) bool, frames that are black or nearly uniform (``video.blank_frames``), where known.
    """

    image: np.ndarray
    world: np.ndarray
    status: np.ndarray
    times: np.ndarray
    indices: np.ndarray
    width: int
    height: int
    meta: dict[str, str] = field(default_factory=dict)  # free text: source, model, crop box
    blank: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.status)
        if self.blank is not None and np.shape(self.blank) != (t,):
            raise DataError("pose blank flags must have one entry per frame")
        for name in ("image", "world"):
            a = getattr(self, name)
            if a.shape != (t, NUM_LANDMARKS, 4):
                raise DataError(f"pose {name} has shape {a.shape}, expected ({t}, {NUM_LANDMARKS}, 4)")
        if len(self.times) != t or len(self.indices) != t:
            raise DataError("pose times and indices must have one entry per frame")

    def __len__(self) -> int:
        return len(self.status)

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: a person's landmarks are known in this frame (detected or interpolated)."""
        return self.status != MISSING

    @property
    def body_visible(self) -> np.ndarray:
        """(T,) bool: a body the pose can be read from: known, with at least half of the limbs'
        landmarks (shoulders, elbows, wrists, hips, knees, ankles) visible. A face close-up or a
        hand at a table is "a person" to the detector, but its angles are guesses."""
        vis = np.nan_to_num(self.image[:, LIMB_LANDMARKS, 3]) >= VISIBLE
        return self.present & (vis.sum(axis=1) >= len(LIMB_LANDMARKS) // 2)

    @property
    def aspect(self) -> float:
        """Width over height: image x and y are relative to different lengths."""
        return self.width / self.height

    def save(self, path: str | os.PathLike) -> Path:
        """Write to an ``.npz`` atomically."""
        path = Path(path)
        with atomic_open(path) as f:
            arrays: dict[str, np.ndarray] = {
                "image": self.image.astype(np.float32),
                "world": self.world.astype(np.float32),
                "status": self.status.astype(np.uint8),
                "times": self.times.astype(np.float64),
                "indices": self.indices.astype(np.int64),
                "size": np.array([self.width, self.height], dtype=np.int64),
                "meta": np.array(sorted(f"{k}={v}" for k, v in self.meta.items()), dtype=str),
            }
            if self.blank is not None:
                arrays["blank"] = self.blank.astype(bool)
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keywords as bool
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PoseSequence:
        try:
            with np.load(path, allow_pickle=False) as d:
                meta = dict(item.split("=", 1) for item in d["meta"].tolist()) if "meta" in d else {}
                w, h = (int(v) for v in d["size"])
                return cls(d["image"], d["world"], d["status"], d["times"], d["indices"], w, h, meta)
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{path} is not a pose file written by CARL Studio ({e})") from None

    @classmethod
    def from_mediapipe_npz(cls, path: str | os.PathLike, width: int, height: int, fps: float) -> PoseSequence:
        """A reference file as MediaPipe's ``solutions.pose`` was recorded into (``image`` and
        ``world`` arrays, NaN where nobody was found): every frame, in order."""
        with np.load(path, allow_pickle=False) as d:
            image, world = d["image"].astype(np.float32), d["world"].astype(np.float32)
        found = ~np.isnan(image[:, :, 0]).all(axis=1)
        t = len(image)
        return cls(
            image,
            world,
            np.where(found, DETECTED, MISSING).astype(np.uint8),
            np.arange(t) / fps,
            np.arange(t, dtype=np.int64),
            width,
            height,
            {"source": "mediapipe"},
        )


def interpolate_gaps(seq: PoseSequence, max_gap: float = 0.25) -> PoseSequence:
    """Fill short runs of MISSING frames from the frames on either side, linearly in time.

    A run is filled when the footage it covers (the time between its two found neighbours, less
    one frame interval) is at most ``max_gap`` seconds; its frames become INTERPOLATED. Runs at
    the start or end, and longer ones, stay MISSING. Returns a new sequence.
    """
    image, world, status = seq.image.copy(), seq.world.copy(), seq.status.copy()
    found = np.flatnonzero(status != MISSING)
    if len(found) >= 2 and len(seq) >= 2:
        step = float(np.median(np.diff(seq.times)))
        for a, b in zip(found[:-1], found[1:], strict=True):
            if b - a < 2 or seq.times[b] - seq.times[a] - step > max_gap + 1e-6:
                continue
            w = ((seq.times[a + 1 : b] - seq.times[a]) / (seq.times[b] - seq.times[a]))[:, None, None]
            for arr in (image, world):
                arr[a + 1 : b] = (1 - w) * arr[a] + w * arr[b]
            status[a + 1 : b] = INTERPOLATED
    return PoseSequence(
        image, world, status, seq.times, seq.indices, seq.width, seq.height, dict(seq.meta), seq.blank
    )


__all__ = [
    "CONNECTIONS",
    "DETECTED",
    "INDEX",
    "INTERPOLATED",
    "MIRROR",
    "MISSING",
    "NAMES",
    "NUM_LANDMARKS",
    "PoseSequence",
    "interpolate_gaps",
]
