"""Pose extraction: agreement with MediaPipe's own output, tracking, gaps, cache, crop box, bad input.

The reference landmarks in ../shared/data/real_clips_pose were made by MediaPipe's legacy
``solutions.pose`` (video mode, smoothing on, every frame from the first, pretending 30 frames/s).
Comparisons run our pipeline the same way over the first frames of a clip (``smoothing_fps=30``,
no gap filling), so both have the same history.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from carl_core import pose as pose_mod
from carl_core.cli import main
from carl_core.errors import ConfigError, DataError, VideoError
from carl_core.pose import PoseExtractor, estimate_image, extract_pose, parse_crop
from carl_core.skeleton import DETECTED, INTERPOLATED, MISSING, PoseSequence
from carl_core.video import read_video, write_video
from tests.conftest import REAL_CLIPS

REFERENCE = REAL_CLIPS.parent / "real_clips_pose"
GOLF = REAL_CLIPS / "golfdb__test_video.mp4"
JACKS = REAL_CLIPS / "slomoloops__jumpingjacks2menlowres.ogg"  # two men; MediaPipe follows the right one
LEFT_MAN = (40, 0, 220, 225)  # a box around the other (left) man in the 400 x 225 frame

needs_clips = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="the shared real clips are not beside the checkout"
)
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def extractor() -> PoseExtractor:
    return PoseExtractor(cache_dir=False)


@pytest.fixture(scope="module")
def mediapipe_like() -> PoseExtractor:
    """Our pipeline set up as the reference was made: 30 frames/s clock, no gap filling."""
    return PoseExtractor(cache_dir=False, smoothing_fps=30.0, max_gap=0.0)


def _frames(path: Path, indices) -> tuple[np.ndarray, np.ndarray]:
    return read_video(path, indices=list(indices), backend="pyav")  # as the reference decoded them


def _hips_x(seq: PoseSequence) -> np.ndarray:
    return (seq.image[:, 23, 0] + seq.image[:, 24, 0]) / 2


# --------------------------------------------------------------------------- reference agreement


# Thresholds: about three times the mean error measured over whole clips (docs/pose.md: image
# landmarks 0.1-0.4 % of the frame diagonal, world landmarks 6-15 mm on the clips with one
# person), so a real regression (a wrong crop, a half-pixel shift, an unrotated world pose)
# fails while decoding and float differences pass.
@needs_clips
@pytest.mark.parametrize(
    ("clip", "frames"),
    [
        ("golfdb__test_video.mp4", 60),
        ("slomoloops__jumpingjacks2menlowres.ogg", 60),
        ("bicepmp__bicep_curl.mp4", 45),
    ],
)
def test_matches_mediapipe_reference(mediapipe_like: PoseExtractor, clip: str, frames: int) -> None:
    rgb, times = _frames(REAL_CLIPS / clip, range(frames))
    seq = mediapipe_like.track(rgb, times)
    with np.load(REFERENCE / f"{clip}.pose.npz") as d:
        ref_image, ref_world = d["image"][:frames], d["world"][:frames]
    ref_found = ~np.isnan(ref_image[:, :, 0]).all(axis=1)
    assert np.array_equal(seq.status == DETECTED, ref_found)
    diag = np.hypot(seq.width, seq.height)
    d = seq.image[:, :, :2] - ref_image[:, :, :2]
    err = np.hypot(d[..., 0] * seq.width, d[..., 1] * seq.height) / diag * 100  # % of the diagonal
    assert np.nanmean(err) < 1.0
    assert np.nanmax(np.nanmean(err, axis=1)) < 3.0  # no frame far off
    world_mm = np.linalg.norm(seq.world[:, :, :3] - ref_world[:, :, :3], axis=-1) * 1000
    assert np.nanmean(world_mm) < 30.0
    assert np.nanmean(np.abs(seq.image[:, :, 3] - ref_image[:, :, 3])) < 0.05  # visibility
    assert np.allclose(seq.image[:, :, 3], seq.world[:, :, 3])


@needs_clips
def test_static_image_matches_reference_first_frame() -> None:
    rgb, _ = _frames(GOLF, [0])
    seq = estimate_image(rgb[0])
    assert len(seq) == 1 and seq.status[0] == DETECTED and (seq.width, seq.height) == (354, 492)
    with np.load(REFERENCE / f"{GOLF.name}.pose.npz") as d:
        ref = d["image"][0]  # the first frame of a track is not smoothed: static mode's answer
    assert np.abs(seq.image[0, :, :2] - ref[:, :2]).max() < 0.01
    blank = estimate_image(np.zeros((240, 320, 3), dtype=np.uint8))
    assert blank.status[0] == MISSING and np.isnan(blank.image).all()
    with pytest.raises(DataError):
        estimate_image(np.zeros((240, 320), dtype=np.uint8))


# --------------------------------------------------------------------------- choosing the person


@needs_clips
def test_crop_box_follows_the_other_man(extractor: PoseExtractor) -> None:
    rgb, times = _frames(JACKS, range(0, 60))
    default = extractor.track(rgb, times)
    assert (default.status == DETECTED).all()
    assert (_hips_x(default) > 0.55).all()  # the right man, in every frame: no jump
    left = extractor.track(rgb, times, crop=LEFT_MAN)
    assert (left.status == DETECTED).all()
    assert (_hips_x(left) < 0.45).all()  # the left man, in every frame
    assert _hips_x(extractor.estimate_image(rgb[0], crop="40,0,220,225"))[0] < 0.45  # pictures too
    assert _hips_x(extractor.estimate_image(rgb[0]))[0] > 0.55
    assert left.meta["model"] == "blazepose-full"


@needs_clips
def test_several_people_one_followed(extractor: PoseExtractor) -> None:
    rgb, times = _frames(REAL_CLIPS / "felixchenfy__exercise.avi", range(10, 60))
    seq = extractor.track(rgb, times)
    hips = _hips_x(seq)[seq.present]
    assert seq.present.mean() > 0.9
    assert np.abs(np.diff(hips)).max() < 0.1  # three women in a row: never jumps to a neighbour


# --------------------------------------------------------------------------- missing frames


@pytest.fixture(scope="module")
def gappy_video(tmp_path_factory) -> Path:
    """Golf frames 0-29, 3 black frames, frames 33-44, then 15 black frames, at 30 frames/s."""
    if not REFERENCE.is_dir():
        pytest.skip("the shared real clips are not beside the checkout")
    rgb, _ = _frames(GOLF, range(45))
    rgb[30:33] = 0
    frames = np.concatenate([rgb, np.zeros((15, *rgb.shape[1:]), dtype=np.uint8)])
    return write_video(tmp_path_factory.mktemp("pose") / "gappy.mp4", frames, 30.0, crf=18)


def test_missing_frames_kept_and_short_gaps_interpolated(gappy_video: Path, tmp_path: Path) -> None:
    seq = extract_pose(gappy_video, cache_dir=tmp_path)
    assert len(seq) == 60 and np.array_equal(seq.indices, np.arange(60))
    assert np.allclose(seq.times, np.arange(60) / 30.0)
    assert (seq.status[:30] == DETECTED).all() and (seq.status[33:45] == DETECTED).all()
    assert (seq.status[30:33] == INTERPOLATED).all()  # 0.1 s: filled
    assert (seq.status[45:] == MISSING).all() and np.isnan(seq.image[45:]).all()  # the end: kept, NaN
    mid = (seq.image[29] + seq.image[33]) / 2
    assert np.allclose(seq.image[31], mid, atol=1e-5)
    assert not np.isnan(seq.world[30:33]).any()


def test_fps_sampling_keeps_true_indices(gappy_video: Path) -> None:
    seq = extract_pose(gappy_video, fps=10, cache_dir=False)
    assert np.array_equal(seq.indices, np.arange(0, 60, 3))
    assert np.allclose(seq.times, seq.indices / 30.0)
    assert (seq.status[:10] != MISSING).all() and (seq.status[15:] == MISSING).all()


def test_second_run_is_a_cache_lookup(gappy_video: Path, tmp_path: Path, monkeypatch) -> None:
    first = extract_pose(gappy_video, cache_dir=tmp_path)
    assert list((tmp_path / "poses").glob("*/*.npz"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(pose_mod, "open_video", no_decoding)
    messages = []
    second = extract_pose(gappy_video, cache_dir=tmp_path, on_progress=lambda d, t, m: messages.append(m))
    assert "cache" in messages[-1]
    for name in ("image", "world", "status", "times", "indices"):
        assert np.array_equal(getattr(first, name), getattr(second, name), equal_nan=True)
    assert second.meta["source"] == "gappy.mp4"
    with pytest.raises(AssertionError, match="decoded again"):  # another crop is another entry
        extract_pose(gappy_video, cache_dir=tmp_path, crop=(0, 0, 200, 300))


# --------------------------------------------------------------------------- bad input


@needs_clips
def test_no_person_gives_missing_frames(extractor: PoseExtractor) -> None:
    rgb, times = _frames(REAL_CLIPS / "tayyab__pushup2.mp4", range(0, 40))  # a blurred title card
    seq = extractor.track(rgb, times)
    assert (seq.status == MISSING).all() and np.isnan(seq.image).all() and len(seq) == 40


@needs_clips
def test_person_leaving_the_frame(extractor: PoseExtractor) -> None:
    rgb, times = _frames(REAL_CLIPS / "ikramaliokz__squat.mp4", range(765, 795))  # fades to black
    seq = extractor.track(rgb, times)
    assert (seq.status[:10] == DETECTED).all() and (seq.status[-10:] == MISSING).all()


def test_bad_crop_boxes(gappy_video: Path) -> None:
    assert parse_crop("10, 20,110,220") == (10, 20, 110, 220)
    for text in ("10,20,110", "a,b,c,d", "10,20,5,220", "10,20,10,30"):
        with pytest.raises(ConfigError):
            parse_crop(text)
    with pytest.raises(ConfigError, match="outside"):
        extract_pose(gappy_video, crop=(1000, 1000, 2000, 2000), cache_dir=False)
    with pytest.raises(ConfigError, match="outside"):
        estimate_image(np.zeros((100, 100, 3), dtype=np.uint8), crop=(-50, -50, -10, -10))


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoError, match="notes.mp4"):
        extract_pose(bad, cache_dir=False)
    with pytest.raises(VideoError):
        extract_pose(tmp_path / "absent.mp4", cache_dir=False)


# --------------------------------------------------------------------------- the CLI


def test_cli_pose(gappy_video: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "poses.npz"
    assert main(["pose", str(gappy_video), "--out", str(out), "--no-cache"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith("60 frames, 42 found, 3 interpolated, 15 missing"), line
    seq = PoseSequence.load(out)
    assert len(seq) == 60 and (seq.width, seq.height) == (354, 492)
    assert main(["pose", str(gappy_video), "--out", str(out), "--crop", "400,0,500,10"]) == 2
    assert "outside" in capsys.readouterr().err
