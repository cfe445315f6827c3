"""How good is a model of body pose? Held-out synthetic motion, where every frame's phase is known.

- ``evaluate_poses``: the paper's four protocols (phase classification, phase progression,
  Kendall's tau, retrieval AP@K), per action and averaged, as the authors evaluate PennAction.
- ``cross_person``: what the app promises, measured directly: two *different* performances of
  an action (other body, camera, tempo, pauses, idle time), aligned by DTW on the embeddings;
  each phase boundary of one is carried to the other, and lands if it comes within ``tol``
  seconds of the true boundary there.

Both draw their sequences from ``held_out_motion``: seeds no training run uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .align import dtw
from .metrics import ActionSplits, evaluate_per_action
from .model import CARLModel
from .progress import Progress

HELD_OUT_SEED = 987_654  # training draws from small seeds; this stream is never trained on


def held_out_motion(
    per_action: int, *, seed: int = HELD_OUT_SEED, reps: tuple[int, int] | None = None
) -> list[Any]:
    """``per_action`` synthetic sequences of every action (``motion.MotionSample``), held out."""
    from .motion import ACTION_NAMES, MotionConfig, sample_motion

    cfg = MotionConfig() if reps is None else dataclasses.replace(MotionConfig(), reps=reps)
    return [
        sample_motion(action, np.random.default_rng([seed, a, k]), cfg)
        for a, action in enumerate(ACTION_NAMES)
        for k in range(per_action)
    ]


def _embed(model: CARLModel, samples: list[Any]) -> list[np.ndarray]:
    return [model.embed_pose(s.pose).cpu().numpy() for s in samples]


def evaluate_poses(model: CARLModel, train: list[Any], val: list[Any]) -> dict[str, Any]:
    """The paper's four protocols on motion samples, per action and averaged."""
    te, ve = _embed(model, train), _embed(model, val)
    actions = {}
    for action in sorted({s.action for s in train}):
        ti = [i for i, s in enumerate(train) if s.action == action]
        vi = [i for i, s in enumerate(val) if s.action == action]
        labels = [train[i].labels for i in ti] + [val[i].labels for i in vi]
        actions[str(action)] = ActionSplits(
            [te[i] for i in ti],
            [train[i].labels for i in ti],
            [ve[i] for i in vi],
            [val[i].labels for i in vi],
            int(max(lab.max() for lab in labels)) + 1,
        )
    return evaluate_per_action(actions, protocol="penn_action")


def _boundaries(labels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.diff(labels)) + 1


def cross_person(
    model: CARLModel, samples: list[Any], *, tol: float = 0.1, on_progress: Progress | None = None
) -> dict[str, float]:
    """Share of phase boundaries carried within ``tol`` seconds across every pair of samples of
    one action whose phases run in the same order, and the mean error in % of the target's length."""
    embs = _embed(model, samples)
    landed, errors, pairs = [], [], 0
    todo = [
        (i, j)
        for i in range(len(samples))
        for j in range(len(samples))
        if i != j and samples[i].action == samples[j].action
    ]
    for k, (i, j) in enumerate(todo):
        a, b = samples[i], samples[j]
        ba, bb = _boundaries(a.labels), _boundaries(b.labels)
        if len(ba) != len(bb) or (a.labels[ba] != b.labels[bb]).any():
            continue  # other rep counts: no one-to-one events
        pairs += 1
        mapping = dtw(embs[i], embs[j]).mapping(embs[i], embs[j])
        fps_b = 1 / float(np.median(np.diff(b.pose.times)))
        err = np.abs(mapping.a_to_b[ba] - bb)
        landed += (err <= tol * fps_b).tolist()
        errors += (100 * err / len(b.labels)).tolist()
        if on_progress:
            on_progress(k + 1, len(todo), "aligned")
    return {
        "events_landed": float(np.mean(landed)) if landed else float("nan"),
        "error_pct": float(np.mean(errors)) if errors else float("nan"),
        "pairs": pairs,
    }


__all__ = ["HELD_OUT_SEED", "cross_person", "evaluate_poses", "held_out_motion"]
