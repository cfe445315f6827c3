"""Retrieve tab: the nearest frames, over both videos, to a frame or to a dropped picture."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app import compute
from app.compute import Embedded
from app.player import position, request_seek
from app.session import guard, safe_callback

QUERY_A, QUERY_B, QUERY_PICTURE = "A frame of A", "A frame of B", "A picture"


@safe_callback
def _use_player_frame(slot: str) -> None:
    pos = position()
    if pos is not None:
        st.session_state[f"query_frame_{slot}"] = pos[slot]


def render(embedded: dict[str, Embedded], model: Any) -> None:
    sources = [q for q, slot in ((QUERY_A, "a"), (QUERY_B, "b")) if slot in embedded] + [QUERY_PICTURE]
    source = st.radio("Query", sources, horizontal=True, key="query_source")
    left, right = st.columns([1, 3])
    query: np.ndarray | None = None
    exclude: tuple[str, Any] | None = None  # ("video", id) or ("window", (id, frame, radius))
    with left:
        if source == QUERY_PICTURE:
            up = st.file_uploader(
                "Drop a picture", type=["png", "jpg", "jpeg", "webp", "bmp"], key="query_picture"
            )
            if up is None:
                st.info("Drop a picture to find the frames that look like it.", icon=":material/image:")
                return
            with guard("reading the picture"):
                query, rgb = compute.embed_picture(model, up.getvalue())
                st.image(rgb, caption="query picture")
            if query is None:
                return
        else:
            slot = "a" if source == QUERY_A else "b"
            e = embedded[slot]
            key = f"query_frame_{slot}"
            n = len(e.times)
            pos = position()
            if key not in st.session_state and pos is not None:
                st.session_state[key] = pos[slot]  # start from where the player rests
            if st.session_state.get(key, 0) >= n:
                st.session_state[key] = 0
            i = st.slider(f"Frame of {slot.upper()} (sample)", 0, n - 1, key=key)
            st.button(
                "Use the player's frame",
                on_click=_use_player_frame,
                args=(slot,),
                disabled=position() is None,
                help="Pause the player on a frame first.",
                icon=":material/pause_circle:",
            )
            st.image(
                compute.thumbs_of(e, [i], size=224)[0],
                caption=f"{slot.upper()} · frame {int(e.indices[i])} · {e.times[i]:.2f} s",
            )
            query = e.embs[i]
            skip_own = st.toggle(f"Leave out video {slot.upper()}", value=False, key="query_skip_own")
            radius = st.number_input(
                "…or leave out only its frames within ± this many of the query",
                min_value=0,
                max_value=1000,
                value=5,
                key="query_radius",
                disabled=skip_own,
                help="Neighbouring frames look alike: leaving them out shows other moments. 0 keeps "
                "every frame, the query's own included.",
            )
            exclude = ("video", slot.upper()) if skip_own else ("window", (slot.upper(), i, int(radius)))
        k = st.slider("How many", 1, 30, 8, key="query_k")
    with right, guard("searching"):
        space = "frames" if source == QUERY_PICTURE else "context"
        index = compute.frame_index(
            tuple(e.key for e in embedded.values()),
            space,
            tuple(
                (s.upper(), e.result.frame_embeddings if space == "frames" else e.embs, e.times)
                for s, e in embedded.items()
            ),
        )
        if query.shape[0] != index.dim:
            st.error("The picture was embedded by another model than the videos; pick the model again.")
            return
        kw: dict[str, Any] = {}
        if exclude and exclude[0] == "video":
            kw["exclude_video"] = exclude[1]
        elif exclude and exclude[1][2] > 0:
            kw["exclude_window"] = exclude[1]
        hits = index.query(query, k=k, **kw)[0]
        if not hits:
            st.info("No frames left to show: include more of the videos.")
            return
        results(embedded, hits)


def results(embedded: dict[str, Embedded], hits: list) -> None:
    st.markdown(f"**Top {len(hits)}** nearest frames")
    cols = st.columns(4)
    for rank, h in enumerate(hits):
        slot = h.video_id.lower()
        e = embedded[slot]
        with cols[rank % 4]:
            st.image(
                compute.thumbs_of(e, [h.frame], size=160)[0],
                caption=f"#{rank + 1} · {h.video_id} · frame {int(e.indices[h.frame])} · {h.time:.2f} s · "
                f"similarity {h.similarity:.3f}",
            )
            st.button(
                "Show in player",
                key=f"hit_{rank}_{slot}_{h.frame}",
                on_click=request_seek,
                args=(slot, h.frame),
                icon=":material/play_arrow:",
            )
