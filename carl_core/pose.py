"""Body pose of one person in every frame of a video: BlazePose, tracked, smoothed, cached.

Our own pipeline around MediaPipe's two BlazePose networks (``pose_models.py``), following
MediaPipe's pose graph in video mode (``pose_landmark_cpu.pbtxt`` and the graphs it uses):

1. **Detection, only when tracking is lost.** The detector sees the whole frame (or the crop box)
   letterboxed to a square. The person's region is a square around the hips' middle, rotated so
   the body stands upright in it, 1.25 times the body's size.
2. **Landmarks in the region.** The landmark model gives 33 landmarks (image and world) and two
   auxiliary ones; a person-present score below 0.5 means the person is lost.
3. **Tracking.** The next frame's region comes from this frame's (smoothed) auxiliary landmarks,
   so the detector does not run while the person stays in view. Where tracking fails, the
   detector runs again on the same frame (MediaPipe waits for the next frame: one lost frame
   fewer here per loss).
4. **Smoothing**, as MediaPipe's video mode: one-euro filters on image landmarks (cut-off
   0.05 Hz, beta 80, in units of the body's size), world landmarks (0.1 Hz, beta 40, metres) and
   the auxiliary ones (0.01 Hz, beta 10); visibility low-passed (alpha 0.1). The filters run on
   the frames' real timestamps (``smoothing_fps`` pretends a fixed rate instead: MediaPipe's
   legacy ``solutions.pose`` pretends 30 frames/s whatever the video's rate), and restart when
   the person is lost.

Which person: the detector's most confident one (MediaPipe's choice) when tracking starts; after
a loss, the detection nearest the last known region, so tracking does not jump to someone else.
A crop box ``(x0, y0, x1, y1)`` in frame pixels picks another person: the detector sees only the
box, and a tracked person whose hips leave the box counts as lost.

Frames where nobody is found are MISSING (NaN), never dropped; runs of up to ``max_gap`` seconds
between found frames are interpolated (``skeleton.interpolate_gaps``). Videos stream in chunks
(memory stays flat), and results go to a disk cache keyed by the file's content, so a second run
is a lookup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import default_cache_dir, file_digest
from .embed import PREFETCH, STALL_SECONDS, Progress, _Meter, _Prefetch
from .errors import ConfigError, DataError
from .pose_models import (
    AUX,
    MIN_PRESENCE_SCORE,
    BlazePose,
    Detection,
    RawLandmarks,
    Rect,
    body_rect,
    models_digest,
)
from .skeleton import DETECTED, MISSING, NUM_LANDMARKS, PoseSequence, interpolate_gaps
from .video import blank_frames, check_video_file, open_video, probe_video

log = logging.getLogger(__name__)

# Bump when a change to this pipeline changes its output: old cache entries stop matching.
PIPELINE_VERSION = 2
MAX_GAP_SECONDS = 0.25
_CHUNK_BYTES = 32 << 20  # decoded pixels per chunk (several chunks wait in the prefetch queue)
_MAX_SHORT_SIDE = 1080  # larger videos are decoded at this size: the crops are 256 px anyway
_CACHE_MAX_BYTES = 1 << 30

Box = tuple[int, int, int, int]


# --------------------------------------------------------------------------- crop boxes


def parse_crop(text: str) -> Box:
    """``"x0,y0,x1,y1"`` (pixels of the frame) -> a box; ConfigError with the expected form."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(round(float(p))) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or len(parts) != 4:
        raise ConfigError(
            f"crop box {text!r} is not four numbers: give x0,y0,x1,y1 in pixels of the frame, "
            "e.g. --crop 200,0,400,225"
        )
    return check_crop(tuple(values))


def check_crop(box: Any, width: int | None = None, height: int | None = None) -> Box:
    """A crop box as ints, checked (and clipped to the frame when its size is given)."""
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise ConfigError(f"crop box {box!r} must be four numbers (x0, y0, x1, y1) in pixels") from None
    if x1 <= x0 or y1 <= y0:
        raise ConfigError(
            f"crop box ({x0}, {y0}, {x1}, {y1}) is empty: x1 must be greater than x0 and y1 than y0"
        )
    if width is None or height is None:
        return x0, y0, x1, y1
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        raise ConfigError(
            f"crop box ({x0}, {y0}, {x1}, {y1}) lies outside the {width} x {height} frame: "
            f"give a box inside 0,0,{width},{height}"
        )
    return cx0, cy0, cx1, cy1


# --------------------------------------------------------------------------- smoothing


