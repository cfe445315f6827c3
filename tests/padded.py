"""A pair with a known answer for open ends: B is A with other footage before and after it.

Frames are encoded losslessly, so A's frames inside B decode to the very same pixels: any
context-free frame embedding puts A's frame k exactly on B's frame ``pad + k``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD = 30  # frames of other footage on each side of A inside B


def synthetic_pair(folder: Path, length: int = 90, pad: int = PAD) -> tuple[Path, Path]:
    """A: a synthetic squat of ``length`` frames; B: ``pad`` frames of jumping jacks, A, and
    ``pad`` frames of arm raises."""
    from carl_core.synthetic import SynthConfig, plan_video
    from carl_core.video import write_video

    cfg = SynthConfig(min_len=length, max_len=length)
    squat = plan_video("squat", np.random.default_rng(11), cfg)
    before = plan_video("jumping_jack", np.random.default_rng(12), cfg)
    after = plan_video("arm_raise", np.random.default_rng(13), cfg)
    a = [squat.render(i) for i in range(length)]
    b = [before.render(i) for i in range(length // 2 - pad // 2, length // 2 + pad - pad // 2)]
    b += a + [after.render(i) for i in range(length // 2 - pad // 2, length // 2 + pad - pad // 2)]
    return write_video(folder / "padA.mp4", a, 30, crf=0), write_video(folder / "padB.mp4", b, 30, crf=0)
