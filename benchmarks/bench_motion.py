"""Speed of synthetic motion: drawing a sequence on the fly against reading one from disk.

Per 300-frame sequence (every action in turn, default ``MotionConfig``, noise and all): the time
``sample_motion`` takes, and the time to read the same sequence back from a dataset written by
``make_motion_dataset`` (``PoseSequence.load`` and its labels), measured in the same run, one
process, so the ratio says what generating in the training loop costs against a dataset on disk.

    python benchmarks/bench_motion.py [--n 160] [--frames 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carl_core.motion import ACTION_NAMES, load_motion_dataset, make_motion_dataset, sample_motion  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=160, help="sequences to draw")
    p.add_argument("--frames", type=int, default=300)
    a = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rng = np.random.default_rng(0)
    for i in range(8):  # warm up
        sample_motion(ACTION_NAMES[i % len(ACTION_NAMES)], rng, num_frames=a.frames)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(a.n):
        sample_motion(ACTION_NAMES[i % len(ACTION_NAMES)], rng, num_frames=a.frames)
    gen_wall, gen_cpu = (time.perf_counter() - t0) / a.n, (time.process_time() - c0) / a.n
    with tempfile.TemporaryDirectory() as tmp:
        per_action = max(a.n // len(ACTION_NAMES), 1)
        make_motion_dataset(tmp, per_action, seed=0, val_fraction=0.0, num_frames=a.frames, workers=1)
        t0, c0 = time.perf_counter(), time.process_time()
        loaded = load_motion_dataset(tmp, "train")
        n = len(loaded)
        load_wall, load_cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
    print(f"{f'per {a.frames}-frame sequence':32s}{'wall ms':>10s}{'cpu ms':>10s}{'cpu ratio':>12s}")
    for name, wall, cpu in (
        ("sample_motion (on the fly)", gen_wall, gen_cpu),
        ("load from disk (peer)", load_wall, load_cpu),
    ):
        print(f"{name:32s}{wall * 1e3:10.2f}{cpu * 1e3:10.2f}{cpu / load_cpu:12.2f}")


if __name__ == "__main__":
    main()
