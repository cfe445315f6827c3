"""The CARL encoder: a frame-wise backbone, then a transformer over the whole sequence.

Follows the authors' ``models/transformer.py`` (minghchen/CARL_code, ``TransformerModel``)
so their checkpoints load and reproduce their outputs, written in the order data flows:
backbone (frozen stages without gradients, fine-tuned stages) -> spatial max-pool ->
fully-connected layers -> linear to the transformer width -> sinusoidal positions ->
pre-norm transformer encoder -> linear to the embedding -> L2 norm. The projection head
is used by the training loss only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, build_backbone
from .config import ModelConfig


def sincos_positions(length: int, dim: int, train_len: int | None = None) -> torch.Tensor:
    """Sinusoidal position codes (length, dim), exactly as the authors compute them.

    A sequence of another length than the training clip gets positions spread evenly over
    ``[0, train_len - 1]``, so the transformer sees the range it was trained on. Note their
    exponent uses the channel index itself (``i / dim``), not ``2 * (i // 2) / dim``.
    """
    if train_len is None or length == train_len:
        pos = np.arange(length, dtype=np.float64)
    else:
        pos = np.linspace(0, train_len - 1, num=length)
    even = np.arange(0, dim, 2)
    odd = np.arange(1, dim, 2)
    enc = np.zeros((length, dim))
    enc[:, even] = np.sin(pos[:, None] / 10000 ** (even / dim))
    enc[:, odd] = np.cos(pos[:, None] / 10000 ** (odd / dim))
    return torch.from_numpy(enc)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        assert dim % heads == 0, "transformer width must be divisible by the number of heads"
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, s, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, d // self.heads).transpose(1, 2)

        # mask (B, S) True for real frames: padded keys are never attended to. SDPA picks a
        # fused kernel on GPUs.
        attn_mask = None if mask is None else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask)
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

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.ff(self.norm2(x)))


class Head(nn.Module):
    """Backbone feature maps (B, T, C, h, w) -> embeddings (B, T, D), not yet normalised."""

    def __init__(self, in_channels: int, cfg: ModelConfig):
        super().__init__()
        self.train_len = cfg.train_len
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
        """Per-frame part: (N, C, h, w) feature maps -> (N, hidden). Independent across frames."""
        x = torch.amax(maps, dim=(-2, -1))  # spatial max-pool
        return self.to_hidden(self.fc(x))

    def sequence(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sequence part: (B, T, hidden) -> (B, T, D)."""
        pos = sincos_positions(x.shape[1], x.shape[2], self.train_len)
        x = self.pos_drop(x + pos.to(x.device, x.dtype))
        for layer in self.layers:
            x = layer(x, mask)
        return self.to_embedding(x)


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
        self.backbone = backbone or build_backbone(cfg.backbone, cfg.backbone_weights, cfg.finetune_blocks)
        self.head = Head(self.backbone.out_channels, cfg)
        self.projection = ProjectionHead(cfg.embedding_size, cfg.projection_size)
        for p in self.backbone.frozen.parameters():
            p.requires_grad_(False)

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
        self, feats: torch.Tensor, mask: torch.Tensor | None = None, project: bool = False
    ) -> torch.Tensor:
        """Frozen-stage features (B, T, C, h, w) -> L2-normalised embeddings (B, T, D).

        The entry point of the cached-feature training path, and the second half of forward.
        """
        b, t = feats.shape[:2]
        per_frame = [
            self.head.frame_features(self.backbone.finetune(c))
            for c in feats.flatten(0, 1).split(self.cfg.frames_per_batch)
        ]
        x = self.head.sequence(torch.cat(per_frame).view(b, t, -1), mask)
        if project:
            x = self.projection(x)
        return F.normalize(x, dim=-1)

    def forward(
        self,
        frames: torch.Tensor,
        mask: torch.Tensor | None = None,
        project: bool = False,
        frozen_input: bool = False,
    ) -> torch.Tensor:
        """Frames (B, T, 3, H, W), ImageNet-normalised; mask (B, T) True/1 for real frames.

        With ``frozen_input`` the input is already frozen-stage features (B, T, C, h, w).
        """
        if mask is not None:
            mask = mask.bool()
        if frozen_input:
            return self.forward_frozen(frames, mask, project)
        b, t = frames.shape[:2]
        feats = self.frozen_features(frames.flatten(0, 1))
        return self.forward_frozen(feats.view(b, t, *feats.shape[1:]), mask, project)

    @torch.no_grad()
    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) ImageNet-normalised frames -> (T, D) L2-normalised embeddings, no projection."""
        was_training = self.training
        self.eval()
        try:
            frames = frames.to(self.device, torch.float32)
            per_frame = [
                self.head.frame_features(self.backbone(c)) for c in frames.split(self.cfg.frames_per_batch)
            ]
            x = self.head.sequence(torch.cat(per_frame)[None])[0]
            return F.normalize(x, dim=-1)
        finally:
            self.train(was_training)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
