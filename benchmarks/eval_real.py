"""Does alignment on real people come out right? Events labelled by eye, warped and padded copies.

For each method (a function from a video to per-frame embeddings) and on the real clips of
``../shared/data/real_clips``, three measures:

1. **Labelled pairs** (``tests/data/real_events.json``): both segments of a pair are cut to their
   own files (``real_pairs.cut``), embedded frame by frame, aligned by ``carl_core.align.dtw``
   with its default options, and every labelled event of A is carried to B through the frame
   mapping, and every event of B to A. An event lands when it comes within
   ``max(label tol, 0.1 s of frames)`` of the label (3 frames at 30 fps). Reported per pair and
   averaged over pairs (each pair counts once): the share of events landed, and the mean
   absolute error in % of the target segment's length. ``golf`` counts the swing events of A
   (golfdb) that land in B (cosc428).
2. **Warped copies**: every clip against itself played at a smoothly varying speed (0.6x to
   1.6x, re-encoded), whose true frame map is known: the mean error of the DTW mapping in % of
   the target's length, both ways, over frames outside static stretches (black, fade, title).
   Clips with a person and without one (the pancake, the pool) are reported apart.
3. **Padded copies** (issue 10 item 3; issue 9 "must not encode how far into the clip"): each
   segment against itself with 2 s of other footage before and after: the share of its frames
   whose DTW match in the padded copy (open begin and end on the padded side) is the same frame
   within 2, and the share whose nearest neighbour there is.

Methods (``--methods``, comma-separated):
  pixels16        raw 16x16 RGB pixels, L2-normalised
  imagenet_lite0  frozen ImageNet EfficientNet-Lite0 features, no CARL head
  small_default   the bundled default (assets/carl_small.pt)
  small_real      a `small` model trained on the real clips (--small-real, default
                  /work/team/runs/small_real/last.pt)
  pose_angles     no training: joint angles and limb tilts from body landmarks (--pose-source:
                  MediaPipe's reference landmarks in ../shared/data/real_clips_pose mapped onto
                  each video's frames, or the project's own carl_core.pose extractor)
  pose_angles_sym the same with each left/right pair sorted: blind to mirroring and to
                  landmarks whose sides swap
  checkpoint:PATH any CARL checkpoint (a `pose` or `human` model, a new default)

    python benchmarks/eval_real.py --out results.json
    python benchmarks/eval_real.py --quick --methods pixels16,pose_angles
    python benchmarks/eval_real.py --methods checkpoint:/path/last.pt --pairs golf_two_golfers --skip warp,pad

Videos are cut once into ``~/.cache/carl_studio/real_cuts`` (``CARL_REAL_CUTS``); CARL
embeddings go to the usual content-keyed embedding cache, so a second run is mostly lookups.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import real_pairs as rp  # noqa: E402

Method = Callable[[rp.Video], np.ndarray]

METHODS = ("pixels16", "imagenet_lite0", "small_default", "small_real", "pose_angles", "pose_angles_sym")
SMALL_REAL = Path("/work/team/runs/small_real/last.pt")
QUICK_PAIRS = ("golf_two_golfers", "squat_two_people", "curl_swinging_vs_strict", "routine_reps")
QUICK_WARP = ("golfdb__test_video.mp4", "yuyoujiang__squat.mp4", "decord__flipping_a_pancake.mkv")
QUICK_PAD = ("yuy_rep1", "golfdb_swing", "curl_swinging")
STATIC_KINDS = {"black", "fade", "title", "blurred"}  # nothing moves: no method can place these frames
NEAR = 2  # frames: "the same frame" for padded copies


# ----------------------------------------------------------------------------- methods


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def pixels16(video: rp.Video) -> np.ndarray:
    from carl_core.video import read_video

    frames, _ = read_video(video.path, size=(16, 16))
    return _unit(frames.reshape(len(frames), -1).astype(np.float32))


class carl_model:  # noqa: N801  (a Method, named like the functions it stands beside)
    """Every frame of the video through ``Embedder`` (content-keyed disk cache). A pair is
    embedded as ``carl align`` and the app embed it: where either video shows a readable body in
    under half its frames, both on ImageNet features (``pairing.bodiless``)."""

    def __init__(self, model):
        from carl_core.embed import Embedder

        self.embedder = Embedder(model)
        self._pictures: Embedder | None = None  # made on the first pair that needs it

    def __call__(self, video: rp.Video) -> np.ndarray:
        return self.embedder.embed(video.path).embeddings

    def pair(self, va: rp.Video, vb: rp.Video) -> tuple[np.ndarray, np.ndarray]:
        from carl_core.embed import Embedder
        from carl_core.features import imagenet_features
        from carl_core.pairing import PICTURE_FALLBACK, bodiless

        ra, rb = self.embedder.embed(va.path), self.embedder.embed(vb.path)
        if not bodiless({"a": ra, "b": rb}):
            return ra.embeddings, rb.embeddings
        if self._pictures is None:
            self._pictures = Embedder(imagenet_features(PICTURE_FALLBACK))
        return self._pictures.embed(va.path).embeddings, self._pictures.embed(vb.path).embeddings


def _pair(embed: Method, va: rp.Video, vb: rp.Video) -> tuple[np.ndarray, np.ndarray]:
    """Both videos' embeddings, by the method's own pair rule where it has one."""
    pair = getattr(embed, "pair", None)
    return pair(va, vb) if pair is not None else (embed(va), embed(vb))


# Angle at the middle landmark (BlazePose numbering): elbows, shoulders, hips, knees.
_JOINTS = (
    (11, 13, 15),
    (12, 14, 16),
    (13, 11, 23),
    (14, 12, 24),
    (11, 23, 25),
    (12, 24, 26),
    (23, 25, 27),
    (24, 26, 28),
)
# Limb segments whose tilt from the vertical is read: upper arms, forearms, thighs, shins.
_SEGMENTS = ((11, 13), (12, 14), (13, 15), (14, 16), (23, 25), (24, 26), (25, 27), (26, 28))


def _direction(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-8)


def joint_angles(world: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """(T, 33, >=3) world landmarks (metres, y down) -> (T, 2K) unit-norm rows: each joint angle
    and each limb's and the trunk's tilt from the vertical as (cos, sin). Frames with no person
    (NaN) take the values of the nearest frames (interpolated in time); a video with nobody at
    all gives one constant row. ``symmetric``: each left/right pair is sorted, so a mirror image
    or landmarks whose sides swap (MediaPipe does, on a body seen from the front) read the same."""
    w = np.asarray(world, dtype=np.float64)[..., :3]
    cos = []
    for a, b, c in _JOINTS:
        cos.append((_direction(w[:, a] - w[:, b]) * _direction(w[:, c] - w[:, b])).sum(-1))
    for a, b in _SEGMENTS:
        cos.append(_direction(w[:, b] - w[:, a])[:, 1])
    hips, shoulders = w[:, [23, 24]].mean(1), w[:, [11, 12]].mean(1)
    cos.append(_direction(hips - shoulders)[:, 1])
    c = np.clip(np.stack(cos, axis=1), -1, 1)  # (T, K): left/right pairs side by side, trunk last
    if symmetric:
        pairs = c[:, :-1].reshape(len(c), -1, 2)
        c = np.concatenate([np.sort(pairs, axis=2).reshape(len(c), -1), c[:, -1:]], axis=1)
    t = np.arange(len(c))
    for k in range(c.shape[1]):
        ok = np.isfinite(c[:, k])
        c[:, k] = np.interp(t, t[ok], c[ok, k]) if ok.any() else 1.0
    feats = np.concatenate([c, np.sqrt(1 - c**2)], axis=1)
    return (feats / np.sqrt(c.shape[1])).astype(np.float32)


def pose_angles(source: str, pose_dir: Path, symmetric: bool = False) -> Method:
    """Joint angles from landmarks: MediaPipe's reference for the clip frames behind each frame
    (``source="mediapipe"``), or the project's own extractor run on the video (``"carl"``)."""
    if source == "mediapipe":
        cache: dict[str, np.ndarray] = {}

        def world_of(clip: str) -> np.ndarray:
            if clip not in cache:
                with np.load(pose_dir / f"{clip}.pose.npz") as d:
                    cache[clip] = d["world"]
            return cache[clip]

        def method(video: rp.Video) -> np.ndarray:
            return joint_angles(np.concatenate([world_of(c)[idx] for c, idx in video.sources]), symmetric)

        return method
    if source == "carl":
        try:
            from carl_core.pose import extract_pose
        except ImportError:
            raise SystemExit("--pose-source carl needs carl_core.pose, which this checkout lacks") from None
        return lambda video: joint_angles(extract_pose(video.path).world, symmetric)
    raise SystemExit(f"--pose-source must be mediapipe or carl, not {source!r}")


