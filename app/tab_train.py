"""Train tab: start a run in the background (``carl_core.jobs``), watch it, stop and resume it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from app.models import TRAINED, device_text
from app.session import VIDEO_TYPES, Video, guard, safe_callback, upload_limit_mb
from carl_core.config import PRESETS, load_preset
from carl_core.errors import DataError
from carl_core.io import safe_file_name
from carl_core.jobs import JobManager, JobStatus, TrainRequest, default_home
from carl_core.progress import format_duration

LOADED, UPLOADED, FOLDER, AUTHORS = (
    "The two videos loaded above",
    "Videos uploaded here",
    "A folder of videos on this machine",
    "A dataset in the authors' format",
)
YAML = "A preset file (YAML)…"
PRESET_WORDS = {
    "small": "pixels, EfficientNet-Lite0 (minutes on a CPU)",
    "pose": "body pose alone (videos of people; minutes on a CPU)",
    "human": "body pose + pixels, the default for people",
    "pouring": "ResNet-50, the paper's Pouring recipe",
    "penn_action": "ResNet-50, the paper's PennAction recipe",
    "finegym": "ResNet-50, the paper's FineGym recipe",
}
STATE_WORDS = {
    "starting": "starting",
    "caching": "caching backbone features",
    "training": "training",
    "evaluating": "evaluating",
    "done": "finished",
    "stopped": "stopped",
    "failed": "failed",
    "died": "ended unexpectedly",
}


@st.cache_resource(show_spinner=False)
def job_manager(home: str) -> JobManager:
    return JobManager(home)


def manager() -> JobManager:
    return job_manager(str(default_home()))


def trained_checkpoints() -> list[tuple[str, Path]]:
    """The sidebar's trained models. Every rerun draws the sidebar (each player position report
    is one), so the runs' files are read again only when one of them changed."""
    jm = manager()
    return _checkpoints(str(jm.root), jm.fingerprint())


@st.cache_data(show_spinner=False, max_entries=8)
def _checkpoints(home: str, fingerprint: tuple) -> list[tuple[str, Path]]:
    # Keyed by the fingerprint: a run that finishes or stops rewrites its status, a new
    # checkpoint changes last.pt. (A run that dies silently changes nothing, but it was running,
    # and running or dead runs are not in the list.)
    return job_manager(home).checkpoints()


