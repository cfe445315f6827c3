"""Shared fixtures: a tiny synthetic dataset on disk and a fast model configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from carl_core.config import CarlConfig, load_preset

# The real clips of ../shared (never committed); CARL_REAL_CLIPS points elsewhere.
_SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_CLIPS = Path(os.environ.get("CARL_REAL_CLIPS") or _SHARED / "data" / "real_clips")


def real_clip(name: str) -> Path:
    """The path of a real clip; the calling test (or fixture) is skipped where it is absent."""
    path = REAL_CLIPS / name
    if not path.is_file():
        pytest.skip(f"real clip {name} not found: {REAL_CLIPS} is absent (see ../shared)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Embedding cache, ONNX exports and training runs go to a temporary folder, never ~/.cache."""
    saved = {k: os.environ.get(k) for k in ("CARL_CACHE_DIR", "CARL_STUDIO_HOME")}
    os.environ["CARL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["CARL_STUDIO_HOME"] = str(tmp_path_factory.mktemp("studio_home"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """Ten 64x64 synthetic videos of two actions, 24-40 frames, in the authors' format."""
    from carl_core.synthetic import make_dataset

    out = tmp_path_factory.mktemp("tiny")
    return make_dataset(
        out,
        num_videos=10,
        seed=5,
        size=(64, 64),
        min_len=24,
        max_len=40,
        classes=("squat", "arm_raise"),
        workers=1,
    )


def fast_config(**train: object) -> CarlConfig:
    """The small preset shrunk for tests: 64 px, 8-frame clips, 2 cached copies."""
    return load_preset("small").with_overrides(
        model={"image_size": 64, "train_len": 8, "frames_per_batch": 32},
        data={"num_frames": 8},
        train={"epochs": 2, "batch_size": 2, "feature_copies": 2, "num_workers": 0, "save_every": 1, **train},
    )


def pytest_collection_modifyitems(session, config, items):
    """The browser tests last: the quick unit tests fail first, and the slow browser session
    (one server, one page, minutes) runs once the rest has passed."""
    items.sort(key=lambda item: "/e2e/" in str(item.path).replace("\\", "/"))