def make_method(name: str, args: argparse.Namespace) -> Method:
    if name == "pixels16":
        return pixels16
    if name in ("pose_angles", "pose_angles_sym"):
        return pose_angles(args.pose_source, args.pose_dir, symmetric=name.endswith("_sym"))
    import torch

    torch.set_num_threads(args.threads)
    if name == "imagenet_lite0":
        from carl_core.features import imagenet_features

        return carl_model(imagenet_features("efficientnet_lite0"))
    from carl_core.checkpoint import load_checkpoint

    paths = {"small_default": ROOT / "assets" / "carl_small.pt", "small_real": args.small_real}
    if name in paths:
        path = Path(paths[name])
    elif name.startswith("checkpoint:"):
        path = Path(name.split(":", 1)[1])
    else:
        raise SystemExit(f"unknown method {name!r}; known: {', '.join(METHODS)}, checkpoint:PATH")
    if not path.is_file():
        raise SystemExit(f"{name}: no checkpoint at {path}")
    return carl_model(load_checkpoint(path, device="cpu"))


# ----------------------------------------------------------------------------- measures


def eval_pairs(embed: Callable[[rp.Video], np.ndarray], labels: rp.Labels, pairs, clips: Path) -> dict:
    out = {}
    for pair in pairs:
        sa, sb = labels.segments[pair.a], labels.segments[pair.b]
        va, vb = rp.cut(clips, sa), rp.cut(clips, sb)
        names = labels.pair_events(pair)
        hits = rp.align_and_carry(
            *_pair(embed, va, vb),
            names,
            [sa.local(e) for e in names],
            [sb.local(e) for e in names],
            [rp.tolerance(sa.events[e].tol, va.fps) for e in names],
            [rp.tolerance(sb.events[e].tol, vb.fps) for e in names],
        )
        out[pair.name] = {**rp.summarise(hits), "hits": [vars(h) | {"landed": h.landed} for h in hits]}
        r = out[pair.name]
        print(f"    {pair.name:28s} landed {r['landed']:.2f}  error {r['error_pct']:5.1f}%")
    return out


