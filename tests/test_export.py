"""The aligned side-by-side export: B follows A through the mapping, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from carl_core.align import Alignment, FrameMapping
from carl_core.errors import AlignmentError, ConfigError
from carl_core.export import export_alignment, plan_timeline, write_side_by_side
from carl_core.video import open_video, probe_video, read_video, write_video
from tests import barcode


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
                             b_to_a=b_to_a, confidence=np.linspace(0, 1, 60))  # fmt: skip
    frames, _ = read_video(out)
    assert len(frames) == 60
    np.testing.assert_allclose(frames[:, 40:, 76:132].mean(axis=(1, 2, 3)), 4 * np.arange(60), atol=3)
    np.testing.assert_allclose(frames[:, 40:, 4:60].mean(axis=(1, 2, 3)), 8 * b_to_a, atol=3)


def test_export_rejects_bad_settings(tmp_path):
    a = _flat_video(tmp_path / "a.mp4", [10] * 5)
    with pytest.raises(ConfigError, match="height"):
        write_side_by_side(tmp_path / "x.mp4", a, a, [0] * 5, np.arange(5) / 10, np.arange(5) / 10, height=3)
    assert not (tmp_path / "x.mp4").exists()


def test_plan_without_fps_shows_each_leading_frame_once():
    ta = np.array([0.0, 0.1, 0.2, 0.3])
    frames = np.array([0.0, 0.033, 0.066, 0.1, 0.15, 0.2, 0.25, 0.3])  # all decoded frames of A
    out_a, out_b, lead = plan_timeline([0, 2, 4, 6], ta, np.arange(8) / 20, frame_times=frames)
    np.testing.assert_array_equal(out_a, frames)
    np.testing.assert_array_equal(lead, [0, 0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_allclose(out_b[[0, 3, 5, 7]], [0.0, 0.1, 0.2, 0.3])


def _known_pair(tmp_path, n_a=40, n_b=60):
    """A barcode clip whose frame timing hiccups half-way (nominal rate 29.6, frames 1/30 s apart
    around it) and a plain one; B is A at two thirds of its speed."""
    a = barcode.write_clip(tmp_path / "a.mp4", n_a, hiccup_at=n_a // 2)
    b = barcode.write_clip(tmp_path / "b.mp4", n_b, tint=200)
    a_to_b = np.minimum(np.arange(n_a) * 3 // 2, n_b - 1)
    b_to_a = np.minimum(np.arange(n_b) * 2 // 3, n_a - 1)
    path_a = np.repeat(np.arange(n_a), np.diff(np.r_[a_to_b, n_b]))
    path_b = np.arange(n_b)
    ones_a, ones_b = np.ones(n_a), np.ones(n_b)
    mapping = FrameMapping(a_to_b, b_to_a, ones_a, ones_b, ones_a > 0, ones_b > 0)
    alignment = Alignment(0.0, path_a, path_b, n_a, n_b, "sqeuclidean", "exact")
    return a, b, alignment, mapping


@pytest.mark.parametrize("timeline", ["a", "b"])
def test_every_exported_frame_is_the_right_frame(tmp_path, timeline):
    """Decoded barcodes: the leading video shows each of its frames exactly once, in order, and
    the other side the frame it is matched to, even where the file's nominal rate is not the
    spacing of its frames (the app's download showed A's frame 0 twice and never the last)."""
    a, b, alignment, mapping = _known_pair(tmp_path)
    ta, tb = open_video(a).timestamps, open_video(b).timestamps
    out = export_alignment(tmp_path / f"sbs_{timeline}.mp4", a, b, alignment, mapping, ta, tb,
                           timeline=timeline, height=barcode.SIZE)  # fmt: skip
    shown_a, shown_b = barcode.read_export(out)
    if timeline == "a":
        np.testing.assert_array_equal(shown_a, np.arange(40))
        np.testing.assert_array_equal(shown_b, mapping.a_to_b)
    else:
        np.testing.assert_array_equal(shown_b, np.arange(60))
        np.testing.assert_array_equal(shown_a, mapping.b_to_a)


def test_a_grid_rate_samples_the_nearest_frames(tmp_path):
    a, b, alignment, mapping = _known_pair(tmp_path)
    ta, tb = open_video(a).timestamps, open_video(b).timestamps
    # 14 per second: no output time falls half-way between two frames, before or after the hiccup.
    out = export_alignment(
        tmp_path / "sbs.mp4", a, b, alignment, mapping, ta, tb, fps=14.0, height=barcode.SIZE
    )
    shown_a, _ = barcode.read_export(out)
    assert len(shown_a) == 19  # 1.32 s at 14 per second
    want = [int(np.argmin(np.abs(ta - t))) for t in np.arange(19) / 14]
    np.testing.assert_array_equal(shown_a, want)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    from tests.e2e.studio import make_test_model

    return str(make_test_model(tmp_path_factory.mktemp("export") / "model.pt"))


@pytest.mark.parametrize("timeline", ["a", "b"])
def test_cli_export_shows_every_frame_of_the_leader_and_its_match(tiny_model, tmp_path, timeline):
    """``carl align --export`` on the barcode clips, every frame embedded: frame k of the output
    shows the leader's frame k and the frame of the other that the JSON's mapping gives."""
    import json

    from carl_core.cli import main

    a = barcode.write_clip(tmp_path / "a.mp4", 40, hiccup_at=20)
    b = barcode.write_clip(tmp_path / "b.mp4", 60, tint=200)
    doc, mp4 = tmp_path / "align.json", tmp_path / "sbs.mp4"
    argv = ["align", str(a), str(b), "--checkpoint", tiny_model, "--out", str(doc), "--fps", "all"]
    argv += ["--no-cache", "--export", str(mp4), "--height", str(barcode.SIZE), "--timeline", timeline]
    assert main(argv) == 0
    mapping = json.loads(doc.read_text())["mapping"]
    shown_a, shown_b = barcode.read_export(mp4)
    if timeline == "a":
        np.testing.assert_array_equal(shown_a, np.arange(40))
        np.testing.assert_array_equal(shown_b, mapping["a_to_b"])
    else:
        np.testing.assert_array_equal(shown_b, np.arange(60))
        np.testing.assert_array_equal(shown_a, mapping["b_to_a"])
