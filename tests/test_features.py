"""Plain ImageNet features (carl_core.features): the CARLModel interface with no CARL head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from carl_core.embed import embed_picture
from carl_core.errors import VideoError
from carl_core.features import ImageNetFeatures
from carl_core.preprocess import preprocess
from carl_core.video import read_video

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "samples" / "squat_a.mp4"


@pytest.fixture(scope="module")
def features() -> ImageNetFeatures:
    return ImageNetFeatures("efficientnet_lite0", image_size=64)


def test_video_embeddings_are_pooled_frames_each_on_its_own(features: ImageNetFeatures) -> None:
    from carl_core.embed import embed_video

    embs, times = embed_video(features, SAMPLE, fps=6.0, cache_dir=False, backend="torch")
    assert embs.shape == (len(times), 1280) and len(times) > 20
    np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    # No sequence model: a frame's embedding does not depend on the others.
    frames, _ = read_video(SAMPLE, fps=6.0, size=(64, 64))
    x = preprocess(frames[:5], 64)
    alone = torch.cat([features.embed_frames(x[i : i + 1]) for i in range(5)]).numpy()
    together = features.embed_frames(x).numpy()
    np.testing.assert_allclose(alone, together, atol=1e-5)
    np.testing.assert_allclose(together, embs[:5], atol=2e-2)  # decoded at 64 px either way
    assert not any(p.requires_grad for p in features.parameters())


def test_a_picture_embeds_like_a_frame(features: ImageNetFeatures) -> None:
    frames, _ = read_video(SAMPLE, indices=[30])
    e = embed_picture(features, frames[0])
    assert e.shape == (1280,) and abs(np.linalg.norm(e) - 1) < 1e-5
    ref = features.embed_frames(preprocess(frames[:1], 64))[0].numpy()
    np.testing.assert_allclose(e, ref, atol=1e-5)
    grey = embed_picture(features, frames[0].mean(axis=2).astype(np.uint8))
    assert grey.shape == (1280,)
    with pytest.raises(VideoError, match="RGB picture"):
        embed_picture(features, np.zeros((8, 8, 7), np.uint8))
    with pytest.raises(VideoError, match="RGB picture"):
        embed_picture(features, np.zeros((8, 8, 3), np.float32))
