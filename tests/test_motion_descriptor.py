"""The pose descriptor's change beside it: a held pose is told from the frames that leave it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carl_core.config import ConfigError, ModelConfig
from carl_core.pose_features import DESCRIPTOR, motion_descriptor, pose_descriptor
from carl_core.skeleton import DETECTED, INDEX, MISSING, PoseSequence


def _raise_arm(fps: float, seconds: float = 3.0) -> PoseSequence:
    """A body that holds still for 1 s, raises its left arm over 1 s, and holds it up for 1 s."""
    times = np.arange(int(round(seconds * fps))) / fps
    t = len(times)
    world = np.zeros((t, 33, 3))
    for name, (x, y) in {
        "left_hip": (0.1, 0), "right_hip": (-0.1, 0), "left_shoulder": (0.18, -0.5),
        "right_shoulder": (-0.18, -0.5), "left_knee": (0.1, 0.45), "right_knee": (-0.1, 0.45),
        "left_ankle": (0.1, 0.9), "right_ankle": (-0.1, 0.9), "nose": (0, -0.7),
        "left_elbow": (0.2, -0.25), "right_elbow": (-0.2, -0.25), "right_wrist": (-0.2, 0.0),
    }.items():  # fmt: skip
        world[:, INDEX[name], :2] = (x, y)
    up = np.clip(times - 1.0, 0, 1)  # 0 while held down, 1 once raised
    world[:, INDEX["left_wrist"], 0] = 0.2 + 0.3 * np.sin(np.pi * up)
    world[:, INDEX["left_wrist"], 1] = -0.9 * up
    vis = np.ones((t, 33, 1))
    image = np.concatenate([world[..., :2] * 0.3 + 0.5, world[..., 2:] * 0.3, vis], axis=-1)
    return PoseSequence(
        image=image.astype(np.float32),
        world=np.concatenate([world, vis], axis=-1).astype(np.float32),
        status=np.full(t, DETECTED, np.uint8),
        times=times,
        indices=np.arange(t),
        width=640,
        height=480,
    )


def test_a_held_pose_and_the_frames_that_leave_it_differ_only_in_the_change():
    seq = _raise_arm(30.0)
    pose, moving = pose_descriptor(seq), motion_descriptor(seq, 8.0)
    assert moving.shape == (len(seq), 2 * DESCRIPTOR)
    np.testing.assert_allclose(np.linalg.norm(moving, axis=1), 1, atol=1e-5)
    held, leaving = 15, 32  # frame 32 is 2 frames into the rise
    assert pose[held] @ pose[leaving] > 0.99  # to the pose alone the two are nearly one
    assert moving[held] @ moving[leaving] < 0.9  # the change tells them apart
    # where nothing moves the change is zero: the pose part alone, as before
    np.testing.assert_allclose(moving[held, :DESCRIPTOR], pose[held], atol=1e-6)
    np.testing.assert_allclose(moving[held, DESCRIPTOR:], 0, atol=1e-6)
    # weight 0 reads the pose alone
    np.testing.assert_allclose(motion_descriptor(seq, 0.0)[:, :DESCRIPTOR], pose, atol=1e-6)


def test_the_change_is_read_over_seconds_not_frames():
    slow, fast = _raise_arm(30.0), _raise_arm(60.0)
    a, b = motion_descriptor(slow, 8.0), motion_descriptor(fast, 8.0)
    np.testing.assert_allclose(a, b[::2], atol=1e-4)  # the same moments, the same rows


def test_frames_with_nobody_stay_zero_and_give_no_change():
    seq = _raise_arm(30.0)
    seq.world[40] = np.nan
    seq.image[40] = np.nan
    seq.status[40] = MISSING
    d = motion_descriptor(seq, 8.0)
    assert np.all(d[40] == 0)
    for k in (37, 43):  # 3 frames (0.1 s) away: the frame with nobody is the one it compares with
        np.testing.assert_allclose(d[k, DESCRIPTOR:], 0, atol=1e-6)
        assert np.linalg.norm(d[k]) == pytest.approx(1, abs=1e-5)
    single = _raise_arm(30.0, seconds=1 / 30)
    assert motion_descriptor(single, 8.0).shape == (1, 2 * DESCRIPTOR)


def test_a_pose_model_reads_the_change_when_its_config_says_so():
    from carl_core.config import load_preset
    from carl_core.fusion import build_model

    cfg = load_preset("pose").model
    small = {"fc_layers": [32], "hidden_size": 32, "d_ff": 64, "embedding_size": 16, "projection_size": 16}
    seq = _raise_arm(30.0)
    out = {}
    for motion in (0.0, 8.0):
        torch.manual_seed(0)
        model = build_model(
            cfg.__class__(**{**cfg.__dict__, **small, "descriptor_weight": 1.0, "descriptor_motion": motion})
        )
        out[motion] = model.eval().embed_pose(seq).numpy()
    assert out[0.0].shape == (len(seq), DESCRIPTOR + 16)  # the descriptor as before
    assert out[8.0].shape == (len(seq), 2 * DESCRIPTOR + 16)
    np.testing.assert_allclose(out[8.0][:, : 2 * DESCRIPTOR], motion_descriptor(seq, 8.0), atol=1e-5)
    with pytest.raises(ConfigError, match="descriptor_motion"):
        ModelConfig(descriptor_motion=-1)
