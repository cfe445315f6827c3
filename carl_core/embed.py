"""From a video file to frame embeddings: streaming, bounded memory, a fast engine and a cache.

The pipeline, for a video of any length:

1. ``open_video`` probes the file (a bad file fails here with a ``VideoError``) and plans the
   frames: every frame, or those nearest to a grid of ``fps`` per second, with their exact
   presentation times.
2. A background thread decodes the planned frames, already resized to the model's square
   input, into chunks and hands them over through a queue of ``PREFETCH`` chunks, so decoding
   overlaps the model's work and at most a few chunks of pixels are ever in memory.
3. The per-frame encoder (backbone, pooling, fully-connected layers) turns each chunk into
   (t, hidden) features: ONNX Runtime on CPU (``runtime.py``), PyTorch with bf16 autocast,
   channels-last and pinned host memory on CUDA.
4. The transformer sees the whole (T, hidden) sequence, full attention up to a length and
   blended overlapping windows beyond it (``model.AttentionWindow``).

Memory: pixels are bounded by the chunk size and the queue; what grows with the length is
(T, hidden) features and (T, D) embeddings, 0.5 KB per frame each for the ``small`` preset
(9 MB for a 30-minute video at 10 fps).

Results go to an ``EmbeddingCache`` keyed by the file's content, the model's weights, fps,
input size and attention window; a second run is a lookup.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from . import runtime
from .cache import EmbeddingCache, EmbeddingKey, file_digest, model_digest, window_text
from .devices import default_device
from .errors import ConfigError, VideoError
from .model import DEFAULT_WINDOW, AttentionWindow, CARLModel
from .preprocess import normalize
from .progress import Progress, format_duration
from .skeleton import PoseSequence
from .video import FrameStream, blank_frames, check_fps, check_video_file, open_video

if TYPE_CHECKING:
    from .fusion import FusedModel

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
PREFETCH = 3  # decoded chunks waiting for the model: enough to ride out decoding hiccups
STALL_SECONDS = 600.0  # no chunk from the decoder for this long: give up rather than hang
_CPU_FPS, _GPU_FPS = 10.0, 30.0


class EmbedResult(tuple):
    """A video's embeddings: the pair ``(embeddings, times)`` that also carries, by name,
    where each embedded frame is in the file and whether it is blank. Like ``os.stat_result``:

        embs, times = embed_video(model, path)    # the public contract: a pair
        result = embed_video(model, path)
        result.embeddings  # (T, D) float32, L2-normalised
        result.times       # (T,) float64 presentation times in seconds from the first frame
        result.indices     # (T,) int64 frame numbers in the file (presentation order)
        result.blank       # (T,) bool: black or otherwise nearly uniform frames (``video.blank_frames``)
        result.pose        # the body pose the model read (a ``PoseSequence``), or None
        result.frame_embeddings  # (T, F) each frame on its own, without context: see below

    ``frame_embeddings`` are what a picture is compared with (``embed_picture``): a model's
    embedding of a frame depends on the frames around it, which a picture has not, so a picture
    run through the sequence model as a one-frame clip lands near the first frames of every video.
    Each frame's context-free embedding is computed the way a picture's is: a pixel model's
    per-frame features (before the sequence part), a pose model's pose descriptor
    (``pose_features.pose_descriptor``), both for the fused ``human`` model.

    ``indices`` are the decoded frames' own numbers, right for variable frame rates and files
    whose first frame starts late, where ``round(time * fps)`` is not. ``len(result)`` is 2, as
    for any pair; the number of frames is ``len(result.times)``.
    """

    indices: np.ndarray
    blank: np.ndarray
    pose: PoseSequence | None
    frame_embeddings: np.ndarray

    def __new__(
        cls,
        embeddings: np.ndarray,
        times: np.ndarray,
        indices: np.ndarray,
        blank: np.ndarray,
        pose: PoseSequence | None = None,
        frame_embeddings: np.ndarray | None = None,
    ):
        embeddings = np.asarray(embeddings, dtype=np.float32)
        times = np.asarray(times, dtype=np.float64)
        n = len(embeddings)
        if embeddings.ndim != 2 or any(np.shape(a) != (n,) for a in (times, indices, blank)):
            raise ValueError(
                f"an EmbedResult needs (T, D) embeddings and (T,) times, indices and blank flags, got "
                f"{embeddings.shape}, {times.shape}, {np.shape(indices)}, {np.shape(blank)}"
            )
        self = super().__new__(cls, (embeddings, times))
        self.indices = np.asarray(indices, dtype=np.int64)
        self.blank = np.asarray(blank, dtype=bool)
        self.pose = pose
        fe = embeddings if frame_embeddings is None else np.asarray(frame_embeddings, dtype=np.float32)
        if fe.ndim != 2 or len(fe) != n:
            raise ValueError(f"an EmbedResult needs (T, F) frame embeddings, got {fe.shape} for {n} frames")
        self.frame_embeddings = fe
        return self

    @property
    def embeddings(self) -> np.ndarray:
        return self[0]

    @property
    def times(self) -> np.ndarray:
        return self[1]

    def __reduce__(self) -> tuple[Any, ...]:
        return (EmbedResult, (self[0], self[1], self.indices, self.blank, self.pose, self.frame_embeddings))

    def __repr__(self) -> str:
        d = self[0].shape[1] if self[0].ndim == 2 else "?"
        return f"EmbedResult({len(self[1])} frames x {d}, {int(self.blank.sum())} blank)"


def default_fps(device: torch.device | str | None = None) -> float:
    """A sampling rate that keeps long videos practical on ``device``.

    CPU: 10 frames/s (a 30-minute video is 18,000 frames, about 5 minutes for ``small`` at
    60 frames/s). CUDA: 30 frames/s (every frame of most footage; high-rate phone video is
    thinned). Actions last seconds, so either resolves their phases.
    """
    if device is None:
        device = default_device()
    return _GPU_FPS if torch.device(device).type == "cuda" else _CPU_FPS


# --------------------------------------------------------------------------- engines


class _TorchEngine:
    """uint8 chunks -> (t, hidden) features with the model in PyTorch."""

    name = "torch"

    def __init__(self, model: CARLModel):
        self.model = model
        self.cuda = model.device.type == "cuda"

    def prepare(self, frames: np.ndarray) -> Any:
        # In the decoding thread: page-locked memory lets the copy to the GPU run asynchronously.
        x = torch.from_numpy(frames)
        return x.pin_memory() if self.cuda else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.model.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
        # the whole chunk at once: on a GPU the chunk is large (see Embedder), on CPU it is the
        # model's frames_per_batch anyway
        return self.model.frame_features(normalize(x), batch=len(x)).cpu()


class _OnnxEngine:
    """uint8 chunks -> (t, hidden) features with ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, model: CARLModel, onnx_dir: str | os.PathLike | None):
        self.session = runtime.frame_encoder(model, onnx_dir)

    def prepare(self, frames: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frames)

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.session(x))


