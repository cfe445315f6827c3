"""Embedding speed: the whole pipeline, decoding included, against the bare backbone in the same run.

The reference ("backbone alone") is plain ONNX Runtime running the ImageNet EfficientNet-Lite0
classifier (our own ``carl_core.backbone``, exported once) with default session options, in
batches of 16, on frames already decoded, resized and normalised in memory: what anyone gets
from Lite0 without our code. Against it, on the same frames of the same file:

- encoder alone: our per-frame encoder (``runtime.frame_encoder``: normalisation, Lite0,
  pooling, FC layers) on uint8 frames in memory, as the pipeline feeds it;
- pipeline: ``Embedder.embed`` from the file (probe, decoding in a background thread, the
  encoder, the transformer over the sequence), engine already made, no cache;
- embed_video: ``embed_video(model, path, fps, cache_dir=False)``, everything made per call;
- decode only, per decoder path: ``open_video(..., size=(224, 224), backend=...)``.

The machine may be shared, so absolute rates mean little: rows run interleaved (A B C A B C
...) for ``--rounds`` rounds, each round's rates are divided by that round's backbone rate, and
the medians are printed, with the load average before and after. CPU milliseconds per frame
(all threads of this process) move less with other jobs' load than wall-clock time.

    python benchmarks/bench_embed.py                         # the 1-minute 640x360 synthetic video, 10 fps
    python benchmarks/bench_embed.py --video clip.mp4 --fps 0   # every frame of a file
    python benchmarks/bench_embed.py --torch                 # add PyTorch eager rows (slow)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from carl_core import runtime  # noqa: E402
from carl_core.backbone import build_classifier  # noqa: E402
from carl_core.checkpoint import load_checkpoint  # noqa: E402
from carl_core.config import load_preset  # noqa: E402
from carl_core.embed import Embedder, embed_video  # noqa: E402
from carl_core.model import CARLModel  # noqa: E402
from carl_core.preprocess import normalize  # noqa: E402
from carl_core.video import open_video, read_video  # noqa: E402

DATA = Path(os.environ.get("CARL_BENCH_DATA", Path(tempfile.gettempdir()) / "carl_bench"))
CHECKPOINT = ROOT / "assets" / "carl_small.pt"
REFERENCE_BATCH = 16
BACKBONE = "backbone alone (plain ONNX Runtime)"
PIPELINE = "pipeline (Embedder.embed, engine ready)"
ENCODER = "encoder alone (ours, frames in memory)"


def synthetic_video(minutes: float, size: tuple[int, int] = (360, 640)) -> Path:
    """A long synthetic action video (squats), made once and kept in ``$CARL_BENCH_DATA``."""
    from carl_core.synthetic import SynthConfig, render_long_video

    path = DATA / f"long_{minutes:g}min_{size[1]}x{size[0]}.mp4"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"rendering {path} ...", flush=True)
        render_long_video(path, minutes, cfg=SynthConfig(size=size), seed=int(minutes))
    return path


def reference_session(size: int):
    """Plain ONNX Runtime with default session options on the ImageNet Lite0 classifier."""
    import onnxruntime as ort

    path = DATA / f"lite0_imagenet_{size}px_torch{torch.__version__}.onnx"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        example = torch.zeros(2, 3, size, size)
        runtime.export_onnx(build_classifier("efficientnet_lite0"), example, path)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def measure(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process, all threads)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="video file (default: a 1-minute synthetic one, 640x360)")
    ap.add_argument("--fps", type=float, default=10.0, help="sampling rate; 0 for every frame (default 10)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    ap.add_argument(
        "--checkpoint", type=Path, default=CHECKPOINT, help="the model (default: assets/carl_small.pt)"
    )
    ap.add_argument("--preset", help="an untrained model of this preset instead of the checkpoint")
    ap.add_argument("--decoders", default="auto,pyav,decord", help="decode-only rows, comma-separated")
    ap.add_argument("--torch", action="store_true", help="add PyTorch eager rows (first 128 frames)")
    ap.add_argument("--threads", type=int, default=None, help="torch / our ONNX Runtime threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = args.video or synthetic_video(1)
    fps = args.fps or None
    load_before = os.getloadavg()[0]

    model = CARLModel(load_preset(args.preset).model) if args.preset else load_checkpoint(args.checkpoint)
    model = model.eval()
    size = model.cfg.image_size
    onnx = Embedder(model, backend="onnx", cache_dir=False)
    assert onnx.engine_name == "onnx"
    encoder = onnx._get_engine().session
    frames, _ = read_video(video, fps=fps, size=(size, size))
    n = len(frames)
    normalised = normalize(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), max_value=255.0).numpy()
    reference = reference_session(size)
    ref_input = reference.get_inputs()[0].name
    chunk = model.cfg.frames_per_batch

    def backbone_alone() -> None:
        for i in range(0, n, REFERENCE_BATCH):
            reference.run(None, {ref_input: normalised[i : i + REFERENCE_BATCH]})

    def encoder_alone() -> None:
        for i in range(0, n, chunk):
            encoder(frames[i : i + chunk])

    def decode(backend: str) -> Callable[[], object]:
        return lambda: sum(len(t) for _, t in open_video(video, fps=fps, size=(size, size), backend=backend))

    rows: dict[str, tuple[Callable[[], object], int]] = {
        BACKBONE: (backbone_alone, n),
        PIPELINE: (lambda: onnx.embed(video, fps), n),
        ENCODER: (encoder_alone, n),
        "embed_video (all set-up per call)": (lambda: embed_video(model, video, fps, cache_dir=False), n),
    }
    for backend in args.decoders.split(","):
        rows[f"decode only ({backend})"] = (decode(backend), n)
    if args.torch:
        eager = Embedder(model, backend="torch", cache_dir=False)
        head = frames[:128]

        def encoder_torch() -> None:
            with torch.no_grad():
                model.frame_features(normalize(torch.from_numpy(head).permute(0, 3, 1, 2).float() / 255))

        rows["encoder alone (PyTorch eager)"] = (encoder_torch, len(head))
        # the whole pipeline in PyTorch would take minutes here: its rate is per frame all the same
        rows["pipeline (PyTorch eager)"] = (lambda: eager.embed(video, fps), n)

    backbone_alone(), encoder_alone()  # warm-up: first calls allocate and pick kernels
    rates: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(args.rounds):
        for name, (fn, count) in rows.items():
            wall, used = measure(fn)
            rates[name].append(count / wall)
            cpu[name].append(1000 * used / count)
        ratio = rates[PIPELINE][-1] / rates[BACKBONE][-1]
        print(f"round {r + 1}/{args.rounds}: pipeline / backbone {ratio:.3f}", flush=True)
    load_after = os.getloadavg()[0]

    info = open_video(video).info
    what = f"every frame -> {n}" if fps is None else f"{fps:g} fps -> {n}"
    print(f"\nvideo: {video.name}, {info.width}x{info.height} {info.codec}, ", end="")
    print(f"{info.fps:.2f} fps, {info.duration:.0f} s")
    print(f"sampled at {what} frames of {size}x{size}")
    print(
        f"model: {args.preset or args.checkpoint.name} ({model.cfg.backbone}), "
        f"threads {torch.get_num_threads()}, cpu count {os.cpu_count()}, "
        f"load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(f"{args.rounds} interleaved rounds; medians, and the range of the ratio over rounds\n")
    print(f"{'':42s} {'frames/s':>9s} {'CPU ms/frame':>13s} {'/ backbone':>11s} {'range':>13s}")
    base = rates[BACKBONE]
    for name in rows:
        ratios = [a / b for a, b in zip(rates[name], base)]
        print(
            f"{name:42s} {statistics.median(rates[name]):9.1f} {statistics.median(cpu[name]):13.2f} "
            f"{statistics.median(ratios):11.3f} {min(ratios):6.3f}-{max(ratios):.3f}"
        )
    by_encoder = statistics.median(a / b for a, b in zip(rates[PIPELINE], rates[ENCODER]))
    pipe, enc = statistics.median(cpu[PIPELINE]), statistics.median(cpu[ENCODER])
    print(f"\npipeline / our encoder alone: {by_encoder:.3f} (median over rounds)")
    # The pipeline is CPU-bound: its CPU beyond the encoder's is what it gives away on any machine.
    print(
        f"CPU beyond the encoder in the pipeline (decoding, transformer, hand-over): "
        f"{pipe - enc:.2f} ms/frame, {(pipe - enc) / pipe:.1%} of the pipeline's"
    )


if __name__ == "__main__":
    main()
