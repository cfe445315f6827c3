"""Tests for carl_core.augment: two-view sampling and per-view augmentation."""

from __future__ import annotations

import colorsys
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from carl_core.augment import (
    AugmentConfig,
    ViewParams,
    adjust_hue,
    apply_view,
    augment_view,
    gaussian_blur,
    hsv_to_rgb,
    normalize,
    rgb_to_hsv,
    sample_view_params,
    time_augment,
    two_views,
)
from carl_core.errors import ConfigError, DataError

# Every op forced on, so that each test run covers crop, flip, jitter, blur and grayscale.
ALL_ON = AugmentConfig(flip_p=1.0, jitter_p=1.0, blur_p=1.0, grayscale_p=1.0)
ALL_OFF = AugmentConfig(random_crop=False, random_flip=False, color_jitter=False, blur=False, grayscale=False)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- time_augment


@pytest.mark.parametrize("window", ["video", "clip"])
@pytest.mark.parametrize("length", [1, 7, 40, 64, 300, 2000])
def test_steps_in_range_sorted_and_masked(window, length):
    clip = 64
    for seed in range(20):
        steps, masks = time_augment(length, clip, np.random.default_rng(seed), window=window)
        assert steps.shape == masks.shape == (2, clip)
        assert steps.dtype == np.int64
        assert steps.min() >= 0 and steps.max() <= length - 1
        assert np.all(np.diff(steps, axis=1) >= 0)
        assert set(np.unique(masks)) <= {0.0, 1.0}
        for v in range(2):
            real = steps[v][masks[v] == 1]
            assert len(real) >= 1
            assert len(np.unique(real)) == len(real)  # real frames are distinct
            # Padding only at the tail, and it points at the last frame.
            n = int(masks[v].sum())
            assert np.all(masks[v][:n] == 1) and np.all(masks[v][n:] == 0)
            assert np.all(steps[v][n:] == length - 1)
            assert n <= min(length, clip)


def test_short_video_padding_marks_the_tail():
    steps, masks = time_augment(10, 16, np.random.default_rng(0), sampling_region=1.0)
    # Without stretching, a short video is taken whole, then padded.
    for v in range(2):
        np.testing.assert_array_equal(steps[v], np.r_[np.arange(10), np.full(6, 9)])
        np.testing.assert_array_equal(masks[v], np.r_[np.ones(10), np.zeros(6)])


def test_stretch_leaves_padding_past_the_end():
    # The authors' Pouring/Penn sampling: block of ceil(r * L) >= L positions, the excess is padding.
    rng = np.random.default_rng(1)
    real = [time_augment(200, 200, rng)[1].sum(axis=1) for _ in range(50)]
    real = np.concatenate(real)
    assert real.max() <= 200 and real.min() >= 200 / 1.5 - 25
    assert real.mean() < 195  # stretched on average


def test_long_video_clip_window_is_dense_and_views_overlap():
    length, clip = 5000, 64
    for seed in range(200):
        steps, masks = time_augment(length, clip, np.random.default_rng(seed), window="clip")
        assert masks.all()  # the block always fits inside a long video
        spans = [(s.min(), s.max()) for s in steps]
        for lo, hi in spans:
            assert hi - lo < 1.5 * clip  # a stretched clip, not the whole video
        (a0, a1), (b0, b1) = spans
        assert max(a0, b0) <= min(a1, b1), f"views do not overlap for seed {seed}"


def test_video_window_views_overlap():
    for seed in range(50):
        steps, masks = time_augment(300, 64, np.random.default_rng(seed))
        real = [set(s[m == 1].tolist()) for s, m in zip(steps, masks)]
        lo = max(min(r) for r in real)
        hi = min(max(r) for r in real)
        assert lo <= hi


def test_time_augment_reproducible_with_seed():
    a = time_augment(500, 32, np.random.default_rng(7), window="clip")
    b = time_augment(500, 32, np.random.default_rng(7), window="clip")
    c = time_augment(500, 32, np.random.default_rng(8), window="clip")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_time_augment_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="no frames"):
        time_augment(0, 8, rng)
    with pytest.raises(ConfigError):
        time_augment(10, 8, rng, sampling_region=0.5)
    with pytest.raises(ConfigError):
        time_augment(10, 8, rng, consistent_offset=1.5)
    with pytest.raises(ConfigError):
        time_augment(10, 8, rng, window="middle")


# --------------------------------------------------------------------------- colour space


