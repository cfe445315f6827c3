"""Frame index: exact top-k against a numpy brute force, exclusions, float16 storage, disk."""

from __future__ import annotations

import json

import numpy as np
import pytest

from carl_core.errors import CarlError, ConfigError, DataError
from carl_core.retrieval import FrameIndex, Hit

TIE = 1e-6  # float32 scores closer than this may come out in either order


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def make_videos(rng: np.random.Generator, lengths=(700, 1300, 400, 900), dim=16) -> dict[str, np.ndarray]:
    return {f"v{i}": unit(rng.standard_normal((t, dim))) for i, t in enumerate(lengths)}


def build(videos: dict[str, np.ndarray], fps: float = 25.0, **kw) -> FrameIndex:
    index = FrameIndex(**kw)
    for vid, e in videos.items():
        index.add(vid, e, np.arange(len(e)) / fps, path=f"/videos/{vid}.mp4")
    return index


def brute_force(videos, queries, k, mask=None):
    """Reference: full score matrix, excluded entries at -inf, order by (-score, row)."""
    x = np.concatenate(list(videos.values()))
    s = unit(queries) @ x.T
    if mask is not None:
        s[mask] = -np.inf
    order = np.lexsort((np.broadcast_to(np.arange(x.shape[0]), s.shape), -s), axis=1)[:, :k]
    return order, np.take_along_axis(s, order, axis=1), s


def assert_same_ranking(rows, sims, ref_rows, ref_sims, all_scores):
    """Same similarities in the same order, each the true similarity of its row, no row twice;
    rows must be the reference's wherever their score is not a float32 near-tie."""
    assert rows.shape == ref_rows.shape
    finite = np.isfinite(ref_sims)
    np.testing.assert_array_equal(rows[~finite], -1)
    np.testing.assert_allclose(sims[finite], ref_sims[finite], atol=TIE, rtol=0)
    got = np.take_along_axis(all_scores, np.where(rows < 0, 0, rows), axis=1)
    np.testing.assert_allclose(got[finite], sims[finite], atol=TIE, rtol=0)
    for q in range(rows.shape[0]):
        valid = rows[q][rows[q] >= 0]
        assert len(set(valid.tolist())) == len(valid)
        ranked = np.sort(all_scores[q][np.isfinite(all_scores[q])])[::-1]
        gaps = -np.diff(ranked)[: len(valid)]
        before = np.concatenate([[np.inf], gaps[:-1]])
        isolated = (gaps > 2 * TIE) & (before > 2 * TIE) if len(ranked) > len(valid) else before > 2 * TIE
        np.testing.assert_array_equal(valid[isolated[: len(valid)]], ref_rows[q][: len(valid)][isolated])


@pytest.mark.parametrize("k", [1, 10, 100])
def test_matches_brute_force_many_queries_and_chunks(k):
    rng = np.random.default_rng(0)
    videos = make_videos(rng)
    queries = rng.standard_normal((9, 16)).astype(np.float32) * 3  # not normalised: index does it
    index = build(videos, max_chunk_bytes=1 << 16)  # forces several chunks
    rows, sims = index.search(queries, k)
    ref_rows, ref_sims, s = brute_force(videos, queries, k)
    assert_same_ranking(rows, sims, ref_rows, ref_sims, s)
    # chunking does not change the answer
    rows_big, _ = build(videos, max_chunk_bytes=1 << 30).search(queries, k)
    assert (rows_big == rows).mean() > 0.98
    # one query at a time gives the batch's answer
    for i in range(3):
        r1, s1 = index.search(queries[i], k)
        np.testing.assert_allclose(s1[0], sims[i], atol=TIE)


def test_hits_carry_video_frame_time_and_similarity():
    rng = np.random.default_rng(1)
    videos = make_videos(rng, lengths=(50, 80, 30))
    index = build(videos, fps=10.0)
    q = videos["v1"][42]
    hits = index.query(q, k=3)
    assert len(hits) == 1 and len(hits[0]) == 3
    top = hits[0][0]
    assert isinstance(top, Hit)
    assert (top.video_id, top.frame) == ("v1", 42)
    assert top.time == pytest.approx(4.2)
    assert top.similarity == pytest.approx(1.0, abs=1e-6)
    assert hits[0][1].similarity <= top.similarity
    assert index.locate(50 + 42) == ("v1", 42, pytest.approx(4.2))
    assert index.video_path("v2") == "/videos/v2.mp4"
    assert len(index) == 160 and index.videos == ["v0", "v1", "v2"] and index.dim == 16


