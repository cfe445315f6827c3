"""Datasets: a folder of videos (no labels), the authors' processed format, synthetic data.

Every source becomes a list of ``VideoRecord``. The authors' format (PennAction, Pouring,
FineGym, and what ``carl_core.synthetic`` writes) is a folder with ``train.pkl`` / ``val.pkl``:
a list of per-video dicts with ``id``, ``name``, ``video_file``, ``seq_len``, ``frame_label``
(and an action index where present); PennAction's pickles hold ``(videos, action_to_indices)``,
FineGym's are named ``gym99_train_v1.0.pkl`` / ``gym99_val.pkl`` (``SPLIT_FILES``). Their
``frame_label`` is a torch tensor; the pickles are read by ``carl_core.safe_pickle``, which
rebuilds tensors and numpy arrays and refuses anything that can run code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import safe_pickle
from .errors import DataError, VideoError

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ogg", ".ogv", ".wmv"}


@dataclass
class VideoRecord:
    path: Path
    name: str
    seq_len: int  # frames the loaders will use (after fps resampling for plain folders)
    frame_label: np.ndarray | None = None  # per-frame phase labels, when known
    action: int | None = None  # video-level label, when known
    extra: dict[str, Any] = field(default_factory=dict)


def read_pickle(path: Path) -> Any:
    """A dataset pickle, read by the one restricted unpickler (plain data and tensors only)."""
    try:
        with path.open("rb") as f:
            return safe_pickle.load(f)
    except safe_pickle.RefusedGlobal as e:
        raise DataError(
            f"refusing to load {e.module}.{e.name} from the dataset pickle {path}: only plain data "
            "(lists, dicts, numpy arrays, torch tensors) is allowed, nothing that can run code"
        ) from None
    except Exception as e:  # a corrupt pickle can raise almost anything
        raise DataError(f"{path} is not a readable dataset pickle ({type(e).__name__}: {e})") from None


# Each split's pickle, in the order looked for: the authors' Pouring and PennAction layout
# (``train.pkl``), then their FineGym layout (``gym99_train_v1.0.pkl``, ``gym99_val.pkl``).
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train.pkl", "gym99_train_v1.0.pkl"),
    "val": ("val.pkl", "gym99_val.pkl"),
    "test": ("test.pkl",),
}


def split_file(path: str | Path, split: str) -> Path | None:
    """The pickle that holds ``split`` in the dataset folder ``path``, or None."""
    for name in SPLIT_FILES.get(split, (f"{split}.pkl",)):
        if (Path(path) / name).is_file():
            return Path(path) / name
    return None


def load_dataset(path: str | Path, split: str = "train", *, fps: float | None = None) -> list[VideoRecord]:
    """Records of a dataset in the authors' format (folder or .pkl), or of a folder of videos."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"dataset not found: {path}")
    if path.suffix == ".pkl":
        return _records_from_pickle(path, path.parent)
    pkl = split_file(path, split)
    if pkl is not None:
        return _records_from_pickle(pkl, path)
    if path.is_dir():
        return video_folder(path, fps=fps)
    raise DataError(f"{path} is neither a folder of videos nor a dataset with {split}.pkl")


def has_split(path: str | Path, split: str) -> bool:
    return split_file(path, split) is not None


def _records_from_pickle(pkl: Path, root: Path) -> list[VideoRecord]:
    data = read_pickle(pkl)
    if isinstance(data, tuple) and len(data) == 2:  # PennAction: (videos, action_to_indices)
        videos, action_to_indices = data
        action_of = {int(i): a for a, idx in enumerate(action_to_indices) for i in idx}
    else:
        videos, action_of = data, {}
    if not isinstance(videos, list) or not videos:
        raise DataError(f"{pkl} holds no videos")
    records = []
    for i, v in enumerate(videos):
        try:
            video_file = Path(v["video_file"])
            labels = v.get("frame_label")
            action = v.get("action_label", v.get("action", action_of.get(i)))
            records.append(
                VideoRecord(
                    path=video_file if video_file.is_absolute() else root / video_file,
                    name=str(v.get("name", video_file.stem)),
                    seq_len=int(v["seq_len"]),
                    frame_label=None if labels is None else _int_labels(labels),
                    action=None if action is None else int(action),
                    extra={k: v[k] for k in ("id", "event_label") if k in v},
                )
            )
        except (KeyError, TypeError) as e:
            raise DataError(f"{pkl}: video {i} lacks the field {e}") from None
    return records


