"""Decoding cost per decoder path: decord against PyAV, every frame and sampled, on the same files.

Every cell goes through ``carl_core.video.open_video`` (``backend="decord"`` / ``"pyav"`` /
``"auto"``), so it is what the library really does: chunks of RGB frames, upright, resized in
the decoder. "pyav, no skip" is PyAV decoding every frame up to the last one wanted, as it did
before it learnt to leave out the frames that sampling never uses and nothing references.

The figure that matters for embedding is CPU milliseconds per frame delivered (all threads of
this process): the model fills the cores, so what decoding costs is what it takes from the
model. Wall-clock frames/s is printed too. Cells run interleaved, ``--repeats`` times; medians.
``--threads 1`` is what ``embed.py`` uses on the CPU; 0 lets the decoders choose.

    python benchmarks/bench_decode.py                  # real clips of several sizes + the synthetic one
    python benchmarks/bench_decode.py a.mp4 b.mkv --repeats 5 --fps 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core import video  # noqa: E402

REAL = Path(os.environ.get("CARL_REAL_CLIPS", ROOT.parent / "shared" / "data" / "real_clips"))
DEFAULT_CLIPS = [
    "mmaction2__test.avi",  # 320x240 MPEG-4 part 2 (AVI)
    "decord__flipping_a_pancake.mkv",  # 426x240 H.264 (Matroska)
    "golfdb__test_video.mp4",  # 354x492 H.264
    "yuyoujiang__squat.mp4",  # 960x544 H.264
    "ikramaliokz__squat.mp4",  # 1280x720 H.264
    "pose2sim__cam02.mp4",  # 1080x1920 VP9
    "mmaction2__S001C001P001R001A001_rgb.avi",  # 1920x1080 H.264 (AVI)
]
PATHS = ("auto", "decord", "pyav", "pyav, no skip")


@contextlib.contextmanager
def decoder(path_name: str) -> Iterator[str]:
    """The backend for a row; "pyav, no skip" turns frame skipping off while it runs."""
    if path_name != "pyav, no skip":
        yield path_name
        return
    video._SKIP_UNWANTED = False
    try:
        yield "pyav"
    finally:
        video._SKIP_UNWANTED = True


def measure(path: Path, path_name: str, fps: float | None, size, threads: int) -> tuple[float, float]:
    """(frames/s, CPU ms per frame) of one decode."""
    with decoder(path_name) as backend:
        t, c = time.perf_counter(), time.process_time()
        stream = video.open_video(path, fps=fps, size=size, backend=backend, threads=threads)
        n = sum(len(ts) for _, ts in stream)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    return n / wall, 1000 * cpu / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=224, help="model input side (default 224); 0: stored size")
    ap.add_argument("--fps", type=float, default=10.0, help="the sampled case's rate (default 10)")
    ap.add_argument("--threads", type=int, default=1, help="decoder threads (default 1, as embed.py)")
    args = ap.parse_args()
    files = args.files or [REAL / c for c in DEFAULT_CLIPS if (REAL / c).is_file()]
    # the video bench_embed.py makes (640x360 H.264), if it is there
    synthetic = Path(os.environ.get("CARL_BENCH_DATA", "/tmp/carl_bench")) / "long_1min_640x360.mp4"
    if not args.files and synthetic.is_file():
        files.append(synthetic)
    size = (args.size, args.size) if args.size else None
    cases = {"every frame": None, f"{args.fps:g} fps": args.fps}
    cells = [(f, c, p) for f in files for c in cases for p in PATHS]
    rates: dict[tuple, list[float]] = {cell: [] for cell in cells}
    cpu: dict[tuple, list[float]] = {cell: [] for cell in cells}
    errors: dict[tuple, str] = {}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for f, c, p in cells:
            try:
                r, ms = measure(f, p, cases[c], size, args.threads)
            except Exception as exc:  # a reader that fails on a file is a finding, not a crash
                errors[(f, c, p)] = type(exc).__name__
                continue
            rates[(f, c, p)].append(r)
            cpu[(f, c, p)].append(ms)
    print(
        f"\nCPU ms per delivered frame (frames/s), medians of {args.repeats}; size {args.size or 'stored'}, "
        f"decoder threads {args.threads}; cpu count {os.cpu_count()}, "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(f"{'file':34s} {'size':>9s} {'frames':>11s}  " + "  ".join(f"{p:>15s}" for p in PATHS))
    wins = {p: 0 for p in PATHS if p != "auto"}
    for f in files:
        info = video.probe_video(f)
        for c in cases:
            row = []
            for p in PATHS:
                if errors.get((f, c, p)) or not cpu[(f, c, p)]:
                    row.append(errors.get((f, c, p), "-"))
                    continue
                row.append(
                    f"{statistics.median(cpu[(f, c, p)]):.2f} ({statistics.median(rates[(f, c, p)]):.0f})"
                )
            best = min(
                (p for p in wins if cpu[(f, c, p)]),
                key=lambda p: statistics.median(cpu[(f, c, p)]),
                default=None,
            )
            if best:
                wins[best] += 1
            print(
                f"{f.name[:34]:34s} {info.width:>4d}x{info.height:<4d} {c:>11s}  "
                + "  ".join(f"{x:>15s}" for x in row)
            )
    print(
        "\ncheapest in CPU: "
        + ", ".join(f"{p} in {n}" for p, n in wins.items())
        + f" of {len(files) * len(cases)}"
    )


if __name__ == "__main__":
    main()
