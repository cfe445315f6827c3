"""The app in a real browser: upload, aligned playback, the map, retrieval, training.

The tests share one page and run in order, as a user would: they upload two real squat videos,
check that B follows A through the DTW mapping while playing and when stepping, select frames
on the map, query a frame, and train for one epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REAL_CLIPS
from tests.e2e.studio import ROOT, choose, lasso, open_tab, upload, wait_idle

pytestmark = pytest.mark.e2e

REAL = REAL_CLIPS
SAMPLES = ROOT / "assets" / "samples"
VIDEO_A = REAL / "yuyoujiang__squat.mp4"  # 960x544, 10.7 s
VIDEO_B = REAL / "ikramaliokz__squat.mp4"  # 1280x720, 28.4 s


def _video(path: Path, fallback: str) -> Path:
    return path if path.is_file() else SAMPLES / fallback


# JavaScript: the sample shown at media time x (the last one at or before it).
IDX = """const idx = (t, x) => {
    let i = 0; while (i + 1 < t.length && t[i + 1] <= x + 1e-4) i++; return i; };"""
# Where each video is, and where B should be by the mapping.
PLAYER_STATE = (
    """() => {
  const S = window.carlPlayer, d = S.data;
  """
    + IDX
    + """
  const ia = idx(d.a.times, S.a.currentTime), ib = idx(d.b.times, S.b.currentTime);
  return {ia, ib, expected_b: d.a_to_b[ia], ta: S.a.currentTime, tb: S.b.currentTime,
          tb_expected: d.b.times[d.a_to_b[ia]],
          paused: S.a.paused, leader: S.leader, n_a: d.a.times.length, n_b: d.b.times.length,
          names: [d.a.name, d.b.name], ready: [S.a.readyState, S.b.readyState]};
}"""
)


def _state(page) -> dict:
    return page.evaluate(PLAYER_STATE)


def _at_rest(page, follower: str = "b") -> dict:
    """The state once the follower has landed on the frame the mapping gives (exactly)."""
    page.wait_for_function(
        f"() => {{ const s = ({PLAYER_STATE})(); const S = window.carlPlayer;"
        f" return s.paused && !S.{follower}.seeking && (s.leader === 'b' || s.ib === s.expected_b); }}",
        timeout=20_000,
    )
    return _state(page)


def _player_ready(page, name_a: str, name_b: str) -> None:
    page.wait_for_function(
        """([a, b]) => window.carlPlayer && window.carlPlayer.data
            && window.carlPlayer.data.a.name === a && window.carlPlayer.data.b.name === b
            && window.carlPlayer.a.readyState >= 2 && window.carlPlayer.b.readyState >= 2""",
        arg=[name_a, name_b],
        timeout=300_000,
    )


def _shows(page, slot: str, frame: int) -> None:
    """Wait until video ``slot`` leads and shows file frame ``frame``."""
    page.wait_for_function(
        f"""([slot, frame]) => {{ const S = window.carlPlayer, d = S.data[slot], v = S[slot]; {IDX}
          return S.leader === slot && !v.seeking && d.frames[idx(d.times, v.currentTime)] === frame; }}""",
        arg=[slot, frame],
        timeout=30_000,
    )


# Play: B plays along, steered onto the frame the mapping gives. A recorder in the page reads
# both clocks on every frame A presents, for 40 frames after a start-up of 0.7 s (no round
# trips to Python; a busy machine may skip frames, so it counts frames, not seconds).
# The recording ends where A does.
RECORD = (
    """(frames) => new Promise((done) => {
      const S = window.carlPlayer, d = S.data, out = [], icons = []; """
    + IDX
    + """
      let over = false;
      // A's last frame may bring no callback after it: its end (or a time limit) closes the record.
      const finish = () => { if (!over) { over = true; S.a.pause(); done({out, icons}); } };
      S.a.addEventListener("ended", finish, {once: true});
      setTimeout(finish, 15000);
      const tick = (now, meta) => {
        if (over) return;
        const ia = idx(d.a.times, meta.mediaTime);
        out.push([meta.mediaTime, S.b.currentTime, d.b.times[d.a_to_b[ia]]]);
        if (out.length === 5) icons.push(S.root.querySelector('.cp-play').innerHTML);
        const settled = out.filter((r) => r[0] > out[0][0] + 0.7).length;
        if (settled < frames && meta.mediaTime < out[0][0] + 9) S.a.requestVideoFrameCallback(tick);
        else finish();
      };
      S.a.requestVideoFrameCallback(tick);
      S.a.play();
    })"""
)


def _assert_b_keeps_up(page, frames: int = 40, p90_max: float = 0.35) -> list[float]:
    """Play A from its start for ``frames`` frames (at most 9 s); B's lag behind where the
    mapping puts it, sorted (seconds): its median at most 0.12 s, its 90th percentile ``p90_max``."""
    page.evaluate("() => { const S = window.carlPlayer; S.a.pause(); S.a.currentTime = 0; }")
    page.wait_for_timeout(800)
    got = page.evaluate(RECORD, frames)
    record = got["out"]
    # The pause button while playing: a drawn icon (Debian's Chromium has no font with U+23F8).
    assert got["icons"] and "<svg" in got["icons"][0] and "Pause" in got["icons"][0], got["icons"]
    # After a start-up of 0.7 s (both decoders warming up), the lag of B behind its target.
    settled = [(ta, tb, want) for ta, tb, want in record if ta > record[0][0] + 0.7]
    assert len(settled) >= 20, f"A did not play: {record}"
    lag = sorted(abs(tb - want) for _, tb, want in settled)
    median, p90 = lag[len(lag) // 2], lag[int(0.9 * len(lag))]
    print(f"B's lag behind A: median {median:.3f} s, 90th percentile {p90:.3f} s")
    assert lag[len(lag) // 2] <= 0.12, f"B does not follow A: median lag {lag[len(lag) // 2]:.3f} s"
    assert p90 <= p90_max, f"B strays from A: 90th percentile {p90:.3f} s, worst {lag[-8:]}"
    return lag


def test_upload_align_and_follow_while_playing(page) -> None:
    a, b = _video(VIDEO_A, "squat_a.mp4"), _video(VIDEO_B, "squat_c.mp4")
    wait_idle(page)
    choose(page, "Video A", "Upload a video…")
    upload(page, "Drop video A here", a)
    choose(page, "Video B", "Upload a video…")
    upload(page, "Drop video B here", b)
    _player_ready(page, a.name, b.name)
    wait_idle(page)
    mapping = page.evaluate("() => window.carlPlayer.data.a_to_b")
    assert len(set(j - i for i, j in enumerate(mapping))) > 1, "the mapping is a fixed offset, not DTW"

    _assert_b_keeps_up(page)

    # Pause: B rests on exactly the matched frame.
    s = _at_rest(page)
    assert s["paused"] and s["ib"] == s["expected_b"], s

    # Step frame by frame with the buttons: exact each time.
    for _ in range(3):
        page.get_by_role("button", name="Frame ▶").click()
        s2 = _at_rest(page)
        assert s2["ib"] == s2["expected_b"], s2
    assert s2["ia"] == s["ia"] + 3

    # Scrub far ahead.
    page.evaluate(
        "() => { const r = window.carlPlayer.root.querySelector('.cp-scrub');"
        " r.value = String(Math.floor(Number(r.max) * 0.7)); r.dispatchEvent(new Event('input')); }"
    )
    s3 = _at_rest(page)
    assert s3["ia"] > s2["ia"] and s3["ib"] == s3["expected_b"], s3

    # Swap: now A follows B through the reverse mapping.
    page.get_by_role("button", name="⇄ B leads").click()
    page.get_by_role("button", name="Frame ▶").click()
    page.wait_for_timeout(500)
    back = page.evaluate(
        """() => { const S = window.carlPlayer, d = S.data; """
        + IDX
        + """
          const ib = idx(d.b.times, S.b.currentTime);
          return {leader: S.leader, ia: idx(d.a.times, S.a.currentTime), expected_a: d.b_to_a[ib]}; }"""
    )
    assert back["leader"] == "b" and back["ia"] == back["expected_a"], back
    page.get_by_role("button", name="⇄ A leads").click()

    # The heatmap and the confidence chart are drawn.
    assert page.locator(".stPlotlyChart").count() >= 2


def _halves(tmp_path: Path) -> tuple[Path, Path]:
    """The squat pair of issue 10 item 9, one man's first reps against his later ones: the real
    squat clip cut into its two halves (the samples where ../shared is absent), the second half
    time-warped (slow, then fast) and with two stretches of 0.7 s that A lacks (black): B's pace
    against A's changes all along, and twice the mapping jumps."""
    from carl_core.video import probe_video, read_video, write_video

    src = VIDEO_A if VIDEO_A.is_file() else SAMPLES / "squat_a.mp4"
    info = probe_video(src)
    half = info.num_frames // 2
    first, _ = read_video(src, indices=list(range(half)))
    warp = np.round((half - 1) * np.linspace(0, 1, int(1.4 * half)) ** 2).astype(int)
    second, _ = read_video(src, indices=(half + warp).tolist())
    gap = np.zeros((round(0.7 * info.fps), *second.shape[1:]), np.uint8)
    thirds = np.array_split(second, 3)
    second = np.concatenate([thirds[0], gap, thirds[1], gap, thirds[2]])
    a = write_video(tmp_path / "squat_first_half.mp4", first, info.fps)
    return a, write_video(tmp_path / "squat_second_half.mp4", second, info.fps)


