"""The command line end to end on real video files: embed, align (+ export), index, retrieve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from carl_core.cli import main
from carl_core.video import probe_video, read_video
from tests.e2e.studio import make_test_model

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
A, B, C = (str(SAMPLES / f"squat_{s}.mp4") for s in "abc")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(make_test_model(tmp_path_factory.mktemp("cli") / "model.pt"))


def test_embed_writes_embeddings_and_timestamps(ckpt, tmp_path, capsys):
    out = tmp_path / "a.npy"
    assert main(["embed", A, "--checkpoint", ckpt, "--out", str(out), "--fps", "all", "--no-cache"]) == 0
    embs, ts = np.load(out), np.load(tmp_path / "a.timestamps.npy")
    info = probe_video(A)
    assert embs.shape == (info.num_frames, 128) and ts.shape == (info.num_frames,)
    np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    assert main(["embed", A, "--checkpoint", ckpt, "--out", str(out), "--fps", "6"]) == 0
    ts6 = np.load(tmp_path / "a.timestamps.npy")
    assert len(ts6) == pytest.approx(info.duration * 6, abs=2)


def test_align_writes_the_documented_json_and_the_side_by_side_video(ckpt, tmp_path, capsys):
    out, mp4 = tmp_path / "align.json", tmp_path / "sbs.mp4"
    rc = main(["align", A, B, "--checkpoint", ckpt, "--out", str(out), "--fps", "8", "--export", str(mp4),
               "--height", "96"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    al, mp = doc["alignment"], doc["mapping"]
    n_a, n_b = al["n_a"], al["n_b"]
    pa, pb = np.array(al["path_a"]), np.array(al["path_b"])
    assert (pa[0], pb[0], pa[-1], pb[-1]) == (0, 0, n_a - 1, n_b - 1)
    assert set(map(tuple, np.stack([np.diff(pa), np.diff(pb)], 1))) <= {(1, 0), (0, 1), (1, 1)}
    assert len(mp["a_to_b"]) == n_a == len(mp["times_a"]) == len(mp["similarity_a"]) == len(mp["a_to_b_time"])
    assert len(mp["b_to_a"]) == n_b == len(mp["times_b"])
    assert np.all(np.diff(mp["a_to_b"]) >= 0) and np.all(np.diff(mp["b_to_a"]) >= 0)
    assert mp["a_to_b_time"] == [mp["times_b"][j] for j in mp["a_to_b"]]
    assert doc["videos"]["a"]["path"].endswith("squat_a.mp4") and len(doc["videos"]["a"]["frames"]) == n_a
    assert doc["videos"]["a"]["fps_sampled"] == 8.0
    info_a, video = probe_video(A), probe_video(mp4)
    assert video.height == 96 and video.width == 2 * 96 + 8  # two square sides and the gap
    assert video.num_frames == info_a.num_frames and video.fps == pytest.approx(info_a.fps)


def test_path_timeline_export_has_one_frame_per_path_step(ckpt, tmp_path):
    out, mp4 = tmp_path / "align.json", tmp_path / "sbs.mp4"
    rc = main(["align", A, C, "--checkpoint", ckpt, "--out", str(out), "--fps", "8", "--export", str(mp4),
               "--height", "64", "--timeline", "path", "--open-begin", "--open-end",
               "--export-fps", "12"])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    # Open ends: subsequence alignment in the direction that fits better, never a free skip of both.
    assert doc["alignment"]["open_begin"] in ("a", "b", "both") and doc["alignment"]["skip_cost"] == 0
    video = probe_video(mp4)
    assert video.num_frames == len(doc["alignment"]["path_a"]) and video.fps == 12


def test_index_and_retrieve_by_frame_and_by_picture(ckpt, tmp_path, capsys):
    index = tmp_path / "index"
    assert main(["index", "add", A, B, "--checkpoint", ckpt, "--index", str(index), "--fps", "8"]) == 0
    assert main(["index", "add", C, "--index", str(index)]) == 0  # model and fps come from the index
    capsys.readouterr()
    assert main(["index", "list", "--index", str(index)]) == 0
    listing = capsys.readouterr().out
    assert "squat_a.mp4" in listing and "squat_c.mp4" in listing and "3 videos" in listing

    # A frame of an indexed video, its own frames kept: the best hit is that very frame.
    frames, times = read_video(B, indices=[40])
    assert main(["retrieve", "--index", str(index), "--query", f"{B}:40", "-k", "5", "--json",
                 "--exclude-radius", "-1"]) == 0  # fmt: skip
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 5 and hits[0]["video"] == "squat_b.mp4"
    assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert abs(hits[0]["time"] - times[0]) <= 1 / 8 + 1e-6
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)

    # By default the query's neighbourhood in its own video is left out.
    at = f"{B}@{times[0]:.3f}"
    assert main(["retrieve", "--index", str(index), "--query", at, "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert all(h["video"] != "squat_b.mp4" or abs(h["time"] - times[0]) > 1.5 for h in hits)

    # A dropped picture.
    from PIL import Image

    picture = tmp_path / "frame.png"
    Image.fromarray(frames[0]).save(picture)
    assert main(["retrieve", "--index", str(index), "--query", str(picture), "-k", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["query"] == "frame.png" and len(doc["hits"]) == 4


def test_bad_input_exits_2_with_one_clear_line(ckpt, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert main(["align", str(text), A, "--checkpoint", ckpt, "--out", str(tmp_path / "x.json")]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    assert main(["retrieve", "--index", str(tmp_path / "none"), "--query", A]) == 2
    assert "no frame index" in capsys.readouterr().err
    missing = tmp_path / "mine.pt"
    assert main(["index", "add", A, "--index", str(tmp_path / "new"), "--checkpoint", str(missing)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err and not (tmp_path / "new").exists()
    with pytest.raises(SystemExit):
        main(["embed", A, "--checkpoint", ckpt, "--out", str(tmp_path / "e.npy"), "--fps", "fast"])


def test_strip_keeps_the_weights_and_drops_the_training_state(tmp_path, capsys):
    import torch

    from carl_core import load_checkpoint
    from carl_core.checkpoint import model_payload, read_checkpoint, save_checkpoint
    from carl_core.config import load_preset
    from carl_core.model import CARLModel

    cfg = load_preset("small").with_overrides(model={"image_size": 64, "backbone_weights": "random"})
    model = CARLModel(cfg.model)
    moments = {k: torch.randn_like(v) for k, v in model.state_dict().items() if v.is_floating_point()}
    full = save_checkpoint(tmp_path / "last.pt", model_payload(model, cfg, optimizer=moments, step=7, rng={}))
    assert main(["strip", str(full), "--out", str(tmp_path / "small.pt")]) == 0
    raw = read_checkpoint(tmp_path / "small.pt")
    assert set(raw) == {"format", "version", "config", "model", "step"} and raw["step"] == 7
    assert (tmp_path / "small.pt").stat().st_size < 0.6 * full.stat().st_size
    a, b = load_checkpoint(full).state_dict(), load_checkpoint(tmp_path / "small.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_align_with_open_ends_finds_a_inside_padded_b(tmp_path, capsys):
    """``align --open-begin --open-end`` with ImageNet Lite0 features on a pair with a known
    answer (B is A with other footage before and after): every frame of A on its own frame of
    B, the padding left unmatched; with closed ends the padding must be matched somewhere."""
    from tests.padded import PAD, synthetic_pair

    a, b = synthetic_pair(tmp_path)
    common = ["--checkpoint", "imagenet:efficientnet_lite0", "--fps", "all"]
    assert main(["align", str(a), str(b), "--out", str(tmp_path / "closed.json"), *common]) == 0
    assert main(["align", str(a), str(b), "--out", str(tmp_path / "open.json"), "--open-begin", "--open-end",
                 *common]) == 0  # fmt: skip
    closed = json.loads((tmp_path / "closed.json").read_text())["mapping"]
    opened = json.loads((tmp_path / "open.json").read_text())["mapping"]
    n = len(opened["a_to_b"])
    assert opened["a_to_b"] == list(range(PAD, PAD + n)) and closed["a_to_b"] != opened["a_to_b"]
    assert [j for j, c in enumerate(opened["covered_b"]) if c] == list(range(PAD, PAD + n))
    assert all(closed["covered_b"])
    assert min(opened["confidence_a"]) > 0.5
    capsys.readouterr()
    bad = ["align", str(a), str(b), "--out", str(tmp_path / "x.json"), "--checkpoint", "imagenet:vgg"]
    assert main(bad) == 2
    assert "no such ImageNet backbone" in capsys.readouterr().err
