"""Ways to train a pose model, compared at the same budget and over several seeds.

Every variant trains the ``pose`` preset on synthetic human motion (``--data motion``: each
sequence is one movement by two bodies under two cameras, labelled with its action):

- ``self``: self-supervised SCL, the preset as it is: the two views of one sequence are
  contrasted; each video is turned to its own mean facing (``pose_facing: sequence``);
- ``weak``: weak SCL on top: after ``loss.weak_after_epochs``, pairs of other sequences with
  the same action, aligned by DTW (``losses.weak_scl_loss``);
- ``augment``: the facing learnt instead of estimated: world coordinates under random rotation
  and mirror images (``pose_input: world``, ``pose_facing: augment``);
- ``world``: world coordinates turned to each video's mean facing (``pose_input: world``);
- ``cross``: the two views are two *different* performances of the action (other tempo,
  amplitude, form, body, camera), their frames placed by where they are in the movement
  (``data.motion_views: two_performances``, ``MotionSample.position``) instead of by time.

Each run is scored by ``pose_eval.cross_person``: two different held-out performances of an
action, aligned by DTW on the *learned* embedding alone (``descriptor_weight`` 0, so the fixed
descriptor cannot hide a difference); the share of phase boundaries carried within 0.1 s.

    python benchmarks/pose_training.py --modes self,weak           # 3 seeds, 6 epochs of 256
    python benchmarks/pose_training.py --modes augment,world --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


VARIANTS = {
    "self": {},
    "weak": {"loss": {"weak": True}},
    "augment": {"model": {"pose_input": "world", "pose_facing": "augment"}},
    "world": {"model": {"pose_input": "world", "pose_facing": "sequence"}},
    "cross": {"data": {"motion_views": "two_performances"}},
}


def run_one(mode: str, seed: int, args: argparse.Namespace, held_out: list, out: Path) -> dict:
    from carl_core.checkpoint import load_checkpoint
    from carl_core.config import load_preset
    from carl_core.pose_eval import cross_person
    from carl_core.train import train

    variant = VARIANTS[mode]
    cfg = load_preset("pose").with_overrides(
        model={"descriptor_weight": 0.0, **variant.get("model", {})},
        loss=variant.get("loss", {}),
        data=variant.get("data", {}),
        train={"epochs": args.epochs, "seed": seed, "num_workers": 0, "save_every": 10_000},
    )
    t0 = time.perf_counter()
    result = train(cfg, f"motion:{args.sequences}", out / f"{mode}-{seed}")
    seconds = time.perf_counter() - t0
    model = load_checkpoint(out / f"{mode}-{seed}" / "last.pt", device="cpu")
    r = cross_person(model, held_out)
    row = {"mode": mode, "seed": seed, "steps": result.steps, "train_s": seconds, **r}
    landed, error = r["events_landed"], r["error_pct"]
    print(f"| {mode} | {seed} | {result.steps} | {seconds:.0f} | {landed:.3f} | {error:.2f} |", flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--sequences", type=int, default=256, help="synthetic sequences per epoch")
    ap.add_argument("--per-action", type=int, default=4, help="held-out sequences per action")
    ap.add_argument("--modes", default="self,weak", help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--out", type=Path, help="keep the runs here (default: a temporary folder)")
    ap.add_argument("--results", type=Path, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    unknown = set(args.modes.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")

    from carl_core.pose_eval import held_out_motion

    held_out = held_out_motion(args.per_action, reps=(1, 1))
    print(f"# {platform.node()}, {os.cpu_count()} CPUs; {len(held_out)} held-out sequences")
    print("\n| mode | seed | steps | train s | events landed | mean error, % |\n|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for seed in range(1, args.seeds + 1):
            for mode in args.modes.split(","):
                rows.append(run_one(mode, seed, args, held_out, out))
    print()
    for mode in args.modes.split(","):
        got = np.array([r["events_landed"] for r in rows if r["mode"] == mode])
        print(f"{mode}: events landed {got.mean():.3f} +- {got.std():.3f} over {len(got)} seeds")
    if args.results:
        args.results.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
