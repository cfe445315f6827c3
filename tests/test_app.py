"""The Streamlit app's logic, tab by tab, with Streamlit's AppTest (no browser).

The app runs with a small random-weight model (the ``small`` preset at 64 px), its own studio
home and embedding cache, on the bundled sample videos: nothing depends on the default
model's quality. Browser behaviour (playback, plotly selections) is in tests/e2e.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from carl_core.pairing import align_pair
from tests.e2e.studio import TINY_PRESET, make_test_model, synthetic_samples

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "app" / "main.py")
SAMPLES = ROOT / "assets" / "samples"


@pytest.fixture(scope="module")
def studio_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Environment of the app under test; restored afterwards."""
    tmp = tmp_path_factory.mktemp("app")
    paths = {
        "model": make_test_model(tmp / "model.pt"),
        "home": tmp / "home",
        "cache": tmp / "cache",
        "preset": tmp / "tiny.yaml",
        "tmp": tmp,
    }
    paths["preset"].write_text(TINY_PRESET)
    saved = {
        k: os.environ.get(k)
        for k in ("CARL_DEFAULT_MODEL", "CARL_STUDIO_HOME", "CARL_CACHE_DIR", "CARL_SAMPLES_DIR")
    }
    os.environ.update(
        CARL_SAMPLES_DIR=str(synthetic_samples(tmp / "samples")),
        CARL_DEFAULT_MODEL=str(paths["model"]),
        CARL_STUDIO_HOME=str(paths["home"]),
        CARL_CACHE_DIR=str(paths["cache"]),
    )
    yield paths
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_app(tab: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=300)
    if tab:
        at.session_state["tab"] = tab
    return at.run()