def test_rgb_to_hsv_matches_colorsys_and_round_trips():
    x = torch.rand(2, 3, 5, 6, generator=_gen(0))
    x[0, :, 0, 0] = 0.0  # black
    x[0, :, 0, 1] = 0.4  # grey
    x[0, :, 0, 2] = torch.tensor([0.2, 0.2, 0.7])  # ties between channels
    hsv = rgb_to_hsv(x)
    for t in range(2):
        for i in range(5):
            for j in range(6):
                expected = colorsys.rgb_to_hsv(*x[t, :, i, j].tolist())
                np.testing.assert_allclose(hsv[t, :, i, j].numpy(), expected, atol=1e-5)
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


def test_hue_shift_zero_and_full_turn_are_identity():
    x = torch.rand(3, 3, 8, 8, generator=_gen(1))
    torch.testing.assert_close(adjust_hue(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(adjust_hue(x, 1.0), x, atol=1e-5, rtol=0)


def test_hue_shift_turns_red_into_green():
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = adjust_hue(red, 1 / 3)
    torch.testing.assert_close(green[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_constant_images_give_no_nans(value):
    x = torch.full((3, 3, 16, 20), value)
    hsv = rgb_to_hsv(x)
    assert torch.isfinite(hsv).all()
    assert (hsv[:, 0] == 0).all() and (hsv[:, 1] == 0).all()
    for seed in range(10):
        out = augment_view(x, ALL_ON, _gen(seed), 12)
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


# --------------------------------------------------------------------------- augment_view


def test_augmentation_is_identical_across_frames_of_a_view():
    frame = torch.rand(1, 3, 30, 40, generator=_gen(2))
    frames = frame.expand(5, -1, -1, -1).clone()
    for cfg in (AugmentConfig(), ALL_ON, replace(ALL_ON, grayscale=False)):
        for seed in range(8):
            out = augment_view(frames, cfg, _gen(seed), 16)
            assert out.shape == (5, 3, 16, 16)
            for t in range(1, 5):
                torch.testing.assert_close(out[t], out[0], atol=1e-6, rtol=0)


def test_two_draws_differ_and_seed_reproduces():
    frames = torch.rand(4, 3, 24, 32, generator=_gen(3))
    g = _gen(10)
    a = augment_view(frames, AugmentConfig(), g, 16)
    b = augment_view(frames, AugmentConfig(), g, 16)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(augment_view(frames, AugmentConfig(), _gen(10), 16), a)


def test_augmented_views_are_finite_and_in_range():
    frames = torch.rand(6, 3, 36, 64, generator=_gen(4))
    for seed in range(10):
        out = augment_view(frames, ALL_ON, _gen(seed), 20)
        assert out.shape == (6, 3, 20, 20)
        assert torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1


def test_grayscale_output_has_equal_channels():
    frames = torch.rand(3, 3, 20, 20, generator=_gen(5))
    out = augment_view(frames, replace(ALL_OFF, grayscale=True, grayscale_p=1.0), _gen(0), 20)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 1], out[:, 2])
    expected = 0.299 * frames[:, 0] + 0.587 * frames[:, 1] + 0.114 * frames[:, 2]
    torch.testing.assert_close(out[:, 0], expected)


def test_all_off_is_identity_at_the_same_size():
    frames = torch.rand(2, 3, 20, 20, generator=_gen(6))
    torch.testing.assert_close(augment_view(frames, ALL_OFF, _gen(0), 20), frames)


def test_apply_view_crop_flip_and_brightness():
    frames = torch.rand(2, 3, 20, 30, generator=_gen(7))
    out = apply_view(frames, ViewParams(crop=(2, 5, 10, 10), flip=True), 10)
    torch.testing.assert_close(out, frames[..., 2:12, 5:15].flip(-1))
    square = frames[..., :20]
    dark = apply_view(square, ViewParams(jitter_order=(0,), brightness=0.5), 20)
    torch.testing.assert_close(dark, square * 0.5)
    bright = apply_view(square, ViewParams(jitter_order=(0,), brightness=1.8), 20)
    torch.testing.assert_close(bright, (square * 1.8).clamp(0, 1))


def test_contrast_and_saturation_zero_give_mean_and_grey():
    frames = torch.rand(2, 3, 8, 8, generator=_gen(8))
    flat = apply_view(frames, ViewParams(jitter_order=(1,), contrast=0.0), 8)
    luma = 0.299 * frames[:, 0] + 0.587 * frames[:, 1] + 0.114 * frames[:, 2]
    torch.testing.assert_close(flat, luma.mean(dim=(-2, -1)).view(2, 1, 1, 1).expand_as(frames))
    grey = apply_view(frames, ViewParams(jitter_order=(2,), saturation=0.0), 8)
    torch.testing.assert_close(grey, luma.unsqueeze(1).expand_as(frames))


def test_blur_keeps_constants_and_smooths_noise():
    const = torch.full((1, 3, 10, 10), 0.3)
    torch.testing.assert_close(gaussian_blur(const, 3.0), const)
    noise = torch.rand(1, 3, 32, 32, generator=_gen(9))
    blurred = gaussian_blur(noise, 1.5)
    assert blurred.std() < 0.5 * noise.std()
    torch.testing.assert_close(blurred.mean(), noise.mean(), atol=0.02, rtol=0)


def test_crop_parameters_follow_the_config():
    for seed in range(50):
        p = sample_view_params(AugmentConfig(), 100, 100, _gen(seed))
        top, left, h, w = p.crop
        assert top >= 0 and top + h <= 100 and left >= 0 and left + w <= 100
        assert 0.8 * 100 * 100 - 200 <= h * w <= 100 * 100
        assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
    # A 16:9 frame cannot hold 80% of its area at ratio <= 4/3: the authors fall back to the
    # largest central 4:3 crop.
    assert sample_view_params(AugmentConfig(), 360, 640, _gen(0)).crop == (0, 80, 360, 480)


def test_from_data_reads_switches():
    class Data:
        random_crop = False
        random_flip = True
        color_jitter = False
        blur = False
        grayscale = True

    cfg = AugmentConfig.from_data(Data())
    assert (cfg.random_crop, cfg.random_flip, cfg.color_jitter, cfg.blur, cfg.grayscale) == (
        False,
        True,
        False,
        False,
        True,
    )


# --------------------------------------------------------------------------- two_views


def test_two_views_indexes_the_right_frames():
    # Each frame is a constant image whose value encodes its index; no spatial augmentation.
    length, size = 30, 8
    frames = torch.arange(length, dtype=torch.float32).div(length).view(length, 1, 1, 1)
    frames = frames.expand(length, 3, size, size).contiguous()
    out = two_views(length, 12, np.random.default_rng(0), frames, size=size, cfg=ALL_OFF)
    assert out.views.shape == (2, 12, 3, size, size)
    torch.testing.assert_close(out.views, normalize(frames[out.steps]))


def test_two_views_reader_is_asked_once_for_the_union():
    length = 50
    video = np.random.default_rng(1).integers(0, 256, size=(length, 24, 32, 3), dtype=np.uint8)
    calls = []

    def reader(idx: np.ndarray) -> np.ndarray:
        calls.append(idx)
        return video[idx]

    views, steps, masks = two_views(length, 16, np.random.default_rng(2), reader, size=12)
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], np.unique(steps.numpy()))
    assert views.shape == (2, 16, 3, 12, 12) and views.dtype == torch.float32
    assert steps.shape == masks.shape == (2, 16) and steps.dtype == torch.int64
    assert torch.isfinite(views).all()
    # The same seed gives the same sample, from a reader or from the array.
    again = two_views(length, 16, np.random.default_rng(2), video, size=12)
    torch.testing.assert_close(again.views, views)


