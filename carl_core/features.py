"""Plain ImageNet features as frame embeddings: the baseline with no CARL head.

``imagenet_features(name)`` returns a ``CARLModel`` whose head is replaced by global average
pooling of the backbone's last feature map (what the ImageNet classifier itself looks at), so
``embed_video``, ``embed_frames``, alignment, retrieval and the map all take it unchanged. The
embeddings are L2-normalised like CARL's, 1280-d for EfficientNet-Lite0 (weights from pip, no
download) and 2048-d for ResNet-50 (downloaded once to the torch hub cache). Nothing in it
looks at more than one frame, which is the point of the comparison: CARL's transformer sees
the whole sequence.

"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import BACKBONES, build_backbone
from .config import ModelConfig
from .model import CARLModel

__all__ = ["ImageNetFeatures", "imagenet_features"]


class PooledHead(nn.Module):
    """Head stand-in: global average pool per frame; the sequence part does nothing."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def frame_features(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.float().mean(dim=(-2, -1))

    def sequence(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        window: object = None,
        times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return x  # frames stay independent: no sequence model


class ImageNetFeatures(CARLModel):
    """The CARLModel interface over a frozen ImageNet backbone with no CARL head."""

    def __init__(
        self, backbone: str = "efficientnet_lite0", weights: str = "imagenet", image_size: int = 224
    ):
        nn.Module.__init__(self)  # CARLModel.__init__ would build the CARL head
        net = build_backbone(backbone, weights, finetune_blocks=0)
        channels = BACKBONES[net.name].out_channels
        self.cfg = ModelConfig(
            backbone=net.name,
            backbone_weights=weights,
            finetune_blocks=0,
            frames_per_batch=64,
            image_size=image_size,
            hidden_size=channels,  # the per-frame features the embedder collects are the pooled maps
            embedding_size=channels,
        )
        self.backbone = net
        # Duck-typed stand-ins (frame_features and sequence; a projection that does nothing).
        self.head = PooledHead(channels)  # type: ignore[assignment]
        self.projection = nn.Identity()  # type: ignore[assignment]
        self.requires_grad_(False)
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device


def imagenet_features(
    backbone: str = "efficientnet_lite0", device: str | torch.device | None = None
) -> ImageNetFeatures:
    """ImageNet features of ``backbone`` in eval mode (``WeightsError`` where weights are missing)."""
    model = ImageNetFeatures(backbone)
    return model.to(torch.device(device) if device is not None else torch.device("cpu")).eval()
