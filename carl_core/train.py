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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml

from .augment import AugmentConfig, two_views
from .checkpoint import model_payload, read_checkpoint, save_checkpoint
from .config import CarlConfig
from .datasets import VideoRecord, load_dataset, read_record_frames
from .devices import resolve_device
from .errors import CarlError, CheckpointError, ConfigError, DataError
from .feature_cache import FeatureCache
from .fusion import build_model
from .losses import scl_loss, weak_scl_loss
from .model import CARLModel
from .pose_data import PoseClips, PoseSource, pose_source
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
        return {
            "views": s.views,
            "steps": s.steps,
            "masks": s.masks,
            "seq_len": r.seq_len,
            "index": i,
            "label": -1 if r.action is None else int(r.action),
        }


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: torch.stack([it[k] for it in items]) for k in ("steps", "masks")}
    for k in ("views", "times"):
        if items[0].get(k) is not None:
            out[k] = torch.stack([it[k] for it in items])
    if "label" in items[0]:
        out["labels"] = torch.tensor([it["label"] for it in items])
    out["seq_lens"] = torch.tensor([[it["seq_len"]] * 2 for it in items])
    out["index"] = [it["index"] for it in items]
    return out


def epoch_order(
    n: int, seed: int, epoch: int, rank: int, world: int, batch: int, labels: list[int | None] | None = None
) -> list[list[int]]:
    """This rank's batches of video indices for one epoch (all ranks get equally many).

    With ``labels`` (weak SCL), videos come in pairs that share a label, next to each other in
    every batch, so each batch holds partners to align; unlabelled and odd videos fill the rest.
    """
    rng = np.random.default_rng([seed, epoch, 7])
    if labels is None:
        perm = rng.permutation(n)
    else:
        units: list[list[int]] = []
        for label in sorted({lab for lab in labels if lab is not None and lab >= 0}):
            members = rng.permutation([i for i, lab in enumerate(labels) if lab == label]).tolist()
            units += [members[k : k + 2] for k in range(0, len(members), 2)]
        pairs = [units[k] for k in rng.permutation(len(units)) if len(units[k]) == 2]
        singles = [u[0] for u in units if len(u) == 1]
        singles += [i for i, lab in enumerate(labels) if lab is None or lab < 0]
        # pairs first, at even places, so that no batch (of an even size) splits one
        perm = np.array([i for u in pairs for i in u] + rng.permutation(singles).tolist(), dtype=np.int64)
    per_step = batch * world
    steps = max(1, math.ceil(n / per_step))
    perm = np.resize(perm, steps * per_step)  # wrap around so every rank has full batches
    # with labels, contiguous slices keep the pairs on one rank
    mine = perm[rank::world] if labels is None else perm.reshape(steps, world, batch)[:, rank].reshape(-1)
    return [mine[s * batch : (s + 1) * batch].tolist() for s in range(steps)]


# --- schedule --------------------------------------------------------------------------------


def lr_factor(step: int, total: int, warmup: int, final_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``final_ratio`` of the base rate."""
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


# --- building a run -------------------------------------------------------------------------


def _process_device(device: torch.device, world: int) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def _cpu_threads(workers: int, processes: int = 1) -> None:
    """On the CPU, one intra-op thread per core the data workers leave free.

    torch's default (every core) oversubscribes: the data workers and the training step then
    take turns on the same cores, and each small kernel waits for its slowest thread. On 2 cores
    with one data worker the pose preset ran 0.1 steps/s that way and 3.7 with one thread (a
    loaded machine; unloaded the gap is smaller but of the same sign). OMP_NUM_THREADS, where
    set, wins.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, processes) - max(0, workers)))


