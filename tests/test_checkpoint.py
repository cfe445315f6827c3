"""Checkpoints: our own format round-trips; the authors' load safely and reproduce their model."""

from __future__ import annotations

import argparse
import pickle

import pytest
import torch
from easydict import EasyDict

from carl_core import load_checkpoint
from carl_core.checkpoint import model_payload, read_checkpoint, save_checkpoint
from carl_core.config import load_preset
from carl_core.errors import CheckpointError
from carl_core.model import CARLModel
from tests.authors_reference import TransformerModel, authors_cfg


def _randomise_bn(model: torch.nn.Module, gen: torch.Generator) -> None:
    # Non-trivial running statistics, so a mapping mistake in BN buffers cannot hide.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def authors_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = authors_cfg(train_len=8)
    ref = TransformerModel(cfg)
    _randomise_bn(ref, torch.Generator().manual_seed(1))
    ref.eval()
    edict = EasyDict(cfg)
    edict.args = argparse.Namespace(local_rank=0, workdir="/data", continue_train=False)
    path = tmp_path_factory.mktemp("authors") / "checkpoint_epoch_00299.pth"
    state = {f"module.{k}" if i % 2 else k: v for i, (k, v) in enumerate(ref.state_dict().items())}
    optimizer = torch.optim.Adam(ref.parameters(), lr=1e-4)
    torch.save(
        {"epoch": 299, "model_state": state, "optimizer_state": optimizer.state_dict(), "cfg": edict}, path
    )
    return path, ref


@pytest.mark.parametrize("length", [8, 13, 5])
def test_authors_checkpoint_reproduces_their_model(authors_checkpoint, length):
    path, ref = authors_checkpoint
    model = load_checkpoint(path)
    assert not model.training
    frames = torch.randn(length, 3, 64, 64, generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        expected = ref(frames[None])[0]
    got = model.embed_frames(frames)
    assert got.shape == (length, 128)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_authors_checkpoint_projection_and_masks(authors_checkpoint):
    path, ref = authors_checkpoint
    model = load_checkpoint(path)
    frames = torch.randn(2, 8, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 8)
    mask[1, 6:] = 0
    with torch.no_grad():
        expected = ref(frames, video_masks=mask[:, None, :], project=True)
        got = model(frames, mask, project=True)
    assert torch.allclose(got, expected, atol=1e-4)


def test_authors_config_is_mapped(authors_checkpoint):
    path, _ = authors_checkpoint
    m = load_checkpoint(path).cfg
    assert (m.train_len, m.hidden_size, m.num_layers, m.fc_layers, m.backbone) == (
        8,
        256,
        3,
        (512, 512),
        "resnet50",
    )


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_with_code_is_refused(tmp_path, capsys):
    path = tmp_path / "checkpoint_epoch_00001.pth"
    torch.save({"model_state": {}, "cfg": {}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refuses to run code"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_own_checkpoint_round_trip(tmp_path):
    config = load_preset("small").with_overrides(model={"backbone_weights": "random"})
    model = CARLModel(config.model).eval()
    _randomise_bn(model, torch.Generator().manual_seed(2))
    path = save_checkpoint(tmp_path / "run" / "last.pt", model_payload(model, config, step=3))
    loaded = load_checkpoint(path)
    frames = torch.randn(6, 3, 96, 96)
    assert torch.allclose(model.embed_frames(frames), loaded.embed_frames(frames), atol=1e-6)
    assert read_checkpoint(path)["step"] == 3
    assert not list(path.parent.glob("*.tmp"))


def test_wrong_shape_checkpoint_is_a_clear_error(tmp_path):
    config = load_preset("small").with_overrides(model={"backbone_weights": "random"})
    model = CARLModel(config.model)
    bad = config.with_overrides(model={"hidden_size": 64, "num_heads": 4})
    path = save_checkpoint(tmp_path / "bad.pt", model_payload(model, bad))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"not a checkpoint at all", "not a readable"), (None, "not found")],
)
def test_unreadable_checkpoints(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_foreign_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="neither"):
        load_checkpoint(path)


def test_pickle_protocols(tmp_path):
    # Older torch versions wrote protocol 2; the restricted reader must accept both.
    config = load_preset("small").with_overrides(model={"backbone_weights": "random"})
    model = CARLModel(config.model)
    path = tmp_path / "p2.pt"
    torch.save(
        model_payload(model, config) | {"format": "carl-studio", "version": 1}, path, pickle_protocol=2
    )
    assert isinstance(load_checkpoint(path), CARLModel)
    assert pickle.HIGHEST_PROTOCOL >= 2
