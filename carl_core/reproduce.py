"""Reproduce the paper: train (or load a checkpoint), evaluate by the authors' protocol, compare.

``reproduce(dataset, root, out)`` runs one dataset end to end:
- train with the paper's configuration for the dataset (the preset of the same name, which
  mirrors the authors' ``configs/scl_transformer*_config.yml``), or load ``checkpoint``, ours or
  one of the authors' releases;
- evaluate as the authors do: Pouring as one dataset, PennAction per action then averaged
  (``evaluate.py``), FineGym by the SGD linear classifier of ``evaluate_finegym.py`` on the
  99- and the 288-class label sets;
- write ``results.json`` and ``results.md`` into ``out``: the paper's figures, ours, the difference.

The ``tiny`` configuration (a few-minute CPU model, a short classifier schedule) exists to check
the harness end to end on the synthetic stand-ins of ``carl_core.standins``; its figures say
nothing about the paper. Under ``torchrun`` every process trains (DDP) and rank 0 evaluates.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import CarlConfig, load_preset
from .datasets import VideoRecord, load_dataset, split_file
from .errors import ConfigError, DataError
from .io import atomic_write_text
from .metrics import PENN_ACTIONS, SGDProbe, sgd_classification
from .standins import GYM_CLASSES, is_standin

DATASETS = ("pouring", "penn_action", "finegym")
CONFIGS = ("paper", "tiny")
Progress = Callable[[int, int, str], None]

PAPER_SOURCE = (
    "Chen, Wei, Li, Cai: Frame-wise Action Representations for Long Videos via Sequence Contrastive "
    "Learning, CVPR 2022 (arXiv 2203.14957), CARL rows of the comparison tables"
)


@dataclass(frozen=True)
class PaperFigure:
    key: str  # where ours comes from (see _ours)
    label: str
    paper: float
    percent: bool  # ours is a fraction in [0, 1], the paper prints percent


PAPER: dict[str, tuple[PaperFigure, ...]] = {
    "pouring": (
        PaperFigure("classification", "Phase classification (%)", 93.73, True),
        PaperFigure("progression", "Phase progression", 0.935, False),
        PaperFigure("kendalls_tau", "Kendall's tau", 0.992, False),
    ),
    "penn_action": (
        PaperFigure("classification", "Phase classification (%)", 93.07, True),
        PaperFigure("progression", "Phase progression", 0.918, False),
        PaperFigure("kendalls_tau", "Kendall's tau", 0.985, False),
        PaperFigure("retrieval@5", "Retrieval AP@5 (%)", 92.28, True),
        PaperFigure("retrieval@10", "Retrieval AP@10 (%)", 92.10, True),
        PaperFigure("retrieval@15", "Retrieval AP@15 (%)", 91.82, True),
    ),
    "finegym": (
        PaperFigure("gym99", "FineGym99 classification (%)", 41.75, True),
        PaperFigure("gym288", "FineGym288 classification (%)", 35.23, True),
    ),
}

WHERE_FROM = {
    "pouring": "the authors' pre-processed Pouring (train.pkl, val.pkl, videos/)",
    "penn_action": "the authors' pre-processed PennAction (train.pkl, val.pkl, videos/)",
    "finegym": "the authors' pre-processed FineGym (gym99_train_v1.0.pkl, gym99_val.pkl, processed_videos/)",
}


# --- configurations ----------------------------------------------------------------------------


def paper_config(dataset: str) -> CarlConfig:
    """The paper's training configuration for ``dataset``."""
    _check_dataset(dataset)
    return load_preset(dataset)


def tiny_config(dataset: str) -> CarlConfig:
    """The dataset's preset with a CPU-sized model and schedule: checks the harness, not the paper."""
    small = load_preset("small").model
    return paper_config(dataset).with_overrides(
        model={
            **asdict(small),
            # the split the tiny table was measured with (small's before it went frozen)
            "finetune_blocks": 1,
            "fc_layers": [64],
            "hidden_size": 64,
            "num_heads": 2,
            "d_ff": 128,
            "num_layers": 1,
            "embedding_size": 32,
            "projection_size": 32,
            "image_size": 32,
            "train_len": 8,
            "frames_per_batch": 64,
        },
        data={"num_frames": 8},
        train={
            "epochs": 1,
            "batch_size": 2,
            "lr": 3e-4,
            "warmup_epochs": 0,
            "num_workers": 0,
            "save_every": 1,
            "cached_features": False,
        },
    )


PAPER_PROBE = SGDProbe()  # evaluate_finegym.py with configs/scl_transformer_finegym_config.yml
TINY_PROBE = SGDProbe(epochs=20, videos_per_batch=2)


@dataclass(frozen=True)
class Recipe:
    """Everything a reproduction chooses: the training config, FineGym's classifier, the engine."""

    name: str
    config: CarlConfig
    probe: SGDProbe = PAPER_PROBE
    backend: str = "auto"  # what embeds the videos for evaluation (Embedder's backends)


