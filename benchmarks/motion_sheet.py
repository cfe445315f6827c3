"""Contact sheet of the synthetic motion library: stick figures, one row per action.

Each row shows one sequence of an action (no noise, right-handed, one rep) at evenly spaced
moments, the first frame of each phase marked by its name, as each of a few cameras sees it
(image landmarks; camera azimuth/elevation above each block). Left side blue, right side red.
Look at it to check the templates:

    python benchmarks/motion_sheet.py --out /tmp/sheet.png                 # three cameras per action
    python benchmarks/motion_sheet.py --out /tmp/world.png --world         # MediaPipe world landmarks
    python benchmarks/motion_sheet.py --out /tmp/random.png --random       # with everything randomised
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carl_core.motion import ACTION_NAMES, NO_NOISE, MotionConfig, sample_motion  # noqa: E402
from carl_core.skeleton import CONNECTIONS  # noqa: E402

LEFT, RIGHT = (40, 90, 230), (220, 40, 40)


def _colour(a: int, b: int) -> tuple[int, int, int]:
    from carl_core.skeleton import NAMES

    na, nb = NAMES[a], NAMES[b]
    if "left" in na and "left" in nb:
        return LEFT
    if "right" in na and "right" in nb:
        return RIGHT
    return (90, 90, 90)


def draw_row(xy: np.ndarray, frames: list[int], titles: list[str], cell: int, name: str = "") -> Image.Image:
    """One row of cells; xy (T, 33, 2) in any units with y down; one scale for the whole row."""
    sel = xy[frames]
    lo, hi = np.nanmin(sel.reshape(-1, 2), 0), np.nanmax(sel.reshape(-1, 2), 0)
    centre_row = (lo + hi) / 2
    scale = 0.85 * cell / max(float(np.max(hi - lo)), 1e-6)
    row = Image.new("RGB", (cell * len(frames), cell), "white")
    d = ImageDraw.Draw(row)
    titles = list(titles) + [""] * (len(frames) - len(titles))
    for c, (f, title) in enumerate(zip(frames, titles)):
        ox = c * cell + cell / 2
        p = (xy[f] - centre_row) * scale + np.array([ox, cell / 2])
        d.rectangle([c * cell, 0, (c + 1) * cell - 1, cell - 1], outline=(220, 220, 220))
        if np.isnan(p).any():
            d.text((ox - 20, cell / 2), "missing", fill=(150, 150, 150))
            continue
        for a, b in CONNECTIONS:
            d.line([tuple(p[a]), tuple(p[b])], fill=_colour(a, b), width=2)
        for i in range(11):
            d.ellipse([p[i, 0] - 1.5, p[i, 1] - 1.5, p[i, 0] + 1.5, p[i, 1] + 1.5], fill=(0, 0, 0))
        d.text((c * cell + 3, 2), title, fill=(0, 0, 0))
    d.text((3, cell - 13), name, fill=(0, 110, 0))
    return row


def _frames(s, cols: int) -> tuple[list[int], list[str]]:
    """Evenly spaced frames from just before the first phase change, phase starts among them."""
    starts = {int(f): s.phases[int(ph)] for f, ph in s.events[1:]}
    first = max(min(starts, default=0) - 3, 0)
    frames = np.linspace(first, len(s.labels) - 1, cols).astype(int)
    for f in starts:  # move the nearest column onto each phase start
        frames[np.argmin(np.abs(frames - f))] = f
    frames = sorted(set(frames.tolist()))
    return frames, [starts.get(f, "") for f in frames]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--views", default="20/5,100/15,220/30", help="camera yaw/pitch pairs, comma-separated")
    p.add_argument("--cols", type=int, default=6, help="frames per view")
    p.add_argument("--cell", type=int, default=84)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world", action="store_true", help="draw MediaPipe's world landmarks (x, y)")
    p.add_argument("--actions", nargs="*", default=list(ACTION_NAMES))
    p.add_argument(
        "--random", action="store_true", help="everything random (camera, noise, reps) but the yaw/pitch"
    )
    a = p.parse_args()
    views = [tuple(float(x) for x in v.split("/")) for v in a.views.split(",")]
    rows = []
    for name in a.actions:
        blocks = []
        for yaw, pitch in views:
            fixed = dict(yaw=(yaw, yaw), pitch=(pitch, pitch), overhead_prob=0.0)
            if not a.random:
                fixed.update(
                    mirror_prob=0.0, cut_prob=0.0, fill=(0.8, 0.8), reps=(1, 1), idle=(0.3, 0.3),
                    hold_prob=0.0, warp=(0.0, 0.0), sizes=((800, 800),), roll=0.0, **NO_NOISE,
                )  # fmt: skip
            rng = np.random.default_rng([a.seed, ACTION_NAMES.index(name)])
            s = sample_motion(name, rng, MotionConfig(**fixed), fps=30.0)
            src = s.pose.world if a.world else s.pose.image
            xy = src[..., :2] * (1.0 if a.world else np.array([s.pose.width, s.pose.height]))
            if not blocks:
                frames, titles = _frames(s, a.cols)
            label = f"{name} {yaw:.0f}/{pitch:.0f}" if not blocks else f"{yaw:.0f}/{pitch:.0f}"
            blocks.append(draw_row(xy, frames, titles if not blocks else [], a.cell, label))
        row = Image.new(
            "RGB", (sum(b.width for b in blocks) + 6 * (len(blocks) - 1), a.cell), (120, 120, 120)
        )
        x = 0
        for b in blocks:
            row.paste(b, (x, 0))
            x += b.width + 6
        rows.append(row)
    width = max(r.width for r in rows)
    sheet = Image.new("RGB", (width, sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    sheet.save(a.out)
    print(f"wrote {a.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
