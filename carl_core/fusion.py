"""The ``human`` model: the body-pose stream where a person is found, the picture where not.

A pose model (``pose_features``) aligns two different people doing the same action far better
than pixels: pose carries the action, pixels carry clothes, background and camera. But it sees
nothing where no person is found: a title card, a cut-away, a pan over a kitchen. There the
picture is all there is. ``FusedModel`` puts both in one embedding,

    e = normalise([ sqrt(w) * pose embedding  (zero where no body can be read),
                    sqrt(1 - w) * visual embedding ])

so the cosine of two frames with a person is ``w * cos(pose) + (1 - w) * cos(visual)``, of two
frames without one ``cos(visual)``, and of a frame with and one without at most ``sqrt(1-w)``:
a person never matches an empty frame well. The visual stream is frozen ImageNet
EfficientNet-Lite0 features (``features.ImageNetFeatures``), what aligns footage without people
best here; the pose stream is a CARL pose model trained on synthetic human motion.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from .config import ModelConfig
from .features import ImageNetFeatures
from .model import AttentionWindow, CARLModel

MIN_BODY_SHARE = 0.5  # a video with a readable body in fewer frames is embedded by the picture alone


def body_share(seq) -> float:
    """The share of a pose sequence's frames where a body can be read
    (``PoseSequence.body_visible``); 0 for an empty one."""
    seen = np.asarray(seq.body_visible, dtype=bool)
    return float(seen.mean()) if len(seen) else 0.0


def reads_pose(seq) -> bool:
    """Whether the ``human`` model reads a video's pose at all: a body in at least
    ``MIN_BODY_SHARE`` of its frames."""
    return body_share(seq) >= MIN_BODY_SHARE


def body_frames(seq) -> np.ndarray:
    """(T,) bool: the frames whose pose the ``human`` model reads: where a body can be read
    (``PoseSequence.body_visible``), in a video that ``reads_pose``. A video mostly without one
    (a kitchen, a pool, a face close-up) is all picture, as ImageNet features would embed it,
    rather than a patchwork of the two."""
    seen = np.asarray(seq.body_visible, dtype=bool)
    return seen if reads_pose(seq) else np.zeros_like(seen)


def build_model(cfg: ModelConfig, *, weights: str | None = None) -> CARLModel:
    """The model a config describes: a ``FusedModel`` where it names a visual stream beside the
    pose, else a ``CARLModel``. ``weights`` overrides the backbone weights (``"random"`` when a
    checkpoint will fill them)."""
    if weights is not None:
        cfg = dataclasses.replace(cfg, backbone_weights=weights)
    if cfg.visual_stream:
        return FusedModel(cfg)
    return CARLModel(cfg)


class FusedModel(CARLModel):
    """A pose model and a frozen visual model, fused per frame (see the module docstring).

    Trains as its pose model does (the visual stream has no trainable weights); embeds through
    ``embed.Embedder``, which runs both streams on the same frames and calls ``fuse``.
    """

    def __init__(self, cfg: ModelConfig):
        nn.Module.__init__(self)  # CARLModel.__init__ would build one stream
        self.cfg = cfg
        self.pose = CARLModel(dataclasses.replace(cfg, visual_stream=None))
        assert cfg.visual_stream is not None, "a fused model names its visual stream"
        self.visual = ImageNetFeatures(
            cfg.visual_stream, weights=cfg.backbone_weights, image_size=cfg.image_size
        )
        # what training touches is the pose model's
        self.backbone, self.head, self.projection = self.pose.backbone, self.pose.head, self.pose.projection

    @property
    def streams(self) -> tuple[str, ...]:
        return ("pose", "pixels")

    def train(self, mode: bool = True) -> FusedModel:
        nn.Module.train(self, mode)
        self.pose.train(mode)
        self.visual.eval()  # frozen, BatchNorm statistics included
        return self

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.pose(*args, **kwargs)

    def fuse(
        self, pose: np.ndarray, present: np.ndarray, visual: np.ndarray, *, frames: bool = False
    ) -> np.ndarray:
        """(T, Dp) pose and (T, Dv) visual embeddings, (T,) bool person found -> (T, Dp + Dv).
        ``frames``: context-free frame embeddings, weighted by ``frame_pose_weight``."""
        w = float(self.cfg.frame_pose_weight if frames else self.cfg.pose_weight)
        present = np.asarray(present, dtype=bool)[:, None]
        # a frame with nobody is its picture alone, whatever w (even 1: never an all-zero row)
        out = np.concatenate(
            [math.sqrt(w) * pose * present, np.where(present, math.sqrt(1 - w), 1.0) * visual], axis=1
        ).astype(np.float32)
        # a frame with nobody keeps only its visual half: back to unit length
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    @torch.no_grad()
    def embed_frames(
        self,
        frames: torch.Tensor,
        window: AttentionWindow | None = None,
        times: np.ndarray | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(T, 3, H, W) ImageNet-normalised frames -> (T, D): the body's pose found in the frames
        themselves (tracked, as in a video), fused with their visual features."""
        from .pose import pose_of_frames

        visual = self.visual.embed_frames(frames).cpu().numpy()
        seq = pose_of_frames(frames, times)
        pose = self.pose.embed_pose(seq).cpu().numpy()
        return torch.from_numpy(self.fuse(pose, body_frames(seq), visual))


__all__ = ["MIN_BODY_SHARE", "FusedModel", "body_frames", "body_share", "build_model", "reads_pose"]
