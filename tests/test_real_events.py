"""The events labelled by eye on real clips, and the harness's event mapping (benchmarks/real_pairs.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks import real_pairs as rp
from benchmarks.eval_real import joint_angles
from carl_core.skeleton import MIRROR
from tests.conftest import REAL_CLIPS


@pytest.fixture(scope="module")
def labels() -> rp.Labels:
    return rp.load_labels()


def test_labels_are_well_formed(labels):
    assert rp.check_labels(labels) == []
    assert len(labels.pairs) >= 10
    golf = next(p for p in labels.pairs if p.name == "golf_two_golfers")
    assert len(labels.pair_events(golf)) >= 5
    # every clip the brief names is used, and each pair compares two different segments
    clips = {labels.segments[s].clip for p in labels.pairs for s in (p.a, p.b)}
    assert {"golfdb__test_video.mp4", "cosc428__reference_video.mp4", "jtnicastro__pushup.mp4"} <= clips
    assert all(p.a != p.b for p in labels.pairs)


@pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason="the real clips (../shared) are not beside this checkout")
def test_labels_fit_the_clips(labels):
    assert rp.check_labels(labels, REAL_CLIPS) == []


def test_check_labels_finds_mistakes(labels):
    seg = labels.segments["yuy_rep1"]
    outside = dataclasses.replace(seg.events["bottom"], frame=seg.end)
    bad = dataclasses.replace(seg, events={**seg.events, "bottom": outside})
    pair = rp.Pair("x", "yuy_rep1", "ikram_side1", ("bottom", "no_such_event", "standing"))
    broken = rp.Labels({**labels.segments, "yuy_rep1": bad}, [*labels.pairs, pair], labels.clips)
    problems = "\n".join(rp.check_labels(broken))
    assert f"event bottom at {seg.end} is outside" in problems
    assert "event no_such_event is missing from segment yuy_rep1" in problems


def test_tolerance_is_the_label_or_a_tenth_of_a_second():
    assert rp.tolerance(1, 30.0) == 3
    assert rp.tolerance(1, 29.97) == 3
    assert rp.tolerance(5, 30.0) == 5
    assert rp.tolerance(2, 59.94) == 6
    assert rp.tolerance(2, 10.0) == 2
    assert rp.tolerance(0, 10.0) == 1


def test_carry_events_reads_the_mapping_both_ways():
    a_to_b = np.clip(np.arange(50) * 2 + 1, 0, 99)  # B is A slowed down twice, one frame late
    b_to_a = np.clip((np.arange(100) - 1) // 2, 0, 49)
    hits = rp.carry_events(a_to_b, b_to_a, ["e1", "e2"], [10, 30], [21, 70], [3, 3], [3, 3])
    by = {(h.event, h.direction): h for h in hits}
    assert by["e1", "a->b"].mapped == 21 and by["e1", "a->b"].landed
    assert by["e1", "b->a"].mapped == 10 and by["e1", "b->a"].landed
    assert by["e2", "a->b"].mapped == 61 and by["e2", "a->b"].error == 9 and not by["e2", "a->b"].landed
    assert by["e2", "a->b"].error_pct == pytest.approx(9.0)  # % of B's 100 frames
    s = rp.summarise(hits)
    assert s["landed"] == pytest.approx(0.5) and s["events"] == 4


def _curve(s: np.ndarray, seed: int = 3) -> np.ndarray:
    """Unit vectors along a smooth curve that never comes back on itself (s in [0, 1])."""
    rng = np.random.default_rng(seed)
    freq, phase = rng.uniform(1.0, 4.0, 24), rng.uniform(0, 2 * np.pi, 24)
    x = np.cos(np.outer(s, freq) + phase)
    x[:, 0] = 4 * s  # progress: nothing repeats
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_events_survive_a_known_warp():
    n = 150
    pos = rp.warp_positions(n, seed=rp.stable_seed("synthetic"))
    where_in_b, source_of_b = rp.true_warp_maps(pos, n)
    x, y = _curve(np.arange(n) / (n - 1)), _curve(pos / (n - 1))
    frames_a = [10, 40, 75, 120, 140]
    frames_b = [int(round(where_in_b[f])) for f in frames_a]
    names = [f"e{f}" for f in frames_a]
    hits = rp.align_and_carry(x, y, names, frames_a, frames_b, [1] * 5, [1] * 5)
    assert len(hits) == 10
    assert all(h.landed for h in hits), [(h.event, h.direction, h.true, h.mapped) for h in hits]
    # the check can fail: B played backwards puts the events elsewhere
    back = rp.align_and_carry(x, y[::-1], names, frames_a, frames_b, [1] * 5, [1] * 5)
    assert rp.summarise(back)["landed"] < 0.5


def test_warp_positions_are_a_smooth_monotone_warp():
    n = 300
    pos = rp.warp_positions(n, seed=7)
    step = np.diff(pos)
    assert pos[0] == 0 and pos[-1] == pytest.approx(n - 1)
    assert step.min() >= 0.6 - 1e-9 and step.max() <= 1.6 * (1 + 1.6 / n)
    assert step.max() - step.min() > 0.8  # it really changes speed
    where_in_b, source_of_b = rp.true_warp_maps(pos, n)
    assert np.allclose(np.interp(where_in_b, np.arange(len(pos)), source_of_b), np.arange(n))


def test_joint_angles_are_unit_rows_and_fill_missing_frames():
    rng = np.random.default_rng(0)
    world = rng.normal(size=(6, 33, 4)).astype(np.float32)
    world[2] = np.nan  # nobody found in frame 2
    f = joint_angles(world)
    assert f.shape[0] == 6 and np.isfinite(f).all()
    assert np.allclose(np.linalg.norm(f, axis=1), 1, atol=1e-5)
    assert np.allclose(f[2], (f[1] + f[3]) / 2, atol=0.3)  # between its neighbours
    rotated = world.copy()
    c, s = np.cos(0.7), np.sin(0.7)  # a camera turned about the vertical: angles stay put
    rotated[..., 0], rotated[..., 2] = (
        c * world[..., 0] + s * world[..., 2],
        -s * world[..., 0] + c * world[..., 2],
    )
    assert np.allclose(joint_angles(rotated), f, atol=1e-5)
    assert np.isfinite(joint_angles(np.full((4, 33, 4), np.nan))).all()
    swapped = world[:, MIRROR]  # left and right landmarks trade names
    assert not np.allclose(joint_angles(swapped), f, atol=1e-3)
    assert np.allclose(joint_angles(swapped, symmetric=True), joint_angles(world, symmetric=True), atol=1e-6)
