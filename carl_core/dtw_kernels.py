"""Compiled (numba) kernels of the DTW solver in `carl_core.align`.

One windowed dynamic programme: each row i of the cost matrix has a column window
``[lo[i], hi[i])``; `dp_strip` runs the recurrence over a strip of rows whose costs come from
one BLAS product, keeping per cell only the step it came from (2 bits); `traceback` follows
those steps back; `plan_strips` cuts rows into strips; `project_path` widens a coarse path
into the window of the next finer level (multiscale). `align.py` holds the plain-numpy parts.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

# 2-bit step codes kept per cell for the traceback.
_DIAG, _UP, _LEFT, _START = 0, 1, 2, 3


def _jit(fn: Callable) -> Callable:
    """Compile with an on-disk cache so only the first process pays the compile time.

    Numba caches next to this file, else in the user's cache folder (or NUMBA_CACHE_DIR);
    where no folder is writable it refuses ``cache=True``, so compile per process instead.
    """
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return numba.njit(nogil=True)(fn)


@_jit
def _step(dg, up, left, c):
    """One cell: (accumulated cost, step code). Branch-free selects, since on noisy costs
    the winning step is unpredictable and mispredicted branches cost more than arithmetic.
    Ties go to the diagonal, then up, as in the authors' traceback."""
    up_wins = up < dg
    best = up if up_wins else dg
    left_wins = left < best
    best = left if left_wins else best
    code = _LEFT if left_wins else np.int64(up_wins)
    return best + c, code


@_jit
def dp_strip(g, i0, i1, c0, lo, hi, xx, yy, scale, acc, dirs, row_off, begin_a, begin_b, skip_a, skip_b,
              lastcol):  # fmt: skip
    """Run the recurrence over rows [i0, i1); the cost of cell (i, j) is
    ``max(xx[i] + yy[j] + scale * g[i - i0, j - c0], 0)``.

    ``acc`` holds two rolling rows indexed by column + 1 (index 0 is a permanent +inf for
    column -1); row i lives in ``acc[i & 1]``, valid on its window only. Step codes go to
    ``dirs``, 2 bits a cell, each row starting on a fresh byte at ``row_off[i]``.
    """
    inf = np.inf
    m = acc.shape[1] - 1
    for i in range(i0, i1):
        r = i - i0
        cur = acc[i & 1]
        prev = acc[1 - (i & 1)]
        li = lo[i]
        hi_i = hi[i]
        phi = hi[i - 1] if i > 0 else 0
        # Columns of row i-1 beyond its window still hold stale values from older rows.
        for t in range(phi + 1, hi_i + 1):
            prev[t] = inf
        cur[li] = inf  # column li-1 of this row is outside the window
        base = row_off[i]
        xi = xx[i]
        j = li
        left = inf
        if j == 0 or i == 0:
            # Border cells, where a path may start: kept apart from the hot loop.
            jend = hi_i if i == 0 else 1
            for j in range(li, jend):
                c = max(xi + yy[j] + scale * g[r, j - c0], 0.0)
                best = inf
                code = _START
                if i == 0 and j == 0:
                    best = 0.0
                elif i == 0 and begin_b:
                    best = skip_b * j
                elif j == 0 and begin_a:
                    best = skip_a * i
                if prev[j] < best:
                    best = prev[j]
                    code = _DIAG
                if prev[j + 1] < best:
                    best = prev[j + 1]
                    code = _UP
                if left < best:
                    best = left
                    code = _LEFT
                left = best + c
                cur[j + 1] = left
                k = j - li
                dirs[base + (k >> 2)] |= np.uint8(code << ((k & 3) * 2))
            j = jend
        # Cells up to the next byte boundary, then four cells (one byte) at a time.
        while j < hi_i and (j - li) & 3 != 0:
            left, code = _step(prev[j], prev[j + 1], left, max(xi + yy[j] + scale * g[r, j - c0], 0.0))
            cur[j + 1] = left
            k = j - li
            dirs[base + (k >> 2)] |= np.uint8(code << ((k & 3) * 2))
            j += 1
        # Views starting at column j let every index below count up from 0, so the compiled
        # loop skips numba's negative-index checks (worth about 40% here).
        n4 = (hi_i - j) >> 2
        pv = prev[j:]
        cv = cur[j:]
        gv = g[r, j - c0 :]
        yv = yy[j:]
        dv = dirs[base + ((j - li) >> 2) :]
        for t in range(n4):
            k = 4 * t
            left, k0 = _step(pv[k], pv[k + 1], left, max(xi + yv[k] + scale * gv[k], 0.0))
            cv[k + 1] = left
            left, k1 = _step(pv[k + 1], pv[k + 2], left, max(xi + yv[k + 1] + scale * gv[k + 1], 0.0))
            cv[k + 2] = left
            left, k2 = _step(pv[k + 2], pv[k + 3], left, max(xi + yv[k + 2] + scale * gv[k + 2], 0.0))
            cv[k + 3] = left
            left, k3 = _step(pv[k + 3], pv[k + 4], left, max(xi + yv[k + 3] + scale * gv[k + 3], 0.0))
            cv[k + 4] = left
            dv[t] = np.uint8(k0 | (k1 << 2) | (k2 << 4) | (k3 << 6))
        j += 4 * n4
        while j < hi_i:
            left, code = _step(prev[j], prev[j + 1], left, max(xi + yy[j] + scale * g[r, j - c0], 0.0))
            cur[j + 1] = left
            k = j - li
            dirs[base + (k >> 2)] |= np.uint8(code << ((k & 3) * 2))
            j += 1
        if hi_i == m:
            lastcol[i] = cur[m]


