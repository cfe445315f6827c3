"""2-D maps: seeded UMAP, sampling above the size limit, PCA fallback, content cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

import carl_core.projection as projection
from carl_core.errors import ConfigError, DataError
from carl_core.projection import ProjectionResult, pca, project

FAST = {"n_epochs": 30}  # few epochs: the tests check structure, not polish


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def two_actions(rng: np.random.Generator, per_video=(90, 60, 80, 70), dim=128) -> list[np.ndarray]:
    """Four videos: the first two show action A, the others action B. Frames of one action lie
    along a smooth path around that action's centre, as frame embeddings of a video do."""
    centres = 4 * rng.standard_normal((2, dim))
    videos = []
    for i, t in enumerate(per_video):
        path = np.cumsum(0.15 * rng.standard_normal((t, dim)), axis=0)
        videos.append(unit(centres[i // 2] + path + 0.3 * rng.standard_normal((t, dim))))
    return videos


def labels_of(videos: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.full(len(v), i // 2) for i, v in enumerate(videos)])


def separated(coords: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose nearest other point on the map shows the same action."""
    d = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((labels[d.argmin(axis=1)] == labels).mean())


def gap_ratio(coords: np.ndarray, labels: np.ndarray) -> float:
    """Closest approach of the two actions over the typical distance to a point's neighbour."""
    d = np.sqrt(((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d[labels[:, None] != labels[None, :]].min() / np.median(d.min(axis=1)))


def test_umap_is_seeded_and_keeps_actions_apart():
    rng = np.random.default_rng(0)
    videos = two_actions(rng)
    a = project(videos, seed=3, **FAST)
    assert isinstance(a, ProjectionResult)
    assert a.method == "umap" and a.note == "" and a.fitted_on == 300 and not a.from_cache
    assert a.coords.shape == (300, 2) and a.coords.dtype == np.float32 and np.isfinite(a.coords).all()
    assert [len(c) for c in a.per_video()] == [90, 60, 80, 70]
    np.testing.assert_array_equal(a.per_video()[2], a.coords[150:230])
    b = project(videos, seed=3, **FAST)
    np.testing.assert_array_equal(a.coords, b.coords)
    c = project(videos, seed=4, **FAST)
    assert not np.allclose(a.coords, c.coords)
    labels = labels_of(videos)
    assert separated(a.coords, labels) == 1.0
    assert gap_ratio(a.coords, labels) > 5
    # neighbourhoods on the map are neighbourhoods in the embedding space
    assert trustworthiness(np.concatenate(videos), a.coords, n_neighbors=10) > 0.9


def test_neighbour_graph_is_exact():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((700, 12)).astype(np.float32)
    d = np.sqrt(((base[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(-1))
    idx, dist = projection._knn(base, base, 8, self_first=True, max_bytes=1 << 16)  # many chunks
    np.testing.assert_array_equal(idx[:, 0], np.arange(700))  # each point is its own first neighbour
    np.testing.assert_array_equal(dist[:, 0], 0)
    np.testing.assert_array_equal(idx, np.argsort(d, axis=1, kind="stable")[:, :8])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :8], atol=1e-4)
    queries = rng.standard_normal((50, 12)).astype(np.float32)
    dq = np.sqrt(((queries[:, None, :].astype(np.float64) - base[None, :, :]) ** 2).sum(-1))
    idx, _ = projection._knn(queries, base, 5)
    np.testing.assert_array_equal(idx, np.argsort(dq, axis=1)[:, :5])
    # still frames repeat: many exact ties around the k-th distance
    still = np.repeat(base[:30], 40, axis=0)
    _, dist = projection._knn(queries, still, 15)
    d_still = np.sqrt(((queries[:, None, :].astype(np.float64) - still[None, :, :]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, np.sort(d_still, axis=1)[:, :15], atol=1e-4)


def test_above_the_limit_fits_a_sample_and_places_the_rest():
    rng = np.random.default_rng(1)
    videos = two_actions(rng, per_video=(150, 100, 120, 130))
    seen = []
    res = project(videos, max_fit=120, on_progress=lambda d, t, m: seen.append((d, t, m)), **FAST)
    assert res.method == "umap" and res.fitted_on == 120
    assert "sample of 120 of 500 frames" in res.note and "380" in res.note
    assert res.coords.shape == (500, 2) and np.isfinite(res.coords).all()
    assert separated(res.coords, labels_of(videos)) == 1.0
    assert gap_ratio(res.coords, labels_of(videos)) > 5
    again = project(videos, max_fit=120, **FAST)
    np.testing.assert_array_equal(res.coords, again.coords)
    # progress: stages in order, ending complete, with the placement step announced
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)
    assert seen[-1][0] == seen[-1][1]
    assert any("placing 380" in m for _, _, m in seen)


def test_cache_returns_the_same_map_without_recomputing(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    videos = two_actions(rng, per_video=(40, 40, 40, 40))
    calls = []
    real = projection._umap
    monkeypatch.setattr(projection, "_umap", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = project(videos, cache_dir=tmp_path, **FAST)
    files = list(tmp_path.glob("proj-*.npz"))
    assert len(calls) == 1 and len(files) == 1 and not first.from_cache
    mtime = files[0].stat().st_mtime_ns
    second = project(videos, cache_dir=tmp_path, **FAST)
    assert len(calls) == 1 and second.from_cache
    np.testing.assert_array_equal(first.coords, second.coords)
    assert (second.method, second.fitted_on, second.note, second.splits) == (
        first.method,
        first.fitted_on,
        first.note,
        first.splits,
    )
    assert files[0].stat().st_mtime_ns == mtime
    # other content, other parameters or another split into videos are other maps
    project(videos, cache_dir=tmp_path, seed=1, **FAST)
    changed = [v.copy() for v in videos]
    changed[0][0, 0] += 1e-3
    project(changed, cache_dir=tmp_path, **FAST)
    project([np.concatenate(videos)], cache_dir=tmp_path, **FAST)
    assert len(calls) == 4 and len(list(tmp_path.glob("proj-*.npz"))) == 4
    assert not list(tmp_path.glob("*.tmp"))
    # a damaged entry is recomputed and rewritten
    files[0].write_bytes(b"not a zip")
    third = project(videos, cache_dir=tmp_path, **FAST)
    assert len(calls) == 5 and not third.from_cache
    np.testing.assert_array_equal(third.coords, first.coords)
    assert project(videos, cache_dir=tmp_path, **FAST).from_cache


def test_pca_is_the_instant_deterministic_fallback(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 32)).astype(np.float32) * np.linspace(3, 0.1, 32, dtype=np.float32)
    res = project(x, method="pca")
    assert res.method == "pca" and res.fitted_on == 500 and res.note == "" and res.splits == (500,)
    # same span as the top two right singular vectors, axes up to sign
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    ref = centred @ vt[:2].T
    np.testing.assert_allclose(np.abs(res.coords), np.abs(ref), atol=1e-3)
    assert res.coords[:, 0].var() > res.coords[:, 1].var()
    np.testing.assert_array_equal(project(x, method="pca").coords, res.coords)
    # a 1-d input gives a zero second axis rather than failing
    assert np.all(pca(x[:, :1], 2)[:, 1] == 0)
    # too few frames for a neighbour graph
    tiny = project(x[:5])
    assert tiny.method == "pca" and "too few for UMAP" in tiny.note and tiny.coords.shape == (5, 2)
    # umap-learn missing
    monkeypatch.setitem(sys.modules, "umap", None)
    nou = project(x[:50])
    assert nou.method == "pca" and "pip install umap-learn" in nou.note


def test_bad_input_is_refused_with_a_reason():
    rng = np.random.default_rng(4)
    with pytest.raises(DataError, match="no embeddings"):
        project([])
    with pytest.raises(DataError, match="no frames"):
        project(np.zeros((0, 8)))
    with pytest.raises(DataError, match="different dimensions"):
        project([rng.standard_normal((20, 8)), rng.standard_normal((20, 16))])
    bad = rng.standard_normal((20, 8))
    bad[3, 1] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        project(bad, method="pca")
    with pytest.raises(DataError, match=r"\(frames, dim\)"):
        project(rng.standard_normal(20))
    with pytest.raises(ConfigError, match="'umap' or 'pca'"):
        project(rng.standard_normal((20, 8)), method="tsne")
    with pytest.raises(ConfigError, match="max_fit"):
        project(rng.standard_normal((20, 8)), max_fit=3)
