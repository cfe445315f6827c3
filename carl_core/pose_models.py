"""The two BlazePose networks and the arithmetic around them: crops in, detections and landmarks out.

MediaPipe's pose models (``assets/pose``, Apache-2.0, see the NOTICE there), run with LiteRT,
Google's TFLite runtime, the same runtime and XNNPACK kernels MediaPipe runs them with:

- the detector (224 x 224 input, values in [-1, 1]): 2254 SSD anchors, each a box and four
  keypoints; keypoint 0 is the middle of the hips, keypoint 1 a point whose distance from it is
  half the side of a square that holds the whole body;
- the landmark model (256 x 256 crop around the body, values in [0, 1]): 39 landmarks (the 33 of
  ``skeleton.NAMES``, then 2 auxiliary ones that give the next frame's crop, then 4 unused) as
  x, y, z in crop pixels with visibility and presence logits; a 64 x 64 heatmap per landmark
  that refines x and y; the same landmarks in metres (world); a person-present score.

Geometry follows MediaPipe's calculators (ImageToTensor, SsdAnchors, TensorsToDetections,
NonMaxSuppression, AlignmentPointsRects, RectTransformation, TensorsToLandmarks,
RefineLandmarksFromHeatmap, LandmarkProjection, WorldLandmarkProjection), written anew from
what they compute. A region is a rotated rectangle in frame pixels; a crop maps its corners onto
the tensor's corners, sampled bilinearly like OpenCV's warp (pixel centres at whole numbers,
1/32-pixel coordinates, the result rounded to bytes).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .errors import WeightsError

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "pose"
DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"

DETECTOR_SIZE, LANDMARK_SIZE, HEATMAP_SIZE = 224, 256, 64
NUM_MODEL_LANDMARKS = 39  # 33 body landmarks, 2 auxiliary (hips' middle, body scale), 4 unused
AUX = slice(33, 35)
MIN_DETECTION_SCORE = 0.5  # MediaPipe's min_detection_confidence
MIN_PRESENCE_SCORE = 0.5  # MediaPipe's min_tracking_confidence: below it, the person is lost
NMS_IOU = 0.3
ROI_SCALE = 1.25  # the crop is this much larger than the body's square
_HEATMAP_KERNEL, _HEATMAP_MIN_CONFIDENCE = 7, 0.5


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle in frame pixels: centre, size, and rotation in radians (clockwise on
    screen, y pointing down; 0 for an upright body)."""

    cx: float
    cy: float
    w: float
    h: float
    rotation: float = 0.0

    def to_frame(self, uv: np.ndarray) -> np.ndarray:
        """Points (..., 2) in the rectangle's unit square (0 to 1, y down) -> frame pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        lx, ly = (uv[..., 0] - 0.5) * self.w, (uv[..., 1] - 0.5) * self.h
        return np.stack([self.cx + c * lx - s * ly, self.cy + s * lx + c * ly], axis=-1)

    def shifted(self, dx: float, dy: float) -> Rect:
        return Rect(self.cx + dx, self.cy + dy, self.w, self.h, self.rotation)

    def letterboxed(self) -> Rect:
        """The square rectangle that holds this one, for a square tensor that keeps the aspect."""
        side = max(self.w, self.h)
        return Rect(self.cx, self.cy, side, side, self.rotation)


def normalize_angle(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def body_rect(centre: np.ndarray, scale_point: np.ndarray) -> Rect:
    """The landmark model's region from two points in pixels: the hips' middle and the point
    whose distance gives the body's size. Upright when the second point is straight above."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    side = 2.0 * math.hypot(dx, dy) * ROI_SCALE
    rotation = normalize_angle(math.pi / 2 - math.atan2(-dy, dx))
    return Rect(float(centre[0]), float(centre[1]), side, side, rotation)


# --------------------------------------------------------------------------- crops


