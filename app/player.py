"""The synchronised player: two videos side by side, B following A through the DTW mapping.

A Streamlit ``components.v2`` component (HTML, CSS and ``player.js``; no build step). Python
hands it the two media URLs, each sample's media time and frame number, both mappings, their
calibrated confidences and blank-frame flags, the body pose read in each sample (drawn over
the video), and optionally a seek request; it hands back where playback rests (``position``:
the leader and both sample indices) and ``media_error`` when the browser cannot play a file,
so the app can serve a proxy instead.

Every position and seek names the pair it belongs to (``pair_key``: both videos, the model,
the sampling and the crop boxes). One for another pair is dropped, never replayed or read
against the wrong video: a position is only kept while the player shows that very pair.
"""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from app.compute import Embedded
from carl_core.pairing import PairAlignment
from carl_core.skeleton import CONNECTIONS, MISSING

_HERE = Path(__file__).resolve().parent

CSS = """
.carl-player { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); outline: none; }
.cp-videos { display: flex; gap: 12px; }
.cp-fig { flex: 1 1 0; margin: 0; position: relative; min-width: 0; }
.cp-stage { position: relative; height: 300px; background: #000; border-radius: 6px; overflow: hidden; }
.cp-stage video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain;
  background: #000; display: block; cursor: pointer; }
.cp-stage video.cp-shown { z-index: 1; }
.cp-stage video.cp-spare { z-index: 0; opacity: 0; pointer-events: none; }
.cp-skel { position: absolute; inset: 0; width: 100%; height: 100%; z-index: 2; pointer-events: none; }
.cp-tag { position: absolute; top: 6px; left: 8px; z-index: 3; font-weight: 700; color: #fff;
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
.cp-play { display: inline-flex; align-items: center; gap: 5px; min-width: 82px; }
.cp-icon { width: 13px; height: 13px; fill: currentColor; flex: none; }
.cp-skel-toggle { display: inline-flex; align-items: center; gap: 4px; cursor: pointer; }
.cp-conf { font-weight: 600; margin-left: 8px; font-variant-numeric: tabular-nums; }
.cp-msg { color: #b00; }
"""

_component = st.components.v2.component(
    "carl_studio.player", css=CSS, js=(_HERE / "player.js").read_text(encoding="utf-8")
)


UNKNOWN = -32768  # an int16 landmark coordinate that is not known


def pose_data(e: Embedded) -> dict[str, Any] | None:
    """The body pose of every sample for the player: image x, y (relative to the frame) as
    little-endian int16 in 1/8192ths, base64; each sample's status (0 missing, 1 found, 2 filled
    in). About 130 bytes a sample, against 1 KB as JSON numbers."""
    seq = e.pose
    if seq is None or len(seq) != len(e.times):
        return None
    xy = np.asarray(seq.image[:, :, :2], dtype=np.float64) * 8192
    q = np.where(np.isfinite(xy), np.clip(np.round(xy), -32767, 32767), UNKNOWN).astype("<i2")
    q[seq.status == MISSING] = UNKNOWN
    return {
        "xy": base64.b64encode(q.tobytes()).decode(),
        "status": seq.status.astype(int).tolist(),
        "landmarks": int(q.shape[1]),
        "width": int(seq.width),
        "height": int(seq.height),
    }


def _side(e: Embedded, url: str, media_times: np.ndarray) -> dict[str, Any]:
    return {
        "url": url,
        "name": e.video.name,
        "times": np.round(media_times, 5).tolist(),
        "frames": e.indices.tolist(),
        "num_frames": e.video.num_frames,
        "fps": e.fps or e.video.fps,
        "pose": pose_data(e),
    }


def pair_key(ea: Embedded, eb: Embedded) -> str:
    """Names what the player shows: both videos' embeddings (file, model, sampling, crop)."""
    return hashlib.blake2b(f"{ea.key}\n{eb.key}".encode(), digest_size=8).hexdigest()


def request_seek(video: str, index: int) -> None:
    """Ask the player to show sample ``index`` of video "a" or "b" (that video then leads).
    The request holds for the pair shown now, and is dropped with it."""
    shown = st.session_state.get("player_shown") or {}
    st.session_state["player_seek"] = {
        "video": video, "index": int(index), "nonce": time.monotonic_ns(), "pair": shown.get("pair"),
    }  # fmt: skip


def unmount() -> None:
    """The player is not on the page this run: forget its position and any jump asked of it,
    so that neither replays on the next pair of videos."""
    for key in ("player_shown", "player_seek"):
        st.session_state.pop(key, None)


def player(
    ea: Embedded,
    eb: Embedded,
    media_a: tuple[str, np.ndarray],
    media_b: tuple[str, np.ndarray],
    result: PairAlignment,
    skeleton: bool = True,
) -> Any:
    """Mount the player; returns the component's result (``.position``, ``.media_error``).
    ``skeleton``: draw the body pose over the videos at first (the user can turn it off)."""
    mp, conf = result.mapping, result.confidence
    pair = pair_key(ea, eb)
    st.session_state["player_shown"] = {"pair": pair, "a": len(ea.times), "b": len(eb.times)}
    seek = st.session_state.get("player_seek")
    if seek is not None and seek.get("pair") not in (None, pair):
        st.session_state.pop("player_seek", None)
        seek = None
    data = {
        "pair": pair,
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
        "seek": seek,
        "bones": [list(b) for b in CONNECTIONS],
        "skeleton": bool(skeleton),
    }
    return _component(
        data=data,
        key="player",
        on_position_change=lambda: None,
        on_media_error_change=lambda: None,
    )


def position() -> dict[str, Any] | None:
    """Where playback last rested in the pair shown now: {"leader": "a", "a": i, "b": j} (sample
    indices, within both videos), or None (nothing shown, or the position was another pair's)."""
    shown = st.session_state.get("player_shown")
    state = st.session_state.get("player")
    pos = state.get("position") if isinstance(state, dict) else getattr(state, "position", None)
    if not shown or not isinstance(pos, dict) or pos.get("pair") != shown["pair"]:
        return None
    if not (isinstance(pos.get("a"), int) and isinstance(pos.get("b"), int)):
        return None
    clamp = {k: min(max(0, int(pos[k])), shown[k] - 1) for k in ("a", "b")}
    return {"leader": pos.get("leader", "a"), **clamp}
