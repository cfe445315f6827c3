"""The app's calls into ``carl_core``, cached so that a rerun of the page recomputes nothing.

Embeddings: ``carl_core.embed.Embedder`` (its disk cache makes a video seen before instant,
across sessions and restarts) behind a per-session memo, so a rerun does not even probe the
file. Alignments, maps and thumbnails: ``st.cache_data``, keyed by short strings that name what
went in (the video files, the model, the options), never by hashing large arrays. Frame
indexes: ``st.cache_resource``. The only numpy here shapes results for display.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from app.session import Video, workspace
from carl_core.progress import Progress

if TYPE_CHECKING:
    from carl_core.align import Method
    from carl_core.embed import EmbedResult
    from carl_core.pairing import PairAlignment
    from carl_core.skeleton import PoseSequence

FPS_CHOICES: dict[str, float | str | None] = {
    "Auto": "auto",
    "Every frame": None,
    "30 per second": 30.0,
    "15 per second": 15.0,
    "10 per second": 10.0,
    "5 per second": 5.0,
}
AUTO_ALL_FRAMES = 1800  # "Auto" embeds every frame of videos up to this long (a minute at 30 fps)
# Browsers play these without help; anything else gets a proxy (H.264 mp4) for the player.
PLAYABLE_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm"}
PLAYABLE_CODECS = {"h264", "vp8", "vp9", "av1"}
# Larger files get a small proxy: Streamlit's media server holds served files in memory and
# hashes them on every rerun.
PLAYER_MAX_BYTES = 50 << 20
PROXY_SIZE = 360  # shorter side of a proxy, pixels


def sampling_fps(choice: str, video: Video, device_type: str) -> float | None:
    """The frames per second to embed for a sidebar choice; None is every frame."""
    from carl_core.embed import default_fps

    value = FPS_CHOICES.get(choice, "auto")
    if isinstance(value, str):  # "auto"
        return None if video.num_frames <= AUTO_ALL_FRAMES else default_fps(device_type)
    if value is not None and value >= video.fps:
        return None  # never more samples than frames
    return value


@dataclass(frozen=True)
class Embedded:
    """A video's embeddings (the library's ``EmbedResult``), and what made them."""

    video: Video
    result: EmbedResult
    fps: float | None  # sampling rate used (None: every frame)
    key: str  # names the embeddings: model, video, fps, crop box
    # The body pose found in each embedded frame, where a model read it (``EmbedResult.pose``;
    # kept when a pair falls back on the visual model, to show what was found).
    pose: PoseSequence | None = None

    @property
    def embs(self) -> np.ndarray:
        """(T, D) float32, L2-normalised."""
        return self.result.embeddings

    @property
    def times(self) -> np.ndarray:
        """(T,) seconds from the first frame."""
        return self.result.times

    @property
    def indices(self) -> np.ndarray:
        """(T,) int64: each sample's frame number in the file, as decoded (not estimated from its time)."""
        return self.result.indices

    @property
    def blank(self) -> np.ndarray:
        """(T,) bool: black or otherwise uniform frames."""
        return self.result.blank

    def unread(self) -> tuple[int, int]:
        """(frames embedded, frames planned): fewer where part of the file did not decode."""
        from carl_core.video import sample_indices

        planned = len(sample_indices(self.video.num_frames, self.video.fps, self.fps))
        return len(self.times), planned


def embed(
    model_key: str,
    embedder: Any,
    video: Video,
    fps: float | None,
    on_progress: Progress,
    crop: str | None = None,
) -> Embedded:
    """Embeddings of a video, memoised for the session; the library's disk cache behind that.
    ``crop`` ("x0,y0,x1,y1" pixels): the person to follow, for models that read pose."""
    key = f"{model_key}|{video.key}|{fps}|{crop or ''}"
    memo = st.session_state.setdefault("embeddings", {})
    if key not in memo:
        result = embedder.embed(video.path, fps, on_progress=on_progress, crop=crop or None)
        if len(memo) > 8:  # two videos per model; a few models' worth is plenty
            memo.pop(next(iter(memo)))
        memo[key] = result
    result = memo[key]
    return Embedded(video, result, fps, key, result.pose)


# --------------------------------------------------------------------------- alignment


@st.cache_resource(show_spinner=False)
def _content_embedder():
    """ImageNet Lite0 features, the context-free view the match confidence checks matches against."""
    from carl_core.embed import Embedder
    from carl_core.features import imagenet_features

    return Embedder(imagenet_features("efficientnet_lite0"))