def test_b_keeps_up_on_the_squat_pair(page, tmp_path) -> None:
    """Issue 10 item 9: on the squat pair B trailed A by 0.2 s (its mapping's slope changes, with
    holds and skips); it must keep up at any slope. Aligned on ImageNet features, so that the
    mapping follows the motion (the tests' random model would give a diagonal)."""
    from app import models

    a, b = _halves(tmp_path)
    choose(page, "Model", models.LITE0)
    for slot, path in (("A", a), ("B", b)):
        uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=f"Drop video {slot} here")
        if not uploader.count():
            choose(page, f"Video {slot}", "Upload a video…")  # this test run alone
        upload(page, f"Drop video {slot} here", path)
    _player_ready(page, a.name, b.name)
    wait_idle(page)
    slopes = page.evaluate(
        """() => { const d = window.carlPlayer.data, m = d.a_to_b, out = [];
          for (let i = 0; i + 5 < m.length; i += 5)
            out.push((d.b.times[m[i + 5]] - d.b.times[m[i]]) / (d.a.times[i + 5] - d.a.times[i]));
          return out; }"""
    )
    print("slopes of the mapping (B s per A s, every 5 samples):", [round(x, 2) for x in slopes])
    assert max(slopes) - min(slopes) > 1, f"the mapping's slope hardly changes: {slopes}"
    try:
        # The whole of A, through every slope. Measured on 2 busy cores: the follower that
        # played through the jumps lagged 0.38 s (90th percentile); taking them with a spare
        # element seeked in advance, 0.16-0.17 s.
        _assert_b_keeps_up(page, frames=1000, p90_max=0.25)
        s = _at_rest(page)
        assert s["paused"] and s["ib"] == s["expected_b"], s
    finally:
        choose(page, "Model", models.DEFAULT)


