"""Tests for carl_core.align: exactness against a plain dynamic programme and against a
re-typing of the authors' utils/dtw.py, path invariants, multiscale quality, recovery of a
known time warp, open begin/end, bands, frame mappings and bad input."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from carl_core import align, dtw_kernels
from carl_core.align import Alignment, FrameMapping, dtw, mapping_from_path, path_cost, write_alignment_json
from carl_core.errors import AlignmentError, CarlError, ConfigError

# ----------------------------------------------------------------------------- references


def plain_dtw(x, y, metric="sqeuclidean", band=None, begin=(False, False), end=(False, False), skip=0.0):
    """Textbook DTW over the full cost matrix; ``begin``/``end`` say whether A's / B's leading or
    trailing frames may be skipped (at ``skip`` each). Returns the optimal objective."""
    c = cdist(x, y, metric)
    n, m = c.shape
    d = np.full((n, m), np.inf)
    for i in range(n):
        for j in range(m):
            if band is not None and abs(j * (n - 1) - i * (m - 1)) > band * (n - 1):
                continue
            best = np.inf
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0 and begin[1]:
                best = skip * j
            elif j == 0 and begin[0]:
                best = skip * i
            if i > 0 and j > 0:
                best = min(best, d[i - 1, j - 1])
            if i > 0:
                best = min(best, d[i - 1, j])
            if j > 0:
                best = min(best, d[i, j - 1])
            d[i, j] = c[i, j] + best
    out = d[n - 1, m - 1]
    if end[1]:
        out = min(out, float((d[n - 1] + skip * (m - 1 - np.arange(m))).min()))
    if end[0]:
        out = min(out, float((d[:, m - 1] + skip * (n - 1 - np.arange(n))).min()))
    return float(out)


def authors_dtw(x, y, dist):
    """The authors' utils/dtw.py (after pierre-rouanet/dtw, warp=1), re-typed: a padded
    accumulated-cost matrix filled cell by cell, then a traceback that picks, among the
    diagonal, upper and left neighbours, the first minimum. Returns (cost, path_a, path_b)."""
    r, c = len(x), len(y)
    acc = np.zeros((r + 1, c + 1))
    acc[0, 1:] = np.inf
    acc[1:, 0] = np.inf
    acc[1:, 1:] = cdist(x, y, dist)
    for i in range(r):
        for j in range(c):
            acc[i + 1, j + 1] += min(acc[i, j], acc[i + 1, j], acc[i, j + 1])
    i, j = r - 1, c - 1
    pa, pb = [i], [j]
    while i > 0 or j > 0:
        step = int(np.argmin((acc[i, j], acc[i, j + 1], acc[i + 1, j])))
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
        pa.insert(0, i)
        pb.insert(0, j)
    return float(acc[r, c]), np.array(pa), np.array(pb)


def sides(v):
    """open_begin/open_end value -> (A trimmable, B trimmable)."""
    return (v in ("a", "both"), v in ("b", "both", True))


def check_path(al: Alignment, n: int, m: int) -> None:
    """Every path: equal lengths, unit steps, monotone, inside the matrix, right ends."""
    pa, pb = al.path_a, al.path_b
    assert pa.dtype.kind == "i" and pb.dtype.kind == "i"
    assert pa.shape == pb.shape and pa.ndim == 1 and len(al) == pa.shape[0] >= 1
    da, db = np.diff(pa), np.diff(pb)
    assert np.isin(da, (0, 1)).all() and np.isin(db, (0, 1)).all()
    assert ((da + db) > 0).all()
    assert pa.min() >= 0 and pa.max() < n and pb.min() >= 0 and pb.max() < m
    ba, bb = sides(al.open_begin)
    ea, eb = sides(al.open_end)
    start_ok = (pa[0] == 0 and pb[0] == 0) or (bb and pa[0] == 0) or (ba and pb[0] == 0)
    end_ok = (pa[-1] == n - 1 and pb[-1] == m - 1) or (eb and pa[-1] == n - 1) or (ea and pb[-1] == m - 1)
    assert start_ok and end_ok
    assert al.n_a == n and al.n_b == m


def trimmed(al: Alignment) -> int:
    return int(al.path_a[0] + al.path_b[0] + (al.n_a - 1 - al.path_a[-1]) + (al.n_b - 1 - al.path_b[-1]))


def smooth_traj(t, dim=32, seed=0, period=60.0, n_freq=6):
    """A smooth curve on the unit sphere at continuous frame times ``t``: stands in for
    the embeddings of a performed action."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.3, 1.0, n_freq) * 2 * np.pi / period
    ph = rng.uniform(0, 2 * np.pi, n_freq)
    w = rng.standard_normal((2 * n_freq, dim))
    t = np.asarray(t, dtype=float)
    e = np.concatenate([np.sin(np.outer(t, f) + ph), np.cos(np.outer(t, f) + ph)], 1) @ w
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def warp(m, n, seed=0, strength=0.12):
    """A strictly increasing map from B's m frames onto A's time axis [0, n-1]."""
    rng = np.random.default_rng(seed)
    u = np.linspace(0.0, 1.0, m)
    k = rng.uniform(-strength, strength, 3)
    w = u + sum(k[i] * np.sin((i + 1) * np.pi * u) / ((i + 1) * np.pi) for i in range(3))
    w = (w - w[0]) / (w[-1] - w[0]) * (n - 1)
    assert (np.diff(w) > 0).all()
    return w