def _stage(files: list[tuple[str, bytes | Path]], jm: JobManager) -> Path:
    """Copy training videos into a folder of their own under the studio's home (kept with the runs)."""
    folder = jm.root / "data" / time.strftime("videos-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    for name, content in files:
        target = folder / safe_file_name(name, "video")
        k = 1
        while target.exists():
            k += 1
            target = folder / f"{target.stem}-{k}{target.suffix}"
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    return folder


def render(videos: dict[str, Video | None]) -> None:
    jm = manager()
    active = jm.active()
    gpu = device_text()
    if gpu.startswith("GPU"):
        st.info(f"Trains on the {gpu}, with bf16 mixed precision.", icon=":material/memory:")
    else:
        st.info(
            f"No GPU here: training runs on the {gpu}. The `small`, `pose` and `human` presets train "
            "on cached features (pixels, body pose) and take minutes for a few videos; the ResNet-50 presets "
            "(pouring, penn_action, finegym) would take hours to days on a CPU.",
            icon=":material/memory:",
        )
    first = not jm.runs(with_log=False)
    with st.expander("New training run", expanded=first, icon=":material/model_training:"):
        _form(videos, jm, active)
    _show_runs(jm)


def _form(videos: dict[str, Video | None], jm: JobManager, active: Path | None) -> None:
    source = st.radio("Data", [LOADED, UPLOADED, FOLDER, AUTHORS], key="train_source")
    uploads = None
    path_text = ""
    if source == LOADED:
        names = [v.name for v in videos.values() if v is not None]
        st.caption("Self-supervised: no labels needed. " + (f"Videos: {', '.join(names)}." if names else ""))
    elif source == UPLOADED:
        uploads = st.file_uploader(
            "Drop training videos here",
            type=VIDEO_TYPES,
            accept_multiple_files=True,
            key="train_uploads",
            help=f"Up to {upload_limit_mb()} MB each; at least 2 videos of the same action.",
        )
    elif source == FOLDER:
        path_text = st.text_input("Folder of videos", key="train_folder", placeholder="/data/my_squats")
        st.caption(
            "Every video file under it (subfolders too); no labels needed. With labels (a labels.csv "
            "of video,label, or one subfolder per label), weak supervision is offered below."
        )
    else:
        path_text = st.text_input(
            "Dataset folder", key="train_dataset", placeholder="/data/penn_action_processed"
        )
        st.caption(
            "A folder with train.pkl and val.pkl (PennAction, Pouring, FineGym as the authors' scripts "
            "prepare them, or `carl synth`). With frame labels, the run ends with the paper's metrics."
        )
    c1, c2 = st.columns(2)
    preset = c1.selectbox(
        "Preset",
        [*PRESETS, YAML],
        index=list(PRESETS).index("small"),
        key="train_preset",
        format_func=lambda p: f"{p}: {PRESET_WORDS[p]}" if p in PRESET_WORDS else p,
    )
    preset_id = "yaml" if preset == YAML else preset
    preset_name = preset
    if preset == YAML:
        preset_name = c2.text_input(
            "Preset file", key="train_preset_file", placeholder="my_preset.yaml"
        ).strip()
    name = c2.text_input("Run name (optional)", key="train_name", placeholder="squats-v1")
    defaults = None
    with guard("reading the preset"):
        defaults = load_preset(preset_name) if preset_name else None
    if defaults is None:
        return
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input(
        "Epochs",
        min_value=1,
        max_value=10_000,
        value=int(defaults.train.epochs),
        key=f"train_epochs_{preset_id}",
    )
    lr = c2.number_input(
        "Learning rate",
        min_value=1e-7,
        max_value=1.0,
        value=float(defaults.train.lr),
        format="%.1e",
        step=1e-5,
        key=f"train_lr_{preset_id}",
    )
    frames = c3.number_input(
        "Frames per clip",
        min_value=2,
        max_value=1024,
        value=int(defaults.data.num_frames),
        key=f"train_frames_{preset_id}",
        help="Frames sampled from each video for each of its two views.",
    )
    weak = _weak_option(source, path_text)
    busy = active is not None
    if active is not None:
        st.warning(f"A run is going ({active.name}); only one runs at a time.", icon=":material/hourglass:")
    if st.button(
        "Start training", type="primary", disabled=busy, icon=":material/play_arrow:", key="train_start"
    ):
        with guard("starting the training run"):
            data = _data_path(source, videos, uploads, path_text, jm)
            run = jm.start(
                TrainRequest(
                    data=str(data),
                    preset=preset_name,
                    epochs=int(epochs),
                    lr=float(lr),
                    num_frames=int(frames),
                    name=name or None,
                    overrides={"loss": {"weak": True}} if weak else {},
                )
            )
            st.session_state["train_run"] = str(run)
            st.rerun()


def video_labels(folder: Path) -> dict[Path, str]:
    """The video-level labels of a folder of videos (``labels.csv`` or subfolder names); {} for none."""
    from carl_core.datasets import VIDEO_EXTENSIONS, folder_labels

    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    return folder_labels(folder, files) if files else {}


def _weak_option(source: str, path_text: str) -> bool:
    """Weak SCL (``loss.weak``), offered where the data has video-level labels; whether it is on."""
    if source != FOLDER or not path_text.strip():
        return False
    labels: dict[Path, str] = {}
    with guard("reading the folder's labels"):
        labels = video_labels(Path(path_text.strip()).expanduser())
    if not labels:
        st.caption(
            "No labels found: self-supervised training. For weak supervision, add a labels.csv "
            "(video,label) or put the videos in one subfolder per label."
        )
        return False
    names = sorted(set(labels.values()))
    shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
    return st.toggle(
        f"Weak supervision: also align videos that share a label ({len(labels)} videos labelled: {shown})",
        key="train_weak",
        help="Weak SCL: after a warm-up, videos with the same label are aligned by DTW on the current "
        "embeddings and pulled together frame by frame (`carl train --weak`).",
    )


def _data_path(source: str, videos: dict[str, Video | None], uploads, path_text: str, jm: JobManager) -> Path:
    if source == LOADED:
        loaded = [v for v in videos.values() if v is not None]
        if len(loaded) < 2:
            raise DataError("load two videos above first, or choose another data source")
        return _stage([(v.name, v.path) for v in loaded], jm)
    if source == UPLOADED:
        if not uploads or len(uploads) < 2:
            raise DataError("drop at least 2 videos of the action to train on")
        return _stage([(u.name, u.getvalue()) for u in uploads], jm)
    if not path_text.strip():
        raise DataError("give the folder to train on")
    path = Path(path_text.strip()).expanduser()
    if source == AUTHORS and not (path / "train.pkl").is_file():
        raise DataError(f"{path} has no train.pkl: is it a dataset in the authors' format?")
    return path


def _show_runs(jm: JobManager) -> None:
    runs = jm.runs(with_log=False)
    if not runs:
        st.caption(f"No runs yet. They are kept in {jm.runs_dir}.")
        return
    names = [r.name for r in runs]
    wanted = Path(st.session_state.get("train_run", "")).name
    active = jm.active()
    if active is not None:
        wanted = active.name
    index = names.index(wanted) if wanted in names else 0
    chosen = st.selectbox("Run", names, index=index, key="train_show")
    run_dir = jm.runs_dir / chosen
    if jm.status(run_dir).running:
        _live_panel(str(run_dir))
    else:
        _panel(str(run_dir))


def _panel(run_dir: str) -> None:
    """One run's status; as a fragment it reruns alone (outside main's guard), so it has its own."""
    with guard("showing the training run"):
        _panel_body(run_dir)


def _panel_body(run_dir: str) -> None:
    jm = manager()
    status = jm.status(run_dir)
    was = st.session_state.get("train_seen_state", {}).get(run_dir)
    st.session_state.setdefault("train_seen_state", {})[run_dir] = status.state
    if was in ("starting", "caching", "training", "evaluating") and not status.running:
        st.rerun(scope="app")  # the new checkpoint belongs in the sidebar's model picker
    _progress(status)
    if status.losses:
        st.plotly_chart(_loss_figure(status), key=f"loss_{status.name}")
    elif status.running:
        st.caption("The loss curve appears after the first training step.")
    if status.metrics:
        _metrics(status.metrics)
    elif status.metrics_error:
        st.caption(f"No metrics: {status.metrics_error}")
    _actions(status, jm)


_live_panel = st.fragment(run_every=1.5)(_panel)


def progress_text(status: JobStatus) -> str:
    """What the progress bar of a running run says: phase, count, time left (once), the news."""
    words = STATE_WORDS.get(status.state, status.state)
    left = "estimating the time left" if status.eta_s is None else f"{format_duration(status.eta_s)} left"
    return f"{words}: {status.done}/{status.phase_total} · {left} · {status.message}"


def _progress(status: JobStatus) -> None:
    words = STATE_WORDS.get(status.state, status.state)
    if status.running:
        st.progress(min(1.0, status.fraction), text=progress_text(status))
    elif status.state == "done":
        st.success(
            f"Finished: {status.message}. The checkpoint is in the sidebar's model picker "
            f"({TRAINED}{status.name}).",
            icon=":material/check_circle:",
        )
    elif status.state == "stopped":
        st.warning(f"Stopped: {status.message}", icon=":material/stop_circle:")
    elif status.state in ("failed", "died"):
        st.error(f"The run {words}: {status.error}", icon=":material/error:")
    st.caption(
        f"{status.device or '?'} · preset {status.preset} · data {status.data} · folder {status.run_dir}"
    )


def _loss_figure(status: JobStatus) -> go.Figure:
    steps = [s for s, _ in status.losses]
    losses = [v for _, v in status.losses]
    smooth, acc = [], None
    for v in losses:  # exponential moving average: the trend under the noise of small batches
        acc = v if acc is None else 0.9 * acc + 0.1 * v
        smooth.append(acc)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=losses, mode="lines", name="loss", line={"color": "#9ecae1"}))
    fig.add_trace(
        go.Scatter(x=steps, y=smooth, mode="lines", name="smoothed", line={"color": "#08519c", "width": 2})
    )
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Sequence contrastive loss", "font": {"size": 14}},
        xaxis={"title": "step"},
        yaxis={"title": "loss"},
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
    )
    return fig


