"""CARL Studio: two performances of an action, lined up frame by frame.

    streamlit run app/main.py

The page: a sidebar to choose the two videos and the model; the synchronised player (B
follows A through the DTW frame mapping); tabs for the alignment's details and downloads, the
embedding map, frame retrieval and training. Every computation is a call into ``carl_core``
(see ``app/compute.py``); this script only lays the page out.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repo
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import compute, models, session, tab_align, tab_map, tab_retrieve, tab_train  # noqa: E402
from app.player import player  # noqa: E402
from app.session import guard  # noqa: E402

TABS = ["Align", "Embedding map", "Retrieve", "Train"]


def sidebar() -> tuple[dict, models.ModelChoice | None, str]:
    with st.sidebar:
        st.header("CARL Studio", divider="gray")
        st.subheader("Videos")
        names = list(session.samples())
        defaults = {"A": names[0] if names else None, "B": names[1] if len(names) > 1 else None}
        videos = {slot: session.video_picker(slot, defaults[slot]) for slot in session.SLOTS}
        st.caption(
            f"Drag and drop any common video format, up to {session.upload_limit_mb()} MB a file; "
            "bigger files open by path without copying. Uploads stay in a private temporary folder "
            "that is deleted when you leave."
        )
        st.subheader("Model")
        choice = models.picker(tab_train.trained_checkpoints())
        st.subheader("Settings")
        fps_choice = st.selectbox(
            "Frames to embed",
            list(compute.FPS_CHOICES),
            key="fps_choice",
            help="Auto: every frame up to a minute of video, then 10 per second on a CPU "
            "(30 on a GPU). Fewer frames: faster, coarser alignment.",
        )
        st.caption(f"Runs on: {models.device_text()}")
    return videos, choice, fps_choice


def embed_both(choice: models.ModelChoice, videos: dict, fps_choice: str):
    """Model and the embeddings of both videos, with a progress bar each; None where it failed."""
    model = None
    with guard("loading the model"), st.spinner(f"loading {choice.label}…"):
        model, embedder = models.load(choice)
    if model is None:
        return None, {}
    out = {}
    for slot, video in videos.items():
        if video is None:
            continue
        fps = compute.sampling_fps(fps_choice, video, models.device().type)
        bar = st.empty()

        def progress(done: int, total: int, message: str, bar=bar, slot=slot) -> None:
            bar.progress(min(1.0, done / max(total, 1)), text=f"Embedding video {slot}: {message}")

        with guard(f"embedding video {slot}"):
            out[slot.lower()] = compute.embed(choice.key, embedder, video, fps, progress)
        bar.empty()
    return model, out


def main() -> None:
    st.set_page_config(page_title="CARL Studio", page_icon="🎞️", layout="wide")
    videos, choice, fps_choice = sidebar()
    st.markdown(
        "#### Two performances of an action, lined up frame by frame\n"
        "CARL (Chen et al., CVPR 2022) embeds every frame; dynamic time warping matches the frames "
        "of B to those of A. Press play: B follows A. Pause anywhere, step frame by frame, swap the lead."
    )
    session.show_callback_error()
    model, embedded = (None, {})
    if choice is None:
        st.info("Choose a model in the sidebar to begin.", icon=":material/arrow_back:")
    elif any(v is None for v in videos.values()):
        st.info("Pick or upload two videos in the sidebar to align them.", icon=":material/arrow_back:")
        model, embedded = embed_both(choice, videos, fps_choice)
    else:
        model, embedded = embed_both(choice, videos, fps_choice)

    result = None
    if len(embedded) == 2:
        ea, eb = embedded["a"], embedded["b"]
        method, open_begin, open_end = tab_align.options()
        with guard("aligning the videos"), st.spinner("aligning and checking the matches…"):
            content = (compute.content(ea), compute.content(eb))
            result = compute.align(ea.key, eb.key, ea, eb, method, open_begin, open_end, content)
        if result is not None:
            with guard("preparing the player"):
                forced = st.session_state.setdefault("force_proxy", {})
                with st.spinner("preparing the videos for the browser…"):
                    media = {k: compute.player_media(e, e.video.key in forced) for k, e in embedded.items()}
                res = player(ea, eb, media["a"], media["b"], result)
                bad = getattr(res, "media_error", None)
                if bad in ("a", "b") and embedded[bad].video.key not in forced:
                    forced[embedded[bad].video.key] = True  # the browser cannot play it: serve a proxy
                    st.rerun()

    if embedded:
        compute.warm_up_map()  # once per server, after the first embeddings: the map opens fast
    tabs = st.tabs(TABS, key="tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            if result is not None:
                tab_align.render(embedded["a"], embedded["b"], result, choice.label if choice else "")
            else:
                st.caption("The alignment appears here once both videos are embedded.")
    with tabs[1]:
        if tabs[1].open:
            if embedded:
                with guard("mapping the embeddings"):
                    tab_map.render(embedded)
            else:
                st.caption("The map appears here once a video is embedded.")
    with tabs[2]:
        if tabs[2].open:
            if embedded and model is not None:
                tab_retrieve.render(embedded, model)
            else:
                st.caption("Retrieval needs at least one embedded video.")
    with tabs[3]:
        if tabs[3].open:
            with guard("showing the training runs"):
                tab_train.render(videos)


main()
