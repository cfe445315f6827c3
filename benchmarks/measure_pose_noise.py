"""MediaPipe's errors on the real clips, and the synthetic motion's, side by side.

Reads MediaPipe's reference landmarks of the real clips (``../shared/data/real_clips_pose``, frame
sizes and rates from the videos beside them) and measures, per clip, what
``carl_core.motion.pose_noise_stats`` defines: jitter per body part in image and world, how much of
it is slow, world bone-length spread, image z against world z, visibility (per part, far and near
side, off-screen), missing frames, left/right flips and glitches. Then it draws synthetic motion
(every action, default ``MotionConfig``) and measures it the same way.

The real clips are only measured, never trained on: the figures calibrate the noise model in
``carl_core/motion.py`` (its ``MEASURED`` and ``_NOISE_*`` / ``_VIS_*`` constants).

    python benchmarks/measure_pose_noise.py                 # summary: real (action clips, all) vs synthetic
    python benchmarks/measure_pose_noise.py --per-clip      # and every clip's figures
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.motion import (  # noqa: E402
    ACTION_NAMES,
    MotionConfig,
    pose_noise_stats,
    sample_motion,
    summarise_noise_stats,
)
from carl_core.skeleton import PoseSequence  # noqa: E402
from carl_core.video import probe_video  # noqa: E402

SHARED = Path(os.environ.get("CARL_SHARED") or ROOT.parent / "shared") / "data"
# Whole bodies doing an action: the calibration target. Left out: a pancake in a kitchen, make-up in
# close-up, a pool pole, arm wrestling (partial bodies), and the jumping-jack copy with a painted occluder.
ACTION_CLIPS = (
    "bicepmp__bicep_curl.mp4", "cosc428__reference_video.mp4", "felixchenfy__exercise.avi",
    "golfdb__test_video.mp4", "ikramaliokz__squat.mp4", "jtnicastro__pushup.mp4",
    "mmaction2__S001C001P001R001A001_rgb.avi", "mmaction2__test_video_structuralize.mp4",
    "pose2sim__cam01.mp4", "pose2sim__cam02.mp4", "slomoloops__jumpingjacks2menlowres.ogg",
    "tayyab__pushup2.mp4", "yuyoujiang__squat.mp4",
)  # fmt: skip


def real_sequences(pose_dir: Path, clip_dir: Path) -> dict[str, PoseSequence]:
    out = {}
    for f in sorted(pose_dir.glob("*.pose.npz")):
        clip = f.name[: -len(".pose.npz")]
        info = probe_video(clip_dir / clip)
        out[clip] = PoseSequence.from_mediapipe_npz(f, info.width, info.height, info.fps)
    return out


def synthetic_sequences(per_action: int, seed: int) -> dict[str, PoseSequence]:
    rng = np.random.default_rng(seed)
    cfg = MotionConfig()
    return {
        f"{a}_{i}": sample_motion(a, rng, cfg).pose for a in ACTION_NAMES for i in range(per_action)
    }  # fmt: skip


def _fmt(m: tuple[float, float, float]) -> str:
    if not np.isfinite(m[1]):
        return f"{m[0]:8.3g}" + " " * 16
    return f"{m[0]:8.3g} [{m[1]:5.3g},{m[2]:5.3g}]"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--poses", type=Path, default=SHARED / "real_clips_pose")
    p.add_argument("--clips", type=Path, default=SHARED / "real_clips")
    p.add_argument("--per-action", type=int, default=12, help="synthetic sequences per action")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-clip", action="store_true")
    a = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    real = {k: pose_noise_stats(s) for k, s in real_sequences(a.poses, a.clips).items()}
    synth = {k: pose_noise_stats(s) for k, s in synthetic_sequences(a.per_action, a.seed).items()}
    if a.per_clip:
        keys = [
            "jitter_image",
            "jitter_world",
            "slow_over_jitter",
            "bone_cv",
            "z_stretch",
            "vis_far",
            "missing",
        ]
        print("clip".ljust(40) + "".join(k[:12].rjust(13) for k in keys))
        for name, st in real.items():
            print(name[:40].ljust(40) + "".join(f"{st[k]:13.3g}" for k in keys))
    r_act = summarise_noise_stats([real[c] for c in ACTION_CLIPS if c in real])
    r_all = summarise_noise_stats(list(real.values()))
    syn = summarise_noise_stats(list(synth.values()))
    n_act = sum(c in real for c in ACTION_CLIPS)
    heads = (f"real, {n_act} action clips", f"real, all {len(real)}", f"synthetic, {len(synth)}")
    print(f"\n{'statistic':26s}" + "".join(f"{h:>26s}" for h in heads), end="")
    print("   (median [quartiles] over sequences; rates pooled)")
    for key in r_act:
        print(f"{key:26s}{_fmt(r_act[key]):>26s}{_fmt(r_all[key]):>26s}{_fmt(syn[key]):>26s}")


if __name__ == "__main__":
    main()
