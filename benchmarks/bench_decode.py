"""Decoding speed: decord against PyAV on the same files, at full size and at the model's input size.

Both readers go through ``carl_core.video.iter_video`` (``backend="decord"`` / ``"pyav"``), so
each row is what the library really does: chunks of RGB frames, upright, every frame in
order. "full" keeps the stored size; "224x224" resizes in the decoder (swscale in PyAV,
FFmpeg's scale filter in decord), as ``embed_video`` asks. Rows run round robin, best of
``--repeats``, and the load average is printed: the machine may be shared.

    python benchmarks/bench_decode.py                  # real clips of several sizes + a synthetic one
    python benchmarks/bench_decode.py a.mp4 b.mkv --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.video import iter_video, probe_video  # noqa: E402

REAL = Path(os.environ.get("CARL_REAL_CLIPS", ROOT.parent / "shared" / "data" / "real_clips"))
DEFAULT_CLIPS = [
    "mmaction2__test.avi",  # 320x240 xvid (AVI)
    "decord__flipping_a_pancake.mkv",  # 426x240 H.264 (Matroska)
    "golfdb__test_video.mp4",  # 354x492 H.264
    "yuyoujiang__squat.mp4",  # 960x544 H.264
    "ikramaliokz__squat.mp4",  # 1280x720 H.264
    "pose2sim__cam02.mp4",  # 1080x1920 VP9
    "mmaction2__S001C001P001R001A001_rgb.avi",  # 1920x1080 (AVI)
]


def rate(path: Path, backend: str, size) -> float:
    t = time.perf_counter()
    n = sum(len(ts) for _, ts in iter_video(path, size=size, backend=backend, chunk=32))
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--size", type=int, default=224, help="model input side (default 224)")
    args = ap.parse_args()
    files = args.files or [REAL / c for c in DEFAULT_CLIPS if (REAL / c).is_file()]
    # the video bench_embed.py makes (640x360 H.264), if it is there
    synthetic = Path(os.environ.get("CARL_BENCH_DATA", "/tmp/carl_bench")) / "long_2min_640x360.mp4"
    if not args.files and synthetic.is_file():
        files.append(synthetic)
    sizes = {"full": None, f"{args.size}x{args.size}": (args.size, args.size)}
    cells = [(f, b, s) for f in files for s in sizes for b in ("decord", "pyav")]
    best: dict[tuple, float] = {}
    errors: dict[tuple, str] = {}
    for _ in range(args.repeats):
        for f, b, s in cells:
            try:
                best[(f, b, s)] = max(best.get((f, b, s), 0.0), rate(f, b, sizes[s]))
            except Exception as exc:  # a reader that fails on a file is a finding, not a crash
                errors[(f, b, s)] = type(exc).__name__
    load = os.getloadavg()[0]
    print(f"\nframes/s, best of {args.repeats}; cpu count {os.cpu_count()}, load average {load:.1f}")
    print(
        f"{'file':42s} {'size':>10s}  "
        + "  ".join(f"{b + ' ' + s:>15s}" for s in sizes for b in ("decord", "pyav"))
    )
    wins = {"decord": 0, "pyav": 0}
    for f in files:
        info = probe_video(f)
        row = []
        for s in sizes:
            for b in ("decord", "pyav"):
                row.append(errors.get((f, b, s)) or f"{best[(f, b, s)]:.0f}")
            d, p = best.get((f, "decord", s), 0.0), best.get((f, "pyav", s), 0.0)
            wins["decord" if d > p else "pyav"] += 1
        print(f"{f.name[:42]:42s} {info.width:>5d}x{info.height:<4d}  " + "  ".join(f"{c:>15s}" for c in row))
    total = sum(wins.values())
    print(f"\nfaster: decord in {wins['decord']}, PyAV in {wins['pyav']} of {total} (file, size) pairs")


if __name__ == "__main__":
    main()
