"""Align tab: DTW options, the path over the similarity matrix, confidence, downloads, and
who to follow in each video (a crop box, for models that read body pose)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import compute
from app.compute import Embedded
from app.player import position
from app.session import SLOTS, Video, guard, safe_callback
from carl_core.pairing import PairAlignment

if TYPE_CHECKING:
    from carl_core.align import Method

METHODS: dict[str, Method] = {
    "Auto: exact, multiscale for very long videos": "auto",
    "Exact: the optimal path": "exact",
    "Multiscale: coarse to fine, fast on long videos": "multiscale",
}


# What the match confidence compares each match with, beside the model's embeddings.
_VIEWS = {"pose": "each frame on its own, mainly its body pose", "pictures": "what the frames look like"}


def options() -> tuple[Method, bool, bool]:
    """The DTW options as last set (their widgets are drawn later, in the tab)."""
    label = st.session_state.get("dtw_method", next(iter(METHODS)))
    return (
        METHODS.get(label, "auto"),
        bool(st.session_state.get("open_begin", False)),
        bool(st.session_state.get("open_end", False)),
    )


def _downsample_path(pa: np.ndarray, pb: np.ndarray, most: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    if len(pa) <= most:
        return pa, pb
    keep = np.linspace(0, len(pa) - 1, most).astype(int)
    return pa[keep], pb[keep]


def heatmap(ea: Embedded, eb: Embedded, result: PairAlignment, pos: dict | None) -> go.Figure:
    rows, cols, sim = compute.similarity_preview(ea.key, eb.key, ea.embs, eb.embs)
    pa, pb = _downsample_path(result.alignment.path_a, result.alignment.path_b)
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=sim,
            x=cols,
            y=rows,
            colorscale="Viridis",
            # Titles beside the bar and above the chart (in Streamlit): on top they sat under its toolbar.
            colorbar={"title": {"text": "cosine similarity", "side": "right"}, "thickness": 12},
            hovertemplate="A sample %{y} · B sample %{x}<br>similarity %{z:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=pb, y=pa, mode="lines", line={"color": "white", "width": 2}, name="DTW path", hoverinfo="skip"
        )
    )
    if pos is not None:
        fig.add_trace(
            go.Scatter(
                x=[pos["b"]],
                y=[pos["a"]],
                mode="markers",
                marker={
                    "color": "#ff2b2b",
                    "size": 13,
                    "symbol": "x",
                    "line": {"width": 1, "color": "white"},
                },
                name="player",
                hovertemplate="player: A %{y} · B %{x}<extra></extra>",
            )
        )
    fig.update_layout(
        height=430,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": f"B: {eb.video.name} (sample)"},
        yaxis={"title": f"A: {ea.video.name} (sample)", "autorange": "reversed"},
        showlegend=False,
    )
    return fig


def confidence(ea: Embedded, result: PairAlignment, pos: dict | None) -> go.Figure:
    conf, covered, blank = result.confidence.a, result.mapping.covered_a, result.confidence.blank_a
    shown = covered & ~blank
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ea.times,
            y=np.where(shown, conf, np.nan),
            mode="lines",
            line={"color": "#2a9d8f"},
            name="matched",
            hovertemplate="A at %{x:.2f} s<br>match right with probability %{y:.0%}<extra></extra>",
        )
    )
    if not covered.all():
        fig.add_trace(
            go.Scatter(
                x=ea.times,
                y=np.where(covered, np.nan, 0.0),
                mode="lines",
                line={"color": "#999", "dash": "dot"},
                name="left unmatched (open end)",
            )
        )
    if blank.any():
        fig.add_trace(
            go.Scatter(
                x=ea.times, y=np.where(blank, 0.0, np.nan), mode="lines", line={"color": "#333", "width": 6},
                name="blank frames", hovertemplate="A at %{x:.2f} s: a blank frame<extra></extra>",
            )
        )  # fmt: skip
    if pos is not None:
        fig.add_vline(x=float(ea.times[pos["a"]]), line={"color": "#ff2b2b", "width": 2})
    fig.update_layout(
        height=430,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis={"title": "time in A (s)"},
        yaxis={"title": "probability the match is right", "range": [-0.02, 1.02], "tickformat": ".0%"},
        showlegend=False,
    )
    return fig


def render(ea: Embedded, eb: Embedded, result: PairAlignment, model_label: str) -> None:
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    c1.selectbox(
        "DTW method",
        list(METHODS),
        key="dtw_method",
        help="Exact is optimal and fast up to about 10,000 x 10,000 frames; multiscale handles hours.",
    )
    c2.toggle(
        "Open begin",
        key="open_begin",
        help="Either video may start with frames that match nothing (idle time before the action).",
    )
    c3.toggle(
        "Open end",
        key="open_end",
        help="Either video may end with frames that match nothing (idle time after).",
    )
    al = result.alignment
    m = st.columns(5)
    m[0].metric("Frames of A", f"{len(ea.times):,}", help=f"{ea.video.duration:.1f} s")
    m[1].metric("Frames of B", f"{len(eb.times):,}", help=f"{eb.video.duration:.1f} s")
    # Both videos' matched frames, as the library's warnings count them: one number, not two.
    conf, mp = result.confidence, result.mapping
    matched = np.r_[conf.a[mp.covered_a], conf.b[mp.covered_b]]
    m[2].metric(
        "Mean confidence",
        f"{100 * float(np.mean(matched)) if matched.size else 0:.0f}%",
        help="Estimated probability that a matched frame of A or B is matched right (calibrated; see the "
        f"README), checked against {_VIEWS[conf.content_kind] if conf.content else 'the embeddings alone'}. "
        f"Same action in both videos: {100 * result.confidence.pair:.0f}% likely.",
    )
    m[3].metric("Path cost per step", f"{al.mean_cost:.3f}")
    m[4].metric("Method", al.method)
    for text in result.warnings:
        st.warning(text, icon=":material/warning:")
    pos = position()
    left, right = st.columns([3, 2])
    left.markdown("**Alignment path over the frame-similarity matrix**")
    left.plotly_chart(heatmap(ea, eb, result, pos), key="align_heatmap")
    right.markdown("**Match confidence along A**")
    right.plotly_chart(confidence(ea, result, pos), key="align_confidence")
    st.caption(
        "Bright cells: frames that look alike to the model. The white path is the DTW alignment; "
        "the red cross is where the player rests (pause it to update)."
    )
    _downloads(ea, eb, result, model_label)


def _downloads(ea: Embedded, eb: Embedded, result: PairAlignment, model_label: str) -> None:
    stem = f"{Path(ea.video.name).stem}__{Path(eb.video.name).stem}"
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download the alignment (JSON)",
        data=compute.alignment_json(result, ea, eb, model_label),
        file_name=f"alignment_{stem}.json",
        mime="application/json",
        icon=":material/download:",
        help="The path, both frame mappings with times, the confidences and the cost (schema in the README).",
    )
    with c2:
        done = st.session_state.get("export")
        lead = st.radio(
            "Leading video",
            ["A", "B"],
            horizontal=True,
            key="export_lead",
            help="The leading video shows each of its frames once, at its own pace; the other follows.",
        )
        key = f"{ea.key}|{eb.key}|{lead}"
        if st.button("Make the side-by-side video (mp4)", icon=":material/movie:"):
            bar = st.progress(0.0, text="writing the aligned video…")
            with guard("writing the side-by-side video"):

                def progress(done: int, total: int, message: str) -> None:
                    bar.progress(min(1.0, done / max(total, 1)), text=message)

                out = compute.export_side_by_side(ea, eb, result, progress, timeline=lead.lower())
                done = st.session_state["export"] = {"path": str(out), "key": key}
            bar.empty()
        if done and done.get("key") == key and Path(done["path"]).is_file():
            path = Path(done["path"])
            st.download_button(
                "Download the side-by-side video",
                data=path.read_bytes(),
                file_name=path.name,
                mime="video/mp4",
                icon=":material/download:",
            )


# --------------------------------------------------------------------------- who to follow

CROPS = "crops"  # session state: {slot: (video key, "x0,y0,x1,y1")}, kept while the tab is closed


def crop_box(slot: str, video: Video | None = None) -> str | None:
    """The crop box chosen for the video in ``slot`` ("x0,y0,x1,y1" pixels), or None: the most
    prominent person. A box drawn on another video is forgotten."""
    kept = st.session_state.get(CROPS, {}).get(slot)
    if not kept:
        return None
    key, text = kept
    if video is not None and key != video.key:
        return None
    return text or None


def _set_crop(slot: str, video: Video, text: str) -> None:
    st.session_state.setdefault(CROPS, {})[slot] = (video.key, text.strip())


@safe_callback
def _typed(slot: str, video: Video) -> None:
    _set_crop(slot, video, str(st.session_state.get(f"crop_text_{slot}", "")))


def box_of(selection: Any, width: int, height: int) -> str | None:
    """ "x0,y0,x1,y1" (whole pixels, inside the frame) of a plotly box selection, or None."""
    boxes = (selection or {}).get("box") or []
    if not boxes:
        return None
    b = boxes[-1]
    xs, ys = sorted(float(v) for v in b.get("x", [])[:2]), sorted(float(v) for v in b.get("y", [])[:2])
    if len(xs) != 2 or len(ys) != 2:
        return None
    x0, x1 = max(0, round(xs[0])), min(width, round(xs[1]))
    y0, y1 = max(0, round(ys[0])), min(height, round(ys[1]))
    return f"{x0},{y0},{x1},{y1}" if x1 > x0 and y1 > y0 else None


@safe_callback
def _drawn(slot: str, video: Video) -> None:
    state = st.session_state.get(f"crop_chart_{slot}")
    box = box_of(state.get("selection") if state else None, video.width, video.height)
    if box is not None:
        _set_crop(slot, video, box)
        st.session_state[f"crop_text_{slot}"] = box


@safe_callback
def _clear(slot: str, video: Video) -> None:
    _set_crop(slot, video, "")
    st.session_state[f"crop_text_{slot}"] = ""


def first_frame(video: Video, box: str | None) -> go.Figure:
    """The video's first frame in its own pixels, the crop box drawn on it; box-select to draw one."""
    stat = video.path.stat()
    pic = compute.thumbnails(str(video.path), f"{stat.st_size}:{stat.st_mtime_ns}", (0,), 360)[0]
    h, w = pic.shape[:2]
    fig = go.Figure(go.Image(z=pic, dx=video.width / w, dy=video.height / h, hoverinfo="skip"))
    # Invisible points over the frame: plotly reports a box selection where there is something to select.
    gx, gy = np.meshgrid(np.linspace(0, video.width, 12), np.linspace(0, video.height, 12))
    fig.add_trace(
        go.Scatter(x=gx.ravel(), y=gy.ravel(), mode="markers", marker={"opacity": 0}, hoverinfo="skip")
    )
    if box:
        try:
            x0, y0, x1, y1 = (float(v) for v in box.split(","))
            fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line={"color": "#ffd400", "width": 3})
        except ValueError:
            pass  # a box that is no box: the embedding says so
    fig.update_layout(
        height=260,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        dragmode="select",
        showlegend=False,
        xaxis={"visible": False, "range": [0, video.width]},
        yaxis={"visible": False, "range": [video.height, 0], "scaleanchor": "x"},
    )
    return fig


