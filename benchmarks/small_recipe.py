"""The ``small`` recipe, before and after: train on one synthetic set, evaluate on a held-out one.

Each recipe trains from scratch on ``--train`` with an empty cache folder of its own, so the
CPU time counts everything a first run on new videos pays: decoding, the ONNX export of the
frozen stages, the augmented copies' features ("caching") and the optimisation steps. Then the
checkpoint is evaluated by the paper's protocols (per action, averaged) on ``--heldout``, a set
rendered from another seed and with other render settings, never trained on: its train split
fits the phase classifier, its val split scores it.

Time is CPU seconds of this process (all its threads) and its children, which stays meaningful
on a shared machine; wall seconds and the load average are printed beside it.

    python benchmarks/small_recipe.py --make                      # the two sets, then old vs small
    python benchmarks/small_recipe.py --recipes old small untrained
    python benchmarks/small_recipe.py --recipes small --set train.epochs=20 --set train.lr=1e-3

Recipes: ``old`` (the ``small`` preset as it was before docs/small_recipe.md), ``small`` (the
preset as it is now), ``untrained`` (the small preset's model, no step taken), or a YAML file.
``--set section.key=value`` overrides every recipe of the run (values parsed as YAML).
Results also go, one JSON object a line, to ``--results`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.cache import CACHE_ENV  # noqa: E402
from carl_core.config import CarlConfig, load_preset  # noqa: E402

# The small preset before this benchmark's change (commit 3be2c66): what "old" trains.
OLD_SMALL = {
    "model": {"finetune_blocks": 1},
    "train": {
        "epochs": 40,
        "batch_size": 4,
        "lr": 3.0e-4,
        "warmup_epochs": 2,
        "feature_copies": 3,
        "save_every": 10,
    },
}
# The held-out set differs from the training set in seed, frame size, frame rate, noise and shake.
TRAIN_SET = {"num_videos": 24, "seed": 100, "val_fraction": 0.0}
HELDOUT_SET = {
    "num_videos": 40,
    "seed": 2024,
    "size": (160, 160),
    "fps": 24.0,
    "noise": 8.0,
    "jitter": 0.02,
    "val_fraction": 0.5,
}


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Row:
    recipe: str
    steps: int
    cache_cpu: float  # seconds of CPU until the first training step
    train_cpu: float  # seconds of CPU for the whole run, caching included
    train_wall: float
    eval_cpu: float
    tau: float
    classification: float
    retrieval: float
    progression: float
    load: float


def recipe_config(name: str, overrides: dict[str, dict[str, Any]]) -> CarlConfig:
    if name in ("small", "untrained"):
        config = load_preset("small")
    elif name == "old":
        config = load_preset("small").with_overrides(**OLD_SMALL)
    else:
        config = load_preset(name)
    if name == "untrained":
        config = config.with_overrides(train={"epochs": 0})
    return config.with_overrides(**overrides) if overrides else config


def run_recipe(name: str, config: CarlConfig, train_dir: Path, heldout_dir: Path, work: Path) -> Row:
    from carl_core.checkpoint import load_checkpoint
    from carl_core.datasets import load_dataset
    from carl_core.evaluate import evaluate_model, headline
    from carl_core.train import train

    marks: dict[str, float] = {}

    def on_phase(phase: str) -> None:
        marks[phase] = cpu_seconds()

    os.environ[CACHE_ENV] = str(work / "cache")  # nothing computed by an earlier run is reused
    load = os.getloadavg()[0]
    c0, w0 = cpu_seconds(), time.perf_counter()
    result = train(config, train_dir, work / "run", on_phase=on_phase, cache_dir=work / "cache")
    train_cpu, train_wall = cpu_seconds() - c0, time.perf_counter() - w0
    cache_cpu = marks.get("training", c0) - c0

    c1 = cpu_seconds()
    model = load_checkpoint(result.checkpoint, device="cpu")
    metrics = evaluate_model(model, load_dataset(heldout_dir, "train"), load_dataset(heldout_dir, "val"))
    eval_cpu = cpu_seconds() - c1
    h = headline(metrics)
    load = max(load, os.getloadavg()[0])
    return Row(
        name,
        result.steps,
        cache_cpu,
        train_cpu,
        train_wall,
        eval_cpu,
        h["kendalls_tau"],
        h["classification"],
        h["retrieval"],
        h["progression"],
        load,
    )


def make_sets(train_dir: Path, heldout_dir: Path) -> None:
    from carl_core.synthetic import make_dataset

    for folder, kw in ((train_dir, TRAIN_SET), (heldout_dir, HELDOUT_SET)):
        if not (folder / "info.json").is_file():
            print(f"rendering {folder} ({kw})", flush=True)
            make_dataset(folder, **kw)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, field = key.partition(".")
        if not field or not value:
            raise SystemExit(f"--set wants section.key=value, got {item!r}")
        out.setdefault(section, {})[field] = yaml.safe_load(value)
    return out


def print_table(rows: list[Row]) -> None:
    print(
        "| recipe | steps | CPU s (caching) | CPU s total | wall s | tau | classification | "
        "retrieval AP@5 | progression | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.recipe} | {r.steps} | {r.cache_cpu:.0f} | {r.train_cpu:.0f} | {r.train_wall:.0f} | "
            f"{r.tau:.3f} | {r.classification:.3f} | {r.retrieval:.3f} | {r.progression:.3f} | {r.load:.1f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sets = Path("runs/small_recipe")  # ignored by git
    ap.add_argument("--train", type=Path, default=sets / "train24", help="training set folder")
    ap.add_argument("--heldout", type=Path, default=sets / "heldout", help="held-out set folder")
    ap.add_argument("--make", action="store_true", help="render the two sets where they are missing")
    ap.add_argument("--recipes", nargs="+", default=["old", "small"])
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--label", default="", help="appended to each recipe's name in the table")
    ap.add_argument("--results", type=Path, help="append each row as JSON to this file")
    args = ap.parse_args()
    if args.make:
        make_sets(args.train, args.heldout)
    overrides = parse_sets(args.sets)
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}; cores: {os.cpu_count()}")
    rows = []
    for name in args.recipes:
        config = recipe_config(name, overrides)
        with tempfile.TemporaryDirectory(prefix="small_recipe_") as tmp:
            row = run_recipe(name + args.label, config, args.train, args.heldout, Path(tmp))
        rows.append(row)
        print(json.dumps(row.__dict__), flush=True)
        if args.results:
            with args.results.open("a") as f:
                f.write(json.dumps({**row.__dict__, "config": config.to_dict()}) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