@_jit
def traceback(dirs, row_off, lo, ie, je, out_a, out_b):
    """Follow the stored steps back from (ie, je) to a start cell; returns the path length."""
    i = ie
    j = je
    n_steps = 0
    while True:
        out_a[n_steps] = i
        out_b[n_steps] = j
        n_steps += 1
        k = j - lo[i]
        code = (dirs[row_off[i] + (k >> 2)] >> ((k & 3) * 2)) & 3
        if code == _START:
            break
        if code == _DIAG:
            i -= 1
            j -= 1
        elif code == _UP:
            i -= 1
        else:
            j -= 1
        if i < 0 or j < 0:
            return -1
    out_a[:n_steps] = out_a[:n_steps][::-1].copy()
    out_b[:n_steps] = out_b[:n_steps][::-1].copy()
    return n_steps


@_jit
def plan_strips(lo, hi, budget):
    """Split rows into strips whose product blocks stay under ``budget`` cells and waste
    at most about twice the window cells they serve (narrow multiscale windows)."""
    n = lo.shape[0]
    bounds = np.empty(n + 1, np.int64)
    bounds[0] = 0
    nb = 0
    i0 = 0
    while i0 < n:
        need = hi[i0] - lo[i0]
        i1 = i0 + 1
        while i1 < n:
            area = (i1 + 1 - i0) * (hi[i1] - lo[i0])
            need2 = need + hi[i1] - lo[i1]
            if area > budget or (area > 3 * need2 and area > 65536):
                break
            need = need2
            i1 += 1
        nb += 1
        bounds[nb] = i1
        i0 = i1
    return bounds[: nb + 1]


@_jit
def project_path(path_a, path_b, n_steps, fa, fb, n, m, radius, lo, hi):
    """Window of a finer level: the coarse path's cells blown up by (fa, fb), widened by radius."""
    pmin = np.full(n, m, np.int64)
    pmax = np.full(n, -1, np.int64)
    for t in range(n_steps):
        r0 = path_a[t] * fa
        r1 = min(r0 + fa, n)
        c0 = path_b[t] * fb
        c1 = min(c0 + fb, m)
        for r in range(r0, r1):
            pmin[r] = min(pmin[r], c0)
            pmax[r] = max(pmax[r], c1)
    # Rows the path skips (open ends) borrow the nearest covered row's columns.
    for r in range(n - 2, -1, -1):
        pmin[r] = min(pmin[r], pmin[r + 1])
    for r in range(1, n):
        pmax[r] = max(pmax[r], pmax[r - 1])
    for r in range(n):
        if pmax[r] <= pmin[r]:
            if pmax[r] < 0:
                pmax[r] = pmin[r] + 1
            else:
                pmin[r] = pmax[r] - 1
    for r in range(n):
        lo[r] = max(pmin[max(r - radius, 0)] - radius, 0)
        hi[r] = min(pmax[min(r + radius, n - 1)] + radius, m)


__all__ = ["dp_strip", "plan_strips", "project_path", "traceback"]
