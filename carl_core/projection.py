"""2-D maps of frame embeddings: UMAP (umap-learn, McInnes et al. 2018) or PCA.

UMAP runs on a PCA reduction of the embeddings (``pca_dims``), with the exact nearest-neighbour
graph computed here with BLAS and handed to umap-learn as ``precomputed_knn``. That skips
pynndescent, whose numba code takes minutes to compile on a first call on a small CPU, and costs
little at the sizes UMAP is fitted on. Results are seeded, so one input gives one map.

Above ``max_fit`` frames UMAP is fitted on a seeded random sample and every other frame is
placed at the distance-weighted mean of the map positions of its nearest fitted frames (in the
same PCA space), the starting point UMAP's own ``transform`` would refine further; the result's
``note`` says so. PCA alone (``method="pca"``) is the instant fallback, also used when
umap-learn is missing or there are too few frames for a neighbour graph.

Maps are cached by content: the key hashes the embeddings and every parameter, and a map is
one ``.npz`` file in ``cache_dir`` written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from carl_core.errors import ConfigError, DataError
from carl_core.io import atomic_open
from carl_core.progress import Progress

__all__ = ["ProjectionResult", "project", "pca"]

_CACHE_VERSION = 1
MIN_UMAP_FRAMES = 16  # below this a neighbour graph says little; PCA is shown instead
_PLACE_NEIGHBOURS = 10
_UMAP_STEPS = 4  # PCA, neighbours, UMAP fit, placing the rest


@dataclass(frozen=True, eq=False)
class ProjectionResult:
    coords: np.ndarray  # (N, 2) float32, rows in input order (videos concatenated)
    method: str  # what actually ran: "umap" or "pca"
    fitted_on: int  # frames the map was fitted on; N unless a sample was used
    note: str  # sampling or fallback, in words; "" when there is nothing to say
    splits: tuple[int, ...]  # frames per input video, to cut coords back apart
    from_cache: bool = False

    def per_video(self) -> list[np.ndarray]:
        return np.split(self.coords, np.cumsum(self.splits)[:-1])


def project(
    embs: np.ndarray | Sequence[np.ndarray],
    method: str = "umap",
    *,
    seed: int = 0,
    max_fit: int | None = 20_000,
    pca_dims: int = 50,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    on_progress: Progress | None = None,
) -> ProjectionResult:
    """Map the frames of one video ``(N, D)`` or several (a list of arrays) to 2-D.

    ``max_fit=None`` fits UMAP on every frame however many. ``n_epochs=None`` keeps UMAP's
    default (500 epochs up to 10k frames, 200 above).
    """
    x, splits = _stack(embs)
    if method not in ("umap", "pca"):
        raise ConfigError(f"projection method must be 'umap' or 'pca', not {method!r}.")
    if max_fit is not None and max_fit < MIN_UMAP_FRAMES:
        raise ConfigError(
            f"max_fit must be at least {MIN_UMAP_FRAMES} (or None for no limit), not {max_fit}."
        )
    if n_neighbors < 2 or pca_dims < 2 or not 0 <= min_dist <= 1 or (n_epochs is not None and n_epochs < 1):
        raise ConfigError(
            "UMAP needs n_neighbors >= 2, pca_dims >= 2, 0 <= min_dist <= 1 and n_epochs >= 1 (or None)."
        )
    progress = on_progress or (lambda done, total, message: None)
    params = {
        "method": method,
        "seed": seed,
        "max_fit": max_fit,
        "pca_dims": pca_dims,
        "n_neighbors": n_neighbors,
        "min_dist": min_dist,
        "n_epochs": n_epochs,
        "splits": list(splits),
    }
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"proj-{_cache_key(x, params)}.npz"
        hit = _read_cache(cache_file, len(x), splits)
        if hit is not None:
            progress(1, 1, "map loaded from cache")
            return hit

    if method == "pca":
        result = _pca_result(x, splits, "")
    else:
        result = _umap(x, splits, seed, max_fit, pca_dims, n_neighbors, min_dist, n_epochs, progress)
    steps = _UMAP_STEPS if method == "umap" else 1
    if cache_file is not None:
        try:
            _write_cache(cache_file, result)
        except OSError as e:  # the map is still good; only the next call will recompute it
            warnings.warn(f"could not cache the map in {cache_dir}: {e}", stacklevel=2)
    progress(steps, steps, f"{result.method.upper()} map of {len(x):,} frames ready")
    return result


def pca(x: np.ndarray, n_components: int, fit_rows: np.ndarray | None = None) -> np.ndarray:
    """Principal components of ``x`` (float32 ``(N, n_components)``), fitted on ``fit_rows``.

    Uses the D x D covariance, so it costs one pass over the data. Each axis is oriented so that
    its largest loading is positive: the same input always gives the same picture."""
    fit = x if fit_rows is None else x[fit_rows]
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = fit - mean
    # float32 BLAS for the D x D product is plenty for a picture; eigh itself runs in float64
    cov = (centred.T @ centred).astype(np.float64)
    _, vecs = np.linalg.eigh(cov)
    comps = vecs[:, ::-1][:, :n_components].T  # largest variance first
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1, signs)[:, None]
    out = np.zeros((len(x), n_components), np.float32)  # D < n_components leaves zero columns
    out[:, : len(comps)] = (x - mean) @ comps.T.astype(np.float32)
    return out


def _stack(embs: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, tuple[int, ...]]:
    arrays = [embs] if isinstance(embs, np.ndarray) else list(embs)
    if not arrays:
        raise DataError("there are no embeddings to map; embed at least one video first.")
    arrays = [np.asarray(a) for a in arrays]
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[1] == 0:
            raise DataError(f"embeddings {i} must be a (frames, dim) array, got shape {a.shape}.")
    dims = {a.shape[1] for a in arrays}
    if len(dims) > 1:
        raise DataError(
            f"the videos' embeddings have different dimensions {sorted(dims)}; "
            "embed them all with the same model."
        )
    x = np.concatenate(arrays).astype(np.float32, copy=False)
    if len(x) == 0:
        raise DataError("the embeddings hold no frames; nothing to map.")
    if not np.isfinite(x).all():
        raise DataError("the embeddings contain NaN or infinite values; recompute them.")
    return np.ascontiguousarray(x), tuple(len(a) for a in arrays)


def _pca_result(x: np.ndarray, splits: tuple[int, ...], note: str) -> ProjectionResult:
    return ProjectionResult(pca(x, 2), "pca", len(x), note, splits)


def _umap(
    x: np.ndarray,
    splits: tuple[int, ...],
    seed: int,
    max_fit: int | None,
    pca_dims: int,
    n_neighbors: int,
    min_dist: float,
    n_epochs: int | None,
    progress: Progress,
) -> ProjectionResult:
    n = len(x)
    if n < MIN_UMAP_FRAMES:
        return _pca_result(x, splits, f"only {n} frames: too few for UMAP, showing PCA instead.")
    try:
        import umap  # imported here: it is slow to import and the PCA path does not need it
    except ImportError:
        return _pca_result(x, splits, "umap-learn is not installed (pip install umap-learn); showing PCA.")
    steps = _UMAP_STEPS
    sampled = max_fit is not None and n > max_fit
    if sampled:
        fit_rows = np.sort(np.random.default_rng(seed).choice(n, size=max_fit, replace=False))
    else:
        fit_rows = np.arange(n)
    progress(0, steps, "PCA")
    z = pca(x, pca_dims, fit_rows) if x.shape[1] > pca_dims else x
    zf = np.ascontiguousarray(z[fit_rows])
    k = min(n_neighbors, len(fit_rows) - 1)
    progress(1, steps, f"nearest neighbours of {len(fit_rows):,} frames")
    knn_idx, knn_dist = _knn(zf, zf, k, self_first=True)
    progress(2, steps, f"fitting UMAP on {len(fit_rows):,} frames")
    reducer = umap.UMAP(
        n_neighbors=k,
        n_components=2,
        min_dist=min_dist,
        n_epochs=n_epochs,
        random_state=seed,
        precomputed_knn=(knn_idx, knn_dist),
    )
    with warnings.catch_warnings():
        # "n_jobs overridden by random_state" and "no search index, transform unavailable" are
        # both expected: seeding is the point, and other frames are placed here, not by transform.
        warnings.simplefilter("ignore")
        fitted = reducer.fit_transform(zf).astype(np.float32)
    coords = np.empty((n, 2), np.float32)
    coords[fit_rows] = fitted
    note = ""
    if sampled:
        progress(3, steps, f"placing {n - len(fit_rows):,} more frames")
        rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
        coords[rest] = _place(np.ascontiguousarray(z[rest]), zf, fitted)
        note = (
            f"UMAP fitted on a random sample of {len(fit_rows):,} of {n:,} frames (seed {seed}); "
            f"the other {len(rest):,} were placed among their {_PLACE_NEIGHBOURS} nearest fitted frames."
        )
    return ProjectionResult(coords, "umap", len(fit_rows), note, splits)


def _knn(
    queries: np.ndarray, base: np.ndarray, k: int, *, self_first: bool = False, max_bytes: int = 64 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean k nearest rows of ``base`` for each query, nearest first.

    ``self_first`` (queries is base): each point is its own first neighbour, as UMAP expects."""
    b_sq = np.einsum("ij,ij->i", base, base)
    # Per row: a float32 distance and argpartition's int64 index per base point.
    chunk = max(1, max_bytes // (12 * len(base)))
    buf = np.empty(min(chunk, len(queries)) * len(base), np.float32)
    idx = np.empty((len(queries), k), np.int64)
    dist = np.empty((len(queries), k), np.float32)
    for s in range(0, len(queries), chunk):
        a = queries[s : s + chunk]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b; |a|^2 is the same along a row, so it is added only
        # to the k kept values. In place: on 2 cores the passes over the matrix are what costs.
        d2 = buf[: len(a) * len(base)].reshape(len(a), len(base))
        np.matmul(a, base.T, out=d2)
        d2 *= -2
        d2 += b_sq
        if self_first:
            d2[np.arange(len(a)), np.arange(s, s + len(a))] = -np.inf
        part = _smallest(d2, k)
        vals = np.take_along_axis(d2, part, axis=1) + np.einsum("ij,ij->i", a, a)[:, None]
        order = np.argsort(vals, axis=1, kind="stable")
        idx[s : s + len(a)] = np.take_along_axis(part, order, axis=1)
        dist[s : s + len(a)] = np.sqrt(np.maximum(np.take_along_axis(vals, order, axis=1), 0))
    return idx, dist


def _smallest(d: np.ndarray, k: int, stride: int = 16) -> np.ndarray:
    """Column indices of the ``k`` smallest values of each row of ``d`` (unordered).

    Same answer as ``argpartition(d, k - 1)[:, :k]`` (ties aside) at a fraction of its cost on
    long rows: the k-th smallest of every ``stride``-th column bounds the k-th smallest of the
    row from above, so only the ~k * stride values under that bound need sorting."""
    rows, cols = d.shape
    if cols < 4 * k * stride:
        return np.argpartition(d, k - 1, axis=1)[:, :k]
    bound = np.partition(d[:, ::stride], k - 1, axis=1)[:, k - 1 : k]
    flat = np.flatnonzero(d <= bound)  # row-major, so grouped by row; each row has >= k
    r, c = np.divmod(flat, cols)
    counts = np.bincount(r, minlength=rows)
    pos = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
    vals = np.full((rows, counts.max()), np.inf, d.dtype)
    vals[r, pos] = d.ravel()[flat]
    where = np.zeros((rows, counts.max()), np.int64)
    where[r, pos] = c
    return np.take_along_axis(where, np.argpartition(vals, k - 1, axis=1)[:, :k], axis=1)


def _place(z: np.ndarray, z_fit: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """2-D positions for frames outside the fitted sample from their nearest fitted frames.

    Weights fall off with the distance beyond the nearest one, on the scale of the neighbours'
    spread, much as UMAP's fuzzy neighbourhoods weigh them where its ``transform`` starts."""
    k = min(_PLACE_NEIGHBOURS, len(z_fit))
    idx, dist = _knn(z, z_fit, k)
    excess = dist - dist[:, :1]
    scale = excess.mean(axis=1, keepdims=True) + 1e-12
    w = np.exp(-excess / scale)
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkc->nc", w, fitted[idx]).astype(np.float32)


def _cache_key(x: np.ndarray, params: dict) -> str:
    try:
        from importlib.metadata import version

        umap_version = version("umap-learn")
    except Exception:  # not installed: the map will be PCA, and the key says which
        umap_version = "none"
    h = hashlib.blake2b(digest_size=16)
    header = {"v": _CACHE_VERSION, "umap": umap_version, "shape": list(x.shape), **params}
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(memoryview(x).cast("B"))
    return h.hexdigest()


def _read_cache(path: Path, n: int, splits: tuple[int, ...]) -> ProjectionResult | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            coords = f["coords"]
            result = ProjectionResult(
                coords, str(f["method"]), int(f["fitted_on"]), str(f["note"]), splits, from_cache=True
            )
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache entry is recomputed and overwritten
    return result if coords.shape == (n, 2) else None


def _write_cache(path: Path, result: ProjectionResult) -> None:
    with atomic_open(path) as f:
        np.savez(
            f,
            coords=result.coords,
            method=np.array(result.method),
            fitted_on=np.array(result.fitted_on),
            note=np.array(result.note),
        )
