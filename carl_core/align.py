"""Dynamic time warping of two embedding sequences, and the frame mappings it gives.

`dtw(x, y)` aligns two sequences of frame embeddings (n, d) and (m, d) and returns an
`Alignment`: the summed cost of the best warping path and the path itself, which steps by
(1, 0), (0, 1) or (1, 1) from (0, 0) to (n-1, m-1). `mapping_from_path` turns a path into one
matched frame per frame, both ways, with the cosine similarity of each matched pair.

How it is computed (the authors' `utils/dtw.py` fills a float matrix cell by cell in Python,
about 2.7 us a cell, and keeps three n x m matrices):
- Costs come in strips of rows from one BLAS product each (``|x|^2 + |y|^2 - 2 x.y`` for
  "sqeuclidean", ``1 - x.y`` on unit vectors for "cosine"), in float64; no n x m float matrix
  is ever built.
- A compiled (numba) loop (`dtw_kernels.py`) runs the recurrence over two rolling rows and
  keeps, per cell, only the step it came from, in 2 bits: 10,000 x 10,000 frames need 25 MB
  for the traceback.
- Every method is the same windowed dynamic programme: each row i has a column window
  ``[lo[i], hi[i])``. "exact" uses full rows (or the Sakoe-Chiba band when ``band`` is given);
  "multiscale" halves both sequences until they are small, solves the coarsest level exactly,
  then at each finer level searches only a window of ``radius`` frames around the projected
  path (FastDTW's idea, with exact strips instead of cell lists). It is not guaranteed
  optimal; on smooth embeddings, and even on white noise, the tests find it within 1% of the
  exact cost (mostly equal). "auto" runs "exact" when the window has at most
  ``max_exact_cells`` cells (default 10,000 x 10,000), else "multiscale".
- Numba compiles the loops on first use (seconds) and caches them on disk.

Exactness: "exact" returns the optimal cost of the plain dynamic programme. Costs from the
BLAS identity differ from a direct sum of squared differences by float64 rounding only
(about 1e-15 of ``|x|^2``), so the total agrees with the textbook or authors' DTW to about 1e-12
relative. Ties between predecessors break as in the authors' traceback: diagonal, then
(i-1, j), then (i, j-1).

Open begin and open end (subsequence alignment), for performances with idle time before or
after the action. ``open_begin`` / ``open_end`` name the sequence whose leading / trailing
frames may be left unmatched: "b" (or True): the path may start at any (0, j) / end at any
(n-1, j), so all of A is matched inside B (classic subsequence DTW); "a": start at any (i, 0) /
end at any (i, m-1); "both": either video may have the extra frames.

Where only one sequence may be trimmed, the other is matched entirely and trimming is free: the
path cannot degenerate. Where both may be ("both", or "a" at one end and "b" at the other), a
free skip would let the path shrink to one cell (skipping everything costs nothing; a padded
pair gave the path (0, 364)). So by default (``skip_cost=None``) such a request is solved as
subsequence alignment both ways, A inside B and B inside A, and the better fit (lower cost per
path step) is kept; `Alignment.open_begin`/``open_end`` then say which sequence was trimmed.
An explicit ``skip_cost > 0`` instead prices each unmatched frame in one programme (never added
to `Alignment.cost`, which stays the summed cost of the path); an explicit 0 there is refused.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from carl_core.dtw_kernels import dp_strip, plan_strips, project_path, traceback
from carl_core.errors import AlignmentError, ConfigError
from carl_core.io import atomic_open

__all__ = [
    "Alignment",
    "FrameMapping",
    "alignment_document",
    "dtw",
    "mapping_from_path",
    "path_cost",
    "poor_match_cost",
    "trim_path",
    "write_alignment_json",
]

Metric = Literal["sqeuclidean", "cosine"]
Method = Literal["auto", "exact", "multiscale"]
OpenSide = bool | Literal["none", "a", "b", "both"] | None
ProgressFn = Callable[[int, int, str], None]

_METRICS = {"sqeuclidean": 0, "cosine": 1}
_METHODS = ("auto", "exact", "multiscale")
# Cells per BLAS strip: 8 MB of float64, large enough for BLAS to run near peak.
_STRIP_CELLS = 1 << 20
_CHUNK = 1 << 15  # frames per chunk when costs of matched pairs are computed row by row
# Open ends: the most one sequence may be squeezed into a stretch of the other (see
# `_best_subsequence`); performances of one action differ in tempo by less (pairing.py).
MAX_WARP = 4.0


# ----------------------------------------------------------------------------- public types


@dataclass(frozen=True, eq=False)
class Alignment:
    """A warping path between sequence A (n_a frames) and B (n_b frames).

    ``path_a[k]`` and ``path_b[k]`` are the frames matched at step k; consecutive steps differ
    by (1, 0), (0, 1) or (1, 1). The path runs from (0, 0) to (n_a-1, n_b-1) unless an open
    begin or end let it start or stop elsewhere on a border. ``cost`` is the summed cost of the
    path's cells under ``metric``; ``method`` is the one that ran ("exact" or "multiscale").
    """

    cost: float
    path_a: np.ndarray
    path_b: np.ndarray
    n_a: int
    n_b: int
    metric: str
    method: str
    open_begin: str = "none"
    open_end: str = "none"
    band: int | None = None
    skip_cost: float = 0.0

    def __len__(self) -> int:
        return int(self.path_a.shape[0])

    @property
    def mean_cost(self) -> float:
        """Cost per path step: comparable across lengths, unlike ``cost``."""
        return self.cost / max(len(self), 1)

    def mapping(self, x: np.ndarray, y: np.ndarray) -> FrameMapping:
        """Frame mappings of this path (``x``, ``y`` the embeddings that were aligned)."""
        return mapping_from_path(self.path_a, self.path_b, x, y, metric=self.metric)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (lists, ints, floats, strings)."""
        return {
            "cost": float(self.cost),
            "mean_cost": float(self.mean_cost),
            "n_a": int(self.n_a),
            "n_b": int(self.n_b),
            "metric": self.metric,
            "method": self.method,
            "open_begin": self.open_begin,
            "open_end": self.open_end,
            "band": self.band,
            "skip_cost": float(self.skip_cost),
            "path_a": self.path_a.tolist(),
            "path_b": self.path_b.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alignment:
        """Inverse of `to_dict`."""
        return cls(
            cost=float(d["cost"]),
            path_a=np.asarray(d["path_a"], dtype=np.int64),
            path_b=np.asarray(d["path_b"], dtype=np.int64),
            n_a=int(d["n_a"]),
            n_b=int(d["n_b"]),
            metric=str(d["metric"]),
            method=str(d["method"]),
            open_begin=str(d.get("open_begin", "none")),
            open_end=str(d.get("open_end", "none")),
            band=None if d.get("band") is None else int(d["band"]),
            skip_cost=float(d.get("skip_cost", 0.0)),
        )


@dataclass(frozen=True, eq=False)
class FrameMapping:
    """One matched frame per frame, both ways, from a warping path.

    ``a_to_b[i]`` is the frame of B matched to frame i of A: of the path cells in row i, the
    one of lowest cost (so the mapping is monotone non-decreasing). Frames the path leaves out
    (open begin / end) map to the path's first or last frame and have ``covered_* = False``.
    ``similarity_*`` is the cosine similarity of each matched pair, in [-1, 1]. It is no
    confidence: any two videos can match at 0.9 (see `carl_core.confidence`).
    """

    a_to_b: np.ndarray
    b_to_a: np.ndarray
    similarity_a: np.ndarray
    similarity_b: np.ndarray
    covered_a: np.ndarray
    covered_b: np.ndarray

    def to_dict(
        self,
        times_a: Sequence[float] | np.ndarray | None = None,
        times_b: Sequence[float] | np.ndarray | None = None,
    ) -> dict[str, Any]:
        """JSON-ready dict; with frame times (seconds) it adds the matched times too."""
        out: dict[str, Any] = {
            "a_to_b": self.a_to_b.tolist(),
            "b_to_a": self.b_to_a.tolist(),
            "similarity_a": np.round(self.similarity_a, 6).tolist(),
            "similarity_b": np.round(self.similarity_b, 6).tolist(),
            "covered_a": self.covered_a.tolist(),
            "covered_b": self.covered_b.tolist(),
        }
        if times_a is not None and times_b is not None:
            ta = _times(times_a, self.a_to_b.shape[0], "times_a")
            tb = _times(times_b, self.b_to_a.shape[0], "times_b")
            out["times_a"] = ta.tolist()
            out["times_b"] = tb.tolist()
            out["a_to_b_time"] = tb[self.a_to_b].tolist()
            out["b_to_a_time"] = ta[self.b_to_a].tolist()
        return out


def _times(t: Sequence[float] | np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(t, dtype=np.float64).reshape(-1)
    if arr.shape[0] != n:
        raise AlignmentError(
            f"{name} has {arr.shape[0]} entries but the sequence has {n} frames; pass one time per frame."
        )
    return arr


# ----------------------------------------------------------------------------- input checks


def _as_sequence(x: Any, name: str) -> np.ndarray:
    """(n, d) float64, C-contiguous, finite, at least two frames; else a clear AlignmentError."""
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise AlignmentError(
            f"{name} is not an array of frame embeddings ({exc}); pass an (n, d) array."
        ) from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise AlignmentError(
            f"{name} has dtype {arr.dtype}; pass real-valued frame embeddings of shape (n, d)."
        )
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise AlignmentError(f"{name} has shape {arr.shape}; pass frame embeddings of shape (n_frames, dim).")
    if arr.shape[0] == 0:
        raise AlignmentError(f"{name} is empty (0 frames); check that the video decoded and has frames.")
    if arr.shape[0] == 1:
        raise AlignmentError(f"{name} has only one frame; alignment needs at least two frames per sequence.")
    if arr.shape[1] == 0:
        raise AlignmentError(f"{name} has embeddings of dimension 0; pass (n, d) embeddings with d >= 1.")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise AlignmentError(
            f"{name} has NaN or infinite values in {bad.size} frame(s), first at frame {int(bad[0])}; "
            "re-embed the video (check the checkpoint) or drop those frames."
        )
    return arr


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xs = _as_sequence(x, "sequence A")
    ys = _as_sequence(y, "sequence B")
    if xs.shape[1] != ys.shape[1]:
        raise AlignmentError(
            f"sequence A has {xs.shape[1]}-d embeddings but sequence B has {ys.shape[1]}-d; "
            "embed both videos with the same model."
        )
    return xs, ys


def _unit_rows(a: np.ndarray, name: str, strict: bool) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    if strict and not (norms > 0).all():
        k = int(np.flatnonzero(~(norms > 0))[0])
        raise AlignmentError(
            f"{name} has an all-zero embedding at frame {k}; cosine cost is undefined there."
        )
    return a / np.maximum(norms, 1e-300)[:, None]


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)


def _is_whole(v: Any, minimum: int) -> bool:
    return _is_real(v) and math.isfinite(v) and v == int(v) and v >= minimum


def _parse_open(v: OpenSide, name: str) -> tuple[bool, bool, str]:
    """(a may be trimmed, b may be trimmed, canonical name)."""
    if v is None or v is False or v == "none":
        return False, False, "none"
    if v is True or v == "b":
        return False, True, "b"
    if v == "a":
        return True, False, "a"
    if v == "both":
        return True, True, "both"
    raise ConfigError(f"{name}={v!r} is not understood; use False, True (same as 'b'), 'a', 'b' or 'both'.")


# ----------------------------------------------------------------------------- windows


def _full_window(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, np.int64), np.full(n, m, np.int64)


def _band_window(n: int, m: int, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Sakoe-Chiba band: column j of row i is in when |j - i (m-1)/(n-1)| <= band (exact integers)."""
    i = np.arange(n, dtype=np.int64)
    num = i * (m - 1)
    half = band * (n - 1)
    lo = -((half - num) // (n - 1))  # ceil((num - half) / (n-1))
    hi = (num + half) // (n - 1) + 1
    return np.clip(lo, 0, m - 1), np.clip(hi, 1, m)


def _repair(lo: np.ndarray, hi: np.ndarray, m: int, closed_begin: bool, closed_end: bool) -> None:
    """Widen windows (in place) until they are monotone, non-empty and connected.

    A path can go from row i-1 to row i only if ``lo[i] <= hi[i-1]`` (a diagonal step from the
    last cell of row i-1); the corners must be inside when begin or end is closed.
    """
    np.clip(lo, 0, m - 1, out=lo)
    np.clip(hi, 1, m, out=hi)
    if closed_begin:
        lo[0] = 0
    if closed_end:
        hi[-1] = m
    lo[:] = np.minimum.accumulate(lo[::-1])[::-1]
    np.maximum.accumulate(hi, out=hi)
    np.maximum(hi, lo + 1, out=hi)
    np.minimum(lo[1:], hi[:-1], out=lo[1:])


# ----------------------------------------------------------------------------- the solver


@dataclass(frozen=True)
class _Ends:
    begin_a: bool
    begin_b: bool
    end_a: bool
    end_b: bool
    skip_a: float
    skip_b: float


def _solve_window(
    xs: np.ndarray,
    ys: np.ndarray,
    metric: int,
    lo: np.ndarray,
    hi: np.ndarray,
    ends: _Ends,
    on_progress: ProgressFn | None = None,
    message: str = "aligning",
) -> tuple[float, np.ndarray, np.ndarray]:
    """Optimal path inside the window rows ``[lo[i], hi[i])``: (path cost, path_a, path_b).

    ``xs``/``ys`` are float64; unit rows for the cosine metric.
    """
    n, m = xs.shape[0], ys.shape[0]
    # Cell cost = max(xx[i] + yy[j] + scale * x_i.y_j, 0): |x|^2 + |y|^2 - 2 x.y for
    # "sqeuclidean", 1 - x.y for "cosine".
    if metric == 0:
        xx = np.einsum("ij,ij->i", xs, xs)
        yy = np.einsum("ij,ij->i", ys, ys)
        scale = -2.0
    else:
        xx = np.ones(n)
        yy = np.zeros(m)
        scale = -1.0
    row_bytes = (hi - lo + 3) >> 2
    row_off = np.zeros(n + 1, np.int64)
    np.cumsum(row_bytes, out=row_off[1:])
    dirs = np.zeros(int(row_off[-1]), np.uint8)
    acc = np.full((2, m + 1), np.inf)
    lastcol = np.full(n, np.inf)
    bounds = plan_strips(lo, hi, _STRIP_CELLS)
    areas = (bounds[1:] - bounds[:-1]) * (hi[bounds[1:] - 1] - lo[bounds[:-1]])
    buf = np.empty(int(areas.max()))
    report_every = max(n // 100, 1)
    next_report = 0
    for s in range(bounds.shape[0] - 1):
        i0, i1 = int(bounds[s]), int(bounds[s + 1])
        c0, c1 = int(lo[i0]), int(hi[i1 - 1])
        g = buf[: (i1 - i0) * (c1 - c0)].reshape(i1 - i0, c1 - c0)
        np.matmul(xs[i0:i1], ys[c0:c1].T, out=g)
        dp_strip(g, i0, i1, c0, lo, hi, xx, yy, scale, acc, dirs, row_off, ends.begin_a, ends.begin_b,
                  ends.skip_a, ends.skip_b, lastcol)  # fmt: skip
        if on_progress is not None and (i1 >= next_report or i1 == n):
            on_progress(i1, n, message)
            next_report = i1 + report_every

    # Choose the end cell; on ties prefer the longer path (the corner, then late frames).
    last = acc[(n - 1) & 1]
    ie, je, best = n - 1, m - 1, math.inf
    if hi[n - 1] == m:
        best = float(last[m])
    if ends.end_b:
        cols = np.arange(lo[n - 1], hi[n - 1])
        vals = last[cols + 1] + ends.skip_b * (m - 1 - cols)
        k = len(vals) - 1 - int(np.argmin(vals[::-1]))
        if vals[k] < best:
            ie, je, best = n - 1, int(cols[k]), float(vals[k])
    if ends.end_a:
        rows = np.flatnonzero(hi == m)
        vals = lastcol[rows] + ends.skip_a * (n - 1 - rows)
        k = len(vals) - 1 - int(np.argmin(vals[::-1]))
        if vals[k] < best:
            ie, je, best = int(rows[k]), m - 1, float(vals[k])
    if not math.isfinite(best):
        raise RuntimeError("DTW window holds no complete path (internal error)")
    end_value = float(last[je + 1]) if ie == n - 1 else float(lastcol[ie])

    out_a = np.empty(n + m, np.int64)
    out_b = np.empty(n + m, np.int64)
    length = traceback(dirs, row_off, lo, ie, je, out_a, out_b)
    if length <= 0:
        raise RuntimeError("DTW traceback left the matrix (internal error)")
    path_a, path_b = out_a[:length].copy(), out_b[:length].copy()
    start_pen = 0.0
    if path_a[0] == 0 and path_b[0] > 0:
        start_pen = ends.skip_b * path_b[0]
    elif path_b[0] == 0 and path_a[0] > 0:
        start_pen = ends.skip_a * path_a[0]
    return end_value - start_pen, path_a, path_b


def _coarsen(a: np.ndarray, unit: bool) -> np.ndarray:
    """Average consecutive pairs of frames (an odd last frame stays alone)."""
    h = a.shape[0] // 2
    out = np.empty(((a.shape[0] + 1) // 2, a.shape[1]))
    np.add(a[0 : 2 * h : 2], a[1 : 2 * h : 2], out=out[:h])
    out[:h] *= 0.5
    if a.shape[0] % 2:
        out[h] = a[-1]
    return _unit_rows(out, "", strict=False) if unit else out


def _multiscale(
    xs: np.ndarray,
    ys: np.ndarray,
    metric: int,
    ends: _Ends,
    band: int | None,
    radius: int,
    base_cells: int,
    on_progress: ProgressFn | None,
) -> tuple[float, np.ndarray, np.ndarray]:
    # Pyramid: halve each sequence (while it has more than a few frames) until small.
    # Each level: (A, B, frames of x per frame of A, same for B, halving factors from the finer level).
    levels = [(xs, ys, 1, 1, 1, 1)]
    min_len = max(2 * radius, 16)
    while True:
        a, b, sa, sb, _, _ = levels[-1]
        if a.shape[0] * b.shape[0] <= base_cells:
            break
        fa = 2 if a.shape[0] > min_len else 1
        fb = 2 if b.shape[0] > min_len else 1
        if fa == fb == 1:
            break
        a2 = _coarsen(a, metric == 1) if fa == 2 else a
        b2 = _coarsen(b, metric == 1) if fb == 2 else b
        levels.append((a2, b2, sa * fa, sb * fb, fa, fb))
    closed_begin = not (ends.begin_a or ends.begin_b)
    closed_end = not (ends.end_a or ends.end_b)

    def level_ends(sa: int, sb: int) -> _Ends:
        # A coarse frame stands for sa (sb) fine ones, and a coarse cell's cost for about as many.
        return _Ends(ends.begin_a, ends.begin_b, ends.end_a, ends.end_b, ends.skip_a * sa, ends.skip_b * sb)

    def level_band(n: int, m: int, sb: int) -> tuple[np.ndarray, np.ndarray] | None:
        return None if band is None else _band_window(n, m, -(-band // sb))

    total = len(levels)
    a, b, sa, sb, _, _ = levels[-1]
    banded = level_band(a.shape[0], b.shape[0], sb)
    lo, hi = _full_window(a.shape[0], b.shape[0]) if banded is None else banded
    _repair(lo, hi, b.shape[0], closed_begin, closed_end)
    cost, pa, pb = _solve_window(a, b, metric, lo, hi, level_ends(sa, sb))
    if on_progress is not None:
        on_progress(1, total, "multiscale: coarsest level")
    for lvl in range(total - 2, -1, -1):
        a, b, sa, sb, _, _ = levels[lvl]
        fa, fb = levels[lvl + 1][4], levels[lvl + 1][5]
        n, m = a.shape[0], b.shape[0]
        lo = np.empty(n, np.int64)
        hi = np.empty(n, np.int64)
        project_path(pa, pb, pa.shape[0], fa, fb, n, m, radius, lo, hi)
        banded = level_band(n, m, sb)
        if banded is not None:
            np.maximum(lo, banded[0], out=lo)
            np.minimum(hi, banded[1], out=hi)
        _repair(lo, hi, m, closed_begin, closed_end)
        cost, pa, pb = _solve_window(a, b, metric, lo, hi, level_ends(sa, sb))
        if on_progress is not None:
            on_progress(total - lvl, total, f"multiscale: level {total - lvl} of {total}")
    return cost, pa, pb


def _spans(al: Alignment) -> tuple[int, int]:
    """Frames of A and of B that a path runs through, first to last."""
    return int(al.path_a[-1] - al.path_a[0] + 1), int(al.path_b[-1] - al.path_b[0] + 1)


def _best_subsequence(
    x: Any,
    y: Any,
    metric: Metric,
    method: Method,
    sides: tuple[bool, bool, bool, bool],
    on_progress: ProgressFn | None,
    **options: Any,
) -> Alignment:
    """Both sequences may be trimmed: align A inside B and B inside A (each trimming only the
    other, so neither can shrink to nothing) and keep the lower cost per path step.

    A fit that squeezes one sequence into a stretch of the other more than `MAX_WARP` times
    shorter is no fit: where frames look alike (a golfer at address) the whole of A can sit
    on one frame of B at a low cost per step. Where neither direction is plausible, the
    ends stay closed.
    """
    begin_a, begin_b, end_a, end_b = sides
    tries = [
        ("b" if begin_b else False, "b" if end_b else False, "A inside B"),
        ("a" if begin_a else False, "a" if end_a else False, "B inside A"),
    ]
    best: Alignment | None = None
    for k, (ob, oe, words) in enumerate(tries):

        def report(done: int, total: int, message: str, k: int = k, words: str = words) -> None:
            if on_progress is not None:
                on_progress(k * total + done, 2 * total, f"{message} ({words})")

        al = dtw(x, y, metric, method, open_begin=ob, open_end=oe, skip_cost=0.0, on_progress=report,
                 **options)  # fmt: skip
        span_a, span_b = _spans(al)
        plausible = MAX_WARP * span_b >= al.n_a if k == 0 else MAX_WARP * span_a >= al.n_b
        if plausible and (best is None or al.mean_cost < best.mean_cost):
            best = al
    if best is None:
        best = dtw(x, y, metric, method, on_progress=on_progress, **options)
    return best


def dtw(
    x: np.ndarray,
    y: np.ndarray,
    metric: Metric = "sqeuclidean",
    method: Method = "auto",
    *,
    band: int | None = None,
    open_begin: OpenSide = False,
    open_end: OpenSide = False,
    skip_cost: float | None = None,
    radius: int = 32,
    max_exact_cells: int = 100_000_000,
    base_cells: int = 4_000_000,
    on_progress: ProgressFn | None = None,
) -> Alignment:
    """Align frame embeddings ``x`` (n, d) and ``y`` (m, d) by dynamic time warping.

    Args:
        metric: cell cost, "sqeuclidean" (``|x_i - y_j|^2``) or "cosine" (``1 - cos``).
        method: "exact" (optimal), "multiscale" (coarse to fine, for long videos) or "auto"
            (exact when the search window has at most ``max_exact_cells`` cells).
        band: Sakoe-Chiba radius in frames of B around the straight line from (0, 0) to
            (n-1, m-1); widened only where the band alone could not hold a path.
        open_begin, open_end: which sequence may have unmatched leading / trailing frames:
            False, "b" (or True: A lies anywhere inside B), "a" or "both". See module doc.
        skip_cost: added to the minimised objective per frame left unmatched by an open end.
            None (default): free where only one sequence may be trimmed; where both may be,
            subsequence alignment both ways, keeping the better fit (see module doc).
        radius: multiscale search radius in frames around the projected coarser path.
        max_exact_cells: "auto" switches to multiscale above this many cells. The default,
            10,000 x 10,000 frames, keeps exact runs to seconds and 25 MB of traceback (2 bits
            a cell); beyond it multiscale is far faster and, on real embeddings, as good.
        base_cells: multiscale halves the sequences until they have at most this many cells.
        on_progress: ``on_progress(done, total, message)`` callback.

    Raises:
        AlignmentError: empty or one-frame sequences, NaN/inf, mismatched dimensions.
        ConfigError: an unknown metric, method or open side, or a negative band/radius/skip.
    """
    if metric not in _METRICS:
        raise ConfigError(f"metric={metric!r} is unknown; use 'sqeuclidean' or 'cosine'.")
    if method not in _METHODS:
        raise ConfigError(f"method={method!r} is unknown; use 'auto', 'exact' or 'multiscale'.")
    if band is not None and not _is_whole(band, 0):
        raise ConfigError(f"band={band!r} must be a non-negative whole number of frames (or None).")
    if not _is_whole(radius, 1):
        raise ConfigError(f"radius={radius!r} must be a whole number of frames >= 1.")
    if skip_cost is not None and not (_is_real(skip_cost) and math.isfinite(skip_cost) and skip_cost >= 0):
        raise ConfigError(f"skip_cost={skip_cost!r} must be a finite number >= 0 (or None).")
    begin_a, begin_b, ob = _parse_open(open_begin, "open_begin")
    end_a, end_b, oe = _parse_open(open_end, "open_end")
    both_trimmable = (begin_a or end_a) and (begin_b or end_b)
    if both_trimmable and skip_cost is None:
        return _best_subsequence(
            x, y, metric, method, (begin_a, begin_b, end_a, end_b), on_progress,
            band=band, radius=radius, max_exact_cells=max_exact_cells, base_cells=base_cells,
        )  # fmt: skip
    if both_trimmable and skip_cost == 0:
        raise ConfigError(
            f"open_begin={ob!r} with open_end={oe!r} lets both sequences be trimmed: with skip_cost=0 the "
            "path shrinks to one cell. Leave skip_cost=None (subsequence alignment both ways) or give "
            "a positive cost, e.g. poor_match_cost(x, y)."
        )
    skip_cost = 0.0 if skip_cost is None else float(skip_cost)
    band = None if band is None else int(band)
    radius = int(radius)
    xs, ys = _check_pair(x, y)
    mcode = _METRICS[metric]
    if mcode == 1:
        xs = _unit_rows(xs, "sequence A", strict=True)
        ys = _unit_rows(ys, "sequence B", strict=True)
    n, m = xs.shape[0], ys.shape[0]
    ends = _Ends(begin_a, begin_b, end_a, end_b, float(skip_cost), float(skip_cost))
    closed_begin = not (begin_a or begin_b)
    closed_end = not (end_a or end_b)

    if band is None:
        lo, hi = _full_window(n, m)
    else:
        lo, hi = _band_window(n, m, band)
        _repair(lo, hi, m, closed_begin, closed_end)
    if method == "auto":
        cells = int((hi - lo).sum())
        method = "exact" if cells <= max_exact_cells else "multiscale"
    if method == "exact":
        cost, pa, pb = _solve_window(xs, ys, mcode, lo, hi, ends, on_progress)
    else:
        cost, pa, pb = _multiscale(xs, ys, mcode, ends, band, radius, int(base_cells), on_progress)
    return Alignment(
        cost=float(cost),
        path_a=pa,
        path_b=pb,
        n_a=n,
        n_b=m,
        metric=metric,
        method=method,
        open_begin=ob,
        open_end=oe,
        band=band,
        skip_cost=float(skip_cost),
    )


# ----------------------------------------------------------------------------- paths and mappings


def _check_path(path_a: Any, path_b: Any, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    pa = np.asarray(path_a)
    pb = np.asarray(path_b)
    if pa.ndim != 1 or pb.ndim != 1 or pa.shape != pb.shape or pa.shape[0] == 0:
        raise AlignmentError("path_a and path_b must be non-empty 1-d arrays of equal length.")
    if not (np.issubdtype(pa.dtype, np.integer) and np.issubdtype(pb.dtype, np.integer)):
        raise AlignmentError("path_a and path_b must hold integer frame indices.")
    pa = pa.astype(np.int64)
    pb = pb.astype(np.int64)
    if pa.min() < 0 or pb.min() < 0 or pa.max() >= n or pb.max() >= m:
        raise AlignmentError(f"the path has frame indices outside sequences of {n} and {m} frames.")
    da, db = np.diff(pa), np.diff(pb)
    if ((da != 0) & (da != 1)).any() or ((db != 0) & (db != 1)).any() or ((da == 0) & (db == 0)).any():
        raise AlignmentError("the path must step by (1, 0), (0, 1) or (1, 1); it was not made by dtw().")
    return pa, pb


def _pair_costs(xs: np.ndarray, ys: np.ndarray, ia: np.ndarray, ib: np.ndarray, metric: str) -> np.ndarray:
    """Cost of each pair (xs[ia[k]], ys[ib[k]]), computed in chunks to bound memory."""
    out = np.empty(ia.shape[0])
    for s in range(0, ia.shape[0], _CHUNK):
        a = xs[ia[s : s + _CHUNK]]
        b = ys[ib[s : s + _CHUNK]]
        if metric == "cosine":
            out[s : s + _CHUNK] = 1.0 - np.einsum("ij,ij->i", a, b)
        else:
            d = a - b
            out[s : s + _CHUNK] = np.einsum("ij,ij->i", d, d)
    return np.maximum(out, 0.0) if metric == "cosine" else out


def path_cost(path_a: Any, path_b: Any, x: Any, y: Any, metric: Metric = "sqeuclidean") -> float:
    """Summed cost of a path's cells, computed directly (a check on `Alignment.cost`)."""
    if metric not in _METRICS:
        raise ConfigError(f"metric={metric!r} is unknown; use 'sqeuclidean' or 'cosine'.")
    xs, ys = _check_pair(x, y)
    pa, pb = _check_path(path_a, path_b, xs.shape[0], ys.shape[0])
    if metric == "cosine":
        xs = _unit_rows(xs, "sequence A", strict=True)
        ys = _unit_rows(ys, "sequence B", strict=True)
    return float(_pair_costs(xs, ys, pa, pb, metric).sum())


def _one_way(rows: np.ndarray, cols: np.ndarray, cost: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of n rows, the column of its cheapest path cell; rows off the path clamp to
    the path's first or last cell. ``rows`` is non-decreasing."""
    order = np.lexsort((np.arange(rows.shape[0]), cost, rows))  # equal costs: the earlier cell
    rs = rows[order]
    first = np.ones(rs.shape[0], bool)
    first[1:] = rs[1:] != rs[:-1]
    out = np.empty(n, np.int64)
    out[rs[first]] = cols[order][first]
    r0, r1 = int(rows[0]), int(rows[-1])
    out[:r0] = cols[0]
    out[r1 + 1 :] = cols[-1]
    covered = np.zeros(n, bool)
    covered[r0 : r1 + 1] = True
    return out, covered


def poor_match_cost(x: Any, y: Any, metric: Metric = "sqeuclidean", sample: int = 256) -> float:
    """A ``skip_cost`` for open ends: the median cost of a random pair of frames of A and B.

    Leaving a frame unmatched then costs what a typical non-match does: cheaper and the path
    shrinks towards nothing, dearer and the open ends never open. Seeded, so repeatable.
    """
    if metric not in _METRICS:
        raise ConfigError(f"metric={metric!r} is unknown; use 'sqeuclidean' or 'cosine'.")
    xs, ys = _check_pair(x, y)
    rng = np.random.default_rng(0)
    a = xs[rng.choice(len(xs), size=min(len(xs), sample), replace=False)]
    b = ys[rng.choice(len(ys), size=min(len(ys), sample), replace=False)]
    if metric == "cosine":
        a, b = _unit_rows(a, "sequence A", strict=False), _unit_rows(b, "sequence B", strict=False)
        cost = 1.0 - a @ b.T
    else:
        cost = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return float(np.median(np.maximum(cost, 0.0)))


def mapping_from_path(
    path_a: Any, path_b: Any, x: Any, y: Any, metric: Metric = "sqeuclidean"
) -> FrameMapping:
    """Frame mappings A -> B and B -> A from a warping path (see `FrameMapping`).

    Where the path matches one frame to several, the match of lowest ``metric`` cost is kept.
    """
    if metric not in _METRICS:
        raise ConfigError(f"metric={metric!r} is unknown; use 'sqeuclidean' or 'cosine'.")
    xs, ys = _check_pair(x, y)
    n, m = xs.shape[0], ys.shape[0]
    pa, pb = _check_path(path_a, path_b, n, m)
    xu = _unit_rows(xs, "sequence A", strict=False)
    yu = _unit_rows(ys, "sequence B", strict=False)
    cost = _pair_costs(xu, yu, pa, pb, metric) if metric == "cosine" else _pair_costs(xs, ys, pa, pb, metric)
    a_to_b, cov_a = _one_way(pa, pb, cost, n)
    swap = np.lexsort((pa, pb))  # the path sorted by B's frame, A non-decreasing within
    b_to_a, cov_b = _one_way(pb[swap], pa[swap], cost[swap], m)
    sim_a = np.clip(1.0 - _pair_costs(xu, yu, np.arange(n), a_to_b, "cosine"), -1.0, 1.0)
    sim_b = np.clip(1.0 - _pair_costs(xu, yu, b_to_a, np.arange(m), "cosine"), -1.0, 1.0)
    return FrameMapping(a_to_b, b_to_a, sim_a, sim_b, cov_a, cov_b)


def trim_path(alignment: Alignment, x: Any, y: Any, start: int, stop: int) -> Alignment:
    """The alignment with its path cut to steps ``start .. stop`` (inclusive): the frames before
    and after are left unmatched. ``cost`` is recomputed; ``open_begin``/``open_end`` add the
    sequences that now start or end unmatched to those that could before."""
    if not 0 <= start <= stop < len(alignment):
        raise AlignmentError(f"cannot cut a path of {len(alignment)} steps to steps {start}..{stop}.")
    pa, pb = alignment.path_a[start : stop + 1].copy(), alignment.path_b[start : stop + 1].copy()

    def sides(a_cut: bool, b_cut: bool, before: str) -> str:
        a_cut, b_cut = a_cut or before in ("a", "both"), b_cut or before in ("b", "both")
        return {(False, False): "none", (True, False): "a", (False, True): "b"}.get((a_cut, b_cut), "both")

    return Alignment(
        cost=path_cost(pa, pb, x, y, alignment.metric),  # type: ignore[arg-type]
        path_a=pa,
        path_b=pb,
        n_a=alignment.n_a,
        n_b=alignment.n_b,
        metric=alignment.metric,
        method=alignment.method,
        open_begin=sides(pa[0] > 0, pb[0] > 0, alignment.open_begin),
        open_end=sides(pa[-1] < alignment.n_a - 1, pb[-1] < alignment.n_b - 1, alignment.open_end),
        band=alignment.band,
        skip_cost=alignment.skip_cost,
    )


def alignment_document(
    alignment: Alignment,
    mapping: FrameMapping | None = None,
    times_a: Sequence[float] | np.ndarray | None = None,
    times_b: Sequence[float] | np.ndarray | None = None,
    confidence: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """The alignment JSON document (schema in the README): ``alignment``, ``mapping`` with
    times, and any ``extra`` top-level fields (``videos``, ``model``, ``warnings``) the caller
    knows. ``confidence`` (a `carl_core.confidence.MatchConfidence`) adds its per-frame fields
    to ``mapping`` and its pair-level ones as ``confidence``."""
    doc: dict[str, Any] = {"alignment": alignment.to_dict()}
    if mapping is not None:
        doc["mapping"] = mapping.to_dict(times_a, times_b)
        if confidence is not None:
            per_frame, pair = confidence.to_dict()
            doc["mapping"].update(per_frame)
            doc["confidence"] = pair
    doc.update(extra)
    return doc


def write_alignment_json(
    path: str | os.PathLike[str],
    alignment: Alignment,
    mapping: FrameMapping | None = None,
    times_a: Sequence[float] | np.ndarray | None = None,
    times_b: Sequence[float] | np.ndarray | None = None,
    confidence: Any = None,
    **extra: Any,
) -> None:
    """Write `alignment_document` as JSON, atomically (temp file, rename)."""
    with atomic_open(path, "w") as f:
        json.dump(alignment_document(alignment, mapping, times_a, times_b, confidence, **extra), f)
