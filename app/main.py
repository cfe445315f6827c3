"""CARL Studio: two performances of an action, lined up frame by frame.

    streamlit run app/main.py

The page: a sidebar to choose the two videos and the model; the synchronised player (B
follows A through the DTW frame mapping); tabs for the alignment's details and downloads, the
embedding map, frame retrieval and training. Every computation is a call into ``carl_core``
(see ``app/compute.py``); this script only lays the page out.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repo
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import compute, models, session, tab_align, tab_map, tab_retrieve, tab_train  # noqa: E402
from app.player import player, unmount  # noqa: E402
from app.session import guard, user_text  # noqa: E402

TABS = ["Align", "Embedding map", "Retrieve", "Train"]
SIDEBAR_PX = 360
CSS = '[role="listbox"] [role="option"] [data-item-hl] { white-space: normal; overflow: visible; }'


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


def _embed_with(choice: models.ModelChoice, videos: dict, fps_choice: str):
    """The model of a choice and the embeddings of the loaded videos, with a progress bar each;
    (None, {}) where the model does not load, a video missing where it failed."""
    model = None
    with guard("loading the model"), st.spinner(f"loading {choice.label}…"):
        model, embedder = models.load(choice)
    if model is None:
        return None, {}
    pose = models.reads_pose(model)
    out = {}
    for slot, video in videos.items():
        if video is None:
            continue
        fps = compute.sampling_fps(fps_choice, video, models.device().type)
        bar = st.empty()

        def progress(done: int, total: int, message: str, bar=bar, slot=slot) -> None:
            text = user_text(f"Embedding video {slot}: {message}")
            bar.progress(min(1.0, done / max(total, 1)), text=text)

        with guard(f"embedding video {slot} ({video.name})"):
            crop = tab_align.crop_box(slot, video) if pose else None
            out[slot.lower()] = compute.embed(choice.key, embedder, video, fps, progress, crop)
        bar.empty()
    return model, out


def embed_both(choice: models.ModelChoice, videos: dict, fps_choice: str):
    """(model, {slot: Embedded}, the choice the pair uses).

    A model that reads pose needs a person: where nobody is found in most frames of a video,
    the pair switches to the visual model (both videos: embeddings of two models cannot be
    compared), saying so."""
    model, out = _embed_with(choice, videos, fps_choice)
    for e in out.values():
        got, planned = e.unread()
        if got < planned and not e.video.damaged:
            st.warning(
                f"Only {got} of the {planned} frames of {e.video.name} could be read: the file is cut "
                "off or damaged, and the rest is left out. Get the complete file to align all of it.",
                icon=":material/broken_image:",
            )
    from carl_core.pairing import bodiless  # here, not at start-up: it loads torch

    nobody = bodiless(out)
    if not nobody:
        return model, out, choice
    visual = models.visual_choice()
    where = "; ".join(
        f"video {slot.upper()} ({out[slot].video.name}): a readable body in {100 * share:.0f}% of its frames"
        for slot, share in nobody.items()
    )
    st.warning(
        f"Nobody was found in most frames ({where}). {choice.label} compares body poses, so this "
        f"pair is aligned with the visual model instead, {visual.label}, for both videos (the "
        "embeddings of two models cannot be compared). If a person is there, draw a box around "
        "them under “Who to follow” in the Align tab.",
        icon=":material/person_off:",
    )
    vmodel, vout = _embed_with(visual, videos, fps_choice)
    # Keep the poses that were found: the skeleton still shows what the pose model saw.
    vout = {slot: replace(e, pose=out[slot].pose if slot in out else None) for slot, e in vout.items()}
    return vmodel, vout, visual


def aligned_with(used: models.ModelChoice, chosen: models.ModelChoice, embedded: dict) -> str:
    """Which model the pair uses, and whom it follows where a box says."""
    text = f"Aligned with: **{used.label}**" + (" (see the note above)" if used is not chosen else "")
    boxes = [
        f"in {slot.upper()} the person inside {box}"
        for slot, e in embedded.items()
        if (box := tab_align.crop_box(slot.upper(), e.video)) and e.pose is not None
    ]
    return text + (f" · following {' and '.join(boxes)}" if boxes else "")


def main() -> None:
    # A sidebar wide enough for the model names; the picker's list wraps whatever is longer.
    st.set_page_config(
        page_title="CARL Studio", page_icon="🎞️", layout="wide", initial_sidebar_state=SIDEBAR_PX
    )
    st.html(f"<style>{CSS}</style>")
    videos, choice, fps_choice = sidebar()
    st.markdown(
        "#### Two performances of an action, lined up frame by frame\n"
        "CARL (Chen et al., CVPR 2022) embeds every frame; dynamic time warping matches the frames "
        "of B to those of A. Press play: B follows A. Pause anywhere, step frame by frame, swap the lead."
    )
    session.show_callback_error()
    model, embedded, used = (None, {}, choice)
    if choice is None:
        st.info("Choose a model in the sidebar to begin.", icon=":material/arrow_back:")
    else:
        if any(v is None for v in videos.values()):
            st.info("Pick or upload two videos in the sidebar to align them.", icon=":material/arrow_back:")
        model, embedded, used = embed_both(choice, videos, fps_choice)

    result = None
    if len(embedded) == 2:
        ea, eb = embedded["a"], embedded["b"]
        method, open_begin, open_end = tab_align.options()
        with guard("aligning the videos"), st.spinner("aligning and checking the matches…"):
            content, kind = compute.content_view(ea, eb)
            result = compute.align(ea.key, eb.key, ea, eb, method, open_begin, open_end, kind, content)
        if result is not None:
            with guard("preparing the player"):
                forced = st.session_state.setdefault("force_proxy", {})
                with st.spinner("preparing the videos for the browser…"):
                    media = {k: compute.player_media(e, e.video.key in forced) for k, e in embedded.items()}
                if used is not None and choice is not None:
                    st.caption(aligned_with(used, choice, embedded))
                reads_pose = model is not None and models.reads_pose(model)
                res = player(ea, eb, media["a"], media["b"], result, skeleton=reads_pose)
                bad = getattr(res, "media_error", None)
                if bad in ("a", "b") and embedded[bad].video.key not in forced:
                    forced[embedded[bad].video.key] = True  # the browser cannot play it: serve a proxy
                    st.rerun()
    if result is None:
        unmount()  # no player this run: its position and any jump asked of it go with it

    if embedded:
        compute.warm_up_map()  # once per server, after the first embeddings: the map opens fast
    tabs = st.tabs(TABS, key="tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            if (model is not None and models.reads_pose(model)) or used is not choice:
                tab_align.people(videos)
            if result is not None:
                tab_align.render(embedded["a"], embedded["b"], result, used.label if used else "")
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