# --------------------------------------------------------------------------- prefetching


class _Prefetch:
    """Iterate ``source`` in a background thread, ``depth`` items ahead, each through ``work``.

    Errors in the thread are raised in the consumer; leaving the ``with`` block early stops the
    thread. A producer silent for ``stall`` seconds is reported rather than waited on forever.
    """

    _END = object()

    def __init__(self, source: Iterable[Any], work: Callable[[Any], Any], depth: int, stall: float):
        self.source, self.work, self.stall = source, work, stall
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="carl-decode", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self.source:
                if not self._put(self.work(item)):  # in this thread: the consumer only runs the model
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._END)

    def __enter__(self) -> Iterator[Any]:
        self.thread.start()
        return self._items()

    def _items(self) -> Iterator[Any]:
        while True:
            try:
                item = self.queue.get(timeout=self.stall)
            except queue.Empty:
                raise VideoError(
                    f"decoding stalled: no frames for {self.stall:.0f} s. The file may be damaged; "
                    "re-encode it to MP4 (H.264)."
                ) from None
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.thread.join(timeout=1.0)  # a thread stuck in a decoder call is a daemon: left behind


# --------------------------------------------------------------------------- progress


class _Meter:
    """``on_progress`` with the frame rate and the time left in the message."""

    def __init__(self, total: int, on_progress: Progress | None, name: str):
        self.total, self.on_progress, self.name = total, on_progress, name
        self.start = time.perf_counter()

    def rate(self, done: int) -> float:
        elapsed = time.perf_counter() - self.start
        return done / elapsed if elapsed > 0 else 0.0

    def __call__(self, done: int) -> None:
        if self.on_progress is None:
            return
        rate = self.rate(done)
        left = (self.total - done) / rate if rate > 0 else float("nan")
        msg = f"{self.name}: {done}/{self.total} frames · {rate:.1f} frames/s · {format_duration(left)} left"
        self.on_progress(done, self.total, msg)


