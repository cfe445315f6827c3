"""What one browser session holds: its private upload folder, its two videos, error display.

Uploads are written to a folder made with ``tempfile.mkdtemp`` (mode 0700, this user only),
one per session, removed when the session ends (its ``Workspace`` is garbage-collected) or the
server stops. A file opened by path is read in place and never copied or written next to.
Messages about an upload name the user's file, never the private copy (``user_text``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from carl_core.errors import CarlError, VideoError
from carl_core.io import atomic_open, safe_file_name

log = logging.getLogger("carl_studio")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = ROOT / "assets" / "samples"  # CARL_SAMPLES_DIR names another folder (tests)
VIDEO_TYPES = ["mp4", "mov", "m4v", "avi", "mkv", "webm", "mpg", "mpeg", "ogg", "ogv", "wmv"]
SLOTS = ("A", "B")
UPLOAD, BY_PATH = "Upload a video…", "A video file on this machine…"


def upload_limit_mb() -> int:
    return int(st.get_option("server.maxUploadSize"))


class Workspace:
    """A private temporary folder for one session's uploads; removed with the session."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="carl-studio-"))  # mode 0700
        self.names: dict[Path, str] = {}  # each saved upload: the name of the user's file
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.dir), True)

    def save_upload(self, data: bytes | memoryview, name: str, folder: str) -> Path:
        """Write an upload atomically to ``dir/folder/<content digest>/<its name>``: a rerun
        reuses it, and the library's messages and progress show the file's own name."""
        digest = hashlib.blake2b(data, digest_size=8).hexdigest()
        target = self.dir / folder / digest / safe_file_name(name, "video")
        self.names[target] = name
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_open(target) as f:
            f.write(data)
        return target

    def forget(self, folder: str, keep: Path | None = None) -> None:
        """Delete the uploads of ``folder`` but ``keep`` (a slot's previous uploads)."""
        for p in (self.dir / folder).glob("*/*"):
            if p != keep and p.is_file():
                p.unlink(missing_ok=True)
                self.names.pop(p, None)
                with contextlib.suppress(OSError):
                    p.parent.rmdir()

    def user_text(self, text: str) -> str:
        """``text`` with each private copy named as the user's file, and no other private path."""
        for path, name in self.names.items():
            text = text.replace(str(path), name)
            if path.name != name:
                text = re.sub(rf"(?<![\w.-]){re.escape(path.name)}(?![\w.-])", name, text)
        return text.replace(str(self.dir), "the session's private folder")

    def close(self) -> None:
        self._cleanup()


def workspace() -> Workspace:
    if "workspace" not in st.session_state:
        st.session_state["workspace"] = Workspace()
    return st.session_state["workspace"]


_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
_QUOTED_NAME = re.compile(r":\s*'[^']*'(?=\))")  # FFmpeg's "...: 'file'" inside our parentheses


def user_text(text: str) -> str:
    """A message as the user should read it: their files' names, no private paths, no errno."""
    ws = st.session_state.get("workspace")
    if isinstance(ws, Workspace):
        text = ws.user_text(text)
    return _QUOTED_NAME.sub("", _ERRNO.sub("", text))


@dataclass(frozen=True)
class Video:
    """One of the two loaded videos."""

    slot: str  # "A" or "B"
    name: str  # what the user sees
    path: Path
    source: str  # "sample" | "upload" | "path"
    num_frames: int
    fps: float
    duration: float
    width: int
    height: int
    codec: str
    damaged: str | None = None  # how much of a cut-off or damaged file is readable (the library's words)

    @property
    def key(self) -> str:
        """Identity for in-memory caches: the file and its last change."""
        stat = self.path.stat()
        return f"{self.path}:{stat.st_size}:{stat.st_mtime_ns}"

    @property
    def label(self) -> str:
        return f"{self.slot} · {self.name}"


def samples() -> dict[str, Path]:
    folder = Path(os.environ.get("CARL_SAMPLES_DIR") or SAMPLES_DIR)
    return {p.name: p for p in sorted(folder.glob("*.mp4"))}


