"""The sidebar's model picker, and models and embedders loaded once per server.

Choices: the bundled default (``assets/carl_small.pt``, or ``$CARL_DEFAULT_MODEL``), a run
trained in the Train tab, the user's own checkpoint or one released by the authors (a path or
an upload; ``carl_core.load_checkpoint`` reads both without running pickled code), or plain
ImageNet features with no CARL head (``carl_core.features``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

from app.session import ROOT, guard, upload_limit_mb, workspace
from carl_core.devices import default_device, describe_device
from carl_core.errors import CheckpointError

DEFAULT_ENV = "CARL_DEFAULT_MODEL"
DEFAULT = "CARL small (bundled default)"
OWN = "My checkpoint…"
AUTHORS = "The authors' released checkpoint…"
LITE0 = "ImageNet features: EfficientNet-Lite0 (no CARL head)"
RESNET = "ImageNet features: ResNet-50 (no CARL head, downloads once)"
TRAINED = "Trained here: "


def default_model_path() -> Path:
    return Path(os.environ.get(DEFAULT_ENV) or ROOT / "assets" / "carl_small.pt")


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
def _load(kind: str, target: str, key: str) -> torch.nn.Module:
    if kind == "features":
        from carl_core.features import imagenet_features

        return imagenet_features(target, device=device())
    from carl_core.checkpoint import load_checkpoint

    return load_checkpoint(target, device=device())


@st.cache_resource(show_spinner=False, max_entries=4)
def _embedder(key: str, _model: torch.nn.Module):
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
    options = [DEFAULT, *[TRAINED + label for label, _ in trained], OWN, AUTHORS, LITE0, RESNET]
    if st.session_state.get("model_choice") not in options:
        st.session_state["model_choice"] = DEFAULT
    choice = st.selectbox("Model", options, key="model_choice")
    if choice == DEFAULT:
        path = default_model_path()
        if not path.is_file():
            st.error(
                f"The default model {path} is missing. Train it with the recipe in the README "
                "(`carl train ... --preset small`), or choose another model above.",
                icon=":material/error:",
            )
            return None
        st.caption("EfficientNet-Lite0 + CARL head, trained on synthetic action videos.")
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
            path = _checkpoint_input("Checkpoint", "own" if choice == OWN else "authors")
            if path is None:
                st.info("Give a checkpoint to use it.", icon=":material/info:")
                return None
            if not path.is_file():
                raise CheckpointError(f"checkpoint not found: {path}. Check the path.")
            return ModelChoice("checkpoint", choice, path)
        return None
    if choice == RESNET:
        st.caption("Weights from torchvision, fetched once into the torch hub cache.")
        return ModelChoice("features", choice, backbone="resnet50")
    st.caption("1280-d pooled features per frame; no sequence model. A baseline for comparison.")
    return ModelChoice("features", choice, backbone="efficientnet_lite0")