def recipe(dataset: str, name: str = "paper") -> Recipe:
    """``paper``: the paper's configuration; ``tiny``: a CPU check of the harness (minutes)."""
    if name == "paper":
        return Recipe("paper", paper_config(dataset))
    if name == "tiny":  # a few short videos: PyTorch is faster than exporting to ONNX first
        return Recipe("tiny", tiny_config(dataset), TINY_PROBE, backend="torch")
    raise ConfigError(f"unknown configuration {name!r}: choose one of {', '.join(CONFIGS)}")


# --- the run ---------------------------------------------------------------------------------


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def _split(root: Path, dataset: str, split: str, classes: str = "gym99") -> list[VideoRecord]:
    if dataset == "finegym":
        pkl: Path | None = root / (f"{classes}_train_v1.0.pkl" if split == "train" else f"{classes}_val.pkl")
    else:
        pkl = split_file(root, split)
    if pkl is None or not pkl.is_file():
        name = pkl.name if pkl is not None else f"{split}.pkl"
        raise DataError(
            f"{root} has no {name}: --root must hold {WHERE_FROM[dataset]}; the README's "
            "'Reproducing the paper' says where to get it and how to lay it out"
        )
    return load_dataset(pkl)


def _rank() -> int:
    """This process's rank under torchrun (0 alone), whether or not it joined a process group."""
    return int(os.environ.get("RANK", "0"))


