"""On-disk cache of frame embeddings, so a second run on the same video is instant.

An entry is keyed by what determines the embeddings:

- the video's content: a BLAKE2b digest of every byte of the file. Hashing reads the file
  once (about 1 GB/s); the digest is then remembered next to a stat fingerprint (size,
  modification time in ns, inode) and a sample of 16 blocks of 4 KiB spread over the file, like
  git's index. While all of these match, the file is taken as unchanged and not read again; an
  edit changes the modification time, and a same-size rewrite that kept the time still changes
  the sampled blocks in all but contrived cases. A renamed or copied file hashes to the same
  entry;
- the model's identity: a digest of its state dict (every parameter and buffer, with names,
  shapes and dtypes) and of the configuration fields that shape its outputs;
- the sampling rate, the input size, the attention window, the decoder and the format version.

Each entry is one ``.npz`` file (embeddings, timestamps, frame indices, blank flags, the key as
JSON and a BLAKE2b checksum of all of them; see ``ArrayStore``), written atomically. A file
that does not load or whose checksum does not match is reported, deleted and recomputed. The
cache folder is ``$CARL_CACHE_DIR``, else ``$XDG_CACHE_HOME/carl_studio``, else
``~/.cache/carl_studio``; its embeddings are pruned to ``max_bytes``, least recently used first.
Nothing is ever written next to the user's video.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import VideoError
from .io import atomic_open, atomic_write_text
from .progress import Progress

log = logging.getLogger(__name__)

CACHE_ENV = "CARL_CACHE_DIR"
FORMAT_VERSION = 3  # 2: entries hold frame indices and blank flags too; 3: context-free embeddings
_BLOCK = 1 << 20  # read size for hashing
_SAMPLES, _SAMPLE_BYTES = 16, 4096


def default_cache_dir() -> Path:
    """``$CARL_CACHE_DIR``, else ``$XDG_CACHE_HOME/carl_studio``, else ``~/.cache/carl_studio``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "carl_studio"


# --------------------------------------------------------------------------- digests


