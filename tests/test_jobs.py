"""Background training runs (carl_core.jobs): one at a time, stop, resume, a killed run, bad requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carl_core.errors import ConfigError, DataError
from carl_core.jobs import LOCK, JobError, JobManager, TrainRequest
from tests.e2e.studio import TINY_PRESET


@pytest.fixture
def preset(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_PRESET)
    return path


def _wait_for(jm: JobManager, run: Path, test, timeout: float = 180.0):
    end = time.time() + timeout
    while time.time() < end:
        st = jm.status(run)
        if test(st):
            return st
        if not st.running:
            pytest.fail(f"the run ended early: {st}")
        time.sleep(0.2)
    pytest.fail(f"timed out; last status {jm.status(run)}")


@pytest.mark.slow
def test_a_run_is_alone_stops_dies_and_resumes(tmp_path: Path, tiny_dataset: Path, preset: Path) -> None:
    jm = JobManager(tmp_path / "home")
    request = TrainRequest(data=str(tiny_dataset), preset=str(preset), epochs=400, evaluate=False, name="r1")
    run = jm.start(request)
    assert run == jm.runs_dir / "r1" and jm.active() == run

    with pytest.raises(JobError, match="only one runs at a time"):
        jm.start(TrainRequest(data=str(tiny_dataset), preset=str(preset), epochs=1))

    # Killed mid-run (no chance to say so): the run reads as died and resumes from its checkpoint.
    st = _wait_for(jm, run, lambda s: s.state == "training" and s.step > 0)
    per_epoch = st.total // 400
    st = _wait_for(jm, run, lambda s: s.state == "training" and s.step > per_epoch)
    pid = json.loads((jm.root / LOCK).read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    st = _wait_for_end(jm, run)
    assert st.state == "died" and "ended without a word" in st.error
    assert st.can_resume and st.checkpoint is not None and jm.active() is None

    # Resume; then stop cleanly after the current step: the checkpoint holds every step done.
    jm.resume(run)
    st = _wait_for(jm, run, lambda s: s.state == "training" and s.step >= 2 * per_epoch + 2)
    jm.stop(run)
    st = _wait_for_end(jm, run)
    assert st.state == "stopped" and st.checkpoint is not None
    from carl_core.checkpoint import read_checkpoint

    saved = int(read_checkpoint(st.checkpoint)["step"])
    assert saved == st.step and st.step < st.total

    # Resume with a shorter run: it ends at the next epoch's end, the log without gaps.
    target_epochs = saved // per_epoch + 1
    jm.resume(run, epochs=target_epochs)
    st = _wait_for_end(jm, run)
    assert st.state == "done", st
    assert st.step == target_epochs * per_epoch
    steps = [s for s, _ in st.losses]
    assert steps == list(range(1, st.step + 1))
    assert jm.checkpoints() == [("r1 (trained)", run / "last.pt")]
    assert not (jm.root / LOCK).exists()


def _wait_for_end(jm: JobManager, run: Path, timeout: float = 180.0):
    return jm.wait(run, timeout=timeout, poll=0.2)


def test_bad_requests_fail_at_once_and_start_nothing(
    tmp_path: Path, tiny_dataset: Path, preset: Path
) -> None:
    jm = JobManager(tmp_path / "home")
    with pytest.raises(ConfigError, match="unknown preset"):
        jm.start(TrainRequest(data=str(tiny_dataset), preset="nope"))
    with pytest.raises(ConfigError, match="epochs"):
        jm.start(TrainRequest(data=str(tiny_dataset), preset=str(preset), epochs=0))
    with pytest.raises(DataError, match="not found"):
        jm.start(TrainRequest(data=str(tmp_path / "missing"), preset=str(preset)))
    one = tmp_path / "one"
    one.mkdir()
    video = next((tiny_dataset / "videos").iterdir())
    (one / video.name).write_bytes(video.read_bytes())
    with pytest.raises(DataError, match="at least 2 videos"):
        jm.start(TrainRequest(data=str(one), preset=str(preset)))
    with pytest.raises(JobError, match="not a training run"):
        jm.resume(tmp_path)
    assert jm.runs() == [] and jm.active() is None and not (jm.root / LOCK).exists()


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    jm = JobManager(tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": gone.pid, "run_dir": str(tmp_path / "runs" / "x")}))
    assert jm.active() is None
    assert not (tmp_path / LOCK).exists()
    # A live process holding the lock is a run going.
    (tmp_path / LOCK).write_text(json.dumps({"pid": os.getpid(), "run_dir": str(tmp_path / "runs" / "y")}))
    assert jm.active() == tmp_path / "runs" / "y"


def test_the_phase_is_a_field_not_read_from_the_message(tmp_path: Path) -> None:
    from carl_core.jobs import STATUS, _Reporter

    rep = _Reporter(tmp_path, time.time())
    rep.enter("training")
    rep.progress(3, 10, "caching is what the message says, but training is the phase")
    status = json.loads((tmp_path / STATUS).read_text())
    assert status["state"] == "training" and status["step"] == 3 and status["total"] == 10
    rep.enter("caching")
    rep.progress(1, 4, "clip.mp4: features computed")
    assert json.loads((tmp_path / STATUS).read_text())["state"] == "caching"


def test_the_train_tab_shows_the_time_left_once() -> None:
    from app.tab_train import progress_text
    from carl_core.jobs import JobStatus
    from carl_core.train import _progress_message

    message = _progress_message({"epoch": 2.5, "loss": 3.1}, 10, 20.0)
    status = JobStatus(Path("run"), "training", 10, 40, 10, 40, message, eta_s=355.0)
    text = progress_text(status)
    assert text.count("left") == 1 and "5:55 left" in text and "s left" not in message
