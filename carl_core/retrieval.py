"""Nearest-frame retrieval: an exact top-k frame index over the embeddings of many videos.

The index holds one row per frame: the video's id, the frame number within that video and its
time in seconds. Similarity is cosine similarity (rows and queries are L2-normalised on the way
in, so it is a dot product). Search is exact: queries are scored against the stored rows with
BLAS in chunks, so the score matrix held at any moment is bounded by ``max_chunk_bytes`` however
many frames are indexed, and the best ``k`` of each chunk are merged with ``argpartition``.

``storage="float16"`` or ``"int16"`` scans a 16-bit copy of the rows (half the memory traffic
and, for an index loaded with ``mmap=True``, half the resident memory), then re-scores the
candidates in float32. ``int16`` is fixed point: a unit vector's components times 32767. It is
as precise as float16 for unit vectors (at most 1.5e-5 per component) and numpy widens it to
float32 some 20 times faster than float16, which it converts without SIMD; on CPUs that makes
the float16 scan slower than the float32 one, the int16 scan not. Rounding moves every score
by at most the largest row rounding error ``delta`` (Cauchy-Schwarz), so every row of the exact
top-k lies within ``2 * delta`` (plus float32 summation slack) of the k-th approximate score.
The scan keeps enough candidates to cover that band, widens it where near-ties crowd it (still
frames), and re-ranks them against the float32 rows: the ranking is the float32 ranking, not an
approximation of it, at any k. The float32 rows are still needed for that last step; memory-map
them (``FrameIndex.load(dir, mmap=True)``) to leave them on disk.

Saved indexes are a folder: ``manifest.json`` (videos, dimension, storage) plus ``.npy`` arrays;
no pickle. The manifest is written last and names the array files, so a save that dies half-way
leaves the previous index readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from carl_core.errors import ConfigError, DataError
from carl_core.io import atomic_open

__all__ = ["FrameIndex", "Hit", "VideoIndex"]

_FORMAT = "carl-frame-index"
_VERSION = 2  # 2: each row's frame number in its video file
_ARRAY_NAMES = ("embeddings", "times", "numbers", "scan")
Storage = Literal["float32", "float16", "int16"]
_SCAN_DTYPE = {"float16": np.float16, "int16": np.int16}
_INT16_SCALE = 32767.0
Window = tuple[str, int, int]


@dataclass(frozen=True)
class Hit:
    """One retrieved frame."""

    video_id: str
    frame: int  # the frame's number in its video file (as decoded; see ``FrameIndex.add``)
    time: float  # seconds
    similarity: float  # cosine similarity to the query


@dataclass
class _Video:
    video_id: str
    start: int  # first row in the index; a video's frames are contiguous rows
    count: int
    path: str | None


class _Rows:
    """A row-appendable array: capacity grows geometrically so that adding videos one by one
    costs amortised O(frames added), not O(index size) per add."""

    def __init__(self, data: np.ndarray) -> None:
        self._buf = data
        self._n = len(data)

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self._n]

    def append(self, rows: np.ndarray) -> None:
        need = self._n + len(rows)
        # A memory-mapped (read-only) buffer is copied into memory on the first change.
        if need > len(self._buf) or not self._buf.flags.writeable:
            cap = max(need, int(len(self._buf) * 1.5), 1024)
            new = np.empty((cap, *self._buf.shape[1:]), dtype=self._buf.dtype)
            new[: self._n] = self._buf[: self._n]
            self._buf = new
        self._buf[self._n : need] = rows
        self._n = need

    def delete(self, lo: int, hi: int) -> None:
        if self._buf.flags.writeable:
            self._buf[lo : self._n - (hi - lo)] = self._buf[hi : self._n]
        else:
            self._buf = np.concatenate([self._buf[:lo], self._buf[hi : self._n]])
        self._n -= hi - lo


def _normalise(x: np.ndarray, what: str) -> np.ndarray:
    """float32 copy of ``x`` with unit rows; refuses NaN, inf and all-zero rows."""
    x = np.asarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{what} contain NaN or infinite values; recompute the embeddings.")
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise DataError(f"{what} contain an all-zero vector, which has no direction to compare.")
    return x / norms


def _to_scan(x: np.ndarray, storage: str) -> tuple[np.ndarray, float]:
    """The 16-bit scan copy of unit rows ``x`` and the largest L2 distance between a row and
    what the scan sees of it (which bounds how far any score moves)."""
    if storage == "float16":
        xs = x.astype(np.float16)
    else:
        xs = np.rint(np.clip(x, -1.0, 1.0) * _INT16_SCALE).astype(np.int16)
    err = 0.0
    for s in range(0, len(x), 1 << 16):  # float64 in blocks: exact enough, memory bounded
        seen = xs[s : s + (1 << 16)].astype(np.float64)
        d = x[s : s + (1 << 16)] - (seen if storage == "float16" else seen / _INT16_SCALE)
        err = max(err, float(np.sqrt(np.einsum("ij,ij->i", d, d).max())))
    return xs, err


class FrameIndex:
    """Exact top-k cosine search over the frames of many videos.

    >>> index = FrameIndex()
    >>> index.add("a.mp4", embs_a, times_a)  # (T, D) embeddings, (T,) seconds
    >>> hits = index.query(embs_b[10], k=5, exclude_video="b.mp4")[0]

    ``storage``: "float32" (default), or "int16" / "float16" for a 16-bit scan copy with exact
    float32 re-ranking (see the module doc). ``max_chunk_bytes`` bounds the memory of one
    scoring step (scores and partition indices); it does not change results. ``meta`` is a
    JSON-ready dict saved with the index (the CLI keeps the model and fps that made it there).
    """

    def __init__(
        self, dim: int | None = None, *, storage: Storage = "float32", max_chunk_bytes: int = 64 << 20
    ) -> None:
        if storage not in ("float32", "float16", "int16"):
            raise ConfigError(f"storage must be 'float32', 'int16' or 'float16', not {storage!r}.")
        if dim is not None and dim < 1:
            raise ConfigError(f"dim must be positive, not {dim}.")
        if max_chunk_bytes < 1 << 16:
            raise ConfigError("max_chunk_bytes must be at least 64 KiB.")
        self.storage: Storage = storage
        self.max_chunk_bytes = int(max_chunk_bytes)
        self._dim = dim
        self._videos: dict[str, _Video] = {}  # insertion order = row order
        d = dim or 0
        self._x32 = _Rows(np.empty((0, d), np.float32))
        self._xs = _Rows(np.empty((0, d), _SCAN_DTYPE[storage])) if storage in _SCAN_DTYPE else None
        self._times = _Rows(np.empty((0,), np.float64))
        self._numbers = _Rows(np.empty((0,), np.int64))
        self._scan_err = 0.0  # running maximum: stays a valid bound after removals
        self.meta: dict = {}

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._times.view)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._videos

    def __repr__(self) -> str:
        return (
            f"FrameIndex({len(self._videos)} videos, {len(self)} frames, dim={self._dim}, "
            f"storage={self.storage!r})"
        )

    @property
    def dim(self) -> int | None:
        return self._dim

    @property
    def videos(self) -> list[str]:
        return list(self._videos)

    def video_path(self, video_id: str) -> str | None:
        return self._video(video_id).path

    def get(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The stored (normalised, float32) embeddings and timestamps of one video."""
        v = self._video(video_id)
        rows = slice(v.start, v.start + v.count)
        return np.array(self._x32.view[rows]), np.array(self._times.view[rows])

    def _video(self, video_id: str) -> _Video:
        try:
            return self._videos[video_id]
        except KeyError:
            raise DataError(f"video {video_id!r} is not in the index; add it first.") from None

    def add(
        self,
        video_id: str,
        embs: np.ndarray,
        timestamps: np.ndarray | Sequence[float],
        *,
        path: str | None = None,
        replace: bool = False,
        frame_numbers: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Index a video's frame embeddings ``(T, D)`` with their times in seconds ``(T,)`` and
        their frame numbers in the file (``EmbedResult.indices``; default 0, 1, 2, ...: every
        frame embedded), which hits report."""
        self._make_room(video_id, replace)
        embs = np.asarray(embs)
        if embs.ndim != 2 or embs.shape[0] == 0 or embs.shape[1] == 0:
            raise DataError(
                f"embeddings of {video_id!r} must be a non-empty (frames, dim) array, got shape {embs.shape}."
            )
        if self._dim is not None and embs.shape[1] != self._dim:
            raise DataError(
                f"embeddings of {video_id!r} have dimension {embs.shape[1]} but the index holds "
                f"{self._dim}-d embeddings; embed all videos with the same model."
            )
        times = np.asarray(timestamps, dtype=np.float64)
        if times.shape != (embs.shape[0],):
            raise DataError(
                f"{video_id!r} has {embs.shape[0]} embeddings but timestamps of shape {times.shape}; "
                "pass one timestamp per frame."
            )
        if not np.isfinite(times).all():
            raise DataError(f"timestamps of {video_id!r} contain NaN or infinite values.")
        numbers = np.arange(len(times)) if frame_numbers is None else np.asarray(frame_numbers, np.int64)
        if numbers.shape != times.shape:
            raise DataError(f"{video_id!r} has {len(times)} embeddings but {numbers.shape} frame numbers.")
        self._append(video_id, _normalise(embs, f"embeddings of {video_id!r}"), times, path, numbers)

    def merge(self, other: FrameIndex, videos: Sequence[str] | None = None, *, replace: bool = False) -> None:
        """Add ``other``'s videos (all, or those named, in that order) with their rows as stored.

        ``add`` would normalise the rows again, which can move their last bits; copying them keeps
        an index merged from shards equal, row for row, to one that added the same videos itself.
        """
        if other.dim is not None and self._dim is not None and other.dim != self._dim:
            raise DataError(
                f"cannot merge an index of {other.dim}-d embeddings into one of {self._dim}-d embeddings; "
                "embed all videos with the same model."
            )
        for video_id in other.videos if videos is None else videos:
            x, times = other.get(video_id)
            self._make_room(video_id, replace)
            self._append(video_id, x, times, other.video_path(video_id), other.frame_numbers(video_id))

    def _make_room(self, video_id: str, replace: bool) -> None:
        if video_id in self._videos:
            if not replace:
                raise DataError(
                    f"video {video_id!r} is already in the index; remove it first or pass replace=True."
                )
            self.remove(video_id)

    def frame_numbers(self, video_id: str) -> np.ndarray:
        """Each stored row's frame number in the video file."""
        v = self._video(video_id)
        return np.array(self._numbers.view[v.start : v.start + v.count])

    def _append(
        self, video_id: str, x: np.ndarray, times: np.ndarray, path: str | None, numbers: np.ndarray
    ) -> None:
        """Store unit rows ``x`` (float32) of a new video after the others."""
        if self._dim is None:
            self._dim = x.shape[1]
            self._x32 = _Rows(np.empty((0, self._dim), np.float32))
            if self._xs is not None:
                self._xs = _Rows(np.empty((0, self._dim), _SCAN_DTYPE[self.storage]))
        start = len(self)
        self._x32.append(x)
        if self._xs is not None:
            xs, err = _to_scan(x, self.storage)
            self._xs.append(xs)
            self._scan_err = max(self._scan_err, err)
        self._times.append(times)
        self._numbers.append(numbers)
        self._videos[video_id] = _Video(video_id, start, len(x), path)

    def remove(self, video_id: str) -> None:
        v = self._video(video_id)
        lo, hi = v.start, v.start + v.count
        for rows in (self._x32, self._xs, self._times, self._numbers):
            if rows is not None:
                rows.delete(lo, hi)
        del self._videos[video_id]
        for w in self._videos.values():
            if w.start > lo:
                w.start -= v.count

    def locate(self, row: int) -> tuple[str, int, float]:
        """(video_id, frame, time) of an index row."""
        if not 0 <= row < len(self):
            raise DataError(f"row {row} is outside the index of {len(self)} frames.")
        starts = np.fromiter((v.start for v in self._videos.values()), np.int64, len(self._videos))
        v = list(self._videos.values())[int(np.searchsorted(starts, row, side="right")) - 1]
        return v.video_id, int(self._numbers.view[row]), float(self._times.view[row])

    # ------------------------------------------------------------------ search
    def query(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        exclude_video: str | None = None,
        exclude_window: Window | Sequence[Window | None] | None = None,
    ) -> list[list[Hit]]:
        """Top-k frames for each query, best first; one list per query (a 1-D query gives one list).

        ``exclude_video`` drops all frames of that video. ``exclude_window=(video_id, frame,
        radius)`` drops that video's frames within ``radius`` of ``frame`` (the query's own frame
        and its neighbours); pass a list of such tuples (or None) to give each query its own.
        A list may hold fewer than ``k`` hits when fewer frames remain.
        """
        rows, sims = self.search(queries, k, exclude_video=exclude_video, exclude_window=exclude_window)
        videos = list(self._videos.values())
        starts = np.fromiter((v.start for v in videos), np.int64, len(videos))
        owner = np.searchsorted(starts, np.maximum(rows, 0), side="right") - 1
        times, numbers = self._times.view, self._numbers.view
        out: list[list[Hit]] = []
        for q in range(rows.shape[0]):
            hits = []
            for r, o, s in zip(rows[q], owner[q], sims[q]):
                if r < 0:
                    break
                v = videos[o]
                hits.append(Hit(v.video_id, int(numbers[r]), float(times[r]), float(s)))
            out.append(hits)
        return out

    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        exclude_video: str | None = None,
        exclude_window: Window | Sequence[Window | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Array form of :meth:`query`: index rows ``(Q, k)`` (int64, -1 where no frame is left)
        and similarities ``(Q, k)`` (float32, -inf there), best first, ties by row."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k must be a positive integer, not {k!r}.")
        if len(self) == 0:
            raise DataError("the frame index is empty; add videos before searching it.")
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[0] == 0:
            raise DataError(f"queries must be a (dim,) or (n, dim) array, got shape {np.shape(queries)}.")
        if q.shape[1] != self._dim:
            raise DataError(
                f"queries have dimension {q.shape[1]} but the index holds {self._dim}-d embeddings; "
                "embed the query with the model that made the index."
            )
        q = _normalise(q, "queries")
        glob, per_query = self._exclusions(q.shape[0], exclude_video, exclude_window)
        k = int(min(k, len(self)))
        n_q = q.shape[0]
        rows = np.full((n_q, k), -1, np.int64)
        sims = np.full((n_q, k), -np.inf, np.float32)
        qb = min(n_q, 256)
        for s in range(0, n_q, qb):
            sel = slice(s, min(n_q, s + qb))
            pq = per_query[sel]
            if self._xs is None:
                r, v = self._scan(q[sel], k, self._x32.view, glob, pq)
            else:
                r, v = self._search_16bit(q[sel], k, glob, pq)
            rows[sel], sims[sel] = r, v
        return rows, sims

    def _exclusions(
        self, n_q: int, exclude_video: str | None, exclude_window: Window | Sequence[Window | None] | None
    ) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Row ranges [lo, hi) to skip: shared by all queries, and one (possibly empty) per query."""
        glob = []
        if exclude_video is not None:
            v = self._video(exclude_video)
            glob.append((v.start, v.start + v.count))
        per_query = np.zeros((n_q, 2), np.int64)  # lo == hi: nothing to skip
        if exclude_window is None:
            return glob, per_query
        if (
            isinstance(exclude_window, tuple)
            and len(exclude_window) == 3
            and isinstance(exclude_window[0], str)
        ):
            windows: Sequence[Window | None] = [exclude_window] * n_q
        else:
            windows = list(exclude_window)  # type: ignore[arg-type]
            if len(windows) != n_q:
                raise ConfigError(
                    f"exclude_window holds {len(windows)} windows for {n_q} queries; give one per query "
                    "or a single (video_id, frame, radius) tuple for all."
                )
        for i, w in enumerate(windows):
            if w is None:
                continue
            try:
                video_id, frame, radius = w
            except (TypeError, ValueError):
                raise ConfigError(
                    f"exclude_window entries are (video_id, frame, radius), not {w!r}."
                ) from None
            if radius < 0:
                raise ConfigError(f"exclude_window radius must be >= 0, not {radius}.")
            v = self._video(video_id)
            lo = min(max(int(frame) - int(radius), 0), v.count)
            hi = min(max(int(frame) + int(radius) + 1, 0), v.count)
            per_query[i] = (v.start + lo, v.start + max(lo, hi))
        return glob, per_query

    def _scan(
        self,
        q: np.ndarray,
        m: int,
        mat: np.ndarray,
        glob: list[tuple[int, int]],
        per_query: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``m`` rows of ``mat`` per query, by float32 scores computed chunk by chunk."""
        n_q, n = q.shape[0], mat.shape[0]
        m = min(m, n)
        # Per chunk row and query: a float32 score and argpartition's int64 index.
        chunk = max(1024, self.max_chunk_bytes // (12 * n_q))
        flat = np.empty(n_q * min(chunk, n), np.float32)  # reused: fresh pages cost page faults
        convert = mat.dtype != np.float32
        # 16-bit rows are widened in small blocks that stay in cache while BLAS reads them.
        sub = 2048 if convert else chunk
        cast = np.empty((sub, mat.shape[1]), np.float32) if convert else None
        best_r = np.full((n_q, 0), -1, np.int64)
        best_s = np.full((n_q, 0), -np.inf, np.float32)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            scores = flat[: n_q * (e - s)].reshape(n_q, e - s)
            for a in range(s, e, sub):
                b = min(e, a + sub)
                if cast is None:
                    np.matmul(q, mat[a:b].T, out=scores if sub >= e - s else scores[:, a - s : b - s])
                else:
                    cast[: b - a] = mat[a:b]
                    scores[:, a - s : b - s] = q @ cast[: b - a].T
            for lo, hi in glob:
                lo, hi = max(lo, s), min(hi, e)
                if lo < hi:
                    scores[:, lo - s : hi - s] = -np.inf
            hit = np.nonzero((per_query[:, 0] < e) & (per_query[:, 1] > s))[0]
            for i in hit:
                scores[i, max(per_query[i, 0], s) - s : min(per_query[i, 1], e) - s] = -np.inf
            if e - s > m:
                top = np.argpartition(scores, e - s - m, axis=1)[:, e - s - m :]
                top_s = np.take_along_axis(scores, top, axis=1)
            else:
                top = np.broadcast_to(np.arange(e - s), scores.shape)
                top_s = scores
            cand_r = np.concatenate([best_r, top + s], axis=1)
            cand_s = np.concatenate([best_s, top_s], axis=1)
            if cand_r.shape[1] > m:
                keep = np.argpartition(cand_s, cand_s.shape[1] - m, axis=1)[:, -m:]
                cand_r = np.take_along_axis(cand_r, keep, axis=1)
                cand_s = np.take_along_axis(cand_s, keep, axis=1)
            best_r, best_s = cand_r, cand_s
        order = np.lexsort((best_r, -best_s), axis=1)
        best_r = np.take_along_axis(best_r, order, axis=1)
        best_s = np.take_along_axis(best_s, order, axis=1)
        best_r[~np.isfinite(best_s)] = -1
        return best_r, best_s

    def _search_16bit(
        self, q: np.ndarray, k: int, glob: list[tuple[int, int]], per_query: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scan the 16-bit rows for candidates, then rank them by float32 scores (module doc)."""
        assert self._xs is not None
        xs, x32 = self._xs.view, self._x32.view
        n, d = xs.shape
        # int16 rows hold x * 32767: fold the scale into the query rather than into every row.
        q_scan = q if self.storage == "float16" else q / np.float32(_INT16_SCALE)
        # A computed scan score differs from the computed float32 score of the same row by at most
        # eps: the rounding of the row (delta, times |q| ~ 1) plus the float32 rounding of each
        # product and of the query scaling (gamma = (d + 2) u / (1 - (d + 2) u) for unit vectors).
        # A row of the float32 top-k therefore scores at least (k-th scan score) - 2 eps.
        u = float(np.finfo(np.float32).eps) / 2
        gamma = (d + 2) * u / (1 - (d + 2) * u)
        eps = self._scan_err * (1 + 1e-5) + gamma * (2 + self._scan_err)
        band = 2 * eps + 1e-7
        n_q = q.shape[0]
        rows = np.full((n_q, k), -1, np.int64)
        sims = np.full((n_q, k), -np.inf, np.float32)
        pending = np.arange(n_q)
        m = max(2 * k, k + 32)
        while len(pending):
            cand_r, cand_s = self._scan(q_scan[pending], m, xs, glob, per_query[pending])
            kth = cand_s[:, k - 1 : k]
            last = cand_s[:, -1:]
            # Complete when the band below the k-th score ends inside what was kept, or all is kept.
            done = (last[:, 0] < kth[:, 0] - band) | (cand_r[:, -1] < 0) | (m >= n)
            for j in np.nonzero(done)[0]:
                # Sorted rows: a memory-mapped x32 is then read front to back.
                keep = np.sort(cand_r[j][(cand_r[j] >= 0) & (cand_s[j] >= kth[j, 0] - band)])
                exact = x32[keep] @ q[pending[j]]
                order = np.lexsort((keep, -exact))[:k]
                rows[pending[j], : len(order)] = keep[order]
                sims[pending[j], : len(order)] = exact[order]
            pending = pending[~done]
            m *= 8
        return rows, sims

    # ------------------------------------------------------------------ disk
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the index to ``directory`` (created if needed); returns its path.

        Arrays get fresh file names and the manifest that names them is replaced last, so a
        reader sees either the old index or the new one, never a mix."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        arrays = {"embeddings": self._x32.view, "times": self._times.view, "numbers": self._numbers.view}
        if self._xs is not None:
            arrays["scan"] = self._xs.view
        files = {}
        for name, arr in arrays.items():
            fname = f"{name}-{tag}.npy"
            with atomic_open(out / fname, durable=True) as f:
                np.save(f, np.ascontiguousarray(arr))
            files[name] = fname
        manifest = {
            "format": _FORMAT,
            "version": _VERSION,
            "dim": self._dim,
            "storage": self.storage,
            "frames": len(self),
            "scan_error": self._scan_err,
            "files": files,
            "meta": self.meta,
            "videos": [
                {"id": v.video_id, "start": v.start, "count": v.count, "path": v.path}
                for v in self._videos.values()
            ],
        }
        text = json.dumps(manifest, indent=1).encode()
        with atomic_open(out / "manifest.json", durable=True) as f:
            f.write(text)
        for old in out.glob("*.npy"):  # arrays of earlier saves, no longer named by the manifest
            if old.name not in files.values() and old.name.rsplit("-", 1)[0] in _ARRAY_NAMES:
                # Still memory-mapped on Windows: harmless to leave, the manifest has moved on.
                with contextlib.suppress(OSError):
                    old.unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = False) -> FrameIndex:
        """Read an index written by :meth:`save`. ``mmap=True`` leaves the arrays on disk and
        pages them in on demand (adding to it copies them into memory)."""
        src = Path(directory)
        try:
            manifest = json.loads((src / "manifest.json").read_text())
        except FileNotFoundError:
            raise DataError(f"{src} holds no frame index (manifest.json is missing).") from None
        except (OSError, ValueError) as e:
            raise DataError(
                f"the frame index manifest in {src} is unreadable ({e}); rebuild the index."
            ) from e
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise DataError(f"{src / 'manifest.json'} is not a CARL Studio frame index.")
        if manifest.get("version") not in (1, _VERSION):
            raise DataError(
                f"the frame index in {src} has format version {manifest.get('version')}; this CARL Studio "
                f"reads version {_VERSION}. Rebuild the index."
            )
        try:
            index = cls(manifest["dim"], storage=manifest["storage"])
            index.meta = dict(manifest.get("meta") or {})
            mode = "r" if mmap else None

            def read(name: str) -> np.ndarray:
                return np.load(src / manifest["files"][name], mmap_mode=mode, allow_pickle=False)

            x32, times = read("embeddings"), read("times")
            n, dim = manifest["frames"], manifest["dim"] or 0
            ok = x32.shape == (n, dim) and x32.dtype == np.float32 and times.shape == (n,)
            index._x32, index._times = _Rows(x32), _Rows(times)
            if manifest["version"] >= 2:
                numbers = read("numbers")
                ok = ok and numbers.shape == (n,)
            else:  # version 1 kept no frame numbers: every frame was embedded
                counts = [v["count"] for v in manifest["videos"]]
                numbers = np.concatenate([np.arange(c) for c in counts]) if counts else np.empty(0, np.int64)
            index._numbers = _Rows(np.asarray(numbers, dtype=np.int64))
            if index.storage in _SCAN_DTYPE:
                xs = read("scan")
                ok = ok and xs.shape == (n, dim) and xs.dtype == _SCAN_DTYPE[index.storage]
                index._xs = _Rows(xs)
                index._scan_err = float(manifest["scan_error"])
            start = 0
            for v in manifest["videos"]:
                ok = ok and v["start"] == start and v["count"] > 0
                index._videos[v["id"]] = _Video(v["id"], v["start"], v["count"], v["path"])
                start += v["count"]
            ok = ok and start == n
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise DataError(f"the frame index in {src} is incomplete or corrupt ({e}); rebuild it.") from e
        if not ok:
            raise DataError(
                f"the frame index in {src} is inconsistent (array shapes vs manifest); rebuild it."
            )
        return index


class VideoIndex:
    """The frames of many videos, searchable two ways: a ``FrameIndex`` of each frame in context
    (the model's embeddings: what a frame of a video is compared with) and one of each frame on
    its own (``EmbedResult.frame_embeddings``: what a picture is compared with, since a picture
    has no context). Rows, videos, times and frame numbers are the same in both.

    Saved as a folder: the contextual index in it, the context-free one in ``frames/`` inside it.
    An index saved before context-free embeddings existed loads with ``frames`` None.
    """

    FRAMES = "frames"

    def __init__(self, *, storage: Storage = "float32") -> None:
        self.context = FrameIndex(storage=storage)
        self.frames: FrameIndex | None = FrameIndex(storage=storage)

    @property
    def meta(self) -> dict:
        return self.context.meta

    @property
    def videos(self) -> list[str]:
        return self.context.videos

    @property
    def storage(self) -> Storage:
        return self.context.storage

    def __len__(self) -> int:
        return len(self.context)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self.context

    def get(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings in context, times) of one video."""
        return self.context.get(video_id)

    def video_path(self, video_id: str) -> str | None:
        return self.context.video_path(video_id)

    def add(self, video_id: str, result: Any, *, path: str | None = None, replace: bool = False) -> None:
        """Index a video's ``EmbedResult`` (embeddings, times, frame numbers, frame embeddings)."""
        kw = dict(path=path, replace=replace, frame_numbers=result.indices)
        self.context.add(video_id, result.embeddings, result.times, **kw)
        if self.frames is not None:
            self.frames.add(video_id, result.frame_embeddings, result.times, **kw)

    def merge(self, other: VideoIndex, videos: Sequence[str] | None = None, *, replace: bool = False) -> None:
        self.context.merge(other.context, videos, replace=replace)
        if self.frames is not None and other.frames is not None:
            self.frames.merge(other.frames, videos, replace=replace)
        else:
            self.frames = None

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write both indexes; the context-free one first, so the folder's manifest, written last,
        names a complete pair."""
        out = Path(directory)
        if self.frames is not None:
            self.frames.save(out / self.FRAMES)
        return self.context.save(out)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, mmap: bool = False) -> VideoIndex:
        src = Path(directory)
        index = cls.__new__(cls)
        index.context = FrameIndex.load(src, mmap=mmap)
        index.frames = FrameIndex.load(src / cls.FRAMES, mmap=mmap) if (src / cls.FRAMES).is_dir() else None
        if index.frames is not None and index.frames.videos != index.context.videos:
            raise DataError(f"the two halves of the index in {src} hold other videos; rebuild it.")
        return index
