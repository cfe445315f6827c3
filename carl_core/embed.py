"""From a video file to frame embeddings: decode in chunks, backbone per chunk, head once.

The per-frame part of the encoder (backbone, pooling, fully-connected layers) runs chunk by
chunk as frames are decoded, so memory holds only one chunk of pixels plus a small
(T, hidden) array; the transformer then sees the whole sequence, as in the paper.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .augment import preprocess
from .errors import VideoError
from .model import CARLModel
from .video import iter_video, probe_video

Progress = Callable[[int, int, str], None]


@torch.no_grad()
def embed_video(
    model: CARLModel,
    path: str | Path,
    fps: float | None = None,
    *,
    chunk: int | None = None,
    on_progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (T, D) float32 and timestamps (T,) in seconds of a video file.

    ``fps=None`` embeds every decoded frame; otherwise frames are sampled at ``fps``.
    """
    info = probe_video(path)
    model.eval()
    size = model.cfg.image_size
    chunk = chunk or model.cfg.frames_per_batch
    expected = info.num_frames if fps is None or fps >= info.fps else max(1, round(info.duration * fps))
    feats, stamps, done = [], [], 0
    for frames, ts in iter_video(path, fps=fps, size=size, chunk=chunk):
        x = preprocess(frames, size, device=model.device)
        feats.append(model.head.frame_features(model.backbone(x)).float())
        stamps.append(ts)
        done += len(ts)
        if on_progress:
            on_progress(done, max(done, expected), f"embedded {done} frames")
    if not feats:
        raise VideoError(f"{path}: no frames could be decoded")
    x = model.head.sequence(torch.cat(feats)[None])[0]
    return F.normalize(x, dim=-1).cpu().numpy().astype(np.float32), np.concatenate(stamps)