def noisy(e, noise, seed):
    rng = np.random.default_rng(seed)
    e = e + noise * rng.standard_normal(e.shape) / math.sqrt(e.shape[1])
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- exactness


OPTIONS = [
    {},
    {"band": 2},
    {"band": 6},
    {"open_begin": True},
    {"open_end": "b"},
    {"open_begin": "b", "open_end": "b"},
    {"open_begin": "a", "open_end": "a"},
    {"open_begin": "a", "open_end": "b", "skip_cost": 0.7},
    {"open_begin": "both", "open_end": "both", "skip_cost": 1.5},
]


@pytest.mark.parametrize(
    "opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "closed"
)
@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_exact_equals_plain_dp(opts, metric):
    rng = np.random.default_rng(zlib.crc32(f"{metric}{opts}".encode()))
    for _ in range(12):
        n, m, d = int(rng.integers(2, 22)), int(rng.integers(2, 22)), int(rng.integers(1, 6))
        if "band" in opts:  # a band steeper than 2 * band + 1 cannot hold a path: widened, see below
            m = min(m, (2 * opts["band"] + 1) * (n - 1) + 1)
        x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
        al = dtw(x, y, metric=metric, method="exact", **opts)
        check_path(al, n, m)
        skip = opts.get("skip_cost", 0.0)
        want = plain_dtw(
            x,
            y,
            metric,
            band=opts.get("band"),
            begin=sides(opts.get("open_begin")),
            end=sides(opts.get("open_end")),
            skip=skip,
        )
        got = al.cost + skip * trimmed(al)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        # The reported cost is the path's own summed cost.
        assert path_cost(al.path_a, al.path_b, x, y, metric) == pytest.approx(al.cost, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
def test_exact_equals_authors_dtw_cost_and_path(metric):
    rng = np.random.default_rng(11)
    for k in range(60):
        n, m = int(rng.integers(2, 30)), int(rng.integers(2, 30))
        if k % 2 and metric == "sqeuclidean":
            # Small integers: exact ties everywhere, so the tie-breaking must match too.
            x = rng.integers(0, 3, (n, 2)).astype(float)
            y = rng.integers(0, 3, (m, 2)).astype(float)
        else:
            x, y = rng.standard_normal((n, 4)), rng.standard_normal((m, 4))
        cost, pa, pb = authors_dtw(x, y, metric)
        al = dtw(x, y, metric=metric, method="exact")
        assert al.cost == pytest.approx(cost, rel=1e-9, abs=1e-12)
        np.testing.assert_array_equal(al.path_a, pa)
        np.testing.assert_array_equal(al.path_b, pb)


def test_authors_example_one_dimensional_input():
    # The example in the authors' file, as 1-d sequences (accepted as (n, 1)).
    x = np.array([2, 0, 1, 1, 2, 4, 2, 1, 2, 0], dtype=float)
    y = np.array([1, 1, 2, 4, 2, 1, 2, 0], dtype=float)
    cost, pa, pb = authors_dtw(x[:, None], y[:, None], "sqeuclidean")
    al = dtw(x, y)
    assert al.cost == cost == 2.0
    np.testing.assert_array_equal(al.path_a, pa)
    np.testing.assert_array_equal(al.path_b, pb)


def test_strips_and_windows_on_a_larger_case_match_plain_dp():
    # Large enough that the rows are split over several BLAS strips.
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((90, 16)), rng.standard_normal((70, 16))
    old = align._STRIP_CELLS
    try:
        align._STRIP_CELLS = 500  # several rows per strip, many strips
        al = dtw(x, y, method="exact")
        al_band = dtw(x, y, method="exact", band=10)
    finally:
        align._STRIP_CELLS = old
    assert al.cost == pytest.approx(plain_dtw(x, y), rel=1e-9)
    assert al_band.cost == pytest.approx(plain_dtw(x, y, band=10), rel=1e-9)
    check_path(al, 90, 70)
    check_path(al_band, 90, 70)


# ----------------------------------------------------------------------------- multiscale


def test_multiscale_within_one_percent_of_exact():
    rng = np.random.default_rng(2)
    n, m = 1500, 1300
    cases = {
        "warped action": (
            smooth_traj(np.arange(n), seed=1),
            noisy(smooth_traj(warp(m, n, 1), seed=1), 0.8, 2),
        ),
        "white noise": (rng.standard_normal((n, 32)), rng.standard_normal((m, 32))),
    }
    for name, (x, y) in cases.items():
        for metric in ("sqeuclidean", "cosine"):
            exact = dtw(x, y, metric=metric, method="exact")
            # base_cells forces five levels of halving on this medium case.
            ms = dtw(x, y, metric=metric, method="multiscale", base_cells=10_000)
            check_path(ms, n, m)
            assert ms.method == "multiscale"
            assert exact.cost <= ms.cost * (1 + 1e-12)
            assert ms.cost <= 1.01 * exact.cost, (name, metric, ms.cost / exact.cost)
            assert path_cost(ms.path_a, ms.path_b, x, y, metric) == pytest.approx(ms.cost, rel=1e-9)


def test_multiscale_with_open_ends_and_band():
    n = 900
    x = smooth_traj(np.arange(n), seed=4)
    y = np.concatenate([noisy(np.tile(smooth_traj([1e4], seed=9), (150, 1)), 0.3, 1), noisy(x, 0.3, 2)])
    for kw in ({"open_begin": True, "open_end": True}, {"band": 200}):
        ex = dtw(x, y, method="exact", **kw)
        ms = dtw(x, y, method="multiscale", base_cells=5_000, **kw)
        check_path(ms, n, y.shape[0])
        assert ex.cost <= ms.cost * (1 + 1e-12) and ms.cost <= 1.01 * ex.cost


def test_auto_picks_multiscale_above_the_exact_budget():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((300, 8)), rng.standard_normal((250, 8))
    assert dtw(x, y).method == "exact"
    assert dtw(x, y, max_exact_cells=300 * 250 - 1, base_cells=2_000).method == "multiscale"
    # With a band, the budget counts only the band's cells.
    assert dtw(x, y, band=5, max_exact_cells=10_000).method == "exact"


def test_recovers_a_known_time_warp():
    """B is A re-timed by a known monotone warp plus noise; the mapping B -> A should land
    within a few frames of the true warp, exactly and with the multiscale method."""
    n, m = 1200, 1000
    w = warp(m, n, seed=3, strength=0.15)
    x = smooth_traj(np.arange(n), seed=3)
    y = noisy(smooth_traj(w, seed=3), 0.5, 4)
    report = {}
    for method in ("exact", "multiscale"):
        al = dtw(x, y, method=method, base_cells=10_000)
        fm = al.mapping(x, y)
        err = np.abs(fm.b_to_a - w)
        report[method] = (float(err.mean()), float(err.max()))
        assert err.mean() < 1.0 and err.max() <= 4.0, (method, err.mean(), err.max())
    print(f"\nknown-warp recovery error in frames (mean, max): {report}")


# ----------------------------------------------------------------------------- open ends, band


def test_open_begin_end_finds_the_action_inside_idle_padding():
    n, pre, post, m_act = 300, 120, 150, 260
    x = smooth_traj(np.arange(n), seed=6)
    act = noisy(smooth_traj(warp(m_act, n, 6), seed=6), 0.3, 7)
    idle_a = noisy(np.tile(smooth_traj([5e3], seed=8), (pre, 1)), 0.2, 8)
    idle_b = noisy(np.tile(smooth_traj([7e3], seed=10), (post, 1)), 0.2, 9)
    y = np.concatenate([idle_a, act, idle_b])
    al = dtw(x, y, open_begin=True, open_end=True)
    check_path(al, n, y.shape[0])
    assert al.path_a[0] == 0 and al.path_a[-1] == n - 1
    assert abs(al.path_b[0] - pre) <= 3 and abs(al.path_b[-1] - (pre + m_act - 1)) <= 3
    fm = al.mapping(x, y)
    assert not fm.covered_b[: pre - 3].any() and fm.covered_b[pre + 3 : pre + m_act - 3].all()
    assert fm.covered_a.all()
    closed = dtw(x, y)
    assert closed.path_b[0] == 0 and closed.cost > al.cost


def test_open_both_sides_trims_idle_of_each_performance():
    # A idles before the action, B after it: A's head and B's tail should be left out.
    n_act, pre, post = 240, 80, 120
    act_a = smooth_traj(np.arange(n_act), seed=12)
    x = np.concatenate([noisy(np.tile(smooth_traj([9e3], seed=13), (pre, 1)), 0.2, 1), act_a])
    act_b = noisy(smooth_traj(warp(220, n_act, 12), seed=12), 0.3, 2)
    y = np.concatenate([act_b, noisy(np.tile(smooth_traj([4e3], seed=14), (post, 1)), 0.2, 3)])
    al = dtw(x, y, open_begin="a", open_end="b", skip_cost=0.5)
    check_path(al, x.shape[0], y.shape[0])
    assert al.path_b[0] == 0 and abs(al.path_a[0] - pre) <= 3
    assert al.path_a[-1] == x.shape[0] - 1 and abs(al.path_b[-1] - 219) <= 3
    fm = al.mapping(x, y)
    assert (fm.a_to_b[: pre - 3] == 0).all() and not fm.covered_a[: pre - 3].any()


def test_open_ends_on_both_sides_cannot_degenerate():
    """The issue's case: B is A (re-encoded: a little noise) with other footage before and after.
    With open begin and end on both sides, a free skip let the path shrink to one cell, (0, 199)
    here; the default now aligns A inside B and B inside A and keeps the better fit."""
    x = smooth_traj(np.arange(120), seed=21)
    pre, post = smooth_traj(np.arange(40), seed=30), smooth_traj(np.arange(40), seed=31)
    y = np.concatenate([pre, noisy(x, 0.2, 5), post])
    truth = np.arange(120) + 40
    al = dtw(x, y, open_begin="both", open_end="both")
    got = al.mapping(x, y).a_to_b
    assert (al.open_begin, al.open_end) == ("b", "b") and len(al) >= 120
    assert np.abs(got - truth).max() <= 2 and (got == truth).mean() > 0.95
    # The other way round, B inside A: B is covered, A trimmed.
    al = dtw(y, x, open_begin="both", open_end="both")
    assert (al.open_begin, al.open_end) == ("a", "a")
    assert np.abs(al.mapping(y, x).b_to_a - truth).max() <= 2
    # Mixed sides are both-trimmable too; a free skip there is refused, a priced one still works.
    assert len(dtw(x, y, open_begin="a", open_end="b")) >= 120
    with pytest.raises(ConfigError, match="shrinks to one cell"):
        dtw(x, y, open_begin="both", open_end="both", skip_cost=0.0)
    assert len(dtw(x, y, open_begin="both", open_end="both", skip_cost=10.0)) >= 120


def test_open_ends_do_not_squeeze_a_video_onto_a_few_frames():
    """Where one video's frames all look alike (a golfer at address), the whole of the other can
    sit on one of its frames at a low cost per step; such a fit is refused (closed ends kept)."""
    x = smooth_traj(np.arange(100), seed=3, period=400)  # a slow movement: A's frames all alike
    centre = x.mean(0) / np.linalg.norm(x.mean(0))  # one frame of B close to all of them
    y = np.concatenate([smooth_traj(np.arange(60), seed=8), centre[None], smooth_traj(np.arange(60), seed=9)])
    al = dtw(x, y, open_begin="both", open_end="both")  # without the rule: all of A on frame 60
    span_b = al.path_b[-1] - al.path_b[0] + 1
    span_a = al.path_a[-1] - al.path_a[0] + 1
    assert align.MAX_WARP * span_b >= len(x) and align.MAX_WARP * span_a >= len(y)


@pytest.fixture(scope="module")
def padded_lite0(tmp_path_factory):
    """ImageNet Lite0 features of the synthetic padded pair (A inside B with 30 frames each side)."""
    from carl_core.embed import Embedder
    from carl_core.features import imagenet_features
    from tests.padded import synthetic_pair

    a, b = synthetic_pair(tmp_path_factory.mktemp("padded"))
    embedder = Embedder(imagenet_features(), cache_dir=False)
    return embedder.embed(a)[0], embedder.embed(b)[0]


def test_open_ends_put_every_frame_of_a_on_its_frame_inside_padded_b(padded_lite0):
    from tests.padded import PAD

    x, y = padded_lite0
    closed = dtw(x, y).mapping(x, y)
    fm = dtw(x, y, open_begin=True, open_end=True).mapping(x, y)
    both = dtw(x, y, open_begin="both", open_end="both").mapping(x, y)
    truth = np.arange(len(x)) + PAD
    for m in (fm, both):
        np.testing.assert_array_equal(m.a_to_b, truth)
        np.testing.assert_array_equal(np.flatnonzero(m.covered_b), truth)
    assert (closed.a_to_b != truth).any() and closed.covered_b.all()  # closed ends must match the padding


@pytest.mark.slow
def test_open_ends_on_a_real_squat_inside_other_footage(tmp_path):
    """245 frames of a real squat as A; B the same frames with 60 frames of push-ups before and 60
    after (lossless, so A's frames inside B are the same pixels): every frame lands on its own."""
    from carl_core.embed import Embedder
    from carl_core.features import imagenet_features
    from carl_core.video import read_video, write_video
    from tests.conftest import REAL_CLIPS

    if not REAL_CLIPS.is_dir():
        pytest.skip("the real clips (../shared/data/real_clips) are not here")
    squat, _ = read_video(REAL_CLIPS / "yuyoujiang__squat.mp4", size=(320, 180), indices=range(40, 285))
    other, _ = read_video(REAL_CLIPS / "tayyab__pushup2.mp4", size=(320, 180), indices=range(100, 220))
    a = write_video(tmp_path / "a.mp4", squat, 30, crf=0)
    b = write_video(tmp_path / "b.mp4", np.concatenate([other[:60], squat, other[60:]]), 30, crf=0)
    embedder = Embedder(imagenet_features(), cache_dir=False)
    x, y = embedder.embed(a)[0], embedder.embed(b)[0]
    fm = dtw(x, y, open_begin=True, open_end=True).mapping(x, y)
    assert (fm.a_to_b == np.arange(245) + 60).sum() == 245
    fm = dtw(x, y, open_begin="both", open_end="both").mapping(x, y)
    assert (fm.a_to_b == np.arange(245) + 60).sum() == 245


def test_band_limits_the_path():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((60, 8)), rng.standard_normal((60, 8))
    diag = dtw(x, y, band=0)
    np.testing.assert_array_equal(diag.path_a, np.arange(60))
    np.testing.assert_array_equal(diag.path_b, np.arange(60))
    x2 = rng.standard_normal((80, 8))
    al = dtw(x2, y, band=4)
    check_path(al, 80, 60)
    assert (np.abs(al.path_b * 79 - al.path_a * 59) <= 4 * 79).all()
    assert al.band == 4 and al.cost >= dtw(x2, y).cost
    # Too steep for the band (slope 19 > 2 * 1 + 1): widened just enough to hold a path.
    steep = dtw(x[:3], y[:39], band=1)
    check_path(steep, 3, 39)
    assert math.isinf(plain_dtw(x[:3], y[:39], band=1))


# ----------------------------------------------------------------------------- mappings, output


def test_frame_mapping_invariants():
    rng = np.random.default_rng(8)
    x = smooth_traj(np.arange(200), seed=2) * rng.uniform(0.5, 2.0, (200, 1))  # not unit length
    y = noisy(smooth_traj(warp(150, 200, 2), seed=2), 0.5, 3)
    for metric in ("sqeuclidean", "cosine"):
        al = dtw(x, y, metric=metric)
        fm = al.mapping(x, y)
        assert isinstance(fm, FrameMapping)
        assert fm.a_to_b.shape == (200,) and fm.b_to_a.shape == (150,)
        assert (np.diff(fm.a_to_b) >= 0).all() and (np.diff(fm.b_to_a) >= 0).all()
        cells = set(zip(al.path_a.tolist(), al.path_b.tolist()))
        assert all((i, int(j)) in cells for i, j in enumerate(fm.a_to_b))
        assert all((int(i), j) in cells for j, i in enumerate(fm.b_to_a))
        # Each frame keeps its cheapest match among its path cells.
        cost = cdist(x, y, metric)
        for i in range(200):
            js = al.path_b[al.path_a == i]
            assert cost[i, fm.a_to_b[i]] == pytest.approx(cost[i, js].min())
        xu = x / np.linalg.norm(x, axis=1, keepdims=True)
        np.testing.assert_allclose(fm.similarity_a, (xu * y[fm.a_to_b]).sum(1), atol=1e-12)
        np.testing.assert_allclose(fm.similarity_b, (xu[fm.b_to_a] * y).sum(1), atol=1e-12)
        assert fm.covered_a.all() and fm.covered_b.all()
        assert fm.similarity_a.mean() > 0.8


def test_alignment_and_mapping_serialise_to_json(tmp_path):
    x = smooth_traj(np.arange(40), seed=1)
    y = smooth_traj(np.arange(0, 40, 1.3), seed=1)
    al = dtw(x, y, metric="cosine")
    fm = mapping_from_path(al.path_a, al.path_b, x, y, metric="cosine")
    ta, tb = np.arange(40) / 30.0, np.arange(y.shape[0]) / 25.0
    out = tmp_path / "ALIGN.json"
    write_alignment_json(out, al, fm, ta, tb)
    assert [p.name for p in tmp_path.iterdir()] == ["ALIGN.json"]  # no temporary file left
    doc = json.loads(out.read_text())
    back = Alignment.from_dict(doc["alignment"])
    assert back.cost == al.cost and back.metric == "cosine" and back.method == "exact"
    np.testing.assert_array_equal(back.path_a, al.path_a)
    np.testing.assert_array_equal(back.path_b, al.path_b)
    mp = doc["mapping"]
    assert mp["a_to_b"] == fm.a_to_b.tolist() and len(mp["b_to_a"]) == y.shape[0]
    assert mp["a_to_b_time"] == pytest.approx(tb[fm.a_to_b].tolist())
    assert mp["b_to_a_time"] == pytest.approx(ta[fm.b_to_a].tolist())
    assert len(mp["similarity_a"]) == 40 and all(-1 <= s <= 1 for s in mp["similarity_b"])
    json.dumps(al.to_dict())
    with pytest.raises(AlignmentError, match="one time per frame"):
        fm.to_dict(ta[:-1], tb)


def test_progress_is_reported():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((120, 4)), rng.standard_normal((100, 4))
    calls = []
    dtw(x, y, method="exact", on_progress=lambda d, t, msg: calls.append((d, t, msg)))
    assert calls and calls[-1][0] == calls[-1][1] == 120
    calls.clear()
    dtw(x, y, method="multiscale", base_cells=1_000, on_progress=lambda d, t, msg: calls.append((d, t)))
    assert len(calls) >= 2 and calls[-1][0] == calls[-1][1]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((0, 8)), np.ones((5, 8)), "empty"),
        (np.ones((5, 8)), np.zeros((0, 8)), "empty"),
        (np.ones((1, 8)), np.ones((5, 8)), "one frame"),
        (np.ones((5, 8)), np.ones((5, 4)), "same model"),
        (np.ones((5, 8, 2)), np.ones((5, 8)), "shape"),
        (np.full((5, 8), "a"), np.ones((5, 8)), "dtype"),
        (np.ones((5, 0)), np.ones((5, 0)), "dimension 0"),
        ([[1.0, 2.0], [3.0]], np.ones((5, 2)), "array"),
    ],
)
def test_bad_sequences_raise_alignment_error(x, y, match):
    with pytest.raises(AlignmentError, match=match):
        dtw(x, y)


