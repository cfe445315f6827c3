"""The robustness matrix: every kind of file users bring, end to end through ``embed_video``.

Each file either embeds correctly (the right number of frames, at the right timestamps, the
frames the model sees upright and in order) or fails with a ``CarlError`` that says what is
wrong: never a hang (pytest-timeout), a crash or a silent wrong answer. Files are generated here
with PyAV (tiny, 64 px) plus the real clips in ``shared/data/real_clips`` (sampled at 2 fps to
keep the suite fast; decoding still walks every packet). The model is the ``small`` preset at
64 px (ImageNet backbone, random head), run by the default engine (ONNX Runtime on CPU).

Generated frames carry their index as 8 black/white blocks along the bottom and a white
block in the top-left corner (the top-right is black), readable at any size and in grey.
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
import torch

from carl_core import embed as embed_module
from carl_core.config import load_preset
from carl_core.embed import embed_video
from carl_core.errors import CarlError, VideoError
from carl_core.model import CARLModel
from carl_core.video import probe_video
from tests.conftest import real_clip
from tests.test_video import audio_only

S = 64  # model input size

pytestmark = pytest.mark.timeout(120)


# --------------------------------------------------------------------------- files


def pattern(i: int, w: int, h: int) -> np.ndarray:
    f = np.full((h, w, 3), 128, np.uint8)
    f[: h // 3, : w // 3] = 255  # top-left white: tells upright from turned
    f[: h // 3, -(w // 3) :] = 0  # top-right black
    bw = w // 8
    for bit in range(8):
        f[h - h // 4 :, bit * bw : (bit + 1) * bw] = 255 if (i >> bit) & 1 else 0
    return f


def read_pattern(frame: np.ndarray) -> tuple[int, bool]:
    """(index, upright) of a pattern frame of any size, colour or grey."""
    h, w = frame.shape[:2]
    g = frame.astype(float).mean(axis=2)
    y = h - h // 8
    index = sum(1 << b for b in range(8) if g[y, int((b + 0.5) * w / 8)] > 128)
    upright = g[h // 6, w // 6] > 200 and g[h // 6, w - w // 6] < 60
    return index, upright


def encode(path: Path, n: int, *, fps=30, codec="libx264", pix_fmt="yuv420p", w=S, h=S, rotation_cw=0,
           pts_ms=None) -> Path:  # fmt: skip
    """``n`` pattern frames; with ``rotation_cw`` the stored frames are turned so that a player
    applying the display rotation shows them upright."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        sw, sh = (h, w) if rotation_cw in (90, 270) else (w, h)
        s.width, s.height, s.pix_fmt = sw, sh, pix_fmt
        tb = Fraction(1, 1000) if pts_ms is not None else 1 / rate
        s.codec_context.time_base = tb
        if codec == "libx265":
            s.codec_context.options = {"x265-params": "log-level=error"}
        if rotation_cw:
            s.set_display_rotation(-rotation_cw)  # PyAV takes counter-clockwise degrees
        for i in range(n):
            img = np.ascontiguousarray(np.rot90(pattern(i, w, h), k=rotation_cw // 90))  # turned back
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pix_fmt.startswith("gray"):
                frame = frame.reformat(format=pix_fmt)
            frame.pts = pts_ms[i] if pts_ms is not None else i
            frame.time_base = tb
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


VFR_MS = [0, 33, 100, 133, 300, 333, 366, 600, 633, 666]
LATE_MS = [700 + t for t in VFR_MS]  # the first frame presented 0.7 s into the stream

# name -> (writer, expected frame count or None for a CarlError, expected timestamps)
CASES = {
    "h264.mp4": (lambda p: encode(p, 20), 20, np.arange(20) / 30),
    "h265.mkv": (lambda p: encode(p, 20, codec="libx265"), 20, np.arange(20) / 30),
    "h265.mp4": (lambda p: encode(p, 12, codec="libx265", fps=25), 12, np.arange(12) / 25),
    "vp9.webm": (lambda p: encode(p, 20, codec="libvpx-vp9"), 20, np.arange(20) / 30),
    "mjpeg.avi": (lambda p: encode(p, 20, codec="mjpeg", pix_fmt="yuvj420p"), 20, np.arange(20) / 30),
    "h264.mov": (lambda p: encode(p, 20, fps=24), 20, np.arange(20) / 24),
    "vfr.mkv": (lambda p: encode(p, 10, pts_ms=VFR_MS), 10, np.array(VFR_MS) / 1000),
    "late_vfr.mp4": (lambda p: encode(p, 10, pts_ms=LATE_MS), 10, np.array(VFR_MS) / 1000),
    "rot90.mp4": (lambda p: encode(p, 10, w=64, h=48, rotation_cw=90), 10, np.arange(10) / 30),
    "rot180.mov": (lambda p: encode(p, 10, rotation_cw=180), 10, np.arange(10) / 30),
    "rot270.mp4": (lambda p: encode(p, 10, w=64, h=48, rotation_cw=270), 10, np.arange(10) / 30),
    "odd_853x480.mp4": (lambda p: encode(p, 6, w=853, h=480, pix_fmt="yuv444p"), 6, np.arange(6) / 30),
    "ntsc_29.97.mp4": (lambda p: encode(p, 15, fps=30000 / 1001), 15, np.arange(15) * 1001 / 30000),
    "10bit_h264.mp4": (lambda p: encode(p, 12, pix_fmt="yuv420p10le"), 12, np.arange(12) / 30),
    "10bit_h265.mkv": (
        lambda p: encode(p, 12, codec="libx265", pix_fmt="yuv420p10le"),
        12,
        np.arange(12) / 30,
    ),
    "gray.mkv": (lambda p: encode(p, 12, codec="ffv1", pix_fmt="gray"), 12, np.arange(12) / 30),
    "gray_h264.mp4": (lambda p: encode(p, 12, pix_fmt="gray"), 12, np.arange(12) / 30),
    "one_frame.mp4": (lambda p: encode(p, 1), 1, np.zeros(1)),
    "audio_only.m4a": (audio_only, None, None),
    "audio_only.mp4": (audio_only, None, None),
    "zero_bytes.mp4": (lambda p: p.write_bytes(b"") and p, None, None),
    "text.mp4": (lambda p: p.write_text("this is not a video\n" * 50) and p, None, None),
    "random_bytes.mov": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)) and p, None, None),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("matrix")
    out = {}
    for name, (write, _, _) in CASES.items():
        write(d / name)
        out[name] = d / name
    # cut-off files: the moov atom up front (faststart) or at the end (a dying recorder)
    full = encode(d / "long.mkv", 60)
    out["truncated.mkv"] = d / "truncated.mkv"
    out["truncated.mkv"].write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    mp4 = encode(d / "long.mp4", 60)
    out["truncated_end.mp4"] = d / "truncated_end.mp4"
    out["truncated_end.mp4"].write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> CARLModel:
    torch.manual_seed(0)
    cfg = load_preset("small").with_overrides(model={"image_size": S})
    return CARLModel(cfg.model).eval()