def content_view(a: Embedded, b: Embedded) -> tuple[tuple[np.ndarray, np.ndarray], str]:
    """The content view the match confidence checks the pair's matches against, and its kind: a
    pose model's own frame embeddings (``carl_core.pairing.pose_content``, free), else ImageNet
    features (``content``)."""
    from carl_core.pairing import pose_content

    pose = pose_content(a.result, b.result)
    return (pose, "pose") if pose is not None else ((content(a), content(b)), "pictures")


def content(e: Embedded) -> np.ndarray:
    """Context-free features of the embedded frames (``carl_core.pairing.content_features``),
    memoised for the session; the embeddings themselves where the model is those features."""
    from carl_core.pairing import content_features

    if e.key.startswith("features:efficientnet_lite0|"):
        return e.embs
    key = f"{e.video.key}|{e.fps}"
    memo = st.session_state.setdefault("content", {})
    if key not in memo:
        if len(memo) > 8:
            memo.pop(next(iter(memo)))
        memo[key] = content_features(_content_embedder(), e.video.path, e.times)
    return memo[key]


@st.cache_data(show_spinner=False, max_entries=32)
def align(
    key_a: str,
    key_b: str,
    _a: Embedded,
    _b: Embedded,
    method: Method,
    open_begin: bool,
    open_end: bool,
    content_kind: str = "pictures",
    _content: tuple[np.ndarray, np.ndarray] | None = None,
) -> PairAlignment:
    """``carl_core.pairing.align_pair``, the CLI's ``align``: DTW, the frame mappings, the
    calibrated confidence of every match and warnings. ``_content``: context-free features of
    both videos' frames, of ``content_kind`` (``content_view``); it follows from the keys, so it
    is not hashed."""
    from carl_core.pairing import align_pair

    return align_pair(
        _a.embs, _b.embs, method=method, open_begin=open_begin, open_end=open_end, content=_content,
        content_kind=content_kind,  # type: ignore[arg-type]
        blank_a=_a.blank, blank_b=_b.blank, names=(_a.video.name, _b.video.name),
        durations=(_a.video.duration, _b.video.duration),
    )  # fmt: skip


def alignment_json(result: PairAlignment, ea: Embedded, eb: Embedded, model_label: str) -> str:
    """The CLI's alignment JSON (``alignment`` + ``mapping`` with times) and what made it."""
    from carl_core.align import alignment_document

    doc = alignment_document(
        result.alignment,
        result.mapping,
        ea.times,
        eb.times,
        confidence=result.confidence,
        warnings=list(result.warnings),
        videos={
            "a": {"name": ea.video.name, "fps_sampled": ea.fps, "frames": ea.indices.tolist()},
            "b": {"name": eb.video.name, "fps_sampled": eb.fps, "frames": eb.indices.tolist()},
        },
        model=model_label,
    )
    return json.dumps(doc)


@st.cache_data(show_spinner=False, max_entries=32)
def similarity_preview(key_a: str, key_b: str, _ea: np.ndarray, _eb: np.ndarray, max_side: int = 300):
    """Cosine similarities of every k-th frame pair (k so that no side exceeds ``max_side``)."""
    sa = max(1, math.ceil(len(_ea) / max_side))
    sb = max(1, math.ceil(len(_eb) / max_side))
    rows, cols = np.arange(0, len(_ea), sa), np.arange(0, len(_eb), sb)
    return rows, cols, (_ea[rows] @ _eb[cols].T).astype(np.float32)


def export_side_by_side(
    ea: Embedded,
    eb: Embedded,
    result: PairAlignment,
    on_progress: Progress,
    timeline: str = "a",
    height: int = 360,
) -> Path:
    """The aligned side-by-side mp4 (the CLI's ``align --export``), in the session's private folder."""
    from carl_core.export import export_alignment

    out = workspace().dir / "exports" / f"aligned_{Path(ea.video.name).stem}_{Path(eb.video.name).stem}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return export_alignment(
        out,
        ea.video.path,
        eb.video.path,
        result.alignment,
        result.mapping,
        ea.times,
        eb.times,
        timeline=timeline,
        confidence=result.confidence,
        height=height,
        on_progress=on_progress,
    )


# --------------------------------------------------------------------------- map


@st.cache_data(show_spinner=False, max_entries=16)
def projection(keys: tuple[str, ...], _embs: tuple[np.ndarray, ...], method: str):
    """2-D map of the frames of several videos (``carl_core.projection``)."""
    from carl_core.cache import default_cache_dir
    from carl_core.projection import project

    res = project(list(_embs), method=method, cache_dir=default_cache_dir() / "maps")
    return res.per_video(), res.method, res.note


