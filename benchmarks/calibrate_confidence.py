"""Fit the match-confidence models (`carl_core.confidence`) and report how well they are calibrated.

Labelled pairs, made without any real clip: synthetic videos (`carl_core.synthetic`) whose every
frame has a phase and a progress through it, so its pose position ``pos = phase - 1 + progress``
is known (0 while idle before the action, the last key's index while idle after it). A frame of
A matched to a frame of B is *right* when both show the same action and their positions differ
by at most a quarter of a phase; frames of footage inserted from another action, and black
frames, correspond to nothing, so any match of theirs is wrong. Pairs:

- same action, two different videos (different person, colours, timing, background);
- different actions (nothing corresponds anywhere);
- same action where B has a black stretch at its end (a camera left running), or A has footage
  of another action at its end (someone walks off), or both (the issue's squat pair);
- same action where B is padded with other footage before and after.

Each pair is aligned closed and with open ends (`dtw` default), embedded by the default model
(``assets/carl_small.pt``) and by ImageNet EfficientNet-Lite0 features, with the content view
(Lite0 features) and without. Videos are split by index: pairs among the first 60% fit the
models, pairs among the rest only measure them (held out: calibration error, AUC, Brier score).

    python benchmarks/calibrate_confidence.py                  # writes assets/confidence.json
    python benchmarks/calibrate_confidence.py --per-action 4   # quicker, for a look
    python benchmarks/calibrate_confidence.py --pose           # pose models' frame_pose, pair_pose
    python benchmarks/calibrate_confidence.py --real ../shared/data/real_clips   # check on real pairs

``--pose`` fits the models for pose models instead (`make_motion_clips`): synthetic human motion
(`carl_core.motion`), right within a quarter of the way between two key poses
(``MotionSample.position``), embedded by ``--checkpoint``'s pose stream with the pose descriptor
as the content view; the picture models in the JSON stay as they are.

Embeddings are kept in ``--work`` (default ``~/.cache/carl_studio/calibration``), so refits are quick.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.align import dtw  # noqa: E402
from carl_core.confidence import FEATURES, match_features, model_inputs  # noqa: E402

TOLERANCE = 0.25  # of a movement phase
SIZE = (128, 128)


# ----------------------------------------------------------------------------- clips with known positions


@dataclass
class Clip:
    name: str
    action: str | None  # per clip: the main action
    actions: np.ndarray  # per frame: index of the action shown, -1 where nothing (black, other footage)
    pos: np.ndarray  # per frame: pose position in the action (NaN where nothing)
    blank: np.ndarray  # per frame: a black frame
    period: float | None = None  # a cyclic movement's length in positions (its end is its start)


def _positions(plan) -> np.ndarray:
    labels, prog = plan.timeline.labels, plan.timeline.progress
    k = plan.action.num_phases
    pos = np.where(labels == 0, 0.0, labels - 1 + prog).astype(float)
    return np.where(labels == k - 1, k - 2, pos)


def make_clips(work: Path, per_action: int, seed: int) -> list[Clip]:
    """Render the base videos and their variants to ``work/videos`` (kept between runs)."""
    from carl_core.synthetic import ACTIONS, SynthConfig, plan_video
    from carl_core.video import write_video

    cfg = SynthConfig(size=SIZE, min_len=70, max_len=140)
    names = list(ACTIONS)
    folder = work / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    clips: list[Clip] = []
    plans = {}
    for a, action in enumerate(names):
        for k in range(per_action):
            plans[(a, k)] = plan_video(action, np.random.default_rng([seed, a, k]), cfg)

    def emit(name: str, frames, actions, pos, blank, action) -> None:
        path = folder / f"{name}.mp4"
        if not path.exists():
            write_video(path, frames, cfg.fps)
        clips.append(Clip(name, action, np.asarray(actions), np.asarray(pos, float), np.asarray(blank)))

    black = np.zeros((*SIZE, 3), np.uint8)
    for (a, k), plan in plans.items():
        n = len(plan)
        frames = [plan.render(i) for i in range(n)]
        acts, pos = np.full(n, a), _positions(plan)
        none = np.full(n, -1)
        emit(f"{names[a]}_{k}", frames, acts, pos, np.zeros(n, bool), names[a])
        rng = np.random.default_rng([seed, a, k, 1])
        other = plans[((a + 1 + k % (len(names) - 1)) % len(names), (k + 1) % per_action)]
        other_frames = [other.render(i) for i in range(len(other))]
        # B-side variant: a black tail of 20-60% of the clip.
        t = int(n * rng.uniform(0.2, 0.6))
        blank = np.r_[np.zeros(n, bool), np.ones(t, bool)]
        emit(f"{names[a]}_{k}_blacktail", frames + [black] * t, np.r_[acts, none[:1].repeat(t)],
             np.r_[pos, np.full(t, np.nan)], blank, names[a])  # fmt: skip
        # A-side variant: the last 10-30% replaced by another action (someone walks off).
        cut = n - int(n * rng.uniform(0.1, 0.3))
        tail = other_frames[: n - cut]
        nothing = np.full(len(tail), -1)
        emit(f"{names[a]}_{k}_walkoff", frames[:cut] + tail, np.r_[acts[:cut], nothing],
             np.r_[pos[:cut], nothing * np.nan], np.zeros(cut + len(tail), bool), names[a])  # fmt: skip
        # Padded: 15-40% of other footage before and after.
        p0, p1 = int(n * rng.uniform(0.15, 0.4)), int(n * rng.uniform(0.15, 0.4))
        pre, post = other_frames[:p0], other_frames[-p1:]
        emit(f"{names[a]}_{k}_padded", pre + frames + post,
             np.r_[np.full(len(pre), -1), acts, np.full(len(post), -1)],
             np.r_[np.full(len(pre), np.nan), pos, np.full(len(post), np.nan)],
             np.zeros(len(pre) + n + len(post), bool), names[a])  # fmt: skip
    return clips


# ----------------------------------------------------------------------------- embeddings


def embed_all(work: Path, clips: list[Clip]) -> dict[str, dict[str, np.ndarray]]:
    """{"carl"|"lite0": {clip name: (T, D) embeddings}}, cached as .npy in ``work``."""
    from carl_core.checkpoint import load_checkpoint
    from carl_core.embed import Embedder
    from carl_core.features import imagenet_features

    out: dict[str, dict[str, np.ndarray]] = {}
    for kind in ("carl", "lite0"):
        out[kind] = {}
        embedder = None
        for i, clip in enumerate(clips):
            cached = work / "embeddings" / kind / f"{clip.name}.npy"
            if not cached.exists():
                if embedder is None:
                    model = (
                        load_checkpoint(ROOT / "assets" / "carl_small.pt")
                        if kind == "carl"
                        else imagenet_features("efficientnet_lite0")
                    )
                    embedder = Embedder(model, cache_dir=False)
                embs, _ = embedder.embed(work / "videos" / f"{clip.name}.mp4")
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.save(cached, embs)
                print(f"  embedded {kind} {i + 1}/{len(clips)} {clip.name}", flush=True)
            out[kind][clip.name] = np.load(cached)
    return out


MOTION_SEED = 424_242  # calibration's own stream: neither training nor held-out evaluation draws it


def _splice(pieces):
    """One PoseSequence of ``(sequence, start, stop)`` pieces at one frame rate, one after another."""
    from carl_core.skeleton import PoseSequence

    first, start0, stop0 = pieces[0]
    image, world, status = (
        np.concatenate([getattr(seq, f)[start:stop] for seq, start, stop in pieces])
        for f in ("image", "world", "status")
    )
    n, fps = len(status), 1 / float(np.median(np.diff(first.times[start0:stop0])))
    return PoseSequence(
        image, world, status, np.arange(n) / fps, np.arange(n, dtype=np.int64), first.width, first.height,
        dict(first.meta),
    )  # fmt: skip


def make_motion_clips(work: Path, per_action: int, seed: int, checkpoint: Path):
    """Synthetic human motion (`carl_core.motion`) for the pose models' calibration: per action,
    ``per_action`` performances (other body, camera, tempo, reps), each also with its last 10-30%
    replaced by another action (someone walks off) and padded with another action before and
    after. Returns the clips and their embeddings: {"pose": the checkpoint's pose model,
    "descriptor": `pose_features.pose_descriptor`, the content view}, cached in ``work``."""
    import hashlib

    from carl_core.checkpoint import load_checkpoint
    from carl_core.motion import ACTION_NAMES, ACTIONS, sample_motion
    from carl_core.pose_features import pose_descriptor

    tag = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
    folder = work / f"motion_{seed}_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    model = None
    clips: list[Clip] = []
    embs: dict[str, dict[str, np.ndarray]] = {"pose": {}, "descriptor": {}}
    for a, action in enumerate(ACTION_NAMES):
        period = float(len(ACTIONS[action].keys)) if ACTIONS[action].cyclic else None
        for k in range(per_action):
            rng = np.random.default_rng([seed, a, k])
            base = sample_motion(action, rng)
            fps = base.info["fps"]
            other = sample_motion(ACTION_NAMES[(a + 1 + k % (len(ACTION_NAMES) - 1)) % len(ACTION_NAMES)],
                                  np.random.default_rng([seed, a, k, 1]), fps=fps)  # fmt: skip
            n, m = len(base.pose), len(other.pose)
            r = np.random.default_rng([seed, a, k, 2])
            cut = n - int(n * r.uniform(0.1, 0.3))
            tail = min(n - cut, m)
            p0, p1 = int(n * r.uniform(0.15, 0.4)), int(n * r.uniform(0.15, 0.4))
            p0, p1 = min(p0, m // 2), min(p1, m - m // 2)
            pos, acts = base.position, np.full(n, a)
            variants = {
                "": (base.pose, acts, pos),
                "_walkoff": (_splice([(base.pose, 0, cut), (other.pose, 0, tail)]),
                             np.r_[acts[:cut], np.full(tail, -1)], np.r_[pos[:cut], np.full(tail, np.nan)]),
                "_padded": (_splice([(other.pose, 0, p0), (base.pose, 0, n), (other.pose, m - p1, m)]),
                            np.r_[np.full(p0, -1), acts, np.full(p1, -1)],
                            np.r_[np.full(p0, np.nan), pos, np.full(p1, np.nan)]),
            }  # fmt: skip
            for suffix, (seq, act, ps) in variants.items():
                name = f"{action}_{k}{suffix}"
                cached = folder / f"{name}.npz"
                if not cached.exists():
                    if model is None:
                        model = load_checkpoint(checkpoint)
                        model = getattr(model, "pose", model)  # a fused model's pose stream
                    emb = model.embed_pose(seq).cpu().numpy()
                    np.savez(cached, pose=emb, descriptor=pose_descriptor(seq))
                data = np.load(cached)
                embs["pose"][name], embs["descriptor"][name] = data["pose"], data["descriptor"]
                clips.append(Clip(name, action, act, ps, np.zeros(len(ps), bool), period))
        print(f"  {action}: {per_action} performances ready", flush=True)
    return clips, embs


# ----------------------------------------------------------------------------- pairs and labels


def pairs(clips: list[Clip], per_action: int, train: bool, seed: int) -> list[tuple[Clip, Clip, bool]]:
    """(A, B, same action?) for one split of the videos."""
    cut = int(round(0.6 * per_action))
    ks = range(cut) if train else range(cut, per_action)
    by = {c.name: c for c in clips}
    actions = sorted({c.action for c in clips})
    base = [by[f"{a}_{k}"] for a in actions for k in ks]
    out = []
    for ca, cb in itertools.combinations(base, 2):
        if ca.action == cb.action:
            out.append((ca, cb, True))
    rng = np.random.default_rng(seed + (0 if train else 1))
    diff = [(ca, cb) for ca, cb in itertools.combinations(base, 2) if ca.action != cb.action]
    for i in rng.permutation(len(diff))[: len(out)]:
        out.append((*diff[i], False))
    for a in actions:
        for k1, k2 in itertools.permutations(ks, 2):
            for va, vb in (("", "_blacktail"), ("_walkoff", ""), ("_walkoff", "_blacktail"), ("", "_padded")):
                ca, cb = by.get(f"{a}_{k1}{va}"), by.get(f"{a}_{k2}{vb}")
                if ca is not None and cb is not None:  # pose clips have no black tails
                    out.append((ca, cb, True))
    return out


def labels(ca: Clip, cb: Clip, a_to_b: np.ndarray) -> np.ndarray:
    """1 where frame i of A matched to frame a_to_b[i] of B is right."""
    act_b, pos_b = ca.actions * 0 + cb.actions[a_to_b], cb.pos[a_to_b]
    same = (ca.actions >= 0) & (ca.actions == act_b)
    d = np.abs(ca.pos - pos_b)
    if ca.period is not None:
        d = np.minimum(d, ca.period - d)  # standing before a squat is standing after it
    return (same & (d <= TOLERANCE)).astype(float)


@dataclass
class Rows:
    inputs: list[np.ndarray]
    y: list[np.ndarray]
    group: list[np.ndarray]  # which (model, opened) the row comes from, for reports
    alignment: list[np.ndarray] = field(default_factory=list)  # pair rows: which; frames: 2 * that + side

    def add(self, x: np.ndarray, y: np.ndarray, g: int, alignment: int = -1) -> None:
        self.inputs.append(x)
        self.y.append(y)
        self.group.append(np.full(len(y), g))
        self.alignment.append(np.full(len(y), alignment))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.inputs), np.concatenate(self.y), np.concatenate(self.group)

    def alignments(self) -> np.ndarray:
        return np.concatenate(self.alignment)


GROUPS = [(m, o) for m in ("carl", "lite0") for o in (False, True)]
POSE_GROUPS = [("pose", False), ("pose", True)]


def collect(plist, embs, pose: bool = False) -> dict[str, Rows]:
    """Rows for the fitted models: per frame and per pair, with and without the content view
    (picture models: ImageNet features), or (``pose``) with the pose descriptor as content."""
    names = ("frame_pose", "pair_pose") if pose else ("frame_model", "frame_content", "pair_model",
                                                      "pair_content")  # fmt: skip
    rows = {k: Rows([], [], []) for k in names}
    count = 0
    for ca, cb, same in plist:
        for g, (kind, opened) in enumerate(POSE_GROUPS if pose else GROUPS):
            count += 1
            x, y = embs[kind][ca.name], embs[kind][cb.name]
            al = dtw(x, y, open_begin="both" if opened else False, open_end="both" if opened else False)
            mp = al.mapping(x, y)
            views = match_features(x, y, mp.a_to_b, mp.b_to_a)
            content = "descriptor" if pose else "lite0"
            cviews = match_features(embs[content][ca.name], embs[content][cb.name], mp.a_to_b, mp.b_to_a)
            ya, yb = labels(ca, cb, mp.a_to_b), labels(cb, ca, mp.b_to_a)
            for name, cv in (("pose", cviews),) if pose else (("model", None), ("content", cviews)):
                ia, ib, pin = model_inputs(views, cv)
                keep_a, keep_b = mp.covered_a, mp.covered_b  # uncovered frames have no match to judge
                rows[f"frame_{name}"].add(ia[keep_a], ya[keep_a], g, 2 * count)
                rows[f"frame_{name}"].add(ib[keep_b], yb[keep_b], g, 2 * count + 1)
                rows[f"pair_{name}"].add(pin[None], np.array([float(same)]), g, count)
    return rows


# ----------------------------------------------------------------------------- fitting and measuring


# The direction each input may push the odds: a more distinctive match (z, margin) can only
# raise them, a larger gap to the row's best or a farther nearest neighbour only lower them.
# Without it, correlated inputs take opposite signs that fit synthetic quirks and do not carry
# over to real video.
SIGNS = np.array([1.0, -1.0, 1.0, -1.0, -1.0])


def fit_logistic(x: np.ndarray, y: np.ndarray, signs: np.ndarray, l2: float = 1e-3,
                 weight: np.ndarray | None = None) -> dict:  # fmt: skip
    """L2-regularised logistic regression on standardised inputs by Newton's method, each
    coefficient held to its sign in ``signs`` (or at 0): an active set, refitted until none
    is against its sign."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    xs = np.c_[(x - mean) / scale, np.ones(len(x))]
    sw = np.ones(len(y)) if weight is None else weight
    free = np.ones(xs.shape[1], bool)
    while True:
        w = np.zeros(xs.shape[1])
        xf = xs[:, free]
        reg = np.full(xf.shape[1], l2 * sw.sum())
        reg[-1] = 0.0  # the bias
        wf = np.zeros(xf.shape[1])
        for _ in range(50):
            p = 1 / (1 + np.exp(-np.clip(xf @ wf, -40, 40)))
            grad = xf.T @ (sw * (p - y)) + reg * wf
            hess = (xf * (sw * p * (1 - p))[:, None]).T @ xf + np.diag(reg + 1e-9)
            step = np.linalg.solve(hess, grad)
            wf -= step
            if np.abs(step).max() < 1e-8:
                break
        w[free] = wf
        wrong = np.flatnonzero(free[:-1] & (w[:-1] * signs < 0))
        if wrong.size == 0:
            break
        free[wrong[np.argmin(w[wrong] * signs[wrong])]] = False  # the worst offender sits at 0
    return {"mean": mean.tolist(), "scale": scale.tolist(), "coef": w[:-1].tolist(), "bias": float(w[-1])}


