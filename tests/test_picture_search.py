"""Query by picture (issue 10, item 1): a picture of a frame of an indexed video finds that frame.

A picture has no neighbouring frames, so it is compared with each indexed frame's context-free
embedding (``EmbedResult.frame_embeddings``), never with the sequence model's output, where a
one-frame clip lands on the first frames of every video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carl_core.embed import Embedder, embed_picture
from carl_core.features import imagenet_features
from carl_core.retrieval import VideoIndex
from carl_core.video import read_video

from .conftest import real_clip

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


def _picture_queries(model, videos: list[Path], picks_per_video: int, fps=None):
    """(index, [(video, frame number, picture's query embedding)]) over evenly spread frames."""
    embedder = Embedder(model, cache_dir=False)
    index, queries = VideoIndex(), []
    for v in videos:
        result = embedder.embed(v, fps)
        index.add(v.name, result)
        frames = result.indices[np.linspace(0, len(result.indices) - 1, picks_per_video).round().astype(int)]
        pictures, _ = read_video(v, indices=frames)  # full-size pictures, as a user saves them
        queries += [(v.name, int(f), embed_picture(model, p)) for f, p in zip(frames, pictures)]
    assert index.frames is not None
    return index, queries


def _own_frame_share(model, videos: list[Path], picks_per_video: int, fps=None) -> tuple[float, list]:
    index, queries = _picture_queries(model, videos, picks_per_video, fps)
    misses = []
    for video, frame, q in queries:
        top = index.frames.query(q, k=1)[0][0]
        if not (top.video_id == video and abs(top.frame - frame) <= 2):
            misses.append((video, frame, top.video_id, top.frame))
    return 1 - len(misses) / len(queries), misses


def test_a_picture_of_a_frame_is_a_top_hit_with_pixel_features():
    # The synthetic samples repeat one squat, so a pose recurs exactly in every repetition: the
    # picture's own frame must score as high as the best hit (a tie with its twins), and near 1 (the video is
    # scaled by the decoder, the picture by preprocess).
    model = imagenet_features("efficientnet_lite0")
    index, queries = _picture_queries(model, [SAMPLES / "squat_a.mp4", SAMPLES / "squat_b.mp4"], 8)
    assert index.frames is not None
    for video, frame, q in queries:
        hits = index.frames.query(q, k=len(index))[0]
        own = max(h.similarity for h in hits if h.video_id == video and abs(h.frame - frame) <= 2)
        assert own >= 0.95 and own >= hits[0].similarity - 0.01, (video, frame, own, hits[0])


def test_context_free_embeddings_do_not_depend_on_the_other_frames():
    model = imagenet_features("efficientnet_lite0")
    embedder = Embedder(model, cache_dir=False)
    whole = embedder.embed(SAMPLES / "squat_a.mp4")
    pictures, _ = read_video(SAMPLES / "squat_a.mp4", indices=whole.indices[[3, 20]])
    for row, picture in zip([3, 20], pictures):
        assert float(whole.frame_embeddings[row] @ embed_picture(model, picture)) > 0.97


@pytest.mark.slow
def test_pictures_of_real_people_find_their_own_frame_with_the_default_model():
    from carl_core import DEFAULT_CHECKPOINT, load_checkpoint

    clips = [real_clip("yuyoujiang__squat.mp4"), real_clip("golfdb__test_video.mp4")]
    share, misses = _own_frame_share(
        load_checkpoint(DEFAULT_CHECKPOINT), clips, 13
    )  # every frame, as --fps all
    # Measured: 25/26 with random picks, the miss a standing frame 3 frames from its twin.
    assert share >= 0.9, misses
