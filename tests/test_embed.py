"""embed_video end to end: the streaming pipeline, progress, sampling and windowed attention."""

from __future__ import annotations

import pickle
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from carl_core.config import load_preset
from carl_core.embed import Embedder, EmbedResult, _Prefetch, default_fps, embed_video
from carl_core.errors import ConfigError, VideoError
from carl_core.model import DEFAULT_WINDOW, AttentionWindow, CARLModel
from carl_core.preprocess import preprocess
from carl_core.video import blank_frames, read_video
from carl_core.video_writer import write_video
from tests.conftest import real_clip

pytestmark = pytest.mark.timeout(120)
S = 64


def noise_video(path: Path, n: int, fps: float = 30, seed: int = 0) -> Path:
    """``n`` frames of smooth random blobs that change from frame to frame."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        s.width = s.height = S
        s.pix_fmt = "yuv420p"
        base = rng.integers(0, 256, (n // 4 + 2, 8, 8, 3)).astype(np.float32)
        for i in range(n):
            a, t = divmod(i, 4)
            small = base[a] * (1 - t / 4) + base[a + 1] * (t / 4)
            img = np.kron(small, np.ones((8, 8, 1))).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


def small_config(**model):
    return load_preset("small").with_overrides(model={"image_size": S, **model})


@pytest.fixture(scope="module")
def model() -> CARLModel:
    torch.manual_seed(0)
    return CARLModel(small_config().model).eval()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return noise_video(tmp_path_factory.mktemp("v") / "clip.mp4", 40)


# --------------------------------------------------------------------------- the pipeline


def test_streamed_embeddings_equal_embedding_all_frames_at_once(model, video):
    embs, ts = embed_video(model, video, backend="torch", cache_dir=False, chunk=7)
    frames, stamps = read_video(video, size=(S, S))
    expected = model.embed_frames(preprocess(frames, S)).numpy()
    assert embs.shape == (40, 128) and embs.dtype == np.float32 and ts.dtype == np.float64
    np.testing.assert_allclose(embs, expected, atol=1e-5)
    np.testing.assert_array_equal(ts, stamps)
    np.testing.assert_allclose(ts, np.arange(40) / 30, atol=1e-9)


def test_the_result_is_a_pair_that_carries_indices_and_blank_frames(model, tmp_path):
    # 12 frames of blobs, 4 black (a fade's end), 2 white, 2 mid-grey: 8 blank frames in all.
    blobs, _ = read_video(noise_video(tmp_path / "blobs.mp4", 12), size=(S, S))
    flat = [np.full((S, S, 3), v, np.uint8) for v in (0, 0, 0, 0, 255, 255, 128, 128)]
    path = write_video(tmp_path / "fade.mp4", [*blobs, *flat], 30.0)
    result = embed_video(model, path, cache_dir=tmp_path / "cache")
    embs, times = result  # the public contract: a pair
    assert len(result) == 2 and isinstance(result, tuple) and result.embeddings is embs
    assert embs.shape == (20, 128) and result.times is times and times.shape == (20,)
    assert result.indices.dtype == np.int64 and result.indices.tolist() == list(range(20))
    assert result.blank.dtype == bool and result.blank.tolist() == [False] * 12 + [True] * 8
    sampled = embed_video(model, path, fps=10, cache_dir=tmp_path / "cache")  # every third frame
    assert sampled.indices.tolist() == list(range(0, 20, 3)) and sampled.blank.sum() == 3
    again = embed_video(model, path, fps=10, cache_dir=tmp_path / "cache")  # from the cache
    np.testing.assert_array_equal(again.indices, sampled.indices)
    np.testing.assert_array_equal(again.blank, sampled.blank)
    assert pickle.loads(pickle.dumps(again)).indices.tolist() == again.indices.tolist()
    with pytest.raises(ValueError, match="EmbedResult needs"):
        EmbedResult(embs, times[:3], result.indices, result.blank)


def test_blank_frames_on_real_clips():
    # The squat clip fades to black from frame 768; the man is last faintly visible at 775.
    frames, _ = read_video(real_clip("ikramaliokz__squat.mp4"), indices=range(760, 851), size=(224, 224))
    assert np.flatnonzero(blank_frames(frames)).tolist() == list(range(776 - 760, 851 - 760))
    # A blurred title card over the action is a picture, not a blank: nothing flagged.
    frames, _ = read_video(real_clip("tayyab__pushup2.mp4"), indices=range(0, 90, 3), size=(224, 224))
    assert not blank_frames(frames).any()
    frames, _ = read_video(real_clip("mmaction2__test.mp4"), fps=5, size=(64, 64))  # the dimmest clip
    assert not blank_frames(frames).any()


def test_onnx_engine_gives_the_same_embeddings(model, video):
    a, ta = embed_video(model, video, backend="onnx", cache_dir=False)
    b, tb = embed_video(model, video, backend="torch", cache_dir=False)
    np.testing.assert_array_equal(ta, tb)
    np.testing.assert_allclose(a, b, atol=1e-4)  # the stated ONNX tolerance, after the transformer


def test_auto_engine_is_onnx_on_cpu(model):
    assert Embedder(model, cache_dir=False).engine_name == "onnx"
    assert Embedder(model, backend="torch", cache_dir=False).engine_name == "torch"


def test_fps_sampling_picks_frames_on_the_grid(model, tmp_path):
    path = noise_video(tmp_path / "fps60.mp4", 60, fps=60)
    embs, ts = embed_video(model, path, fps=10, cache_dir=False)
    assert embs.shape == (10, 128)
    np.testing.assert_allclose(ts, np.arange(10) / 10, atol=1e-9)  # frames 0, 6, 12, ...
    embs, ts = embed_video(model, path, fps=120, cache_dir=False)  # above the video's rate: every frame
    assert len(embs) == 60


def test_progress_reports_frames_rate_and_time_left(model, video):
    calls = []
    embed_video(model, video, cache_dir=False, chunk=16, on_progress=lambda *a: calls.append(a))
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[-1] == 40 and {t for _, t, _ in calls} == {40}
    assert len(calls) >= 4  # start, three chunks (16, 32, 40), finish
    assert all("frames/s" in m for _, _, m in calls)
    assert any("left" in m for _, _, m in calls)


def test_training_mode_is_restored(video):
    torch.manual_seed(1)
    m = CARLModel(small_config().model).train()
    embed_video(m, video, backend="torch", cache_dir=False)
    assert m.training and not m.backbone.frozen.training


def test_default_fps_suits_the_device():
    assert default_fps("cpu") == 10.0
    assert default_fps(torch.device("cuda")) == 30.0


@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf"), "10"])
def test_bad_fps_is_a_clear_error(model, video, fps):
    with pytest.raises(ConfigError, match="fps"):
        embed_video(model, video, fps=fps, cache_dir=False)


def test_bad_options_are_clear_errors(model, video):
    with pytest.raises(ConfigError, match="backend"):
        embed_video(model, video, backend="gpu", cache_dir=False)
    with pytest.raises(ConfigError, match="chunk"):
        embed_video(model, video, chunk=0, cache_dir=False)


# --------------------------------------------------------------------------- prefetching


def _numbers(n: int, produced: list[int]):
    for i in range(n):
        produced.append(i)
        yield np.full(4, i), np.array([i])


def test_prefetch_holds_at_most_a_few_chunks():
    produced: list[int] = []
    most_ahead = 0
    with _Prefetch(_numbers(50, produced), lambda x: x, depth=2, stall=10) as items:
        for k, (x, _) in enumerate(items):
            assert x[0] == k
            time.sleep(0.005)  # a slow model: the decoder runs ahead until the queue is full
            most_ahead = max(most_ahead, len(produced) - (k + 1))
    assert len(produced) == 50
    assert most_ahead <= 3  # the queue's 2, plus the one the thread holds while it waits


def test_decoder_errors_reach_the_caller_after_the_good_chunks():
    def broken():
        yield np.zeros(1), np.zeros(1)
        yield np.ones(1), np.ones(1)
        raise VideoError("damaged at frame 2")

    got = []
    with pytest.raises(VideoError, match="damaged"), _Prefetch(broken(), lambda x: x, 2, 10) as items:
        for x, _ in items:
            got.append(float(x[0]))
    assert got == [0.0, 1.0]


def test_leaving_early_stops_the_decoder_thread():
    produced: list[int] = []
    p = _Prefetch(_numbers(10_000, produced), lambda x: x, depth=2, stall=10)
    with p as items:
        next(items)
    assert not p.thread.is_alive()
    assert len(produced) < 10


def test_a_stalled_decoder_is_an_error_not_a_hang():
    release = threading.Event()

    def stuck():
        yield np.zeros(1), np.zeros(1)
        release.wait(30)  # a decoder that never returns
        yield np.zeros(1), np.zeros(1)

    with pytest.raises(VideoError, match="stalled"), _Prefetch(stuck(), lambda x: x, 2, stall=0.3) as items:
        list(items)
    release.set()


# --------------------------------------------------------------------------- windowed attention


@pytest.mark.parametrize("length", [9, 10, 37, 1000])
def test_windows_cover_the_sequence_with_the_stated_overlap(length):
    w = AttentionWindow(max_full=8, size=8, overlap=3)
    starts = w.starts(length)
    assert starts[0] == 0 and starts[-1] + w.size == length
    assert all(0 < b - a <= w.size - w.overlap for a, b in zip(starts, starts[1:]))
    total = torch.zeros(length, dtype=torch.float64)
    for s in starts:
        weights = w.weights(s, length)
        assert (weights > 0).all() and (weights <= 1).all()
        total[s : s + w.size] += weights
    assert (total >= 1 - 1e-9).all()  # every frame fully covered


def test_window_spec_is_checked():
    with pytest.raises(ConfigError):
        AttentionWindow(max_full=8, size=16, overlap=2)
    with pytest.raises(ConfigError):
        AttentionWindow(max_full=16, size=8, overlap=8)


def test_up_to_max_full_attention_is_full():
    torch.manual_seed(2)
    m = CARLModel(small_config().model).eval()
    feats = torch.randn(100, 128)
    window = AttentionWindow(max_full=100, size=50, overlap=10)
    torch.testing.assert_close(m.embed_sequence(feats, window), m.embed_sequence(feats, None), rtol=0, atol=0)
    longer = torch.randn(101, 128)
    assert not torch.allclose(m.embed_sequence(longer, window), m.embed_sequence(longer, None), atol=1e-3)


def test_windows_keep_positions_and_blend_exactly_without_attention():
    # With no transformer layer every frame's output depends on its own feature and position
    # only, so windows must give exactly the full result: global positions, weights summing to one.
    torch.manual_seed(3)
    m = CARLModel(small_config(num_layers=0).model).eval()
    feats = torch.randn(300, 128)
    full = m.embed_sequence(feats, None)
    windowed = m.embed_sequence(feats, AttentionWindow(max_full=64, size=64, overlap=16))
    torch.testing.assert_close(windowed, full, rtol=0, atol=1e-6)


def _smooth_features(length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(length, 128, generator=g)
    return torch.nn.functional.avg_pool1d(x.T[None], 9, 1, 4, count_include_pad=False)[0].T * 3


@pytest.mark.parametrize("length", [300, 600])
def test_windowed_attention_is_close_to_full_attention(length):
    """The stated tolerance. A randomly initialised transformer attends almost uniformly over the
    whole sequence: the hardest case for windows, since every frame outside the window matters.
    Windows of half the sequence: mean cosine to full attention >= 0.95, every frame >= 0.88;
    windows of three quarters: mean >= 0.985, every frame >= 0.95 (measured over three seeds:
    0.953-0.984 / 0.901-0.965 and 0.989-0.995 / 0.967-0.982)."""
    torch.manual_seed(0)
    m = CARLModel(small_config().model).eval()
    feats = _smooth_features(length, seed=length)
    full = m.embed_sequence(feats, None)
    for fraction, mean_cos, min_cos in ((0.5, 0.95, 0.88), (0.75, 0.985, 0.95)):
        size = int(length * fraction)
        windowed = m.embed_sequence(feats, AttentionWindow(max_full=size, size=size, overlap=size // 4))
        cos = (full * windowed).sum(dim=1)
        assert cos.mean() >= mean_cos and cos.min() >= min_cos, (fraction, cos.mean(), cos.min())
    # not a loose bound: frames 50 apart are much further from each other than that
    assert (full[:-50] * full[50:]).sum(dim=1).mean() < 0.8


def test_embed_video_uses_windows_beyond_max_full(model, video):
    window = AttentionWindow(max_full=16, size=16, overlap=4)
    a, _ = embed_video(model, video, backend="torch", cache_dir=False, window=window)
    frames, _ = read_video(video, size=(S, S))
    expected = model.embed_frames(preprocess(frames, S), window=window).numpy()
    np.testing.assert_allclose(a, expected, atol=1e-5)
    full = model.embed_frames(preprocess(frames, S), window=None).numpy()
    assert not np.allclose(a, full, atol=1e-3)  # the windows did change something
    assert DEFAULT_WINDOW.max_full >= 4096  # a long clip (minutes) still gets full attention


# --------------------------------------------------------------------------- cheaper decoding, damaged files


def test_sampled_embeddings_equal_those_of_the_same_frames_decoded_one_by_one(model, tmp_path):
    # x264 B-frames at 30 fps sampled at 10: the decoder leaves out frames, the identities hold
    path = noise_video(tmp_path / "b.mp4", 60)
    result = embed_video(model, path, fps=10, backend="onnx", cache_dir=False, chunk=8)
    np.testing.assert_array_equal(result.indices, np.arange(0, 60, 3))
    frames, stamps = read_video(path, indices=result.indices, size=(S, S), backend="pyav")
    np.testing.assert_array_equal(result.times, stamps)
    expected = model.embed_frames(preprocess(frames, S)).numpy()
    np.testing.assert_allclose(result.embeddings, expected, atol=1e-4)


def test_the_cli_warns_in_one_line_about_a_cut_off_file(tmp_path, capsys):
    from carl_core.cli import main
    from tests.e2e.studio import make_test_model

    ckpt = str(make_test_model(tmp_path / "model.pt"))
    rng = np.random.default_rng(0)
    noise = (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(150))
    whole = write_video(tmp_path / "whole.mp4", noise, 25.0)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (written first) survives, half the frames do not
    out = tmp_path / "e.npy"
    assert (
        main(["embed", str(cut), "--checkpoint", ckpt, "--out", str(out), "--fps", "all", "--no-cache"]) == 0
    )
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "cut.mp4 is cut off or damaged: only frames 0-" in warnings[0] and "of 150" in warnings[0]
    assert 0 < len(np.load(out)) < 150
    assert (
        main(["embed", str(whole), "--checkpoint", ckpt, "--out", str(out), "--fps", "all", "--no-cache"])
        == 0
    )
    assert "warning:" not in capsys.readouterr().err