def _metrics(metrics: dict) -> None:
    from carl_core.evaluate import headline

    names = {
        "kendalls_tau": "Kendall's tau",
        "retrieval": "Retrieval AP@5",
        "classification": "Phase classification",
        "progression": "Phase progression",
    }
    with guard("reading the metrics"):
        head = headline(metrics)
        cols = st.columns(max(1, len(head)))
        for col, (k, v) in zip(cols, head.items()):
            col.metric(names.get(k, k), "n/a" if v is None else f"{v:.3f}")
        per_action = metrics.get("protocol") == "penn_action"
        how = "per action, then averaged" if per_action else "all videos as one action"
        st.caption(f"The paper's four protocols on the validation videos ({how}).")


@safe_callback
def _use_model(label: str) -> None:
    st.session_state["model_choice"] = label


def _actions(status: JobStatus, jm: JobManager) -> None:
    if status.running:
        if st.button("Stop", icon=":material/stop:", key=f"stop_{status.name}"):
            with guard("stopping the run"):
                jm.stop(status.run_dir)
                st.toast("Stopping after the current step; the checkpoint is saved first.")
        return
    if status.state == "done" and status.checkpoint is not None:
        labels = [label for label, path in jm.checkpoints() if path == status.checkpoint]
        if labels:
            st.button(
                "Use this model",
                icon=":material/check:",
                key=f"use_{status.name}",
                on_click=_use_model,
                args=(TRAINED + labels[0],),
            )
    if status.can_resume or status.state == "done":
        c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
        epochs = c1.number_input(
            "Epochs in all",
            min_value=1,
            max_value=10_000,
            value=_epochs_of(status),
            key=f"resume_epochs_{status.name}",
        )
        verb = "Resume" if status.can_resume else "Train longer"
        if c2.button(verb, icon=":material/resume:", key=f"resume_{status.name}"):
            with guard("resuming the run"):
                jm.resume(status.run_dir, epochs=int(epochs))
                st.session_state["train_run"] = str(status.run_dir)
                st.rerun(scope="app")


def _epochs_of(status: JobStatus) -> int:
    import json

    try:
        return int(json.loads((status.run_dir / "job.json").read_text())["config"]["train"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return 1