# --------------------------------------------------------------------------- the embedder


def _weights_version(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    # In-place updates (optimiser steps, load_state_dict, BatchNorm statistics) bump _version.
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


class Embedder:
    """Embeds videos with one model; holds the engine and the cache, so many videos pay setup once.

    backend: "auto" (ONNX Runtime on CPU when installed, else PyTorch; PyTorch on CUDA), "onnx"
    or "torch". cache_dir: True for the default cache folder, a folder, or False for no cache.
    onnx_dir: where ONNX exports are kept (default: ``runtime.default_onnx_dir()``).
    window: how the transformer covers long sequences (``AttentionWindow``; None: full attention).
    chunk: frames per decoded chunk and per engine call (default: the model's frames_per_batch
    on CPU, at least 256 on CUDA). decoder: "auto", "decord" or "pyav" (see ``video.py``).

    The model's weights are fingerprinted when used: train or reload it and the next call
    re-exports the engine and uses new cache keys.
    """

    def __init__(
        self,
        model: CARLModel,
        *,
        backend: str = "auto",
        cache_dir: str | os.PathLike | bool = True,
        window: AttentionWindow | None = DEFAULT_WINDOW,
        chunk: int | None = None,
        decoder: str = "auto",
        onnx_dir: str | os.PathLike | None = None,
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if chunk is not None and chunk < 1:
            raise ConfigError(f"chunk must be at least 1 frame, got {chunk}")
        self.model, self.backend, self.window, self.decoder = model, backend, window, decoder
        self.cache: EmbeddingCache | None = None
        if cache_dir is True:
            self.cache = EmbeddingCache()
        elif cache_dir is not False and cache_dir is not None:
            self.cache = EmbeddingCache(cache_dir)
        self._onnx_dir = onnx_dir
        cuda = model.device.type == "cuda"
        self.chunk = chunk or (max(256, model.cfg.frames_per_batch) if cuda else model.cfg.frames_per_batch)
        self._version: tuple | None = None
        self._digest = ""
        self._engine: _TorchEngine | _OnnxEngine | None = None
        self._lock = threading.RLock()  # one Embedder may serve several threads (an app's sessions)
        self._cache_dir = cache_dir
        self._poses: Any = None  # a pose.PoseExtractor, made on first use
        self._streams: tuple[Embedder, Embedder] | None = None
        if len(model.streams) > 1:  # a fused model: each stream embeds with its own engine and cache
            fused = cast("FusedModel", model)
            kw: dict[str, Any] = dict(
                backend=backend, cache_dir=cache_dir, window=window, chunk=chunk, decoder=decoder
            )
            self._streams = (
                Embedder(fused.pose, **kw, onnx_dir=onnx_dir),
                Embedder(fused.visual, **kw, onnx_dir=onnx_dir),
            )

    def poses(self) -> Any:
        """The ``pose.PoseExtractor`` behind this embedder (shared cache, networks loaded once)."""
        with self._lock:
            if self._poses is None:
                self._poses = _pose_extractor(self._cache_dir, self.decoder)
            return self._poses

    def _embed_fused(
        self, path: Path, fps: float | None, crop: Any, on_progress: Progress | None
    ) -> EmbedResult:
        """Both streams on the same frames, fused (``fusion.FusedModel``)."""
        assert self._streams is not None
        pose = self._streams[0].embed(path, fps, on_progress=on_progress, crop=crop)
        visual = self._streams[1].embed(path, fps, on_progress=on_progress)
        if not np.array_equal(pose.indices, visual.indices):  # both plan frames with video.sample_indices
            raise VideoError(f"{path.name}: the pose and the picture streams decoded different frames")
        assert pose.pose is not None
        model = cast("FusedModel", self.model)
        from .fusion import body_frames

        present = body_frames(pose.pose)  # elsewhere the picture alone decides
        fused = model.fuse(pose.embeddings, present, visual.embeddings)
        frames = model.fuse(pose.frame_embeddings, present, visual.frame_embeddings, frames=True)
        return EmbedResult(fused, visual.times, visual.indices, visual.blank, pose.pose, frames)

    def _embed_pose(
        self, path: Path, fps: float | None, crop: Any, on_progress: Progress | None
    ) -> EmbedResult:
        """A pose model: the body's landmarks in each frame (cached on disk by the extractor, so a
        second run is a lookup), then the model, which takes milliseconds on them."""
        from .pose_features import pose_descriptor

        seq = self.poses().extract(path, fps=fps, crop=crop, on_progress=on_progress)
        embs = self.model.embed_pose(seq, self.window).cpu().numpy()
        blank = seq.blank if seq.blank is not None else np.zeros(len(seq), dtype=bool)
        return EmbedResult(embs, seq.times, seq.indices, blank, seq, pose_descriptor(seq))

    @property
    def engine_name(self) -> str:
        """ "onnx" or "torch": what runs (or will run) the per-frame encoder."""
        return self._get_engine().name

    def _identity(self) -> str:
        """The model's digest, recomputed (and the engine dropped) when its weights changed."""
        with self._lock:
            version = _weights_version(self.model)
            if version != self._version:
                self._digest = model_digest(self.model)
                self._engine = None
                self._version = version
            return self._digest

    def _get_engine(self) -> _TorchEngine | _OnnxEngine:
        self._identity()
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    def _make_engine(self) -> _TorchEngine | _OnnxEngine:
        on_cpu = self.model.device.type == "cpu"
        if self.backend == "onnx" and not on_cpu:
            raise ConfigError("backend 'onnx' runs on the CPU: move the model to the CPU or use 'torch'")
        want_onnx = self.backend == "onnx" or (self.backend == "auto" and on_cpu and runtime.available())
        if not want_onnx:
            return _TorchEngine(self.model)
        if not runtime.available():
            raise ConfigError("backend 'onnx' needs onnxruntime and onnx: pip install onnxruntime onnx")
        try:
            return _OnnxEngine(self.model, self._onnx_dir)
        except Exception as exc:  # any exporter or runtime failure: PyTorch still gives the answer
            if self.backend == "onnx":
                raise
            log.warning("ONNX Runtime cannot run this model (%s); using PyTorch", exc)
            return _TorchEngine(self.model)

    def key(
        self, path: str | os.PathLike, fps: float | None, on_progress: Progress | None = None
    ) -> EmbeddingKey:
        """The cache key of a video under this model and these settings."""
        memo = self.cache.root / "files" if self.cache is not None else None
        video = file_digest(path, memo, on_progress=on_progress)
        fps = None if fps is None else float(fps)
        size = self.model.cfg.image_size
        return EmbeddingKey(video, self._identity(), fps, size, window_text(self.window), self.decoder)

    @torch.no_grad()
    def embed(
        self,
        path: str | os.PathLike,
        fps: float | None = None,
        *,
        on_progress: Progress | None = None,
        crop: Any = None,
    ) -> EmbedResult:
        """A video's ``EmbedResult``: the pair (embeddings (T, D), times (T,) s), with each frame's
        index in the file and whether it is blank.

        ``crop`` (x0, y0, x1, y1) pixels, or "x0,y0,x1,y1": for a model that reads body pose,
        the person inside this box (``pose.PoseExtractor``); models of pixels see the whole frame.
        """
        check_fps(fps)
        path = Path(path)
        check_video_file(path)
        if self._streams is not None:
            return self._embed_fused(path, fps, crop, on_progress)
        if "pose" in self.model.streams:
            return self._embed_pose(path, fps, crop, on_progress)
        key = None
        if self.cache is not None:  # looked up before the probe: a hit never reads the video
            key = self.key(path, fps, on_progress)
            hit = self.cache.get(key)
            if hit is not None:
                n = len(hit["embs"])
                if on_progress:
                    on_progress(n, n, f"{path.name}: {n} frames from the cache")
                return EmbedResult(
                    hit["embs"],
                    hit["timestamps"],
                    hit["indices"],
                    hit["blank"],
                    frame_embeddings=hit["frames"],
                )
        size = self.model.cfg.image_size
        # On the CPU the model's threads fill the cores: a single-threaded decoder costs the least
        # CPU per frame there. A GPU waits for frames: the decoder then takes every core it can use.
        threads = 0 if self.model.device.type == "cuda" else 1
        stream = open_video(
            path, fps=fps, size=(size, size), chunk=self.chunk, backend=self.decoder, threads=threads
        )
        was_training = self.model.training
        self.model.eval()
        try:
            result = self._run(stream, _Meter(len(stream), on_progress, path.name))
        finally:
            self.model.train(was_training)
        if key is not None and self.cache is not None:
            try:
                self.cache.put(
                    key,
                    result.embeddings,
                    result.times,
                    result.indices,
                    result.blank,
                    result.frame_embeddings,
                )
            except OSError as exc:  # a full or read-only disk must not lose the result
                log.warning("could not write the embedding cache (%s)", exc)
        return result

    def _run(self, stream: FrameStream, meter: _Meter) -> EmbedResult:
        total = len(stream)
        feats = torch.empty(total, self.model.cfg.hidden_size)
        stamps = np.empty(total, dtype=np.float64)
        indices = np.empty(total, dtype=np.int64)
        blank = np.empty(total, dtype=bool)
        # On CUDA, ``prepare`` pins host memory: worth doing in the decoding thread. On the CPU it
        # hands the array over as it is, so decoding starts before the engine exists, and making
        # it on first use (an ONNX session, 0.1-0.3 s of one core) overlaps the first chunks.
        pinning = self._get_engine() if self.model.device.type == "cuda" else None

        def decoded(chunk: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[Any, ...]:
            idx, frames, ts = chunk  # in the decoding thread, while the model works on the last chunk
            return pinning.prepare(frames) if pinning else frames, ts, idx, blank_frames(frames)

        done = 0
        meter(0)
        with _Prefetch(stream.indexed(), decoded, PREFETCH, STALL_SECONDS) as chunks:
            engine = pinning or self._get_engine()
            for x, ts, idx, flat in chunks:
                n = min(len(ts), total - done)  # a stream never yields more than planned
                part = slice(done, done + n)
                ready: Any = x if pinning else engine.prepare(x)  # what this engine's prepare made
                feats[part] = engine(ready)[:n]
                stamps[part], indices[part], blank[part] = ts[:n], idx[:n], flat[:n]
                done += n
                meter(done)
        if done == 0:
            raise VideoError(f"No frame of {stream.info.path} could be decoded. Re-encode it to MP4 (H.264).")
        out = self.model.embed_sequence(feats[:done], self.window, stamps[:done])
        embs = out.cpu().numpy().astype(np.float32)
        if meter.on_progress:
            meter.on_progress(
                done, done, f"{stream.info.path.name}: {done} frames at {meter.rate(done):.1f} frames/s"
            )
        frames = F.normalize(feats[:done].float(), dim=1).numpy()  # each frame on its own: what a picture is
        return EmbedResult(
            embs, stamps[:done].copy(), indices[:done].copy(), blank[:done].copy(), None, frames
        )


def _pose_extractor(cache_dir: str | os.PathLike | bool, decoder: str) -> Any:
    from .pose import PoseExtractor  # LiteRT loads only for models that read pose

    return PoseExtractor(cache_dir=cache_dir, decoder=decoder)


def _as_picture(image: Any) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
        raise VideoError(
            f"expected an RGB picture (height, width, 3) of 8-bit values, got shape {image.shape} "
            f"and type {image.dtype}; give a PNG or JPEG file"
        )
    return np.ascontiguousarray(image[:, :, :3])


@torch.no_grad()
def embed_picture(model: CARLModel, image: Any, *, crop: Any = None) -> np.ndarray:
    """(F,) context-free embedding of one RGB uint8 picture (H, W, 3): comparable with the
    ``EmbedResult.frame_embeddings`` of any video embedded by the same model, so a picture of a
    frame finds that frame (not the first frames of every clip, as a one-frame sequence would).

    A pixel model: its per-frame features of the picture, resized as video frames are. A pose
    model: the pose found in the picture (``pose.PoseExtractor.estimate_image``, the person in
    ``crop`` if given), as ``pose_features.pose_descriptor``; zeros where nobody is found. The
    ``human`` model: both, fused as its frames are.
    """
    from .preprocess import preprocess

    rgb = _as_picture(image)
    if len(model.streams) > 1:
        from .pose import estimate_image
        from .pose_features import pose_descriptor

        fused = cast("FusedModel", model)
        seq = estimate_image(rgb, crop)
        visual = embed_picture(fused.visual, rgb)[None]
        return fused.fuse(pose_descriptor(seq), seq.body_visible, visual, frames=True)[0]
    if model.streams == ("pose",):
        from .pose import estimate_image
        from .pose_features import pose_descriptor

        return pose_descriptor(estimate_image(rgb, crop))[0]
    was_training = model.training
    model.eval()
    try:
        x = preprocess(rgb[None], model.cfg.image_size, device=model.device)
        return F.normalize(model.frame_features(x).float(), dim=1)[0].cpu().numpy()
    finally:
        model.train(was_training)


def embed_video(
    model: CARLModel,
    path: str | os.PathLike,
    fps: float | None = None,
    *,
    chunk: int | None = None,
    on_progress: Progress | None = None,
    cache_dir: str | os.PathLike | bool = True,
    backend: str = "auto",
    decoder: str = "auto",
    window: AttentionWindow | None = DEFAULT_WINDOW,
    crop: Any = None,
) -> EmbedResult:
    """Embeddings (T, D) float32, L2-normalised, and timestamps (T,) in seconds of a video file,
    as an ``EmbedResult``: it unpacks as that pair and carries ``indices`` (each embedded frame's
    number in the file) and ``blank`` (black or uniform frames) by name.

    ``fps=None`` embeds every decoded frame; otherwise frames nearest to 0, 1/fps, 2/fps, ...
    (never repeated; every frame when ``fps`` is at least the video's rate). ``default_fps``
    gives a rate suited to the device. Timestamps are the frames' presentation times from the
    first frame. ``on_progress(done, total, message)`` reports frames, rate and time left.
    Other arguments: see ``Embedder``. For many videos, make one ``Embedder`` and reuse it.
    Raises ``VideoError`` for a file that is no readable video.
    """
    embedder = Embedder(
        model, backend=backend, cache_dir=cache_dir, window=window, chunk=chunk, decoder=decoder
    )
    return embedder.embed(path, fps, on_progress=on_progress, crop=crop)


__all__ = ["BACKENDS", "EmbedResult", "Embedder", "default_fps", "embed_picture", "embed_video"]
