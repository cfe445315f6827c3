"""Training and using a model that reads body pose: synthetic motion in, a checkpoint that
load_checkpoint, embed_video and the CLI take unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from carl_core.checkpoint import load_checkpoint
from carl_core.config import load_preset
from carl_core.embed import embed_video
from carl_core.motion import sample_motion, sample_motion_pair
from carl_core.pose_data import PoseClips, pose_source
from carl_core.train import train

from .conftest import REAL_CLIPS


def _tiny_pose_config(epochs: int = 1):
    return load_preset("pose").with_overrides(
        model={
            "fc_layers": [32],
            "hidden_size": 32,
            "d_ff": 64,
            "embedding_size": 16,
            "projection_size": 16,
            "descriptor_weight": 0.0,  # the learned embedding alone
        },
        data={"num_frames": 24},
        train={"epochs": epochs, "batch_size": 4, "num_workers": 0},
    )


def test_a_motion_pair_is_one_movement_by_two_people_on_one_timeline():
    a, b = sample_motion_pair("squat", np.random.default_rng(3))
    assert len(a.labels) == len(b.labels) and (a.labels == b.labels).all()
    assert a.info["body"] != b.info["body"] and a.info["camera"] != b.info["camera"]
    # same movement: the knee angle follows the same course, whoever does it
    solo = sample_motion("squat", np.random.default_rng(3))
    assert solo.pose.image.shape[1:] == a.pose.image.shape[1:]


def test_pose_views_carry_landmarks_times_and_labels():
    cfg = _tiny_pose_config()
    clips = PoseClips(pose_source("motion:4", cfg), cfg)
    item = clips[(0, 1)]
    assert item["views"].shape == (2, 24, 33, 8)
    assert item["times"].shape == (2, 24) and item["label"] >= 0
    again = clips[(0, 1)]
    assert torch.equal(torch.nan_to_num(item["views"]), torch.nan_to_num(again["views"]))  # reproducible


def test_two_performances_views_are_placed_by_where_they_are_in_the_movement():
    """``data.motion_views: two_performances``: the views come from two different performances
    (other lengths), and their steps are places in the movement on one scale, overlapping, so
    SCL's prior pairs frames at the same place; a training step runs on them."""
    from carl_core.errors import ConfigError
    from carl_core.losses import scl_loss
    from carl_core.pose_data import POSITION_FRAMES, POSITION_LENGTH

    cfg = _tiny_pose_config().with_overrides(data={"motion_views": "two_performances"})
    source = pose_source("motion:8", cfg)
    clips = PoseClips(source, cfg)
    for i in range(8):
        first, second = source.pair(0, i)
        assert first is not second and first.position is not None and second.position is not None
        item = clips[(0, i)]
        steps, masks = item["steps"].numpy(), item["masks"].numpy()
        assert item["views"].shape == (2, 24, 33, 8) and item["seq_len"] == POSITION_LENGTH
        real = [steps[v][masks[v] > 0] / POSITION_FRAMES for v in (0, 1)]
        assert all(len(r) > 0 for r in real)
        # the second view covers the stretch of the movement the first one shows
        assert real[1].min() >= real[0].min() - 0.2 and real[1].max() <= real[0].max() + 0.2
    batch = [clips[(0, i)] for i in range(2)]
    embs = torch.nn.functional.normalize(torch.randn(2, 2, 24, 8), dim=-1)
    loss = scl_loss(
        embs, torch.tensor([[POSITION_LENGTH] * 2] * 2), torch.stack([b["steps"] for b in batch]),
        torch.stack([b["masks"] for b in batch]),
    )  # fmt: skip
    assert torch.isfinite(loss)
    with pytest.raises(ConfigError, match="motion_views"):
        _tiny_pose_config().with_overrides(data={"motion_views": "three"})


def test_train_on_synthetic_motion_and_embed_a_real_video(tmp_path):
    run = tmp_path / "pose"
    result = train(_tiny_pose_config(epochs=2), "motion:8", run)
    assert result.steps == 4 and all(np.isfinite(result.losses))
    model = load_checkpoint(run / "last.pt")
    assert model.streams == ("pose",)
    clip = REAL_CLIPS / "golfdb__test_video.mp4"
    if not clip.is_file():
        pytest.skip("the real clips are not beside the repo")
    res = embed_video(model, clip, fps=5)
    assert res.embeddings.shape == (len(res.times), 16) and res.pose is not None
    assert np.allclose(np.linalg.norm(res.embeddings, axis=1), 1, atol=1e-4)
    assert (np.diff(res.indices) > 0).all()


def test_descriptor_weight_splits_the_cosine_between_descriptor_and_learned_embedding():
    from carl_core.fusion import build_model
    from carl_core.pose_features import pose_descriptor

    seq = sample_motion("golf_swing", np.random.default_rng(5)).pose
    cfg = _tiny_pose_config().model
    torch.manual_seed(0)
    plain = build_model(cfg).eval()
    learned = plain.embed_pose(seq).numpy()
    d = pose_descriptor(seq)
    for w in (0.25, 1.0):
        torch.manual_seed(0)
        mixed = build_model(cfg.__class__(**{**cfg.__dict__, "descriptor_weight": w})).eval()
        e = mixed.embed_pose(seq).numpy()
        assert e.shape == (len(seq), d.shape[1] + learned.shape[1])
        seen = np.linalg.norm(d, axis=1) > 0.5  # frames where a person was found (dropouts: zeros)
        e, dd, ll = e[seen], d[seen], learned[seen]
        np.testing.assert_allclose(e @ e.T, w * (dd @ dd.T) + (1 - w) * (ll @ ll.T), atol=1e-5)
