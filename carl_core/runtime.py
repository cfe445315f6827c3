"""ONNX Runtime for the CPU: the per-frame encoder and the frozen backbone, exported once per model.

Why: PyTorch's eager depthwise convolutions are slow on CPU. On this machine class (2 cores),
EfficientNet-Lite0 features at 224 px run at about 10 frames/s in PyTorch eager, 16 with
channels-last, and about 71 in ONNX Runtime. So on CPU the per-frame work goes through ONNX
Runtime; the transformer over the sequence stays in PyTorch (it is cheap, and its length varies).

Two graphs, for one image size and any batch size:

- ``frame_encoder(model)``: uint8 RGB frames (N, S, S, 3), as the decoder gives them, to per-frame
  features (N, hidden): ImageNet normalisation, the whole backbone, spatial max-pool and the
  fully-connected layers in one graph. Inference only (BatchNorm statistics, no dropout).
- ``frozen_encoder(model)``: ImageNet-normalised float frames (N, 3, S, S) to the frozen stages'
  feature maps, for the cached-feature training path (the frozen part never trains).

Export uses torch.onnx's TorchScript-based exporter (``dynamo=False``): it runs offline, needs
only the ``onnx`` package, and turns the TensorFlow-"same" padding of EfficientNet-Lite0 (computed
per input in ``TFSameConv2d``) into static padding for the fixed image size. Each export is
checked against PyTorch on a batch of frames before it is used: features must agree within
``ATOL`` + ``RTOL`` x |value| (measured: about 2e-6 on Lite0 features of magnitude ~1).
A graph that fails the check, or an exporter that fails, leaves PyTorch in charge.

Files go to ``<cache>/onnx/<kind>-<backbone>-<size>px-<digest>.onnx`` (``default_onnx_dir``,
or a folder given as ``onnx_dir``), the digest covering the
weights of the exported part, the image size and the torch and opset versions: a changed model
exports again (about 5 s for Lite0), an unchanged one never does. The newest ``KEEP`` files of each
kind are kept.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .cache import default_cache_dir, tensors_digest
from .io import atomic_open
from .preprocess import normalize

if TYPE_CHECKING:
    from .model import CARLModel

log = logging.getLogger(__name__)

OPSET = 17
ATOL, RTOL = 1e-4, 1e-4  # per-frame features, ONNX Runtime against PyTorch (float32 both)
KEEP = 8
# Frames per ONNX Runtime call. Measured for Lite0 at 224 px on 2 cores: 4 to 16 frames run as
# fast as 64 and the activations stay small (peak resident memory 470 MB at 16, 1.5 GB at 64).
BATCH = 16
# Frames per call when several workers share the cores: one frame each ran fastest (65 frames/s
# against 62 at 2 and 61 at 4 on 2 cores).
SLICE = 1


def default_onnx_dir() -> Path:
    """Where exported graphs go: ``onnx/`` in the cache folder (``$CARL_CACHE_DIR`` overrides)."""
    return default_cache_dir() / "onnx"


def available() -> bool:
    """Whether ONNX Runtime and the exporter's ``onnx`` package are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class OrtModel:
    """An ONNX Runtime session on the CPU with one input and one output.

    Data-parallel across cores: one single-threaded session, run by ``threads`` worker threads
    on small slices at once (ONNX Runtime releases the GIL and its ``run`` is thread-safe).
    On 2 cores this gives Lite0 at 224 px 65 frames/s against 57 for one session with two
    intra-op threads: depthwise layers are too small to split across cores without the
    threads waiting on each other.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between calls: the decoder thread needs the cores in those gaps.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        # As many workers as torch has threads, so OMP_NUM_THREADS / torch.set_num_threads apply.
        self.threads = max(1, threads or torch.get_num_threads())
        # Threads start on first use; made here so that concurrent callers share one pool.
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="carl-onnx")

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output], {self.input: x})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run on ``x``: slices of ``SLICE`` frames along the first axis, ``threads`` at a time."""
        if len(x) <= SLICE:
            return self._run(x)
        if self.threads == 1:
            return np.concatenate([self._run(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])
        slices = (x[i : i + SLICE] for i in range(0, len(x), SLICE))
        return np.concatenate(list(self._pool.map(self._run, slices)))


# --------------------------------------------------------------------------- graphs


class PixelsToFeatures(nn.Module):
    """uint8 (N, S, S, 3) RGB -> (N, hidden): normalisation, backbone, pooling, FC layers."""

    def __init__(self, model: CARLModel):
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = normalize(pixels.permute(0, 3, 1, 2).float(), max_value=255.0)  # one affine map of the bytes
        return self.head.frame_features(self.backbone(x))


def _frame_encoder_parts(model: CARLModel) -> list[tuple[str, torch.Tensor]]:
    # The transformer and the projection head are not in this graph: their weights are not hashed.
    state = model.state_dict()
    skip = ("head.layers.", "head.to_embedding.", "head.pos_drop.", "projection.")
    return [(k, v) for k, v in state.items() if not k.startswith(skip)]


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """Write ``module`` as an ONNX graph for inputs shaped like ``example``, any batch size."""
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript and does not yet handle every model here; its warnings are noise.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to any file object
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            do_constant_folding=True,
        )
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())


