"""Top-k frame retrieval: carl_core.retrieval.FrameIndex against numpy brute force and faiss.

For 10k, 100k and 1M indexed frames of 128-d embeddings it times, in one run on the same data:

- ``numpy``: the plain brute force, ``q @ X.T`` for all frames at once, ``argpartition``, sort;
- ``index f32``: FrameIndex (chunked BLAS scoring, bounded memory, exact);
- ``index i16`` / ``index f16``: FrameIndex with int16 / float16 storage (16-bit scan, float32
  re-ranking, exact);
- ``faiss``: faiss' exact ``IndexFlatIP`` (pip faiss-cpu), when it is installed.

Latency is the median over single queries; throughput is a batch of queries per call, given as
milliseconds per query. ``agree`` is the share of the top-k rows equal to numpy's (1.000, or a
hair below where float32 near-ties swap places). "matrix MB" is the matrix a query scans (for
16-bit storage the scan copy; its float32 rows for re-ranking stay on disk once the index is
saved and loaded with ``mmap=True``); "peak MB" the peak of numpy allocations during a batch
query (tracemalloc; faiss allocates outside numpy, so "-").

Data stand in for CARL embeddings: videos of 1000 frames, each a smooth random walk on the unit
sphere (neighbouring frames are near-duplicates, as in real embeddings); queries are frames of
other such videos.

    python benchmarks/bench_retrieval.py            # 10k, 100k, 1M frames
    python benchmarks/bench_retrieval.py --quick    # 10k, 50k frames, a few seconds
    python benchmarks/bench_retrieval.py --sizes 200000 --k 100 --threads 1

BLAS and faiss use ``--threads`` threads (default: all cores), the same for every method.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--quick", action="store_true", help="10k and 50k frames, fewer repeats")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100, help="queries per batch call")
    ap.add_argument("--singles", type=int, default=30, help="single queries timed per size")
    ap.add_argument("--repeats", type=int, default=3, help="batch calls timed per size")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-faiss", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.singles, args.batch = [10_000, 50_000], 10, 50
    return args


if __name__ == "__main__":
    ARGS = parse_args()
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(ARGS.threads)  # before numpy and faiss start their thread pools

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT))
FRAMES_PER_VIDEO = 1000


def make_videos(n_frames: int, dim: int, seed: int, frames_per_video: int = FRAMES_PER_VIDEO) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_videos = max(1, n_frames // frames_per_video)
    out = np.empty((n_videos * frames_per_video, dim), np.float32)
    for v in range(n_videos):
        steps = rng.standard_normal((frames_per_video, dim), dtype=np.float32) * 0.08
        walk = rng.standard_normal(dim, dtype=np.float32) + np.cumsum(steps, axis=0)
        walk += rng.standard_normal(walk.shape, dtype=np.float32) * 0.02
        out[v * frames_per_video : (v + 1) * frames_per_video] = walk
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out[:n_frames]


def numpy_topk(x, q, k):
    import numpy as np

    s = q @ x.T
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def numpy_peak(fn) -> float:
    """Peak MiB allocated through numpy (and Python) while ``fn`` runs."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


@dataclass
class Method:
    name: str
    search: Callable[[np.ndarray], np.ndarray]  # queries (Q, D) -> top-k rows (Q, k)
    build_s: float
    matrix_mb: float
    numpy_memory: bool = True  # False where allocations happen outside numpy (faiss)


