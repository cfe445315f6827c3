"""How much of the pose descriptor's change to read beside it: chosen on held-out synthetic motion.

The fixed part of a pose model's embedding (``pose_features.pose_descriptor``) sees one frame's
pose. A held pose (the bottom of a slow squat, the top of a backswing) and the first frames
that leave it then look alike, and DTW cannot place where the hold ends.
``pose_features.motion_descriptor`` puts the descriptor's change over +-``window`` seconds
beside it, times ``weight``.

This sweeps window and weight by ``pose_eval.cross_person``. It takes two different synthetic
performances of an action (other body, camera, tempo, pauses, idle time, one repetition each),
from seeds no training run uses. It aligns them by DTW on the descriptor alone and carries each
phase boundary across. It reports the share landing within 0.1 s, and the mean error in % of
the target's length. No real clip is read: the real pairs (``eval_real.py``) stay a test of the
choice, not its source.

    python benchmarks/descriptor_motion.py                       # 8 sequences per action
    python benchmarks/descriptor_motion.py --per-action 3 --windows 0.13 --weights 0,2,4
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class DescriptorOnly:
    """Stands in for a pose model in ``cross_person``: the fixed descriptor, no learned part."""

    def __init__(self, window: float, weight: float):
        self.window, self.weight = window, weight

    def embed_pose(self, seq):
        import torch

        from carl_core.pose_features import motion_descriptor, pose_descriptor

        d = motion_descriptor(seq, self.weight, self.window) if self.weight else pose_descriptor(seq)
        return torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32))


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-action", type=int, default=8, help="held-out sequences per action")
    ap.add_argument("--windows", default="0.07,0.13,0.2", help="half-widths, seconds")
    ap.add_argument("--weights", default="1,2,4,6,8", help="weights of the change (0: the pose alone)")
    args = ap.parse_args(argv)

    from carl_core.pose_eval import cross_person, held_out_motion

    samples = held_out_motion(args.per_action, reps=(1, 1))
    print(f"# {len(samples)} held-out synthetic sequences, one repetition each")
    print(f"# {platform.node()}, {os.cpu_count()} CPUs")
    grid = [(0.0, 0.0)] + [
        (float(w), float(k)) for w in args.windows.split(",") for k in args.weights.split(",") if float(k)
    ]
    rows = []
    print("\n| window, s | weight | events landed | mean error, % | pairs |\n|---|---|---|---|---|")
    t0 = time.perf_counter()
    for window, weight in grid:
        r = cross_person(DescriptorOnly(window, weight), samples)
        rows.append({"window": window, "weight": weight, **r})
        label = "pose alone" if weight == 0 else f"{window:g}"
        print(
            f"| {label} | {weight:g} | {r['events_landed']:.3f} | {r['error_pct']:.2f} | {r['pairs']} |",
            flush=True,
        )
    best = max(rows, key=lambda r: r["events_landed"])
    base = rows[0]
    print(
        f"\nbest: window {best['window']:g} s, weight {best['weight']:g}: "
        f"{best['events_landed']:.3f} landed against {base['events_landed']:.3f} for the pose alone "
        f"({best['events_landed'] / base['events_landed']:.2f}x); {time.perf_counter() - t0:.0f} s"
    )
    return rows


if __name__ == "__main__":
    main()