def _int_labels(labels: Any) -> np.ndarray:
    """Per-frame labels as int64: their pickles hold torch tensors (FineGym's are float, -1 unlabelled)."""
    if hasattr(labels, "detach"):  # a torch tensor
        labels = labels.detach().cpu().numpy()
    return np.asarray(labels).astype(np.int64)


LABELS_FILE = "labels.csv"


def folder_labels(path: Path, files: list[Path], csv_file: Path | None = None) -> dict[Path, str]:
    """Video-level labels of the videos under ``path``, for weakly supervised training.

    From a CSV of ``video,label`` rows (``csv_file``, or ``labels.csv`` in the folder; ``video`` is
    the file's name or its path relative to the folder), else from subfolder names when the
    videos sit in two or more subfolders (``squat/a.mp4``, ``golf/b.mp4``). Videos without a
    label are left out of the mapping; an empty mapping means the folder has no labels.
    """
    csv_file = csv_file or (path / LABELS_FILE if (path / LABELS_FILE).is_file() else None)
    if csv_file is not None:
        import csv

        by_name: dict[str, str] = {}
        try:
            with open(csv_file, newline="") as handle:
                for row in csv.reader(handle):
                    if len(row) < 2 or not row[0].strip() or row[0].strip().lower() == "video":
                        continue
                    by_name[row[0].strip()] = row[1].strip()
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise DataError(f"cannot read the labels file {csv_file.name}: {e}") from None
        out = {}
        for f in files:
            rel = f.relative_to(path).as_posix()
            label = by_name.get(rel, by_name.get(f.name, by_name.get(f.stem)))
            if label:
                out[f] = label
        if not out:
            raise DataError(
                f"{csv_file.name} names none of the videos in {path}: its first column must be a video's "
                "file name (or path inside the folder), its second the label"
            )
        return out
    parents = {f.parent for f in files}
    if len(parents) >= 2 and all(p != path for p in parents):
        return {f: f.parent.relative_to(path).as_posix() for f in files}
    return {}


def video_folder(path: Path, *, fps: float | None = None) -> list[VideoRecord]:
    """Every readable video under ``path`` (recursively); unreadable files are reported, not fatal.

    Records carry a video-level label (``action``, and its name in ``extra["label"]``) where the
    folder has them (``folder_labels``).
    """
    from .video import probe_video, sample_indices

    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no videos found in {path} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    records, bad = [], []
    for f in files:
        try:
            info = probe_video(f)
        except VideoError as e:
            bad.append(f"{f.name}: {e}")
            continue
        n = len(sample_indices(info.num_frames, info.fps, fps))
        records.append(VideoRecord(f, f.stem, n, extra={"fps": info.fps, "num_frames": info.num_frames}))
    if not records:
        raise DataError(
            f"none of the {len(files)} video files in {path} could be read: " + "; ".join(bad[:3])
        )
    labels = folder_labels(path, [r.path for r in records])
    names = sorted(set(labels.values()))
    for r in records:
        if r.path in labels:
            r.action = names.index(labels[r.path])
            r.extra["label"] = labels[r.path]
    return records


def group_by_action(records: list[VideoRecord]) -> dict[int | None, list[VideoRecord]]:
    groups: dict[int | None, list[VideoRecord]] = {}
    for r in records:
        groups.setdefault(r.action, []).append(r)
    return groups


def frame_indices(record: VideoRecord, fps: float | None) -> np.ndarray | None:
    """Indices into the decoded file of the record's frames (None: all frames, in order)."""
    src_fps, total = record.extra.get("fps"), record.extra.get("num_frames")
    if fps is None or src_fps is None or total is None:
        return None
    from .video import sample_indices

    return sample_indices(total, src_fps, fps)


def read_record_frames(
    record: VideoRecord, indices: np.ndarray, size: int, fps: float | None = None
) -> np.ndarray:
    """uint8 frames (len(indices), H, W, 3) of a record at indices into its (resampled) sequence.

    Frames are decoded at about ``size`` on their shorter side: what the model needs, and faster.
    """
    from .video import read_video

    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= record.seq_len):
        raise DataError(f"{record.name}: frame index out of range (the record has {record.seq_len} frames)")
    base = frame_indices(record, fps)
    file_idx = indices if base is None else base[indices]
    frames, _ = read_video(record.path, indices=file_idx, size=size)
    if len(frames) != len(indices):
        raise VideoError(f"{record.path}: asked for {len(indices)} frames, decoded {len(frames)}")
    return frames