def test_two_views_without_frames_draws_the_same_steps():
    with_frames = two_views(40, 16, np.random.default_rng(3), np.zeros((40, 8, 8, 3), np.uint8), size=8)
    steps_only = two_views(40, 16, np.random.default_rng(3))
    assert steps_only.views is None
    torch.testing.assert_close(steps_only.steps, with_frames.steps)
    torch.testing.assert_close(steps_only.masks, with_frames.masks)


def test_two_views_each_view_gets_its_own_augmentation():
    frame = np.random.default_rng(4).integers(0, 256, size=(1, 20, 20, 3), dtype=np.uint8)
    video = np.repeat(frame, 10, axis=0)  # every frame the same: only augmentation can differ
    differ = 0
    for seed in range(5):
        views = two_views(10, 6, np.random.default_rng(seed), video, size=16).views
        for v in range(2):
            torch.testing.assert_close(views[v], views[v, :1].expand_as(views[v]))
        differ += not torch.allclose(views[0], views[1])
    assert differ >= 4


def _write_video(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())


def test_two_views_from_a_real_video_file(tmp_path):
    # A horizontal ramp that moves with time, a vertical ramp, and constant blue.
    t, y, x = np.meshgrid(np.arange(24), np.arange(48), np.arange(64), indexing="ij")
    frames = np.stack([(x * 4 + t * 8) % 256, y * 5, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    path = tmp_path / "clip.mp4"
    _write_video(path, frames)

    def reader(idx: np.ndarray) -> np.ndarray:
        with av.open(str(path)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return np.stack(decoded)[idx]

    views, steps, masks = two_views(24, 32, np.random.default_rng(5), reader, size=32, window="clip")
    assert views.shape == (2, 32, 3, 32, 32)
    assert torch.isfinite(views).all()
    assert masks.sum(dim=1).le(24).all() and (masks[:, -8:] == 0).all()  # a short video is padded
    assert steps.max() <= 23
