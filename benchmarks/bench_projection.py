"""Embedding maps: carl_core.projection.project against plain umap-learn, and PCA.

For 5k, 20k and 100k frames of 128-d embeddings it times, in one run on the same data:

- ``project umap``: PCA to 50-d, exact k-NN graph with BLAS, seeded UMAP; above ``max_fit``
  (20k by default) fitted on a sample, the rest placed among their nearest fitted frames;
- ``umap-learn``: ``umap.UMAP(random_state=seed).fit_transform`` on the raw embeddings (its own
  pynndescent k-NN), the usual way to call it;
- ``project pca``: the instant fallback.

UMAP compiles numba code on its first call in a process. The run starts with both UMAP paths
on a small input and reports those first calls as "cold start"; the timed rows after it are
warm. ``trust`` is sklearn's trustworthiness (10 neighbours) on 2000 frames: 1.0 means every
2-D neighbourhood is a true neighbourhood in the embedding space.

Data stand in for CARL embeddings: videos of 500 frames, each performing one of 6 actions, an
action a smooth loop on the unit sphere, traversed at its own pace with noise.

    python benchmarks/bench_projection.py            # 5k, 20k, 100k frames
    python benchmarks/bench_projection.py --quick    # 2k and 5k frames
    python benchmarks/bench_projection.py --full     # also fit UMAP on all 100k (no sample)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.projection import project  # noqa: E402


def make_videos(n_frames: int, dim: int = 128, seed: int = 0, per_video: int = 500) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n_actions, n_freq = 6, 4
    mixes = rng.standard_normal((n_actions, 2 * n_freq, dim))
    offsets = 0.8 * rng.standard_normal((n_actions, dim))
    videos = []
    for v in range(-(-n_frames // per_video)):
        t_len = min(per_video, n_frames - v * per_video)
        a = v % n_actions
        pace = np.cumsum(rng.uniform(0.5, 1.5, t_len))
        phase = 2 * np.pi * pace / pace[-1]  # one pass through the action per video
        freqs = np.arange(1, n_freq + 1)
        basis = np.concatenate([np.sin(np.outer(phase, freqs)), np.cos(np.outer(phase, freqs))], axis=1)
        e = offsets[a] + basis @ mixes[a] / np.sqrt(n_freq) + 0.15 * rng.standard_normal((t_len, dim))
        videos.append((e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32))
    return videos


def trust(x: np.ndarray, coords: np.ndarray, seed: int = 0, n: int = 2000) -> float:
    from sklearn.manifold import trustworthiness

    rows = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return float(trustworthiness(x[rows], coords[rows], n_neighbors=10))


def plain_umap(x: np.ndarray, seed: int) -> np.ndarray:
    import umap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return umap.UMAP(random_state=seed).fit_transform(x)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 100_000])
    ap.add_argument("--quick", action="store_true", help="2k and 5k frames")
    ap.add_argument("--full", action="store_true", help="also fit on every frame of the largest size")
    ap.add_argument("--max-fit", type=int, default=20_000)
    ap.add_argument("--no-peer", action="store_true", help="leave plain umap-learn out")
    ap.add_argument("--peer-max", type=int, default=20_000, help="largest size plain umap-learn runs on")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.peer_max = [2_000, 5_000], 5_000
    import umap

    print(
        f"{platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, umap-learn {umap.__version__}"
    )
    print("seeded UMAP runs single-threaded (umap-learn disables parallel epochs with random_state)\n")

    warm = make_videos(5_000, seed=123)
    t_ours, _ = timed(lambda: project(warm[:2], seed=0))  # 1000 frames
    print(f"cold start (numba compile + 1k-frame map): project umap {t_ours:.1f} s", end="")
    if not args.no_peer:
        # umap-learn compiles one path for small inputs and pynndescent's for 4096 frames up
        t_small, _ = timed(lambda: plain_umap(np.concatenate(warm[:2]), 0))
        t_peer, _ = timed(lambda: plain_umap(np.concatenate(warm), 0))
        print(f"; umap-learn: 1k frames {t_small:.1f} s, then 5k (pynndescent) {t_peer:.1f} s", end="")
    print("\n")

    header = f"{'frames':>8} {'method':>13} {'fitted on':>9} {'time s':>8} {'vs umap-learn':>13} {'trust':>6}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        videos = make_videos(n, seed=n)
        x = np.concatenate(videos)
        rows = []
        t, res = timed(lambda v=videos: project(v, seed=0, max_fit=args.max_fit))
        rows.append(("project umap", res.fitted_on, t, res.coords, res.note))
        if args.full and n == max(args.sizes) and n > args.max_fit:
            t, res = timed(lambda v=videos: project(v, seed=0, max_fit=None))
            rows.append(("project full", res.fitted_on, t, res.coords, ""))
        peer_t = None
        if not args.no_peer and n <= args.peer_max:
            peer_t, coords = timed(lambda x=x: plain_umap(x, 0))
            rows.append(("umap-learn", n, peer_t, coords, ""))
        t, res = timed(lambda v=videos: project(v, method="pca"))
        rows.append(("project pca", n, t, res.coords, ""))
        for name, fitted, t, coords, _ in rows:
            ratio = "-" if peer_t is None or name == "umap-learn" else f"{peer_t / t:.2f}x"
            print(f"{n:>8,} {name:>13} {fitted:>9,} {t:>8.2f} {ratio:>13} {trust(x, coords):>6.3f}")
        for name, *_, note in rows:
            if note:
                print(f"{'':>8} note ({name}): {note}")
        print()
    print("vs umap-learn: its time over this method's (above 1: faster than plain umap-learn).")


if __name__ == "__main__":
    main()
