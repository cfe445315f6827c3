"""Synthetic stand-ins for Pouring, PennAction and FineGym, in the exact layout the authors' scripts write.

The real datasets cannot be downloaded here, so ``carl reproduce`` is checked end to end on
these: the same file names, split names, pickle structure, label kinds and video layout as
``dataset_preparation/tfrecords_to_videos.py`` (Pouring, PennAction) and
``dataset_preparation/finegym_process.py`` (FineGym) of minghchen/CARL_code produce, each
pickle written with plain ``pickle.dump`` and ``frame_label`` a torch tensor. Only the pictures
differ: procedural actions from ``carl_core.synthetic``.

- pouring: ``train.pkl`` / ``val.pkl`` (their download script fetches the train and val
  tfrecords only), a list of ``{"id", "video_file":
  "videos/<name>.mp4", "frame_label": int64 tensor, "seq_len", "name"}``; 5 phases; 25 fps.
- penn_action: ``train.pkl`` / ``val.pkl`` holding ``(videos, action_to_indices)``: each video
  also has ``"action_label"`` (its index in their 13-action list, ``PENN_ACTIONS``) and a
  ``"NNNN_<action>"`` name; ``action_to_indices`` has 13 lists. The synthetic squat stands in
  for ``squat`` and the jumping jack for ``jumping_jacks`` (both 4 phases, as in PennAction);
  the other 11 lists stay empty.
- finegym: ``gym99_train_v1.0.pkl``, ``gym99_val.pkl``, ``gym288_train_v1.0.pkl``, ``gym288_val.pkl``,
  a list of ``{"id", "name": "<video>_E_<start>_<end>", "video_file": "processed_videos/<event>.mp4",
  "seq_len", "frame_label": float tensor, -1 where no sub-action is labelled, "event_label"}``.
  An event strings several synthetic actions together; each moving phase of an action is one
  element class (numbered differently in the 99- and 288-class label sets), idle frames are -1.

A ``STANDIN.json`` beside the pickles says what made the folder, so it is never taken for data.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .io import atomic_open, atomic_write_text
from .metrics import PENN_ACTIONS  # their PENN_ACTION_LIST: the order of action_label
from .synthetic import ACTIONS, SynthConfig, render_video

DATASETS = ("pouring", "penn_action", "finegym")
FPS = 25.0  # both preparation scripts write 25 fps videos

PENN_STAND_INS = {"squat": "squat", "jumping_jacks": "jumping_jack"}  # PennAction name -> synthetic

# FineGym elements: every moving phase of a synthetic action, in a fixed order.
_GYM_ACTIONS = ("squat", "arm_raise", "jumping_jack", "ball_throw")
_ELEMENTS = tuple((a, p) for a in _GYM_ACTIONS for p in range(1, ACTIONS[a].num_phases - 1))
GYM_CLASSES = {"gym99": 99, "gym288": 288}


def _element_class(classes: str, element: int) -> int:
    # Two label sets over the same elements, numbered apart as FineGym's 99 and 288 sets are.
    return element * 7 % 99 if classes == "gym99" else (element * 23 + 5) % 288


@dataclass(frozen=True)
class StandinSize:
    """How many videos of which size: ``tiny`` for CI, ``small`` for a look at the numbers."""

    train: int
    val: int
    size: tuple[int, int] = (64, 64)
    min_len: int = 24
    max_len: int = 40
    elements: int = 2  # FineGym: actions per event


SIZES = {
    "tiny": StandinSize(train=4, val=3, size=(64, 64), min_len=20, max_len=32, elements=2),
    "small": StandinSize(train=40, val=14, size=(128, 128), min_len=40, max_len=120, elements=3),
}


def _render(action: str, rng: np.random.Generator, size: StandinSize) -> tuple[list[np.ndarray], np.ndarray]:
    cfg = SynthConfig(size=size.size, fps=FPS, min_len=size.min_len, max_len=size.max_len)
    frames, labels = render_video(action, rng, cfg)
    return list(frames), labels


def _write(root: Path, rel: str, frames: list[np.ndarray]) -> int:
    from .video import write_video

    # MPEG-4 Part 2 rather than their H.264: libx264 here encodes with several threads and its
    # output then varies from run to run; the known-values test needs the same bytes every time.
    write_video(root / rel, frames, FPS, codec="mpeg4")
    return len(frames)


def _dump(path: Path, data: Any) -> None:
    # Plain pickle.dump, as their scripts; protocol 3 was the default of the Python 3.7 they used.
    with atomic_open(path, "wb") as f:
        pickle.dump(data, f, protocol=3)


Step = Callable[[str], None]


def _pouring(root: Path, size: StandinSize, rng: np.random.Generator, step: Step) -> None:
    import torch

    (root / "videos").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", size.train), ("val", size.val)):
        results = []
        for i in range(count):
            name = f"{split}_{i:03d}"
            frames, labels = _render("pouring", rng, size)
            seq_len = _write(root, f"videos/{name}.mp4", frames)
            results.append(
                {
                    "id": i,
                    "video_file": f"videos/{name}.mp4",
                    "frame_label": torch.from_numpy(labels.astype(np.int64)),
                    "seq_len": seq_len,
                    "name": name,
                }
            )
            step(name)
        _dump(root / f"{split}.pkl", results)


def _penn_action(root: Path, size: StandinSize, rng: np.random.Generator, step: Step) -> None:
    import torch

    (root / "videos").mkdir(parents=True, exist_ok=True)
    number = 0
    for split, count in (("train", size.train), ("val", size.val)):
        result_dataset: list[dict[str, Any]] = []
        action_to_indices: list[list[int]] = [[] for _ in PENN_ACTIONS]
        for action, synthetic in PENN_STAND_INS.items():
            for _ in range(count):
                number += 1
                name = f"{number:04d}_{action}"  # their names: name[5:] is the action
                frames, labels = _render(synthetic, rng, size)
                seq_len = _write(root, f"videos/{name}.mp4", frames)
                action_label = PENN_ACTIONS.index(action)
                vid = len(result_dataset)
                result_dataset.append(
                    {
                        "id": vid,
                        "video_file": f"videos/{name}.mp4",
                        "frame_label": torch.from_numpy(labels.astype(np.int64)),
                        "seq_len": seq_len,
                        "name": name,
                        "action_label": action_label,
                    }
                )
                action_to_indices[action_label].append(vid)
                step(name)
        _dump(root / f"{split}.pkl", (result_dataset, action_to_indices))


def _finegym(root: Path, size: StandinSize, rng: np.random.Generator, step: Step) -> None:
    import torch

    (root / "processed_videos").mkdir(parents=True, exist_ok=True)
    events: dict[str, list[tuple[str, str, int, np.ndarray]]] = {"train": [], "val": []}
    for split, count in (("train", size.train), ("val", size.val)):
        for i in range(count):
            frames, elements = [], []
            for _ in range(size.elements):
                action = str(rng.choice(_GYM_ACTIONS))
                part, phases = _render(action, rng, size)
                moving = (phases > 0) & (phases < ACTIONS[action].num_phases - 1)
                ids = [_ELEMENTS.index((action, int(p))) if m else -1 for p, m in zip(phases, moving)]
                frames += part
                elements.append(np.array(ids))
            start = int(rng.integers(0, 9000))
            event = f"standin{split}{i:03d}_E_{start:06d}_{start + len(frames) // int(FPS) + 1:06d}"
            seq_len = _write(root, f"processed_videos/{event}.mp4", frames)
            events[split].append((event, f"processed_videos/{event}.mp4", seq_len, np.concatenate(elements)))
            step(event)
    for classes in GYM_CLASSES:
        for split, fname in (("train", f"{classes}_train_v1.0.pkl"), ("val", f"{classes}_val.pkl")):
            dataset = []
            for i, (event, video_file, seq_len, element_of) in enumerate(events[split]):
                frame_label = -1 * torch.ones(seq_len)  # as finegym_process.py: float, -1 unlabelled
                for f in np.flatnonzero(element_of >= 0):
                    frame_label[f] = _element_class(classes, int(element_of[f]))
                dataset.append(
                    {
                        "id": i,
                        "name": event,
                        "video_file": video_file,
                        "seq_len": seq_len,
                        "frame_label": frame_label,
                        "event_label": 1 + i % 4,
                    }
                )
            _dump(root / fname, dataset)


_MAKERS = {"pouring": _pouring, "penn_action": _penn_action, "finegym": _finegym}


def make_standin(
    dataset: str,
    root: str | Path,
    *,
    size: str | StandinSize = "tiny",
    seed: int = 0,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write a synthetic stand-in for ``dataset`` into ``root`` (created) and return ``root``."""
    if dataset not in _MAKERS:
        raise ConfigError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    if isinstance(size, str):
        if size not in SIZES:
            raise ConfigError(f"unknown stand-in size {size!r}: choose one of {', '.join(SIZES)}")
        size = SIZES[size]
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    total = (size.train + size.val) * (len(PENN_STAND_INS) if dataset == "penn_action" else 1)
    done = [0]

    def step(name: str) -> None:
        done[0] += 1
        if on_progress is not None:
            on_progress(done[0], total, name)

    _MAKERS[dataset](root, size, np.random.default_rng(seed), step)
    info = {"standin_for": dataset, "seed": seed, "size": asdict(size), "made_by": "carl_core.standins"}
    atomic_write_text(root / "STANDIN.json", json.dumps(info, indent=2))
    return root


def is_standin(root: str | Path) -> bool:
    return (Path(root) / "STANDIN.json").is_file()
