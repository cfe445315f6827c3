"""The trainer: sequence contrastive learning on two augmented views of each video.

Step-based and exactly resumable: the data order and every augmentation draw derive from
(seed, epoch, video), and a checkpoint holds the model, optimiser, global step and log, so a
killed run continues where its last checkpoint left it. Runs on CPU or CUDA (bf16 autocast),
and on several processes under ``torchrun`` (DistributedDataParallel, gloo or NCCL).

Two data paths:
- pixels: decode the frames of both views, augment each view, run the whole encoder;
- cached features (for machines without a GPU): the frozen backbone stages run once over a
  few augmented copies of every video; training then runs only the fine-tuned stages and the
  head, drawing each view's frames from one copy's features.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from .augment import AugmentConfig, apply_view, sample_view_params, two_views
from .checkpoint import model_payload, read_checkpoint, save_checkpoint
from .config import CarlConfig
from .datasets import VideoRecord, load_dataset, read_record_frames
from .devices import resolve_device
from .errors import CarlError, CheckpointError, ConfigError, DataError
from .losses import scl_loss
from .model import CARLModel
from .preprocess import fit, normalize, to_float_frames
from .progress import Progress, prefixed
from .run_log import append_log, read_log, rewrite_log

log = logging.getLogger("carl_core.train")


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    epochs: float
    losses: list[float] = field(default_factory=list)
    skipped_steps: int = 0
    seconds: float = 0.0
    stopped: bool = False


def augment_config(config: CarlConfig) -> AugmentConfig:
    return AugmentConfig.from_data(config.data)


def _sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


# --- data ---------------------------------------------------------------------------------


class PixelClips(torch.utils.data.Dataset):
    """Two augmented views of a video; indexed by (epoch, video) so draws are reproducible."""

    def __init__(self, records: list[VideoRecord], config: CarlConfig):
        self.records, self.config, self.aug = records, config, augment_config(config)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, i = key
        r, c = self.records[i], self.config
        s = two_views(
            r.seq_len,
            c.data.num_frames,
            _sample_rng(c.train.seed, epoch, i),
            lambda idx: read_record_frames(r, idx, c.model.image_size, c.data.fps),
            size=c.model.image_size,
            cfg=self.aug,
            sampling_region=c.data.sampling_region,
            consistent_offset=c.data.consistent_offset,
            window=c.data.window,
        )
        return {"views": s.views, "steps": s.steps, "masks": s.masks, "seq_len": r.seq_len, "index": i}


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
    ) -> FeatureCache:
        from .runtime import fast_frozen_features

        aug, size, copies = augment_config(config), config.model.image_size, config.train.feature_copies
        frozen = fast_frozen_features(model)  # ONNX Runtime on CPU: several times PyTorch eager
        feats = []
        for i, r in enumerate(records):
            frames = read_record_frames(r, np.arange(r.seq_len), size, config.data.fps)
            fitted = fit(to_float_frames(frames), size)
            gen = torch.Generator().manual_seed(config.train.seed * 1_000_003 + i)
            per_copy = []
            for _ in range(copies):
                params = sample_view_params(aug, size, size, gen)
                chunks = [
                    frozen(normalize(apply_view(ch, params, size)).to(device)).half().cpu()
                    for ch in fitted.split(config.model.frames_per_batch)
                ]
                per_copy.append(torch.cat(chunks))
            feats.append(per_copy)
            if on_progress:
                on_progress(i + 1, len(records), f"cached features of {r.name}")
        return cls(feats)

    def sample(self, i: int, steps: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(2, T) steps -> (2, T, C, h, w): each view from its own augmented copy."""
        copies = self.feats[i]
        pick = rng.choice(len(copies), size=2, replace=len(copies) < 2)
        return torch.stack([copies[c][steps[v]] for v, c in enumerate(pick)])


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: torch.stack([it[k] for it in items]) for k in ("steps", "masks")}
    if items[0].get("views") is not None:
        out["views"] = torch.stack([it["views"] for it in items])
    out["seq_lens"] = torch.tensor([[it["seq_len"]] * 2 for it in items])
    out["index"] = [it["index"] for it in items]
    return out


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int, batch: int) -> list[list[int]]:
    """This rank's batches of video indices for one epoch (all ranks get equally many)."""
    perm = np.random.default_rng([seed, epoch, 7]).permutation(n)
    per_step = batch * world
    steps = max(1, math.ceil(n / per_step))
    perm = np.resize(perm, steps * per_step)  # wrap around so every rank has full batches
    mine = perm[rank::world]
    return [mine[s * batch : (s + 1) * batch].tolist() for s in range(steps)]


# --- schedule --------------------------------------------------------------------------------


