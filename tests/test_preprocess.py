"""Tests for carl_core.preprocess: what a frame becomes before the model sees it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from carl_core.errors import ConfigError, VideoError
from carl_core.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize, preprocess


def test_inference_does_not_import_training():
    # Embedding a video, ImageNet features and the ONNX runtime need no training code.
    code = (
        "import sys, carl_core.embed, carl_core.features, carl_core.runtime; "
        "print(sorted(m for m in sys.modules if m in ('carl_core.augment', 'carl_core.train', "
        "'carl_core.losses')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_normalize_of_bytes_equals_normalize_of_unit_range():
    x = torch.arange(0, 256, dtype=torch.float32).repeat(3, 1).view(1, 3, 16, 16)
    torch.testing.assert_close(normalize(x, max_value=255.0), normalize(x / 255), atol=1e-5, rtol=1e-5)


def test_normalize_uses_imagenet_statistics():
    out = normalize(torch.ones(1, 3, 2, 2))
    expected = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_preprocess_center_crop_of_a_known_image():
    # Shorter side already equals the size: the output is exactly the central columns.
    img = np.zeros((1, 4, 10, 3), dtype=np.uint8)
    img[0, :, :, 0] = np.arange(10) * 20  # column index in the red channel
    img[0, :, :, 1] = np.arange(4)[:, None] * 50
    out = preprocess(img, 4, mode="center_crop")
    assert out.shape == (1, 3, 4, 4)
    raw = out[0] * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    np.testing.assert_allclose(raw[0, 0].numpy() * 255, [60, 80, 100, 120], atol=1e-3)
    np.testing.assert_allclose(raw[1, :, 0].numpy() * 255, [0, 50, 100, 150], atol=1e-3)


def test_preprocess_center_crop_keeps_the_middle_of_a_wide_frame():
    # Thirds: red | green | blue. The central square of a 3:1 frame is the green third.
    img = np.zeros((2, 40, 120, 3), dtype=np.uint8)
    img[:, :, :40, 0] = 255
    img[:, :, 40:80, 1] = 255
    img[:, :, 80:, 2] = 255
    out = preprocess(img, 20, mode="center_crop")
    raw = out * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    torch.testing.assert_close(
        raw[:, :, :, 2:18], torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(2, 3, 20, 16)
    )


def test_preprocess_resize_keeps_the_whole_frame():
    img = np.zeros((1, 40, 120, 3), dtype=np.uint8)
    img[:, :, :40, 0] = 255
    img[:, :, 80:, 2] = 255
    out = preprocess(img, 24)  # default mode "resize": squash to 24 x 24
    raw = out * torch.tensor(IMAGENET_STD).view(3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    assert out.shape == (1, 3, 24, 24)
    torch.testing.assert_close(
        raw[0, :, :, 1], torch.tensor([1.0, 0, 0]).view(3, 1).expand(3, 24), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        raw[0, :, :, 22], torch.tensor([0.0, 0, 1.0]).view(3, 1).expand(3, 24), atol=1e-5, rtol=0
    )


def test_preprocess_accepts_uint8_and_float_alike():
    img = np.random.default_rng(0).integers(0, 256, size=(3, 30, 50, 3), dtype=np.uint8)
    as_float = torch.from_numpy(img).permute(0, 3, 1, 2).float() / 255
    for mode in ("resize", "center_crop"):
        a = preprocess(img, 16, mode=mode)
        torch.testing.assert_close(a, preprocess(as_float, 16, mode=mode))
        assert a.shape == (3, 3, 16, 16) and torch.isfinite(a).all()
    with pytest.raises(ConfigError):
        preprocess(img, 16, mode="pad")


def test_preprocess_in_chunks_equals_all_at_once():
    img = np.random.default_rng(6).integers(0, 256, size=(7, 18, 26, 3), dtype=np.uint8)
    torch.testing.assert_close(preprocess(img, 12, chunk=3), preprocess(img, 12, chunk=100))
    with pytest.raises(VideoError):
        preprocess(np.zeros((0, 8, 8, 3), np.uint8), 8)
