"""Two-view temporal sampling and per-view spatial augmentation, for training.

Follows the authors' ``datasets/{pouring,penn_action,finegym}.py`` (``sample_frames`` with the
``time_augment`` strategy) and ``datasets/data_augment.py`` (``create_ssl_data_augment``) of
minghchen/CARL_code, rewritten on plain torch so that it needs no torchvision and works on a
whole view at once: every spatial parameter is drawn once per view and applied to all of its
frames in batched tensor ops.

Pipeline of one training sample (``two_views``):
  1. ``time_augment`` picks two sets of frame indices (``steps``) and padding masks;
  2. the frames of both views are read once and fitted to ``size`` (as inference's
     ``preprocess.preprocess`` does);
  3. ``augment_view`` crops, flips, colour-jitters, blurs and greys each view on its own draw;
  4. ``normalize`` applies the ImageNet statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError, DataError
from .preprocess import FitMode, fit, normalize, resize, to_float_frames

# ITU-R 601 luma, as PIL's "L" conversion and torchvision's rgb_to_grayscale use.
_LUMA = (0.299, 0.587, 0.114)

Window = Literal["video", "clip"]
FrameSource = Callable[[np.ndarray], Any] | np.ndarray | Tensor


# --------------------------------------------------------------------------- temporal sampling


def _sample_view(
    seq_len: int,
    clip_len: int,
    rng: np.random.Generator,
    sampling_region: float,
    consistent_offset: float,
    window: Window,
    pre_offset: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    num_valid = min(seq_len, clip_len)
    expand = rng.uniform(1.0, sampling_region) if sampling_region > 1 else 1.0
    # The block of candidate positions is a stretched copy of the whole video (Pouring, Penn
    # Action) or of one clip (FineGym). Positions past the end of the video become padding.
    base = seq_len if window == "video" else num_valid
    block = math.ceil(expand * base)
    if pre_offset is not None and consistent_offset != 0:
        # The second view starts within `shift` frames of the first, so the two overlap.
        shift = int((1 - consistent_offset) * num_valid)
        low = max(0, min(seq_len - block, pre_offset - shift))
        high = max(1, min(seq_len - block + 1, pre_offset + shift + 1))
    else:
        low, high = 0, max(seq_len - block, 1)
    offset = int(rng.integers(low, max(high, low + 1)))
    raw = np.sort(offset + rng.choice(block, size=num_valid, replace=False))
    while raw[0] >= seq_len:
        # Every pick fell past the end (possible for very short videos): a view needs at least
        # one real frame, or the loss has nothing to compare. The authors do not guard this.
        raw = np.sort(offset + rng.choice(block, size=num_valid, replace=False))
    # Short videos: the authors pad with `seq_len`, which the mask below marks as padding.
    raw = np.concatenate([raw, np.full(clip_len - num_valid, seq_len, dtype=raw.dtype)])
    mask = (raw < seq_len).astype(np.float32)
    # Padded entries point at the last frame, so that they can still be read and embedded.
    return np.clip(raw, 0, seq_len - 1).astype(np.int64), mask


def time_augment(
    num_frames_video: int,
    clip_len: int,
    rng: np.random.Generator,
    *,
    sampling_region: float = 1.5,
    consistent_offset: float = 0.2,
    window: Window = "video",
) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping, randomly stretched sets of ``clip_len`` timestamps of one video.

    Each view draws a stretch ``r ~ U(1, sampling_region)`` and picks ``min(L, clip_len)`` sorted
    distinct positions out of a block of ``ceil(r * base)`` positions starting at an offset;
    ``base`` is the video length ``L`` (``window="video"``, the authors' Pouring and Penn Action
    code) or the clip length (``window="clip"``, their FineGym code, for long videos). Positions
    past the end of the video, and the tail of views of videos shorter than the clip, are
    padding. The second view's offset lies within ``(1 - consistent_offset) * clip`` frames of
    the first view's first frame. (With ``window="video"`` the block is never shorter than the
    video, so both offsets are 0, exactly as in the authors' code.)

    Returns ``steps`` (2, clip_len) int64, frame indices into the original video with padding
    clamped to ``L - 1``, sorted within each view, and ``masks`` (2, clip_len) float32, 1 for
    real frames and 0 for padding.
    """
    if num_frames_video < 1:
        raise DataError("the video has no frames: check that it decodes, or drop it from the dataset")
    if clip_len < 1:
        raise ConfigError(f"clip length must be at least 1, got {clip_len}")
    if sampling_region < 1:
        raise ConfigError(f"sampling_region must be >= 1, got {sampling_region}")
    if not 0 <= consistent_offset <= 1:
        raise ConfigError(f"consistent_offset must lie in [0, 1], got {consistent_offset}")
    if window not in ("video", "clip"):
        raise ConfigError(f"window must be 'video' or 'clip', got {window!r}")
    args = (num_frames_video, clip_len, rng, sampling_region, consistent_offset, window)
    steps0, mask0 = _sample_view(*args, pre_offset=None)
    steps1, mask1 = _sample_view(*args, pre_offset=int(steps0.min()))
    return np.stack([steps0, steps1]), np.stack([mask0, mask1])


