"""What the pose model reads: invariant to size, position and (with canonical facing) camera yaw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carl_core.pose_features import (
    FEATURES,
    PoseFeatures,
    canonical_facing,
    mirror_pose,
    pose_array,
    rotate_yaw,
    usual_facing,
)
from carl_core.skeleton import INDEX, PoseSequence
from carl_core.video import probe_video

from .conftest import REAL_CLIPS

REFERENCE = REAL_CLIPS.parent / "real_clips_pose"


def _standing(t: int = 20, seed: int = 0) -> np.ndarray:
    """(t, 33, 8) raw input of a body facing the camera, arms moving, hips at the origin."""
    rng = np.random.default_rng(seed)
    world = rng.normal(0, 0.02, size=(t, 33, 3))
    for name, (x, y) in {
        "left_hip": (0.1, 0), "right_hip": (-0.1, 0), "left_shoulder": (0.18, -0.5),
        "right_shoulder": (-0.18, -0.5), "left_knee": (0.1, 0.45), "right_knee": (-0.1, 0.45),
        "left_ankle": (0.1, 0.9), "right_ankle": (-0.1, 0.9), "nose": (0, -0.7),
    }.items():  # fmt: skip
        world[:, INDEX[name], :2] += (x, y)
    world[:, INDEX["left_wrist"], 1] = np.linspace(0, -0.9, t)  # the left arm rises
    image = np.concatenate([world[..., :2] * 0.3 + 0.5, world[..., 2:] * 0.3], axis=-1)
    vis = np.ones((t, 33, 1))
    return np.concatenate([image, vis, world, vis], axis=-1).astype(np.float32)


def _features(raw: np.ndarray) -> torch.Tensor:
    return PoseFeatures()(torch.from_numpy(raw))


def test_features_ignore_body_size_and_place():
    raw = _standing()
    bigger = raw.copy()
    bigger[..., 4:7] *= 1.3
    assert _features(raw).shape == (20, FEATURES)
    assert torch.allclose(_features(raw), _features(bigger), atol=1e-5)


def test_canonical_facing_undoes_a_camera_yaw():
    raw = _standing()
    turned = rotate_yaw(raw, np.radians(70))
    assert usual_facing(raw) == pytest.approx(0, abs=0.05)
    assert usual_facing(turned) == pytest.approx(np.radians(-70), abs=0.05)
    assert torch.allclose(_features(canonical_facing(turned)), _features(canonical_facing(raw)), atol=2e-3)


def test_a_turn_within_the_video_stays_visible():
    raw = _standing(40)
    yaw = np.where(np.arange(40) < 30, 0.0, np.radians(90))  # turns away for the last 10 frames
    turned = canonical_facing(rotate_yaw(raw, yaw))
    assert usual_facing(turned[:30]) == pytest.approx(0, abs=0.05)
    assert abs(usual_facing(turned[30:])) > np.radians(60)


def test_mirror_swaps_sides_and_twice_is_identity():
    raw = _standing()
    m = mirror_pose(raw)
    assert np.allclose(m[:, INDEX["right_wrist"], 5], raw[:, INDEX["left_wrist"], 5])
    assert np.allclose(mirror_pose(m), raw)


def test_a_frame_with_nobody_is_flagged_not_dropped():
    raw = _standing()
    raw[5:8] = np.nan
    f = _features(raw)
    assert f.shape[0] == 20 and torch.isfinite(f).all()
    assert f[5:8, -1].eq(1).all() and f[5:8, :-1].eq(0).all() and f[:5, -1].eq(0).all()


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="the real clips' reference poses are not beside the repo")
@pytest.mark.parametrize(
    "clip, view", [("yuyoujiang__squat.mp4", "side"), ("slomoloops__jumpingjacks2menlowres.ogg", "front")]
)
def test_usual_facing_on_real_clips(clip, view):
    info = probe_video(REAL_CLIPS / clip)
    seq = PoseSequence.from_mediapipe_npz(REFERENCE / f"{clip}.pose.npz", info.width, info.height, info.fps)
    yaw = abs(np.degrees(usual_facing(pose_array(seq))))
    assert (60 < yaw < 120) if view == "side" else (yaw < 30)