def crop(frame: np.ndarray, rect: Rect, size: int, *, replicate: bool) -> np.ndarray:
    """(size, size, 3) float32 in 0..255: ``rect`` of an (H, W, 3) uint8 frame, bilinear.

    Outside the frame: the nearest edge pixel (``replicate``, the landmark crop) or black (the
    detector's letterbox)."""
    h, w = frame.shape[:2]
    grid = np.arange(size, dtype=np.float32) / size - 0.5
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    lx, ly = grid[None, :] * rect.w, grid[:, None] * rect.h  # [row, col]
    # OpenCV's 1/32-pixel coordinates
    x = np.round((rect.cx + c * lx - s * ly) * 32.0) * np.float32(1 / 32)
    y = np.round((rect.cy + s * lx + c * ly) * 32.0) * np.float32(1 / 32)
    x0f, y0f = np.floor(x), np.floor(y)
    fx, fy = x - x0f, y - y0f
    x0, y0 = x0f.astype(np.int64), y0f.astype(np.int64)
    flat = frame.reshape(-1, 3)
    out = np.zeros((size, size, 3), dtype=np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        ys = y0 + dy
        row = np.clip(ys, 0, h - 1) * w
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xs = x0 + dx
            weight = wx * wy
            if not replicate:
                weight *= (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
            out += np.take(flat, row + np.clip(xs, 0, w - 1), axis=0) * weight[..., None]
    return np.rint(out)


# --------------------------------------------------------------------------- detector


@cache
def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in the detector's unit square (all anchors have size 1).

    Strides 8, 16, 32, 32, 32 over 224 px; each layer has two anchors per cell (aspect 1 and the
    interpolated scale), and layers of the same stride share one grid."""
    centres = []
    strides = (8, 16, 32, 32, 32)
    layer = 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])
        cells = math.ceil(DETECTOR_SIZE / strides[layer])
        per_cell = 2 * same
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Detection:
    """A person found by the detector, in frame pixels."""

    score: float
    box: np.ndarray  # (4,) x0, y0, x1, y1
    keypoints: np.ndarray  # (4, 2); 0: hips' middle, 1: body-size point

    def rect(self) -> Rect:
        return body_rect(self.keypoints[0], self.keypoints[1])


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where((inter > 0) & (union > 0), inter / np.where(union > 0, union, 1), 0.0)


def decode_detections(raw_boxes: np.ndarray, raw_scores: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Detector outputs -> [(score, (6, 2) points: box corners then 4 keypoints)], unit square.

    Scores are logits clipped to +-100; boxes and keypoints are offsets from the anchor centre in
    224ths. Overlapping boxes (IoU > 0.3) are merged by a score-weighted mean (MediaPipe's
    weighted non-maximum suppression), best score first."""
    anchors = ssd_anchors()
    scores = _sigmoid(np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0))
    keep = np.flatnonzero(scores >= MIN_DETECTION_SCORE)
    if len(keep) == 0:
        return []
    raw = raw_boxes.reshape(-1, 12)[keep] / DETECTOR_SIZE
    centre = raw[:, 0:2] + anchors[keep]
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)  # x0, y0, x1, y1
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchors[keep][:, None, :]
    order = np.argsort(-scores[keep], kind="stable")
    boxes, keypoints, s = boxes[order], keypoints[order], scores[keep][order]
    out = []
    remaining = np.arange(len(s))
    while len(remaining):
        first = remaining[0]
        similar = _iou(boxes[first], boxes[remaining]) > NMS_IOU
        group = remaining[similar]
        wts = s[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kps = (keypoints[group] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((float(s[first]), np.concatenate([box.reshape(2, 2), kps])))
        remaining = remaining[~similar]
    return out


# --------------------------------------------------------------------------- landmarks


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def refine_from_heatmap(xy: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """Move each landmark (39, 2 in the crop's unit square) to the confidence-weighted mean of
    its 7 x 7 heatmap window, where the window's best confidence is at least 0.5."""
    hm = heatmap.reshape(HEATMAP_SIZE, HEATMAP_SIZE, -1)
    n = xy.shape[0]
    col = np.trunc(xy[:, 0] * HEATMAP_SIZE).astype(np.int64)  # C++ int conversion truncates
    row = np.trunc(xy[:, 1] * HEATMAP_SIZE).astype(np.int64)
    inside = (col >= 0) & (col < HEATMAP_SIZE) & (row >= 0) & (row < HEATMAP_SIZE)
    half = (_HEATMAP_KERNEL - 1) // 2
    offs = np.arange(-half, half + 1)
    cols = col[:, None] + offs  # (n, k)
    rows = row[:, None] + offs
    valid = (cols[:, None, :] >= 0) & (cols[:, None, :] < HEATMAP_SIZE)
    valid = valid & (rows[:, :, None] >= 0) & (rows[:, :, None] < HEATMAP_SIZE)  # (n, k rows, k cols)
    lm = np.arange(n)[:, None, None]
    conf = _sigmoid(
        hm[np.clip(rows, 0, HEATMAP_SIZE - 1)[:, :, None], np.clip(cols, 0, HEATMAP_SIZE - 1)[:, None, :], lm]
    )
    conf = np.where(valid, conf, 0.0)
    total = conf.sum(axis=(1, 2))
    refine = inside & (conf.max(axis=(1, 2)) >= _HEATMAP_MIN_CONFIDENCE) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    mean_col = (conf * cols[:, None, :]).sum(axis=(1, 2)) / safe / HEATMAP_SIZE
    mean_row = (conf * rows[:, :, None]).sum(axis=(1, 2)) / safe / HEATMAP_SIZE
    out = xy.copy()
    out[refine, 0] = mean_col[refine]
    out[refine, 1] = mean_row[refine]
    return out


@dataclass(frozen=True)
class RawLandmarks:
    """One landmark-model pass over a region, mapped back to the frame.

    image: (39, 5) x, y in frame pixels, z in pixels (the scale of x), visibility, presence.
    world: (39, 3) metres, rotated back by the region's rotation (origin between the hips).
    """

    score: float
    image: np.ndarray
    world: np.ndarray


def decode_landmarks(
    landmarks: np.ndarray, flag: np.ndarray, heatmap: np.ndarray, world: np.ndarray, rect: Rect
) -> RawLandmarks:
    raw = landmarks.reshape(NUM_MODEL_LANDMARKS, 5).astype(np.float64)
    uv = refine_from_heatmap(raw[:, :2] / LANDMARK_SIZE, heatmap)
    image = np.empty((NUM_MODEL_LANDMARKS, 5))
    image[:, :2] = rect.to_frame(uv)
    image[:, 2] = raw[:, 2] / LANDMARK_SIZE * rect.w
    image[:, 3:5] = _sigmoid(raw[:, 3:5])
    w = world.reshape(NUM_MODEL_LANDMARKS, 3).astype(np.float64)
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    rotated = np.stack([c * w[:, 0] - s * w[:, 1], s * w[:, 0] + c * w[:, 1], w[:, 2]], axis=1)
    return RawLandmarks(float(np.asarray(flag).reshape(-1)[0]), image, rotated)


# --------------------------------------------------------------------------- the runtime


def model_paths(directory: str | os.PathLike | None = None) -> tuple[Path, Path]:
    d = Path(directory) if directory is not None else ASSETS
    paths = (d / DETECTOR_FILE, d / LANDMARK_FILE)
    for p in paths:
        if not p.is_file():
            raise WeightsError(
                f"The pose model {p} is missing. It ships with CARL Studio in assets/pose/; "
                "reinstall or check out the repository again."
            )
    return paths


def models_digest(directory: str | os.PathLike | None = None) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in model_paths(directory):
        h.update(p.read_bytes())
    return h.hexdigest()


class _Net:
    """One LiteRT interpreter; its outputs by name. An interpreter is not reentrant: a lock."""

    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a broken install
            raise WeightsError(
                "Pose extraction needs LiteRT: pip install ai-edge-litert (see requirements.txt)"
            ) from exc
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray, names: tuple[str, ...]) -> list[np.ndarray]:
        with self.lock:
            self.interpreter.set_tensor(self.input, x[None].astype(np.float32, copy=False))
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(self.outputs[n])[0].copy() for n in names]


class BlazePose:
    """The detector and the landmark model, loaded once. Safe to share between threads."""

    def __init__(self, directory: str | os.PathLike | None = None, threads: int | None = None):
        detector, landmark = model_paths(directory)
        threads = threads or min(2, os.cpu_count() or 1)
        self.detector = _Net(detector, threads)
        self.landmark = _Net(landmark, threads)

    def detect(self, frame: np.ndarray, region: Rect) -> list[Detection]:
        """People in ``region`` of the frame (letterboxed to a square), best score first."""
        square = region.letterboxed()
        x = crop(frame, square, DETECTOR_SIZE, replicate=False) * (2.0 / 255.0) - 1.0
        boxes, scores = self.detector(x, ("Identity", "Identity_1"))
        found = []
        for score, pts in decode_detections(boxes, scores):
            px = square.to_frame(pts)
            found.append(Detection(score, px[:2].reshape(4), px[2:]))
        return found

    def landmarks(self, frame: np.ndarray, rect: Rect) -> RawLandmarks:
        x = crop(frame, rect, LANDMARK_SIZE, replicate=True) * (1.0 / 255.0)
        lms, flag, heatmap, world = self.landmark(x, ("Identity", "Identity_1", "Identity_3", "Identity_4"))
        return decode_landmarks(lms, flag, heatmap, world, rect)
