"""A training run's step log, ``RUN_DIR/log.jsonl``: one JSON object per step, appended as it goes.

The trainer writes it; the job watcher, the app and scripts read it while it grows, so the
reader skips a line that does not parse (the last one, half-written by a killed run).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .io import atomic_write_text

LOG_NAME = "log.jsonl"


def log_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / LOG_NAME


def read_log(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every entry of the run's log, in order; [] when there is none yet."""
    entries: list[dict[str, Any]] = []
    try:
        text = log_path(run_dir).read_text()
    except OSError:
        return entries
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def read_losses(run_dir: str | os.PathLike) -> list[tuple[int, float]]:
    """(step, loss) of every finished step in the run's log (skipped steps left out)."""
    out = []
    for entry in read_log(run_dir):
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if "loss" in entry:
                out.append((int(entry["step"]), float(entry["loss"])))
    return out


def append_log(run_dir: str | os.PathLike, entry: dict[str, Any]) -> None:
    with log_path(run_dir).open("a") as f:
        f.write(json.dumps(entry) + "\n")


def rewrite_log(run_dir: str | os.PathLike, history: list[dict[str, Any]]) -> None:
    """The log as of a checkpoint: entries written after it (by a killed run) are dropped."""
    atomic_write_text(log_path(run_dir), "".join(json.dumps(h) + "\n" for h in history))


__all__ = ["LOG_NAME", "append_log", "log_path", "read_log", "read_losses", "rewrite_log"]
