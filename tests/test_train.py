"""The trainer: both data paths learn, checkpoints resume exactly, bad steps are skipped."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from carl_core import load_checkpoint
from carl_core.checkpoint import read_checkpoint
from carl_core.datasets import load_dataset
from carl_core.errors import CheckpointError, ConfigError
from carl_core.train import epoch_order, lr_factor, read_log, train
from tests.conftest import fast_config


@pytest.mark.parametrize(
    "field, value", [("save_every", 0), ("batch_size", 0), ("epochs", -1), ("epochs", 1.5)]
)
def test_counts_that_cannot_run_are_refused_with_their_name(field, value):
    with pytest.raises(ConfigError, match=f"train.{field} must be a whole number"):
        fast_config().with_overrides(train={field: value})


def test_cached_features_path_trains_and_writes_a_run(tiny_dataset, tmp_path):
    result = train(fast_config(epochs=3), tiny_dataset, tmp_path / "run")
    run = tmp_path / "run"
    assert result.steps == 3 * 4  # 8 training videos, batch 2
    assert (
        (run / "last.pt").is_file() and (run / "epoch_0003.pt").is_file() and (run / "config.yaml").is_file()
    )
    log = read_log(run)
    assert [e["step"] for e in log] == list(range(1, 13))
    assert all(math.isfinite(e["loss"]) for e in log)
    model = load_checkpoint(run / "last.pt")
    embs = model.embed_frames(torch.randn(5, 3, 64, 64))
    assert embs.shape == (5, 128)


def test_pixel_path_trains(tiny_dataset, tmp_path):
    result = train(fast_config(epochs=1, cached_features=False), tiny_dataset, tmp_path / "run")
    assert result.steps == 4 and len(result.losses) == 4
    assert all(math.isfinite(v) for v in result.losses)


def test_training_lowers_the_loss(tiny_dataset, tmp_path):
    result = train(fast_config(epochs=12, lr=1e-3, warmup_epochs=1), tiny_dataset, tmp_path / "run")
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < first * 0.9, (first, last)


def test_stop_and_resume_is_exact(tiny_dataset, tmp_path):
    config = fast_config(epochs=2)
    straight = train(config, tiny_dataset, tmp_path / "straight")
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] == 3

    stopped = train(config, tiny_dataset, tmp_path / "split", should_stop=stop_after_three)
    assert stopped.stopped and stopped.steps == 3
    resumed = train(config, tiny_dataset, tmp_path / "split", resume=True)
    assert resumed.steps == straight.steps
    assert [e["step"] for e in read_log(tmp_path / "split")] == list(range(1, straight.steps + 1))
    a = read_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "split" / "last.pt")["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_needs_a_run_and_a_run_is_not_overwritten(tiny_dataset, tmp_path):
    with pytest.raises(CheckpointError, match="last.pt missing"):
        train(fast_config(), tiny_dataset, tmp_path / "nothing", resume=True)
    train(fast_config(epochs=0), tiny_dataset, tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        train(fast_config(), tiny_dataset, tmp_path / "run")


def test_non_finite_loss_is_skipped(tiny_dataset, tmp_path, monkeypatch, caplog):
    import carl_core.train as train_module

    real = train_module.scl_loss
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        loss = real(*args, **kw)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(train_module, "scl_loss", flaky)
    result = train(fast_config(epochs=1), tiny_dataset, tmp_path / "run")
    log = read_log(tmp_path / "run")
    assert result.skipped_steps == 1 and log[1]["skipped"] and log[1]["reason"] == "non-finite loss"
    assert all(math.isfinite(e["loss"]) for e in log if "loss" in e) and len(log) == 4
    assert "step 2: non-finite loss, step skipped" in caplog.text


def test_schedule_and_sharding():
    assert lr_factor(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, 0.0) == pytest.approx(0.0, abs=1e-12)
    ranks = [epoch_order(7, 0, 3, r, 2, 2) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    seen = {i for r in ranks for b in r for i in b}
    assert seen == set(range(7))  # every video is used each epoch, some twice to fill the batches


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "carl_core", *args], env=env, **kw)


def test_killed_cli_run_resumes_with_nothing_lost(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    preset = tmp_path / "fast.yaml"
    import yaml

    preset.write_text(yaml.safe_dump(fast_config(epochs=6).to_dict()))
    proc = _cli("train", "--data", str(tiny_dataset), "--preset", str(preset), "--out", str(run),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "epoch_0002.pt").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / "last.pt").is_file()
    done = read_checkpoint(run / "last.pt")["step"]
    assert 0 < done < 24
    resumed = _cli("train", "--data", str(tiny_dataset), "--preset", str(preset), "--out", str(run),
                   "--resume",
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    steps = [e["step"] for e in read_log(run)]
    assert steps == list(range(1, 25))  # the log keeps every step exactly once
    assert read_checkpoint(run / "last.pt")["step"] == 24
    assert not list(run.glob("*.tmp"))


def test_ddp_two_processes_on_gloo(tiny_dataset, tmp_path):
    import yaml

    preset = tmp_path / "fast.yaml"
    preset.write_text(yaml.safe_dump(fast_config(epochs=1).to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "carl_core", "train", "--data", str(tiny_dataset), "--preset", str(preset),
           "--out", str(tmp_path / "run")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    log = read_log(tmp_path / "run")
    assert [e["step"] for e in log] == [1, 2]  # 8 videos, 2 per rank per step, 2 ranks
    assert isinstance(load_checkpoint(tmp_path / "run" / "last.pt").cfg.train_len, int)


def test_loader_reads_authors_format(tiny_dataset):
    train_set, val_set = load_dataset(tiny_dataset, "train"), load_dataset(tiny_dataset, "val")
    assert len(train_set) == 8 and len(val_set) == 2
    info = json.loads((tiny_dataset / "info.json").read_text())
    assert {r.action for r in train_set} == {0, 1} and info
    assert all(len(r.frame_label) == r.seq_len for r in train_set)


def test_checkpoint_holds_every_random_state_the_loop_uses(tiny_dataset, tmp_path):
    from carl_core.train import _restore_rng, _rng_state

    train(fast_config(epochs=1), tiny_dataset, tmp_path / "run")
    saved = read_checkpoint(tmp_path / "run" / "last.pt")
    assert torch.equal(saved["rng"], torch.get_rng_state())  # dropout drew from it up to the save
    assert "cuda_rng" not in saved  # a CPU run uses no GPU generator
    state = _rng_state(torch.device("cpu"), 1)
    first = torch.rand(4)
    _restore_rng(state, torch.device("cpu"), 0)
    assert torch.equal(torch.rand(4), first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_restores_the_gpu_generator():
    from carl_core.train import _restore_rng, _rng_state

    device = torch.device("cuda")
    state = _rng_state(device, 1)
    assert len(state["cuda_rng"]) == 1
    drawn = torch.rand(8, device=device)  # dropout on the GPU draws from this generator
    torch.rand(100, device=device)
    _restore_rng(state, device, 0)
    assert torch.equal(torch.rand(8, device=device), drawn)


def test_progress_message_leaves_the_time_left_to_whoever_shows_it():
    from carl_core.train import _progress_message

    message = _progress_message({"epoch": 1.5, "loss": 2.0}, 6, 12.0)
    assert message == "epoch 1.50 loss 2.0000 · 0.50 steps/s" and "left" not in message


def test_frozen_features_are_computed_once_across_runs(tiny_dataset, tmp_path, monkeypatch):
    import carl_core.runtime as runtime
    from carl_core.feature_cache import FeatureCache

    config = fast_config(epochs=1)
    phases, messages = [], []
    train(config, tiny_dataset, tmp_path / "first", cache_dir=tmp_path / "cache", on_phase=phases.append)
    assert phases == ["caching", "training"]
    assert len(list((tmp_path / "cache" / "features").glob("*/*.npz"))) == 8  # one entry per video

    # A new run on the same videos, and a "train longer" of the first: no backbone runs at all.
    def no_backbone(*a, **k):
        raise AssertionError("the frozen backbone ran although its features were cached")

    monkeypatch.setattr(runtime, "fast_frozen_features", no_backbone)
    second = train(
        config,
        tiny_dataset,
        tmp_path / "second",
        cache_dir=tmp_path / "cache",
        on_progress=lambda d, t, m: messages.append(m),
    )
    assert sum("features from the cache" in m for m in messages) == 8
    longer = train(
        fast_config(epochs=2), tiny_dataset, tmp_path / "first", resume=True, cache_dir=tmp_path / "cache"
    )
    assert longer.steps == 8 and second.losses == train_losses(tmp_path / "first")[:4]
    monkeypatch.undo()

    # What the cache gives back is bit for bit what is computed.
    from carl_core.datasets import load_dataset
    from carl_core.model import CARLModel

    records = load_dataset(tiny_dataset, "train")
    torch.manual_seed(0)
    model = CARLModel(config.model)
    cached = FeatureCache.build(model, records, config, torch.device("cpu"), cache_dir=tmp_path / "cache")
    fresh = FeatureCache.build(model, records, config, torch.device("cpu"), cache_dir=False)
    for a, b in zip(cached.feats, fresh.feats):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def train_losses(run_dir):
    return [e["loss"] for e in read_log(run_dir) if "loss" in e]


def test_the_pixel_path_has_no_caching_phase(tiny_dataset, tmp_path):
    phases = []
    train(
        fast_config(epochs=1, cached_features=False), tiny_dataset, tmp_path / "run", on_phase=phases.append
    )
    assert phases == ["training"]


def test_a_frozen_backbone_caches_pooled_features_that_give_the_same_embeddings(tiny_dataset):
    from carl_core.feature_cache import FeatureCache, _compute, copies_seed
    from carl_core.model import CARLModel
    from carl_core.runtime import fast_frozen_features

    config = fast_config().with_overrides(model={"finetune_blocks": 0})
    records = load_dataset(tiny_dataset, "train")[:2]
    torch.manual_seed(0)
    model = CARLModel(config.model).eval()
    cpu = torch.device("cpu")
    pooled = FeatureCache.build(model, records, config, cpu, cache_dir=False)
    maps = _compute(fast_frozen_features(model), records[0], config, copies_seed(config, 0), cpu)
    assert pooled.feats[0][0].shape == (*maps[0].shape[:2], 1, 1) and maps[0].shape[-1] > 1
    for small, full in zip(pooled.feats[0], maps):
        with torch.no_grad():
            a = model.forward_frozen(small[None].float())
            b = model.forward_frozen(full[None].float())
        assert torch.equal(a, b)
