"""Browser tests: a real ``streamlit run app/main.py`` server driven by headless Chromium.

The server runs with a small random-weight model (64 px), and with its own studio home and
embedding cache in a temporary folder. Helpers live in ``tests/e2e/studio.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.studio import (
    CHROMIUM_ARGS,
    ROOT,
    TINY_PRESET,
    Studio,
    chromium_path,
    free_port,
    make_test_model,
    start_server,
    synthetic_samples,
)


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    from carl_core.synthetic import make_dataset

    tmp = tmp_path_factory.mktemp("studio")
    model = make_test_model(tmp / "model.pt")
    dataset = make_dataset(
        tmp / "dataset", num_videos=6, seed=3, size=(64, 64), min_len=24, max_len=32,
        classes=("squat",), workers=1,
    )  # fmt: skip
    preset = tmp / "tiny.yaml"
    preset.write_text(TINY_PRESET)
    env = dict(os.environ)
    env.update(
        CARL_SAMPLES_DIR=str(synthetic_samples(tmp / "samples")),
        CARL_DEFAULT_MODEL=str(model),
        CARL_STUDIO_HOME=str(tmp / "home"),
        CARL_CACHE_DIR=str(tmp / "cache"),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    )
    port = free_port()
    log = tmp / "server.log"
    proc = start_server(env, log, port)
    try:
        yield Studio(f"http://127.0.0.1:{port}", tmp / "home", dataset, preset, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def page(browser, studio: Studio):
    """One page for the whole session: the tests follow a user's path through the tabs."""
    p = browser.new_page(viewport={"width": 1400, "height": 1400})
    p.set_default_timeout(120_000)
    p.goto(studio.url)
    yield p
    p.close()