@st.cache_resource(show_spinner=False)
def warm_up_map() -> threading.Thread:
    """Fit a tiny UMAP once per server, in the background: umap-learn's numba code compiles on
    its first call (10-15 s on 2 cores), which the map tab would otherwise wait for."""

    def run() -> None:
        from carl_core.projection import project

        x = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
        with contextlib.suppress(Exception):  # only a warm-up: the real call reports its own errors
            project([x[:32], x[32:]], method="umap")

    thread = threading.Thread(target=run, name="carl-umap-warm-up", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- retrieval


@st.cache_resource(show_spinner=False, max_entries=8)
def frame_index(keys: tuple[str, ...], space: str, _named: tuple[tuple[str, np.ndarray, np.ndarray], ...]):
    """A ``FrameIndex`` over the loaded videos, ids "A" and "B", hits by sample (row).

    ``space``: "context" (the model's embeddings: a frame of a video is compared with these) or
    "frames" (each frame on its own, ``EmbedResult.frame_embeddings``: a picture is compared
    with these, having no context of its own)."""
    from carl_core.retrieval import FrameIndex

    index = FrameIndex()
    for vid, embs, times in _named:
        index.add(vid, embs, times)
    return index


def embed_picture(model: Any, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """((F,) context-free embedding, the RGB picture) of an image file's bytes, to search the
    "frames" space of ``frame_index``; ``VideoError`` for a file that is no picture."""
    import io

    from PIL import Image, UnidentifiedImageError

    from carl_core.embed import embed_picture as embed_image
    from carl_core.errors import VideoError

    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise VideoError(f"that file is not a picture this app can read ({e}); give a PNG or JPEG") from None
    return embed_image(model, rgb), rgb


# --------------------------------------------------------------------------- pictures


@st.cache_data(show_spinner=False, max_entries=256)
def thumbnails(path: str, stamp: str, frames: tuple[int, ...], size: int = 128) -> list[np.ndarray]:
    """Frames (by number in the file) as small RGB pictures, shorter side ``size``."""
    from carl_core.video import read_video

    if not frames:
        return []
    want = np.asarray(frames, dtype=np.int64)
    pics, _ = read_video(path, indices=want, size=size)
    if len(pics) != len(want):  # a damaged stretch: pad with grey rather than misplace pictures
        grey = np.full_like(pics[0] if len(pics) else np.zeros((size, size, 3), np.uint8), 128)
        return [grey for _ in want]
    return list(pics)


def thumbs_of(e: Embedded, samples: list[int], size: int = 128) -> list[np.ndarray]:
    stat = e.video.path.stat()
    frames = tuple(int(e.indices[i]) for i in samples)
    return thumbnails(str(e.video.path), f"{stat.st_size}:{stat.st_mtime_ns}", frames, size)


# --------------------------------------------------------------------------- the player's media


def _playable(video: Video) -> bool:
    return (
        video.path.suffix.lower() in PLAYABLE_SUFFIXES
        and video.codec in PLAYABLE_CODECS
        and video.path.stat().st_size <= PLAYER_MAX_BYTES
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _proxy(path: str, stamp: str, folder: str, fps: float | None) -> tuple[str, float]:
    """A small H.264 copy for the browser; returns its path and frame rate."""
    from carl_core.video import open_video, probe_video
    from carl_core.video_writer import write_video

    info = probe_video(path)
    rate = fps or info.fps
    out = Path(folder) / f"proxy-{abs(hash((path, stamp, fps))):x}.mp4"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        stream = open_video(path, fps=fps, size=PROXY_SIZE)
        write_video(out, (f for chunk, _ in stream for f in chunk), rate, crf=28)
    return str(out), rate


def player_media(e: Embedded, force_proxy: bool) -> tuple[str, np.ndarray]:
    """(URL the browser plays, media time of each sample in that file).

    The original file where the browser can play it; else a proxy of the sampled frames at
    the sampling rate, whose k-th frame is sample k (so its times are k / rate).
    """
    if _playable(e.video) and not force_proxy:
        return _media_url(e.video.path, f"carl.player.{e.video.slot}"), e.times
    stat = e.video.path.stat()
    path, rate = _proxy(
        str(e.video.path), f"{stat.st_size}:{stat.st_mtime_ns}", str(workspace().dir / "proxies"), e.fps
    )
    return _media_url(Path(path), f"carl.player.{e.video.slot}"), np.arange(len(e.times)) / rate


def _media_url(path: Path, coordinates: str) -> str:
    """A URL the page can fetch the file from: Streamlit's media server (with range requests).

    Falls back to a data URL where no server runs (AppTest).
    """
    mimetype = "video/webm" if path.suffix.lower() == ".webm" else "video/mp4"
    try:
        from streamlit import runtime

        if runtime.exists():
            return runtime.get_instance().media_file_mgr.add(str(path), mimetype, coordinates)
    except Exception:  # an internal API: if it moves, the data URL still plays
        pass
    return f"data:{mimetype};base64," + base64.b64encode(path.read_bytes()).decode()
