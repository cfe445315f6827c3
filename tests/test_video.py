"""Tests for carl_core.video on real clips and on small files made here with PyAV.

Generated frames carry their own index as an 8-bit code (white/black blocks along the bottom)
and a red block in the top-left corner, so a test can tell which frame it got back and
whether it is upright.
"""

from __future__ import annotations

import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from carl_core import video as video_module
from carl_core.errors import CarlError, ConfigError, VideoError
from carl_core.video import VideoInfo, iter_video, open_video, probe_video, read_video, sample_indices
from carl_core.video_writer import write_video
from tests.conftest import real_clip

W, H = 64, 48


# --------------------------------------------------------------------------------------------
# Frames that know their index
# --------------------------------------------------------------------------------------------


def pattern(i: int, h: int = H, w: int = W, noise: bool = False) -> np.ndarray:
    rng = np.random.default_rng(i)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if noise else np.full((h, w, 3), 60, np.uint8)
    frame[: h // 3, : w // 4] = (230, 20, 20)  # red: top-left
    frame[h // 3 : h - 8, -8:] = (20, 200, 20)  # green: right edge
    for bit in range(8):  # index code in the bottom 8 rows, blocks of 8 pixels
        frame[h - 8 :, bit * 8 : bit * 8 + 8] = 255 if (i >> bit) & 1 else 0
    return frame


def index_of(frame: np.ndarray) -> int:
    h = frame.shape[0]
    band = frame[h - 6 : h - 2].mean(axis=(0, 2))
    return sum(1 << bit for bit in range(8) if band[bit * 8 + 2 : bit * 8 + 6].mean() > 128)


def indices_of(frames: np.ndarray) -> list[int]:
    return [index_of(f) for f in frames]


def encode(path: Path, n: int, *, fps: float = 30, codec: str = "libx264", pix_fmt: str = "yuv420p", **kw):
    """Write ``n`` pattern frames with PyAV directly (not through write_video)."""
    pts_ms = kw.pop("pts_ms", None)
    rotation_cw = kw.pop("rotation_cw", 0)
    gop = kw.pop("gop", None)
    options = kw.pop("options", {})
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = kw.pop("w", W), kw.pop("h", H), pix_fmt
        time_base = Fraction(1, 1000) if pts_ms is not None else 1 / rate
        stream.codec_context.time_base = time_base
        if gop:
            stream.codec_context.gop_size = gop
        if codec == "libx265":
            stream.codec_context.options = {"x265-params": "log-level=error"}
        if rotation_cw:
            stream.set_display_rotation(-rotation_cw)  # PyAV takes counter-clockwise degrees
        for i in range(n):
            image = pattern(i, stream.height, stream.width, noise=kw.get("noise", False))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pix_fmt == "gray":
                frame = frame.reformat(format="gray")
            frame.pts = pts_ms[i] if pts_ms is not None else i
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def vids(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    out = {
        "h264.mp4": encode(d / "h264.mp4", 20),
        "vp9.webm": encode(d / "vp9.webm", 20, codec="libvpx-vp9"),
        "mjpeg.avi": encode(d / "mjpeg.avi", 20, codec="mjpeg", pix_fmt="yuvj420p"),
        "h264.mov": encode(d / "h264.mov", 20),
        "mpeg4.avi": encode(d / "mpeg4.avi", 20, codec="mpeg4"),
        "gray.mkv": encode(d / "gray.mkv", 20, codec="ffv1", pix_fmt="gray"),
        "odd.mp4": encode(d / "odd.mp4", 5, w=853, h=480, pix_fmt="yuv444p"),
        "one.mp4": encode(d / "one.mp4", 1),
        "fps60.mp4": encode(d / "fps60.mp4", 60, fps=60),
        "fps2997.mp4": encode(d / "fps2997.mp4", 30, fps=30000 / 1001),
        "noise.mp4": encode(d / "noise.mp4", 30, noise=True, options={"movflags": "+faststart"}),
        "noise.mkv": encode(d / "noise.mkv", 30, noise=True),
        "gop5.mp4": encode(d / "gop5.mp4", 40, gop=5),
        "gop5.mkv": encode(d / "gop5.mkv", 40, gop=5),
        "gop5.ts": encode(d / "gop5.ts", 40, gop=5),
        "gop5.mpg": encode(d / "gop5.mpg", 40, gop=5, codec="mpeg2video"),
    }
    if "libx265" in av.codecs_available:
        out["h265.mkv"] = encode(d / "h265.mkv", 20, codec="libx265")
    else:  # H.265 encoder missing from this FFmpeg build: an H.264 mkv stands in
        out["h265.mkv"] = encode(d / "h265.mkv", 20)
    for deg in (90, 180, 270):
        out[f"rot{deg}.mp4"] = encode(d / f"rot{deg}.mp4", 10, rotation_cw=deg)
    out["vfr.mkv"] = encode(d / "vfr.mkv", 10, pts_ms=[0, 33, 100, 133, 300, 333, 366, 600, 633, 666])
    return out


# --------------------------------------------------------------------------------------------
# Formats: the robustness matrix on generated files
# --------------------------------------------------------------------------------------------

FORMATS = [
    # name, frames, displayed (width, height), codec
    ("h264.mp4", 20, (W, H), "h264"),
    ("h265.mkv", 20, (W, H), "hevc" if "libx265" in av.codecs_available else "h264"),
    ("vp9.webm", 20, (W, H), "vp9"),
    ("mjpeg.avi", 20, (W, H), "mjpeg"),
    ("mpeg4.avi", 20, (W, H), "mpeg4"),
    ("h264.mov", 20, (W, H), "h264"),
    ("gray.mkv", 20, (W, H), "ffv1"),
    ("odd.mp4", 5, (853, 480), "h264"),
    ("one.mp4", 1, (W, H), "h264"),
]


@pytest.mark.parametrize("backend", ["auto", "pyav"])
@pytest.mark.parametrize(("name", "n", "size", "codec"), FORMATS, ids=[f[0] for f in FORMATS])
def test_formats_read_every_frame_in_order(vids, name, n, size, codec, backend):
    info = probe_video(vids[name])
    assert isinstance(info, VideoInfo)
    assert (info.num_frames, info.width, info.height, info.codec, info.rotation) == (n, *size, codec, 0)
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(n / 30.0, abs=2e-3)
    frames, ts = read_video(vids[name], backend=backend)
    assert frames.dtype == np.uint8 and frames.shape == (n, size[1], size[0], 3)
    assert ts.dtype == np.float64 and ts.shape == (n,)
    assert np.allclose(ts, np.arange(n) / 30.0, atol=1.5e-3)  # mkv/webm store milliseconds
    assert indices_of(frames) == list(range(n))
    if name != "gray.mkv":
        red = frames[0, 2 : size[1] // 3 - 2, 2 : size[0] // 4 - 2].reshape(-1, 3).mean(axis=0)
        assert red[0] > 180 and red[1] < 70 and red[2] < 70
    else:
        assert np.array_equal(frames[..., 0], frames[..., 2])  # grey comes out as equal RGB


def test_one_frame_video_reads_as_one_frame(vids):
    frames, ts = read_video(vids["one.mp4"], fps=5)
    assert frames.shape == (1, H, W, 3) and ts.tolist() == [0.0]
    chunks = list(iter_video(vids["one.mp4"]))
    assert len(chunks) == 1 and chunks[0][0].shape == (1, H, W, 3)


@pytest.mark.parametrize("deg", [90, 180, 270])
def test_rotation_metadata_gives_upright_frames(vids, deg):
    info = probe_video(vids[f"rot{deg}.mp4"])
    assert info.rotation == deg
    assert (info.width, info.height) == ((H, W) if deg in (90, 270) else (W, H))
    frames, _ = read_video(vids[f"rot{deg}.mp4"])
    expected = np.stack([np.rot90(pattern(i), k=-deg // 90) for i in range(10)])  # clockwise
    assert frames.shape == expected.shape
    assert np.abs(frames.astype(int) - expected).mean() < 8
    # And no other orientation (unrotated, or turned the wrong way) would match.
    for k in {0, 1, 2, 3} - {-deg // 90 % 4}:
        wrong = np.stack([np.rot90(pattern(i), k=k) for i in range(10)])
        if wrong.shape == frames.shape:
            assert np.abs(frames.astype(int) - wrong).mean() > 20


def test_rotation_with_resize_keeps_shorter_side(vids):
    frames, _ = read_video(vids["rot90.mp4"], size=24)
    assert frames.shape == (10, 32, 24, 3)  # displayed 48 x 64 scaled by 1/2
    assert frames[0, :8, 14:20, 0].mean() > 150  # red ends up top-right after a clockwise turn


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def _bad_inputs(d: Path) -> dict[str, Path]:
    (d / "zero.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("this is not a video\n" * 20)
    (d / "folder.mp4").mkdir()
    audio_only(d / "audio.m4a")
    # A video stream but no frames: an MP4 with its index in front, cut where the frames start.
    encode(d / "front.mp4", 5, options={"movflags": "+faststart"})
    data = (d / "front.mp4").read_bytes()
    (d / "noframes.mp4").write_bytes(data[: data.index(b"mdat") + 4])
    # A Matroska file cut just before its first cluster of frames.
    encode(d / "full.mkv", 5)
    data = (d / "full.mkv").read_bytes()
    (d / "noframes.mkv").write_bytes(data[: data.index(b"\x1f\x43\xb6\x75")])
    # A container with a video track that never got a frame (FFmpeg drops the track).
    with av.open(str(d / "empty.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    # An MP4 whose index (moov, written at the end) was cut off.
    encode(d / "moov_last.mp4", 10, noise=True)
    data = (d / "moov_last.mp4").read_bytes()
    (d / "no_index.mp4").write_bytes(data[: len(data) // 2])
    return {
        "missing": d / "missing.mp4",
        "zero": d / "zero.mp4",
        "text": d / "text.mp4",
        "folder": d / "folder.mp4",
        "audio": d / "audio.m4a",
        "noframes": d / "noframes.mp4",
        "noframes_mkv": d / "noframes.mkv",
        "empty_track": d / "empty.mp4",
        "no_index": d / "no_index.mp4",
    }


BAD = [
    ("missing", "not found"),
    ("zero", "empty"),
    ("text", "not a video"),
    ("folder", "not a file"),
    ("audio", "no video stream"),
    ("noframes", "no frames"),
    ("noframes_mkv", "no video frames"),
    ("empty_track", "no video stream"),
    ("no_index", "not a video"),
]


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    return _bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_video_error(bad, name, message):
    for call in (probe_video, read_video, lambda p: list(iter_video(p))):
        with pytest.raises(VideoError, match=message) as excinfo:
            call(bad[name])
        assert isinstance(excinfo.value, CarlError)
        assert str(bad[name].name) in str(excinfo.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["noise.mp4", "noise.mkv"])
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_truncated_file_reads_what_decodes(vids, tmp_path, name, backend):
    cut = tmp_path / name
    data = vids[name].read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    frames, ts = read_video(cut, backend=backend)
    assert 5 <= len(frames) < 30
    assert len(ts) == len(frames) and np.all(np.diff(ts) > 0)
    # All but the last frame (whose data may be cut in half) are the right frames.
    assert indices_of(frames[:-1]) == list(range(len(frames) - 1))
    assert sum(len(f) for f, _ in iter_video(cut, chunk=4, backend=backend)) == len(frames)


def test_damaged_frames_are_left_out_without_shifting_the_rest(tmp_path):
    path = encode(tmp_path / "intra.mkv", 20, codec="mjpeg", pix_fmt="yuvj420p")
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    data = bytearray(path.read_bytes())
    for k in (5, 6, 12):  # blank the picture data of three frames
        pos, size = packets[k]
        data[pos + 20 : pos + size] = bytes(size - 20)
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(bytes(data))
    survivors = [i for i in range(20) if i not in (5, 6, 12)]
    for backend in ("auto", "pyav"):
        frames, ts = read_video(damaged, backend=backend)
        assert indices_of(frames) == survivors
        assert np.allclose(ts * 30, survivors, atol=0.05)
    frames, _ = read_video(damaged, indices=[12, 4, 13])
    assert indices_of(frames) == [4, 13]
    with pytest.raises(VideoError, match="decord cannot read"):
        read_video(damaged, backend="decord")


def test_truncated_inside_first_frame_fails_clearly(vids, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = vids["noise.mp4"].read_bytes()
    moov_end = data.index(b"mdat") + 4
    cut.write_bytes(data[: moov_end + 200])  # the index survives, the first frame does not
    with pytest.raises(VideoError, match="could be decoded"):
        read_video(cut)


def test_reading_never_writes_next_to_the_file(vids, tmp_path):
    for name in ("h264.mp4", "vp9.webm", "rot90.mp4", "vfr.mkv"):
        shutil.copy(vids[name], tmp_path / name)
    before = sorted(os.listdir(tmp_path))
    for name in before:
        probe_video(tmp_path / name)
        read_video(tmp_path / name, fps=10, size=16)
        list(iter_video(tmp_path / name, chunk=3))
    assert sorted(os.listdir(tmp_path)) == before


# --------------------------------------------------------------------------------------------
# Sampling and timestamps
# --------------------------------------------------------------------------------------------


def test_sample_indices():
    assert np.array_equal(sample_indices(100, 60.0, 10.0), np.arange(0, 100, 6))
    assert np.array_equal(sample_indices(10, 30.0, None), np.arange(10))
    assert np.array_equal(sample_indices(10, 30.0, 60.0), np.arange(10))  # never upsample
    assert np.array_equal(sample_indices(10, 30.0, 30.0), np.arange(10))
    assert sample_indices(0, 30.0, 10.0).shape == (0,)
    assert np.array_equal(sample_indices(9, 30.0, 20.0), [0, 1, 3, 4, 6, 7])  # ties to the earlier frame
    idx = sample_indices(300, 29.97, 7.5)
    assert len(idx) == 76 and np.all(np.diff(idx) >= 3) and np.all(np.diff(idx) <= 5)
    # Each pick is the nearest frame; the last time (10.0 s) lies in the last frame's span.
    assert np.abs(idx / 29.97 - np.arange(76) / 7.5)[:-1].max() <= 0.5 / 29.97 + 1e-9
    assert idx[-1] == 299
    for bad_fps in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ConfigError):
            sample_indices(10, 30.0, bad_fps)


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_60fps_to_10fps_takes_every_sixth_frame(vids, backend):
    frames, ts = read_video(vids["fps60.mp4"], fps=10, backend=backend)
    assert indices_of(frames) == list(range(0, 60, 6))
    assert np.allclose(ts, np.arange(10) / 10, atol=1e-6)
    chunks = list(iter_video(vids["fps60.mp4"], fps=10, chunk=4, backend=backend))
    assert [len(f) for f, _ in chunks] == [4, 4, 2]
    assert np.allclose(np.concatenate([t for _, t in chunks]), ts)


def test_ntsc_timestamps_are_exact(vids):
    info = probe_video(vids["fps2997.mp4"])
    assert info.fps == pytest.approx(30000 / 1001)
    _, ts = read_video(vids["fps2997.mp4"])
    assert np.allclose(ts, np.arange(30) * 1001 / 30000, atol=1e-6)


def test_variable_frame_rate_uses_real_timestamps(vids):
    pts_ms = np.array([0, 33, 100, 133, 300, 333, 366, 600, 633, 666])
    frames, ts = read_video(vids["vfr.mkv"])
    assert indices_of(frames) == list(range(10))
    assert np.allclose(ts, pts_ms / 1000)
    # At 10 fps each time k/10 gets the nearest real frame; none is repeated.
    frames, ts = read_video(vids["vfr.mkv"], fps=10)
    assert indices_of(frames) == [0, 2, 3, 4, 6, 7]
    assert np.allclose(ts, pts_ms[[0, 2, 3, 4, 6, 7]] / 1000)


def test_indices_in_any_order_with_repeats(vids):
    frames, ts = read_video(vids["h264.mp4"], indices=[5, 0, 5, 19])
    assert indices_of(frames) == [5, 0, 5, 19]
    assert np.allclose(ts, np.array([5, 0, 5, 19]) / 30)
    empty, ts = read_video(vids["h264.mp4"], indices=[])
    assert empty.shape == (0, H, W, 3) and ts.shape == (0,)
    with pytest.raises(ConfigError, match="h264.mp4 has frames 0 to 19"):
        read_video(vids["h264.mp4"], indices=[20])
    with pytest.raises(ConfigError):
        read_video(vids["h264.mp4"], indices=[0], fps=10)


# MPEG-TS/PS seeks land imprecisely: there the reader notices and decodes from the start.
@pytest.mark.parametrize("name", ["gop5.mp4", "gop5.mkv", "gop5.ts", "gop5.mpg"])
@pytest.mark.parametrize("wanted", [[17, 3, 29], [39], [2, 39], [1, 20, 38], [4], [14, 14]])
def test_frames_late_in_a_file_via_keyframe_seek(vids, name, wanted):
    frames, ts = read_video(vids[name], indices=wanted)
    assert indices_of(frames) == wanted
    assert np.allclose(ts, np.array(wanted) / 30, atol=1.5e-3)


@pytest.mark.parametrize("name", ["gop5.ts", "gop5.mpg"])
def test_mpeg_ts_and_ps_read_from_the_first_frame(vids, name):
    frames, ts = read_video(vids[name])  # decord would start a few frames late here
    assert indices_of(frames) == list(range(40))
    assert np.allclose(ts, np.arange(40) / 30, atol=1e-3)


def test_iter_video_streams_chunks_equal_to_read_video(vids):
    calls = []
    chunks = list(iter_video(vids["h264.mp4"], chunk=8, on_progress=lambda d, t, m: calls.append((d, t))))
    assert [len(f) for f, _ in chunks] == [8, 8, 4]
    frames, ts = read_video(vids["h264.mp4"])
    assert np.array_equal(np.concatenate([f for f, _ in chunks]), frames)
    assert np.array_equal(np.concatenate([t for _, t in chunks]), ts)
    assert calls[-1] == (20, 20) and all(t == 20 for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_deterministic_writing_gives_the_same_file_every_time(tmp_path):
    # x264's MB-tree, in its SIMD code, gave 8 different files in 40 encodes of these very
    # frames here (an AVX-512 machine); deterministic=True turns it off and uses one thread.
    from carl_core.synthetic import SynthConfig, render_video

    cfg = SynthConfig(size=(64, 64), min_len=24, max_len=36)
    frames, _ = render_video("pouring", np.random.default_rng(np.random.SeedSequence(11).spawn(1)[0]), cfg)
    frames = list(frames)
    files = {
        write_video(tmp_path / f"{k}.mp4", frames, 30.0, deterministic=True).read_bytes() for k in range(40)
    }
    assert len(files) == 1


def test_resize_keeps_aspect_ratio(vids):
    frames, _ = read_video(vids["odd.mp4"], size=48)
    assert frames.shape == (5, 48, 85, 3)  # 853 x 480 -> 85 x 48
    frames_pyav, _ = read_video(vids["odd.mp4"], size=48, backend="pyav")
    assert frames_pyav.shape == frames.shape
    assert np.abs(frames.astype(int) - frames_pyav).mean() < 6


def test_bad_arguments(vids):
    # A user's setting: a CarlError (the CLI prints it in one line; the app shows it).
    with pytest.raises(ConfigError):
        read_video(vids["h264.mp4"], size=0)
    with pytest.raises(ConfigError):
        read_video(vids["h264.mp4"], fps=-2)
    with pytest.raises(ConfigError):
        read_video(vids["h264.mp4"], backend="opencv")
    with pytest.raises(ConfigError):
        iter_video(vids["h264.mp4"], chunk=0)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "codec", "pix_fmt"),
    [(".mp4", "libx264", "yuv420p"), (".webm", "libvpx-vp9", "yuv420p"), (".avi", "mjpeg", "yuvj420p")],
)
def test_write_video_round_trip(tmp_path, suffix, codec, pix_fmt):
    out = write_video(
        tmp_path / f"clip{suffix}", (pattern(i) for i in range(12)), 12.5, codec=codec, pix_fmt=pix_fmt
    )
    assert out == tmp_path / f"clip{suffix}"
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left behind
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (12, W, H)
    assert info.fps == pytest.approx(12.5)
    frames, ts = read_video(out)
    assert indices_of(frames) == list(range(12))
    assert np.allclose(ts, np.arange(12) / 12.5, atol=1.5e-3)
    assert np.abs(frames.astype(int) - np.stack([pattern(i) for i in range(12)])).mean() < 6


def test_write_video_odd_size_and_grey(tmp_path):
    frames = [pattern(i, 480, 853) for i in range(3)]
    out = write_video(tmp_path / "odd.mp4", iter(frames), 30)
    info = probe_video(out)
    assert (info.width, info.height) == (854, 480)  # padded by one replicated column
    back, _ = read_video(out)
    assert np.abs(back[:, :, 852].astype(int) - back[:, :, 853]).mean() < 4
    grey = write_video(tmp_path / "grey.mp4", [np.full((48, 64), 128, np.uint8)] * 2, 10)
    assert np.abs(read_video(grey)[0].astype(int) - 128).max() < 6


def test_write_video_is_atomic(tmp_path):
    target = tmp_path / "keep.mp4"
    write_video(target, [pattern(0)] * 3, 30)
    original = target.read_bytes()

    def broken():
        yield pattern(1)
        yield pattern(2)
        raise RuntimeError("the frame source failed")

    with pytest.raises(RuntimeError):
        write_video(target, broken(), 30)
    assert target.read_bytes() == original  # the old file is untouched
    with pytest.raises(VideoError, match="No frames"):
        write_video(tmp_path / "empty.mp4", [], 30)
    with pytest.raises(VideoError, match="same shape"):
        write_video(tmp_path / "mixed.mp4", [pattern(0), pattern(0, 32, 32)], 30)
    with pytest.raises(VideoError, match="uint8"):
        write_video(tmp_path / "float.mp4", [np.zeros((8, 8, 3))], 30)
    with pytest.raises(VideoError, match="does not exist"):
        write_video(tmp_path / "nope" / "x.mp4", [pattern(0)], 30)
    assert sorted(os.listdir(tmp_path)) == ["keep.mp4"]


# --------------------------------------------------------------------------------------------
# Real clips (see ../shared/data/real_clips/SOURCES.md)
# --------------------------------------------------------------------------------------------


def scaled(w: int, h: int, short: int) -> tuple[int, int]:
    """(height, width) after scaling the shorter side to ``short``."""
    return (short, round(short * w / h)) if w >= h else (round(short * h / w), short)


CLIPS = [
    # file, frames, fps, width, height, codec, decode all frames in the test
    ("slomoloops__jumpingjacks2menlowres.ogg", 300, 29.97, 400, 225, "theora", True),
    ("decord__flipping_a_pancake.mkv", 310, 30.0, 426, 240, "h264", True),
    ("felixchenfy__exercise.avi", 393, 10.0, 384, 288, "mpeg4", True),
    ("pose2sim__cam02.mp4", 100, 60.0, 1080, 1920, "vp9", True),
    ("jtnicastro__pushup.mp4", 772, 30.0, 416, 960, "h264", False),
    ("bicepmp__bicep_curl.mp4", 444, 30.0, 406, 720, "h264", False),
    ("mmaction2__S001C001P001R001A001_rgb.avi", 103, 30.0, 1920, 1080, "h264", False),
    ("tayyab__pushup2.mp4", 472, 30.05, 1280, 720, "h264", False),
]


@pytest.mark.parametrize(("name", "n", "fps", "w", "h", "codec", "full"), CLIPS, ids=[c[0] for c in CLIPS])
def test_real_clips(name, n, fps, w, h, codec, full):
    path = real_clip(name)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.codec, info.rotation) == (n, w, h, codec, 0)
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration == pytest.approx(n / info.fps, rel=0.01)
    if full:
        count, last = 0, -1.0
        for frames, ts in iter_video(path, size=32):
            assert frames.shape[1:] == (*scaled(w, h, 32), 3)
            assert ts[0] > last and np.all(np.diff(ts) > 0)
            count, last = count + len(frames), ts[-1]
        assert count == n
        assert last == pytest.approx((n - 1) / info.fps, abs=0.02)
    frames, ts = read_video(path, indices=range(10), size=224)
    assert frames.shape == (10, *scaled(w, h, 224), 3)
    assert np.allclose(ts, np.arange(10) / info.fps, atol=0.03)
    assert frames.std() > 5  # real picture content, not a blank buffer


@pytest.mark.parametrize("name", ["mmaction2__test.avi", "decord__flipping_a_pancake.mkv"])
def test_decord_and_pyav_agree_on_real_clips(name):
    path = real_clip(name)
    a, ta = read_video(path, indices=range(0, 40, 3), size=64, backend="decord")
    b, tb = read_video(path, indices=range(0, 40, 3), size=64, backend="pyav")
    assert a.shape == b.shape and np.array_equal(ta, tb)
    # Scalers differ slightly; the wrong frame (even a neighbour) differs far more.
    per_frame = np.abs(a.astype(int) - b).mean(axis=(1, 2, 3))
    assert per_frame.max() < 4
    neighbour = np.abs(a[1:].astype(int) - b[:-1]).mean(axis=(1, 2, 3))
    assert neighbour.min() > per_frame.max()


def test_real_clip_fps_resampling():
    path = real_clip("mmaction2__test.mp4")  # 30 fps, 300 frames
    frames, ts = read_video(path, fps=10, size=32)
    assert frames.shape == (100, 32, 42, 3)
    assert np.allclose(ts, np.arange(100) / 10, atol=1e-6)
    every_third, _ = read_video(path, indices=range(0, 300, 3), size=32)
    assert np.array_equal(frames, every_third)


# --------------------------------------------------------------------------------------------
# Cheaper decoding: frames that sampling never uses are not decoded; resizing in YUV
# --------------------------------------------------------------------------------------------


def _counting_decoder(monkeypatch) -> list[int]:
    """Count the frames PyAV's decoder gives out (decoded, whether wanted or not)."""
    decoded = [0]
    inner = video_module._decoded

    def counting(*args, **kwargs):
        for frame in inner(*args, **kwargs):
            decoded[0] += 1
            yield frame

    monkeypatch.setattr(video_module, "_decoded", counting)
    return decoded


@pytest.mark.parametrize("name", ["h264.mp4", "gop5.mkv", "h264.mov"])
@pytest.mark.parametrize("fps", [10, 7.5, 3])
def test_sampling_leaves_out_unused_frames_and_keeps_every_frames_identity(vids, monkeypatch, name, fps):
    # x264's B-frames reference nothing: sampling every third one or fewer leaves them out
    every, every_ts = read_video(vids[name], backend="pyav")
    decoded = _counting_decoder(monkeypatch)
    frames, ts = read_video(vids[name], fps=fps, backend="pyav")
    wanted = sample_indices(len(every), 30.0, fps)
    assert indices_of(frames) == wanted.tolist()
    np.testing.assert_array_equal(frames, every[wanted])  # bit for bit the frames of a full decode
    np.testing.assert_array_equal(ts, every_ts[wanted])
    assert decoded[0] < wanted[-1] + 1  # fewer decoded than the frames up to the last wanted one
    skipped = decoded[0]
    decoded[0] = 0
    monkeypatch.setattr(video_module, "_SKIP_UNWANTED", False)
    again, _ = read_video(vids[name], fps=fps, backend="pyav")
    np.testing.assert_array_equal(again, frames)
    assert decoded[0] == wanted[-1] + 1 > skipped


def test_skipping_on_a_real_clip_keeps_frames_exact(monkeypatch):
    path = real_clip("ikramaliokz__squat.mp4")  # a phone-style H.264 with B-frames nothing references
    sparse = np.arange(0, 45, 3)
    full, full_ts = read_video(path, indices=range(45), size=(96, 96), backend="pyav")
    decoded = _counting_decoder(monkeypatch)
    frames, ts = read_video(path, indices=sparse, size=(96, 96), backend="pyav")
    assert decoded[0] < 43
    np.testing.assert_array_equal(frames, full[sparse])
    np.testing.assert_array_equal(ts, full_ts[sparse])


def _one_pass(frame: av.VideoFrame, w: int, h: int) -> np.ndarray:
    """The old conversion: scaled straight to RGB in one swscale pass."""
    return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()


@pytest.mark.parametrize("name", ["yuyoujiang__squat.mp4", "golfdb__test_video.mp4", "mmaction2__test.mp4"])
def test_resizing_in_yuv_changes_pixels_no_more_than_a_resize_filter(name):
    to_rgb = video_module._ToRGB((224, 224))
    with av.open(str(real_clip(name))) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k % 40:
                continue
            new, old = to_rgb(frame).astype(int), _one_pass(frame, 224, 224).astype(int)
            assert new.shape == old.shape == (224, 224, 3)
            diff = np.abs(new - old)
            # the chroma is sampled at half the output size: colour edges soften, nothing moves
            assert diff.mean() < 2.5 and np.percentile(diff, 99) <= 20
            # The colours are those of the frame at its stored size (what decord and read_video
            # without a size give); the one-pass path was 1-2 grey levels darker.
            stored = frame.to_ndarray(format="rgb24").mean(axis=(0, 1))
            assert np.abs(new.mean(axis=(0, 1)) - stored).max() < 0.5
            if k >= 80:
                break


def test_odd_sizes_and_other_pixel_formats_convert_in_one_pass(vids):
    frames, _ = read_video(vids["odd.mp4"], size=(33, 21))  # yuv444p, odd output
    assert frames.shape == (5, 21, 33, 3)
    frames, _ = read_video(vids["h264.mp4"], size=(33, 21), backend="pyav")
    assert frames.shape == (20, 21, 33, 3)
    assert indices_of(read_video(vids["h264.mp4"], backend="pyav", size=(W, H))[0]) == list(range(20))


def test_decoder_threads_change_nothing_but_speed(vids):
    for name in ("h264.mp4", "vp9.webm", "mpeg4.avi"):
        one = [f for f, _ in open_video(vids[name], fps=10, size=(32, 32), threads=1)]
        auto = [f for f, _ in open_video(vids[name], fps=10, size=(32, 32), threads=0)]
        np.testing.assert_array_equal(np.concatenate(one), np.concatenate(auto))
    with pytest.raises(ConfigError, match="threads"):
        open_video(vids["h264.mp4"], threads=-1)


# --------------------------------------------------------------------------------------------
# Cut-off files say how much of them is readable
# --------------------------------------------------------------------------------------------


def _cut(tmp_path: Path, suffix: str, keep: float = 0.4) -> tuple[Path, Path]:
    """250 frames at 25 fps (10 s) written by write_video, and a copy cut to ``keep`` of its bytes."""
    frames = (pattern(i, noise=True) for i in range(250))
    whole = write_video(tmp_path / f"whole{suffix}", frames, 25.0)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep)])
    return whole, cut


def test_a_cut_off_mp4_with_its_index_first_says_how_much_is_readable(tmp_path):
    whole, cut = _cut(tmp_path, ".mp4")
    data = whole.read_bytes()
    assert data.index(b"moov") < data.index(
        b"mdat"
    )  # faststart: the index of all 250 frames survives the cut
    assert probe_video(whole).damaged is None
    info = probe_video(cut)
    assert info.damaged is not None
    m = re.fullmatch(
        r"cut\.mp4 is cut off or damaged: only frames 0-(\d+) of 250 could be read \((\d+)%\); "
        r"the rest is left out\. Get the complete file to use all of it\.",
        info.damaged,
    )
    assert m, info.damaged
    assert int(m[1]) + 1 == info.num_frames and 70 <= info.num_frames <= 130
    assert int(m[2]) == 100 * info.num_frames // 250
    frames, _ = read_video(cut)  # what is there still reads
    assert indices_of(frames[:-1]) == list(range(len(frames) - 1))
    assert read_video(cut, fps=10)[0].shape[0] >= 10


def test_a_cut_off_matroska_file_says_it_by_duration(tmp_path):
    whole, cut = _cut(tmp_path, ".mkv")
    assert probe_video(whole).damaged is None
    info = probe_video(cut)
    m = re.search(
        r"cut\.mkv is cut off or damaged: only frames 0-(\d+), ([\d.]+) s of the 10\.0 s", info.damaged or ""
    )
    assert m, info.damaged
    assert int(m[1]) + 1 == info.num_frames and float(m[2]) == pytest.approx(info.duration, abs=0.05)


def test_whole_files_are_not_damaged(vids):
    for name in (
        "h264.mp4",
        "vp9.webm",
        "mjpeg.avi",
        "h264.mov",
        "vfr.mkv",
        "gop5.ts",
        "rot90.mp4",
        "one.mp4",
    ):
        assert probe_video(vids[name]).damaged is None, name
    for name in ("yuyoujiang__squat.mp4", "decord__flipping_a_pancake.mkv", "mmaction2__test.avi"):
        assert probe_video(real_clip(name)).damaged is None