def reproduce(
    dataset: str,
    root: str | Path,
    out: str | Path,
    *,
    epochs: int | None = None,
    checkpoint: str | Path | None = None,
    device: str = "auto",
    config: str | Recipe = "paper",
    overrides: dict[str, dict[str, Any]] | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any] | None:
    """Train or load, evaluate by the authors' protocol, write results.json and results.md.

    ``config``: "paper", "tiny" or a Recipe; ``overrides`` replace config fields (e.g.
    ``{"train": {"batch_size": 1}}`` under torchrun); ``epochs`` shortens the schedule for checks.
    A run already in ``out/run`` is resumed. Returns the results (None on ranks other than 0).
    """
    _check_dataset(dataset)
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root} (it must hold {WHERE_FROM[dataset]})")
    started = time.time()
    plan = recipe(dataset, config) if isinstance(config, str) else config
    cfg = plan.config
    if epochs is not None:
        if epochs < 0:
            raise ConfigError(f"--epochs must be 0 or more, not {epochs}")
        cfg = cfg.with_overrides(train={"epochs": epochs})
    if overrides:
        cfg = cfg.with_overrides(**overrides)
    train_records = _split(root, dataset, "train")
    from .checkpoint import load_checkpoint
    from .train import resolve_device, train

    if checkpoint is not None:
        if _rank() != 0:  # nothing to train: rank 0 alone evaluates
            return None
        model_source: dict[str, Any] = {"checkpoint": str(Path(checkpoint).resolve())}
    else:
        run_dir = out / "run"
        resume = (run_dir / "last.pt").is_file()
        if resume:
            _check_same_run(run_dir, cfg)
        result = train(cfg, train_records, run_dir, device=device, resume=resume, on_progress=on_progress)
        if _rank() != 0:
            return None
        checkpoint = result.checkpoint
        model_source = {
            "trained": str(run_dir),
            "configuration": plan.name,
            "preset": cfg.preset,
            "epochs": cfg.train.epochs,
            "steps": result.steps,
            "final_loss": result.losses[-1] if result.losses else None,
            "config": cfg.to_dict(),
        }
    model = load_checkpoint(checkpoint, device=resolve_device(device))
    metrics = evaluate(
        dataset,
        root,
        model,
        probe=plan.probe,
        backend=plan.backend,
        seed=cfg.train.seed,
        on_progress=on_progress,
    )
    results = {
        "dataset": dataset,
        "root": str(root.resolve()),
        "standin": is_standin(root),
        "model": model_source,
        "rows": table(dataset, metrics),
        "metrics": metrics,
        "paper_source": PAPER_SOURCE,
        "seconds": round(time.time() - started, 1),
        "environment": _environment(model),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    atomic_write_text(out / "results.md", format_markdown(results))
    return results


def _check_same_run(run_dir: Path, config: CarlConfig) -> None:
    """A run to resume must be of this configuration (only its length may change)."""
    from .checkpoint import read_checkpoint

    saved = CarlConfig.from_dict(read_checkpoint(run_dir / "last.pt")["config"])
    if (
        saved.with_overrides(train={"epochs": 0}).to_dict()
        != config.with_overrides(train={"epochs": 0}).to_dict()
    ):
        raise ConfigError(
            f"{run_dir} holds a run of another configuration (preset {saved.preset!r}); "
            "reproduce into another --out, or delete that run"
        )


def evaluate(
    dataset: str,
    root: Path,
    model: Any,
    *,
    probe: SGDProbe = PAPER_PROBE,
    backend: str = "auto",
    seed: int = 1,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """The authors' evaluation of ``model`` on the dataset in ``root`` (JSON-ready)."""
    from .evaluate import embed_records, evaluate_model, labelled

    if dataset != "finegym":
        train, val = _split(root, dataset, "train"), _split(root, dataset, "val")
        metrics = evaluate_model(
            model, train, val, on_progress=on_progress, protocol=dataset, backend=backend
        )
        if dataset == "penn_action":  # their action indices back to their names
            metrics["per_action"] = {PENN_ACTIONS[int(k)]: v for k, v in metrics["per_action"].items()}
        return metrics
    present = [c for c in GYM_CLASSES if (root / f"{c}_train_v1.0.pkl").is_file()]
    if not present:
        _split(root, dataset, "train")  # raises, naming the files it needs
    splits = {c: (_split(root, dataset, "train", c), _split(root, dataset, "val", c)) for c in present}
    # The label sets share their videos: embed each file once.
    unique = {r.path: r for tr, va in splits.values() for r in tr + va}
    found = embed_records(model, list(unique.values()), on_progress=on_progress, backend=backend)
    embs = dict(zip(unique, found))
    out: dict[str, Any] = {"protocol": "finegym", "probe": asdict(probe), "seed": seed}
    for classes, (train, val) in splits.items():
        train_e, train_l = labelled(train, [embs[r.path] for r in train])
        val_e, val_l = labelled(val, [embs[r.path] for r in val])
        accs = sgd_classification(
            train_e, train_l, val_e, val_l, GYM_CLASSES[classes], probe, seed=seed, on_progress=on_progress
        )
        out[classes] = {
            "classification": {str(f): a for f, a in accs.items()},
            "reported": accs[probe.fractions[-1]],
        }
    return out


# --- the table -------------------------------------------------------------------------------


def _ours(dataset: str, metrics: dict[str, Any], key: str) -> float | None:
    if dataset == "finegym":
        return metrics.get(key, {}).get("reported")
    summary = metrics.get("mean", metrics)
    if key.startswith("retrieval@"):
        return summary.get("retrieval", {}).get(key.split("@")[1])
    return summary["reported"].get(key)


def table(dataset: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per paper figure: the paper's, ours (same unit) and ours minus the paper's."""
    rows = []
    for fig in PAPER[dataset]:
        value = _ours(dataset, metrics, fig.key)
        ours = None if value is None or not math.isfinite(value) else value * (100 if fig.percent else 1)
        rows.append(
            {
                "metric": fig.key,
                "label": fig.label,
                "unit": "%" if fig.percent else "",
                "paper": fig.paper,
                "ours": None if ours is None else round(ours, 4),
                "difference": None if ours is None else round(ours - fig.paper, 4),
            }
        )
    return rows


_TITLES = {"pouring": "Pouring", "penn_action": "PennAction", "finegym": "FineGym"}


def format_markdown(results: dict[str, Any]) -> str:
    dataset, model = results["dataset"], results["model"]

    def num(x: float | None, digits: int, signed: bool = False) -> str:
        return "n/a" if x is None else (f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}")

    lines = [f"# CARL reproduction: {_TITLES[dataset]}", ""]
    if results["standin"]:
        lines += [
            "**Stand-in data** (synthetic, `carl_core.standins`): these figures check the harness end "
            "to end; they say nothing about the paper.",
            "",
        ]
    if "checkpoint" in model:
        lines.append(f"Model: the checkpoint `{model['checkpoint']}`.")
    else:
        lines.append(
            f"Model: trained here ({model['configuration']} configuration, preset `{model['preset']}`, "
            f"{model['epochs']} epoch{'s' * (model['epochs'] != 1)}, {model['steps']} steps; "
            f"run in `{model['trained']}`)."
        )
    lines += [f"Data: `{results['root']}`. Protocol: {_protocol_note(dataset)}", ""]
    lines += ["| metric | paper | ours | difference |", "|---|---:|---:|---:|"]
    for row in results["rows"]:
        digits = 2 if row["unit"] == "%" else 3  # as the paper prints them
        paper, ours = num(row["paper"], digits), num(row["ours"], digits)
        lines.append(f"| {row['label']} | {paper} | {ours} | {num(row['difference'], digits, signed=True)} |")
    lines += ["", f"Paper: {results['paper_source']}.", f"Run time: {results['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _protocol_note(dataset: str) -> str:
    return {
        "pouring": "the authors' evaluate.py on the val split (stride 5; classification and progression "
        "with 100% of the training videos).",
        "penn_action": "the authors' evaluate.py per action (stride 2), averaged over actions.",
        "finegym": "the SGD linear classifier of the authors' evaluate_finegym.py, last epoch, all "
        "training videos.",
    }[dataset]


def _environment(model: Any) -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(getattr(model, "device", "cpu")),
        "machine": platform.machine(),
    }
