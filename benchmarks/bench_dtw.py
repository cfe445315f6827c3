"""DTW speed and memory: carl_core.align against dtaidistance's C DTW and the authors' pure-Python DTW.

Every measurement runs in a fresh worker process on the same inputs (regenerated from a seed),
so the peak memory of one method cannot hide in another's. Memory is the peak resident set
size above what the process held once the inputs existed and the code was warm (Linux
/proc/self/status VmHWM, reset through /proc/self/clear_refs): it counts numpy, numba, BLAS and
C allocations alike. Times are wall-clock seconds, path included.

Process CPU time is shown too: on a shared machine it
moves less with other jobs' load than wall-clock time does.

Inputs stand in for CARL embeddings: 128-d unit vectors along a smooth, quasi-periodic curve
(actions repeat), B re-timed by a known monotone warp plus noise, float64 (what dtaidistance
takes). The known warp gives a check on the multiscale mapping of the long pair.

    python benchmarks/bench_dtw.py             # 1k, 4k, 10k exact; authors at 300, 1k; 100k x 90k
    python benchmarks/bench_dtw.py --quick     # small sizes, a minute or so
    python benchmarks/bench_dtw.py --sizes 2000 --long 0 0 --no-authors

BLAS runs on one thread by default (``--threads``), so every row is one core against one core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- inputs


def make_pair(n: int, m: int, dim: int, seed: int):
    """Embeddings of an action (A) and of a re-timed, noisy repeat of it (B); the true warp."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_freq, period = 8, 90.0
    freqs = rng.uniform(0.2, 1.0, n_freq) * 2 * np.pi / period
    phase = rng.uniform(0, 2 * np.pi, n_freq)
    mix = rng.standard_normal((2 * n_freq, dim))

    def curve(t):
        out = np.empty((t.shape[0], dim), np.float32)
        for s in range(0, t.shape[0], 1 << 16):  # chunks keep the generator's memory small
            tt = t[s : s + (1 << 16)]
            e = np.concatenate([np.sin(np.outer(tt, freqs) + phase), np.cos(np.outer(tt, freqs) + phase)], 1)
            out[s : s + tt.shape[0]] = e @ mix
        return out

    u = np.linspace(0.0, 1.0, m)
    k = rng.uniform(-0.12, 0.12, 3)
    w = u + sum(k[i] * np.sin((i + 1) * np.pi * u) / ((i + 1) * np.pi) for i in range(3))
    w = (w - w[0]) / (w[-1] - w[0]) * (n - 1)
    x = curve(np.arange(n, dtype=np.float64))
    y = curve(w)
    y += (
        (0.5 / np.sqrt(dim))
        * np.linalg.norm(y, axis=1, keepdims=True)
        * rng.standard_normal(y.shape).astype(np.float32)
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return x.astype(np.float64), y.astype(np.float64), w


def authors_dtw(x, y):
    """The authors' utils/dtw.py (warp=1, "sqeuclidean"), re-typed: padded accumulated-cost
    matrix filled cell by cell in Python, then an argmin traceback."""
    import numpy as np
    from scipy.spatial.distance import cdist

    r, c = len(x), len(y)
    acc = np.zeros((r + 1, c + 1))
    acc[0, 1:] = np.inf
    acc[1:, 0] = np.inf
    acc[1:, 1:] = cdist(x, y, "sqeuclidean")
    cost = acc[1:, 1:].copy()  # the authors keep the cost matrix too
    for i in range(r):
        for j in range(c):
            acc[i + 1, j + 1] += min(acc[i, j], acc[i + 1, j], acc[i, j + 1])
    i, j = r - 1, c - 1
    pa, pb = [i], [j]
    while i > 0 or j > 0:
        step = int(np.argmin((acc[i, j], acc[i, j + 1], acc[i + 1, j])))
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 1:
            i -= 1
        else:
            j -= 1
        pa.insert(0, i)
        pb.insert(0, j)
    del cost
    return float(acc[r, c]), np.array(pa), np.array(pb)


# ----------------------------------------------------------------------------- worker


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(kind: str, n: int, m: int, dim: int, seed: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    x, y, w = make_pair(n, m, dim, seed)
    # Warm up on a tiny pair: imports, numba's compiled code, dtaidistance's library.
    if kind.startswith("ours"):
        from carl_core.align import dtw

        dtw(x[:50], y[:40], method="exact")
        dtw(x[:300], y[:280], method="multiscale", base_cells=5_000)
    elif kind == "dtai":
        from dtaidistance import dtw_ndim

        dtw_ndim.warping_path(x[:50], y[:40], include_distance=True, use_c=True)
    else:
        authors_dtw(x[:5], y[:5])
    gc.collect()
    reset = _reset_peak()
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    c0 = time.process_time()
    out: dict = {"kind": kind, "n": n, "m": m}
    if kind == "ours-exact" or kind == "ours-multiscale":
        al = dtw(x, y, method=kind.split("-")[1])
        cost, pa, pb = al.cost, al.path_a, al.path_b
    elif kind == "dtai":
        path, dist = dtw_ndim.warping_path(x, y, include_distance=True, use_c=True)
        pa = np.fromiter((p[0] for p in path), np.int64, len(path))
        pb = np.fromiter((p[1] for p in path), np.int64, len(path))
        cost = float(dist) ** 2  # dtaidistance reports sqrt of the summed squared distances
    else:
        cost, pa, pb = authors_dtw(x, y)
    out["time_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    out["peak_mb"] = (_status_kb("VmHWM") - base) / 1024 if reset else float("nan")
    out["cost"] = cost
    out["path_len"] = int(len(pa))
    # How far the path's B -> A mapping lies from the true warp, in frames of A.
    first = np.ones(len(pb), bool)
    first[1:] = pb[1:] != pb[:-1]
    err = np.abs(pa[first] - w[pb[first]])
    out["warp_err_mean"] = float(err.mean())
    out["warp_err_max"] = float(err.max())
    return out


def run_worker(kind: str, n: int, m: int, dim: int, seed: int, threads: int, timeout: float) -> dict:
    env = dict(os.environ)
    if threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[var] = str(threads)
    cmd = [sys.executable, __file__, "--worker", kind, str(n), str(m), str(dim), str(seed)]
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"kind": kind, "n": n, "m": m, "error": f"over {timeout:.0f} s"}
    if res.returncode != 0:
        return {"kind": kind, "n": n, "m": m, "error": res.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- table


def fmt(v, spec: str) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != v:
        return "n/a"
    return format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 4000, 10000], help="exact sizes (n = m)")
    ap.add_argument(
        "--authors-sizes", type=int, nargs="*", default=[300, 1000], help="sizes for the pure-Python DTW"
    )
    ap.add_argument(
        "--long", type=int, nargs=2, default=[100_000, 90_000], metavar=("N", "M"), help="0 0 to skip"
    )
    ap.add_argument(
        "--check",
        type=int,
        nargs=2,
        default=[20_000, 18_000],
        metavar=("N", "M"),
        help="a pair long for exact DTW, to compare multiscale against (0 0 to skip)",
    )
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads per worker (0: library default)")
    ap.add_argument("--no-dtai", action="store_true", help="skip dtaidistance")
    ap.add_argument("--no-authors", action="store_true", help="skip the authors' pure-Python DTW")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        kind, n, m, dim, seed = args.worker
        print(json.dumps(worker(kind, int(n), int(m), int(dim), int(seed))))
        return
    if args.quick:
        args.sizes, args.authors_sizes = [500, 1000], [200, 300]
        args.check, args.long = [3000, 2700], [20_000, 18_000]

    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    except OSError:
        load = ["?"]
    print(
        f"# DTW benchmark: dim {args.dim}, BLAS threads {args.threads or 'default'}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(load)} (other jobs share this machine)"
    )
    run = lambda kind, n, m: run_worker(kind, n, m, args.dim, args.seed, args.threads, args.timeout)  # noqa: E731

    header = (
        f"{'case':<28}{'ours s':>9}{'ours MB':>9}{'peer':>9}{'peer s':>10}{'peer MB':>9}"
        f"{'time ratio':>11}{'cpu ratio':>10}{'cost rel diff':>14}"
    )
    print(header)
    print("-" * len(header))

    def row(case: str, ours: dict, peer: dict | None, peer_name: str) -> None:
        if "error" in ours:
            print(f"{case:<28} ours failed: {ours['error']}")
            return
        if peer is None:
            print(f"{case:<28}{fmt(ours['time_s'], '9.3f')}{fmt(ours['peak_mb'], '9.1f')}")
            sys.stdout.flush()
            return
        p_s = p_mb = ratio = cpu_ratio = diff = None
        if "error" not in peer:
            p_s, p_mb = peer["time_s"], peer["peak_mb"]
            ratio = ours["time_s"] / p_s
            cpu_ratio = ours["cpu_s"] / peer["cpu_s"]
            diff = (ours["cost"] - peer["cost"]) / peer["cost"]
        else:
            peer_name = f"{peer_name}: {peer['error']}"
        print(
            f"{case:<28}{fmt(ours['time_s'], '9.3f')}{fmt(ours['peak_mb'], '9.1f')}{peer_name:>9}"
            f"{fmt(p_s, '10.3f')}{fmt(p_mb, '9.1f')}{fmt(ratio, '11.3f')}{fmt(cpu_ratio, '10.3f')}"
            f"{fmt(diff, '14.1e')}"
        )
        sys.stdout.flush()

    exact: dict[int, dict] = {}
    if not args.no_authors:
        for s in args.authors_sizes:
            ours = run("ours-exact", s, s)
            row(f"exact {s}x{s}", ours, run("authors", s, s), "authors")
    for s in args.sizes:
        ours = exact[s] = run("ours-exact", s, s)
        row(f"exact {s}x{s}", ours, None if args.no_dtai else run("dtai", s, s), "dtai")
    for s in args.sizes:
        if "error" not in exact[s]:
            row(f"multiscale {s}x{s}", run("ours-multiscale", s, s), exact[s], "exact")
    n, m = args.check
    if n and m:
        ex = run("ours-exact", n, m)
        row(f"exact {n}x{m}", ex, None, "")
        if "error" not in ex:
            row(f"multiscale {n}x{m}", run("ours-multiscale", n, m), ex, "exact")
    n, m = args.long
    if n and m:
        ms = run("ours-multiscale", n, m)
        row(f"multiscale {n}x{m}", ms, None, "")
        if "error" not in ms:
            print(
                f"  long pair: path {ms['path_len']} steps; mapping B->A vs the true warp: "
                f"mean {ms['warp_err_mean']:.2f}, max {ms['warp_err_max']:.2f} frames"
            )
    print(
        "ours/peer MB: peak resident memory above the inputs; time ratio = ours / peer (wall clock),\n"
        "cpu ratio = the same in process CPU time (steadier when other jobs load the machine);\n"
        "cost rel diff = (ours - peer) / peer (multiscale rows: against our exact cost)."
    )


if __name__ == "__main__":
    main()
