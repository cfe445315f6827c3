"""Embedding speed: file to embeddings against the per-frame encoder alone, ONNX Runtime against PyTorch.

Rows, all on the same model (``small`` preset: EfficientNet-Lite0, ImageNet weights, 224 px;
the transformer head is untrained, which changes nothing about speed) and the same frames:

- decode only: ``open_video`` at the model's input size, nothing else;
- encoder, frames in memory: the per-frame encoder (backbone, pooling, FC) on uint8 frames
  already decoded and resized, as the pipeline feeds it: the ceiling for the pipeline;
- pipeline: ``Embedder.embed`` from the file (decoding in a background thread, the encoder,
  the transformer over the whole sequence), no cache;
- cached: the second run, served by the embedding cache.

each with ONNX Runtime and with PyTorch eager (channels-last). Rows run round robin, best of
``--repeats``, so load from other processes on a shared machine hits every row alike; the load
average is printed. PyTorch eager is slow on CPU, so its rows use the first ``--torch-frames``
frames (rates are per frame, so they compare).

    python benchmarks/bench_embed.py                      # the 2-minute synthetic video, 10 fps
    python benchmarks/bench_embed.py --video clip.mp4 --fps 0    # every frame of a file
    python benchmarks/bench_embed.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from carl_core.config import load_preset  # noqa: E402
from carl_core.embed import Embedder  # noqa: E402
from carl_core.model import CARLModel  # noqa: E402
from carl_core.preprocess import normalize  # noqa: E402
from carl_core.video import open_video, read_video  # noqa: E402

DATA = Path(os.environ.get("CARL_BENCH_DATA", Path(tempfile.gettempdir()) / "carl_bench"))


def synthetic_video(minutes: float, size: tuple[int, int] = (360, 640)) -> Path:
    """A long synthetic action video (squats), made once and kept in ``$CARL_BENCH_DATA``."""
    from carl_core.synthetic import SynthConfig, render_long_video

    path = DATA / f"long_{minutes:g}min_{size[1]}x{size[0]}.mp4"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"rendering {path} ...", flush=True)
        render_long_video(path, minutes, cfg=SynthConfig(size=size), seed=int(minutes))
    return path


def cut(video: Path, seconds: float) -> Path:
    """The start of ``video`` (a little over ``seconds``), remuxed without re-encoding."""
    import av

    out = Path(tempfile.mkdtemp()) / f"start{video.suffix}"
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        for packet in src.demux(s_in):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts * s_in.time_base > seconds + 1:
                break
            packet.stream = s_out
            dst.mux(packet)
    return out


def timed(fn) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process, all threads)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, help="video file (default: a 2-minute synthetic one, 640x360)")
    ap.add_argument("--fps", type=float, default=10.0, help="sampling rate; 0 for every frame (default 10)")
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs per row (default 2)")
    ap.add_argument("--torch-frames", type=int, default=256, help="frames for the PyTorch rows (default 256)")
    ap.add_argument("--threads", type=int, default=None, help="torch / ONNX Runtime threads")
    ap.add_argument("--preset", default="small")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    video = args.video or synthetic_video(2)
    fps = args.fps or None

    model = CARLModel(load_preset(args.preset).model).eval()
    size = model.cfg.image_size
    onnx = Embedder(model, backend="onnx", cache_dir=False)
    eager = Embedder(model, backend="torch", cache_dir=False)
    assert onnx.engine_name == "onnx"
    stream = open_video(video, fps=fps, size=(size, size))
    frames, _ = read_video(video, fps=fps, size=(size, size))
    n = len(frames)
    head = frames[: args.torch_frames]
    torch_video = video if n <= len(head) else cut(video, stream.timestamps[len(head)])
    torch_n = len(open_video(torch_video, fps=fps, size=(size, size)))
    cached = Embedder(model, cache_dir=Path(tempfile.mkdtemp()))
    cached.embed(video, fps)  # fills the cache
    session = onnx._get_engine().session
    chunk = model.cfg.frames_per_batch

    def encoder_onnx() -> None:
        for i in range(0, n, chunk):
            session(frames[i : i + chunk])

    def encoder_torch() -> None:
        with torch.no_grad():
            for i in range(0, len(head), chunk):
                x = torch.from_numpy(head[i : i + chunk]).permute(0, 3, 1, 2).float().div_(255)
                model.frame_features(normalize(x))

    rows = {
        "decode only": (lambda: sum(len(t) for _, t in open_video(video, fps=fps, size=(size, size))), n),
        "encoder, frames in memory (ONNX Runtime)": (encoder_onnx, n),
        "pipeline, file to embeddings (ONNX Runtime)": (lambda: onnx.embed(video, fps), n),
        "encoder, frames in memory (PyTorch eager)": (encoder_torch, len(head)),
        "pipeline, file to embeddings (PyTorch eager)": (lambda: eager.embed(torch_video, fps), torch_n),
        "second run (cache)": (lambda: cached.embed(video, fps), n),
    }
    encoder_onnx(), encoder_torch()  # warm-up: first calls allocate and pick kernels
    best = dict.fromkeys(rows, float("inf"))
    cpu = dict.fromkeys(rows, float("inf"))
    for _ in range(args.repeats):
        for name, (fn, _) in rows.items():
            wall, used = timed(fn)
            best[name], cpu[name] = min(best[name], wall), min(cpu[name], used)
    rate = {name: rows[name][1] / best[name] for name in rows}
    cpu_ms = {name: 1000 * cpu[name] / rows[name][1] for name in rows}

    info = stream.info
    what = f"every frame -> {n}" if fps is None else f"{fps:g} fps -> {n}"
    print(f"\nvideo: {video.name}, {info.width}x{info.height} {info.codec}, {info.fps:.2f} fps, ", end="")
    print(f"{info.duration:.0f} s")
    print(f"sampled at {what} frames of {size}x{size}")
    print(
        f"model: {args.preset} ({model.cfg.backbone}), threads {torch.get_num_threads()}, "
        f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (after)"
    )
    print(f"\n{'':46s} {'frames':>7s} {'seconds':>8s} {'frames/s':>9s} {'CPU ms/frame':>13s}")
    for name in rows:
        print(f"{name:46s} {rows[name][1]:7d} {best[name]:8.2f} {rate[name]:9.1f} {cpu_ms[name]:13.1f}")
    enc_o = rate["encoder, frames in memory (ONNX Runtime)"]
    pipe_o = rate["pipeline, file to embeddings (ONNX Runtime)"]
    enc_t = rate["encoder, frames in memory (PyTorch eager)"]
    pipe_t = rate["pipeline, file to embeddings (PyTorch eager)"]
    # CPU time moves less with other jobs' load than wall-clock time: on an idle machine whose
    # cores the encoder fills, the pipeline's rate is the encoder's times this ratio.
    cpu_ratio = (
        cpu_ms["encoder, frames in memory (ONNX Runtime)"]
        / cpu_ms["pipeline, file to embeddings (ONNX Runtime)"]
    )
    print(f"\npipeline / encoder alone, ONNX Runtime:   {pipe_o / enc_o:6.1%}", end="")
    print(f" (by CPU time per frame: {cpu_ratio:.1%})")
    print(f"pipeline / encoder alone, PyTorch eager:  {pipe_t / enc_t:6.1%}")
    print(f"ONNX Runtime / PyTorch eager, pipeline:   {pipe_o / pipe_t:6.1f}x")
    print(f"ONNX Runtime / PyTorch eager, encoder:    {enc_o / enc_t:6.1f}x")


if __name__ == "__main__":
    main()