def lr_factor(step: int, total: int, warmup: int, final_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the base rate."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


# --- the loop ----------------------------------------------------------------------------


class Trainer:
    def __init__(
        self,
        config: CarlConfig,
        data: str | Path | list[VideoRecord],
        run_dir: str | Path,
        *,
        device: str = "auto",
        resume: bool = False,
        on_progress: Progress | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.on_progress, self.on_log, self.should_stop = on_progress, on_log, should_stop
        self.rank, self.world = _dist_info()
        self.device = resolve_device(device)
        if self.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.state: dict[str, Any] | None = None
        last = self.run_dir / "last.pt"
        if resume:
            if not last.is_file():
                raise CheckpointError(
                    f"--resume: no checkpoint to resume from in {self.run_dir} (last.pt missing)"
                )
            self.state = read_checkpoint(last)
            saved = CarlConfig.from_dict(self.state["config"])
            # Only the length of the run may change on resume.
            config = saved.with_overrides(train={"epochs": config.train.epochs})
        elif last.is_file():
            raise ConfigError(
                f"{self.run_dir} already holds a run (last.pt): pass --resume, or choose another --out"
            )
        self.config = config
        self.records = data if isinstance(data, list) else load_dataset(data, "train", fps=config.data.fps)
        if not self.records:
            raise DataError("the training set is empty")
        if len(self.records) < 1 or all(r.seq_len < 2 for r in self.records):
            raise DataError("training needs videos of at least 2 frames")
        torch.manual_seed(config.train.seed)
        self.model = CARLModel(config.model).to(self.device)
        if self.state is not None:
            self.model.load_state_dict(self.state["model"])
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable, lr=config.train.lr, weight_decay=config.train.weight_decay
        )
        if self.state is not None:
            self.optimizer.load_state_dict(self.state["optimizer"])
            torch.set_rng_state(self.state["rng"])
        self.ddp_model: torch.nn.Module = self.model
        if self.world > 1:
            if self.device.type == "cuda":
                self.ddp_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.ddp_model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.steps_per_epoch = len(
            epoch_order(len(self.records), 0, 0, 0, self.world, config.train.batch_size)
        )

    def _embed(self, batch: dict[str, Any], cache: FeatureCache | None) -> torch.Tensor:
        b, _, t = batch["steps"].shape
        mask = batch["masks"].view(b * 2, t).to(self.device).bool()
        if cache is not None:
            rng = np.random.default_rng([self.config.train.seed, int(batch["step"]), 11])
            feats = torch.stack([cache.sample(i, s, rng) for i, s in zip(batch["index"], batch["steps"])])
            feats = feats.to(self.device, torch.float32).flatten(0, 1)
            return self.ddp_model(feats, mask, project=True, frozen_input=True).view(b, 2, t, -1)
        views = batch["views"].to(self.device).flatten(0, 1)
        return self.ddp_model(views, mask, project=True).view(b, 2, t, -1)

    def run(self) -> TrainResult:
        c = self.config
        total = c.train.epochs * self.steps_per_epoch
        step = int(self.state["step"]) if self.state else 0
        history: list[dict[str, Any]] = list(self.state.get("log", [])) if self.state else []
        skipped = sum(1 for h in history if h.get("skipped"))
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(c.to_dict(), sort_keys=False))
            rewrite_log(self.run_dir, history)
        cache = None
        if c.train.cached_features and step < total:
            cache = FeatureCache.build(
                self.model, self.records, c, self.device, self._progress_prefix("caching")
            )
        pixels = PixelClips(self.records, c) if cache is None else None
        warmup = c.train.warmup_epochs * self.steps_per_epoch
        use_amp = c.train.amp and self.device.type == "cuda"
        t0, stopped = time.time(), False
        self.model.train()
        while step < total:
            epoch, within = divmod(step, self.steps_per_epoch)
            batches = epoch_order(
                len(self.records), c.train.seed, epoch, self.rank, self.world, c.train.batch_size
            )
            loader = self._loader(pixels, epoch, batches[within:]) if pixels is not None else None
            for k, idx in enumerate(batches[within:]):
                if loader is not None:
                    batch = next(loader)
                else:
                    batch = _collate([self._steps_only(epoch, i) for i in idx])
                batch["step"] = step
                factor = lr_factor(step, total, warmup, c.train.final_lr / c.train.lr if c.train.lr else 0.0)
                for g in self.optimizer.param_groups:
                    g["lr"] = c.train.lr * factor
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    embs = self._embed(batch, cache)
                loss = scl_loss(
                    embs.float(),
                    batch["seq_lens"].to(self.device),
                    batch["steps"].to(self.device),
                    batch["masks"].to(self.device),
                    temperature=c.loss.temperature,
                    label_variance=c.loss.label_variance,
                )
                self.optimizer.zero_grad(set_to_none=True)
                entry: dict[str, Any] = {"step": step + 1, "epoch": epoch + (k + within + 1) / len(batches)}
                if torch.isfinite(loss):
                    loss.backward()
                    norm = torch.nn.utils.clip_grad_norm_(
                        [p for p in self.model.parameters() if p.requires_grad], c.train.grad_clip
                    )
                    if torch.isfinite(norm):
                        self.optimizer.step()
                        entry["loss"] = float(loss.detach())
                    else:
                        entry.update(skipped=True, reason="non-finite gradient")
                else:
                    entry.update(skipped=True, reason="non-finite loss")
                if entry.get("skipped"):
                    skipped += 1
                    log.warning("step %d: %s, step skipped (weights unchanged)", step + 1, entry["reason"])
                entry["lr"] = c.train.lr * factor
                entry["time"] = round(time.time() - t0, 3)
                step += 1
                history.append(entry)
                if self.rank == 0:
                    append_log(self.run_dir, entry)
                    if self.on_log:
                        self.on_log(entry)
                    if self.on_progress:
                        self.on_progress(step, total, _progress_message(entry, step, total, time.time() - t0))
                if self.should_stop is not None and self.should_stop():
                    stopped = True
                    break
            epoch_done = step % self.steps_per_epoch == 0
            if stopped or epoch_done or step >= total:
                epochs_done = step // self.steps_per_epoch
                periodic = epoch_done and (epochs_done % c.train.save_every == 0 or step >= total)
                self._save(step, history, periodic=periodic)
            if stopped:
                break
        if total == 0 and self.state is None:
            self._save(step, history, periodic=False)  # --epochs 0: the untrained model, for baselines
        if self.rank == 0 and not stopped:
            log.info("trained %d steps in %.1f s", step, time.time() - t0)
        losses = [h["loss"] for h in history if "loss" in h]
        return TrainResult(
            self.run_dir,
            self.run_dir / "last.pt",
            step,
            step / self.steps_per_epoch,
            losses,
            skipped,
            time.time() - t0,
            stopped,
        )

    def _steps_only(self, epoch: int, i: int) -> dict[str, Any]:
        r, c = self.records[i], self.config
        s = two_views(
            r.seq_len,
            c.data.num_frames,
            _sample_rng(c.train.seed, epoch, i),
            None,
            sampling_region=c.data.sampling_region,
            consistent_offset=c.data.consistent_offset,
            window=c.data.window,
        )
        return {"views": None, "steps": s.steps, "masks": s.masks, "seq_len": r.seq_len, "index": i}

    def _loader(self, ds: PixelClips, epoch: int, batches: list[list[int]]):
        keyed = [[(epoch, i) for i in b] for b in batches]
        workers = self.config.train.num_workers
        return iter(
            torch.utils.data.DataLoader(
                ds,
                batch_sampler=keyed,
                collate_fn=_collate,
                num_workers=workers,
                persistent_workers=False,
                pin_memory=self.device.type == "cuda",
            )
        )

    def _save(self, step: int, history: list[dict[str, Any]], *, periodic: bool) -> None:
        if self.rank != 0:
            return
        payload = model_payload(
            self.model,
            self.config,
            optimizer=self.optimizer.state_dict(),
            step=step,
            log=history,
            rng=torch.get_rng_state(),  # dropout draws: an interrupted run resumes bit for bit
        )
        save_checkpoint(self.run_dir / "last.pt", payload)
        if periodic:
            epoch = step // self.steps_per_epoch
            save_checkpoint(self.run_dir / f"epoch_{epoch:04d}.pt", payload)

    def _progress_prefix(self, what: str) -> Progress | None:
        return prefixed(self.on_progress, what) if self.rank == 0 else None


def train(
    config: CarlConfig,
    data: str | Path | list[VideoRecord],
    run_dir: str | Path,
    **kw: Any,
) -> TrainResult:
    """Train CARL; writes ``run_dir/last.pt`` (and ``epoch_NNNN.pt``), ``log.jsonl`` and ``config.yaml``."""
    return Trainer(config, data, run_dir, **kw).run()


def _progress_message(entry: dict[str, Any], step: int, total: int, elapsed: float) -> str:
    rate = step / elapsed if elapsed > 0 else 0.0
    left = (total - step) / rate if rate > 0 else float("nan")
    loss = f"loss {entry['loss']:.4f}" if "loss" in entry else "skipped"
    return f"epoch {entry['epoch']:.2f} {loss} · {rate:.2f} steps/s · {left:.0f} s left"


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if world > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


__all__ = ["CarlError", "FeatureCache", "TrainResult", "Trainer", "read_log", "resolve_device", "train"]