def _moving(labels: rp.Labels, clip: str, n: int) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    for st in labels.notes(clip).stretches:
        if st.kind in STATIC_KINDS:
            keep[st.start : st.end] = False
    return keep


def eval_warp(embed, labels: rp.Labels, clip_names, clips: Path) -> dict:
    from carl_core.align import dtw

    out = {}
    for clip in clip_names:
        va = rp.original(clips, clip)
        vb, pos = rp.warped(clips, clip)
        x, y = _pair(embed, va, vb)
        m = dtw(x, y).mapping(x, y)
        where_in_b, source_of_b = rp.true_warp_maps(pos, len(va))
        keep_a = _moving(labels, clip, len(va))
        keep_b = keep_a[np.rint(source_of_b).astype(int)]
        err_ab = np.abs(m.a_to_b - where_in_b)[keep_a].mean() / len(vb) * 100
        err_ba = np.abs(m.b_to_a - source_of_b)[keep_b].mean() / len(va) * 100
        out[clip] = {
            "person": labels.notes(clip).person,
            "frames": len(va),
            "warped_frames": len(vb),
            "error_pct": float((err_ab + err_ba) / 2),
            "error_pct_a_to_b": float(err_ab),
            "error_pct_b_to_a": float(err_ba),
        }
        print(f"    {clip:42s} warp error {out[clip]['error_pct']:.2f}%")
    return out