def test_nan_and_zero_vectors_are_named():
    y = np.ones((6, 4))
    x = np.ones((6, 4))
    x[3, 1] = np.nan
    with pytest.raises(AlignmentError, match="NaN or infinite .* frame 3"):
        dtw(x, y)
    x[3, 1] = np.inf
    with pytest.raises(AlignmentError, match="sequence A"):
        dtw(x, y, method="multiscale")
    z = np.ones((6, 4))
    z[2] = 0.0
    with pytest.raises(AlignmentError, match="all-zero embedding at frame 2"):
        dtw(np.ones((6, 4)), z, metric="cosine")
    assert issubclass(AlignmentError, CarlError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": "euclid"},
        {"method": "fast"},
        {"band": -1},
        {"band": 2.5},
        {"radius": 0},
        {"skip_cost": -1.0},
        {"skip_cost": float("nan")},
        {"skip_cost": "1"},
        {"band": "3"},
        {"band": float("inf")},
        {"radius": True},
        {"open_begin": "left"},
        {"open_end": 3},
    ],
)
def test_bad_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        dtw(np.ones((5, 3)), np.ones((6, 3)), **kwargs)


def test_bad_paths_raise_alignment_error():
    x, y = np.eye(4), np.eye(4)
    with pytest.raises(AlignmentError, match="step"):
        mapping_from_path([0, 2, 3], [0, 1, 3], x, y)
    with pytest.raises(AlignmentError, match="outside"):
        mapping_from_path([0, 1, 4], [0, 1, 2], x, y)
    with pytest.raises(AlignmentError, match="equal length"):
        path_cost([0, 1], [0], x, y)
    with pytest.raises(ConfigError):
        mapping_from_path([0, 1], [0, 1], x, y, metric="l1")


def test_compiles_without_a_writable_cache(monkeypatch):
    # Numba refuses cache=True where no cache folder is writable; _jit must still compile.
    real = dtw_kernels.numba.njit

    def njit(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **kwargs)

    monkeypatch.setattr(dtw_kernels.numba, "njit", njit)

    def add(a, b):
        return a + b

    assert dtw_kernels._jit(add)(2, 3) == 5