@pytest.fixture
def seen(monkeypatch) -> list[np.ndarray]:
    """Every frame handed to the model's engine, in order."""
    frames: list[np.ndarray] = []
    for engine in (embed_module._OnnxEngine, embed_module._TorchEngine):
        original = engine.prepare

        def prepare(self, x, original=original):
            frames.extend(np.array(x))
            return original(self, x)

        monkeypatch.setattr(engine, "prepare", prepare)
    return frames


# --------------------------------------------------------------------------- generated files


@pytest.mark.parametrize("name", list(CASES))
def test_generated_file(files, model, seen, name):
    _, count, stamps = CASES[name]
    folder_before = sorted(os.listdir(files[name].parent))
    if count is None:
        with pytest.raises(CarlError) as err:
            embed_video(model, files[name], cache_dir=False)
        assert files[name].name in str(err.value)  # the message names the file ...
        assert re.search(r"\. [A-Z]", str(err.value))  # ... and says what to do next
    else:
        result = embed_video(model, files[name], cache_dir=False)
        embs, ts = result
        assert embs.shape == (count, 128) and embs.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(ts, stamps, atol=1e-3)
        # what the model saw: model-sized, upright, every frame once, in order
        assert len(seen) == count and seen[0].shape == (S, S, 3)
        assert [read_pattern(f) for f in seen] == [(i, True) for i in range(count)]
        # each embedded frame's number in the file is the one the decoder gave it
        assert result.indices.tolist() == list(range(count)) and not result.blank.any()
    assert sorted(os.listdir(files[name].parent)) == folder_before  # nothing written beside it


@pytest.mark.parametrize("name", ["truncated.mkv", "truncated_end.mp4"])
def test_truncated_file_gives_the_frames_that_decode_or_an_error(files, model, seen, name):
    try:
        result = embed_video(model, files[name], cache_dir=False)
    except CarlError as err:
        assert files[name].name in str(err)
        return
    # A prefix of the 60 frames, each at its own timestamp: never shifted or repeated.
    embs, ts = result
    n = len(embs)
    assert 0 < n <= 60 and len(ts) == n
    indices = [read_pattern(f)[0] for f in seen]
    assert indices == sorted(set(indices)) and len(indices) == n
    np.testing.assert_allclose(ts, np.array(indices) / 30, atol=1e-3)
    assert result.indices.tolist() == indices  # the frames that decoded, by their own numbers