def eval_pad(embed, labels: rp.Labels, seg_names, clips: Path) -> dict:
    from carl_core.align import dtw

    out = {}
    for name in seg_names:
        seg = labels.segments[name]
        va = rp.cut(clips, seg)
        vb, off = rp.padded(clips, seg)
        x, y = _pair(embed, va, vb)
        truth = np.arange(len(x)) + off
        open_ = dtw(x, y, open_begin="b", open_end="b").mapping(x, y).a_to_b
        closed = dtw(x, y).mapping(x, y).a_to_b
        nn = np.argmin((y**2).sum(1)[None, :] - 2 * x @ y.T, axis=1)  # |x - y|^2 less |x|^2
        out[name] = {
            "frames": len(x),
            "padding": off,
            "dtw_open": float(np.mean(np.abs(open_ - truth) <= NEAR)),
            "dtw_closed": float(np.mean(np.abs(closed - truth) <= NEAR)),
            "nearest": float(np.mean(np.abs(nn - truth) <= NEAR)),
        }
        r = out[name]
        print(f"    {name:20s} padded: DTW (open) {r['dtw_open']:.2f}  nearest {r['nearest']:.2f}")
    return out


def summary(res: dict) -> dict:
    s: dict[str, float | str] = {}
    if res.get("pairs"):
        pairs = res["pairs"].values()
        s["landed"] = float(np.mean([p["landed"] for p in pairs]))
        s["error_pct"] = float(np.mean([p["error_pct"] for p in pairs]))
        golf = res["pairs"].get("golf_two_golfers")
        if golf:
            ab = [h for h in golf["hits"] if h["direction"] == "a->b"]
            s["golf"] = f"{sum(h['landed'] for h in ab)}/{len(ab)}"
    if res.get("warp"):
        for key, person in (("warp_people_pct", True), ("warp_no_person_pct", False)):
            vals = [w["error_pct"] for w in res["warp"].values() if w["person"] == person]
            if vals:
                s[key] = float(np.mean(vals))
    if res.get("pad"):
        for key in ("dtw_open", "nearest"):
            s[f"pad_{key}"] = float(np.mean([p[key] for p in res["pad"].values()]))
    return s


COLUMNS = (
    ("landed", "events landed", "{:.2f}"),
    ("error_pct", "event error %", "{:.1f}"),
    ("golf", "golf A->B", "{}"),
    ("warp_people_pct", "warp error % (people)", "{:.2f}"),
    ("warp_no_person_pct", "warp error % (no person)", "{:.2f}"),
    ("pad_dtw_open", "padded: DTW same frame", "{:.2f}"),
    ("pad_nearest", "padded: nearest same frame", "{:.2f}"),
)