def no_failures(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def player_data(at: AppTest) -> dict:
    (player,) = at.get("bidi_component")
    return json.loads(player.proto.json)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# --------------------------------------------------------------------------- first launch, align


def test_first_launch_aligns_the_bundled_samples(studio_env) -> None:
    from carl_core.video import probe_video

    at = run_app()
    no_failures(at)
    n_a = probe_video(SAMPLES / "squat_a.mp4").num_frames
    n_b = probe_video(SAMPLES / "squat_b.mp4").num_frames
    assert metric(at, "Frames of A") == str(n_a) and metric(at, "Frames of B") == str(n_b)
    data = player_data(at)
    a_to_b, b_to_a = np.array(data["a_to_b"]), np.array(data["b_to_a"])
    assert len(a_to_b) == n_a and len(b_to_a) == n_b
    assert (np.diff(a_to_b) >= 0).all() and a_to_b.max() < n_b and (np.diff(b_to_a) >= 0).all()
    assert len(data["a"]["times"]) == n_a and data["a"]["name"] == "squat_a.mp4"
    assert data["a"]["url"].endswith(".mp4") or data["a"]["url"].startswith("data:video/mp4")
    assert [b.label for b in at.get("download_button")] == ["Download the alignment (JSON)"]
    assert len(at.get("plotly_chart")) == 2  # the path over the similarities, the confidence


def test_alignment_json_holds_path_mappings_and_times(studio_env) -> None:
    from app import compute

    at = run_app()
    no_failures(at)
    memo = at.session_state["embeddings"]
    (ka, ra), (kb, rb) = list(memo.items())[:2]
    (ea, _), (eb, tb) = ra, rb  # an EmbedResult unpacks as the (embeddings, times) pair
    video = type("V", (), {"name": "x.mp4", "duration": 1.0})
    a, b = compute.Embedded(video, ra, None, ka), compute.Embedded(video, rb, None, kb)
    result = compute.align(ka, kb, a, b, "auto", False, False)
    doc = json.loads(compute.alignment_json(result, a, b, "test model"))
    al, mp = doc["alignment"], doc["mapping"]
    assert al["path_a"][0] == 0 and al["path_a"][-1] == len(ea) - 1 and al["path_b"][-1] == len(eb) - 1
    assert len(mp["a_to_b_time"]) == len(ea) and mp["times_b"] == pytest.approx(list(tb))
    assert doc["model"] == "test model"


def test_side_by_side_video_is_made_and_offered_for_download(studio_env) -> None:
    from carl_core.video import probe_video

    at = run_app()
    next(b for b in at.button if b.label == "Make the side-by-side video (mp4)").click()
    at.run()
    no_failures(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Download the side-by-side video" in labels
    (made,) = (Path(at.session_state["export"]["path"]),)
    info = probe_video(made)
    assert info.height == 360 and info.num_frames == probe_video(SAMPLES / "squat_a.mp4").num_frames


@pytest.mark.parametrize("lead", ["A", "B"])
def test_downloaded_side_by_side_shows_every_frame_once(studio_env, tmp_path, lead: str) -> None:
    """Barcode clips uploaded as A and B (A's frame timing hiccups half-way): every frame of the
    downloaded video shows the leader's next frame and the frame of the other matched to it."""
    from tests import barcode

    a = barcode.write_clip(tmp_path / "code_a.mp4", 40, hiccup_at=20)
    b = barcode.write_clip(tmp_path / "code_b.mp4", 60, tint=200)
    at = run_app()
    for slot, clip in (("A", a), ("B", b)):
        at.selectbox(key=f"video_src_{slot}").set_value("Upload a video…").run()
        at.file_uploader(key=f"upload_{slot}").upload(clip.name, clip.read_bytes(), "video/mp4")
        at.run()
    at.radio(key="export_lead").set_value(lead).run()
    next(b for b in at.button if b.label == "Make the side-by-side video (mp4)").click()
    at.run()
    no_failures(at)
    memo = at.session_state["embeddings"]
    (ea, _), (eb, _) = [v for k, v in memo.items() if "code_" in k]
    mapping = align_pair(ea, eb, method="auto", open_begin=False, open_end=False).mapping
    shown_a, shown_b = barcode.read_export(Path(at.session_state["export"]["path"]), gap=8)
    if lead == "A":
        np.testing.assert_array_equal(shown_a, np.arange(40))
        np.testing.assert_array_equal(shown_b, mapping.a_to_b)
    else:
        np.testing.assert_array_equal(shown_b, np.arange(60))
        np.testing.assert_array_equal(shown_a, mapping.b_to_a)


def test_align_options_rerun_the_alignment(studio_env) -> None:
    at = run_app()
    at.selectbox(key="dtw_method").set_value("Multiscale: coarse to fine, fast on long videos")
    at.toggle(key="open_begin").set_value(True)
    at.toggle(key="open_end").set_value(True)
    at.run()
    no_failures(at)
    assert metric(at, "Method") == "multiscale"


def test_open_ends_leave_the_padding_unmatched(studio_env, tmp_path) -> None:
    """A, and B = A with other footage before and after, with ImageNet Lite0 features: closed
    ends must match the padding somewhere; open begin and end put every frame of A on its own
    frame of B and leave the padding uncovered."""
    from app import models
    from tests.padded import PAD, synthetic_pair

    a, b = synthetic_pair(tmp_path)
    at = run_app()
    at.selectbox(key="model_choice").set_value(models.LITE0).run()
    for slot, clip in (("A", a), ("B", b)):
        at.selectbox(key=f"video_src_{slot}").set_value("Upload a video…").run()
        at.file_uploader(key=f"upload_{slot}").upload(clip.name, clip.read_bytes(), "video/mp4")
        at.run()
    no_failures(at)
    closed = player_data(at)
    n = len(closed["a_to_b"])
    truth = list(range(PAD, PAD + n))
    assert closed["a_to_b"] != truth and all(closed["covered_b"])
    at.toggle(key="open_begin").set_value(True)
    at.toggle(key="open_end").set_value(True)
    at.run()
    no_failures(at)
    opened = player_data(at)
    assert opened["a_to_b"] == truth
    assert [i for i, c in enumerate(opened["covered_b"]) if c] == truth
    assert all(opened["covered_a"]) and min(opened["conf_a"]) > 0.5


def test_a_three_frame_clip_against_a_long_one_is_warned_about(studio_env, tmp_path) -> None:
    from carl_core.video import read_video, write_video

    frames, _ = read_video(SAMPLES / "squat_c.mp4", indices=[10, 11, 12])
    clip = write_video(tmp_path / "three.mp4", frames, 24)
    at = run_app()
    at.selectbox(key="video_src_A").set_value("Upload a video…").run()
    at.file_uploader(key="upload_A").upload("three.mp4", clip.read_bytes(), "video/mp4")
    at.run()
    no_failures(at)
    says = [w.value for w in at.warning]
    assert any("only 3 frames" in w and "three.mp4" in w for w in says), says
    assert any("times as long" in w for w in says), says


def test_missing_default_model_says_what_to_do(studio_env, monkeypatch) -> None:
    monkeypatch.setenv("CARL_DEFAULT_MODEL", str(studio_env["tmp"] / "nowhere.pt"))
    at = run_app()
    assert not at.exception
    assert any("is missing" in e.value and "nowhere.pt" in e.value for e in at.error)
    assert any("Choose a model" in i.value for i in at.info)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("notes.mp4", b"this is a shopping list, not a video\n" * 20, "not a video"),
        ("empty.mp4", b"", "empty (0 bytes)"),
    ],
    ids=["text-named-mp4", "zero-bytes"],
)
def test_an_upload_that_is_no_video_shows_an_error(studio_env, name: str, content: bytes, says: str) -> None:
    at = run_app()
    at.selectbox(key="video_src_A").set_value("Upload a video…").run()
    at.file_uploader(key="upload_A").upload(name, content, "video/mp4")
    at.run()
    assert not at.exception
    assert any(says in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("bidi_component")


def test_an_uploaded_video_is_kept_in_a_private_folder(studio_env) -> None:
    at = run_app()
    at.selectbox(key="video_src_B").set_value("Upload a video…").run()
    at.file_uploader(key="upload_B").upload(
        "take 2 (final).mp4", (SAMPLES / "squat_c.mp4").read_bytes(), "video/mp4"
    )
    at.run()
    no_failures(at)
    assert player_data(at)["b"]["name"] == "take 2 (final).mp4"
    ws = at.session_state["workspace"].dir
    assert (ws.stat().st_mode & 0o777) == 0o700
    saved = list((ws / "video_B").glob("*/*"))  # <content digest>/<the file's own name>
    assert len(saved) == 1 and saved[0].name == "take_2_final_.mp4"


def test_frame_numbers_shown_are_the_decoded_frames_of_a_variable_rate_file(studio_env, tmp_path) -> None:
    # Frames presented at 0.7, 0.733, 0.8, ... s of the stream, each carrying its number as a
    # barcode; sampled at 5 per second. round(time x fps) would number them otherwise.
    from tests.test_robustness import LATE_MS, encode

    path = encode(tmp_path / "late_vfr.mp4", 10, pts_ms=LATE_MS)
    at = run_app()
    at.selectbox(key="fps_choice").set_value("5 per second")
    at.selectbox(key="video_src_A").set_value("Upload a video…").run()
    at.file_uploader(key="upload_A").upload(path.name, path.read_bytes(), "video/mp4")
    at.run()
    no_failures(at)
    data = player_data(at)["a"]
    assert data["frames"] == [0, 3, 6, 7]
    assert data["times"] == pytest.approx([0.0, 0.133, 0.366, 0.6], abs=1e-3)


def test_the_bundled_human_model_is_offered_first_and_chosen(studio_env) -> None:
    from app import models

    at = run_app()
    picker = at.selectbox(key="model_choice")
    assert picker.options[:2] == [models.DEFAULT, models.SMALL] and picker.value == models.DEFAULT
    assert "human" in models.DEFAULT and "body" in " ".join(c.value for c in at.sidebar.caption)


def _upload(at: AppTest, slot: str, name: str, data: bytes) -> AppTest:
    at.selectbox(key=f"video_src_{slot}").set_value("Upload a video…").run()
    at.file_uploader(key=f"upload_{slot}").upload(name, data, "video/mp4")
    return at.run()


def _three_frames(tmp_path: Path) -> Path:
    from carl_core.video import read_video, write_video

    frames, _ = read_video(SAMPLES / "squat_c.mp4", indices=[10, 11, 12])
    return write_video(tmp_path / "three.mp4", frames, 24)


def test_a_position_far_into_a_video_survives_a_three_frame_clip_in_its_place(studio_env, tmp_path) -> None:
    """Issue 10 item 6: A scrubbed to frame 150, then a 3-frame clip uploaded as A."""
    at = run_app()
    pair = player_data(at)["pair"]
    at.session_state["player"] = {"position": {"leader": "a", "a": 150, "b": 140, "pair": pair}}
    at.run()
    no_failures(at)
    _upload(at, "A", "three.mp4", _three_frames(tmp_path).read_bytes())
    no_failures(at)
    assert len(player_data(at)["a"]["times"]) == 3


def test_a_position_is_clamped_to_the_videos_shown() -> None:
    from app import player

    def page() -> None:
        import streamlit as st

        from app import player

        st.session_state["player_shown"] = {"pair": "p", "a": 3, "b": 10}
        st.session_state["player"] = {"position": {"leader": "b", "a": 200, "b": -4, "pair": "p"}}
        st.session_state["clamped"] = player.position()
        st.session_state["player"]["position"]["pair"] = "another pair"
        st.session_state["other"] = player.position()

    at = AppTest.from_function(page).run()
    assert at.session_state["clamped"] == {"leader": "b", "a": 2, "b": 0}
    assert at.session_state["other"] is None
    assert player.position() is None  # outside a page: nothing shown


def _heatmap_marks(at: AppTest) -> list[dict]:
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [t for t in fig["data"] if t.get("name") == "player"]


def test_the_heatmap_cross_goes_with_a_model_switch(studio_env) -> None:
    """Issue 10 item 11: the red cross marks where the player rests, in this pair only."""
    from app import models

    at = run_app()
    pair = player_data(at)["pair"]
    at.session_state["player"] = {"position": {"leader": "a", "a": 30, "b": 25, "pair": pair}}
    at.run()
    (mark,) = _heatmap_marks(at)
    assert mark["x"] == [25] and mark["y"] == [30]
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["data"][0]["colorbar"]["title"]["side"] == "right"  # not under the plot's toolbar
    at.selectbox(key="model_choice").set_value(models.LITE0).run()
    no_failures(at)
    assert player_data(at)["pair"] != pair and not _heatmap_marks(at)


def test_a_jump_asked_before_a_video_changed_is_not_replayed(studio_env) -> None:
    """Issue 10 item 7: a map point jumps B; B is set to "Upload a video…" and uploaded again."""
    from app.player import request_seek

    at = run_app()
    no_failures(at)
    shown = at.session_state["player_shown"]
    at.session_state["player_seek"] = {"video": "b", "index": 40, "nonce": 1, "pair": shown["pair"]}
    at.run()
    assert player_data(at)["seek"]["index"] == 40  # the jump reaches the pair it was asked for
    at.selectbox(key="video_src_B").set_value("Upload a video…").run()
    no_failures(at)
    assert "player_seek" not in at.session_state
    at.session_state["player_seek"] = {"video": "b", "index": 40, "nonce": 2, "pair": shown["pair"]}
    at.file_uploader(key="upload_B").upload("again.mp4", (SAMPLES / "squat_c.mp4").read_bytes(), "video/mp4")
    at.run()
    no_failures(at)
    data = player_data(at)
    assert data["b"]["name"] == "again.mp4" and data["seek"] is None and data["pair"] != shown["pair"]
    assert callable(request_seek)


def test_a_cut_off_upload_says_how_much_of_it_was_read(studio_env, tmp_path) -> None:
    """Issue 10 item 8: a truncated mp4 with its index first is accepted; the user hears what is left."""
    from carl_core.video import read_video, write_video

    frames, _ = read_video(SAMPLES / "squat_c.mp4")
    noisy = np.random.default_rng(0).integers(0, 255, frames.shape, dtype=np.uint8)  # bytes spread evenly
    whole = write_video(tmp_path / "whole.mp4", noisy, 24).read_bytes()
    at = _upload(run_app(), "A", "my jump.mp4", whole[: len(whole) // 2])
    assert not at.exception
    says = " ".join(w.value for w in at.warning)
    assert "my jump.mp4 is cut off or damaged: only frames 0-" in says and f"of {len(frames)} " in says, says
    assert "/tmp" not in says and "carl-studio-" not in says and "Errno" not in says


def test_errors_name_the_users_file_not_the_private_copy(studio_env) -> None:
    from app import session

    def page() -> None:
        import streamlit as st

        from app import session

        ws = session.workspace()
        path = ws.save_upload(b"not a video", "holiday clip.mp4", "video_A")
        st.session_state["said"] = session.user_text(
            f"[Errno 1094995529] Invalid data found when processing input: '{path}' in {path.name}; "
            f"see {ws.dir}/x"
        )

    at = AppTest.from_function(page).run()
    said = at.session_state["said"]
    assert said == (
        "Invalid data found when processing input: 'holiday clip.mp4' in holiday clip.mp4; "
        "see the session's private folder/x"
    ), said
    assert session.user_text("no file here") == "no file here"


def test_the_progress_names_the_uploaded_file(studio_env) -> None:
    """Issue 10 item 11: the library's progress says "<file name>: ..." of the copy it reads; the
    app shows the user's own name there, not a hashed one."""

    def page() -> None:
        import streamlit as st

        from app import session

        saved = session.workspace().save_upload(b"x", "Golf swing 2.mp4", "video_B")
        st.session_state["shown"] = session.user_text(
            f"Embedding video B: {saved.name}: 12 frames from the cache"
        )

    at = AppTest.from_function(page).run()
    assert at.session_state["shown"] == "Embedding video B: Golf swing 2.mp4: 12 frames from the cache"


# --------------------------------------------------------------------------- the human model


@pytest.fixture
def human(studio_env, monkeypatch) -> Path:
    """The app with the bundled default (the ``human`` model: pose + pixels) as its default."""
    from carl_core import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip(f"the bundled default model {DEFAULT_CHECKPOINT} is not here")
    monkeypatch.setenv("CARL_DEFAULT_MODEL", str(DEFAULT_CHECKPOINT))
    return DEFAULT_CHECKPOINT


def test_a_pair_where_nobody_is_found_is_aligned_by_the_visual_model(human) -> None:
    """The bundled samples are stick figures: the pose model finds a person in most of squat_a's
    frames and in none of squat_b's, so the pair switches to ImageNet Lite0, saying so."""
    from app import models

    at = run_app()
    no_failures(at)
    says = " ".join(w.value for w in at.warning)
    assert "Nobody was found" in says and "squat_b.mp4" in says and models.LITE0 in says, says
    assert any(f"Aligned with: **{models.LITE0}**" in c.value for c in at.caption)
    data = player_data(at)
    assert data["a"]["pose"] is not None and not data["skeleton"]  # what was found is still there to see
    assert len(data["a_to_b"]) == len(data["a"]["times"])


def test_the_skeleton_of_each_frame_goes_to_the_player(human) -> None:
    import base64

    at = run_app()
    _upload(at, "B", "again_a.mp4", (SAMPLES / "squat_a.mp4").read_bytes())
    no_failures(at)
    assert not any("Nobody was found" in w.value for w in at.warning)
    data = player_data(at)
    assert data["skeleton"] and data["bones"]
    for slot in "ab":
        pose, n = data[slot]["pose"], len(data[slot]["times"])
        xy = np.frombuffer(base64.b64decode(pose["xy"]), "<i2").reshape(n, pose["landmarks"], 2)
        found = np.array(pose["status"]) > 0
        assert len(pose["status"]) == n and found.mean() > 0.5
        assert (xy[found] != -32768).all() and (np.abs(xy[found]) < 2 * 8192).all()  # within the picture
        assert (xy[~found] == -32768).all()


def test_a_crop_box_typed_picks_the_person_to_follow(human) -> None:
    at = run_app()
    _upload(at, "B", "again_a.mp4", (SAMPLES / "squat_a.mp4").read_bytes())
    with_box = "0,0,100,100"
    at.text_input(key="crop_text_A").set_value(with_box).run()
    no_failures(at)
    keys = list(at.session_state["embeddings"])
    assert any(k.endswith(f"|{with_box}") and "squat_a.mp4" in k for k in keys), keys
    assert any(f"the person inside {with_box}" in c.value for c in at.caption)
    at.button(key="crop_clear_A").click().run()
    assert not any("the person inside" in c.value for c in at.caption)


def test_a_box_drawn_on_the_first_frame_is_read_in_its_pixels() -> None:
    from app.tab_align import box_of

    sel = {"box": [{"x": [310.4, 20.2], "y": [-5, 180.6]}]}
    assert box_of(sel, 320, 240) == "20,0,310,181"
    assert box_of({"box": []}, 320, 240) is None and box_of(None, 320, 240) is None
    assert box_of({"box": [{"x": [400, 500], "y": [0, 10]}]}, 320, 240) is None  # outside the frame


def test_a_video_path_that_does_not_exist(studio_env) -> None:
    at = run_app()
    at.selectbox(key="video_src_A").set_value("A video file on this machine…").run()
    at.text_input(key="path_A").set_value("/no/such/video.mp4").run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_checkpoints_that_do_not_load(studio_env, tmp_path) -> None:
    import torch

    from carl_core.checkpoint import read_checkpoint, save_checkpoint

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    wrong = read_checkpoint(studio_env["model"])
    wrong["model"] = {k: v for k, v in wrong["model"].items() if not k.startswith("head.to_embedding")}
    wrong["model"]["head.extra"] = torch.zeros(3)
    save_checkpoint(tmp_path / "wrong.pt", {k: v for k, v in wrong.items() if k not in ("format", "version")})
    at = run_app()
    at.selectbox(key="model_choice").set_value("My checkpoint…").run()
    for path, says in ((text, "not a readable PyTorch checkpoint"), (tmp_path / "wrong.pt", "does not fit")):
        at.text_input(key="own_path").set_value(str(path)).run()
        assert not at.exception
        assert any(says in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="own_path").set_value(str(tmp_path / "absent.pt")).run()
    assert any("not found" in e.value for e in at.error)


# --------------------------------------------------------------------------- map


def test_map_tab_draws_both_videos(studio_env) -> None:
    # PCA: UMAP's first fit compiles for seconds; the browser test draws the UMAP map.
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.session_state["tab"] = "Embedding map"
    at.session_state["map_method"] = "PCA"
    at.run()
    no_failures(at)
    (chart,) = at.get("plotly_chart")
    fig = json.loads(chart.proto.spec)
    assert [t["name"] for t in fig["data"]] == ["A · squat_a.mp4", "B · squat_b.mp4"]
    at.radio(key="map_colour").set_value("time")
    at.toggle(key="map_lines").set_value(False)
    at.run()
    no_failures(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert fig["data"][0]["mode"] == "markers" and fig["data"][0]["marker"]["colorscale"]


def test_map_selection_logic() -> None:
    from app.tab_map import selected_frames

    box = {"points": [{"customdata": [0, 4, 4, 0.2]}, {"customdata": {"0": 1, "1": 9, "2": 9, "3": 0.4}}]}
    assert selected_frames({**box, "box": [{"x": [0, 1]}], "lasso": []}) == ([("a", 4), ("b", 9)], False)
    assert selected_frames({"points": box["points"][:1], "box": [], "lasso": []}) == ([("a", 4)], True)
    assert selected_frames({"points": [{"customdata": None}, {}], "box": [], "lasso": []}) == ([], False)
    assert selected_frames(None) == ([], False)


def test_selected_frames_show_as_thumbnails_that_jump_the_player(studio_env) -> None:
    def page() -> None:
        import numpy as np

        from app import session, tab_map
        from app.compute import Embedded
        from carl_core.embed import EmbedResult

        videos = {
            s: session.open_video(s.upper(), session.SAMPLES_DIR / f"squat_{s}.mp4", f"{s}.mp4", "sample")
            for s in "ab"
        }
        embedded = {}
        for s, v in videos.items():
            n = v.num_frames
            embs = np.eye(8, dtype=np.float32)[np.arange(n) % 8]
            result = EmbedResult(embs, np.arange(n) / v.fps, np.arange(n), np.zeros(n, bool))
            embedded[s] = Embedded(v, result, None, s)
        tab_map.thumbnails(embedded, [("b", 30), ("a", 5), ("a", 120)])

    at = AppTest.from_function(page, default_timeout=120).run()
    no_failures(at)
    captions = [c for img in at.get("image") for c in img.captions]
    assert captions == ["A · frame 5 · 0.21 s", "A · frame 120 · 5.00 s", "B · frame 30 · 1.25 s"]
    at.button(key="map_show_b_30").click().run()
    assert at.session_state["player_seek"]["video"] == "b" and at.session_state["player_seek"]["index"] == 30


# --------------------------------------------------------------------------- retrieve


def _hits(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in img.captions if "similarity" in c]


def test_retrieve_by_a_frame_and_jump_to_a_result(studio_env) -> None:
    at = run_app("Retrieve")
    at.radio(key="query_source").set_value("A frame of B").run()
    at.slider(key="query_frame_b").set_value(20)
    at.slider(key="query_k").set_value(5)
    at.run()
    no_failures(at)
    hits = _hits(at)
    assert len(hits) == 5
    sims = [float(h.rsplit("similarity", 1)[1]) for h in hits]
    assert sims == sorted(sims, reverse=True)
    # The query's own neighbourhood (frames 15-25 of B) is left out by default.
    for h in hits:
        if h.split("·")[1].strip() == "B":
            assert abs(int(h.split("frame")[1].split("·")[0]) - 20) > 5
    first = hits[0]
    at.button(key=next(b.key for b in at.button if b.key and b.key.startswith("hit_0_"))).click().run()
    seek = at.session_state["player_seek"]
    assert seek["video"] == first.split("·")[1].strip().lower()
    assert seek["index"] == int(first.split("frame")[1].split("·")[0])


def test_the_retrieve_radius_says_what_it_leaves_out(studio_env) -> None:
    """Issue 10 item 11: "...or only its frames this close to the query" read as the opposite."""
    at = run_app("Retrieve")
    at.radio(key="query_source").set_value("A frame of B").run()
    radius = at.number_input(key="query_radius")
    assert "leave out" in radius.label and "this close" not in radius.label
    at.number_input(key="query_radius").set_value(0).run()
    at.slider(key="query_frame_b").set_value(20).run()
    hits = _hits(at)
    first = hits[0]  # 0 leaves every frame in, the query's own first
    assert first.split("·")[1].strip() == "B" and int(first.split("frame")[1].split("·")[0]) == 20, hits


def test_retrieve_by_a_picture(studio_env) -> None:
    from PIL import Image

    from carl_core.video import read_video

    frames, _ = read_video(SAMPLES / "squat_a.mp4", indices=[40])
    png = io.BytesIO()
    Image.fromarray(frames[0]).save(png, format="PNG")
    at = run_app("Retrieve")
    at.radio(key="query_source").set_value("A picture").run()
    at.file_uploader(key="query_picture").upload("pose.png", png.getvalue(), "image/png")
    at.run()
    no_failures(at)
    assert len(_hits(at)) == 8
    at.file_uploader(key="query_picture").set_value(("pose.png", b"GIF89a not really", "image/png"))
    at.run()
    assert not at.exception
    assert any("not a picture" in e.value for e in at.error)


# --------------------------------------------------------------------------- train


def test_training_on_too_few_videos_says_so(studio_env, tmp_path) -> None:
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.mp4").write_bytes((SAMPLES / "squat_a.mp4").read_bytes())
    at = run_app("Train")
    at.radio(key="train_source").set_value("A folder of videos on this machine").run()
    at.text_input(key="train_folder").set_value(str(one)).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("at least 2 videos" in e.value for e in at.error), [e.value for e in at.error]


def test_weak_supervision_is_offered_where_the_videos_have_labels(studio_env, tmp_path, monkeypatch) -> None:
    from carl_core.jobs import JobManager

    asked = []
    monkeypatch.setattr(JobManager, "start", lambda self, request: asked.append(request) or tmp_path / "run")
    plain, labelled = tmp_path / "plain", tmp_path / "labelled"
    for folder, names in ((plain, ["a.mp4", "b.mp4"]), (labelled, ["squat/a.mp4", "golf/b.mp4"])):
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes((SAMPLES / "squat_a.mp4").read_bytes())
    at = run_app("Train")
    assert [o for o in at.selectbox(key="train_preset").options if o.split(":")[0] in ("pose", "human")]
    at.radio(key="train_source").set_value("A folder of videos on this machine").run()
    at.text_input(key="train_folder").set_value(str(plain)).run()
    assert not [t for t in at.toggle if t.key == "train_weak"]
    assert any("No labels found" in c.value for c in at.caption)
    at.text_input(key="train_folder").set_value(str(labelled)).run()
    weak = at.toggle(key="train_weak")
    assert "2 videos labelled: golf, squat" in weak.label
    weak.set_value(True).run()
    at.selectbox(key="train_preset").set_value("pose").run()
    at.button(key="train_start").click().run()
    no_failures(at)
    (request,) = asked
    assert request.overrides == {"loss": {"weak": True}} and request.preset == "pose"
    assert request.config().loss.weak


def test_the_sidebar_reads_the_runs_only_when_they_change(studio_env, tmp_path, monkeypatch) -> None:
    # Every rerun draws the sidebar (each position report of the player is one): the model
    # picker's list of trained runs must not read every run's files, let alone its whole log.
    import shutil

    from carl_core import jobs

    monkeypatch.setenv("CARL_STUDIO_HOME", str(tmp_path / "home"))
    for k in range(3):
        run = tmp_path / "home" / "runs" / f"old-{k}"
        run.mkdir(parents=True)
        (run / "job.json").write_text(json.dumps({"request": {"preset": "small"}, "device": "cpu"}))
        (run / "status.json").write_text(json.dumps({"state": "done", "message": "trained 40 steps"}))
        (run / "log.jsonl").write_text(
            "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(5000))
        )
        shutil.copy(studio_env["model"], run / "last.pt")
    calls = {"status": 0, "log": 0}
    status, read_losses = jobs.JobManager.status, jobs.read_losses

    def counted_status(self, *a, **k):
        calls["status"] += 1
        return status(self, *a, **k)

    def counted_log(*a, **k):
        calls["log"] += 1
        return read_losses(*a, **k)

    monkeypatch.setattr(jobs.JobManager, "status", counted_status)
    monkeypatch.setattr(jobs, "read_losses", counted_log)
    at = run_app()
    no_failures(at)
    trained = [o for o in at.selectbox(key="model_choice").options if o.startswith("Trained here")]
    assert sorted(trained) == [f"Trained here: old-{k} (trained)" for k in range(3)]
    assert calls["log"] == 0  # listing runs never reads a log
    before = calls["status"]
    at.run()  # a rerun, as a position report from the player causes
    no_failures(at)
    assert calls == {"status": before, "log": 0}
    (tmp_path / "home" / "runs" / "old-1" / "status.json").write_text(json.dumps({"state": "stopped"}))
    at.run()  # a run's files changed: read again
    assert calls["status"] > before
    assert len([o for o in at.selectbox(key="model_choice").options if o.startswith("Trained here")]) == 3


@pytest.mark.slow
def test_train_a_run_then_its_checkpoint_is_in_the_model_picker(studio_env, tiny_dataset) -> None:
    from carl_core.jobs import JobManager

    at = run_app("Train")
    no_failures(at)
    assert any("training runs on the CPU" in i.value or "Trains on the GPU" in i.value for i in at.info)
    # A plain folder of videos: no labels, so no evaluation after training (the browser test
    # trains on a labelled dataset).
    at.radio(key="train_source").set_value("A folder of videos on this machine").run()
    at.text_input(key="train_folder").set_value(str(tiny_dataset / "videos")).run()
    at.selectbox(key="train_preset").set_value("A preset file (YAML)…").run()
    at.text_input(key="train_preset_file").set_value(str(studio_env["preset"])).run()
    at.number_input(key="train_epochs_yaml").set_value(1).run()
    no_failures(at)
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run_dir = Path(at.session_state["train_run"])
    status = JobManager(studio_env["home"]).wait(run_dir, timeout=240)
    assert status.state == "done", status
    at.run()
    no_failures(at)
    assert any(c.key == f"loss_{run_dir.name}" for c in at.get("plotly_chart"))
    assert any("Finished" in s.value for s in at.success)
    options = at.selectbox(key="model_choice").options
    label = next(o for o in options if o.startswith("Trained here: ") and run_dir.name in o)
    # "Use this model" switches the picker to it, and the videos are embedded with it.
    at.button(key=f"use_{run_dir.name}").click().run()
    no_failures(at)
    assert at.selectbox(key="model_choice").value == label
    assert len(player_data(at)["a_to_b"]) > 0


@pytest.mark.slow
def test_the_authors_checkpoint_by_path_and_our_own_by_upload(studio_env, tmp_path) -> None:
    """Their ``checkpoint_epoch_XXXXX.pth`` (an EasyDict config, ResNet-50 at 64 px here) by path;
    one of ours dropped on the uploader. Every frame at 5 per second, to keep it quick."""
    import argparse

    import torch
    from easydict import EasyDict

    from tests.authors_reference import TransformerModel, authors_cfg

    torch.manual_seed(0)
    cfg = authors_cfg(train_len=8)
    cfg["IMAGE_SIZE"] = 64
    ref = TransformerModel(cfg).eval()
    edict = EasyDict(cfg)
    edict.args = argparse.Namespace(local_rank=0, workdir="/data")
    theirs = tmp_path / "checkpoint_epoch_00299.pth"
    torch.save({"epoch": 299, "model_state": ref.state_dict(), "optimizer_state": {}, "cfg": edict}, theirs)

    at = run_app()
    at.selectbox(key="fps_choice").set_value("5 per second")
    at.selectbox(key="model_choice").set_value("The authors' released checkpoint…").run()
    at.text_input(key="authors_path").set_value(str(theirs)).run()
    no_failures(at)
    data = player_data(at)
    assert len(data["a_to_b"]) == len(data["a"]["times"]) < 40  # 6.7 s at 5 per second

    at.selectbox(key="model_choice").set_value("My checkpoint…").run()
    at.radio(key="own_how").set_value("an upload").run()
    at.file_uploader(key="own_upload").upload("mine.pt", studio_env["model"].read_bytes())
    at.run()
    no_failures(at)
    assert len(player_data(at)["a_to_b"]) == len(data["a_to_b"])
