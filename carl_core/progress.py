"""Progress reports: the callback type every long job takes, and how a time left reads.

Long work takes ``on_progress(done, total, message)``, so the CLI (tqdm) and the app
(``st.progress``) share one mechanism (see DESIGN.md, Conventions).
"""

from __future__ import annotations

import math
from collections.abc import Callable

Progress = Callable[[int, int, str], None]


def format_duration(seconds: float | None) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on; "?" for an unknown (None, NaN, infinite) time."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    total = max(0, int(round(seconds)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def prefixed(on_progress: Progress | None, what: str) -> Progress | None:
    """``on_progress`` with ``what: `` before every message (None stays None)."""
    if on_progress is None:
        return None
    return lambda done, total, message: on_progress(done, total, f"{what}: {message}")


__all__ = ["Progress", "format_duration", "prefixed"]