def _prune(folder: Path, kind: str, keep: int) -> None:
    files = sorted(folder.glob(f"{kind}-*.onnx"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for p in files[keep:]:
        with contextlib.suppress(OSError):
            p.unlink()


@dataclass(frozen=True)
class _Graph:
    """What to export: a module, an example input, and the tensors that identify it."""

    kind: str  # "frames" or "frozen"
    module: nn.Module
    example: torch.Tensor
    tensors: list[tuple[str, torch.Tensor]]
    name: str  # the backbone's name

    def path(self, onnx_dir: str | os.PathLike | None) -> Path:
        folder = Path(onnx_dir).expanduser() if onnx_dir is not None else default_onnx_dir()
        extra: dict[str, Any] = {
            "kind": self.kind,
            "input": list(self.example.shape[1:]),
            "dtype": str(self.example.dtype),
        }
        extra |= {"torch": torch.__version__, "opset": OPSET}
        size = self.example.shape[2]
        return folder / f"{self.kind}-{self.name}-{size}px-{tensors_digest(self.tensors, extra)[:24]}.onnx"


def _session(graph: _Graph, onnx_dir: str | os.PathLike | None, threads: int | None) -> OrtModel:
    path = graph.path(onnx_dir)
    fresh = not path.is_file()
    if fresh:
        log.info("exporting the %s of %s to ONNX: %s", graph.kind, graph.name, path)
        export_onnx(graph.module, graph.example, path)
    session = OrtModel(path, threads)
    if fresh:  # checked once, when made: a file on disk passed this check
        with torch.no_grad():
            expected = graph.module(graph.example).float().numpy()
        got = session(graph.example.numpy())
        if got.shape != expected.shape or not np.allclose(got, expected, atol=ATOL, rtol=RTOL):
            err = np.abs(got - expected).max() if got.shape == expected.shape else f"shape {got.shape}"
            with contextlib.suppress(OSError):
                path.unlink()
            raise RuntimeError(f"the ONNX {graph.kind} differs from PyTorch (max error {err}); not used")
        _prune(path.parent, graph.kind, KEEP)
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept when pruning
    return session


def _frames_graph(model: CARLModel) -> _Graph:
    size = model.cfg.image_size
    example = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8))
    module = PixelsToFeatures(model).eval()
    return _Graph("frames", module, example, _frame_encoder_parts(model), model.backbone.name)


def _frozen_graph(model: CARLModel) -> _Graph:
    size = model.cfg.image_size
    frozen = model.backbone.frozen.eval()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    tensors = [(f"frozen.{k}", v) for k, v in frozen.state_dict().items()]
    return _Graph("frozen", frozen, example, tensors, model.backbone.name)


def export_path(model: CARLModel, kind: str = "frames", onnx_dir: str | os.PathLike | None = None) -> Path:
    """Where the ``kind`` ("frames" or "frozen") graph of ``model`` is (or will be) on disk."""
    return (_frames_graph if kind == "frames" else _frozen_graph)(model).path(onnx_dir)


def frame_encoder(
    model: CARLModel, onnx_dir: str | os.PathLike | None = None, threads: int | None = None
) -> OrtModel:
    """ONNX Runtime session: uint8 (N, S, S, 3) frames -> (N, hidden) float32 features.

    ``S`` is ``model.cfg.image_size``; the model must be on the CPU. Raises RuntimeError (or an
    exporter error) when the graph cannot be made; callers fall back to PyTorch.
    """
    was_training = model.training
    model.eval()
    try:
        return _session(_frames_graph(model), onnx_dir, threads)
    finally:
        model.train(was_training)


def frozen_encoder(
    model: CARLModel, onnx_dir: str | os.PathLike | None = None, threads: int | None = None
) -> OrtModel:
    """ONNX Runtime session: normalised float (N, 3, S, S) frames -> frozen-stage feature maps."""
    return _session(_frozen_graph(model), onnx_dir, threads)


def fast_frozen_features(
    model: CARLModel, onnx_dir: str | os.PathLike | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.frozen_features`` through ONNX Runtime where that is faster (CPU), else PyTorch.

    The returned function takes normalised (N, 3, S, S) frames on the model's device and gives
    the frozen-stage maps on that device; inputs of another size go through PyTorch.
    """
    if model.device.type != "cpu" or not available():
        return model.frozen_features
    try:
        session = frozen_encoder(model, onnx_dir)
    except Exception as exc:  # any exporter or runtime failure: PyTorch still works
        log.warning("ONNX Runtime is not used for the frozen backbone (%s); PyTorch runs it", exc)
        return model.frozen_features
    size = model.cfg.image_size

    def run(frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-2:] != (size, size):
            return model.frozen_features(frames)
        return torch.from_numpy(session(frames.detach().float().contiguous().numpy()))

    return run


__all__ = [
    "ATOL",
    "RTOL",
    "OrtModel",
    "available",
    "default_onnx_dir",
    "export_onnx",
    "export_path",
    "fast_frozen_features",
    "frame_encoder",
    "frozen_encoder",
]