def test_exclude_video_and_per_query_windows_match_brute_force():
    rng = np.random.default_rng(2)
    videos = make_videos(rng, lengths=(300, 500, 200))
    index = build(videos, max_chunk_bytes=1 << 16)
    offsets = {"v0": 0, "v1": 300, "v2": 800}
    n = 1000
    # queries are indexed frames of v1: their own frame and its neighbours must go
    frames = [0, 5, 250, 499]
    queries = videos["v1"][frames]
    windows = [("v1", f, 3) for f in frames]
    mask = np.zeros((len(frames), n), bool)
    mask[:, offsets["v0"] : offsets["v0"] + 300] = True  # exclude_video
    for i, f in enumerate(frames):
        lo, hi = max(f - 3, 0), min(f + 4, 500)
        mask[i, offsets["v1"] + lo : offsets["v1"] + hi] = True
    rows, sims = index.search(queries, 20, exclude_video="v0", exclude_window=windows)
    ref_rows, ref_sims, s = brute_force(videos, queries, 20, mask)
    assert_same_ranking(rows, sims, ref_rows, ref_sims, s)
    hits = index.query(queries, 20, exclude_video="v0", exclude_window=windows)
    for f, hs in zip(frames, hits):
        assert all(h.video_id != "v0" for h in hs)
        assert all(not (h.video_id == "v1" and abs(h.frame - f) <= 3) for h in hs)
    # without the window a frame finds itself first
    assert index.query(queries, 1)[0][0].frame == 0
    # one window for every query; None entries skip a query
    rows1, _ = index.search(queries[:2], 5, exclude_window=("v1", 0, 0))
    assert 300 not in rows1[0] and 300 not in rows1[1]
    rows2, _ = index.search(queries[:2], 5, exclude_window=[None, ("v1", 5, 0)])
    assert rows2[0][0] == 300 and 305 not in rows2[1]


def test_fewer_frames_than_k_after_exclusion():
    rng = np.random.default_rng(3)
    videos = make_videos(rng, lengths=(5, 7))
    index = build(videos)
    hits = index.query(videos["v0"][0], k=50, exclude_video="v1")[0]
    assert [h.frame for h in hits][:1] == [0] and len(hits) == 5
    rows, sims = index.search(videos["v0"][:2], k=50, exclude_video="v1")
    assert rows.shape == (2, 12)
    assert (rows[:, 5:] == -1).all() and np.isneginf(sims[:, 5:]).all()


def test_remove_and_replace():
    rng = np.random.default_rng(4)
    videos = make_videos(rng, lengths=(100, 200, 150))
    index = build(videos)
    index.remove("v1")
    assert len(index) == 250 and index.videos == ["v0", "v2"] and "v1" not in index
    rest = {k: v for k, v in videos.items() if k != "v1"}
    q = rng.standard_normal((4, 16)).astype(np.float32)
    rows, sims = index.search(q, 30)
    ref_rows, ref_sims, s = brute_force(rest, q, 30)
    assert_same_ranking(rows, sims, ref_rows, ref_sims, s)
    assert index.query(videos["v2"][7], 1)[0][0] == Hit("v2", 7, pytest.approx(7 / 25), pytest.approx(1.0))
    with pytest.raises(DataError, match="already in the index"):
        index.add("v0", videos["v0"], np.zeros(100))
    new = unit(rng.standard_normal((10, 16)))
    index.add("v0", new, np.arange(10.0), replace=True)
    assert len(index) == 160 and index.videos == ["v2", "v0"]
    np.testing.assert_allclose(index.get("v0")[0], new, atol=1e-7)


