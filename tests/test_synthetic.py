"""Synthetic action videos: determinism, phase labels, visual phase cues, dataset files on disk."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from carl_core.errors import ConfigError
from carl_core.synthetic import (
    ACTIONS,
    SynthConfig,
    make_dataset,
    plan_video,
    render_long_video,
    render_video,
    write_synthetic_video,
)

SMALL = dict(size=(64, 64), min_len=24, max_len=36)
KEYS = {"id", "name", "video_file", "seq_len", "frame_label", "action_label"}


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_registry_has_enough_actions_and_phases():
    assert len(ACTIONS) >= 4
    for name, action in ACTIONS.items():
        assert action.name == name
        assert action.num_phases >= 3
        assert len(action.keys) == action.num_phases - 1
        assert len(action.weights) == action.num_phases - 2


@pytest.mark.parametrize("action", list(ACTIONS))
def test_same_seed_same_video_other_seed_other_video(action):
    cfg = SynthConfig(**SMALL)
    frames_a, labels_a = render_video(action, np.random.default_rng(7), cfg)
    frames_b, labels_b = render_video(action, np.random.default_rng(7), cfg)
    # Consume b first: frames must not depend on when the iterator runs.
    b = np.stack(list(frames_b))
    a = np.stack(list(frames_a))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(labels_a, labels_b)
    frames_c, labels_c = render_video(action, np.random.default_rng(8), cfg)
    c = np.stack(list(frames_c))
    assert a.shape[1:] == (64, 64, 3) and a.dtype == np.uint8
    assert a.shape != c.shape or np.abs(a.astype(int) - c).mean() > 5
    assert not np.array_equal(labels_a, labels_c)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_labels_cover_every_phase_in_order(action):
    k = ACTIONS[action].num_phases
    cfg = SynthConfig(**SMALL)
    lengths = set()
    for seed in range(6):
        frames, labels = render_video(action, np.random.default_rng(seed), cfg)
        n = sum(1 for _ in frames)
        assert n == len(labels)
        assert cfg.min_len <= n <= cfg.max_len
        assert labels.dtype == np.int64
        assert np.all(np.diff(labels) >= 0), "phase labels must be non-decreasing"
        np.testing.assert_array_equal(np.unique(labels), np.arange(k))
        assert labels[0] == 0 and labels[-1] == k - 1
        lengths.add(n)
    assert len(lengths) > 1, "video lengths should vary"


def _pause_and_phase_differences(plan) -> tuple[np.ndarray, list[float]]:
    frames = np.stack(list(plan.frames())).astype(np.float32)
    labels, progress = plan.labels, plan.timeline.progress
    # Within a pause: consecutive frames with the same phase and the same progress
    # (the idle ends and mid-move holds).
    still = (labels[1:] == labels[:-1]) & (progress[1:] == progress[:-1])
    assert still.sum() >= 4
    within = np.abs(frames[1:][still] - frames[:-1][still]).mean(axis=(1, 2, 3))
    # Between phases: the last frame of each phase shows that phase's key pose, and
    # consecutive key poses always differ.
    ends = [int(np.flatnonzero(labels == p)[-1]) for p in range(plan.action.num_phases - 1)]
    between = [float(np.abs(frames[a] - frames[b]).mean()) for a, b in zip(ends[:-1], ends[1:])]
    return within, between


def test_shortest_videos_still_show_every_phase():
    cfg = SynthConfig(min_len=20, max_len=20, idle_fraction=(0.3, 0.3), pause_prob=1.0)
    for action in ACTIONS:
        _, labels = render_video(action, np.random.default_rng(0), cfg)
        assert len(labels) == 20
        np.testing.assert_array_equal(np.unique(labels), np.arange(ACTIONS[action].num_phases))


def test_tiny_dataset_still_has_a_val_split(tmp_path):
    out = make_dataset(tmp_path, num_videos=2, seed=0, workers=1, **SMALL)
    with open(out / "val.pkl", "rb") as f:
        val, _ = pickle.load(f)
    with open(out / "train.pkl", "rb") as f:
        train, _ = pickle.load(f)
    assert len(val) == 1 and len(train) == 1


@pytest.mark.parametrize("action", list(ACTIONS))
def test_phases_differ_more_than_frames_within_a_pause(action):
    base = dict(size=(96, 96), min_len=60, max_len=90, pause_prob=1.0)
    # Without camera shake and noise, a pause is perfectly still and every phase change shows.
    clean = SynthConfig(**base, jitter=0.0, noise=0.0)
    for seed in range(3):
        within, between = _pause_and_phase_differences(plan_video(action, np.random.default_rng(seed), clean))
        assert within.max() == 0.0
        assert min(between) > 1.0, (seed, between)
    # With them (the default), phase changes still stand well above shake and noise.
    within_all, between_all = [], []
    for seed in range(3):
        plan = plan_video(action, np.random.default_rng(seed), SynthConfig(**base))
        within, between = _pause_and_phase_differences(plan)
        within_all.append(within.mean())
        between_all.append(np.mean(between))
    assert np.mean(between_all) > 2.0 * np.mean(within_all), (between_all, within_all)


def test_make_dataset_writes_authors_layout(tmp_path):
    progress = []
    out = make_dataset(
        tmp_path / "synth",
        num_videos=10,
        seed=3,
        on_progress=lambda d, t, m: progress.append((d, t)),
        workers=1,
        val_fraction=0.2,
        **SMALL,
    )
    assert progress[-1] == (10, 10) and len(progress) == 10
    info = json.loads((out / "info.json").read_text())
    assert info["classes"] == list(ACTIONS)
    assert info["seed"] == 3 and info["size"] == [64, 64] and info["fps"] == 30.0
    assert all(len(info["phases"][c]) == info["num_phases"][c] for c in info["classes"])
    assert info["splits"] == {"train": 5, "val": 5}

    names = set()
    for split in ("train", "val"):
        with open(out / f"{split}.pkl", "rb") as f:
            videos, action_to_indices = pickle.load(f)
        assert len(action_to_indices) == len(ACTIONS)
        assert sorted(i for idx in action_to_indices for i in idx) == list(range(len(videos)))
        for pos, v in enumerate(videos):
            assert set(v) >= KEYS
            assert v["id"] == pos and pos in action_to_indices[v["action_label"]]
            assert v["name"].startswith(info["classes"][v["action_label"]])
            assert isinstance(v["frame_label"], np.ndarray) and v["frame_label"].dtype == np.int64
            assert len(v["frame_label"]) == v["seq_len"]
            frames = _decode(out / v["video_file"])
            assert frames.shape == (v["seq_len"], 64, 64, 3)
            names.add(v["name"])
    assert len(names) == 10
    assert {p.name for p in (out / "videos").iterdir()} == {f"{n}.mp4" for n in names}


def test_make_dataset_same_with_two_workers_and_list_format(tmp_path):
    kw = dict(num_videos=4, seed=11, classes=("squat", "pouring"), **SMALL)
    a = make_dataset(tmp_path / "a", workers=1, **kw)
    b = make_dataset(tmp_path / "b", workers=2, pkl_format="list", **kw)
    with open(a / "train.pkl", "rb") as f:
        train_a, _ = pickle.load(f)
    with open(b / "train.pkl", "rb") as f:
        train_b = pickle.load(f)
    assert isinstance(train_b, list) and len(train_a) == len(train_b) == 2
    info_a, info_b = (json.loads((d / "info.json").read_text()) for d in (a, b))
    assert len(info_a["frames_blake2b"]) == 4
    assert info_a["frames_blake2b"] == info_b["frames_blake2b"]  # the same frames were rendered ...
    for va, vb in zip(train_a, train_b):
        assert va["name"] == vb["name"]
        np.testing.assert_array_equal(va["frame_label"], vb["frame_label"])
        # ... and encoded to the same bytes (one encoder thread), so decoded the same
        assert (a / va["video_file"]).read_bytes() == (b / vb["video_file"]).read_bytes()
        np.testing.assert_array_equal(_decode(a / va["video_file"]), _decode(b / vb["video_file"]))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_encoding_generated_data_gives_the_same_bytes_in_another_process(tmp_path):
    # What made a two-worker dataset differ elsewhere: x264's output follows its thread count,
    # which follows the CPUs a process may use. Here the other process may use one CPU only;
    # the synthetic writer encodes with one thread, so the bytes are the same all the same.
    cfg = dict(size=(128, 128), min_len=24, max_len=30)
    script = (
        "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from carl_core.synthetic import write_synthetic_video, SynthConfig; "
        f"write_synthetic_video(sys.argv[1], 'jumping_jack', seed=9, cfg=SynthConfig(**{cfg!r}))"
    )
    here = write_synthetic_video(tmp_path / "here.mp4", "jumping_jack", 9, SynthConfig(**cfg))[0]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "there.mp4")], env=env, check=True)
    assert here.read_bytes() == (tmp_path / "there.mp4").read_bytes()


def test_write_synthetic_video_matches_render_video(tmp_path):
    cfg = SynthConfig(**SMALL)
    path, labels = write_synthetic_video(tmp_path / "squat.mp4", "squat", seed=4, cfg=cfg)
    frames, expected = render_video("squat", np.random.default_rng(4), cfg)
    np.testing.assert_array_equal(labels, expected)
    decoded = _decode(path).astype(np.float32)
    assert len(decoded) == len(labels)
    # Lossy, but close to what was rendered.
    assert np.abs(decoded - np.stack(list(frames))).mean() < 6.0


def test_render_long_video_streams_repetitions(tmp_path):
    calls = []
    cfg = SynthConfig(**SMALL)
    path, labels = render_long_video(
        tmp_path / "long.mp4",
        minutes=0.05,
        action="jumping_jack",
        cfg=cfg,
        on_progress=lambda *a: calls.append(a),
    )
    assert len(labels) == 90
    assert calls[-1][:2] == (90, 90)
    assert len(_decode(path)) == 90
    restarts = np.flatnonzero(np.diff(labels) < 0)
    assert len(restarts) >= 1 and np.all(labels[restarts + 1] == 0), "each repetition starts at phase 0"


@pytest.mark.parametrize(
    "kw",
    [
        {"classes": ("squat", "moonwalk")},
        {"size": (63, 64)},
        {"size": (16, 16)},
        {"min_len": 8},
        {"min_len": 50, "max_len": 40},
        {"val_fraction": 1.0},
        {"pkl_format": "csv"},
    ],
)
def test_bad_config_raises_config_error(kw):
    with pytest.raises(ConfigError):
        SynthConfig(**kw)


def test_unknown_option_and_action_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown synthetic option"):
        make_dataset(tmp_path, num_videos=2, colour="red")
    with pytest.raises(ConfigError, match="unknown synthetic action"):
        render_video("moonwalk", np.random.default_rng(0))
