"""The one restricted unpickler: the authors' dataset pickles load (torch tensors inside lists of
dicts, written with plain ``pickle.dump`` as their scripts do); pickles that run code are refused."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from carl_core import safe_pickle
from carl_core.checkpoint import read_checkpoint
from carl_core.datasets import load_dataset
from carl_core.errors import CheckpointError, DataError


def _their_pouring(labels: list[np.ndarray]) -> list[dict]:
    """As dataset_preparation/tfrecords_to_videos.py builds Pouring's list."""
    return [
        {
            "id": i,
            "video_file": f"videos/pouring_{i:03d}.mp4",
            "frame_label": torch.from_numpy(lab),
            "seq_len": len(lab),
            "name": f"pouring_{i:03d}",
        }
        for i, lab in enumerate(labels)
    ]


LABELS = [np.array([0, 0, 1, 1, 2, 3, 4]), np.array([0, 1, 2, 2, 3, 4, 4, 4])]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pouring_pickle_with_tensor_labels_loads(tmp_path, protocol):
    with open(tmp_path / "train.pkl", "wb") as f:
        pickle.dump(_their_pouring(LABELS), f, protocol=protocol)
    records = load_dataset(tmp_path, "train")
    assert [r.name for r in records] == ["pouring_000", "pouring_001"]
    for r, lab in zip(records, LABELS):
        assert r.frame_label.dtype == np.int64 and np.array_equal(r.frame_label, lab)
        assert r.path == tmp_path / "videos" / f"{r.name}.mp4" and r.seq_len == len(lab) and r.action is None


def test_penn_action_tuple_and_finegym_float_labels_load(tmp_path):
    videos = _their_pouring(LABELS)
    for v, action in zip(videos, (10, 6)):
        v["action_label"] = action
    action_to_indices = [[] for _ in range(13)]
    action_to_indices[10].append(0)
    action_to_indices[6].append(1)
    with open(tmp_path / "val.pkl", "wb") as f:
        pickle.dump((videos, action_to_indices), f)
    assert [r.action for r in load_dataset(tmp_path, "val")] == [10, 6]

    frame_label = -1 * torch.ones(9)  # as finegym_process.py: float, -1 where no element is labelled
    frame_label[2:5] = 41
    frame_label[6:8] = 7
    event = {"id": 0, "name": "abc_E_000010_000020", "video_file": "processed_videos/abc_E_000010_000020.mp4",
             "seq_len": 9, "frame_label": frame_label, "event_label": 3}  # fmt: skip
    with open(tmp_path / "gym99_train_v1.0.pkl", "wb") as f:
        pickle.dump([event], f)
    (record,) = load_dataset(tmp_path, "train")  # FineGym's file name for the train split
    assert record.frame_label.tolist() == [-1, -1, 41, 41, 41, -1, 7, 7, -1]
    assert record.extra["event_label"] == 3


def test_tensor_views_and_numpy_arrays_keep_their_values():
    base = torch.arange(20).view(4, 5)
    data = {"view": base[1:, ::2], "array": np.arange(6.0).reshape(2, 3), "scalar": np.float32(2.5)}
    for protocol in (2, 5):
        out = safe_pickle.loads(pickle.dumps(data, protocol=protocol))
        assert torch.equal(out["view"], base[1:, ::2]) and np.array_equal(out["array"], data["array"])
        assert out["scalar"] == np.float32(2.5)


class _Payload:
    """A pickle that, if it ran, would run ``call(*args)``."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _text(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()


def _getattr_trick(marker) -> bytes:
    """builtins.getattr(builtins.__import__("os"), "system")("touch MARKER"), in raw opcodes."""
    return (
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(" + _text("os") + b"tR" + _text("system")
        + b"tR(" + _text(f"touch {marker}") + b"tR."
    )  # fmt: skip


def _storage_bytes(marker) -> _Payload:
    """A tensor storage as pickle.dump writes one, whose embedded bytes (torch's legacy format) call
    os.system: torch's own ``_load_from_bytes`` reads them with weights_only=False."""
    inner = io.BytesIO()
    torch.save(_Payload(os.system, f"touch {marker}"), inner, _use_new_zipfile_serialization=False)
    return _Payload(torch.storage._load_from_bytes, inner.getvalue())


ATTACKS = {
    "os.system": lambda m: pickle.dumps([{"frame_label": _Payload(os.system, f"touch {m}")}]),
    "eval": lambda m: pickle.dumps(_Payload(builtins.eval, f"open({str(m)!r}, 'w')")),
    "subprocess": lambda m: pickle.dumps(_Payload(subprocess.Popen, ["touch", str(m)])),
    "getattr": _getattr_trick,
    "dotted name": lambda m: b"\x80\x04\x8c\x05torch\x8c\x1c_utils._rebuild_tensor_v2.os\x93.",
    "torch.load": lambda m: pickle.dumps(_Payload(torch.load, str(m))),
    "storage bytes": lambda m: pickle.dumps([{"frame_label": _storage_bytes(m)}]),
    "codecs": lambda m: pickle.dumps(_Payload(__import__("_codecs").encode, "x", "zlib_codec")),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_code_running_dataset_pickles_are_refused(tmp_path, attack):
    marker = tmp_path / "pwned"
    (tmp_path / "train.pkl").write_bytes(ATTACKS[attack](marker))
    with pytest.raises(DataError, match=r"train\.pkl"):
        load_dataset(tmp_path, "train")
    assert not marker.exists()


@pytest.mark.parametrize("attack", ["os.system", "storage bytes", "getattr"])
def test_code_running_checkpoints_are_refused(tmp_path, attack):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint_epoch_00001.pth"
    if attack == "getattr":  # not even a torch file: raw pickle opcodes
        path.write_bytes(_getattr_trick(marker))
    else:
        bad = _Payload(os.system, f"touch {marker}") if attack == "os.system" else _storage_bytes(marker)
        torch.save({"model_state": {}, "cfg": {}, "x": bad}, path)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)
    assert not marker.exists()


def test_refusal_names_what_was_refused():
    with pytest.raises(safe_pickle.RefusedGlobal, match="posix.system|os.system"):
        safe_pickle.loads(pickle.dumps(_Payload(os.system, "true")))