def markdown(results: dict, pair_names: list[str]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r["summary"] for r in results.values())]
    lines = ["| method | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in results.items():
        cells = [c[2].format(r["summary"][c[0]]) if c[0] in r["summary"] else "" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if pair_names and any(r.get("pairs") for r in results.values()):
        lines += ["", "| pair (events landed, both ways) | " + " | ".join(results) + " |"]
        lines.append("|---" * (len(results) + 1) + "|")
        for p in pair_names:
            cells = [
                f"{r['pairs'][p]['landed']:.2f}" if p in r.get("pairs", {}) else "" for r in results.values()
            ]
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated (see the module doc)")
    ap.add_argument("--pairs", default="", help="comma-separated pair names (default: all)")
    ap.add_argument("--quick", action="store_true", help="4 pairs, 3 warped clips, 3 padded segments")
    ap.add_argument("--skip", default="", help="comma-separated measures to skip: pairs, warp, pad")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--labels", type=Path, default=rp.LABELS)
    ap.add_argument("--clips", type=Path, default=rp.REAL_CLIPS)
    ap.add_argument("--pose-dir", type=Path, default=rp.REAL_POSE, help="MediaPipe reference landmarks")
    ap.add_argument("--pose-source", default="mediapipe", help="mediapipe or carl (landmarks of pose_angles)")
    ap.add_argument("--small-real", type=Path, default=SMALL_REAL, help="checkpoint of small_real")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)

    if not args.clips.is_dir():
        raise SystemExit(f"no real clips at {args.clips}; set CARL_REAL_CLIPS or --clips")
    labels = rp.load_labels(args.labels)
    problems = rp.check_labels(labels, args.clips)
    if problems:
        raise SystemExit("the labels have problems:\n  " + "\n  ".join(problems))
    skip = set(filter(None, args.skip.split(",")))
    wanted = [p for p in args.pairs.split(",") if p]
    unknown = set(wanted) - {p.name for p in labels.pairs}
    if unknown:
        raise SystemExit(f"unknown pairs: {', '.join(sorted(unknown))}")
    pairs = [
        p for p in labels.pairs if (p.name in wanted if wanted else not args.quick or p.name in QUICK_PAIRS)
    ]
    clip_files = sorted(p.name for p in args.clips.iterdir() if p.suffix.lower() not in (".md", ".txt"))
    warp_clips = list(QUICK_WARP) if args.quick else clip_files
    pad_segments = list(QUICK_PAD) if args.quick else sorted({s for p in pairs for s in (p.a, p.b)})

    counts = f"{len(pairs)} pairs, {len(warp_clips)} warped clips, {len(pad_segments)} padded segments"
    print(f"# real-clip alignment: {counts}")
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, load average {_load()}")
    results: dict[str, dict] = {}
    for name in filter(None, args.methods.split(",")):
        print(f"\n## {name}", flush=True)
        method = make_method(name, args)
        memo: dict[Path, np.ndarray] = {}
        seconds = [0.0]

        def embed(video: rp.Video, method=method, memo=memo, seconds=seconds, name=name) -> np.ndarray:
            if video.path not in memo:
                t = time.perf_counter()
                memo[video.path] = method(video)
                seconds[0] += time.perf_counter() - t
                if len(memo[video.path]) != len(video):
                    rows = len(memo[video.path])
                    raise RuntimeError(f"{name} gave {rows} rows for {len(video)} frames of {video.path}")
            return memo[video.path]

        if (pair := getattr(method, "pair", None)) is not None:  # keep the method's pair rule

            def timed_pair(va: rp.Video, vb: rp.Video, pair=pair, seconds=seconds):
                t = time.perf_counter()
                out = pair(va, vb)
                seconds[0] += time.perf_counter() - t
                return out

            embed.pair = timed_pair  # type: ignore[attr-defined]

        res: dict = {}
        if "pairs" not in skip:
            res["pairs"] = eval_pairs(embed, labels, pairs, args.clips)
        if "warp" not in skip:
            res["warp"] = eval_warp(embed, labels, warp_clips, args.clips)
        if "pad" not in skip:
            res["pad"] = eval_pad(embed, labels, pad_segments, args.clips)
        res["summary"] = summary(res)
        res["embed_seconds"] = seconds[0]
        results[name] = res

    table = markdown(results, [p.name for p in pairs])
    print(f"\n# load average {_load()}\n")
    print(table)
    doc = {
        "meta": {
            "labels": str(args.labels),
            "pairs": [p.name for p in pairs],
            "warp_clips": warp_clips,
            "pad_segments": pad_segments,
            "tolerance": f"max(label tol, ceil({rp.TOLERANCE_SECONDS} s x fps)) frames",
            "pose_source": args.pose_source,
            "load_average": _load(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "methods": results,
        "table": table,
    }
    if args.out:
        from carl_core.io import atomic_open

        with atomic_open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"\nwrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