def test_map_renders_and_selection_shows_thumbnails(page) -> None:
    open_tab(page, "Embedding map")
    page.wait_for_selector(".stPlotlyChart .main-svg", timeout=300_000)
    plot = page.locator(".stPlotlyChart .js-plotly-plot").first
    n_points = page.evaluate(
        "() => document.querySelector('.stPlotlyChart .js-plotly-plot')"
        "._fullData.reduce((n, t) => n + t._length, 0)"
    )
    assert n_points > 100
    # In the default pan mode, a click on one point of the map jumps the player to it.
    point = page.evaluate(
        """() => { const gd = document.querySelector('.stPlotlyChart .js-plotly-plot');
          const L = gd._fullLayout, r = gd.getBoundingClientRect();
          const cd = gd.calcdata[1][Math.floor(gd._fullData[1]._length / 2)];
          return {x: r.left + L.xaxis._offset + L.xaxis.l2p(cd.x),
                  y: r.top + L.yaxis._offset + L.yaxis.l2p(cd.y)}; }"""
    )
    # The points under the click (of either video): the player goes to one of them.
    under = page.evaluate(
        """([x, y]) => { const gd = document.querySelector('.stPlotlyChart .js-plotly-plot');
          const L = gd._fullLayout, r = gd.getBoundingClientRect(), out = [];
          gd._fullData.forEach((t, c) => gd.calcdata[c].forEach((p, k) => {
            const px = r.left + L.xaxis._offset + L.xaxis.l2p(p.x);
            const py = r.top + L.yaxis._offset + L.yaxis.l2p(p.y);
            if (Math.hypot(px - x, py - y) < 8) out.push((c === 0 ? 'a' : 'b') + ':' + t.customdata[k][1]);
          }));
          return out; }""",
        [point["x"], point["y"]],
    )
    before = page.evaluate("() => JSON.stringify(window.carlPlayer.pos)")
    page.mouse.click(point["x"], point["y"])
    wait_idle(page)
    page.wait_for_function(
        "(before) => JSON.stringify(window.carlPlayer.pos) !== before", arg=before, timeout=60_000
    )
    now = page.evaluate(
        "() => window.carlPlayer.leader + ':' + window.carlPlayer.pos[window.carlPlayer.leader]"
    )
    assert now in under, (now, under)

    # The lasso tool (double-click first: it clears the clicked point), then around most of the plot.
    plot.dblclick()
    lasso(page, plot, margin=0.05)
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stImage\"]').length >= 6", timeout=120_000
    )
    wait_idle(page)

    # "Show" under a thumbnail jumps the player to that frame.
    caption = page.locator('[data-testid="stImage"] [data-testid="stImageCaption"]').nth(2).inner_text()
    page.get_by_role("button", name="Show").nth(2).click()
    wait_idle(page)
    slot = caption.split("·")[0].strip().lower()
    frame = int(caption.split("frame")[1].split("·")[0])
    _shows(page, slot, frame)


