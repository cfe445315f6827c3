"""The CARL encoder: a frame-wise backbone, then a transformer over the whole sequence.

Follows the authors' ``models/transformer.py`` (minghchen/CARL_code, ``TransformerModel``)
so their checkpoints load and reproduce their outputs, written in the order data flows:
backbone (frozen stages without gradients, fine-tuned stages) -> spatial max-pool ->
fully-connected layers -> linear to the transformer width -> sinusoidal positions ->
pre-norm transformer encoder -> linear to the embedding -> L2 norm. The projection head
is used by the training loss only.

Long videos: the transformer sees the whole sequence with full attention up to
``AttentionWindow.max_full`` frames. Beyond that, overlapping windows run the transformer and
their outputs are blended (``AttentionWindow``), so time and memory grow linearly with length.
Every frame keeps the position it has in the whole sequence (the authors' rescaling of
positions to ``[0, train_len - 1]``), so a window computes what full attention would, except
that it sees only the frames inside it.

Two position schemes (``ModelConfig.positions``):
- ``"clip"``, the authors': sinusoidal codes of each frame's place in the clip, added to the
  input. Their checkpoints need it. But it tells every frame how far into the clip it is, so
  the same frames get other embeddings once footage is added around them.
- ``"time"``: no absolute position at all. Attention reaches only the frames within
  ``attention_span`` seconds (a band), and rotary codes of each frame's time turn the
  attention scores into functions of time differences alone. A frame's embedding then depends
  on its own neighbourhood only (``num_layers * attention_span`` seconds each side), whatever
  the footage around it, and frames sampled at any rate see the same time scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, build_backbone
from .config import ModelConfig
from .errors import ConfigError
from .skeleton import PoseSequence


def position_indices(length: int, train_len: int | None = None) -> np.ndarray:
    """Positions (length,) of a sequence: 0, 1, ... or, for another length than the training
    clip, spread evenly over ``[0, train_len - 1]`` (the authors' scheme), so the transformer
    sees the range it was trained on."""
    if train_len is None or length == train_len:
        return np.arange(length, dtype=np.float64)
    return np.linspace(0, train_len - 1, num=length)


def sincos_encoding(pos: np.ndarray, dim: int) -> torch.Tensor:
    """Sinusoidal codes (len(pos), dim) of the given positions, as the authors compute them.

    Note their exponent uses the channel index itself (``i / dim``), not ``2 * (i // 2) / dim``.
    """
    even = np.arange(0, dim, 2)
    odd = np.arange(1, dim, 2)
    enc = np.zeros((len(pos), dim))
    enc[:, even] = np.sin(pos[:, None] / 10000 ** (even / dim))
    enc[:, odd] = np.cos(pos[:, None] / 10000 ** (odd / dim))
    return torch.from_numpy(enc)


def sincos_positions(length: int, dim: int, train_len: int | None = None) -> torch.Tensor:
    """Sinusoidal position codes (length, dim) of a whole sequence, exactly as the authors'."""
    return sincos_encoding(position_indices(length, train_len), dim)


@dataclass(frozen=True)
class AttentionWindow:
    """How the transformer covers a long sequence at inference.

    Up to ``max_full`` frames: full attention over the whole sequence, as in the paper. Longer:
    windows of ``size`` frames, each overlapping the next by at least ``overlap`` frames (the
    last window ends at the last frame). Each window runs all transformer layers on its frames,
    which keep their positions in the whole sequence; in an overlap the windows' outputs are
    cross-faded with linear ramps, so no seam shows. Memory is linear in length either way (flash
    attention on CPU and GPU); windows bound the quadratic time. The defaults keep full
    attention for 13 minutes at 10 fps (4.5 at 30 fps), where it costs a few percent of the
    backbone's time on CPU; a 30-minute video at 10 fps (18,000 frames) gets 6 windows, 3x less
    work than full attention, and an hour at 30 fps 35 windows, 20x less.
    """

    max_full: int = 8192
    size: int = 4096
    overlap: int = 1024

    def __post_init__(self) -> None:
        if not (0 <= self.overlap < self.size <= self.max_full):
            raise ConfigError(f"an attention window needs 0 <= overlap < size <= max_full, got {self}")

    def starts(self, length: int) -> list[int]:
        """First frame of each window over a sequence of ``length`` frames (> max_full)."""
        step = self.size - self.overlap
        starts = list(range(0, length - self.size, step))
        return [*starts, length - self.size]

    def weights(self, start: int, length: int) -> torch.Tensor:
        """Blending weight (size,) of the window at ``start``: ramps where it meets a neighbour."""
        ramp = torch.arange(1, self.size + 1, dtype=torch.float64) / (self.overlap + 1)
        w = torch.ones(self.size, dtype=torch.float64)
        if start > 0:
            w = torch.minimum(w, ramp)
        if start + self.size < length:
            w = torch.minimum(w, ramp.flip(0))
        return w


DEFAULT_WINDOW = AttentionWindow()

# Rotary positions count 30ths of a second: the finest wavelength (2 pi units) spans ~6 frames
# of 30 fps video, the coarsest far more than any attention band.
TIME_UNIT = 1 / 30
# "time" scheme: sequences longer than this run in blocks with exact margins (see Head._by_blocks).
BLOCK = 2048


def rotary(pos: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (..., T, head_dim / 2) of rotary position codes at positions ``pos`` (..., T)."""
    inv_freq = 1.0 / 10000 ** (
        torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.float64) / head_dim
    )
    angles = pos.double()[..., None] * inv_freq
    return angles.cos(), angles.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (first half, second half) of x (B, h, T, d) by the given angles."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        b, s, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, d // self.heads).transpose(1, 2)

        q, k = split(self.q(x)), split(self.k(x))
        if rope is not None:  # (B, T, d/2) codes: scores then depend on time differences only
            cos, sin = (r[:, None].to(q.dtype) for r in rope)
            q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        # mask True where attention may look: (B, S) real keys (padding never attended to), or
        # (B, S, S) per query (a band). SDPA picks a fused kernel on GPUs.
        if mask is not None:
            mask = mask[:, None, None, :] if mask.dim() == 2 else mask[:, None]
        y = F.scaled_dot_product_attention(q, k, split(self.v(x)), mask)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class EncoderLayer(nn.Module):
    """Pre-norm: x + drop(attn(norm(x))), then x + drop(ff(norm(x)))."""

    def __init__(self, dim: int, heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, d_ff), nn.ReLU(), nn.Linear(d_ff, dim))
        self.drop = nn.Dropout(dropout)
        for p in self.parameters():  # as the authors initialise
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask, rope))
        return x + self.drop(self._feed_forward(self.norm2(x)))

    def _feed_forward(self, x: torch.Tensor, span: int = 1024) -> torch.Tensor:
        # Position-wise, so slices along time give the same result; at inference on a long
        # sequence they keep the d_ff-wide intermediates small (memory flat in the length).
        if torch.is_grad_enabled() or x.shape[1] <= span:
            return self.ff(x)
        return torch.cat([self.ff(part) for part in x.split(span, dim=1)], dim=1)


class Head(nn.Module):
    """Backbone feature maps (B, T, C, h, w) -> embeddings (B, T, D), not yet normalised."""

    def __init__(self, in_channels: int, cfg: ModelConfig):
        super().__init__()
        self.train_len = cfg.train_len
        self.positions, self.span = cfg.positions, cfg.attention_span
        self.head_dim = cfg.hidden_size // cfg.num_heads
        layers: list[nn.Module] = []
        for width in cfg.fc_layers:
            layers += [
                nn.Dropout(cfg.dropout),
                nn.Linear(in_channels, width),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            in_channels = width
        self.fc = nn.Sequential(*layers)
        self.to_hidden = nn.Linear(in_channels, cfg.hidden_size)
        self.pos_drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(cfg.hidden_size, cfg.num_heads, cfg.d_ff, cfg.dropout) for _ in range(cfg.num_layers)
        )
        self.to_embedding = nn.Linear(cfg.hidden_size, cfg.embedding_size)

    def frame_features(self, maps: torch.Tensor) -> torch.Tensor:
        """Per-frame part: (N, C, h, w) feature maps, or (N, C) vectors (a pose), -> (N, hidden).
        Independent across frames."""
        x = maps if maps.dim() == 2 else torch.amax(maps, dim=(-2, -1))  # spatial max-pool
        return self.to_hidden(self.fc(x))

    def sequence(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        window: AttentionWindow | None = None,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sequence part: (B, T, hidden) -> (B, T, D).

        ``times`` (B, T) seconds: each frame's time, which the "time" scheme needs (None: 30
        frames a second); the "clip" scheme ignores it. ``window`` (inference, "clip" scheme):
        see AttentionWindow.
        """
        t = x.shape[1]
        if self.positions == "time":
            if times is None:
                times = (
                    torch.arange(t, device=x.device, dtype=torch.float64).expand(x.shape[0], t) * TIME_UNIT
                )
            if t > BLOCK and mask is None:
                return self._by_blocks(x, times.to(x.device))
            return self._time_encode(x, times.to(x.device), mask)
        if window is not None and t > window.max_full:
            if mask is not None:
                raise ValueError("windowed attention is for unpadded inference sequences (mask=None)")
            return self._windowed(x, window)
        pos = sincos_positions(t, x.shape[2], self.train_len)
        return self._encode(x, pos.to(x.device, x.dtype), mask)

    def _time_encode(self, x: torch.Tensor, times: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The "time" scheme: band attention (|t_i - t_j| <= span) with rotary time codes."""
        times = times.double()
        band = (times[:, :, None] - times[:, None, :]).abs() <= self.span + 1e-9
        if mask is not None:
            band &= mask[:, None, :]
        # every query keeps itself, so a padded query's row is never empty (no NaN from softmax)
        band |= torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        rope = rotary(times / TIME_UNIT, self.head_dim)
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, band, rope)
        return self.to_embedding(x)

    def _by_blocks(self, x: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The "time" scheme on a long sequence, exactly: blocks of BLOCK frames, each run with
        every frame within ``num_layers * span`` seconds of it, the furthest any layer reaches."""
        reach = len(self.layers) * self.span + 1e-6
        t = times[0]
        outs = []
        for start in range(0, x.shape[1], BLOCK):
            stop = min(start + BLOCK, x.shape[1])
            lo = int(torch.searchsorted(t, t[start] - reach, right=False))
            hi = int(torch.searchsorted(t, t[stop - 1] + reach, right=True))
            y = self._time_encode(x[:, lo:hi], times[:, lo:hi], None)
            outs.append(y[:, start - lo : stop - lo])
        return torch.cat(outs, dim=1)

    def _encode(self, x: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.pos_drop(x + pos)
        for layer in self.layers:
            x = layer(x, mask)
        return self.to_embedding(x)

    def _windowed(self, x: torch.Tensor, window: AttentionWindow, per_pass: int = 4096) -> torch.Tensor:
        b, t, dim = x.shape
        pos = position_indices(t, self.train_len)  # positions in the whole sequence
        starts = window.starts(t)
        out = x.new_zeros(b, t, self.to_embedding.out_features, dtype=torch.float32)
        total = torch.zeros(t, dtype=torch.float64)
        per_pass = max(1, per_pass // (window.size * b))  # windows that run as one batch
        for i in range(0, len(starts), per_pass):
            group = starts[i : i + per_pass]
            xs = torch.cat([x[:, s : s + window.size] for s in group])
            ps = torch.cat(
                [sincos_encoding(pos[s : s + window.size], dim)[None].expand(b, -1, -1) for s in group]
            )
            ys = self._encode(xs, ps.to(x.device, x.dtype), None).float().view(len(group), b, window.size, -1)
            for s, y in zip(group, ys):
                w = window.weights(s, t)
                out[:, s : s + window.size] += y * w.to(out.device, out.dtype)[None, :, None]
                total[s : s + window.size] += w
        return (out / total.to(out.device, out.dtype)[None, :, None]).to(x.dtype)


class ProjectionHead(nn.Module):
    """Linear, BN, ReLU, linear; used by the training loss only (SimCLR-style)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(0, -2)).view(x.shape)


class CARLModel(nn.Module):
    def __init__(self, cfg: ModelConfig, backbone: Backbone | None = None):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone or _build_input(cfg)
        self.head = Head(self.backbone.out_channels, cfg)
        self.projection = ProjectionHead(cfg.embedding_size, cfg.projection_size)
        for p in self.backbone.frozen.parameters():
            p.requires_grad_(False)

    @property
    def streams(self) -> tuple[str, ...]:
        """What the model reads from a video: ("pixels",) or ("pose",)."""
        return ("pose",) if self.cfg.backbone == "pose" else ("pixels",)

    def train(self, mode: bool = True) -> CARLModel:
        super().train(mode)
        self.backbone.frozen.eval()  # frozen stages keep their BatchNorm statistics
        return self

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def frozen_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> frozen-stage feature maps, in chunks of ``frames_per_batch``, no grad."""
        with torch.no_grad():
            chunks = frames.split(self.cfg.frames_per_batch)
            return torch.cat([self.backbone.frozen(c) for c in chunks])

    def forward_frozen(
        self,
        feats: torch.Tensor,
        mask: torch.Tensor | None = None,
        project: bool = False,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frozen-stage features (B, T, C, h, w) -> L2-normalised embeddings (B, T, D).

        The entry point of the cached-feature training path, and the second half of forward.
        ``times`` (B, T) seconds: see ``Head.sequence``.
        """
        b, t = feats.shape[:2]
        per_frame = [
            self.head.frame_features(self.backbone.finetune(c))
            for c in feats.flatten(0, 1).split(self.cfg.frames_per_batch)
        ]
        x = self.head.sequence(torch.cat(per_frame).view(b, t, -1), mask, times=times)
        if project:
            x = self.projection(x)
        return F.normalize(x, dim=-1)

    def forward(
        self,
        frames: torch.Tensor,
        mask: torch.Tensor | None = None,
        project: bool = False,
        frozen_input: bool = False,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Frames (B, T, 3, H, W), ImageNet-normalised (a pose model: (B, T, 33, 8) landmarks,
        see ``pose_features``); mask (B, T) True/1 for real frames; times (B, T) seconds.

        With ``frozen_input`` the input is already frozen-stage features (B, T, C, h, w).
        """
        if mask is not None:
            mask = mask.bool()
        if frozen_input:
            return self.forward_frozen(frames, mask, project, times)
        b, t = frames.shape[:2]
        feats = self.frozen_features(frames.flatten(0, 1))
        return self.forward_frozen(feats.view(b, t, *feats.shape[1:]), mask, project, times)

    @torch.no_grad()
    def frame_features(self, frames: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """Per-frame part at inference: (N, 3, H, W) ImageNet-normalised (or a pose model's
        (N, 33, 8) landmarks) -> (N, hidden) float32.

        Batches of ``batch`` frames (default ``frames_per_batch``; inference needs no gradients,
        so a GPU can take far more); channels-last memory (faster convolutions on CPU and GPU);
        bf16 autocast on CUDA. The caller puts the model in eval mode.
        """
        cuda = self.device.type == "cuda"
        out = []
        for c in frames.split(batch or self.cfg.frames_per_batch):
            c = c.to(self.device, torch.float32, non_blocking=True)
            if c.dim() == 4:
                c = c.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                out.append(self.head.frame_features(self.backbone(c)).float())
        return torch.cat(out)

    @torch.no_grad()
    def embed_sequence(
        self,
        features: torch.Tensor,
        window: AttentionWindow | None = DEFAULT_WINDOW,
        times: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(T, hidden) per-frame features -> (T, D) L2-normalised embeddings (no projection).

        ``window``: how a long sequence is covered ("clip" scheme, ``AttentionWindow``; None:
        full attention). ``times`` (T,) seconds of each frame ("time" scheme; None: 30 per
        second). The caller puts the model in eval mode.
        """
        x = features.to(self.device, torch.float32)[None]
        if times is not None:
            times = torch.as_tensor(np.asarray(times, dtype=np.float64), device=self.device)[None]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            y = self.head.sequence(x, window=window, times=times)[0]
        return F.normalize(y.float(), dim=-1)

    @torch.no_grad()
    def embed_pose(self, seq: PoseSequence, window: AttentionWindow | None = DEFAULT_WINDOW) -> torch.Tensor:
        """A pose model's (T, D) L2-normalised embeddings of a ``PoseSequence`` (no projection)."""
        from .pose_features import model_input

        was_training = self.training
        self.eval()
        try:
            raw = torch.from_numpy(model_input(seq, self.cfg.pose_facing))
            learned = self.embed_sequence(self.frame_features(raw), window, seq.times)
        finally:
            self.train(was_training)
        return self._with_descriptor(learned, seq)

    def _with_descriptor(self, learned: torch.Tensor, seq: PoseSequence) -> torch.Tensor:
        """``[sqrt(w) * descriptor, sqrt(1 - w) * learned]`` for ``w = cfg.descriptor_weight``: the
        cosine of two frames is ``w`` parts the fixed pose descriptor's (each frame's joint angles
        and proportions, blind to camera and body size) and ``1 - w`` the learned embedding's. The
        descriptor knows nothing of time and cannot overfit the training motion; the learned part
        adds what training found beyond it. Training touches the learned part only. With
        ``cfg.descriptor_motion`` the descriptor carries its change over a few frames too
        (``pose_features.motion_descriptor``)."""
        w = float(self.cfg.descriptor_weight)
        if w == 0:
            return learned
        from .pose_features import motion_descriptor, pose_descriptor

        motion = float(self.cfg.descriptor_motion)
        fixed = motion_descriptor(seq, motion) if motion > 0 else pose_descriptor(seq)
        d = torch.from_numpy(fixed).to(learned)
        return F.normalize(torch.cat([math.sqrt(w) * d, math.sqrt(1 - w) * learned], dim=1), dim=1)

    @torch.no_grad()
    def embed_frames(
        self,
        frames: torch.Tensor,
        window: AttentionWindow | None = DEFAULT_WINDOW,
        times: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(T, 3, H, W) ImageNet-normalised frames -> (T, D) L2-normalised embeddings, no projection.

        ``times`` (T,) seconds: where each frame sits in time ("time" scheme; None: 30 per second).
        A pose model finds the body's pose in the frames first (tracked, as in a video).
        """
        if self.streams == ("pose",) and frames.dim() == 4 and frames.shape[1] == 3:
            from .pose import pose_of_frames

            return self.embed_pose(pose_of_frames(frames, times), window)
        was_training = self.training
        self.eval()
        try:
            return self.embed_sequence(self.frame_features(frames), window, times)
        finally:
            self.train(was_training)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def _build_input(cfg: ModelConfig) -> Backbone:
    """The per-frame input stage: an image backbone, or for a pose model the (weightless)
    landmark features of ``pose_features``."""
    if cfg.backbone == "pose":
        from .pose_features import PoseFeatures

        features = PoseFeatures(cfg.pose_input)
        return Backbone("pose", features, nn.Identity(), features.out_channels, 0)
    return build_backbone(cfg.backbone, cfg.backbone_weights, cfg.finetune_blocks)