@pytest.mark.parametrize("storage", ["float16", "int16"])
def test_16bit_storage_ranks_exactly_like_float32(storage):
    rng = np.random.default_rng(5)
    videos = make_videos(rng, lengths=(6000, 9000, 5000), dim=128)
    queries = rng.standard_normal((12, 128)).astype(np.float32)
    idx32 = build(videos, max_chunk_bytes=1 << 20)
    idx16 = build(videos, storage=storage, max_chunk_bytes=1 << 20)
    x = np.concatenate(list(videos.values()))
    s = unit(queries) @ x.T
    naive = unit(queries) @ rounded(x, storage).T  # 16-bit rows, no re-ranking
    for k in (10, 100):
        r32, s32 = idx32.search(queries, k)
        r16, s16 = idx16.search(queries, k)
        assert_same_ranking(r16, s16, r32, s32, s)
        np.testing.assert_allclose(s16, s32, atol=TIE, rtol=0)
        if k == 100:
            # the test can fail: ranking the 16-bit rows alone reorders the top 100
            naive_rows = np.argsort(-naive, axis=1)[:, :k]
            assert (naive_rows != r32).any(axis=1).sum() >= 3


def rounded(x: np.ndarray, storage: str) -> np.ndarray:
    if storage == "float16":
        return x.astype(np.float16).astype(np.float32)
    return (np.rint(x * 32767) / 32767).astype(np.float32)


@pytest.mark.parametrize("storage", ["float16", "int16"])
def test_16bit_near_duplicates_widen_the_candidate_band(storage):
    # Long runs of almost identical frames (a still camera): far more rows than k lie within
    # the 16-bit error band of the k-th score, so the scan has to widen its candidate set.
    rng = np.random.default_rng(6)
    base = unit(rng.standard_normal((40, 64)))
    frames = unit(np.repeat(base, 150, axis=0) + 2e-4 * rng.standard_normal((6000, 64)))
    videos = {"still": frames, "other": unit(rng.standard_normal((3000, 64)))}
    q = unit(base[:5] + 1e-3 * rng.standard_normal((5, 64)))
    naive = q @ rounded(np.concatenate(list(videos.values())), storage).T
    kth = np.sort(naive, axis=1)[:, -10]
    assert ((naive >= kth[:, None] - 2e-4).sum(axis=1) > 2 * 10 + 32).all()  # band holds > first m
    r32, s32 = build(videos).search(q, 10)
    r16, s16 = build(videos, storage=storage).search(q, 10)
    _, _, s = brute_force(videos, q, 10)
    assert_same_ranking(r16, s16, r32, s32, s)


