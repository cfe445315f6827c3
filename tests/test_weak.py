"""Weak SCL, wired: video-level labels from a CSV or subfolders, batches of partners, DTW pairs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from carl_core.datasets import folder_labels, video_folder
from carl_core.errors import DataError
from carl_core.run_log import read_log
from carl_core.train import epoch_order, train

from .test_pose_train import _tiny_pose_config


def _clips(tmp_path, tiny_dataset, layout):
    videos = sorted((tiny_dataset / "videos").glob("*.mp4"))
    for (sub, name), src in zip(layout, videos, strict=False):
        dst = tmp_path / sub / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return tmp_path


def test_labels_from_subfolders(tmp_path, tiny_dataset):
    root = _clips(tmp_path, tiny_dataset, [("squat", "a.mp4"), ("squat", "b.mp4"), ("golf", "c.mp4")])
    records = video_folder(root)
    assert {r.name: r.extra["label"] for r in records} == {"a": "squat", "b": "squat", "c": "golf"}
    action = {r.name: r.action for r in records}
    assert action["a"] == action["b"] != action["c"]


def test_labels_from_a_csv_and_a_csv_that_names_nothing(tmp_path, tiny_dataset):
    root = _clips(tmp_path, tiny_dataset, [("", "a.mp4"), ("", "b.mp4"), ("", "c.mp4")])
    (root / "labels.csv").write_text("video,label\na.mp4,curl\nb,curl\n")
    labels = folder_labels(root, sorted(root.glob("*.mp4")))
    assert {p.name: v for p, v in labels.items()} == {"a.mp4": "curl", "b.mp4": "curl"}
    (root / "labels.csv").write_text("video,label\nnope.mp4,curl\n")
    with pytest.raises(DataError, match="names none of the videos"):
        video_folder(root)


def test_weak_batches_hold_partners():
    labels = [0, 0, 1, 1, 1, 2, None, 2, 0, 1] * 3
    for batch in epoch_order(len(labels), 0, 2, 0, 1, 4, labels):
        firsts = [labels[i] for i in batch[0::2]]
        seconds = [labels[i] for i in batch[1::2]]
        shared = sum(a == b and a is not None for a, b in zip(firsts, seconds))
        assert shared >= 1  # most units are pairs of one label


def test_weak_training_adds_the_cross_video_loss_after_its_warm_up(tmp_path):
    cfg = _tiny_pose_config(epochs=2).with_overrides(loss={"weak": True, "weak_after_epochs": 1})
    result = train(cfg, "motion:8", tmp_path / "weak")
    log = read_log(tmp_path / "weak")
    assert result.steps == 4
    assert not any("weak_loss" in e for e in log[:2])
    assert all(np.isfinite(e["weak_loss"]) for e in log[2:])


def test_weak_without_labels_says_what_to_do(tmp_path, tiny_dataset):
    root = _clips(tmp_path / "v", tiny_dataset, [("", "a.mp4"), ("", "b.mp4")])
    cfg = _tiny_pose_config().with_overrides(
        model={"backbone": "efficientnet_lite0", "backbone_weights": "random"}
    )
    with pytest.raises(DataError, match="video-level labels"):
        train(cfg.with_overrides(loss={"weak": True}), root, tmp_path / "run")
