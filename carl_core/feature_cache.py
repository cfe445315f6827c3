"""Frozen-backbone features of augmented copies of each training video, computed once.

The cached-feature training path (for machines without a GPU) runs the frozen backbone stages
once over ``feature_copies`` augmented renditions of every video; training then runs only the
fine-tuned stages and the head, drawing each view's frames from one copy's features.

Computing them (decoding every frame, then the backbone over each copy) is most of a short
run's start-up, and a resumed run, a "train longer" or a new run on the same videos needs the
very same numbers. So each video's copies are kept on disk under the cache root
(``features/``, an ``ArrayStore``), keyed by everything that determines them: the video file's
content, the frozen stages' weights, the augmentation settings and the seed of the copies' draws,
the number of copies, the input size, the sampling rate, the frames per backbone call and the
engine that runs the backbone. A resumed run reads exactly what the first one computed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .augment import AugmentConfig, apply_view, sample_view_params
from .cache import ArrayStore, default_cache_dir, file_digest, tensors_digest
from .config import CarlConfig
from .datasets import VideoRecord, read_record_frames
from .model import CARLModel
from .preprocess import fit, normalize, to_float_frames
from .progress import Progress

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_BYTES = 8 << 30  # least recently used videos' features go first beyond this


@dataclass(frozen=True)
class FeatureKey:
    """Everything that determines one video's cached features."""

    video: str  # file_digest of the video file
    frozen: str  # digest of the frozen stages' weights and the backbone's name
    frames: int  # the record's length (after resampling)
    fps: float | None  # the resampling rate (None: every frame)
    size: int  # model input size
    augment: str  # the AugmentConfig, as JSON
    copies: int
    seed: int  # seeds the copies' augmentation draws
    batch: int  # frames per backbone call
    engine: str  # "onnx" or "torch:<device type>": their float rounding differs
    version: int = FORMAT_VERSION


def copies_seed(config: CarlConfig, index: int) -> int:
    """The seed of the augmentation draws of the ``index``-th video's copies."""
    return config.train.seed * 1_000_003 + index


def _engine_name(model: CARLModel) -> str:
    from . import runtime

    # What fast_frozen_features runs here (it falls back to PyTorch only where ONNX breaks).
    return "onnx" if model.device.type == "cpu" and runtime.available() else f"torch:{model.device.type}"


class FeatureCache:
    """Frozen-backbone features of ``copies`` augmented renditions of each video, in float16."""

    def __init__(self, feats: list[list[torch.Tensor]]):
        self.feats = feats  # [video][copy] -> (L, C, h, w)

    @classmethod
    def build(
        cls,
        model: CARLModel,
        records: list[VideoRecord],
        config: CarlConfig,
        device: torch.device,
        on_progress: Progress | None = None,
        cache_dir: str | os.PathLike | bool = True,
    ) -> FeatureCache:
        """The features of every record: from the disk cache where there, else computed (and kept).

        ``cache_dir``: True for the default cache root, a folder, or False to keep nothing.
        """
        store = None
        if cache_dir is not False:
            root = default_cache_dir() if cache_dir is True else Path(cache_dir)
            store = ArrayStore(root / "features", MAX_BYTES, "cached features")
        keys = [_key(model, r, config, i, store) for i, r in enumerate(records)]
        frozen: Callable[[torch.Tensor], torch.Tensor] | None = None
        feats = []
        for i, (r, key) in enumerate(zip(records, keys)):
            found = store.get(key, ("feats",)) if store is not None and key is not None else None
            if found is not None:
                copies = [torch.from_numpy(c) for c in found["feats"]]
                what = "features from the cache"
            else:
                if frozen is None:
                    from .runtime import fast_frozen_features

                    frozen = fast_frozen_features(model)  # ONNX Runtime on CPU: several times PyTorch eager
                copies = _compute(frozen, r, config, copies_seed(config, i), device, _poolable(model))
                what = "features computed"
                if store is not None and key is not None:
                    try:
                        store.put(key, {"feats": torch.stack(copies).numpy()})
                    except OSError as exc:  # a full or read-only disk: the run goes on
                        log.warning("could not keep the features of %s (%s)", r.name, exc)
            feats.append(copies)
            if on_progress:
                on_progress(i + 1, len(records), f"{r.name}: {what}")
        return cls(feats)

    def sample(self, i: int, steps: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(2, T) steps -> (2, T, C, h, w): each view from its own augmented copy."""
        copies = self.feats[i]
        pick = rng.choice(len(copies), size=2, replace=len(copies) < 2)
        return torch.stack([copies[c][steps[v]] for v, c in enumerate(pick)])


def _key(
    model: CARLModel, record: VideoRecord, config: CarlConfig, index: int, store: ArrayStore | None
) -> FeatureKey | None:
    if store is None:
        return None
    try:
        video = file_digest(record.path, store.folder.parent / "files")
    except (OSError, ValueError) as exc:  # unreadable here: computing it will say why
        log.warning("no cache key for %s (%s)", record.name, exc)
        return None
    frozen = model.backbone.frozen.state_dict().items()
    aug = AugmentConfig.from_data(config.data)
    return FeatureKey(
        video=video,
        frozen=tensors_digest(frozen, {"backbone": model.backbone.name}),
        frames=record.seq_len,
        fps=config.data.fps,
        size=config.model.image_size,
        augment=json.dumps(dataclasses.asdict(aug), sort_keys=True),
        copies=config.train.feature_copies,
        seed=copies_seed(config, index),
        batch=config.model.frames_per_batch,
        engine=_engine_name(model),
    )


def _poolable(model: CARLModel) -> bool:
    """Whether nothing trainable runs before the head's spatial max-pool (``finetune_blocks: 0``).

    Then each copy can keep the pooled (C, 1, 1) vector instead of the (C, h, w) map: the head
    gives exactly the same numbers (the max of float16 values is the float16 of their max) from
    h * w times less memory (1280 x 7 x 7 -> 1280 for Lite0 at 224 px).
    """
    return isinstance(model.backbone.finetune, torch.nn.Identity)


def _compute(
    frozen: Callable[[torch.Tensor], torch.Tensor],
    record: VideoRecord,
    config: CarlConfig,
    seed: int,
    device: torch.device,
    pool: bool = False,
) -> list[torch.Tensor]:
    """(L, C, h, w) float16 frozen-stage maps of each augmented copy of one video ((L, C, 1, 1)
    maxima with ``pool``)."""
    aug, size = AugmentConfig.from_data(config.data), config.model.image_size
    frames = read_record_frames(record, np.arange(record.seq_len), size, config.data.fps)
    fitted = fit(to_float_frames(frames), size)
    gen = torch.Generator().manual_seed(seed)
    copies = []
    for _ in range(config.train.feature_copies):
        params = sample_view_params(aug, size, size, gen)
        chunks = []
        for ch in fitted.split(config.model.frames_per_batch):
            maps = frozen(normalize(apply_view(ch, params, size)).to(device))
            if pool:
                maps = torch.amax(maps, dim=(-2, -1), keepdim=True)
            chunks.append(maps.half().cpu())
        copies.append(torch.cat(chunks))
    return copies


__all__ = ["FeatureCache", "FeatureKey", "copies_seed"]