def people(videos: dict[str, Video | None]) -> None:
    """Who to follow in each video: a box drawn on its first frame, or typed."""
    # A fixed title: a new one would be a new expander, closed again after each box drawn.
    with st.expander("Who to follow in each video", icon=":material/person_search:"):
        st.caption(
            "The model follows the most prominent person in each video. To follow someone else, drag "
            "a box around them on the first frame, or type it in pixels as x0,y0,x1,y1. Clear it to "
            "go back to the most prominent person."
        )
        cols = st.columns(2)
        for col, slot in zip(cols, SLOTS):
            video = videos.get(slot)
            if video is None:
                continue
            box = crop_box(slot, video)
            key = f"crop_text_{slot}"
            if st.session_state.get(key, "") != (box or ""):
                st.session_state[key] = box or ""  # the widget shows what is kept (e.g. after a tab switch)
            with col, guard(f"showing the first frame of video {slot}"):
                st.plotly_chart(
                    first_frame(video, box),
                    key=f"crop_chart_{slot}",
                    on_select=partial(_drawn, slot, video),
                    selection_mode="box",
                    config={"displayModeBar": False},
                )
                c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
                c1.text_input(
                    f"Box in video {slot} ({video.width} x {video.height} px)",
                    key=key,
                    placeholder="x0,y0,x1,y1",
                    on_change=_typed,
                    args=(slot, video),
                )
                c2.button(
                    "Clear", key=f"crop_clear_{slot}", on_click=_clear, args=(slot, video), disabled=not box
                )
