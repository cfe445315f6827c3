"""Synthetic human motion: layout, labels, camera and mirror, MediaPipe-like errors, datasets on disk."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from carl_core.cli import main
from carl_core.errors import ConfigError, DataError
from carl_core.motion import (
    ACTION_NAMES,
    ACTIONS,
    MEASURED,
    NO_NOISE,
    MotionConfig,
    load_motion_dataset,
    make_motion_dataset,
    num_phases,
    pose_noise_stats,
    sample_motion,
    sample_motion_pair,
    summarise_noise_stats,
)
from carl_core.skeleton import DETECTED, INDEX, INTERPOLATED, MIRROR, MISSING, NUM_LANDMARKS, PoseSequence
from tests.conftest import REAL_CLIPS

CLEAN = MotionConfig(**NO_NOISE)
ROOT = Path(__file__).resolve().parents[1]


def _still(**kw) -> MotionConfig:
    """No noise, a fixed level camera: what changes between two draws is what a test changes."""
    base = dict(NO_NOISE, pitch=(0.0, 0.0), roll=0.0, overhead_prob=0.0, cut_prob=0.0)
    return MotionConfig(**{**base, **kw})


def test_layout_is_what_pose_extraction_makes():
    s = sample_motion("squat", np.random.default_rng(0), fps=30.0, num_frames=200)
    p = s.pose
    assert isinstance(p, PoseSequence) and len(p) == 200
    assert p.image.shape == p.world.shape == (200, NUM_LANDMARKS, 4)
    assert p.image.dtype == p.world.dtype == np.float32 and p.status.dtype == np.uint8
    assert np.allclose(np.diff(p.times), 1 / 30) and (p.indices == np.arange(200)).all()
    assert p.width > 0 and p.height > 0
    assert s.labels.shape == (200,) and s.labels.dtype == np.int64 and s.action_name == "squat"
    assert (s.events[:, 0] == np.flatnonzero(np.diff(s.labels, prepend=-1))).all()
    assert (s.events[:, 1] == s.labels[s.events[:, 0]]).all()
    # Visibility is the same in both frames of reference, in [0, 1].
    found = p.present
    assert np.array_equal(p.image[found, :, 3], p.world[found, :, 3])
    assert (p.image[found, :, 3] >= 0).all() and (p.image[found, :, 3] <= 1).all()


def test_world_is_hip_centred_and_camera_aligned_like_mediapipe():
    """MediaPipe's world frame: metres, origin between the hips, y down, turning with the camera
    (a person filmed side-on has the hip axis along z, as on the real side-view squat clip)."""
    front = sample_motion("deadlift", np.random.default_rng(1), _still(yaw=(0.0, 0.0), mirror_prob=0.0))
    side = sample_motion("deadlift", np.random.default_rng(1), _still(yaw=(90.0, 90.0), mirror_prob=0.0))
    for s in (front, side):
        w = s.pose.world
        assert np.abs((w[:, 23, :3] + w[:, 24, :3]) / 2).max() < 1e-5
        assert w[0, INDEX["nose"], 1] < w[0, INDEX["left_ankle"], 1] - 1.0  # standing, y down
    hips_front = front.pose.world[0, 23, :3] - front.pose.world[0, 24, :3]
    hips_side = side.pose.world[0, 23, :3] - side.pose.world[0, 24, :3]
    assert hips_front[0] > 0.15 and abs(hips_front[2]) < 0.05  # facing the camera: left hip on the right
    assert abs(hips_side[0]) < 0.05 and hips_side[2] < -0.15  # camera on their left: left hip nearer
    img = front.pose.image[0]
    assert img[23, 0] > img[24, 0]  # left hip on the image's right
    # Image z: hips' midpoint at 0, smaller is nearer, stretched like MediaPipe's (about 3.5x).
    assert abs(side.pose.image[0, 23, 2] + side.pose.image[0, 24, 2]) < 1e-5
    assert side.pose.image[0, 23, 2] < side.pose.image[0, 24, 2]


def test_same_seed_same_sequence():
    a = sample_motion("golf_swing", np.random.default_rng(7))
    b = sample_motion("golf_swing", np.random.default_rng(7))
    c = sample_motion("golf_swing", np.random.default_rng(8))
    for x, y in ((a.pose.image, b.pose.image), (a.pose.world, b.pose.world), (a.labels, b.labels)):
        assert np.array_equal(x, y, equal_nan=True)
    assert a.pose.status.tolist() == b.pose.status.tolist() and a.info == b.info
    assert len(a.labels) != len(c.labels) or not np.array_equal(a.pose.image, c.pose.image, equal_nan=True)


@pytest.mark.parametrize("action", ["squat", "golf_swing", "jumping_jack", "bicep_curl"])
def test_each_frame_knows_where_it_is_in_the_movement(action):
    """``position``: 0 at the ready pose, k at a rep's k-th key, every rep from 0 again, the same
    for both performers of one movement (the confidence calibration's truth across people)."""
    act = ACTIONS[action]
    keys = len(act.keys)
    in_first = sum(k.phase == act.phases[1] for k in act.keys)  # a golf backswing spans two keys
    one = sample_motion(action, np.random.default_rng(3), MotionConfig(reps=(1, 1)))
    pos = one.position
    assert pos is not None and pos.shape == one.labels.shape
    assert pos[0] == 0 and pos[-1] == pytest.approx(keys) and (np.diff(pos) >= -1e-9).all()
    a, b = sample_motion_pair(action, np.random.default_rng(5))
    np.testing.assert_array_equal(a.position, b.position)
    for seed in range(4):  # several reps, rests and returns to the ready pose
        many = sample_motion(action, np.random.default_rng(seed), MotionConfig(reps=(3, 3), rest_prob=0.5))
        p, lab = many.position, many.labels
        first = lab == 1  # the first phase of every rep lies between its keys, never further on
        assert np.nanmin(p[first]) >= 0 and np.nanmax(p[first]) <= in_first + 1e-9
        moving = (lab > 0) & np.isfinite(p)
        for run in np.split(np.flatnonzero(moving), np.flatnonzero(np.diff(np.flatnonzero(moving)) > 1) + 1):
            q = p[run]
            back = np.flatnonzero(np.diff(q) < -1e-9)  # forward, but for a new rep starting over
            assert (q[back] >= keys - 0.5).all() and (q[back + 1] <= 0.5).all(), q
        # Only a non-cyclic action's walk back to the ready pose (phase 0) corresponds to nothing.
        gone = np.isnan(p)
        assert not gone.any() if act.cyclic else (lab[gone] == 0).all()


@pytest.mark.parametrize("action", ACTION_NAMES)
def test_every_action_generates_cleanly(action):
    """No NaN but in frames marked missing, all phases in order for one rep, the reps for several."""
    for seed in range(3):
        s = sample_motion(action, np.random.default_rng(seed))
        p = s.pose
        missing = p.status == MISSING
        assert np.isnan(p.image[missing]).all() and np.isnan(p.world[missing]).all()
        assert np.isfinite(p.image[~missing]).all() and np.isfinite(p.world[~missing]).all()
        assert set(np.unique(p.status)) <= {MISSING, DETECTED, INTERPOLATED}
        assert (~missing).mean() > 0.5
    k = num_phases(action)
    one = sample_motion(action, np.random.default_rng(3), MotionConfig(reps=(1, 1)))
    assert (np.diff(one.labels) >= 0).all() and np.unique(one.labels).tolist() == list(range(k))
    assert one.events[:, 1].tolist() == list(range(k))
    three = sample_motion(action, np.random.default_rng(4), MotionConfig(reps=(3, 3)))
    runs = three.events[:, 1]
    # Each rep runs through phases 1 .. k-1 in order; between reps only the ready phase (0) comes.
    assert (runs == 1).sum() == min(3, ACTIONS[action].reps) and runs[0] == 0 and runs[-1] == k - 1
    for a, b in zip(runs[:-1], runs[1:]):
        assert b == a + 1 or (b in (0, 1) and a in (0, k - 1)), runs


@pytest.mark.parametrize("action", ["squat", "push_up", "golf_swing", "pull_up", "baseball_pitch"])
def test_bone_lengths_stay_constant(action):
    s = sample_motion(action, np.random.default_rng(2), CLEAN)
    w = s.pose.world[..., :3].astype(np.float64)
    for a, b in ((11, 13), (13, 15), (23, 25), (25, 27), (12, 14), (14, 16), (24, 26), (26, 28), (11, 12)):
        length = np.linalg.norm(w[:, a] - w[:, b], axis=-1)
        assert length.std() / length.mean() < 1e-4, (a, b)
    # ... and the world proportions are MediaPipe's (its world torso is about 0.48 m in every clip).
    torso = np.linalg.norm((w[:, 11] + w[:, 12]) / 2 - (w[:, 23] + w[:, 24]) / 2, axis=-1)
    assert abs(torso.mean() - MEASURED["bone_m_torso"]) < 0.06


def test_camera_yaw_turns_the_picture_not_the_body():
    """The same movement filmed from the front and from the side: the image differs, the world
    landmarks differ by the camera's turn about the vertical, and the body-frame pose is the same."""
    a = sample_motion("jumping_jack", np.random.default_rng(5), _still(yaw=(0.0, 0.0)))
    b = sample_motion("jumping_jack", np.random.default_rng(5), _still(yaw=(90.0, 90.0)))
    assert np.array_equal(a.labels, b.labels)
    wa, wb = a.pose.world[..., :3].astype(np.float64), b.pose.world[..., :3].astype(np.float64)
    # y is vertical for a level camera; x, z turn by the yaw.
    assert np.allclose(wa[..., 1], wb[..., 1], atol=1e-5)
    c, s = np.cos(np.radians(90.0)), np.sin(np.radians(90.0))
    turned = np.stack([c * wa[..., 0] + s * wa[..., 2], wa[..., 1], -s * wa[..., 0] + c * wa[..., 2]], -1)
    assert np.abs(turned - wb).max() < 1e-4 or np.abs(turned * [-1, 1, -1] - wb).max() < 1e-4

    def body_frame(w):  # rotate each frame so the hip axis points along x
        hips = w[:, 23] - w[:, 24]
        ang = np.arctan2(hips[:, 2], hips[:, 0])
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        return np.stack([c * w[..., 0] + s * w[..., 2], w[..., 1], -s * w[..., 0] + c * w[..., 2]], -1)

    assert np.abs(body_frame(wa) - body_frame(wb)).max() < 1e-4
    # The image is another picture: the shoulders are wide from the front, narrow from the side.
    width = lambda p: np.abs(p.image[:, 11, 0] - p.image[:, 12, 0]) * p.width  # noqa: E731
    torso = lambda p: np.abs(p.image[:, 11, 1] - p.image[:, 23, 1]) * p.height  # noqa: E731
    assert np.median(width(a.pose) / torso(a.pose)) > 2 * np.median(width(b.pose) / torso(b.pose))


def test_mirror_swaps_left_and_right():
    kw = dict(yaw=(0.0, 0.0))
    right = sample_motion("baseball_pitch", np.random.default_rng(6), _still(mirror_prob=0.0, **kw))
    left = sample_motion("baseball_pitch", np.random.default_rng(6), _still(mirror_prob=1.0, **kw))
    assert not right.info["mirror"] and left.info["mirror"]
    expected = right.pose.world[:, MIRROR, :3] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(left.pose.world[..., :3] - expected).max() < 1e-5
    # The throwing arm was the right one; mirrored, the left wrist travels most.
    path = lambda p, i: np.linalg.norm(np.diff(p.world[:, i, :3], axis=0), axis=-1).sum()  # noqa: E731
    assert path(right.pose, 16) > path(right.pose, 15) and path(left.pose, 15) > path(left.pose, 16)


def test_fixed_rate_and_length():
    s = sample_motion("jumping_jack", np.random.default_rng(0), fps=24.0, num_frames=90)
    assert len(s.pose) == 90 and s.info["fps"] == 24.0
    long = sample_motion("squat", np.random.default_rng(0), MotionConfig(reps=(6, 6)), num_frames=60)
    assert len(long.pose) == 60 and long.info["reps"] < 6  # reps went to fit


def test_bad_requests_say_what_to_do():
    with pytest.raises(ConfigError, match="unknown action"):
        sample_motion("cartwheel", np.random.default_rng(0))
    with pytest.raises(ConfigError, match="low"):
        MotionConfig(tempo=(2.0, 1.0))


def test_noise_statistics_fall_near_mediapipes():
    """The synthetic errors, measured as benchmarks/measure_pose_noise.py measures the real clips.

    The real figures spread widely between clips (frame-to-frame jitter over about 7x between the
    quartiles, far-side visibility from 0.33 to 0.93), so a median of 13 clips is known to within
    a factor, not a percent: jitter must fall within 2x, its ratios (depth over x and y, hidden over
    visible, slow over fast) within 1.5x, the bone-length spread within 2x, visibility within 0.15
    (0.25 for the far side, which depends on how many views are side-on), world bones within 10%.
    """
    rng = np.random.default_rng(11)
    poses = [sample_motion(a, rng, num_frames=240).pose for a in ACTION_NAMES for _ in range(2)]
    stats = [pose_noise_stats(p) for p in poses]
    syn = {k: v[0] for k, v in summarise_noise_stats(stats).items()}
    for key in ("jitter_image", "jitter_world", "bone_cv"):
        assert MEASURED[key] / 2 < syn[key] < MEASURED[key] * 2, (key, syn[key])
    for key in ("occluded_over_visible", "world_z_over_xy", "slow_over_jitter"):
        assert MEASURED[key] / 1.5 < syn[key] < MEASURED[key] * 1.5, (key, syn[key])
    assert abs(syn["z_stretch"] - MEASURED["z_stretch"]) < 0.5
    for key in ("vis_face", "vis_torso", "vis_arms", "vis_hands", "vis_legs", "vis_feet", "vis_near"):
        assert abs(syn[key] - MEASURED[key]) < 0.15, (key, syn[key])
    assert abs(syn["vis_far"] - MEASURED["vis_far"]) < 0.25
    for key in ("upper_arm", "forearm", "thigh", "shin", "shoulders", "hips"):
        assert abs(syn[f"bone_m_{key}"] / MEASURED[f"bone_m_{key}"] - 1) < 0.1, key
    assert 0 < syn["missing"] < 4 * MEASURED["missing"]


@pytest.mark.skipif(not (REAL_CLIPS.parent / "real_clips_pose").is_dir(), reason="needs ../shared real clips")
def test_measured_constants_match_the_real_clips():
    """MEASURED in motion.py is what the measurement script finds today (statistics only)."""
    spec = importlib.util.spec_from_file_location("measure", ROOT / "benchmarks" / "measure_pose_noise.py")
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    real = measure.real_sequences(REAL_CLIPS.parent / "real_clips_pose", REAL_CLIPS)
    stats = summarise_noise_stats([pose_noise_stats(real[c]) for c in measure.ACTION_CLIPS])
    for key, value in MEASURED.items():
        assert stats[key][0] == pytest.approx(value, rel=0.03, abs=0.003), key


def test_dataset_on_disk_round_trips_and_ignores_workers(tmp_path):
    kw = dict(actions=("squat", "golf_swing"), num_frames=48, seed=3, val_fraction=0.5)
    one = make_motion_dataset(tmp_path / "one", 2, workers=1, **kw)
    two = make_motion_dataset(tmp_path / "two", 2, workers=2, **kw)
    index = json.loads((one / "index.json").read_text())
    assert index["actions"] == ["squat", "golf_swing"]
    assert index["num_phases"] == {"squat": 3, "golf_swing": 5}
    assert [len(index["splits"][s]) for s in ("train", "val")] == [2, 2]
    for split in ("train", "val"):
        a, b = load_motion_dataset(one, split), load_motion_dataset(two, split)
        for x, y in zip(a, b):
            assert np.array_equal(x.pose.image, y.pose.image, equal_nan=True)
            assert np.array_equal(x.labels, y.labels) and x.action == y.action
            assert len(x.pose) == 48 and PoseSequence.load(one / "sequences" / f"{x.info['name']}.npz")
    with pytest.raises(DataError, match="carl synth --kind motion"):
        load_motion_dataset(tmp_path / "nothing")


def test_cli_writes_a_motion_dataset(tmp_path, capsys):
    out = tmp_path / "motion"
    assert main(["synth", "--kind", "motion", "--out", str(out), "--per-action", "1", "--workers", "1"]) == 0
    assert "per action" in capsys.readouterr().out
    samples = load_motion_dataset(out, "train")
    assert sorted(s.action_name for s in samples) == sorted(ACTION_NAMES)
