"""Embedding map tab: UMAP of the frames of both videos, selection shown as thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import compute
from app.compute import Embedded
from app.player import request_seek
from app.session import safe_callback

COLOURS = {"a": "#1f77b4", "b": "#d62728"}
SYMBOLS = {"a": "circle", "b": "diamond"}
MAX_THUMBS = 24


def figure(embedded: dict[str, Embedded], coords: list[np.ndarray], by_time: bool, lines: bool) -> go.Figure:
    fig = go.Figure()
    many = sum(len(c) for c in coords) > 5000
    trace = go.Scattergl if many else go.Scatter  # WebGL beyond a few thousand points
    for (slot, e), xy in zip(embedded.items(), coords):
        t = e.times
        marker: dict[str, Any] = {"size": 7, "symbol": SYMBOLS[slot], "line": {"width": 0}}
        if by_time:
            marker.update(
                color=t / max(float(t[-1]), 1e-9),
                colorscale="Plasma",
                cmin=0,
                cmax=1,
                showscale=slot == "a",
                colorbar={"title": {"text": "time<br>(fraction)"}, "thickness": 12},
            )
        else:
            marker["color"] = COLOURS[slot]
        fig.add_trace(
            trace(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="lines+markers" if lines else "markers",
                line={"color": COLOURS[slot], "width": 1},
                opacity=0.9,
                marker=marker,
                name=f"{slot.upper()} · {e.video.name}",
                customdata=np.stack(
                    [np.full(len(t), 0 if slot == "a" else 1), np.arange(len(t)), e.indices, t], 1
                ),
                hovertemplate=(
                    f"<b>{slot.upper()}</b> · {e.video.name}<br>"
                    "frame %{customdata[2]} · %{customdata[3]:.2f} s<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        height=520,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        legend={"orientation": "h", "y": -0.05},
        # Streamlit's default drag mode here is pan, where a click selects its point (and the
        # player jumps there); box and lasso are in the chart's toolbar.
        xaxis={"showticklabels": False, "title": None},
        yaxis={"showticklabels": False, "title": None, "scaleanchor": "x"},
    )
    return fig


def selected_frames(selection: Any) -> tuple[list[tuple[str, int]], bool]:
    """(video, sample) of the selected points, and whether it was one point (a click)."""
    if not selection:
        return [], False
    points = selection.get("points", []) or []
    out = []
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, dict):  # typed arrays come back as {"0": .., "1": ..}
            cd = [cd[k] for k in sorted(cd, key=lambda k: int(k))]
        if not isinstance(cd, list | tuple) or len(cd) < 2:
            continue
        out.append(("a" if int(cd[0]) == 0 else "b", int(cd[1])))
    # One point: a click (or a lasso around one point, which may as well jump too).
    return out, len(out) == 1


@safe_callback
def _on_select() -> None:
    """A click on one point jumps the player there."""
    state = st.session_state.get("map_chart")
    selection = state.get("selection") if state else None
    frames, click = selected_frames(selection)
    if click:
        request_seek(*frames[0])


def render(embedded: dict[str, Embedded]) -> None:
    c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
    by_time = c1.radio("Colour by", ["video", "time"], horizontal=True, key="map_colour") == "time"
    lines = c2.toggle("Join each video's frames in order", value=True, key="map_lines")
    method = c3.radio("Projection", ["UMAP", "PCA"], horizontal=True, key="map_method").lower()
    with st.spinner("laying out the frames…"):
        keys = tuple(e.key for e in embedded.values())
        coords, used, note = compute.projection(keys, tuple(e.embs for e in embedded.values()), method)
    if note:
        st.caption(note)
    event = st.plotly_chart(
        figure(embedded, coords, by_time, lines),
        key="map_chart",
        on_select=_on_select,
        selection_mode=("points", "box", "lasso"),
    )
    frames, _ = selected_frames(event.selection if event else None)
    st.caption(
        f"{used.upper()} of {sum(len(c) for c in coords):,} frames. Hover a point for its video and time; "
        "click one to show it in the player; pick the box or lasso tool (top right of the map) and "
        "draw around some to see their frames. Double-click the map to clear a selection."
    )
    if frames:
        thumbnails(embedded, frames)


def thumbnails(embedded: dict[str, Embedded], frames: list[tuple[str, int]]) -> None:
    frames = sorted(set(frames))  # by video, then in time
    shown = frames
    if len(frames) > MAX_THUMBS:  # spread over the selection rather than its first few
        shown = [frames[i] for i in np.linspace(0, len(frames) - 1, MAX_THUMBS).astype(int)]
    st.markdown(
        f"**{len(frames)} frame{'s' if len(frames) > 1 else ''} selected**"
        + (f" (showing {len(shown)})" if len(shown) < len(frames) else "")
    )
    cols = st.columns(6)
    for k, (slot, i) in enumerate(shown):
        e = embedded[slot]
        pic = compute.thumbs_of(e, [i])[0]
        with cols[k % 6]:
            st.image(pic, caption=f"{slot.upper()} · frame {int(e.indices[i])} · {e.times[i]:.2f} s")
            st.button(
                "Show",
                key=f"map_show_{slot}_{i}",
                on_click=request_seek,
                args=(slot, i),
                icon=":material/play_arrow:",
            )
