"""Files the user's work goes into: atomic writes, and safe names for them.

Atomic: a temporary file in the same folder, then a rename, so whatever the user made
(checkpoints, caches, exports) is either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", *, durable: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; it replaces ``path`` when the block ends cleanly.

    ``durable``: fsync before the rename, so a power cut cannot leave an empty file behind
    (for files others are named by, such as an index's arrays before its manifest).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def safe_file_name(name: str, fallback: str = "file", max_length: int = 80) -> str:
    """A name made from ``name`` (a user's file or run name) that is safe as one path component.

    Runs of anything but ASCII letters, digits, dot, dash and underscore (path separators
    included) become one underscore; leading and trailing dots and underscores go (no hidden
    files, no ".."); the end is kept where it is too long (it holds the suffix). ``fallback``
    where nothing is left.
    """
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return clean[-max_length:].lstrip("._") or fallback
