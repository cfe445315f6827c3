"""Peak memory of embedding a 2-minute and a 30-minute video: flat, whatever the length.

Each video is embedded in a fresh process (``embed_video``, ``small`` preset, the default
engine, no cache) and the process's peak resident set size (VmHWM) is read at the end, along
with the peak after the model and the engine were loaded, before the first frame: the
difference is what embedding the video itself cost. Both videos are synthetic squats at 640x360,
30 fps, made once (``carl_core.synthetic.render_long_video``) in ``$CARL_BENCH_DATA``.

    python benchmarks/bench_memory.py                 # 2 and 30 minutes at 10 fps
    python benchmarks/bench_memory.py --minutes 2 30 --fps 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker(video: str, fps: float | None) -> dict:
    from carl_core.config import load_preset
    from carl_core.embed import Embedder
    from carl_core.model import CARLModel

    model = CARLModel(load_preset("small").model).eval()
    embedder = Embedder(model, cache_dir=False)
    engine = embedder.engine_name  # loads (or exports) the engine now, not during the video
    loaded = _status_mb("VmHWM")
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        if time.monotonic() - last[0] > 30 or done == total:  # a line every 30 s on stderr
            last[0] = time.monotonic()
            print(message, file=sys.stderr, flush=True)

    t = time.perf_counter()
    embs, ts = embedder.embed(video, fps, on_progress=progress)
    seconds = time.perf_counter() - t
    return {
        "engine": engine,
        "frames": len(embs),
        "seconds": seconds,
        "loaded_mb": loaded,
        "peak_mb": _status_mb("VmHWM"),
        "result_mb": (embs.nbytes + ts.nbytes) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[2, 30])
    ap.add_argument("--fps", type=float, default=10.0, help="sampling rate; 0 for every frame (default 10)")
    ap.add_argument("--worker", nargs=2, metavar=("VIDEO", "FPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        video, fps = args.worker
        print(json.dumps(worker(video, float(fps) or None)))
        return
    from bench_embed import synthetic_video

    results = {}
    for minutes in args.minutes:
        video = synthetic_video(minutes)
        print(f"embedding {video.name} at {args.fps or 'every frame'} fps in a fresh process ...", flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(video), str(args.fps)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        results[minutes] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\ncpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'video':>8s} {'frames':>7s} {'engine':>6s} {'seconds':>8s} {'frames/s':>9s} "
          f"{'loaded MB':>10s} {'peak MB':>8s} {'growth MB':>10s} {'result MB':>10s}")  # fmt: skip
    for minutes, r in results.items():
        speed = r["frames"] / r["seconds"]
        growth = r["peak_mb"] - r["loaded_mb"]
        print(
            f"{minutes:>6g} m {r['frames']:7d} {r['engine']:>6s} {r['seconds']:8.1f} {speed:9.1f} "
            f"{r['loaded_mb']:10.0f} {r['peak_mb']:8.0f} {growth:10.0f} {r['result_mb']:10.1f}"
        )
    if len(results) >= 2:
        lo, hi = results[min(results)], results[max(results)]
        print(f"\npeak, {max(results):g} min / {min(results):g} min: {hi['peak_mb'] / lo['peak_mb']:.3f}")


if __name__ == "__main__":
    main()