def _frame_means(rows: dict[str, Rows], frame_model: dict) -> np.ndarray:
    """The pose pair model's one input per alignment: the log-odds of the lower of its two
    videos' mean frame confidences (`carl_core.confidence.frame_mean_logit`). On the held-out
    motion it tells same from other actions better than the pair means of the match features
    (AUC 0.82 against 0.80; the mean over both videos' frames: 0.79), and on real pairs it
    tells golf from squats, which those did not (same action 80-85%)."""
    from carl_core.confidence import frame_mean_logit

    x, _, _ = rows["frame_pose"].arrays()
    p, ids = predict(frame_model, x), rows["frame_pose"].alignments()
    return np.array(
        [[frame_mean_logit(p[ids == 2 * i], p[ids == 2 * i + 1])] for i in rows["pair_pose"].alignments()]
    )


def predict(model: dict, x: np.ndarray) -> np.ndarray:
    t = (x - np.asarray(model["mean"])) / np.asarray(model["scale"]) @ np.asarray(model["coef"])
    return 1 / (1 + np.exp(-np.clip(t + model["bias"], -40, 40)))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (probability a right match outranks a wrong one)."""
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = np.argsort(np.argsort(np.r_[pos, neg])) + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean prediction - frequency| over ten equal-width bins."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() * abs(p[sel].mean() - y[sel].mean())
    return float(total / len(p))


def report(name: str, p: np.ndarray, y: np.ndarray) -> dict:
    r = {
        "frames": int(len(y)),
        "right": round(float(y.mean()), 3),
        "ece": round(ece(p, y), 4),
        "auc": round(auc(p, y), 4),
        "brier": round(float(((p - y) ** 2).mean()), 4),
    }
    print(f"  {name:<34} n={r['frames']:>6}  right {r['right']:.2f}  ECE {r['ece']:.3f}  "
          f"AUC {r['auc']:.3f}  Brier {r['brier']:.3f}")  # fmt: skip
    return r


# ----------------------------------------------------------------------------- the check on real pairs


def _event_positions(events_doc: dict, clip: str, n: int, kind: str) -> np.ndarray:
    """Per frame of a real clip, its position between labelled events (NaN: nothing to match).

    Golf: the events' index, interpolated, held before the first and after the last. Squats:
    each repetition from descent (0) to standing (4), frames between repetitions standing (0,
    the same pose as 4: see `_right`)."""
    segs = [s for s in events_doc["segments"].values() if s["clip"] == clip]
    pos = np.zeros(n)
    if kind == "golf":
        (seg,) = segs
        frames = [e["frame"] for e in seg["events"].values()]
        pos = np.interp(np.arange(n), frames, np.arange(len(frames), dtype=float))
    else:
        for seg in segs:
            frames = [e["frame"] for e in seg["events"].values()]
            i = np.arange(frames[0], frames[-1] + 1)
            pos[i] = np.interp(i, frames, np.arange(len(frames), dtype=float))
    for st in events_doc.get("clips", {}).get(clip, {}).get("stretches", []):
        pos[st["start"] : st["end"]] = np.nan
    return pos


def _right(pa: np.ndarray, pb: np.ndarray, kind_a: str, kind_b: str) -> np.ndarray:
    if kind_a != kind_b:
        return np.zeros(len(pa))
    d = np.abs(pa - pb)
    if kind_a == "squat":
        d = np.minimum(d, 4 - d)  # standing before a repetition is standing after one
    return (np.isfinite(d) & (d <= 0.5)).astype(float)  # half the gap between two events


def check_real(real: Path, events: Path, work: Path, checkpoint: Path) -> dict:
    """Confidence on the issue's real pairs (never fitted on): right and wrong matches apart."""
    from carl_core.checkpoint import load_checkpoint
    from carl_core.embed import Embedder
    from carl_core.features import imagenet_features
    from carl_core.pairing import align_pair
    from carl_core.video import read_video, write_video

    doc = json.loads(events.read_text())
    golf_a, golf_b = "golfdb__test_video.mp4", "cosc428__reference_video.mp4"
    squat_a, squat_b = "yuyoujiang__squat.mp4", "ikramaliokz__squat.mp4"
    kinds = {golf_a: "golf", golf_b: "golf", squat_a: "squat", squat_b: "squat"}
    # The padded pair: 245 frames of a squat, and the same frames inside push-up footage (lossless).
    pad = work / "real_padded"
    pad.mkdir(parents=True, exist_ok=True)
    if not (pad / "b.mp4").exists():
        sq, _ = read_video(real / squat_a, size=(320, 180), indices=range(40, 285))
        other, _ = read_video(real / "tayyab__pushup2.mp4", size=(320, 180), indices=range(100, 220))
        write_video(pad / "a.mp4", sq, 30, crf=0)
        write_video(pad / "b.mp4", np.concatenate([other[:60], sq, other[60:]]), 30, crf=0)
    paths = {c: real / c for c in kinds} | {"padA": pad / "a.mp4", "padB": pad / "b.mp4"}
    lite = Embedder(imagenet_features("efficientnet_lite0"), cache_dir=work / "cache")
    carl = Embedder(load_checkpoint(checkpoint), cache_dir=work / "cache")
    results = {m: {c: e.embed(p) for c, p in paths.items()} for m, e in (("carl", carl), ("lite0", lite))}
    embs = {m: {c: r.embeddings for c, r in rs.items()} for m, rs in results.items()}
    # Content at CONTENT_FPS, as the CLI and the app compute it.
    from carl_core.pairing import content_features

    content = {c: content_features(lite, p, lite.embed(p)[1]) for c, p in paths.items()}
    from carl_core.pairing import pose_content

    pos = {c: _event_positions(doc, c, len(embs["lite0"][c]), k) for c, k in kinds.items()}
    kinds |= {"padA": "squat", "padB": "squat"}
    pos["padA"] = pos[squat_a][40:285]
    pos["padB"] = np.r_[np.full(60, np.nan), pos["padA"], np.full(60, np.nan)]
    # B's black tail as blank flags (from the labels here; the embedder's own flags in the app).
    black = np.zeros(len(pos[squat_b]), bool)
    for st in doc.get("clips", {}).get(squat_b, {}).get("stretches", []):
        black[st["start"] : st["end"]] |= st["kind"] in ("black", "fade")
    cases = [
        ("golf: golfdb vs cosc428", golf_a, golf_b, None),
        ("squat: yuyoujiang vs ikramaliokz (walk-off, black tail)", squat_a, squat_b, None),
        ("squat, B's black tail flagged blank", squat_a, squat_b, black),
        ("golf vs squat", golf_a, squat_a, None),
        ("padded: 245 squat frames inside push-ups", "padA", "padB", None),
    ]
    out = {}
    for title, ca, cb, blank_b in cases:
        print(title)
        for model in ("carl", "lite0"):
            pc = pose_content(results[model][ca], results[model][cb])
            for view in ("pose", "pictures", None) if pc else ("pictures", None):
                for opened in (False, True):
                    x, y = embs[model][ca], embs[model][cb]
                    cv = pc if view == "pose" else (content[ca], content[cb]) if view else None
                    pair = align_pair(x, y, open_begin=opened, open_end=opened, content=cv,
                                      content_kind=view or "pictures", blank_b=blank_b)  # fmt: skip
                    mp, conf = pair.mapping, pair.confidence
                    right = _right(pos[ca], pos[cb][mp.a_to_b], kinds[ca], kinds[cb])
                    cov = mp.covered_a
                    c = conf.a[cov]
                    r = right[cov]
                    row = {
                        "right": round(float(r.mean()), 3),
                        "conf_mean": round(float(c.mean()), 3),
                        "conf_right": round(float(c[r == 1].mean()), 3) if (r == 1).any() else None,
                        "conf_wrong": round(float(c[r == 0].mean()), 3) if (r == 0).any() else None,
                        "auc": round(auc(c, r), 3),
                        "pair": round(conf.pair, 3),
                        "covered_a": int(cov.sum()),
                        "covered_b": int(mp.covered_b.sum()),
                    }
                    if ca == squat_a:  # the man walks off from 288; B is black from 776
                        walk = np.arange(288, len(cov))
                        row["walkoff_uncovered_or_low"] = round(
                            float(((~cov[walk]) | (conf.a[walk] < 0.5)).mean()), 3
                        )
                        row["walkoff_on_black"] = int((cov[walk] & (mp.a_to_b[walk] >= 776)).sum())
                    label = f"{model}{f' + {view}' if view else ''}, {'open' if opened else 'closed'}"
                    out[f"{title} | {label}"] = row
                    print(f"  {label:<24} " + "  ".join(f"{k} {v}" for k, v in row.items()))
    return out


