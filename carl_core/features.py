"""Plain ImageNet features as frame embeddings: the baseline with no CARL head.

``imagenet_features(name)`` returns a ``CARLModel`` whose head is replaced by global average
pooling of the backbone's last feature map (what the ImageNet classifier itself looks at), so
``embed_video``, ``embed_frames``, alignment, retrieval and the map all take it unchanged. The
embeddings are L2-normalised like CARL's, 1280-d for EfficientNet-Lite0 (weights from pip, no
download) and 2048-d for ResNet-50 (downloaded once to the torch hub cache). Nothing in it
looks at more than one frame, which is the point of the comparison: CARL's transformer sees
the whole sequence.

``embed_image`` embeds a still picture with any such model (a one-frame sequence), for
retrieval by an image.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .backbone import BACKBONES, build_backbone
from .config import ModelConfig
from .errors import VideoError
from .model import CARLModel
from .preprocess import preprocess

__all__ = ["ImageNetFeatures", "embed_image", "imagenet_features"]


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


def embed_image(model: CARLModel, image: np.ndarray) -> np.ndarray:
    """(D,) L2-normalised embedding of one RGB uint8 picture (H, W, 3), as a one-frame sequence."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
        raise VideoError(
            f"expected an RGB picture (height, width, 3) of 8-bit values, got shape {image.shape} "
            f"and type {image.dtype}; give a PNG or JPEG file"
        )
    x = preprocess(np.ascontiguousarray(image[None, :, :, :3]), model.cfg.image_size, device=model.device)
    return model.embed_frames(x)[0].float().cpu().numpy()
