"""Command line: ``python -m carl_core`` or ``carl``.

Every command has ``--help``. A mistake the user can fix (a path that is no video, a checkpoint
of the wrong shape, an unknown preset) prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CarlError

if TYPE_CHECKING:
    from .confidence import ContentKind


class _Bar:
    """A tqdm bar driven by ``on_progress(done, total, message)`` callbacks."""

    def __init__(self, unit: str):
        self.unit = unit
        self.bar: Any = None  # a tqdm bar, made on the first call

    def __call__(self, done: int, total: int, message: str) -> None:
        from tqdm import tqdm

        if self.bar is None or self.bar.total != total:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, unit=self.unit, dynamic_ncols=True, file=sys.stderr)
        self.bar.n = done
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_json(path: Path, data: Any) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


# --- commands ---------------------------------------------------------------------------------


def cmd_synth(a: argparse.Namespace) -> None:
    if a.kind == "motion":
        from .motion import make_motion_dataset

        bar = _Bar("sequence")
        kw = dict(workers=a.workers, on_progress=bar)
        out = make_motion_dataset(a.out, a.per_action, a.seed, a.val_fraction, **kw)
        bar.close()
        print(f"wrote {a.per_action} synthetic pose sequences per action to {out} (index.json)")
        return
    from .synthetic import make_dataset

    bar = _Bar("video")
    out = make_dataset(a.out, num_videos=a.videos, seed=a.seed, on_progress=bar)
    bar.close()
    print(f"wrote {a.videos} synthetic videos to {out}")


def cmd_train(a: argparse.Namespace) -> None:
    from .config import load_preset
    from .train import train

    config = load_preset(a.preset)
    overrides: dict[str, dict[str, Any]] = {"train": {}, "model": {}, "data": {}}
    for key, section, field in (
        ("epochs", "train", "epochs"),
        ("batch_size", "train", "batch_size"),
        ("lr", "train", "lr"),
        ("seed", "train", "seed"),
        ("workers", "train", "num_workers"),
        ("backbone_weights", "model", "backbone_weights"),
        ("num_frames", "data", "num_frames"),
        ("fps", "data", "fps"),
    ):
        if getattr(a, key) is not None:
            overrides[section][field] = getattr(a, key)
    if a.num_frames is not None:
        overrides["model"]["train_len"] = a.num_frames
    if a.cached_features is not None:
        overrides["train"]["cached_features"] = a.cached_features
    if a.weak:
        overrides["loss"] = {"weak": True}
    config = config.with_overrides(**overrides)
    bar = _Bar("step")
    result = train(config, a.data, a.out, device=a.device, resume=a.resume, on_progress=bar)
    bar.close()
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(
        f"trained {result.steps} steps ({result.epochs:.1f} epochs) in {result.seconds:.0f} s; "
        f"last loss {last}; skipped steps {result.skipped_steps}; checkpoint {result.checkpoint}"
    )


def _fps_arg(text: str) -> str | float:
    """``--fps``: "auto" (the device's default rate), "all" (every frame) or frames per second."""
    if text in ("auto", "all"):
        return text
    try:
        fps = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, all or frames per second, not {text!r}") from None
    if not fps > 0:
        raise argparse.ArgumentTypeError(f"fps must be positive, not {text}")
    return fps


_IMAGENET = "imagenet:"  # --checkpoint imagenet:efficientnet_lite0: plain ImageNet features, no CARL head


def _load_model(a: argparse.Namespace) -> Any:
    from . import DEFAULT_CHECKPOINT
    from .checkpoint import load_checkpoint
    from .devices import resolve_device

    if a.checkpoint is None:
        a.checkpoint = str(DEFAULT_CHECKPOINT)
    device = resolve_device(a.device)
    if str(a.checkpoint).startswith(_IMAGENET):
        from .backbone import BACKBONES
        from .features import imagenet_features

        name = str(a.checkpoint)[len(_IMAGENET) :]
        if name not in BACKBONES:
            names = " or ".join(f"{_IMAGENET}{b}" for b in BACKBONES)
            raise CarlError(f"--checkpoint {a.checkpoint}: no such ImageNet backbone; use {names}")
        return imagenet_features(name, device=device)
    return load_checkpoint(a.checkpoint, device=device)


def _embedder(model: Any, a: argparse.Namespace) -> Any:
    from .embed import Embedder

    cache: str | bool = False if a.no_cache else (a.cache_dir or True)
    return Embedder(model, backend=a.backend, cache_dir=cache)


def _resolve_fps(fps: str | float, model: Any) -> float | None:
    from .embed import default_fps

    if fps == "all":
        return None
    return default_fps(model.device) if fps == "auto" else float(fps)


def _embed(embedder: Any, path: str, fps: float | None, crop: str | None = None) -> Any:
    from .video import probe_video

    bar = _Bar("frame")
    try:
        result = embedder.embed(path, fps, on_progress=bar, crop=crop)
    finally:
        bar.close()
    damaged = probe_video(path).damaged  # a cut-off file embeds what it holds: say how much that is
    if damaged:
        print(f"warning: {damaged}", file=sys.stderr)
    return result


def cmd_embed(a: argparse.Namespace) -> None:
    import numpy as np

    from .io import atomic_save_npy

    model = _load_model(a)
    embs, ts = _embed(_embedder(model, a), a.video, _resolve_fps(a.fps, model), a.crop)
    out = Path(a.out)
    atomic_save_npy(out, embs)
    stamps = out.with_suffix(".timestamps.npy")
    atomic_save_npy(stamps, np.asarray(ts))
    print(f"wrote {embs.shape[0]} x {embs.shape[1]} embeddings to {out} (timestamps: {stamps})")


def _content(a: argparse.Namespace, model: Any, ra: Any, rb: Any) -> tuple[Any, ContentKind]:
    """The content view the match confidence checks matches against, and its kind (None with
    --no-content): a pose model's own frame embeddings, else ImageNet features."""
    from .features import ImageNetFeatures
    from .pairing import content_features, pose_content

    if a.no_content:
        return None, "pictures"
    pose = pose_content(ra, rb)
    if pose is not None:
        return pose, "pose"
    embs, times = (ra.embeddings, rb.embeddings), (ra.times, rb.times)
    if isinstance(model, ImageNetFeatures) and model.cfg.backbone == "efficientnet_lite0":
        return embs, "pictures"  # the model is that view already
    from .features import imagenet_features

    embedder = _embedder(imagenet_features("efficientnet_lite0", device=model.device), a)
    out = []
    for path, t in zip((a.video_a, a.video_b), times, strict=True):
        bar = _Bar("frame")
        try:
            out.append(content_features(embedder, path, t, on_progress=bar))
        finally:
            bar.close()
    return tuple(out), "pictures"


def cmd_align(a: argparse.Namespace) -> None:
    from .align import write_alignment_json
    from .pairing import PICTURE_FALLBACK, align_pair, bodiless
    from .video import probe_video

    model = _load_model(a)
    embedder = _embedder(model, a)
    fps = _resolve_fps(a.fps, model)
    ra, rb = _embed(embedder, a.video_a, fps, a.crop_a), _embed(embedder, a.video_b, fps, a.crop_b)
    names = (Path(a.video_a).name, Path(a.video_b).name)
    fallback = []
    if nobody := bodiless(dict(zip(names, (ra, rb), strict=True))):
        where = "; ".join(f"{n}: a readable body in {100 * s:.0f}% of its frames" for n, s in nobody.items())
        fallback.append(
            f"Nobody was found in most frames ({where}). {Path(a.checkpoint).name} compares body poses, "
            f"so this pair is aligned on ImageNet {PICTURE_FALLBACK} features instead, for both videos "
            "(the embeddings of two models cannot be compared). If a person is there, give --crop-a or "
            "--crop-b around them."
        )
        print(f"warning: {fallback[0]}", file=sys.stderr)
        from .features import imagenet_features

        model = imagenet_features(PICTURE_FALLBACK, device=model.device)
        a.checkpoint = f"{_IMAGENET}{PICTURE_FALLBACK}"
        embedder = _embedder(model, a)
        ra, rb = _embed(embedder, a.video_a, fps), _embed(embedder, a.video_b, fps)
    (ea, ta), (eb, tb) = ra, rb
    content, kind = _content(a, model, ra, rb)
    pair = align_pair(
        ea, eb, metric=a.metric, method=a.method, band=a.band, open_begin=a.open_begin, open_end=a.open_end,
        content=content, content_kind=kind, names=names, blank_a=ra.blank, blank_b=rb.blank,
        durations=(probe_video(a.video_a).duration, probe_video(a.video_b).duration),
    )  # fmt: skip
    al, mapping, conf = pair.alignment, pair.mapping, pair.confidence
    videos = {
        side: {"path": str(Path(p).resolve()), "fps_sampled": fps, "frames": r.indices.tolist()}
        for side, p, r in (("a", a.video_a, ra), ("b", a.video_b, rb))
    }
    write_alignment_json(
        a.out, al, mapping, ta, tb, confidence=conf, warnings=[*fallback, *pair.warnings], videos=videos,
        model=str(a.checkpoint),
    )  # fmt: skip
    matched = conf.a[mapping.covered_a]
    print(
        f"aligned {len(ea)} x {len(eb)} frames ({al.method}): cost {al.cost:.3f}, mean match confidence "
        f"{100 * float(matched.mean()) if matched.size else 0:.0f}% (same action: {100 * conf.pair:.0f}% "
        f"likely); wrote {a.out}"
    )
    for text in pair.warnings:
        print(f"warning: {text}", file=sys.stderr)
    if a.export:
        from .export import export_alignment

        bar = _Bar("frame")
        out = export_alignment(
            a.export, a.video_a, a.video_b, al, mapping, ta, tb,
            timeline=a.timeline, confidence=conf, height=a.height, fps=a.export_fps, on_progress=bar,
        )  # fmt: skip
        bar.close()
        print(f"wrote the side-by-side video {out}")


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _open_index(directory: str, must_exist: bool) -> Any:
    from .retrieval import VideoIndex

    if (Path(directory) / "manifest.json").exists():
        return VideoIndex.load(directory)
    if must_exist:
        raise CarlError(f"{directory} holds no frame index; make one with `carl index add VIDEO... --index`")
    return VideoIndex()


def cmd_index(a: argparse.Namespace) -> None:
    from .cache import model_digest
    from .distributed import world

    index = _open_index(a.index, must_exist=a.action == "list")
    if a.action == "list":
        for vid in index.videos:
            print(f"{vid}\t{len(index.get(vid)[1])} frames\t{index.video_path(vid) or ''}")
        made = index.meta.get("checkpoint", "?")
        print(f"{len(index.videos)} videos, {len(index)} frames, made with {made}")
        return
    if not a.videos:
        raise CarlError("name at least one video to add")
    if a.checkpoint is None:
        a.checkpoint = index.meta.get("checkpoint")  # else the default model
    w = world("gloo")  # under torchrun: one share of the videos per process (only barriers cross)
    if w.size > 1 and a.device in ("auto", "cuda"):
        import torch

        a.device = f"cuda:{w.local_rank}" if torch.cuda.is_available() else "cpu"
    model = _load_model(a)
    digest = model_digest(model)
    if index.meta.get("model", digest) != digest:
        raise CarlError(
            f"{a.index} was made with another model ({index.meta.get('checkpoint')}); "
            "use that checkpoint, or a new --index folder"
        )
    fps = _resolve_fps(a.fps, model) if index.meta.get("fps", "unset") == "unset" else index.meta["fps"]
    embedder = _embedder(model, a)
    todo = _last_of_each_name(a.videos)
    if w.size == 1:
        for video in todo:
            index.add(
                Path(video).name, _embed(embedder, video, fps), path=str(Path(video).resolve()), replace=True
            )
            print(f"indexed {Path(video).name}")
    else:
        index = _index_sharded(index, todo, embedder, fps, a.index, w)
        if index is None:  # not rank 0: rank 0 saves the merged index
            return
    index.meta.update(checkpoint=str(Path(a.checkpoint).resolve()), model=digest, fps=fps)
    index.save(a.index)
    print(f"{a.index}: {len(index.videos)} videos, {len(index)} frames")


def _last_of_each_name(videos: list[str]) -> list[str]:
    """The videos to embed, in order: a later video of the same name replaces an earlier one."""
    seen: set[str] = set()
    keep = []
    for video in reversed(videos):
        if Path(video).name not in seen:
            seen.add(Path(video).name)
            keep.append(video)
    return keep[::-1]


def _index_sharded(index: Any, todo: list[str], embedder: Any, fps: float | None, where: str, w: Any) -> Any:
    """Under torchrun: each process embeds its share into a shard; rank 0 merges them in order.

    Video i of ``todo`` goes to process i % size, and the merge takes each from its shard in the
    order of ``todo``: the index equals what one process adding ``todo`` in order would make.
    Returns the merged index on rank 0 (to be saved), None on the others.
    """
    import shutil

    from .distributed import barrier, share
    from .retrieval import VideoIndex

    shards = Path(where) / ".shards"
    shard = VideoIndex(storage=index.storage)
    for video in share(todo, w):
        shard.add(Path(video).name, _embed(embedder, video, fps), path=str(Path(video).resolve()))
        print(f"[rank {w.rank}] indexed {Path(video).name}")
    shard.save(shards / f"rank{w.rank:05d}")
    barrier(w)
    merged = None
    if w.is_main:
        parts = [VideoIndex.load(shards / f"rank{r:05d}") for r in range(w.size)]
        for i, video in enumerate(todo):
            index.merge(parts[i % w.size], [Path(video).name], replace=True)
        shutil.rmtree(shards, ignore_errors=True)
        merged = index
    barrier(w)  # the others leave once every shard is read
    return merged


def _parse_query(text: str) -> tuple[str, int | None, float | None]:
    """IMAGE, VIDEO, VIDEO:FRAME (frame number in the file) or VIDEO@SECONDS."""
    for sep in (":", "@"):
        head, _, tail = text.rpartition(sep)
        if head and not Path(text).exists() and Path(head).exists():
            try:
                value = float(tail)
            except ValueError:
                raise CarlError(f"in --query {text!r}, {tail!r} is not a frame number or time") from None
            return (head, int(value), None) if sep == ":" else (head, None, value)
    return text, None, None


def cmd_retrieve(a: argparse.Namespace) -> None:
    import numpy as np

    index = _open_index(a.index, must_exist=True)
    if a.checkpoint is None:
        a.checkpoint = index.meta.get("checkpoint")  # else the default model
    model = _load_model(a)
    path, frame, seconds = _parse_query(a.query)
    if not Path(path).exists():
        raise CarlError(f"query not found: {path}")
    exclude = None
    if Path(path).suffix.lower() in _IMAGE_SUFFIXES:
        # A picture has no context: compare it with each frame on its own (VideoIndex.frames).
        from PIL import Image, UnidentifiedImageError

        from .embed import embed_picture

        if index.frames is None:
            raise CarlError(f"{a.index} predates picture search: rebuild it with `carl index add`")
        try:
            image = np.asarray(Image.open(path).convert("RGB"))
        except (UnidentifiedImageError, OSError) as e:
            raise CarlError(f"cannot read the picture {Path(path).name}: {e}") from None
        query, where, space = embed_picture(model, image, crop=a.crop), Path(path).name, index.frames
    else:
        from .video import open_video

        fps = index.meta.get("fps") if "fps" in index.meta else _resolve_fps("auto", model)
        res = _embed(_embedder(model, a), path, fps, a.crop)
        all_times = open_video(path).timestamps
        if frame is not None and not 0 <= frame < len(all_times):
            raise CarlError(f"{Path(path).name} has frames 0 to {len(all_times) - 1}, not {frame}")
        t = all_times[frame] if frame is not None else (seconds if seconds is not None else 0.0)
        i = int(np.abs(res.times - t).argmin())
        query, where, space = res.embeddings[i], f"{Path(path).name} at {res.times[i]:.2f} s", index.context
        vid = Path(path).name
        if vid in index and a.exclude_radius >= 0:
            exclude = (vid, i, a.exclude_radius)
    hits = space.query(query, k=a.k, exclude_window=exclude)[0]
    rows = [
        dict(video=h.video_id, frame=h.frame, time=round(h.time, 4), similarity=round(h.similarity, 5))
        for h in hits
    ]
    if a.json:
        print(json.dumps({"query": where, "hits": rows}, indent=2))
        return
    print(f"nearest frames to {where}:")
    for r in rows:
        print(f"  {r['similarity']:.4f}  {r['video']}  frame {r['frame']}  {r['time']:.2f} s")


def cmd_strip(a: argparse.Namespace) -> None:
    from .checkpoint import strip_checkpoint

    out = strip_checkpoint(a.checkpoint, a.out)
    before, after = Path(a.checkpoint).stat().st_size, out.stat().st_size
    print(f"wrote {out}: {after / 2**20:.1f} MB (from {before / 2**20:.1f} MB)")


def cmd_eval(a: argparse.Namespace) -> None:
    from .evaluate import evaluate_dataset, format_metrics

    model = _load_model(a)
    bar = _Bar("video")
    metrics = evaluate_dataset(model, a.data, fps=a.fps, on_progress=bar)
    bar.close()
    print(format_metrics(metrics))
    if a.out:
        _write_json(Path(a.out), metrics)
        print(f"wrote {a.out}")


def cmd_reproduce(a: argparse.Namespace) -> None:
    from .reproduce import reproduce
    from .standins import make_standin

    if a.standin:
        root = Path(a.root)
        if root.exists() and any(root.iterdir()):
            raise CarlError(f"--standin writes a synthetic stand-in into --root, but {root} is not empty")
        bar = _Bar("video")
        make_standin(a.dataset, root, size=a.standin, seed=a.seed or 0, on_progress=bar)
        bar.close()
        print(f"wrote a synthetic {a.dataset} stand-in ({a.standin}) to {root}")
    overrides: dict[str, dict[str, Any]] = {"train": {}}
    for key, field in (("batch_size", "batch_size"), ("lr", "lr"), ("seed", "seed")):
        if getattr(a, key) is not None:
            overrides["train"][field] = getattr(a, key)
    bar = _Bar("step")
    results = reproduce(
        a.dataset,
        a.root,
        a.out,
        epochs=a.epochs,
        checkpoint=a.checkpoint,
        device=a.device,
        config=a.config,
        overrides=overrides,
        on_progress=bar,
    )
    bar.close()
    if results is None:  # a torchrun rank other than 0: it trained, rank 0 evaluates
        return
    print((Path(a.out) / "results.md").read_text())
    print(f"wrote {Path(a.out) / 'results.json'} and {Path(a.out) / 'results.md'}")


# --- parser -----------------------------------------------------------------------------------


def cmd_pose(a: argparse.Namespace) -> None:
    from .embed import default_fps
    from .pose import extract_pose, parse_crop
    from .skeleton import DETECTED, INTERPOLATED, MISSING

    crop = parse_crop(a.crop) if a.crop else None
    fps = None if a.fps == "all" else default_fps("cpu") if a.fps == "auto" else float(a.fps)
    bar = _Bar("frame")
    try:
        seq = extract_pose(a.video, fps=fps, crop=crop, on_progress=bar, cache_dir=not a.no_cache)
    finally:
        bar.close()
    seq.save(a.out)
    counts = {
        name: int((seq.status == s).sum())
        for name, s in (("found", DETECTED), ("interpolated", INTERPOLATED), ("missing", MISSING))
    }
    print(f"wrote {a.out}: {len(seq)} frames, " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carl", description="CARL Studio: frame-wise action representations for long videos."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], None], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    s = add("synth", cmd_synth, "write a synthetic dataset of action videos with frame-level phase labels")
    s.add_argument("--out", required=True, help="output folder (videos/, train.pkl, val.pkl, info.json)")
    s.add_argument("--videos", type=int, default=60, help="number of videos (default 60)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--kind", choices=("videos", "motion"), default="videos",
                   help="videos (stick figures; the default) or motion (body-pose sequences)")  # fmt: skip
    s.add_argument("--per-action", type=int, default=50, help="motion: sequences per action (default 50)")
    s.add_argument("--val-fraction", type=float, default=0.2, help="motion: share of each action in val")
    s.add_argument("--workers", type=int, help="motion: processes (default: up to 2)")

    t = add("train", cmd_train, "train CARL on a folder of videos or a dataset in the authors' format")
    t.add_argument("--data", required=True,
                   help="a folder of videos, a dataset folder with train.pkl, or for pose models "
                        "'motion' (synthetic human motion; 'motion:N' for N sequences an epoch) or a "
                        "folder made by `synth --kind motion`")  # fmt: skip
    t.add_argument("--preset", default="small",
                   help="pouring, penn_action, finegym, small, pose, human, or a YAML file")  # fmt: skip
    t.add_argument("--weak", action="store_true",
                   help="weak supervision: also align videos that share a label (labels.csv video,label; "
                        "one subfolder per label; or the dataset's action labels)")  # fmt: skip
    t.add_argument("--out", required=True, help="run folder: last.pt, epoch_NNNN.pt, log.jsonl, config.yaml")
    t.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    t.add_argument("--batch-size", type=int, help="videos per step")
    t.add_argument("--lr", type=float, help="base learning rate")
    t.add_argument("--seed", type=int, help="random seed")
    t.add_argument("--num-frames", type=int, help="frames per training view")
    t.add_argument("--fps", type=float, help="resample a folder of videos to this frame rate")
    t.add_argument("--workers", type=int, help="data-loading processes")
    t.add_argument("--backbone-weights", help="imagenet, random, or a local state-dict file")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--cached-features", dest="cached_features", action="store_true", default=None,
                   help="train on precomputed frozen-backbone features (fast on CPU)")  # fmt: skip
    g.add_argument("--pixels", dest="cached_features", action="store_false",
                   help="decode and augment frames every step (the paper's setting)")  # fmt: skip

    def model_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--checkpoint",
                        help="a CARL Studio or authors' checkpoint, or imagenet:efficientnet_lite0 (plain "
                             "ImageNet features, no CARL head); default: the bundled model "
                             "(assets/carl_human.pt), for an index the model that made it")  # fmt: skip
        sp.add_argument("--device", default="auto", help="auto, cpu or cuda")
        sp.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"),
                        help="what runs the encoder: ONNX Runtime on CPU (auto), or PyTorch")  # fmt: skip
        sp.add_argument("--cache-dir", help="embedding cache folder (default $CARL_CACHE_DIR or ~/.cache)")
        sp.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")

    fps_help = "frames per second to embed: auto (10 on CPU, 30 on GPU; the default), all, or a number"

    e = add("embed", cmd_embed, "embed the frames of a video")
    e.add_argument("video", help="video file")
    e.add_argument(
        "--out", required=True, help="embeddings .npy (timestamps go to .timestamps.npy beside it)"
    )
    every = "frames per second: all (every frame; the default), auto (10 on CPU, 30 on GPU), or a number"
    e.add_argument("--fps", type=_fps_arg, default="all", help=every)
    crop_help = "x0,y0,x1,y1: pixels of the box around the person to follow (models that read pose)"
    e.add_argument("--crop", help=crop_help)
    model_args(e)

    al = add("align", cmd_align, "align two videos frame by frame (DTW on their embeddings)")
    al.add_argument("video_a", metavar="A", help="first video (it leads the side-by-side export)")
    al.add_argument("video_b", metavar="B", help="second video")
    al.add_argument("--crop-a", help=f"A's box, {crop_help}")
    al.add_argument("--crop-b", help=f"B's box, {crop_help}")
    al.add_argument("--out", required=True, help="alignment JSON (schema in the README)")
    al.add_argument("--export", metavar="MP4", help="also write the aligned side-by-side video here")
    al.add_argument("--method", default="auto", choices=("auto", "exact", "multiscale"), help="DTW method")
    al.add_argument("--metric", default="sqeuclidean", choices=("sqeuclidean", "cosine"), help="frame cost")
    al.add_argument("--band", type=int, help="Sakoe-Chiba band radius in frames")
    al.add_argument("--open-begin", action="store_true", help="either video may have extra frames first")
    al.add_argument("--open-end", action="store_true", help="either video may have extra frames at the end")
    al.add_argument("--height", type=int, default=360, help="export height in pixels (default 360)")
    al.add_argument("--export-fps", type=float, help="export frame rate (default: the leading video's)")
    al.add_argument("--timeline", default="a", choices=("a", "b", "path"),
                    help="export: A at its pace (a), B at its pace (b), or both along the path")  # fmt: skip
    al.add_argument("--fps", type=_fps_arg, default="auto", help=fps_help)
    al.add_argument("--no-content", action="store_true",
                    help="judge matches by the model's embeddings alone, without the content view "
                    "(a pass of ImageNet features; a pose model's own is free): less reliable")  # fmt: skip
    model_args(al)

    ix = add("index", cmd_index, "build a frame index over many videos for retrieval")
    ix.add_argument("action", choices=("add", "list"), help="add videos, or list what the index holds")
    ix.add_argument("videos", nargs="*", metavar="VIDEO", help="videos to add (re-adding one replaces it)")
    ix.add_argument("--index", required=True, help="index folder (created on the first add)")
    ix.add_argument("--fps", type=_fps_arg, default="auto", help=fps_help + "; fixed by the first add")
    model_args(ix)

    r = add("retrieve", cmd_retrieve, "find the frames nearest to a picture or a video frame")
    r.add_argument("--index", required=True, help="index folder made by `carl index add`")
    r.add_argument("--query", required=True, help="IMAGE, VIDEO:FRAME (frame in the file) or VIDEO@SECONDS")
    r.add_argument("-k", type=int, default=10, help="how many frames (default 10)")
    r.add_argument("--exclude-radius", type=int, default=15,
                   help="skip the query video's frames this close to the query (-1: keep them)")  # fmt: skip
    r.add_argument("--json", action="store_true", help="print the hits as JSON")
    r.add_argument("--crop", help=f"the query's box, {crop_help}")
    model_args(r)

    st = add("strip", cmd_strip, "copy a checkpoint with only what inference needs (no optimiser state)")
    st.add_argument("checkpoint", help="a CARL Studio checkpoint (e.g. RUN/last.pt) or one of the authors'")
    st.add_argument("--out", required=True, help="the smaller checkpoint to write")

    v = add("eval", cmd_eval, "evaluate a checkpoint by the paper's protocols on a labelled dataset")
    v.add_argument("--data", required=True, help="dataset folder in the authors' format (train.pkl, val.pkl)")
    v.add_argument("--checkpoint", required=True, help="a CARL Studio checkpoint or one of the authors'")
    v.add_argument("--out", help="write the metrics to this JSON file")
    v.add_argument("--fps", type=float, help="resample videos to this frame rate")
    v.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ps = add("pose", cmd_pose, "extract one person's body pose (33 BlazePose landmarks) in every frame")
    ps.add_argument("video", help="video file")
    ps.add_argument("--out", required=True, help="output .npz (carl_core.skeleton.PoseSequence)")
    ps.add_argument("--fps", type=_fps_arg, default="all", help="all (the default), auto (10) or a number")
    ps.add_argument("--crop", metavar="X0,Y0,X1,Y1", help="box around the person to follow, in pixels")
    ps.add_argument("--no-cache", action="store_true", help="neither read nor write the pose cache")

    rp = add(
        "reproduce", cmd_reproduce, "train or load a model, evaluate it by the paper's protocol, compare"
    )
    rp.add_argument("--dataset", required=True, choices=("pouring", "penn_action", "finegym"))
    rp.add_argument("--root", required=True, help="the dataset as the authors' scripts lay it out")
    rp.add_argument("--out", required=True, help="folder for results.json, results.md and the run")
    rp.add_argument("--epochs", type=int, help="shorten the paper's schedule (for checks)")
    rp.add_argument(
        "--checkpoint", help="evaluate this checkpoint (ours or the authors') instead of training"
    )
    rp.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    rp.add_argument("--config", default="paper", choices=("paper", "tiny"),
                    help="paper (default), or tiny: a CPU-sized check of the harness")  # fmt: skip
    rp.add_argument("--batch-size", type=int, help="videos per step per process (effective: x processes)")
    rp.add_argument("--lr", type=float, help="base learning rate (scale it with the effective batch)")
    rp.add_argument("--seed", type=int, help="random seed")
    rp.add_argument("--standin", choices=("tiny", "small"),
                    help="first write a synthetic stand-in of this size into an empty --root")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        args.fn(args)
    except CarlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
