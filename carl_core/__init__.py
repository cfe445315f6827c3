"""CARL Studio's library: frame-wise action representations for long videos.

Implements CARL (Chen, Wei, Li, Cai, CVPR 2022, "Frame-wise Action Representations for Long
Videos via Sequence Contrastive Learning"). Knows nothing of the app. The public names below
are imported lazily, so ``python -m carl_core --help`` starts without loading torch.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from .errors import CarlError

__version__ = "0.1.0"

# The bundled default model (the ``human`` preset: body pose, with the picture where nobody is
# found), used by the app and by every command given no --checkpoint. See the README's recipe.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "assets" / "carl_human.pt"

_LAZY = {
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "CARLModel": "model",
    "embed_video": "embed",
    "Embedder": "embed",
    "default_fps": "embed",
    "dtw": "align",
    "FrameIndex": "retrieval",
    "CarlConfig": "config",
    "load_preset": "config",
}

__all__ = ["DEFAULT_CHECKPOINT", "CarlError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'carl_core' has no attribute {name!r}")