class _LowPass:
    """Exponential smoothing of an array; the first value passes through."""

    def __init__(self) -> None:
        self.raw: np.ndarray | None = None
        self.value: np.ndarray | None = None

    def __call__(self, x: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
        self.value = x.copy() if self.value is None else alpha * x + (1.0 - alpha) * self.value
        self.raw = x.copy()
        return self.value


class _OneEuro:
    """One-euro filter (Casiez et al. 2012) over an array of values, as MediaPipe applies it:
    speed measured in ``value_scale`` units per second, 30 Hz assumed before two samples exist."""

    def __init__(self, min_cutoff: float, beta: float, derivative_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.derivative_cutoff = min_cutoff, beta, derivative_cutoff
        self.x, self.dx = _LowPass(), _LowPass()
        self.last_t: float | None = None
        self.rate = 30.0

    def _alpha(self, cutoff: float | np.ndarray) -> float | np.ndarray:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * self.rate)

    def __call__(self, t: float, x: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        if self.last_t is not None:
            if t <= self.last_t:
                return x
            self.rate = 1.0 / (t - self.last_t)
        self.last_t = t
        speed = (x - self.x.raw) * value_scale * self.rate if self.x.raw is not None else np.zeros_like(x)
        speed = self.dx(speed, self._alpha(self.derivative_cutoff))
        return self.x(x, self._alpha(self.min_cutoff + self.beta * np.abs(speed)))


class _Smoother:
    """MediaPipe's PoseLandmarkFiltering: image, world and auxiliary landmarks."""

    def __init__(self) -> None:
        self.image = _OneEuro(0.05, 80.0)
        self.world = _OneEuro(0.1, 40.0)
        self.aux = _OneEuro(0.01, 10.0)
        self.visibility = _LowPass()
        self.world_visibility = _LowPass()

    def __call__(
        self, t: float, image: np.ndarray, world: np.ndarray, aux: np.ndarray, scale: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """image (33, 4) and aux (2, 3) in pixels, world (33, 4); scale: body size in pixels."""
        value_scale = 1.0 / scale if scale > 1e-6 else 1.0
        image = np.concatenate([self.image(t, image[:, :3], value_scale), image[:, 3:]], axis=1)
        image[:, 3] = self.visibility(image[:, 3], 0.1)
        world = np.concatenate([self.world(t, world[:, :3]), world[:, 3:]], axis=1)
        world[:, 3] = self.world_visibility(world[:, 3], 0.1)
        return image, world, self.aux(t, aux, value_scale)


# --------------------------------------------------------------------------- tracking


@dataclass
class _Found:
    image: np.ndarray  # (33, 4): x / W, y / H, z / W, visibility
    world: np.ndarray  # (33, 4): metres, visibility


class _Tracker:
    """Per-video state: the region to look at next, the person's last place, the filters."""

    def __init__(self, net: BlazePose, box: Box | None, smooth: bool, smoothing_fps: float | None):
        self.net, self.box, self.smooth, self.smoothing_fps = net, box, smooth, smoothing_fps
        self.rect: Rect | None = None  # where to look in the next frame (None: detect)
        self.last: Rect | None = None  # where the person was last seen
        self.smoother = _Smoother()
        self.steps = 0

    def _detect(self, frame: np.ndarray) -> Rect | None:
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = self.box if self.box is not None else (0, 0, w, h)
        sub = frame[y0:y1, x0:x1]  # the detector sees only the box; outside it is letterbox black
        dets = self.net.detect(sub, Rect((x1 - x0) / 2, (y1 - y0) / 2, x1 - x0, y1 - y0))
        if not dets:
            return None
        best = dets[0] if self.last is None else min(dets, key=self._distance)
        return best.rect().shifted(x0, y0) if (x0 or y0) else best.rect()

    def _distance(self, det: Detection) -> float:
        assert self.last is not None
        offset = self.box[:2] if self.box is not None else (0, 0)
        c = det.keypoints[0] + np.asarray(offset)
        return math.hypot(c[0] - self.last.cx, c[1] - self.last.cy)

    def _in_box(self, point: np.ndarray) -> bool:
        if self.box is None:
            return True
        x0, y0, x1, y1 = self.box
        return x0 <= point[0] <= x1 and y0 <= point[1] <= y1

    def _kept(self, raw: RawLandmarks | None) -> bool:
        """A person is present, with the hips' middle inside the crop box."""
        return raw is not None and raw.score >= MIN_PRESENCE_SCORE and self._in_box(raw.image[AUX][0])

    def step(self, frame: np.ndarray, t: float) -> _Found | None:
        """Landmarks of the tracked person in this frame, or None (lost; filters restart)."""
        self.steps += 1
        tracking = self.rect is not None
        rect = self.rect if tracking else self._detect(frame)
        raw = self.net.landmarks(frame, rect) if rect is not None else None
        if tracking and not self._kept(raw):
            self.smoother = _Smoother()  # a new track
            rect = self._detect(frame)
            raw = self.net.landmarks(frame, rect) if rect is not None else None
        if raw is None or not self._kept(raw):
            self.rect = None
            self.smoother = _Smoother()
            return None
        h, w = frame.shape[:2]
        image = np.concatenate([raw.image[:33, :3], raw.image[:33, 3:4]], axis=1)
        world = np.concatenate([raw.world[:33], raw.image[:33, 3:4]], axis=1)  # visibility copied
        aux = raw.image[AUX, :3]
        if self.smooth:
            clock = t if self.smoothing_fps is None else self.steps / self.smoothing_fps
            scale = 2.0 * float(np.hypot(*(aux[1, :2] - aux[0, :2])))  # MediaPipe's object scale
            image, world, aux = self.smoother(clock, image, world, aux, scale)
        self.rect = body_rect(aux[0, :2], aux[1, :2])
        self.last = self.rect
        image = image.copy()
        image[:, 0] /= w
        image[:, 1] /= h
        image[:, 2] /= w
        return _Found(image.astype(np.float32), world.astype(np.float32))


# --------------------------------------------------------------------------- cache


class PoseCache:
    """Pose sequences on disk: ``root/poses/ab/abcdef....npz``, one per key, written atomically.

    The key (JSON) is stored in the entry and checked on reading; an entry that does not load or
    does not match is deleted and recomputed. Pruned to ``max_bytes``, least recently used first.
    """

    def __init__(self, root: str | os.PathLike | None = None, max_bytes: int = _CACHE_MAX_BYTES):
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.max_bytes = max_bytes

    @property
    def entries_dir(self) -> Path:
        return self.root / "poses"

    def path_of(self, key: dict[str, Any]) -> Path:
        d = hashlib.blake2b(_key_text(key).encode(), digest_size=20).hexdigest()
        return self.entries_dir / d[:2] / f"{d}.npz"

    def get(self, key: dict[str, Any]) -> PoseSequence | None:
        path = self.path_of(key)
        if not path.is_file():
            return None
        try:
            seq = PoseSequence.load(path)
            ok = seq.meta.get("key") == _key_text(key)
        except (DataError, OSError, ValueError, EOFError, zipfile.BadZipFile):
            ok = False
        if not ok:
            log.warning("pose cache entry %s is corrupt: deleting it; the poses are computed again", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        seq.meta.pop("key", None)
        return seq

    def put(self, key: dict[str, Any], seq: PoseSequence) -> Path:
        path = self.path_of(key)
        stored = PoseSequence(
            seq.image, seq.world, seq.status, seq.times, seq.indices, seq.width, seq.height,
            {**seq.meta, "key": _key_text(key)},
        )  # fmt: skip
        stored.save(path)
        files = []
        for p in self.entries_dir.glob("*/*.npz"):
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
        return path


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


# --------------------------------------------------------------------------- the extractor


class PoseExtractor:
    """Holds the two networks and the cache; extracts poses from many videos and images.

    Thread-safe: each call keeps its own tracking state, and the networks are locked while they
    run (calls from several threads take turns on them).

    threads: LiteRT threads per network (default: up to 2). cache_dir: True for the default
    cache folder, a folder, or False for none. decoder: "auto", "decord" or "pyav" (``video.py``).
    smooth: MediaPipe's temporal filters (video mode). smoothing_fps: None to filter on the
    frames' real times; a rate to pretend frames come at it (30 reproduces MediaPipe's legacy
    ``solutions.pose``). max_gap: longest run of missing frames, in seconds, to interpolate.
    model_dir: where the two ``.tflite`` files are (default: ``assets/pose``).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        cache_dir: str | os.PathLike | bool = True,
        decoder: str = "auto",
        smooth: bool = True,
        smoothing_fps: float | None = None,
        max_gap: float = MAX_GAP_SECONDS,
        model_dir: str | os.PathLike | None = None,
    ):
        self.net = BlazePose(model_dir, threads)
        self.models = models_digest(model_dir)
        self.cache: PoseCache | None = None
        if cache_dir is True:
            self.cache = PoseCache()
        elif cache_dir not in (False, None):
            self.cache = PoseCache(cache_dir)  # type: ignore[arg-type]
        self.decoder, self.smooth, self.smoothing_fps, self.max_gap = decoder, smooth, smoothing_fps, max_gap

    def key(self, path: str | os.PathLike, fps: float | None, crop: Box | None) -> dict[str, Any]:
        """Everything that determines a video's poses."""
        memo = self.cache.root / "files" if self.cache is not None else None
        return {
            "video": file_digest(path, memo),
            "fps": None if fps is None else float(fps),
            "crop": None if crop is None else list(crop),
            "models": self.models,
            "version": PIPELINE_VERSION,
            "decoder": self.decoder,
            "smooth": self.smooth,
            "smoothing_fps": self.smoothing_fps,
            "max_gap": self.max_gap,
        }

    def extract(
        self,
        path: str | os.PathLike,
        *,
        fps: float | None = None,
        crop: Box | str | None = None,
        on_progress: Progress | None = None,
    ) -> PoseSequence:
        """The poses of one person in a video's frames (every frame, or ``fps`` per second)."""
        if fps is not None and not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise ConfigError(f"fps must be a positive number or None for every frame, got {fps!r}")
        box = None if crop is None else parse_crop(crop) if isinstance(crop, str) else check_crop(crop)
        path = Path(path)
        check_video_file(path)
        key = None
        if self.cache is not None:  # looked up before the probe: a hit never reads the video
            key = self.key(path, fps, box)
            hit = self.cache.get(key)
            if hit is not None:
                if on_progress:
                    on_progress(len(hit), len(hit), f"{path.name}: {len(hit)} poses from the cache")
                return hit
        seq = self._run(path, fps, box, on_progress)
        if key is not None and self.cache is not None:
            try:
                self.cache.put(key, seq)
            except OSError as exc:  # a full or read-only disk must not lose the result
                log.warning("could not write the pose cache (%s)", exc)
        return seq

    def _run(
        self, path: Path, fps: float | None, box: Box | None, on_progress: Progress | None
    ) -> PoseSequence:
        info = probe_video(path)
        size = _MAX_SHORT_SIDE if min(info.width, info.height) > _MAX_SHORT_SIDE else None
        scale = 1.0 if size is None else size / min(info.width, info.height)
        chunk = int(np.clip(_CHUNK_BYTES // max(1, info.width * info.height * 3 * scale**2), 1, 32))
        stream = open_video(path, fps=fps, size=size, chunk=chunk, backend=self.decoder)
        if box is not None:
            box = check_crop(box, info.width, info.height)
            decoded = (round(info.width * scale), round(info.height * scale))
            dbox = check_crop([v * scale for v in box], *decoded)
        else:
            dbox = None
        tracker = _Tracker(self.net, dbox, self.smooth, self.smoothing_fps)
        meter = _Meter(len(stream), on_progress, path.name)
        meter(0)
        with _Prefetch(stream, lambda frames: frames, PREFETCH, STALL_SECONDS) as chunks:
            seq = self._follow(tracker, chunks, stream.timestamps, stream.indices, meter)
        seq.width, seq.height = info.width, info.height
        seq.meta.update(source=path.name, crop=",".join(map(str, box or ())))
        found = int((seq.status == DETECTED).sum())
        if found == 0:
            log.warning(
                "%s: no person found in any of its %d frames; its poses are all missing", path.name, len(seq)
            )
        if on_progress:
            on_progress(len(seq), len(seq), f"{path.name}: a person in {found} of {len(seq)} frames")
        return seq

    def _follow(
        self,
        tracker: _Tracker,
        chunks: Iterable[tuple[np.ndarray, np.ndarray]],
        planned: np.ndarray,
        indices: np.ndarray,
        meter: _Meter | None = None,
    ) -> PoseSequence:
        """Track through ``chunks`` of (frames, times); one result per planned time."""
        total = len(planned)
        image = np.full((total, NUM_LANDMARKS, 4), np.nan, dtype=np.float32)
        world = np.full((total, NUM_LANDMARKS, 4), np.nan, dtype=np.float32)
        status = np.full(total, MISSING, dtype=np.uint8)
        blank = np.zeros(total, dtype=bool)
        slot, size = 0, (0, 0)
        for frames, stamps in chunks:
            flat = blank_frames(frames)
            for frame, t, is_blank in zip(frames, stamps, flat, strict=True):
                # a damaged file may skip frames: place each by its timestamp
                slot = max(slot, int(np.searchsorted(planned, t - 1e-6)))
                if slot >= total:
                    break
                size = frame.shape[1], frame.shape[0]
                blank[slot] = is_blank
                found = tracker.step(frame, float(t))
                if found is not None:
                    image[slot], world[slot], status[slot] = found.image, found.world, DETECTED
                slot += 1
            if meter is not None:
                meter(min(slot, total))
        seq = PoseSequence(
            image, world, status, np.asarray(planned, dtype=np.float64), np.asarray(indices, dtype=np.int64),
            *size, {"model": "blazepose-full"}, blank,
        )  # fmt: skip
        return interpolate_gaps(seq, self.max_gap)

    def track(
        self,
        frames: np.ndarray,
        times: np.ndarray | None = None,
        *,
        crop: Box | str | None = None,
        indices: np.ndarray | None = None,
    ) -> PoseSequence:
        """Poses in frames already decoded, in order: (T, H, W, 3) uint8 RGB. ``times`` in
        seconds (default: 30 frames/s); ``indices`` the frames' numbers (default 0, 1, ...)."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
            raise DataError(
                f"expected frames as a (T, H, W, 3) uint8 array, not {frames.shape} {frames.dtype}"
            )
        t = len(frames)
        times = np.arange(t) / 30.0 if times is None else np.asarray(times, dtype=np.float64)
        indices = np.arange(t) if indices is None else np.asarray(indices)
        if len(times) != t or len(indices) != t:
            raise DataError("give one time and one index per frame")
        box = None if crop is None else parse_crop(crop) if isinstance(crop, str) else check_crop(crop)
        box = None if box is None else check_crop(box, frames.shape[2], frames.shape[1])
        tracker = _Tracker(self.net, box, self.smooth, self.smoothing_fps)
        seq = self._follow(tracker, [(frames, times)], times, indices)
        seq.width, seq.height = frames.shape[2], frames.shape[1]
        return seq

    def estimate_image(self, rgb: np.ndarray, crop: Box | str | None = None) -> PoseSequence:
        """The pose in one picture (H, W, 3) uint8 RGB, detector always (static mode): a
        one-frame sequence, MISSING where nobody is found."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 2:
            raise DataError(f"expected an RGB picture, an (H, W, 3) uint8 array, not {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        box = None if crop is None else parse_crop(crop) if isinstance(crop, str) else check_crop(crop)
        box = None if box is None else check_crop(box, w, h)
        found = _Tracker(self.net, box, smooth=False, smoothing_fps=None).step(np.ascontiguousarray(rgb), 0.0)
        image = np.full((1, NUM_LANDMARKS, 4), np.nan, dtype=np.float32)
        world = image.copy()
        status = np.array([MISSING], dtype=np.uint8)
        if found is not None:
            image[0], world[0], status[0] = found.image, found.world, DETECTED
        meta = {"source": "image", "model": "blazepose-full"}
        return PoseSequence(image, world, status, np.zeros(1), np.zeros(1, dtype=np.int64), w, h, meta)


def pose_of_frames(frames: Any, times: Any = None) -> PoseSequence:
    """The pose in ImageNet-normalised frames (T, 3, H, W), tracked as in a video (30 per second
    where ``times`` is None): what ``CARLModel.embed_frames`` needs for a model of pose."""
    from .preprocess import to_uint8_frames

    pictures = to_uint8_frames(frames)
    t = None if times is None else np.asarray(times, dtype=np.float64)
    return PoseExtractor(cache_dir=False).track(pictures, t)


def extract_pose(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    crop: Box | str | None = None,
    on_progress: Progress | None = None,
    cache_dir: str | os.PathLike | bool = True,
    decoder: str = "auto",
) -> PoseSequence:
    """One person's 33 landmarks in every frame of a video (``fps``: that many frames per second).

    Frame k of the result is the k-th frame asked for, with its frame index and time; MISSING
    where nobody was found, INTERPOLATED across short gaps. ``crop`` (x0, y0, x1, y1 pixels, or
    the text "x0,y0,x1,y1") picks the person in that box. Raises VideoError for a file that is no
    readable video, ConfigError for a bad crop box. For many videos, make one ``PoseExtractor``.
    """
    extractor = PoseExtractor(cache_dir=cache_dir, decoder=decoder)
    return extractor.extract(path, fps=fps, crop=crop, on_progress=on_progress)


def estimate_image(rgb: np.ndarray, crop: Box | str | None = None) -> PoseSequence:
    """The pose in one RGB picture (static mode); see ``PoseExtractor.estimate_image``."""
    return PoseExtractor(cache_dir=False).estimate_image(rgb, crop)


__all__ = [
    "MAX_GAP_SECONDS",
    "PIPELINE_VERSION",
    "PoseCache",
    "PoseExtractor",
    "check_crop",
    "estimate_image",
    "extract_pose",
    "parse_crop",
]
