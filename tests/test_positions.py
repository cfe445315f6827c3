"""The "time" position scheme: a frame's embedding depends on its neighbourhood only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import carl_core.model as model_module
from carl_core.config import ModelConfig
from carl_core.errors import ConfigError
from carl_core.model import CARLModel


def _head_only(positions: str, span: float = 0.5, layers: int = 2) -> CARLModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone="pose",
        fc_layers=(32,),
        hidden_size=32,
        num_heads=4,
        d_ff=64,
        num_layers=layers,
        embedding_size=16,
        train_len=32,
        positions=positions,
        attention_span=span,
    )
    return CARLModel(cfg).eval()


def test_time_scheme_keeps_a_frame_put_when_footage_is_added_around_it():
    model = _head_only("time")
    feats = torch.randn(120, 32)
    other = torch.randn(60, 32)
    alone = model.embed_sequence(feats, times=np.arange(120) / 30)
    padded = model.embed_sequence(torch.cat([other, feats, other]), times=np.arange(240) / 30)[60:180]
    reach = 2 * 0.5 * 30  # layers x span, in frames at 30 fps
    inner = slice(int(reach) + 1, 120 - int(reach) - 1)
    assert torch.allclose(alone[inner], padded[inner], atol=1e-5)
    # near the ends the context differs, so the embedding may move, but it stays the nearest
    nearest = (alone @ padded.T).argmax(dim=1)
    assert (nearest - torch.arange(120)).abs().le(2).float().mean() > 0.9


def test_clip_scheme_moves_every_frame_when_footage_is_added():
    model = _head_only("clip")
    feats = torch.randn(120, 32)
    alone = model.embed_sequence(feats)
    padded = model.embed_sequence(torch.cat([torch.randn(60, 32), feats, torch.randn(60, 32)]))[60:180]
    assert not torch.allclose(alone, padded, atol=1e-3)


def test_time_scheme_depends_on_time_differences_only():
    model = _head_only("time")
    feats = torch.randn(80, 32)
    t = np.arange(80) / 25
    assert torch.allclose(
        model.embed_sequence(feats, times=t), model.embed_sequence(feats, times=t + 123.4), atol=1e-4
    )


def test_long_sequences_run_in_blocks_that_equal_the_whole(monkeypatch):
    model = _head_only("time")
    feats = torch.randn(700, 32)
    t = np.cumsum(np.random.default_rng(0).uniform(0.01, 0.06, 700))  # irregular: a VFR video
    whole = model.embed_sequence(feats, times=t)
    monkeypatch.setattr(model_module, "BLOCK", 100)
    blocks = model.embed_sequence(feats, times=t)
    assert torch.allclose(whole, blocks, atol=1e-5)


def test_padded_training_batches_ignore_padding():
    model = _head_only("time")
    x = torch.randn(1, 50, 33, 8)
    t = torch.arange(50, dtype=torch.float64)[None] / 30
    mask = torch.ones(1, 50, dtype=torch.bool)
    short = model(x[:, :40], mask[:, :40], times=t[:, :40])
    mask[:, 40:] = False
    padded = model(x, mask, times=t)[:, :40]
    assert torch.allclose(short, padded, atol=1e-5)


@pytest.mark.parametrize(
    "bad", [{"positions": "absolute"}, {"attention_span": 0}, {"pose_facing": "sideways"}]
)
def test_bad_position_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        ModelConfig(**bad)
