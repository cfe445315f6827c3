"""Regenerate the bundled sample videos: the same action (a squat) performed twice, differently.

The two clips differ in what CARL should see through (figure, colours, background, facing
direction, camera shake) and in timing (idle time, speed of each phase, pauses), which is what
the app's first screen aligns. A third clip is a spare for the retrieval and map tabs.

    python assets/make_samples.py            # writes assets/samples/*.mp4 and labels.json

Rendered by ``carl_core.synthetic`` from fixed seeds, so the files are the same on every run
with the same library versions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carl_core.synthetic import SynthConfig, write_synthetic_video  # noqa: E402
from carl_core.video import probe_video  # noqa: E402

OUT = ROOT / "assets" / "samples"
# (file name, action, seed): seeds picked by eye for clearly different looks and timing.
SAMPLES = (
    ("squat_a.mp4", "squat", 2),  # blue room, quick descent, long rise
    ("squat_b.mp4", "squat", 4),  # magenta room, late and slow descent, smaller figure
    ("squat_c.mp4", "squat", 7),  # dark blue room, long idle at both ends, light figure
)
CONFIG = SynthConfig(size=(192, 192), fps=24.0, min_len=110, max_len=170, crf=26)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    phases = {}
    for name, action, seed in SAMPLES:
        path, labels = write_synthetic_video(OUT / name, action, seed=seed, cfg=CONFIG)
        phases[name] = [int(v) for v in labels]
        info = probe_video(path)
        print(
            f"{path.relative_to(ROOT)}: {info.num_frames} frames, {info.duration:.1f} s, "
            f"{info.width}x{info.height}, {path.stat().st_size / 1024:.0f} KB"
        )
    # Per-frame phase labels: the tests check the bundled model's alignments against them.
    (OUT / "labels.json").write_text(json.dumps(phases) + "\n")


if __name__ == "__main__":
    main()
