"""The embedding cache: instant second runs, keys that notice every change, corruption recovered."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from carl_core import embed as embed_module
from carl_core.cache import (
    FORMAT_VERSION,
    EmbeddingCache,
    EmbeddingKey,
    default_cache_dir,
    file_digest,
    model_digest,
)
from carl_core.config import load_preset
from carl_core.embed import Embedder, embed_video
from carl_core.errors import VideoError
from carl_core.model import AttentionWindow, CARLModel
from tests.test_embed import noise_video

pytestmark = pytest.mark.timeout(120)
S = 64


@pytest.fixture(scope="module")
def model() -> CARLModel:
    torch.manual_seed(0)
    cfg = load_preset("small").with_overrides(model={"image_size": S})
    return CARLModel(cfg.model).eval()


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return noise_video(tmp_path_factory.mktemp("v") / "clip.mp4", 24)


def _no_compute(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the video was read or the model ran although the result was cached")

    monkeypatch.setattr(embed_module.Embedder, "_run", refuse)
    monkeypatch.setattr(embed_module, "open_video", refuse)


def test_second_run_comes_from_the_cache(model, video, tmp_path, monkeypatch):
    embs, ts = embed_video(model, video, cache_dir=tmp_path)
    assert len(list((tmp_path / "embeddings").glob("*/*.npz"))) == 1
    _no_compute(monkeypatch)
    calls = []
    embs2, ts2 = embed_video(model, video, cache_dir=tmp_path, on_progress=lambda *a: calls.append(a))
    np.testing.assert_array_equal(embs, embs2)
    np.testing.assert_array_equal(ts, ts2)
    assert calls[-1][:2] == (24, 24) and "cache" in calls[-1][2]


def test_cache_dir_false_writes_nothing(model, video, tmp_path, monkeypatch):
    monkeypatch.setenv("CARL_CACHE_DIR", str(tmp_path / "default"))
    embed_video(model, video, backend="torch", cache_dir=False)
    assert not (tmp_path / "default").exists()


def test_key_changes_with_fps_size_window_and_model(model, video, tmp_path):
    e = Embedder(model, cache_dir=tmp_path)
    base = e.key(video, None)
    assert e.key(video, None) == base
    assert e.key(video, 10.0) != base
    assert Embedder(model, cache_dir=tmp_path, window=AttentionWindow(64, 32, 8)).key(video, None) != base
    assert Embedder(model, cache_dir=tmp_path, window=None).key(video, None) != base
    other = CARLModel(dataclasses.replace(model.cfg, image_size=96)).eval()
    other.load_state_dict(model.state_dict())
    assert Embedder(other, cache_dir=tmp_path).key(video, None).model != base.model  # input size
    with torch.no_grad():
        model.head.to_embedding.bias[0] += 1.0  # any weight: a new identity, noticed by the same Embedder
    try:
        assert e.key(video, None).model != base.model
    finally:
        with torch.no_grad():
            model.head.to_embedding.bias[0] -= 1.0
    assert e.key(video, None).model == base.model


def test_model_digest_covers_buffers_not_the_batch_size(model):
    d = model_digest(model)
    twin = CARLModel(dataclasses.replace(model.cfg, frames_per_batch=3))
    twin.load_state_dict(model.state_dict())
    assert model_digest(twin) == d
    twin.head.fc[2].running_mean.add_(1e-3)  # BatchNorm statistics are part of the model
    assert model_digest(twin) != d


def test_file_digest_follows_content_not_name_or_time(tmp_path, video):
    memo = tmp_path / "memo"
    copy = Path(shutil.copy(video, tmp_path / "renamed.mp4"))
    d = file_digest(video, memo)
    assert file_digest(copy, memo) == d
    os.utime(copy, ns=(1, 1))  # touched: rehashed, same content, same digest
    assert file_digest(copy, memo) == d
    data = bytearray(copy.read_bytes())
    st = copy.stat()
    data[100] ^= 0xFF  # one byte, same size, same mtime (restored): only the content tells
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    changed = file_digest(copy, None)
    assert changed != d
    assert file_digest(copy, memo) == changed  # the sampled blocks caught what stat could not


def test_an_edited_file_gets_new_embeddings(model, tmp_path):
    path = noise_video(tmp_path / "v.mp4", 16, seed=1)
    a, _ = embed_video(model, path, cache_dir=tmp_path / "c")
    noise_video(path, 16, seed=2)  # the user re-exported the video under the same name
    b, _ = embed_video(model, path, cache_dir=tmp_path / "c")
    assert not np.allclose(a, b)
    assert len(list((tmp_path / "c" / "embeddings").glob("*/*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_entry_is_detected_and_recomputed(model, video, tmp_path, caplog, damage):
    embs, _ = embed_video(model, video, cache_dir=tmp_path)
    (entry,) = (tmp_path / "embeddings").glob("*/*.npz")
    data = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        raw = bytearray(data)
        raw[len(raw) // 3] ^= 0x01  # inside the stored embeddings
        entry.write_bytes(bytes(raw))
    elif damage == "garbage":
        entry.write_bytes(b"not a cache entry")
    else:
        entry.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="carl_core.cache"):
        again, _ = embed_video(model, video, cache_dir=tmp_path)
    assert "corrupt" in caplog.text
    np.testing.assert_allclose(again, embs, atol=1e-6)
    cache = EmbeddingCache(tmp_path)
    key = Embedder(model, cache_dir=tmp_path).key(video, None)
    assert cache.get(key) is not None  # rewritten whole


def _arrays(n: int, d: int) -> tuple[np.ndarray, ...]:
    """What an entry holds: embeddings, timestamps, frame indices, blank flags, frame embeddings."""
    ones = np.ones((n, d), np.float32)
    return ones, np.arange(n, dtype=np.float64), np.arange(n), np.zeros(n, bool), ones


def test_an_entry_of_the_old_format_is_a_miss(model, video, tmp_path):
    # Version 2 held no context-free frame embeddings: such an entry is never read as version 3.
    embedder = Embedder(model, cache_dir=tmp_path)
    key = embedder.key(video, None)
    assert key.version == FORMAT_VERSION == 3
    old = dataclasses.replace(key, version=2)
    cache = EmbeddingCache(tmp_path)
    cache.put(old, *_arrays(24, 128))
    assert cache.get(key) is None
    result = embedder.embed(video)
    assert not np.allclose(result.embeddings, 1.0) and result.indices.tolist() == list(range(24))
    assert cache.get(key) is not None


def test_a_tampered_entry_with_valid_zip_is_caught_by_the_checksum(tmp_path):
    cache = EmbeddingCache(tmp_path)
    key = EmbeddingKey("v" * 40, "m" * 40, None, 64, "full")
    path = cache.put(key, *_arrays(3, 4))
    with np.load(path) as z:
        parts = dict(z)
    parts["embs"] = parts["embs"] * 2  # a well-formed file with wrong numbers
    with path.open("wb") as f:
        np.savez(f, **parts)
    assert cache.get(key) is None and not path.exists()


def test_writes_are_atomic(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    key = EmbeddingKey("v" * 40, "m" * 40, 5.0, 64, "full")

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError):
        cache.put(key, *_arrays(3, 4))
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial entry, no temp file


def test_a_failed_cache_write_does_not_lose_the_result(model, video, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(EmbeddingCache, "put", lambda *a, **k: (_ for _ in ()).throw(OSError("read-only")))
    with caplog.at_level(logging.WARNING):
        embs, _ = embed_video(model, video, cache_dir=tmp_path)
    assert embs.shape == (24, 128) and "could not write" in caplog.text


def test_prune_drops_least_recently_used(tmp_path):
    cache = EmbeddingCache(tmp_path, max_bytes=10**9)
    keys = [EmbeddingKey(str(i) * 40, "m" * 40, None, 64, "full") for i in range(4)]
    for i, k in enumerate(keys):
        p = cache.put(k, *_arrays(100, 128))
        os.utime(p, ns=(i * 10**9, i * 10**9))
    assert cache.get(keys[0]) is not None  # used now: the newest
    size = cache.path_of(keys[0]).stat().st_size
    cache.max_bytes = 2 * size
    cache.prune()
    assert [cache.get(k) is not None for k in keys] == [True, False, False, True]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CARL_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("CARL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "carl_studio"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "carl_studio"


def test_nothing_is_written_beside_the_video(model, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    path = noise_video(folder / "v.mp4", 8)
    embed_video(model, path, cache_dir=tmp_path / "c")
    assert os.listdir(folder) == ["v.mp4"]


def test_bad_paths_are_video_errors_with_the_cache_on(model, tmp_path):
    with pytest.raises(VideoError, match="not a file"):
        embed_video(model, tmp_path)
    with pytest.raises(VideoError, match="not found"):
        embed_video(model, tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        embed_video(model, tmp_path / "empty.mp4")