def test_retrieve_a_frame(page) -> None:
    open_tab(page, "Retrieve")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stImageCaption"]')]
                 .filter((c) => c.innerText.includes('similarity')).length === 8""",
        timeout=120_000,
    )
    wait_idle(page)
    captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
    hits = [c for c in captions if "similarity" in c]
    assert len(hits) == 8, captions
    sims = [float(c.rsplit("similarity", 1)[1]) for c in hits]
    assert sims == sorted(sims, reverse=True)
    # Choosing a result jumps the player there.
    target = hits[1]
    page.get_by_role("button", name="Show in player").nth(1).click()
    wait_idle(page)
    slot = target.split("·")[1].strip().lower()
    frame = int(target.split("frame")[1].split("·")[0])
    _shows(page, slot, frame)


def test_train_one_epoch(page, studio) -> None:
    open_tab(page, "Train")
    page.get_by_text("A dataset in the authors' format").click()
    wait_idle(page)
    page.get_by_label("Dataset folder").fill(str(studio.dataset))
    page.get_by_label("Dataset folder").press("Enter")
    wait_idle(page)
    choose(page, "Preset", "A preset file (YAML)…")
    page.get_by_label("Preset file").fill(str(studio.preset))
    page.get_by_label("Preset file").press("Enter")
    wait_idle(page)
    epochs = page.get_by_label("Epochs")
    for _ in range(100):  # a rerun may briefly keep the previous preset's field beside the new one
        if epochs.count() == 1:
            break
        page.wait_for_timeout(200)
    epochs.fill("1")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Sequence contrastive loss").wait_for(timeout=300_000)
    page.get_by_text("Finished:").wait_for(timeout=300_000)
    wait_idle(page)
    # The new checkpoint is in the model picker.
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Model").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert any(o.startswith("Trained here: ") for o in options), options


def test_videos_the_browser_cannot_play_are_served_as_a_proxy(page, tmp_path) -> None:
    """An AVI (MPEG-4 part 2) goes to a proxy at once; an H.265 mp4, which Chromium here cannot
    decode, fails in the browser, which tells the app, which then serves a proxy."""
    from carl_core.video import read_video, write_video

    frames, _ = read_video(SAMPLES / "squat_a.mp4")
    hevc = write_video(tmp_path / "hevc_take.mp4", frames, 24.0, codec="libx265")
    avi = REAL / "mmaction2__test.avi"
    if not avi.is_file():
        avi = write_video(tmp_path / "take.avi", frames[::-1], 24.0, codec="mpeg4")
    page.get_by_role("tab", name="Align").click()
    wait_idle(page)
    upload(page, "Drop video A here", hevc)
    upload(page, "Drop video B here", avi)
    _player_ready(page, hevc.name, avi.name)
    wait_idle(page)
    page.wait_for_timeout(1000)
    urls = page.evaluate("() => [window.carlPlayer.a.currentSrc, window.carlPlayer.b.currentSrc]")
    assert all(u.endswith(".mp4") for u in urls), urls
    if page.evaluate("() => window.carlPlayer.leader") == "b":
        page.get_by_role("button", name="⇄ A leads").click()
    page.evaluate(
        "() => { const r = window.carlPlayer.root.querySelector('.cp-scrub');"
        " r.value = '0'; r.dispatchEvent(new Event('input')); }"
    )
    page.get_by_role("button", name="Frame ▶").click()
    page.get_by_role("button", name="Frame ▶").click()
    s = _at_rest(page)
    assert s["ia"] == 2 and s["ib"] == s["expected_b"], s