def build_methods(x: np.ndarray, k: int, faiss) -> list[Method]:
    from carl_core.retrieval import FrameIndex

    def numpy_topk(q: np.ndarray) -> np.ndarray:
        s = q @ x.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)

    methods = [Method("numpy", numpy_topk, 0.0, x.nbytes / 2**20)]
    for storage in ("float32", "int16", "float16"):
        t = time.perf_counter()
        index = FrameIndex(x.shape[1], storage=storage)
        for v in range(0, len(x), FRAMES_PER_VIDEO):
            part = x[v : v + FRAMES_PER_VIDEO]
            index.add(f"video{v // FRAMES_PER_VIDEO}", part, np.arange(len(part)) / 30)
        build_s = time.perf_counter() - t
        # 16-bit storage adds a scan copy to the float32 rows kept for re-ranking, which a
        # FrameIndex.load(dir, mmap=True) leaves on disk: "matrix MB" counts the scan copy.
        scan = index._xs if index._xs is not None else index._x32
        mb = scan.view.nbytes / 2**20
        name = f"index {storage[0]}{storage[-2:]}"
        methods.append(Method(name, lambda q, i=index: i.search(q, k)[0], build_s, mb))
    if faiss is not None:
        t = time.perf_counter()
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
        methods.append(
            Method("faiss", lambda q: flat.search(q, k)[1], time.perf_counter() - t, x.nbytes / 2**20, False)
        )
    return methods


def bench_size(n: int, args, queries: np.ndarray, faiss) -> None:
    x = make_videos(n, args.dim, seed=n)
    methods = build_methods(x, args.k, faiss)
    singles = {m.name: [] for m in methods}
    batches = {m.name: [] for m in methods}
    for m in methods:  # warm thread pools and caches
        m.search(queries[:1])
    # Round robin, so that load from other processes on a shared machine hits every method alike.
    for q in queries[: args.singles]:
        for m in methods:
            t = time.perf_counter()
            m.search(q[None])
            singles[m.name].append(time.perf_counter() - t)
    results = {}
    for _ in range(args.repeats):
        for m in methods:
            t = time.perf_counter()
            results[m.name] = m.search(queries[: args.batch])
            batches[m.name].append((time.perf_counter() - t) / args.batch)
    lat = {k: statistics.median(v) for k, v in singles.items()}
    per_q = {k: statistics.median(v) for k, v in batches.items()}
    ref = results["numpy"]

    def ratio(times, peer, name):
        return "-" if peer not in times or peer == name else f"{times[peer] / times[name]:.2f}x"

    for m in methods:
        peak = numpy_peak(lambda m=m: m.search(queries[: args.batch])) if m.numpy_memory else None
        agree = float((results[m.name] == ref).mean())
        print(
            f"{n:>9,} {m.name:>9} {m.build_s:>7.2f} {lat[m.name] * 1e3:>10.2f} "
            f"{ratio(lat, 'numpy', m.name):>8} {ratio(lat, 'faiss', m.name):>8} {per_q[m.name] * 1e3:>10.3f} "
            f"{ratio(per_q, 'numpy', m.name):>8} {ratio(per_q, 'faiss', m.name):>8} {agree:>6.3f} "
            f"{m.matrix_mb:>9.1f} {'-' if peak is None else f'{peak:.1f}':>8}"
        )
    print()


def main(args: argparse.Namespace) -> None:
    faiss = None
    if not args.no_faiss:
        try:
            import faiss  # type: ignore[no-redef]

            faiss.omp_set_num_threads(args.threads)
        except ImportError:
            print("faiss is not installed (pip install faiss-cpu): its column is left out\n")

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
        f"numpy {np.__version__}" + (f", faiss {faiss.__version__}" if faiss else "")
    )
    print(
        f"dim {args.dim}, k {args.k}; single-query latency = median of {args.singles}; "
        f"batch = {args.batch} queries per call\n"
    )

    queries_all = make_videos(max(args.batch, args.singles) * 10, args.dim, seed=999)
    pick = np.random.default_rng(1).choice(len(queries_all), max(args.batch, args.singles), replace=False)
    header = (
        f"{'frames':>9} {'method':>9} {'build s':>7} {'1 query ms':>10} {'vs numpy':>8} {'vs faiss':>8} "
        f"{'batch ms/q':>10} {'vs numpy':>8} {'vs faiss':>8} {'agree':>6} {'matrix MB':>9} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        bench_size(n, args, queries_all[pick], faiss)
    print("ratios: the peer's time over this method's (above 1: this method is faster).")


if __name__ == "__main__":
    main(ARGS)