@st.cache_data(show_spinner=False, max_entries=64)
def _probe(path: str, stamp: str) -> dict:
    from carl_core.video import probe_video

    info = probe_video(path)
    return {
        "num_frames": info.num_frames,
        "fps": info.fps,
        "duration": info.duration,
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
        "damaged": info.damaged,  # a cut-off file: how much of it is readable, in its name
    }


def open_video(slot: str, path: Path, name: str, source: str) -> Video:
    """Probe a video (``VideoError`` for a file that is none) and describe it."""
    if not path.is_file():
        raise VideoError(f"{path} does not exist or is not a file. Check the path.")
    stat = path.stat()
    info = _probe(str(path), f"{stat.st_size}:{stat.st_mtime_ns}")
    if info["num_frames"] < 2:
        raise VideoError(
            f"{name} holds only {info['num_frames']} frame: alignment needs a video, not a still. "
            "Choose a longer clip."
        )
    return Video(slot=slot, name=name, path=path, source=source, **info)


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show a user's mistake as ``st.error`` with what to do, and a bug as a short notice.

    Streamlit's own control flow (rerun, stop) derives from BaseException and passes through.
    """
    try:
        yield
    except CarlError as e:
        st.error(user_text(str(e)), icon=":material/error:")
    except MemoryError:
        st.error(
            f"Not enough memory while {what}. Try a lower sampling rate (sidebar) or shorter videos.",
            icon=":material/memory:",
        )
    except Exception as e:  # a bug in CARL Studio: say so plainly, keep the details in the server log
        log.exception("unexpected error while %s", what)
        st.error(
            user_text(
                f"Something went wrong in CARL Studio while {what} ({type(e).__name__}: {e}). "
                "This is a bug, not something you did; the details are in the server's log."
            ),
            icon=":material/bug_report:",
        )


def safe_callback(fn: Callable[..., None]) -> Callable[..., None]:
    """A widget callback that cannot take the page down: callbacks run before the script,
    outside any ``guard``; a failure is kept and shown by ``show_callback_error`` instead."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except CarlError as e:
            st.session_state["callback_error"] = user_text(str(e))
        except Exception as e:
            log.exception("unexpected error in %s", fn.__name__)
            st.session_state["callback_error"] = (
                f"Something went wrong in CARL Studio ({type(e).__name__}: {e}). This is a bug, not "
                "something you did; the details are in the server's log."
            )

    return wrapper


def show_callback_error() -> None:
    message = st.session_state.pop("callback_error", None)
    if message:
        st.error(message, icon=":material/error:")


def video_picker(slot: str, default_sample: str | None) -> Video | None:
    """The sidebar controls of one slot: a sample, an upload or a path. Errors show in place,
    and so does what a damaged file lost."""
    video = _pick_video(slot, default_sample)
    if video is not None and video.damaged:
        st.warning(user_text(video.damaged), icon=":material/broken_image:")
    return video


def _pick_video(slot: str, default_sample: str | None) -> Video | None:
    ws = workspace()
    options = [*samples(), UPLOAD, BY_PATH]
    index = options.index(default_sample) if default_sample in options else len(options) - 2
    choice = st.selectbox(f"Video {slot}", options, index=index, key=f"video_src_{slot}")
    if choice != UPLOAD:
        ws.forget(f"video_{slot}")  # an upload replaced by another choice is deleted at once
    with guard(f"opening video {slot}"):
        if choice == UPLOAD:
            up = st.file_uploader(
                f"Drop video {slot} here",
                type=VIDEO_TYPES,
                key=f"upload_{slot}",
                help=f"Up to {upload_limit_mb()} MB. Longer files: choose '{BY_PATH}' instead.",
            )
            if up is None:
                return None
            path = ws.save_upload(up.getbuffer(), up.name, f"video_{slot}")
            ws.forget(f"video_{slot}", keep=path)
            return open_video(slot, path, up.name, "upload")
        if choice == BY_PATH:
            text = st.text_input(
                f"Path of video {slot}", key=f"path_{slot}", placeholder="/home/me/videos/take1.mp4"
            ).strip()
            if not text:
                return None
            path = Path(text).expanduser()
            return open_video(slot, path, path.name, "path")
        return open_video(slot, samples()[choice], choice, "sample")
    return None
