"""The aligned side-by-side export: B follows A through the mapping, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from carl_core.errors import AlignmentError, ConfigError
from carl_core.export import plan_timeline, write_side_by_side
from carl_core.video import probe_video, read_video, write_video


def _flat_video(path, values, fps=10.0, size=64):
    """Frames of one grey level each, so a decoded frame tells which frame it was."""
    write_video(path, (np.full((size, size, 3), v, np.uint8) for v in values), fps)
    return path


def test_plan_follows_a_known_warp_and_never_goes_back():
    ta = np.arange(20) / 10.0  # A embedded at 10 fps for 2 s
    tb = np.arange(40) / 10.0  # B twice as long: the same action at half speed
    a_to_b = np.minimum(2 * np.arange(20), 39)
    out_a, out_b, lead = plan_timeline(a_to_b, ta, tb, timeline="a", fps=30.0)
    assert len(out_a) == 58 and out_a[0] == 0 and out_a[-1] == pytest.approx(1.9)
    np.testing.assert_allclose(out_b, 2 * out_a, atol=1e-9)  # interpolated between embedded frames
    assert np.all(np.diff(out_b) >= 0)
    np.testing.assert_array_equal(lead, np.floor(out_a * 10 + 1e-9).astype(int))
    # B leading: the inverse warp.
    b_to_a = np.arange(40) // 2
    out_a2, out_b2, _ = plan_timeline(a_to_b, ta, tb, timeline="b", b_to_a=b_to_a, fps=10.0)
    assert len(out_b2) == 40
    np.testing.assert_allclose(out_a2, ta[b_to_a], atol=1e-9)
    # Along the path: one frame per step.
    pa, pb = np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2])
    out_a3, out_b3, _ = plan_timeline(a_to_b, ta, tb, timeline="path", path=(pa, pb), fps=10.0)
    np.testing.assert_allclose(out_a3, ta[pa])
    np.testing.assert_allclose(out_b3, tb[pb])


def test_plan_rejects_what_does_not_fit():
    ta, tb = np.arange(5) / 10, np.arange(5) / 10
    with pytest.raises(AlignmentError, match="one match per frame"):
        plan_timeline([0, 1], ta, tb, fps=10)
    with pytest.raises(AlignmentError, match="outside"):
        plan_timeline([0, 1, 2, 3, 9], ta, tb, fps=10)
    with pytest.raises(ConfigError, match="needs b_to_a"):
        plan_timeline([0, 1, 2, 3, 4], ta, tb, fps=10, timeline="b")
    with pytest.raises(ConfigError, match="timeline"):
        plan_timeline([0, 1, 2, 3, 4], ta, tb, fps=10, timeline="c")
    with pytest.raises(AlignmentError, match="sorted"):
        plan_timeline([0, 1, 2, 3, 4], ta[::-1], tb, fps=10)


def test_exported_b_side_shows_the_mapped_frame(tmp_path):
    # A: 30 frames at 10 fps, grey level 8*i. B: 60 frames at 10 fps, grey level 4*j: B is A
    # slowed down twice, so frame i of A matches frame 2i of B.
    a = _flat_video(tmp_path / "a.mp4", [8 * i for i in range(30)])
    b = _flat_video(tmp_path / "b.mp4", [4 * j for j in range(60)])
    ta, tb = np.arange(30) / 10.0, np.arange(60) / 10.0
    a_to_b = 2 * np.arange(30)
    out = write_side_by_side(tmp_path / "sbs.mp4", a, b, a_to_b, ta, tb, height=64, gap=8)
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height, info.fps) == (30, 136, 64, 10.0)
    frames, _ = read_video(out)
    left = frames[:, 40:, 4:60].mean(axis=(1, 2, 3))  # below the label band
    right = frames[:, 40:, 76:132].mean(axis=(1, 2, 3))
    np.testing.assert_allclose(left, 8 * np.arange(30), atol=3)
    np.testing.assert_allclose(right, 4 * (2 * np.arange(30)), atol=3)

    # B leading: every frame of B, A showing the frame B's frame maps to.
    b_to_a = np.arange(60) // 2
    out = write_side_by_side(tmp_path / "sbs_b.mp4", a, b, a_to_b, ta, tb, height=64, timeline="b",
                             b_to_a=b_to_a, similarity=np.linspace(0, 1, 60))  # fmt: skip
    frames, _ = read_video(out)
    assert len(frames) == 60
    np.testing.assert_allclose(frames[:, 40:, 76:132].mean(axis=(1, 2, 3)), 4 * np.arange(60), atol=3)
    np.testing.assert_allclose(frames[:, 40:, 4:60].mean(axis=(1, 2, 3)), 8 * b_to_a, atol=3)


def test_export_rejects_bad_settings(tmp_path):
    a = _flat_video(tmp_path / "a.mp4", [10] * 5)
    with pytest.raises(ConfigError, match="height"):
        write_side_by_side(tmp_path / "x.mp4", a, a, [0] * 5, np.arange(5) / 10, np.arange(5) / 10, height=3)
    assert not (tmp_path / "x.mp4").exists()