def _save_rows(path: Path, train: dict[str, Rows], test: dict[str, Rows]) -> None:
    arrays = {}
    for split, rows in (("train", train), ("test", test)):
        for name, r in rows.items():
            x, y, g = r.arrays()
            arrays |= {f"{split}|{name}|x": x, f"{split}|{name}|y": y, f"{split}|{name}|g": g,
                       f"{split}|{name}|a": r.alignments()}  # fmt: skip
    np.savez_compressed(path, **arrays)


def _load_rows(path: Path) -> tuple[dict[str, Rows], dict[str, Rows]]:
    data = np.load(path)
    out: tuple[dict[str, Rows], dict[str, Rows]] = ({}, {})
    for k, split in enumerate(("train", "test")):
        for key in data.files:
            s, name, part = key.split("|")
            if s == split and part == "x":
                y = data[f"{s}|{name}|y"]
                ids = data[f"{s}|{name}|a"] if f"{s}|{name}|a" in data.files else np.full(len(y), -1)  # older
                out[k][name] = Rows([data[key]], [y], [data[f"{s}|{name}|g"]], [ids])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/carl_studio/calibration"))
    ap.add_argument("--per-action", type=int, default=8, help="base videos per action (default 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "assets" / "confidence.json"))
    ap.add_argument("--no-write", action="store_true", help="measure only")
    ap.add_argument("--reuse-rows", action="store_true",
                    help="refit on the last run's features (after a change to the fitting only)")  # fmt: skip
    ap.add_argument("--pose", action="store_true",
                    help="fit the pose models' calibration (frame_pose, pair_pose) on synthetic "
                         "human motion, embedded by --checkpoint; the picture models' stay")  # fmt: skip
    ap.add_argument("--real", help="check (never fit) on the real clips in this folder, then stop")
    ap.add_argument("--events", default=str(ROOT / "tests" / "data" / "real_events.json"),
                    help="the real clips' labelled events (default tests/data/real_events.json)")  # fmt: skip
    ap.add_argument("--checkpoint", default=str(ROOT / "assets" / "carl_human.pt"),
                    help="the model --pose fits and --real checks (default: the default)")  # fmt: skip
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}")
    work = Path(args.work)
    if args.real:
        result = check_real(Path(args.real), Path(args.events), work, Path(args.checkpoint))
        (work / "real_check.json").write_text(json.dumps(result, indent=1))
        return
    t0 = time.time()
    if args.pose:
        clips, embs = make_motion_clips(work, args.per_action, MOTION_SEED + args.seed, Path(args.checkpoint))
        groups = POSE_GROUPS
    else:
        clips = make_clips(work, args.per_action, args.seed)
        embs = embed_all(work, clips)
        groups = GROUPS
    print(f"{len(clips)} clips ready in {time.time() - t0:.0f} s")
    rows_file = work / f"rows_{'pose_' if args.pose else ''}{args.per_action}_{args.seed}.npz"
    if args.reuse_rows and rows_file.exists():
        train, test = _load_rows(rows_file)
    else:
        train = collect(pairs(clips, args.per_action, True, args.seed), embs, args.pose)
        test = collect(pairs(clips, args.per_action, False, args.seed), embs, args.pose)
        _save_rows(rows_file, train, test)
    models, metrics = {}, {}
    for name in sorted(train, key=lambda n: not n.startswith("frame")):  # frame models first
        if name == "pair_pose":  # the pose pair model reads how sure its frames are
            for rows in (train, test):
                rows[name].inputs = [_frame_means(rows, models["frame_pose"])]
        x, y, g = train[name].arrays()
        # Each pair counts once in the pair models; each frame once in the frame models, but
        # the (model, open ends) groups weigh the same.
        weight = np.ones(len(y))
        for k in np.unique(g):
            weight[g == k] = len(y) / (len(np.unique(g)) * (g == k).sum())
        if name == "pair_pose":
            # Even odds before the evidence: the set holds 5 same-action pairs (with walk-offs
            # and pads) per other pair, a base rate that is no user's. Synthetic performances are
            # harder to align than real ones, so at that rate any two people moved "alike".
            for c in (0.0, 1.0):
                weight[y == c] *= len(y) / (2 * max((y == c).sum(), 1))
        signs = np.ones(1) if name == "pair_pose" else np.resize(SIGNS, x.shape[1])
        models[name] = fit_logistic(x, y, signs, weight=weight)
        xt, yt, gt = test[name].arrays()
        print(f"{name}: held out")
        metrics[name] = {"all": report("all", predict(models[name], xt), yt)}
        for k, (kind, opened) in enumerate(groups):
            sel = gt == k
            label = f"{kind}, {'open ends' if opened else 'closed'}"
            metrics[name][label] = report(label, predict(models[name], xt[sel]), yt[sel])
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {"models": {}, "held_out": {}}
    doc |= {
        "what": "logistic models of carl_core.confidence; fitted by benchmarks/calibrate_confidence.py",
        "features": list(FEATURES),
        "tolerance_phases": TOLERANCE,
    }
    if args.pose:
        doc["data_pose"] = (
            f"synthetic human motion (carl_core.motion, seed {MOTION_SEED + args.seed}), {args.per_action} "
            f"performances per action, 60/40 split; embedded by {Path(args.checkpoint).name}'s pose model"
        )
    else:
        doc["data"] = f"synthetic, {args.per_action} videos per action (seed {args.seed}), 60/40 split"
    doc["held_out"] |= metrics
    doc["models"] |= models
    if not args.no_write:
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
