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
from typing import Any

from .errors import CarlError


class _Bar:
    """A tqdm bar driven by ``on_progress(done, total, message)`` callbacks."""

    def __init__(self, unit: str):
        self.unit, self.bar = unit, None

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
    config = config.with_overrides(**overrides)
    bar = _Bar("step")
    result = train(config, a.data, a.out, device=a.device, resume=a.resume, on_progress=bar)
    bar.close()
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(
        f"trained {result.steps} steps ({result.epochs:.1f} epochs) in {result.seconds:.0f} s; "
        f"last loss {last}; skipped steps {result.skipped_steps}; checkpoint {result.checkpoint}"
    )


def cmd_embed(a: argparse.Namespace) -> None:
    import numpy as np

    from .checkpoint import load_checkpoint
    from .embed import embed_video
    from .io import atomic_save_npy

    model = load_checkpoint(a.checkpoint, device=a.device if a.device != "auto" else None)
    bar = _Bar("frame")
    embs, ts = embed_video(model, a.video, fps=a.fps, on_progress=bar)
    bar.close()
    out = Path(a.out)
    atomic_save_npy(out, embs)
    stamps = out.with_suffix(".timestamps.npy")
    atomic_save_npy(stamps, np.asarray(ts))
    print(f"wrote {embs.shape[0]} x {embs.shape[1]} embeddings to {out} (timestamps: {stamps})")


def cmd_eval(a: argparse.Namespace) -> None:
    from .checkpoint import load_checkpoint
    from .evaluate import evaluate_dataset, format_metrics

    model = load_checkpoint(a.checkpoint, device=a.device if a.device != "auto" else None)
    bar = _Bar("video")
    metrics = evaluate_dataset(model, a.data, fps=a.fps, on_progress=bar)
    bar.close()
    print(format_metrics(metrics))
    if a.out:
        _write_json(Path(a.out), metrics)
        print(f"wrote {a.out}")


# --- parser -----------------------------------------------------------------------------------


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

    t = add("train", cmd_train, "train CARL on a folder of videos or a dataset in the authors' format")
    t.add_argument("--data", required=True, help="a folder of videos, or a dataset folder with train.pkl")
    t.add_argument("--preset", default="small", help="pouring, penn_action, finegym, small, or a YAML file")
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

    e = add("embed", cmd_embed, "embed the frames of a video")
    e.add_argument("video", help="video file")
    e.add_argument("--checkpoint", required=True, help="a CARL Studio checkpoint or one of the authors'")
    e.add_argument(
        "--out", required=True, help="embeddings .npy (timestamps go to .timestamps.npy beside it)"
    )
    e.add_argument("--fps", type=float, help="sample frames at this rate (default: every frame)")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda")

    v = add("eval", cmd_eval, "evaluate a checkpoint by the paper's protocols on a labelled dataset")
    v.add_argument("--data", required=True, help="dataset folder in the authors' format (train.pkl, val.pkl)")
    v.add_argument("--checkpoint", required=True, help="a CARL Studio checkpoint or one of the authors'")
    v.add_argument("--out", help="write the metrics to this JSON file")
    v.add_argument("--fps", type=float, help="resample videos to this frame rate")
    v.add_argument("--device", default="auto", help="auto, cpu or cuda")
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