# --------------------------------------------------------------------------- spatial augmentation


@dataclass
class AugmentConfig:
    """The authors' SimCLR-style view augmentation (``create_ssl_data_augment``, strength 1)."""

    random_crop: bool = True
    crop_scale: tuple[float, float] = (0.8, 1.0)  # fraction of the frame's area
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # width / height of the crop
    random_flip: bool = True
    flip_p: float = 0.5
    color_jitter: bool = True
    jitter_p: float = 0.8
    brightness: float = 0.8  # factors drawn from [1 - x, 1 + x]
    contrast: float = 0.8
    saturation: float = 0.8
    hue: float = 0.2  # shift drawn from [-x, x], in turns of the colour wheel
    # Blur lives inside the authors' colour jitter: it is drawn only when the jitter applies
    # (so 0.8 * 0.5 overall). They turn it off for FineGym.
    blur: bool = True
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # PIL's GaussianBlur radius is the std
    # Their loop blurs once after each of the four jitter ops; k passes of sigma equal one pass
    # of sigma * sqrt(k), which is what is applied. Set 1 for a single blur.
    blur_passes: int = 4
    grayscale: bool = True
    grayscale_p: float = 0.2

    @classmethod
    def from_data(cls, data: Any) -> AugmentConfig:
        """From any object with the boolean switches as attributes (e.g. ``config.DataConfig``)."""
        names = ("random_crop", "random_flip", "color_jitter", "blur", "grayscale")
        return cls(**{n: bool(getattr(data, n)) for n in names if hasattr(data, n)})


