"""What the app's tests share: a tiny model and preset, a streamlit server, page helpers.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright through
``executable_path`` (never ``playwright install``). The server runs with a small random-weight
model (64 px) so that embedding is fast and nothing depends on the bundled model's quality.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

TINY_PRESET = """\
# A tiny CARL for tests: random EfficientNet-Lite0 at 64 px, a one-layer head, 8-frame clips.
model:
  backbone: efficientnet_lite0
  backbone_weights: random
  finetune_blocks: 1
  frames_per_batch: 32
  image_size: 64
  fc_layers: [64, 64]
  hidden_size: 32
  num_heads: 2
  d_ff: 64
  num_layers: 1
  embedding_size: 16
  projection_size: 16
  train_len: 8
data:
  num_frames: 8
train:
  epochs: 1
  batch_size: 2
  lr: 0.001
  warmup_epochs: 1
  save_every: 1
  num_workers: 0
  cached_features: true
  feature_copies: 2
"""


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium chromium-driver")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def synthetic_samples(folder: Path) -> Path:
    """A samples folder holding only the synthetic squats, what the app tests were written on
    (the app's own samples folder opens on a real pair)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("squat_a.mp4", "squat_b.mp4", "squat_c.mp4"):
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / "assets" / "samples" / name)
    return folder


def make_test_model(path: Path, image_size: int = 64) -> Path:
    """The ``small`` preset at ``image_size`` px with random weights, saved as our checkpoint."""
    import torch

    from carl_core.checkpoint import model_payload, save_checkpoint
    from carl_core.config import load_preset
    from carl_core.model import CARLModel

    cfg = load_preset("small").with_overrides(
        model={"image_size": image_size, "backbone_weights": "random", "train_len": 16},
        data={"num_frames": 16},
    )
    torch.manual_seed(0)
    save_checkpoint(path, model_payload(CARLModel(cfg.model), cfg))
    return path


@dataclass
class Studio:
    url: str
    home: Path
    dataset: Path
    preset: Path
    log: Path


def start_server(env: dict[str, str], log: Path, port: int) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app/main.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail(f"streamlit did not answer within 90 s: {log.read_text()[-2000:]}")


# --------------------------------------------------------------------------- page helpers


def wait_idle(page, timeout: float = 180.0) -> None:
    """Until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout * 1000
    )


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def upload(page, label: str, path: Path) -> None:
    """Drop ``path`` on the uploader labelled ``label``, and wait until the app holds it.

    A file set while the app is still rerunning for the previous upload can land on an input
    that the rerun then replaces, and be lost (seen on a busy machine, after training): the
    uploader's list is checked, and the file dropped again as a user would.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label).first
    # Streamlit shortens long names in the middle ("ikramal..._squat.mp4").
    head, tail = path.name[:6], path.name[-8:]
    shown = "([el, head, tail]) => { const t = el.innerText; return t.includes(head) && t.includes(tail); }"
    for _ in range(3):
        wait_idle(page)
        uploader.locator('input[type="file"]').set_input_files(str(path))
        try:
            page.wait_for_function(shown, arg=[uploader.element_handle(), head, tail], timeout=30_000)
        except PlaywrightTimeout:  # not taken: drop it again
            continue
        wait_idle(page)
        return
    raise AssertionError(f"the uploader {label!r} never showed {path.name}")


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    wait_idle(page)


def lasso(page, plot, margin: float) -> None:
    """Draw a lasso around a plotly chart's plot area, ``margin`` (a fraction) in from each edge."""
    plot.hover()
    plot.locator('.modebar-btn[data-val="lasso"]').click()
    box = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    lo, hi = margin, 1 - margin
    page.mouse.move(x0 + lo * w, y0 + lo * h)
    page.mouse.down()
    for fx, fy in ((hi, lo), (hi, hi), (lo, hi), (lo, lo + 0.01)):
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=8)
    page.mouse.up()
