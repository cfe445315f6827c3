"""Pose extraction speed against the visual embedding path, measured in the same run.

Rows, per video (a real clip and a long synthetic one), all from the file, no cache:

- pose: ``PoseExtractor.extract`` end to end (decoding at full size in a background thread,
  the detector when tracking is lost, the landmark model, smoothing);
- embed: ``embed_video`` with the bundled ``assets/carl_small.pt`` on ONNX Runtime (decoding at
  224 px, Lite0 per frame, the transformer), the peer the ratio is taken against;
- decode only: full-size frames, as pose extraction reads them.

Then the two networks alone on frames in memory: the detector (whole frame letterboxed to 224)
and the landmark model (a 256 crop), each with its crop and decoding of outputs. Rows run round
robin, best of ``--repeats``, so other processes' load hits every row alike; the load average is
printed. The synthetic video's stick figures are no people to BlazePose: there the detector runs
on every frame (the slow path of a video with nobody in it).

    python benchmarks/bench_pose.py
    python benchmarks/bench_pose.py --video clip.mp4 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_embed import synthetic_video  # noqa: E402

from carl_core.checkpoint import load_checkpoint  # noqa: E402
from carl_core.embed import embed_video  # noqa: E402
from carl_core.pose import PoseExtractor  # noqa: E402
from carl_core.pose_models import Rect  # noqa: E402
from carl_core.video import open_video, read_video  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real_clips" / "golfdb__test_video.mp4"


def best_of(rows: dict, repeats: int) -> dict[str, float]:
    best = dict.fromkeys(rows, float("inf"))
    for _ in range(repeats):
        for name, fn in rows.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=REAL, help="a real clip (default: the golf swing)")
    ap.add_argument("--minutes", type=float, default=1.0, help="length of the synthetic video (default 1)")
    ap.add_argument(
        "--fps", type=float, default=10.0, help="sampling rate for the synthetic video (default 10)"
    )
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs per row (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="LiteRT threads per network (default 2)")
    args = ap.parse_args()

    extractor = PoseExtractor(cache_dir=False, threads=args.threads)
    model = load_checkpoint(ROOT / "assets" / "carl_small.pt", device="cpu")
    videos = []
    if args.video.is_file():
        videos.append((args.video, None))
    else:
        print(f"({args.video} not found: the real clip is left out)")
    videos.append((synthetic_video(args.minutes), args.fps))

    print(f"cpu count {os.cpu_count()}, LiteRT threads {args.threads or min(2, os.cpu_count() or 1)}")
    for video, fps in videos:
        n = len(open_video(video, fps=fps))
        info = open_video(video).info
        rows = {
            "pose, file to landmarks": lambda v=video, f=fps: extractor.extract(v, fps=f),
            "embed (carl_small, ONNX Runtime)": lambda v=video, f=fps: embed_video(
                model, v, f, cache_dir=False, backend="onnx"
            ),
            "decode only, full size": lambda v=video, f=fps: sum(len(t) for _, t in open_video(v, fps=f)),
        }
        rows["embed (carl_small, ONNX Runtime)"]()  # warm-up: the ONNX export and session
        best = best_of(rows, args.repeats)
        seq = extractor.extract(video, fps=fps)
        what = "every frame" if fps is None else f"{fps:g} fps"
        print(
            f"\n{video.name}: {info.width}x{info.height}, {info.fps:.2f} fps, {what} -> {n} frames, ", end=""
        )
        print(f"a person in {int(seq.present.sum())}; load average {os.getloadavg()[0]:.1f} (after)")
        print(f"{'':36s} {'seconds':>8s} {'frames/s':>9s}")
        for name, seconds in best.items():
            print(f"{name:36s} {seconds:8.2f} {n / seconds:9.1f}")
        pose_rate, embed_rate = (
            n / best["pose, file to landmarks"],
            n / best["embed (carl_small, ONNX Runtime)"],
        )
        print(f"pose / embed: {pose_rate / embed_rate:.2f}x the visual path's frame rate")

    frames, _ = read_video(videos[0][0], indices=range(30))
    h, w = frames.shape[1:3]
    whole, body = Rect(w / 2, h / 2, w, h), Rect(w / 2, h / 2, 0.8 * min(w, h), 0.8 * min(w, h), 0.2)
    nets = {
        "detector (crop 224 + decode)": lambda: [extractor.net.detect(f, whole) for f in frames],
        "landmark model (crop 256 + decode)": lambda: [extractor.net.landmarks(f, body) for f in frames],
    }
    best = best_of(nets, args.repeats + 1)
    print(f"\nthe networks alone, {len(frames)} frames of {videos[0][0].name} in memory:")
    for name, seconds in best.items():
        print(f"{name:36s} {seconds:8.2f} {len(frames) / seconds:9.1f} frames/s")
    print(f"load average {os.getloadavg()[0]:.1f} (after)")


if __name__ == "__main__":
    main()