@dataclass
class ViewParams:
    """One draw of ``AugmentConfig``'s randomness: what ``apply_view`` does to every frame."""

    crop: tuple[int, int, int, int] | None = None  # top, left, height, width
    flip: bool = False
    jitter_order: tuple[int, ...] = ()  # 0 brightness, 1 contrast, 2 saturation, 3 hue
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    blur_sigma: float = 0.0  # 0: no blur
    grayscale: bool = False


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _crop_box(
    height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> tuple[int, int, int, int]:
    """Inception-style random crop, as the authors' ``_get_param_spatial_crop``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = _uniform(g, *scale) * area
        aspect = math.exp(_uniform(g, *log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=g))
            left = int(torch.randint(0, width - w + 1, (), generator=g))
            return top, left, h, w
    # Frames far from the allowed aspect ratios: the largest central crop within them.
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_view_params(cfg: AugmentConfig, height: int, width: int, generator: torch.Generator) -> ViewParams:
    """Draw one view's augmentation, in the order the authors apply it."""
    g = generator
    p = ViewParams()
    if cfg.random_crop:
        p.crop = _crop_box(height, width, cfg.crop_scale, cfg.crop_ratio, g)
    if cfg.random_flip:
        p.flip = _uniform(g, 0, 1) < cfg.flip_p
    if cfg.color_jitter and _uniform(g, 0, 1) < cfg.jitter_p:
        p.jitter_order = tuple(int(i) for i in torch.randperm(4, generator=g))
        p.brightness = _uniform(g, 1 - cfg.brightness, 1 + cfg.brightness)
        p.contrast = _uniform(g, 1 - cfg.contrast, 1 + cfg.contrast)
        p.saturation = _uniform(g, 1 - cfg.saturation, 1 + cfg.saturation)
        p.hue = _uniform(g, -cfg.hue, cfg.hue)
        if cfg.blur:
            sigma = _uniform(g, *cfg.blur_sigma)
            if _uniform(g, 0, 1) < cfg.blur_p:
                p.blur_sigma = sigma * math.sqrt(max(cfg.blur_passes, 1))
    if cfg.grayscale:
        p.grayscale = _uniform(g, 0, 1) < cfg.grayscale_p
    return p


def _luma(x: Tensor) -> Tensor:
    return (x * x.new_tensor(_LUMA).view(3, 1, 1)).sum(dim=-3, keepdim=True)


def grayscale(x: Tensor) -> Tensor:
    """Luma of (..., 3, H, W) RGB, repeated over the three channels."""
    return _luma(x).expand_as(x)


def _hue_parts(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Max, max - min and hue in sextants [0, 6) of (..., 3, H, W) RGB; grey pixels get hue 0."""
    r, g, b = x.unbind(dim=-3)
    maxc = torch.maximum(torch.maximum(r, g), b)
    delta = maxc - torch.minimum(torch.minimum(r, g), b)
    # A safe denominator: grey and black pixels would otherwise give 0 / 0 = NaN.
    d = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    return maxc, delta, torch.remainder(h, 6.0)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """(..., 3, H, W) RGB in [0, 1] to HSV in [0, 1]; grey pixels get hue 0 and saturation 0."""
    maxc, delta, h6 = _hue_parts(x)
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    return torch.stack([h6 / 6.0, s, maxc], dim=-3)


def _from_hue(maxc: Tensor, delta: Tensor, h6: Tensor) -> Tensor:
    # Closed form of HSV -> RGB: channel n in (R, G, B) = (5, 3, 1) is
    # v - v s clamp(min(k, 4 - k), 0, 1) with k = (n + 6 h) mod 6, and v s = max - min.
    n = torch.tensor([5.0, 3.0, 1.0], device=h6.device, dtype=h6.dtype).view(3, 1, 1)
    k = torch.remainder(h6.unsqueeze(-3) + n, 6.0)
    w = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    return maxc.unsqueeze(-3) - delta.unsqueeze(-3) * w


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of ``rgb_to_hsv``."""
    h, s, v = x.unbind(dim=-3)
    return _from_hue(v, v * s, torch.remainder(h, 1.0) * 6.0)


def adjust_hue(x: Tensor, shift: float) -> Tensor:
    """Rotate the hue of (..., 3, H, W) RGB by ``shift`` turns, as torchvision's adjust_hue."""
    # Value and saturation do not change, so only the hue is computed and rotated.
    maxc, delta, h6 = _hue_parts(x)
    return _from_hue(maxc, delta, h6 + 6.0 * shift)


def _blend(x: Tensor, other: Tensor, factor: float) -> Tensor:
    return (factor * x + (1 - factor) * other).clamp_(0, 1)


def _jitter(x: Tensor, p: ViewParams) -> Tensor:
    # Random order, like torchvision's ColorJitter; each op clips as PIL's uint8 images do.
    for op in p.jitter_order:
        if op == 0:
            x = (x * p.brightness).clamp_(0, 1)
        elif op == 1:
            # Contrast pulls each frame towards the mean of its own grey image.
            mean = _luma(x).mean(dim=(-2, -1), keepdim=True)
            x = _blend(x, mean, p.contrast)
        elif op == 2:
            x = _blend(x, grayscale(x), p.saturation)
        else:
            x = adjust_hue(x, p.hue).clamp_(0, 1)
    return x


def _blur_matrix(n: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(n, n) Gaussian blur along one axis, radius 3 sigma, edges replicated as PIL does."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=device)
    k = torch.exp(-0.5 * (offsets.to(dtype) / sigma) ** 2)
    k = k / k.sum()
    # Taps that fall outside the frame land on the edge pixel (replicate padding).
    cols = (torch.arange(n, device=device).view(-1, 1) + offsets).clamp_(0, n - 1)
    return torch.zeros(n, n, device=device, dtype=dtype).scatter_add_(1, cols, k.expand(n, -1).contiguous())


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (..., H, W) with standard deviation ``sigma`` in pixels."""
    # Two small matrix products beat a 1-channel conv2d by 2-3x on CPU and run the same
    # for any sigma; the matrices are at most out_size x out_size.
    h, w = x.shape[-2:]
    y = x @ _blur_matrix(w, sigma, x.device, x.dtype).T
    return _blur_matrix(h, sigma, x.device, x.dtype) @ y


def apply_view(frames: Tensor, params: ViewParams, out_size: int) -> Tensor:
    """Apply one drawn augmentation to all frames (T, 3, H, W) of a view."""
    x = frames
    if params.crop is not None:
        top, left, h, w = params.crop
        x = x[..., top : top + h, left : left + w]
    # Crop and resize first, so that the colour ops run on out_size frames.
    x = resize(x, out_size, out_size)
    if params.flip:
        x = x.flip(-1)
    if params.jitter_order:
        x = _jitter(x, params)
    if params.blur_sigma > 0:
        x = gaussian_blur(x, params.blur_sigma)
    if params.grayscale:
        x = grayscale(x)
    # Rounding (luma weights, blur) can step a hair outside [0, 1]; PIL's uint8 images cannot.
    return x.clamp(0, 1).contiguous()


def augment_view(frames: Tensor, cfg: AugmentConfig, generator: torch.Generator, out_size: int) -> Tensor:
    """One random augmentation, the same for every frame: (T, 3, H, W) in [0, 1] -> (T, 3, S, S)."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames of shape (T, 3, H, W), got {tuple(frames.shape)}")
    params = sample_view_params(cfg, frames.shape[-2], frames.shape[-1], generator)
    return apply_view(frames, params, out_size)


# --------------------------------------------------------------------------- two views


class TwoViews(NamedTuple):
    views: Tensor | None  # (2, T, 3, S, S) normalised; None when no frames were given
    steps: Tensor  # (2, T) int64, frame indices into the original video
    masks: Tensor  # (2, T) float32, 1 real frame, 0 padding


def _read(frames: FrameSource, indices: np.ndarray, device: torch.device | str | None) -> Tensor:
    if callable(frames):
        x = to_float_frames(frames(indices), device)
        if x.shape[0] != len(indices):
            raise DataError(f"asked the frame reader for {len(indices)} frames, it returned {x.shape[0]}")
        return x
    if isinstance(frames, np.ndarray):
        return to_float_frames(frames[indices], device)
    return to_float_frames(frames[torch.as_tensor(indices, device=frames.device)], device)


def two_views(
    num_frames_video: int,
    clip_len: int,
    rng: np.random.Generator,
    frames: FrameSource | None = None,
    *,
    size: int = 224,
    cfg: AugmentConfig | None = None,
    generator: torch.Generator | None = None,
    mode: FitMode = "resize",
    sampling_region: float = 1.5,
    consistent_offset: float = 0.2,
    window: Window = "video",
    device: torch.device | str | None = None,
) -> TwoViews:
    """One training sample: two temporally and spatially augmented views of a video.

    ``frames`` is the whole decoded video (uint8 (L, H, W, 3) or float (L, 3, H, W)), or a
    callable that takes sorted distinct frame indices and returns those frames in that order
    (so a reader decodes only the union of both views, once), or None: then only ``steps`` and
    ``masks`` are drawn, for training on cached per-frame features. Frames are first fitted to
    ``size`` with ``mode`` as ``preprocess`` does, so that training sees what inference sees.
    ``generator`` drives the spatial draws; by default it is seeded from ``rng``, so one seed
    reproduces the whole sample.
    """
    steps, masks = time_augment(
        num_frames_video,
        clip_len,
        rng,
        sampling_region=sampling_region,
        consistent_offset=consistent_offset,
        window=window,
    )
    steps_t, masks_t = torch.from_numpy(steps), torch.from_numpy(masks)
    if frames is None:
        return TwoViews(None, steps_t, masks_t)
    if generator is None:
        generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    cfg = cfg or AugmentConfig()
    union, inverse = np.unique(steps, return_inverse=True)
    fitted = fit(_read(frames, union, device), size, mode)
    inverse = torch.from_numpy(inverse.reshape(steps.shape)).to(fitted.device)
    views = torch.stack([augment_view(fitted[inverse[v]], cfg, generator, size) for v in range(2)])
    return TwoViews(normalize(views), steps_t, masks_t)
