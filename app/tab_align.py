"""Align tab: DTW options, the path over the similarity matrix, confidence, downloads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import compute
from app.compute import Embedded
from app.player import position
from app.session import guard
from carl_core.pairing import PairAlignment

if TYPE_CHECKING:
    from carl_core.align import Method

METHODS: dict[str, Method] = {
    "Auto: exact, multiscale for very long videos": "auto",
    "Exact: the optimal path": "exact",
    "Multiscale: coarse to fine, fast on long videos": "multiscale",
}


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
            colorbar={"title": {"text": "cosine<br>similarity"}, "thickness": 12},
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
        title={"text": "Alignment path over the frame-similarity matrix", "font": {"size": 14}},
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
        title={"text": "Match confidence along A", "font": {"size": 14}},
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
    matched = result.confidence.a[result.mapping.covered_a]
    m[2].metric(
        "Mean confidence",
        f"{100 * float(np.mean(matched)) if matched.size else 0:.0f}%",
        help="Estimated probability that a matched frame of A is matched right (calibrated; see the "
        f"README). Same action in both videos: {100 * result.confidence.pair:.0f}% likely.",
    )
    m[3].metric("Path cost per step", f"{al.mean_cost:.3f}")
    m[4].metric("Method", al.method)
    for text in result.warnings:
        st.warning(text, icon=":material/warning:")
    pos = position()
    left, right = st.columns([3, 2])
    left.plotly_chart(heatmap(ea, eb, result, pos), key="align_heatmap")
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
