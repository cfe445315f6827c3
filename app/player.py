"""The synchronised player: two videos side by side, B following A through the DTW mapping.

A Streamlit ``components.v2`` component (HTML, CSS and ``player.js``; no build step). Python
hands it the two media URLs, each sample's media time and frame number, both mappings, their
calibrated confidences and blank-frame flags, and optionally a seek request; it hands back
where playback rests (``position``: the leader and both sample indices) and ``media_error``
when the browser cannot play a file, so the app can serve a proxy instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from app.compute import Embedded
from carl_core.pairing import PairAlignment

_HERE = Path(__file__).resolve().parent

CSS = """
.carl-player { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); outline: none; }
.cp-videos { display: flex; gap: 12px; }
.cp-fig { flex: 1 1 0; margin: 0; position: relative; min-width: 0; }
.cp-fig video { width: 100%; height: 300px; object-fit: contain; background: #000; border-radius: 6px;
  display: block; cursor: pointer; }
.cp-tag { position: absolute; top: 6px; left: 8px; z-index: 2; font-weight: 700; color: #fff;
  padding: 0 7px; border-radius: 4px; font-size: 14px; }
.cp-tag-a { background: #1f77b4; } .cp-tag-b { background: #d62728; }
figcaption { font-size: 13px; margin-top: 4px; font-variant-numeric: tabular-nums; }
.cp-strip { width: 100%; height: 34px; display: block; margin-top: 8px; cursor: pointer;
  background: rgba(128,128,128,0.08); border-radius: 4px; }
.cp-scrub { width: 100%; margin: 6px 0 2px 0; }
.cp-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; font-size: 14px; }
.cp-bar button, .cp-bar select { font: inherit; padding: 3px 10px; border-radius: 6px;
  border: 1px solid rgba(128,128,128,0.5); background: var(--st-background-color, #fff);
  color: inherit; cursor: pointer; }
.cp-bar button:hover { border-color: var(--st-primary-color, #ff4b4b); }
.cp-conf { font-weight: 600; margin-left: 8px; font-variant-numeric: tabular-nums; }
.cp-msg { color: #b00; }
"""

_component = st.components.v2.component(
    "carl_studio.player", css=CSS, js=(_HERE / "player.js").read_text(encoding="utf-8")
)


def _side(e: Embedded, url: str, media_times: np.ndarray) -> dict[str, Any]:
    return {
        "url": url,
        "name": e.video.name,
        "times": np.round(media_times, 5).tolist(),
        "frames": e.indices.tolist(),
        "num_frames": e.video.num_frames,
        "fps": e.fps or e.video.fps,
    }


def request_seek(video: str, index: int) -> None:
    """Ask the player to show sample ``index`` of video "a" or "b" (that video then leads)."""
    st.session_state["player_seek"] = {"video": video, "index": int(index), "nonce": time.monotonic_ns()}


def player(
    ea: Embedded,
    eb: Embedded,
    media_a: tuple[str, np.ndarray],
    media_b: tuple[str, np.ndarray],
    result: PairAlignment,
) -> Any:
    """Mount the player; returns the component's result (``.position``, ``.media_error``)."""
    mp, conf = result.mapping, result.confidence
    data = {
        "a": _side(ea, *media_a),
        "b": _side(eb, *media_b),
        "a_to_b": mp.a_to_b.tolist(),
        "b_to_a": mp.b_to_a.tolist(),
        "conf_a": np.round(conf.a, 3).tolist(),
        "conf_b": np.round(conf.b, 3).tolist(),
        "blank_a": conf.blank_a.tolist(),
        "blank_b": conf.blank_b.tolist(),
        "covered_a": mp.covered_a.tolist(),
        "covered_b": mp.covered_b.tolist(),
        "seek": st.session_state.get("player_seek"),
    }
    return _component(
        data=data,
        key="player",
        on_position_change=lambda: None,
        on_media_error_change=lambda: None,
    )


def position() -> dict[str, int] | None:
    """Where playback last rested: {"leader": "a", "a": i, "b": j} (sample indices), or None."""
    state = st.session_state.get("player")
    pos = state.get("position") if isinstance(state, dict) else getattr(state, "position", None)
    if isinstance(pos, dict) and isinstance(pos.get("a"), int) and isinstance(pos.get("b"), int):
        return pos
    return None
