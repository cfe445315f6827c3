"""Screenshots of each tab for the README, and how long each tab takes to load.

    python tests/e2e/screenshots.py [--model assets/carl_human.pt] [--out docs/screenshots]

Starts ``streamlit run app/main.py`` as a first-time user gets it (the bundled samples, the
default model, an empty embedding cache unless ``--warm``), drives it in headless Chromium,
writes ``align.png``, ``map.png``, ``retrieve.png`` and ``train.png``, and prints the seconds
from opening the page (or clicking a tab) until it is drawn. Not a test: it asserts nothing.
The training screenshot trains a tiny model for a few epochs on a small synthetic dataset.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.studio import (  # noqa: E402
    CHROMIUM_ARGS,
    TINY_PRESET,
    choose,
    chromium_path,
    free_port,
    lasso,
    open_tab,
    start_server,
    wait_idle,
)

PLAYER_READY = (
    "() => window.carlPlayer && window.carlPlayer.a.readyState >= 2 && window.carlPlayer.b.readyState >= 2"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "assets" / "carl_human.pt"), help="the default model")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--warm", action="store_true", help="keep the embedding cache of the user's home")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    from carl_core.synthetic import make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="carl-shots-"))
    data = make_dataset(tmp / "data", num_videos=8, seed=1, size=(64, 64), classes=("squat",), workers=1)
    preset = tmp / "tiny.yaml"
    preset.write_text(TINY_PRESET.replace("epochs: 1", "epochs: 12"))
    env = dict(os.environ, CARL_DEFAULT_MODEL=args.model, CARL_STUDIO_HOME=str(tmp / "home"))
    if not args.warm:
        env["CARL_CACHE_DIR"] = str(tmp / "cache")
    port = free_port()
    server = start_server(env, tmp / "server.log", port)
    times: dict[str, float] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(600_000)
            t = time.time()
            page.goto(f"http://127.0.0.1:{port}")
            page.wait_for_function(PLAYER_READY)
            page.locator(".stPlotlyChart:visible").first.wait_for(state="visible")
            wait_idle(page, 600)
            times["first load: samples embedded, aligned, player ready"] = time.time() - t
            # Rest the player a third of the way in, so the heatmap shows where it is.
            page.evaluate(
                "() => { const r = window.carlPlayer.root.querySelector('.cp-scrub');"
                " r.value = String(Math.floor(Number(r.max) / 3)); r.dispatchEvent(new Event('input')); }"
            )
            page.wait_for_timeout(1500)
            wait_idle(page)
            page.screenshot(path=str(out / "align.png"))

            for tab, shot, drawn in (
                ("Embedding map", "map", ".stPlotlyChart .nsewdrag"),
                ("Retrieve", "retrieve", '[data-testid="stImage"]'),
            ):
                t = time.time()
                open_tab(page, tab)
                page.wait_for_selector(drawn)
                times[f"{tab} tab, first time"] = time.time() - t
                open_tab(page, "Align")
                t = time.time()
                open_tab(page, tab)
                page.wait_for_selector(drawn)
                times[f"{tab} tab, again"] = time.time() - t
                if shot == "map":
                    _lasso(page)
                page.screenshot(path=str(out / f"{shot}.png"))

            t = time.time()
            open_tab(page, "Train")
            times["Train tab"] = time.time() - t
            page.get_by_text("A dataset in the authors' format").click()
            wait_idle(page)
            page.get_by_label("Dataset folder").fill(str(data))
            page.get_by_label("Dataset folder").press("Enter")
            wait_idle(page)
            choose(page, "Preset", "A preset file (YAML)…")
            page.get_by_label("Preset file").fill(str(preset))
            page.get_by_label("Preset file").press("Enter")
            wait_idle(page)
            page.get_by_label("Run name (optional)").fill("squats-demo")
            page.get_by_label("Run name (optional)").press("Enter")
            wait_idle(page)
            page.get_by_role("button", name="Start training").click()
            page.get_by_text("Finished:").wait_for()
            wait_idle(page)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "train.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
    for what, seconds in times.items():
        print(f"{what:55s} {seconds:6.1f} s")
    print(f"screenshots in {out}")


def _lasso(page) -> None:
    lasso(page, page.locator(".stPlotlyChart .js-plotly-plot").first, margin=0.3)
    wait_idle(page)
    page.wait_for_timeout(1500)


if __name__ == "__main__":
    main()
