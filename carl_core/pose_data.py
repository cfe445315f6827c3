"""Training data for models that read body pose: sequences of landmarks, and their two views.

Where the sequences come from (``pose_source``):

- ``"motion"`` (or ``"motion:N"``): synthetic human motion drawn afresh for every epoch
  (``carl_core.motion``), N sequences an epoch. Each draw renders one movement twice, as two
  people (body proportions, style, handedness) filmed by two cameras with their own noise: the
  two views of SCL then differ in everything that should not change the embedding.
- a dataset written by ``carl synth --kind motion`` (a folder with ``index.json``);
- a folder of videos: each person's pose is extracted once (``pose.PoseExtractor``, cached).

A view is a time-augmented sample of the sequence's frames (``augment.time_augment``, dense
"clip" windows so the frames come at about the video's own rate, as at inference), of the pose
model's input (``pose_features.model_input``), with the frames' times for the "time" position
scheme.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .augment import time_augment
from .config import CarlConfig
from .errors import DataError
from .pose_features import augment_pose, model_input
from .progress import Progress
from .skeleton import PoseSequence

MOTION = "motion"
MOTION_PER_EPOCH = 512  # synthetic sequences an epoch when "motion" names no number


@dataclass
class PoseItem:
    """One training sequence: the model's input (L, 33, 8), the frames' times, labels if known."""

    raw: np.ndarray
    times: np.ndarray
    name: str
    action: int | None = None  # video-level label (weak SCL pairs videos that share it)
    frame_label: np.ndarray | None = None  # per-frame phase, for evaluation
    position: np.ndarray | None = None  # per-frame place in the movement (synthetic motion)

    def __len__(self) -> int:
        return len(self.raw)


def _item(
    seq: PoseSequence, facing: str, name: str, action: int | None, labels: Any, position: Any = None
) -> PoseItem:
    times = np.asarray(seq.times, dtype=np.float64)
    return PoseItem(model_input(seq, facing), times, name, action, labels, position)


class PoseSource:
    """Sequences by (epoch, index). Fixed sources give the same sequence every epoch."""

    names: list[str]
    actions: list[int | None]
    views = "one_movement"  # what the two views of a sample show (config.DataConfig.motion_views)

    def __len__(self) -> int:
        return len(self.names)

    def pair(self, epoch: int, i: int) -> tuple[PoseItem, PoseItem]:
        """The sequences the two views of sample i are drawn from (the same one, or two
        renderings of one movement on a common timeline)."""
        item = self.get(epoch, i)
        return item, item

    def get(self, epoch: int, i: int) -> PoseItem:
        raise NotImplementedError


class FixedPoses(PoseSource):
    def __init__(self, items: list[PoseItem]):
        if not items:
            raise DataError("the training set holds no pose sequences")
        self.items = items
        self.names = [it.name for it in items]
        self.actions: list[int | None] = [it.action for it in items]

    def get(self, epoch: int, i: int) -> PoseItem:
        return self.items[i]


class SyntheticMotion(PoseSource):
    """Synthetic motion drawn afresh per (seed, epoch, index): the actions in turn."""

    def __init__(
        self,
        count: int,
        seed: int,
        facing: str,
        actions: list[str] | None = None,
        max_reps: int = 4,
        views: str = "one_movement",
    ):
        from .motion import ACTION_NAMES, MotionConfig

        self.views = views
        self.action_names = list(actions or ACTION_NAMES)
        self.all_names = list(ACTION_NAMES)
        self.count, self.seed, self.facing = count, seed, facing
        self.motion = dataclasses.replace(MotionConfig(), reps=(1, max(1, int(max_reps))))
        self.names = [f"motion-{i}" for i in range(count)]
        self.actions = [
            self.all_names.index(self.action_names[i % len(self.action_names)]) for i in range(count)
        ]

    def pair(self, epoch: int, i: int) -> tuple[PoseItem, PoseItem]:
        from .motion import sample_motion, sample_motion_pair

        action = self.action_names[i % len(self.action_names)]
        if self.views == "two_performances":
            a, b = (
                sample_motion(action, np.random.default_rng([self.seed, epoch, i, k]), self.motion)
                for k in (5, 6)
            )
        else:
            a, b = sample_motion_pair(action, np.random.default_rng([self.seed, epoch, i, 5]), self.motion)
        return tuple(  # type: ignore[return-value]
            _item(s.pose, self.facing, self.names[i], s.action, s.labels, s.position) for s in (a, b)
        )

    def get(self, epoch: int, i: int) -> PoseItem:
        return self.pair(epoch, i)[0]


def pose_source(
    data: str | Path, config: CarlConfig, split: str = "train", on_progress: Progress | None = None
) -> PoseSource:
    """The pose sequences named by ``data`` (see the module docstring)."""
    facing = config.model.pose_facing
    text = str(data)
    if text == MOTION or text.startswith(MOTION + ":"):
        count = int(text.split(":", 1)[1]) if ":" in text else MOTION_PER_EPOCH
        if count < 1:
            raise DataError(f"{text}: give a positive number of sequences per epoch")
        seed = config.train.seed + (0 if split == "train" else 10_000)
        return SyntheticMotion(
            count, seed, facing, max_reps=config.data.motion_max_reps, views=config.data.motion_views
        )
    path = Path(data)
    from .motion import INDEX_FILE, load_motion_dataset

    if (path / INDEX_FILE).is_file():
        samples = load_motion_dataset(path, split)
        return FixedPoses(
            [_item(s.pose, facing, f"{path.name}-{k}", s.action, s.labels) for k, s in enumerate(samples)]
        )
    return FixedPoses(_extract_folder(path, config, on_progress))


def _extract_folder(path: Path, config: CarlConfig, on_progress: Progress | None) -> list[PoseItem]:
    """Poses of every video under ``path`` (cached); videos with almost nobody in them are left out."""
    from .datasets import video_folder
    from .pose import PoseExtractor

    records = video_folder(path, fps=config.data.fps)
    extractor = PoseExtractor()
    items, empty = [], []
    for k, r in enumerate(records):
        seq = extractor.extract(r.path, fps=config.data.fps)
        if on_progress:
            on_progress(k + 1, len(records), f"poses of {r.path.name}")
        if seq.present.mean() < 0.2:
            empty.append(r.path.name)
            continue
        items.append(_item(seq, config.model.pose_facing, r.name, r.action, None))
    if not items:
        raise DataError(
            f"no person was found in the videos of {path} ({', '.join(empty[:3])}...): a pose model "
            "needs videos of people; train the 'small' preset on other footage"
        )
    return items


class PoseClips(torch.utils.data.Dataset):
    """Two augmented views of a pose sequence; indexed by (epoch, i) so draws are reproducible."""

    def __init__(self, source: PoseSource, config: CarlConfig):
        self.source, self.config = source, config

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, i = key
        c = self.config
        rng = np.random.default_rng([c.train.seed, epoch, i, 3])
        first, second = self.source.pair(epoch, i)
        if self.source.views == "two_performances":
            frames, masks, steps, seq_len = self._by_position(first, second, rng)
        else:
            seq_len = min(len(first), len(second))
            frames, masks = time_augment(
                seq_len,
                c.data.num_frames,
                rng,
                sampling_region=c.data.sampling_region,
                consistent_offset=c.data.consistent_offset,
                window=c.data.window,
            )
            steps = frames
        learn_facing = c.model.pose_facing == "augment"
        views, times = [], []
        for item, s in zip((first, second), frames, strict=True):
            views.append(
                augment_pose(item.raw[s], rng, rotate=learn_facing, mirror=learn_facing, noise=0.005)
            )
            times.append(item.times[s])
        return {
            "views": torch.from_numpy(np.stack(views)).float(),
            "times": torch.from_numpy(np.stack(times)),
            "steps": torch.from_numpy(steps),
            "masks": torch.from_numpy(masks),
            "seq_len": seq_len,
            "index": i,
            "label": -1 if first.action is None else int(first.action),
        }

    def _by_position(
        self, first: PoseItem, second: PoseItem, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Frames of two performances (frames, masks, steps, seq_len as in ``__getitem__``): the
        first a window as ``time_augment`` draws it, the second the frames of the other
        performance over the same stretch of the movement. Their steps are places in the
        movement (``POSITION_FRAMES`` per key pose), so SCL's prior centres each frame on the
        frames of the other at the same place."""
        assert first.position is not None and second.position is not None
        c = self.config
        steps_a, mask_a = time_augment(
            len(first), c.data.num_frames, rng, sampling_region=c.data.sampling_region,
            consistent_offset=c.data.consistent_offset, window=c.data.window,
        )  # fmt: skip
        sa, ma = steps_a[0], mask_a[0]
        pa = first.position[sa]
        seen = np.isfinite(pa) & (ma > 0)
        lo, hi = (np.min(pa[seen]), np.max(pa[seen])) if seen.any() else (0.0, 0.0)
        pb_all = second.position
        inside = np.flatnonzero(np.isfinite(pb_all) & (pb_all >= lo - 0.1) & (pb_all <= hi + 0.1))
        if inside.size == 0:
            inside = np.arange(len(second))
        span = np.arange(inside[0], inside[-1] + 1)
        t = c.data.num_frames
        sb = (
            np.sort(rng.choice(span, t, replace=False))
            if len(span) >= t
            else np.r_[span, np.full(t - len(span), span[-1])]
        )
        mb = (np.arange(t) < min(len(span), t)).astype(np.float32)
        frames = np.stack([sa, sb])
        pos = np.stack([first.position[sa], second.position[sb]])
        masks = (np.stack([ma, mb]) * np.isfinite(pos)).astype(np.float32)
        return frames, masks, np.nan_to_num(pos) * POSITION_FRAMES, POSITION_LENGTH


# Two performances' frames are placed by where they are in the movement: this many prior
# "frames" per key pose, so SCL's prior (sigma^2 = label_variance = 10) spans about a sixth of
# the way between two keys; one length for both, so the prior compares places as they are.
POSITION_FRAMES = 20.0
POSITION_LENGTH = 1000


__all__ = [
    "MOTION",
    "FixedPoses",
    "PoseClips",
    "PoseItem",
    "PoseSource",
    "SyntheticMotion",
    "pose_source",
]