@pytest.mark.parametrize("storage", ["float32", "float16", "int16"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, storage, mmap):
    rng = np.random.default_rng(7)
    videos = make_videos(rng, lengths=(120, 80))
    index = build(videos, storage=storage)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    before = index.search(q, 15, exclude_video="v1")
    out = index.save(tmp_path / "idx")
    loaded = FrameIndex.load(out, mmap=mmap)
    assert loaded.videos == index.videos and len(loaded) == 200 and loaded.storage == storage
    assert loaded.video_path("v0") == "/videos/v0.mp4"
    after = loaded.search(q, 15, exclude_video="v1")
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    e, t = loaded.get("v1")
    np.testing.assert_allclose(e, videos["v1"], atol=1e-6)
    np.testing.assert_allclose(t, np.arange(80) / 25)
    # a loaded (possibly memory-mapped) index takes more videos and can be saved over itself
    extra = unit(rng.standard_normal((30, 16)))
    loaded.add("v2", extra, np.arange(30.0))
    assert loaded.query(extra[3], 1)[0][0].video_id == "v2"
    loaded.save(out)
    again = FrameIndex.load(out)
    assert again.videos == ["v0", "v1", "v2"] and len(again) == 230
    # only the arrays named by the manifest remain
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", *manifest["files"].values()])


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="manifest.json is missing"):
        FrameIndex.load(tmp_path)
    rng = np.random.default_rng(8)
    out = build(make_videos(rng, lengths=(10,))).save(tmp_path / "idx")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / manifest["files"]["times"]).unlink()
    with pytest.raises(DataError, match="incomplete or corrupt"):
        FrameIndex.load(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        FrameIndex.load(out)
    (out / "manifest.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DataError, match="not a CARL Studio frame index"):
        FrameIndex.load(out)


def test_errors_say_what_to_do():
    rng = np.random.default_rng(9)
    index = FrameIndex()
    with pytest.raises(DataError, match="empty"):
        index.query(np.ones(16), 5)
    index.add("a", rng.standard_normal((20, 16)), np.arange(20.0))
    with pytest.raises(DataError, match="dimension 8 but the index holds 16-d"):
        index.add("b", rng.standard_normal((20, 8)), np.arange(20.0))
    with pytest.raises(DataError, match="queries have dimension 8"):
        index.query(np.ones(8), 5)
    bad = rng.standard_normal((5, 16))
    bad[2, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        index.add("c", bad, np.arange(5.0))
    with pytest.raises(DataError, match="NaN"):
        index.query(bad, 3)
    with pytest.raises(DataError, match="all-zero"):
        index.add("c", np.zeros((3, 16)), np.arange(3.0))
    with pytest.raises(DataError, match="one timestamp per frame"):
        index.add("c", rng.standard_normal((5, 16)), np.arange(4.0))
    with pytest.raises(DataError, match="non-empty"):
        index.add("c", np.zeros((0, 16)), np.zeros(0))
    with pytest.raises(DataError, match="not in the index"):
        index.query(np.ones(16), 3, exclude_video="nope")
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        index.query(np.ones(16), 0)
    with pytest.raises(ConfigError, match="one per query"):
        index.query(np.ones((3, 16)), 2, exclude_window=[("a", 1, 1)] * 2)
    with pytest.raises(ConfigError, match="storage"):
        FrameIndex(storage="int8")  # type: ignore[arg-type]
    assert issubclass(DataError, CarlError)
    assert len(index) == 20 and index.videos == ["a"]  # failed adds left the index untouched


@pytest.mark.parametrize("storage", ["float32", "int16"])
def test_search_memory_is_bounded_by_the_chunk_budget(storage):
    import tracemalloc

    rng = np.random.default_rng(10)
    videos = {f"v{i}": unit(rng.standard_normal((10_000, 16))) for i in range(5)}
    index = build(videos, storage=storage, max_chunk_bytes=1 << 20)
    q = rng.standard_normal((64, 16)).astype(np.float32)
    tracemalloc.start()
    try:
        index.search(q, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    full_scores = 64 * 50_000 * 4  # what scoring all frames at once would hold: 12.8 MB
    assert peak < 3 << 20 < full_scores


@pytest.mark.parametrize("storage", ["float32", "int16"])
def test_merged_shards_equal_one_index(storage):
    rng = np.random.default_rng(7)
    videos = {f"v{i}.mp4": (rng.normal(size=(20 + i, 16)) * 3, np.arange(20 + i) / 10) for i in range(5)}
    whole = FrameIndex(storage=storage)
    for vid, (e, t) in videos.items():
        whole.add(vid, e, t, path=f"/data/{vid}")
    shards = [FrameIndex(storage=storage) for _ in range(2)]
    for i, (vid, (e, t)) in enumerate(videos.items()):
        shards[i % 2].add(vid, e, t, path=f"/data/{vid}")
    merged = FrameIndex(storage=storage)
    for i, vid in enumerate(videos):
        merged.merge(shards[i % 2], [vid])
    assert merged.videos == whole.videos
    for vid in videos:
        assert merged.video_path(vid) == whole.video_path(vid)
        for a, b in zip(merged.get(vid), whole.get(vid)):
            assert np.array_equal(a, b)
    q = rng.normal(size=(6, 16))
    for a, b in zip(merged.search(q, k=9), whole.search(q, k=9)):
        assert np.array_equal(a, b)
    with pytest.raises(DataError, match="already in the index"):
        merged.merge(shards[0])
    merged.merge(shards[1], replace=True)  # v1, v3 move to the end, as add(replace=True) moves them
    assert merged.videos == ["v0.mp4", "v2.mp4", "v4.mp4", "v1.mp4", "v3.mp4"]
    other = FrameIndex()
    other.add("x.mp4", rng.normal(size=(3, 8)), np.arange(3.0))
    with pytest.raises(DataError, match="8-d"):
        merged.merge(other)
