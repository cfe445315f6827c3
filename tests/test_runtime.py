"""ONNX Runtime on CPU: equal to PyTorch within the stated tolerance, exported once, safe fallback."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from carl_core import runtime
from carl_core.config import load_preset
from carl_core.embed import Embedder
from carl_core.errors import ConfigError
from carl_core.model import CARLModel
from carl_core.preprocess import normalize, preprocess
from carl_core.video import read_video
from tests.conftest import real_clip

pytestmark = pytest.mark.timeout(180)
S = 64


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "carl_cache" / "onnx"  # shared with the other files


@pytest.fixture(scope="module")
def model() -> CARLModel:
    # The model of the other test files (ImageNet backbone, random head): its export is shared
    # through the session's cache folder.
    cfg = load_preset("small").with_overrides(model={"image_size": S})
    torch.manual_seed(0)
    return CARLModel(cfg.model).eval()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    f, _ = read_video(real_clip("golfdb__test_video.mp4"), size=(S, S), indices=range(0, 264, 11))
    return f


def test_frame_encoder_equals_pytorch(model, frames, onnx_dir):
    session = runtime.frame_encoder(model, onnx_dir)
    got = session(frames)
    with torch.no_grad():
        expected = model.head.frame_features(model.backbone(preprocess(frames, S))).numpy()
    assert got.shape == expected.shape == (len(frames), model.cfg.hidden_size)
    np.testing.assert_allclose(got, expected, atol=runtime.ATOL, rtol=runtime.RTOL)
    assert np.abs(expected).max() > 0.1  # not a vacuous comparison of near-zero features


def test_frozen_encoder_equals_pytorch(model, frames, onnx_dir):
    session = runtime.frozen_encoder(model, onnx_dir)
    x = preprocess(frames, S)
    expected = model.frozen_features(x).numpy()
    got = session(x.numpy())
    np.testing.assert_allclose(got, expected, atol=runtime.ATOL, rtol=runtime.RTOL)


def test_fast_frozen_features_for_the_training_cache(model, frames, onnx_dir):
    fast = runtime.fast_frozen_features(model, onnx_dir)
    assert fast is not model.frozen_features  # ONNX Runtime on this CPU
    x = normalize(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    torch.testing.assert_close(fast(x), model.frozen_features(x), atol=runtime.ATOL, rtol=runtime.RTOL)
    other = torch.nn.functional.interpolate(x, size=(S + 32, S + 32))  # another size: PyTorch
    torch.testing.assert_close(fast(other), model.frozen_features(other), atol=1e-6, rtol=0)


def test_exported_once_per_model(model, onnx_dir, monkeypatch):
    runtime.frame_encoder(model, onnx_dir)
    before = {p.name: p.stat().st_mtime_ns for p in onnx_dir.glob("frames-*.onnx")}
    monkeypatch.setattr(runtime, "export_onnx", lambda *a: pytest.fail("exported again"))
    runtime.frame_encoder(model, onnx_dir)
    runtime.frame_encoder(model, onnx_dir)
    assert set(before) == {p.name for p in onnx_dir.glob("frames-*.onnx")}


def test_changed_weights_get_a_new_file_unused_ones_do_not(model, onnx_dir):
    path = runtime.export_path(model, "frames", onnx_dir)
    twin = CARLModel(model.cfg).eval()
    twin.load_state_dict(model.state_dict())
    assert runtime.export_path(twin, "frames", onnx_dir) == path
    with torch.no_grad():  # the transformer is not in the per-frame graph
        twin.head.to_embedding.bias.add_(0.5)
        twin.head.layers[0].ff[0].weight.mul_(2)
    assert runtime.export_path(twin, "frames", onnx_dir) == path
    with torch.no_grad():
        twin.head.to_hidden.bias.add_(0.5)
    assert runtime.export_path(twin, "frames", onnx_dir) != path
    assert runtime.export_path(twin, "frozen", onnx_dir) == runtime.export_path(model, "frozen", onnx_dir)
    twin.backbone.frozen._bn0.running_var.mul_(2)  # frozen BatchNorm statistics
    assert runtime.export_path(twin, "frozen", onnx_dir) != runtime.export_path(model, "frozen", onnx_dir)


def test_a_graph_that_differs_from_pytorch_is_refused(model, onnx_dir, tmp_path, monkeypatch):
    good = runtime.frame_encoder(model, onnx_dir).path
    twin = CARLModel(model.cfg).eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        twin.head.to_hidden.bias.add_(1.0)
    # an exporter that gets something wrong: here, the graph of the unchanged model
    monkeypatch.setattr(runtime, "export_onnx", lambda module, example, path: shutil.copy(good, path))
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        runtime.frame_encoder(twin, tmp_path)
    assert not list(tmp_path.glob("*.onnx"))  # not kept for next time


def test_old_exports_are_pruned(tmp_path):
    for i in range(5):
        p = tmp_path / f"frames-x-64px-{i}.onnx"
        p.write_bytes(b"x")
        os.utime(p, ns=(i * 10**9, i * 10**9))
    (tmp_path / "frozen-x-64px-0.onnx").write_bytes(b"x")
    runtime._prune(tmp_path, "frames", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frames-x-64px-3.onnx",
        "frames-x-64px-4.onnx",
        "frozen-x-64px-0.onnx",
    ]


def test_embedder_falls_back_to_pytorch_when_export_fails(model, monkeypatch, caplog, tmp_path):
    def broken(*a):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(runtime, "export_onnx", broken)
    with caplog.at_level(logging.WARNING):
        assert Embedder(model, cache_dir=False, onnx_dir=tmp_path).engine_name == "torch"
    assert "unsupported operator" in caplog.text
    with pytest.raises(RuntimeError, match="unsupported"):
        Embedder(model, backend="onnx", cache_dir=False, onnx_dir=tmp_path).engine_name  # noqa: B018


def test_without_onnxruntime_auto_uses_pytorch_and_onnx_says_how_to_install(model, monkeypatch):
    monkeypatch.setattr(runtime, "available", lambda: False)
    assert Embedder(model, cache_dir=False).engine_name == "torch"
    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        Embedder(model, backend="onnx", cache_dir=False).engine_name  # noqa: B018
