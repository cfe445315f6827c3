"""What a frame becomes before the model sees it: float, fitted to a square, ImageNet-normalised.

Inference (``embed.py``, ``features.py``, ``runtime.py``) and training (``augment.py``, whose
views are fitted exactly as ``preprocess`` fits frames, so that training sees what inference
sees) both take it from here; nothing here knows about training.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError, VideoError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FitMode = Literal["resize", "center_crop"]


def normalize(x: Tensor, *, max_value: float = 1.0) -> Tensor:
    """ImageNet mean/std normalisation of (..., 3, H, W) with values in [0, ``max_value``].

    ``max_value=255`` takes raw bytes (as float) in one affine step, with no division first.
    """
    mean = x.new_tensor(IMAGENET_MEAN).view(3, 1, 1) * max_value
    std = x.new_tensor(IMAGENET_STD).view(3, 1, 1) * max_value
    return (x - mean) / std


def to_uint8_frames(x: Tensor) -> np.ndarray:
    """ImageNet-normalised frames (T, 3, H, W) back to uint8 RGB pictures (T, H, W, 3)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    rgb = (x.float() * std + mean).clamp(0, 1).mul(255).round().byte()
    return rgb.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def to_float_frames(frames: np.ndarray | Tensor, device: torch.device | str | None = None) -> Tensor:
    """uint8 (T, H, W, 3), as decoders give them, or float (T, 3, H, W) in [0, 1] -> float (T, 3, H, W)."""
    if isinstance(frames, np.ndarray) and not frames.flags.writeable:
        frames = frames.copy()  # torch cannot wrap read-only memory
    x = torch.as_tensor(frames)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if device is not None:
        x = x.to(device)
    if x.dtype == torch.uint8:
        if x.ndim == 4 and x.shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
        x = x.float().div_(255.0)
    elif x.dtype == torch.float64:
        x = x.float()
    elif not x.is_floating_point():
        raise ValueError(f"frames must be uint8 or floating point, got {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (T, H, W, 3) uint8 or (T, 3, H, W) float frames, got {tuple(x.shape)}")
    return x


def resize(x: Tensor, height: int, width: int) -> Tensor:
    """(..., 3, H, W) -> (..., 3, height, width), bilinear with antialiasing."""
    if x.shape[-2:] == (height, width):
        return x
    # Antialias matters when shrinking full-resolution video frames; it is a no-op when enlarging.
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def fit(x: Tensor, size: int, mode: FitMode = "resize") -> Tensor:
    """(T, 3, H, W) -> (T, 3, size, size), by squashing or by short-side resize + centre crop."""
    if mode == "resize":
        return resize(x, size, size)
    if mode != "center_crop":
        raise ConfigError(f"preprocessing mode must be 'resize' or 'center_crop', got {mode!r}")
    h, w = x.shape[-2:]
    if h <= w:
        nh, nw = size, max(size, round(w * size / h))
    else:
        nh, nw = max(size, round(h * size / w)), size
    x = resize(x, nh, nw)
    # Offsets rounded up, as the authors' uniform_crop does.
    top, left = math.ceil((nh - size) / 2), math.ceil((nw - size) / 2)
    return x[..., top : top + size, left : left + size]


def preprocess(
    frames: np.ndarray | Tensor,
    size: int = 224,
    mode: FitMode = "resize",
    device: torch.device | str | None = None,
    chunk: int = 64,
) -> Tensor:
    """Deterministic inference input: (T, 3, size, size) float, ImageNet-normalised.

    ``mode="resize"`` (default) squashes the whole frame to ``size x size``. That is what the
    authors' released checkpoints saw: their Pouring and Penn Action frames were stored already
    resized to 224 x 224 (``cv2.resize``), so their evaluation centre crop of 224 changed nothing.
    It also keeps the whole field of view, which alignment needs. ``mode="center_crop"`` resizes
    the shorter side to ``size`` and cuts the central square, keeping the aspect ratio.
    Frames are converted ``chunk`` at a time, so full-resolution float copies stay small.
    """
    if mode not in ("resize", "center_crop"):
        raise ConfigError(f"preprocessing mode must be 'resize' or 'center_crop', got {mode!r}")
    n = len(frames)
    parts = [
        normalize(fit(to_float_frames(frames[i : i + chunk], device), size, mode))
        for i in range(0, n, max(chunk, 1))
    ]
    if not parts:
        raise VideoError("no frames to preprocess: the video is empty or could not be decoded")
    return torch.cat(parts).contiguous()


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FitMode",
    "fit",
    "normalize",
    "preprocess",
    "resize",
    "to_float_frames",
]