@pytest.mark.parametrize("name", ["vfr.mkv", "late_vfr.mp4"])
def test_fps_sampling_on_a_variable_rate_file(files, model, seen, name):
    # 5 fps grid over 0.7 s: 0, 0.2, 0.4, 0.6 s -> nearest real frames at 0, 0.133, 0.366, 0.6 s
    result = embed_video(model, files[name], fps=5, cache_dir=False)
    embs, ts = result
    assert len(embs) == len(ts) == 4
    np.testing.assert_allclose(ts, [0.0, 0.133, 0.366, 0.6], atol=1e-3)
    assert [read_pattern(f)[0] for f in seen] == [0, 3, 6, 7]
    # The frame numbers are the decoded frames' own: round(time x fps) would say otherwise here.
    assert result.indices.tolist() == [0, 3, 6, 7]
    fps = probe_video(files[name]).fps
    assert np.rint(ts * fps).astype(int).tolist() != [0, 3, 6, 7]
    # ... and they come back from the cache too
    embed_video(model, files[name], fps=5)
    cached = embed_video(model, files[name], fps=5)
    assert cached.indices.tolist() == [0, 3, 6, 7] and cached.blank.tolist() == [False] * 4


def test_decoders_agree_end_to_end(files, model):
    a, ta = embed_video(model, files["h264.mp4"], cache_dir=False, decoder="decord")
    b, tb = embed_video(model, files["h264.mp4"], cache_dir=False, decoder="pyav")
    np.testing.assert_array_equal(ta, tb)
    assert (a * b).sum(axis=1).min() > 0.99  # the two decoders resample slightly differently


def test_missing_file_and_folder(tmp_path, model):
    with pytest.raises(VideoError, match="not found"):
        embed_video(model, tmp_path / "nope.mp4", cache_dir=False)
    with pytest.raises(VideoError, match="not a file"):
        embed_video(model, tmp_path, cache_dir=False)


def test_a_symlinked_copy_embeds_the_same(files, model, tmp_path):
    link = tmp_path / "link.mp4"
    os.symlink(files["h264.mp4"], link)
    copy = shutil.copy(files["h264.mp4"], tmp_path / "copy.mp4")
    a, _ = embed_video(model, link)
    b, _ = embed_video(model, copy)  # the same content: served from the cache
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- real clips


def _listed_counts() -> dict[str, tuple[int, float]]:
    """File -> (frames, fps) from the table in SOURCES.md."""
    out = {}
    for line in real_clip("SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 8 and cells[1].endswith((".mp4", ".avi", ".mkv", ".ogg")):
            out[cells[1]] = (int(cells[7]), float(cells[6]))
    return out


# Collected even where ../shared is absent: then every real-clip test is skipped, not an error.
CLIP_NAMES = [
    "bicepmp__bicep_curl.mp4", "cosc428__reference_video.mp4", "decord__flipping_a_pancake.mkv",
    "felixchenfy__exercise.avi", "golfdb__test_video.mp4", "ikramaliokz__squat.mp4",
    "jtnicastro__pushup.mp4", "mmaction2__S001C001P001R001A001_rgb.avi", "mmaction2__demo.mp4",
    "mmaction2__test.avi", "mmaction2__test.mp4", "mmaction2__test_video_structuralize.mp4",
    "pose2sim__cam01.mp4", "pose2sim__cam02.mp4", "slomoloops__JumpingJacks_Occlusions.avi",
    "slomoloops__jumpingjacks2menlowres.ogg", "tayyab__pushup2.mp4", "yuyoujiang__squat.mp4",
]  # fmt: skip


def test_every_real_clip_is_listed():
    folder = real_clip("SOURCES.md").parent
    on_disk = sorted(p.name for p in folder.iterdir() if p.suffix in (".mp4", ".avi", ".mkv", ".ogg"))
    assert on_disk == CLIP_NAMES and set(_listed_counts()) == set(CLIP_NAMES)


@pytest.mark.parametrize("name", CLIP_NAMES)
def test_real_clip(model, seen, name):
    path = real_clip(name)
    frames, fps = _listed_counts()[name]
    duration = frames / fps
    embs, ts = embed_video(model, path, fps=2, cache_dir=False)
    # one frame per half second: 0, 0.5, 1.0, ... before the end of the clip
    expected = int(np.ceil(duration * 2 - 1e-9))
    assert len(embs) == len(ts) == len(seen) == expected
    # nearest frames: within half a frame period, or a whole one past the last frame's start
    np.testing.assert_allclose(ts, np.arange(expected) / 2, atol=1 / fps + 1e-3)
    assert np.isfinite(embs).all()
    np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    assert seen[0].shape == (S, S, 3)