def _saved_state(run_dir: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None for a new run (never over an existing one)."""
    last = run_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise CheckpointError(f"--resume: no checkpoint to resume from in {run_dir} (last.pt missing)")
        return read_checkpoint(last)
    if last.is_file():
        raise ConfigError(f"{run_dir} already holds a run (last.pt): pass --resume, or choose another --out")
    return None


def _training_records(data: str | Path | list[VideoRecord], config: CarlConfig) -> list[VideoRecord]:
    records = data if isinstance(data, list) else load_dataset(data, "train", fps=config.data.fps)
    if not records:
        raise DataError("the training set is empty")
    if all(r.seq_len < 2 for r in records):
        raise DataError("training needs videos of at least 2 frames")
    return records


def _distributed(model: CARLModel, device: torch.device, world: int) -> torch.nn.Module:
    if world == 1:
        return model
    module: torch.nn.Module = model
    if device.type == "cuda":
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )


def _rng_state(device: torch.device, world: int) -> dict[str, Any]:
    """Every random generator the loop draws from: dropout on the CPU or the GPU, and the
    DataLoader's worker seeds (from the CPU generator). Data order and augmentation derive from
    (seed, epoch, video) and need no state; no numpy or Python global generator is used."""
    state: dict[str, Any] = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        mine = torch.cuda.get_rng_state(device)
        every: list[Any] = [mine]
        if world > 1:  # each process has its own GPU generator; rank 0 writes them all
            every = [None] * world
            dist.all_gather_object(every, mine)
        state["cuda_rng"] = every
    return state


def _restore_rng(state: dict[str, Any], device: torch.device, rank: int) -> None:
    torch.set_rng_state(state["rng"])
    cuda = state.get("cuda_rng")
    if device.type == "cuda" and cuda and rank < len(cuda):
        torch.cuda.set_rng_state(cuda[rank].cpu(), device)
    elif device.type == "cuda":
        log.warning(
            "the checkpoint holds no GPU random state: dropout draws differ from an uninterrupted run"
        )


# --- the loop ----------------------------------------------------------------------------


class Trainer:
    """One training run: built in ``__init__``, one optimisation ``step``, the loop in ``run``.

    ``resume=True`` continues ``run_dir/last.pt`` exactly where it stopped: weights, optimiser,
    step, log and random generators; only ``config.train.epochs`` may differ from the saved run.
    ``on_progress(done, total, message)`` reports the phase under way, which ``on_phase(name)``
    names as it starts: "caching" (the frozen-backbone features, cached-feature path only),
    then "training". ``cache_dir``: where those features are kept across runs (True: the cache
    root, ``carl_core.cache.default_cache_dir``; False: nowhere).
    """

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
        on_phase: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        cache_dir: str | os.PathLike | bool = True,
    ):
        self.run_dir = Path(run_dir)
        self.on_progress, self.on_log, self.should_stop = on_progress, on_log, should_stop
        self.on_phase, self.cache_dir = on_phase, cache_dir
        self.rank, self.world = _dist_info()
        self.device = _process_device(resolve_device(device), self.world)
        if self.device.type == "cpu":
            _cpu_threads(config.train.num_workers, self.world)
        self.state = _saved_state(self.run_dir, resume)
        if self.state is not None:
            config = CarlConfig.from_dict(self.state["config"]).with_overrides(
                train={"epochs": config.train.epochs}
            )
        self.config = config
        self.poses: PoseSource | None = None
        self.records: list[VideoRecord] = []
        if config.model.backbone == "pose":
            if isinstance(data, list):
                raise ConfigError("a pose model trains on a folder or a dataset path, not a list of records")
            self.poses = pose_source(data, config, on_progress=self._prefixed("poses"))
        else:
            self.records = _training_records(data, config)
        self.model, self.optimizer = self._build_model()
        self.ddp_model = _distributed(self.model, self.device, self.world)
        if config.loss.weak and not any(lab is not None and lab >= 0 for lab in self._labels() or []):
            raise DataError(
                "weak supervision needs video-level labels: a labels.csv (video,label), videos in one "
                "subfolder per label, or a dataset whose videos carry an action label"
            )
        self.steps_per_epoch = len(epoch_order(self.num_videos, 0, 0, 0, self.world, config.train.batch_size))
        self.use_amp = config.train.amp and self.device.type == "cuda"

    @property
    def num_videos(self) -> int:
        return len(self.poses) if self.poses is not None else len(self.records)

    def _prefixed(self, what: str) -> Progress | None:
        return prefixed(self.on_progress, what) if self.rank == 0 else None

    def _build_model(self) -> tuple[CARLModel, torch.optim.Optimizer]:
        torch.manual_seed(self.config.train.seed)
        model = build_model(self.config.model).to(self.device)
        if self.state is not None:
            model.load_state_dict(self.state["model"])
        trainable = [p for p in model.parameters() if p.requires_grad]
        t = self.config.train
        optimizer = torch.optim.Adam(trainable, lr=t.lr, weight_decay=t.weight_decay)
        if self.state is not None:
            optimizer.load_state_dict(self.state["optimizer"])
            _restore_rng(self.state, self.device, self.rank)
        return model, optimizer

    def run(self) -> TrainResult:
        """Train to ``config.train.epochs``; checkpoints at each epoch's end and when stopped."""
        c, per_epoch = self.config, self.steps_per_epoch
        total = c.train.epochs * per_epoch
        step, history = self._begin()
        cached = c.train.cached_features and self.poses is None and step < total
        cache = self._feature_cache() if cached else None
        skipped = sum(1 for h in history if h.get("skipped"))
        self._enter("training")
        t0, stopped = time.time(), False
        self.model.train()
        while step < total and not stopped:
            epoch, within = divmod(step, per_epoch)
            for k, batch in enumerate(self._batches(epoch, within, cache), start=within + 1):
                entry = {
                    "step": step + 1,
                    "epoch": epoch + k / per_epoch,
                    **self.step(batch, step, total, cache),
                }
                entry["time"] = round(time.time() - t0, 3)
                if entry.get("skipped"):
                    skipped += 1
                    log.warning("step %d: %s, step skipped (weights unchanged)", step + 1, entry["reason"])
                step += 1
                history.append(entry)
                self._report(entry, step, total, time.time() - t0)
                stopped = self.should_stop is not None and self.should_stop()
                if stopped:
                    break
            epoch_done = step % per_epoch == 0
            periodic = epoch_done and ((step // per_epoch) % c.train.save_every == 0 or step >= total)
            self._save(step, history, periodic=periodic)
        if total == 0 and self.state is None:
            self._save(step, history, periodic=False)  # --epochs 0: the untrained model, for baselines
        seconds = time.time() - t0
        if self.rank == 0 and not stopped:
            log.info("trained %d steps in %.1f s", step, seconds)
        losses = [h["loss"] for h in history if "loss" in h]
        checkpoint = self.run_dir / "last.pt"
        return TrainResult(
            self.run_dir, checkpoint, step, step / per_epoch, losses, skipped, seconds, stopped
        )

    def step(
        self, batch: dict[str, Any], step: int, total: int, cache: FeatureCache | None
    ) -> dict[str, Any]:
        """One optimisation step at global ``step`` of ``total``; returns what the log keeps of it."""
        t = self.config.train
        lr = t.lr * lr_factor(
            step, total, t.warmup_epochs * self.steps_per_epoch, t.final_lr / t.lr if t.lr else 0.0
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            embs = self._embed(batch, step, cache)
        lc = self.config.loss
        args = (embs.float(), batch["seq_lens"].to(self.device), batch["steps"].to(self.device))
        masks = batch["masks"].to(self.device)
        loss = scl_loss(*args, masks, temperature=lc.temperature, label_variance=lc.label_variance)
        entry: dict[str, Any] = {}
        if self._weak_now(step):
            # videos that share a label, aligned by DTW on the current embeddings (losses.weak_pairs)
            cross = weak_scl_loss(
                *args, masks, batch["labels"], temperature=lc.temperature, label_variance=lc.label_variance
            )
            entry["weak_loss"] = float(cross.detach())
            loss = loss + lc.weak_weight * cross
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            entry.update(skipped=True, reason="non-finite loss")
        else:
            loss.backward()
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            norm = torch.nn.utils.clip_grad_norm_(trainable, t.grad_clip)
            if torch.isfinite(norm):
                self.optimizer.step()
                entry["loss"] = float(loss.detach())
            else:
                entry.update(skipped=True, reason="non-finite gradient")
        entry["lr"] = lr
        return entry

    # -- the loop's parts ------------------------------------------------------------------------
    def _labels(self) -> list[int | None] | None:
        """Video-level labels for weak SCL's batches (None: self-supervised only)."""
        if not self.config.loss.weak:
            return None
        return list(self.poses.actions) if self.poses is not None else [r.action for r in self.records]

    def _weak_now(self, step: int) -> bool:
        return self.config.loss.weak and step >= self.config.loss.weak_after_epochs * self.steps_per_epoch

    def _begin(self) -> tuple[int, list[dict[str, Any]]]:
        """The step to start from and the log so far; writes the run's config and log."""
        step = int(self.state["step"]) if self.state else 0
        history: list[dict[str, Any]] = list(self.state.get("log", [])) if self.state else []
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.run_dir.glob(".*.tmp"):  # half-written by a run that was killed
                stale.unlink(missing_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            rewrite_log(self.run_dir, history)
        return step, history

    def _feature_cache(self) -> FeatureCache:
        self._enter("caching")
        on_progress = prefixed(self.on_progress, "caching") if self.rank == 0 else None
        return FeatureCache.build(
            self.model, self.records, self.config, self.device, on_progress, cache_dir=self.cache_dir
        )

    def _enter(self, phase: str) -> None:
        if self.on_phase is not None and self.rank == 0:
            self.on_phase(phase)

    def _batches(self, epoch: int, within: int, cache: FeatureCache | None) -> Iterator[dict[str, Any]]:
        """This process's batches of ``epoch`` from its ``within``-th on."""
        c = self.config
        order = epoch_order(
            self.num_videos, c.train.seed, epoch, self.rank, self.world, c.train.batch_size, self._labels()
        )
        if self.poses is not None:
            yield from self._loader(PoseClips(self.poses, c), epoch, order[within:])
        elif cache is not None:  # the views' frames come from the cached features: only steps are drawn
            for idx in order[within:]:
                yield _collate([self._steps_only(epoch, i) for i in idx])
        else:
            yield from self._loader(PixelClips(self.records, c), epoch, order[within:])

    def _embed(self, batch: dict[str, Any], step: int, cache: FeatureCache | None) -> torch.Tensor:
        b, _, t = batch["steps"].shape
        mask = batch["masks"].view(b * 2, t).to(self.device).bool()
        if cache is not None:
            rng = np.random.default_rng([self.config.train.seed, step, 11])
            feats = torch.stack([cache.sample(i, s, rng) for i, s in zip(batch["index"], batch["steps"])])
            feats = feats.to(self.device, torch.float32).flatten(0, 1)
            return self.ddp_model(feats, mask, project=True, frozen_input=True).view(b, 2, t, -1)
        views = batch["views"].to(self.device).flatten(0, 1)
        times = batch["times"].to(self.device).flatten(0, 1) if "times" in batch else None
        return self.ddp_model(views, mask, project=True, times=times).view(b, 2, t, -1)

    def _report(self, entry: dict[str, Any], step: int, total: int, elapsed: float) -> None:
        if self.rank != 0:
            return
        append_log(self.run_dir, entry)
        if self.on_log:
            self.on_log(entry)
        if self.on_progress:
            self.on_progress(step, total, _progress_message(entry, step, elapsed))

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
        label = -1 if r.action is None else int(r.action)
        return {
            "views": None,
            "steps": s.steps,
            "masks": s.masks,
            "seq_len": r.seq_len,
            "index": i,
            "label": label,
        }

    def _loader(
        self, ds: PixelClips | PoseClips, epoch: int, batches: list[list[int]]
    ) -> Iterator[dict[str, Any]]:
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
        rng = _rng_state(self.device, self.world)  # every process takes part in gathering it
        if self.rank != 0:
            return
        payload = model_payload(
            self.model, self.config, optimizer=self.optimizer.state_dict(), step=step, log=history, **rng
        )
        save_checkpoint(self.run_dir / "last.pt", payload)
        if periodic:
            epoch = step // self.steps_per_epoch
            save_checkpoint(self.run_dir / f"epoch_{epoch:04d}.pt", payload)


def train(
    config: CarlConfig,
    data: str | Path | list[VideoRecord],
    run_dir: str | Path,
    **kw: Any,
) -> TrainResult:
    """Train CARL; writes ``run_dir/last.pt`` (and ``epoch_NNNN.pt``), ``log.jsonl`` and ``config.yaml``."""
    return Trainer(config, data, run_dir, **kw).run()


def _progress_message(entry: dict[str, Any], step: int, elapsed: float) -> str:
    # No time left here: whoever shows the progress (tqdm, the app's status) estimates it once.
    rate = step / elapsed if elapsed > 0 else 0.0
    loss = f"loss {entry['loss']:.4f}" if "loss" in entry else "skipped"
    return f"epoch {entry['epoch']:.2f} {loss} · {rate:.2f} steps/s"


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    if world > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


__all__ = ["CarlError", "FeatureCache", "TrainResult", "Trainer", "read_log", "resolve_device", "train"]