def _sample(path: Path, size: int) -> str:
    """Digest of 16 blocks spread evenly over the file (first and last included)."""
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as f:
        for k in range(_SAMPLES):
            f.seek(max(0, (size - _SAMPLE_BYTES) * k // (_SAMPLES - 1)))
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


def _full_digest(path: Path, size: int, on_progress: Progress | None) -> str:
    h = hashlib.blake2b(digest_size=20)
    done = 0
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
            done += len(block)
            if on_progress and done % (256 * _BLOCK) < _BLOCK:  # every 256 MB, in MB
                on_progress(done >> 20, size >> 20, f"hashing {path.name} for the cache (MB)")
    return h.hexdigest()


def file_digest(
    path: str | os.PathLike, memo_dir: str | os.PathLike | None = None, *, on_progress: Progress | None = None
) -> str:
    """BLAKE2b digest of a file's content, remembered in ``memo_dir`` while the file is unchanged."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise VideoError(f"Cannot read {path}: {exc.strerror or exc}. Check the path.") from exc
    stat = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    memo = None
    if memo_dir is not None:
        name = hashlib.blake2b(str(path.resolve()).encode(), digest_size=16).hexdigest()
        memo = Path(memo_dir) / f"{name}.json"
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(memo.read_text())
            if all(known.get(k) == v for k, v in stat.items()) and known.get("sample") == _sample(
                path, st.st_size
            ):
                return str(known["digest"])
    digest = _full_digest(path, st.st_size, on_progress)
    if memo is not None:
        record = {"path": str(path.resolve()), **stat, "sample": _sample(path, st.st_size), "digest": digest}
        with contextlib.suppress(OSError):
            atomic_write_text(memo, json.dumps(record))
    return digest


def tensors_digest(tensors: Iterable[tuple[str, torch.Tensor]], extra: Any = None) -> str:
    """Digest of named tensors (names, dtypes, shapes and values) and of JSON-able ``extra``."""
    h = hashlib.blake2b(digest_size=20)
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # bytes of the raw storage: bf16 and other dtypes numpy lacks hash the same way
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_digest(model: torch.nn.Module) -> str:
    """Identity of a CARLModel: its state dict and the configuration that shapes its outputs."""
    cfg = getattr(model, "cfg", None)
    extra: dict[str, Any] = {"class": type(model).__name__}
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        # How many frames go through at once and where the weights came from change nothing.
        extra["cfg"] = {
            k: v
            for k, v in dataclasses.asdict(cfg).items()
            if k not in ("frames_per_batch", "backbone_weights")
        }
    return tensors_digest(model.state_dict().items(), extra)


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class EmbeddingKey:
    """Everything that determines a video's embeddings."""

    video: str  # file_digest of the video
    model: str  # model_digest of the model
    fps: float | None  # None: every frame
    image_size: int
    window: str  # the attention window, as text
    decoder: str = "auto"  # decord and PyAV resample slightly differently
    version: int = FORMAT_VERSION

    def digest(self) -> str:
        return hashlib.blake2b(_key_text(self).encode(), digest_size=20).hexdigest()


def _checksum(arrays: Mapping[str, np.ndarray], meta: bytes) -> np.ndarray:
    h = hashlib.blake2b(digest_size=32)
    parts = [meta]
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        parts += [f"{name}|{a.dtype.str}|{a.shape}".encode(), a.tobytes()]
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return np.frombuffer(h.digest(), dtype=np.uint8)


class ArrayStore:
    """Named arrays on disk, one checksummed ``.npz`` per key, written atomically, pruned LRU.

    ``key``: a dataclass; its fields, as JSON, name the entry and are stored in it, so a file
    that landed under the wrong name is caught too. A file that does not load, whose checksum
    or key does not match, or that lacks an array is reported, deleted and treated as absent.
    Safe to share between processes: a reader sees either a whole entry or none.
    """

    def __init__(self, folder: str | os.PathLike, max_bytes: int, what: str = "cache entry"):
        self.folder, self.max_bytes, self.what = Path(folder), max_bytes, what

    def path_of(self, key: Any) -> Path:
        d = hashlib.blake2b(_key_text(key).encode(), digest_size=20).hexdigest()
        return self.folder / d[:2] / f"{d}.npz"

    def get(self, key: Any, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        path = self.path_of(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {name: z[name] for name in names}
                meta, checksum = z["meta"], z["checksum"]
            ok = np.array_equal(checksum, _checksum(arrays, meta.tobytes()))
            ok = ok and meta.tobytes().decode() == _key_text(key)
        except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
            ok = False
        if not ok:
            log.warning("%s %s is corrupt: deleting it; it is computed again", self.what, path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first when pruning
        return arrays

    def put(self, key: Any, arrays: Mapping[str, np.ndarray]) -> Path:
        path = self.path_of(key)
        meta = np.frombuffer(_key_text(key).encode(), dtype=np.uint8)
        payload: dict[str, Any] = {**arrays, "meta": meta, "checksum": _checksum(arrays, meta.tobytes())}
        with atomic_open(path, "wb") as f:
            np.savez(f, **payload)
        self.prune()
        return path

    def prune(self) -> int:
        """Delete least recently used entries until the folder holds at most ``max_bytes``."""
        files = []
        for p in self.folder.glob("*/*.npz"):
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in files)
        freed = 0
        for _, size, p in sorted(files):
            if total - freed <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                freed += size
        return freed

    def clear(self) -> None:
        for p in self.folder.glob("*/*.npz"):
            with contextlib.suppress(OSError):
                p.unlink()


def _key_text(key: Any) -> str:
    return json.dumps(dataclasses.asdict(key), sort_keys=True)


_EMBEDDING_ARRAYS = ("embs", "timestamps", "indices", "blank", "frames")


class EmbeddingCache:
    """A video's embeddings (contextual and context-free), timestamps, frame indices and blank
    flags on disk, by ``EmbeddingKey``.

    Layout: ``root/embeddings/ab/abcdef....npz`` and ``root/files/*.json`` (remembered file
    digests). Safe to share between processes: every write is atomic and a reader sees either
    a whole entry or none.
    """

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int = 4 << 30):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._store = ArrayStore(self.root / "embeddings", max_bytes, "cache entry")

    @property
    def max_bytes(self) -> int:
        return self._store.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._store.max_bytes = value

    @property
    def entries_dir(self) -> Path:
        return self._store.folder

    def file_digest(self, path: str | os.PathLike, on_progress: Progress | None = None) -> str:
        return file_digest(path, self.root / "files", on_progress=on_progress)

    def path_of(self, key: EmbeddingKey) -> Path:
        return self._store.path_of(key)

    def get(self, key: EmbeddingKey) -> dict[str, np.ndarray] | None:
        """The cached ``embs``, ``timestamps``, ``indices``, ``blank`` and ``frames`` (the context-free
        embeddings); None if absent or corrupt."""
        found = self._store.get(key, _EMBEDDING_ARRAYS)
        if found is None:
            return None
        n = len(found["embs"])
        frames = found["frames"]
        if (
            found["embs"].ndim != 2
            or any(found[k].shape != (n,) for k in _EMBEDDING_ARRAYS[1:4])
            or frames.ndim != 2
            or len(frames) != n
        ):
            log.warning("cache entry %s is corrupt: deleting it; it is computed again", self.path_of(key))
            with contextlib.suppress(OSError):
                self.path_of(key).unlink()
            return None
        return found

    def put(
        self,
        key: EmbeddingKey,
        embs: np.ndarray,
        timestamps: np.ndarray,
        indices: np.ndarray,
        blank: np.ndarray,
        frames: np.ndarray,
    ) -> Path:
        arrays: dict[str, np.ndarray] = {
            "frames": np.ascontiguousarray(frames, dtype=np.float32),
            "embs": np.ascontiguousarray(embs, dtype=np.float32),
            "timestamps": np.ascontiguousarray(timestamps, dtype=np.float64),
            "indices": np.ascontiguousarray(indices, dtype=np.int64),
            "blank": np.ascontiguousarray(blank, dtype=bool),
        }
        return self._store.put(key, arrays)

    def prune(self) -> int:
        """Delete least recently used entries until the cache holds at most ``max_bytes``."""
        return self._store.prune()

    def clear(self) -> None:
        self._store.clear()


def window_text(window: Any) -> str:
    """A stable text form of an AttentionWindow (or None) for cache keys."""
    if window is None:
        return "full"
    if dataclasses.is_dataclass(window) and not isinstance(window, type):
        return json.dumps(dataclasses.asdict(window), sort_keys=True)
    return str(window)


__all__ = [
    "CACHE_ENV",
    "ArrayStore",
    "EmbeddingCache",
    "EmbeddingKey",
    "default_cache_dir",
    "file_digest",
    "model_digest",
    "tensors_digest",
    "window_text",
]
