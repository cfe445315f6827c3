"""Evaluate a model on a labelled dataset by the paper's protocols.

Embeds every video of the train and val splits (``embed_video``), then runs
``carl_core.metrics``: per action and averaged where the dataset holds several actions (as the
authors evaluate PennAction), on the whole dataset otherwise (Pouring).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import VideoRecord, group_by_action, load_dataset
from .embed import Embedder
from .errors import DataError
from .metrics import ActionSplits, evaluate_all, evaluate_per_action
from .model import CARLModel
from .progress import Progress

log = logging.getLogger("carl_core.evaluate")


def embed_records(
    model: CARLModel,
    records: list[VideoRecord],
    *,
    fps: float | None = None,
    on_progress: Progress | None = None,
    backend: str = "auto",
) -> list[np.ndarray]:
    """Embeddings of every record's video, through one ``Embedder`` (one engine, one cache).

    ``backend`` as ``Embedder``'s; "torch" skips the ONNX export, which costs more than it saves
    on a few short videos.
    """
    embedder = Embedder(model, backend=backend)
    out = []
    for i, r in enumerate(records):
        embs, _ = embedder.embed(r.path, fps)
        out.append(embs)
        if on_progress:
            on_progress(i + 1, len(records), f"embedded {r.name}")
    return out


def labelled(records: list[VideoRecord], embs: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pairs of (embeddings, labels), trimmed to the same length where the file and pkl disagree."""
    e_out, l_out = [], []
    for r, e in zip(records, embs):
        if r.frame_label is None:
            raise DataError(f"{r.name} has no frame labels: evaluation needs a labelled dataset")
        n = min(len(e), len(r.frame_label))
        if n != len(e) or n != len(r.frame_label):
            log.warning(
                "%s: %d frames decoded, %d labels; using the first %d", r.name, len(e), len(r.frame_label), n
            )
        e_out.append(e[:n])
        l_out.append(r.frame_label[:n])
    return e_out, l_out


def evaluate_model(
    model: CARLModel,
    train: list[VideoRecord],
    val: list[VideoRecord],
    *,
    fps: float | None = None,
    on_progress: Progress | None = None,
    protocol: str | None = None,
    backend: str = "auto",
) -> dict[str, Any]:
    """The four protocols; several actions are evaluated one by one and averaged.

    ``protocol``: "pouring" (the whole dataset at once) or "penn_action" (per action, averaged);
    None picks by the number of actions in the training split.
    """
    total = len(train) + len(val)

    def step(offset: int) -> Progress | None:
        return None if on_progress is None else (lambda d, t, m: on_progress(offset + d, total, m))

    train_e, train_l = labelled(
        train, embed_records(model, train, fps=fps, on_progress=step(0), backend=backend)
    )
    val_e, val_l = labelled(
        val, embed_records(model, val, fps=fps, on_progress=step(len(train)), backend=backend)
    )
    train_groups, val_groups = group_by_action(train), group_by_action(val)
    protocol = protocol or ("pouring" if len(train_groups) <= 1 else "penn_action")
    if protocol != "penn_action":
        num_classes = int(max(lab.max() for lab in train_l + val_l)) + 1
        result = evaluate_all(train_e, train_l, val_e, val_l, num_classes, protocol=protocol)
        return {"protocol": protocol, **_jsonable(result)}
    index = {id(r): i for i, r in enumerate(train)}
    vindex = {id(r): i for i, r in enumerate(val)}
    actions = {}
    for action, recs in train_groups.items():
        vrecs = val_groups.get(action, [])
        if not vrecs:
            raise DataError(f"action {action} has no validation videos")
        ti, vi = [index[id(r)] for r in recs], [vindex[id(r)] for r in vrecs]
        labels = [train_l[i] for i in ti] + [val_l[i] for i in vi]
        actions[str(action)] = ActionSplits(
            [train_e[i] for i in ti],
            [train_l[i] for i in ti],
            [val_e[i] for i in vi],
            [val_l[i] for i in vi],
            int(max(lab.max() for lab in labels)) + 1,
        )
    result = evaluate_per_action(actions, protocol="penn_action")
    return {"protocol": "penn_action", **_jsonable(result)}


def evaluate_dataset(
    model: CARLModel, path: str | Path, *, fps: float | None = None, on_progress: Progress | None = None
) -> dict[str, Any]:
    return evaluate_model(
        model, load_dataset(path, "train"), load_dataset(path, "val"), fps=fps, on_progress=on_progress
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    """The one number per protocol that the paper reports."""
    return metrics["mean"]["reported"] if "mean" in metrics else metrics["reported"]


def format_metrics(metrics: dict[str, Any]) -> str:
    names = {
        "kendalls_tau": "Kendall's tau",
        "retrieval": "retrieval AP@5",
        "classification": "phase classification accuracy",
        "progression": "phase progression R2",
    }
    lines = [f"protocol: {metrics['protocol']}"]
    for key, value in headline(metrics).items():
        lines.append(f"{names.get(key, key):32s} {'n/a' if value is None else f'{value:.4f}'}")
    return "\n".join(lines)
