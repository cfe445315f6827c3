"""The sidebar's model picker, and models and embedders loaded once per server.

Choices: the bundled default (``carl_core.DEFAULT_CHECKPOINT``, the ``human`` model: body pose
where a person is found, the picture elsewhere; or ``$CARL_DEFAULT_MODEL``), the small pixel
model trained on synthetic stick figures, a run trained in the Train tab, the user's own
checkpoint or one released by the authors (a path or an upload; ``carl_core.load_checkpoint``
reads both without running pickled code), or plain ImageNet features with no CARL head
(``carl_core.features``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st
import torch

from app.session import ROOT, guard, upload_limit_mb, workspace
from carl_core import DEFAULT_CHECKPOINT
from carl_core.devices import default_device, describe_device
from carl_core.errors import CheckpointError

if TYPE_CHECKING:
    from carl_core.embed import Embedder
    from carl_core.model import CARLModel

DEFAULT_ENV = "CARL_DEFAULT_MODEL"
DEFAULT = "CARL human (bundled default)"
SMALL = "CARL small (pixels, synthetic training)"
OWN = "My checkpoint…"
AUTHORS = "The authors' released checkpoint…"
LITE0 = "ImageNet Lite0 (visual, no CARL head)"
RESNET = "ImageNet ResNet-50 (downloads once)"
TRAINED = "Trained here: "


def default_model_path() -> Path:
    return Path(os.environ.get(DEFAULT_ENV) or DEFAULT_CHECKPOINT)


def small_model_path() -> Path:
    return ROOT / "assets" / "carl_small.pt"


def reads_pose(model: CARLModel) -> bool:
    """Whether the model reads body pose (a ``pose`` or fused ``human`` model)."""
    return "pose" in getattr(model, "streams", ())


def visual_choice() -> ModelChoice:
    """The visual model a pair falls back on where nobody is found: plain ImageNet Lite0 features."""
    return ModelChoice("features", LITE0, backbone="efficientnet_lite0")


def device() -> torch.device:
    return default_device()


def device_text() -> str:
    return describe_device()


@dataclass(frozen=True)
class ModelChoice:
    kind: str  # "checkpoint" | "features"
    label: str  # what the user sees
    path: Path | None = None  # the checkpoint
    backbone: str = ""  # for "features"

    @property
    def key(self) -> str:
        """Identity for caches: the file and its last change, or the backbone."""
        if self.path is None:
            return f"features:{self.backbone}"
        stat = self.path.stat()
        return f"ckpt:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(kind: str, target: str, key: str) -> CARLModel:
    if kind == "features":
        from carl_core.features import imagenet_features

        return imagenet_features(target, device=device())
    from carl_core.checkpoint import load_checkpoint

    return load_checkpoint(target, device=device())


@st.cache_resource(show_spinner=False, max_entries=4)
def _embedder(key: str, _model: CARLModel) -> Embedder:
    from carl_core.embed import Embedder

    return Embedder(_model)  # the library's disk cache: a video seen before comes back at once


def load(choice: ModelChoice):
    """(model, embedder) for a choice; ``CarlError`` for a checkpoint that does not load."""
    key = choice.key
    target = choice.backbone if choice.kind == "features" else str(choice.path)
    model = _load(choice.kind, target, key)
    return model, _embedder(key, model)


def _checkpoint_input(what: str, key: str) -> Path | None:
    """A checkpoint by path or by upload."""
    how = st.radio(
        f"{what} from",
        ["a path", "an upload"],
        horizontal=True,
        key=f"{key}_how",
        label_visibility="collapsed",
    )
    if how == "a path":
        text = st.text_input(
            f"Path of the {what.lower()}", key=f"{key}_path", placeholder="/path/to/checkpoint.pt"
        ).strip()
        return Path(text).expanduser() if text else None
    up = st.file_uploader(
        f"Drop the {what.lower()} here",
        type=["pt", "pth", "ckpt"],
        key=f"{key}_upload",
        help=f"Up to {upload_limit_mb()} MB.",
    )
    if up is None:
        return None
    return workspace().save_upload(up.getbuffer(), up.name, "checkpoints")


def picker(trained: list[tuple[str, Path]]) -> ModelChoice | None:
    """The sidebar model picker; returns None (with an error shown) where nothing usable is chosen."""
    options = [DEFAULT, SMALL, *[TRAINED + label for label, _ in trained], OWN, AUTHORS, LITE0, RESNET]
    if st.session_state.get("model_choice") not in options:
        st.session_state["model_choice"] = DEFAULT
    choice = st.selectbox("Model", options, key="model_choice")
    if choice in (DEFAULT, SMALL):
        path = default_model_path() if choice == DEFAULT else small_model_path()
        if not path.is_file():
            preset = "human" if choice == DEFAULT else "small"
            st.error(
                f"The model {path} is missing. Train it with the recipe in the README "
                f"(`carl train ... --preset {preset}`), or choose another model above.",
                icon=":material/error:",
            )
            return None
        if choice == DEFAULT:
            st.caption(
                "For videos of people: reads the body's pose (33 landmarks) where a person is found "
                "and the picture (EfficientNet-Lite0) elsewhere, under a CARL head trained on "
                "synthetic human motion."
            )
        else:
            st.caption("Pixels only: EfficientNet-Lite0 + CARL head, trained on synthetic stick figures.")
        return ModelChoice("checkpoint", choice, path)
    if choice.startswith(TRAINED):
        path = dict(trained)[choice.removeprefix(TRAINED)]
        st.caption(f"`{path}`")
        return ModelChoice("checkpoint", choice, path)
    if choice in (OWN, AUTHORS):
        if choice == AUTHORS:
            st.caption(
                "A `checkpoint_epoch_XXXXX.pth` from minghchen/CARL_code (ResNet-50 + transformer). "
                "Read as plain data: nothing in it is run."
            )
        with guard("reading the checkpoint"):
            given = _checkpoint_input("Checkpoint", "own" if choice == OWN else "authors")
            if given is None:
                st.info("Give a checkpoint to use it.", icon=":material/info:")
                return None
            if not given.is_file():
                raise CheckpointError(f"checkpoint not found: {given}. Check the path.")
            return ModelChoice("checkpoint", choice, given)
        return None
    if choice == RESNET:
        st.caption("No CARL head. Weights from torchvision, fetched once into the torch hub cache.")
        return ModelChoice("features", choice, backbone="resnet50")
    st.caption(
        "EfficientNet-Lite0's 1280-d ImageNet features per frame; no sequence model. What the "
        "picture alone says: a baseline, and the model for videos without people."
    )
    return visual_choice()
