"""Background training runs: one at a time, in a process of its own, watched through files.

A caller (the app, a script) asks a ``JobManager`` to start a run; the manager checks the
request (preset, data, enough videos) at once, so a mistake is a ``CarlError`` right away,
then starts ``python -m carl_core.jobs RUN_DIR``. That child trains with ``carl_core.train``
and reports only through files in RUN_DIR, so any process can watch it and a page reload
loses nothing:

- ``job.json``: what was asked (config, data, device, whether to resume);
- ``status.json``: state, phase, progress, time left, error; rewritten atomically on every
  progress event;
- ``log.jsonl``: the trainer's per-step log (loss, learning rate);
- ``last.pt``: the checkpoint, written by the trainer at each epoch's end and on stop;
- ``metrics.json``: the paper's evaluation protocols, after training, where the data has
  frame labels and a validation split;
- ``output.log``: the child's stdout and stderr.

Stop: ``stop()`` writes a ``STOP`` file; the trainer polls it between steps (``should_stop``)
and saves ``last.pt``, so ``resume()`` continues the run (``Trainer(resume=True)``). During the
feature caching and evaluation phases the progress callback polls it too.

One run at a time: ``train.lock`` in the manager's root names the running child's pid; a
second start raises ``JobError``. A lock whose process is gone (killed, machine restarted) is
stale and is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import CarlError, DataError
from .io import atomic_write_text, safe_file_name
from .run_log import read_losses

__all__ = [
    "MIN_VIDEOS",
    "JobError",
    "JobManager",
    "JobStatus",
    "TrainRequest",
    "default_home",
]

HOME_ENV = "CARL_STUDIO_HOME"
MIN_VIDEOS = 2  # SCL learns from each video's two views, but one video teaches a model nothing general
ACTIVE_STATES = ("starting", "caching", "training", "evaluating")
STATUS, JOB, STOP, LOCK, METRICS, OUTPUT = (
    "status.json",
    "job.json",
    "STOP",
    "train.lock",
    "metrics.json",
    "output.log",
)


class JobError(CarlError):
    """A training request that cannot run now: another run is going, or nothing to resume."""


class _Stopped(Exception):
    """Raised from a progress callback when the user asked to stop outside the step loop."""


def default_home() -> Path:
    """Where runs live: ``$CARL_STUDIO_HOME``, else ``~/.cache/carl_studio/studio``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    return Path.home() / ".cache" / "carl_studio" / "studio"


@dataclass
class TrainRequest:
    """A training run as the user asks for it; None keeps the preset's value."""

    data: str  # a folder of videos, or a dataset in the authors' format (folder with train.pkl)
    preset: str = "small"  # a preset name or a YAML file
    epochs: int | None = None
    lr: float | None = None
    num_frames: int | None = None  # frames per clip (per view)
    batch_size: int | None = None
    device: str = "auto"
    name: str | None = None  # folder name under runs/; a timestamp when None
    evaluate: bool = True  # run the paper's protocols afterwards where the data has labels
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {"model": {"image_size": 64}}

    def config(self) -> Any:
        """The run's CarlConfig: the preset with this request's choices applied."""
        from .config import load_preset

        config = load_preset(self.preset)
        sections: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.overrides.items()}
        for section, key, value in (
            ("train", "epochs", self.epochs),
            ("train", "lr", self.lr),
            ("train", "batch_size", self.batch_size),
            ("data", "num_frames", self.num_frames),
            ("model", "train_len", self.num_frames),  # as the CLI: clips and positions agree
        ):
            if value is not None:
                sections.setdefault(section, {})[key] = value
        if sections:
            config = config.with_overrides(**sections)
        _check_numbers(config)
        return config


def _check_numbers(config: Any) -> None:
    from .errors import ConfigError

    t, d = config.train, config.data
    if not (isinstance(t.epochs, int) and t.epochs >= 1):
        raise ConfigError(f"epochs must be a whole number of at least 1, got {t.epochs!r}")
    if not (t.lr > 0):
        raise ConfigError(f"the learning rate must be positive, got {t.lr!r}")
    if not (isinstance(d.num_frames, int) and d.num_frames >= 2):
        raise ConfigError(f"frames per clip must be a whole number of at least 2, got {d.num_frames!r}")
    if not (isinstance(t.batch_size, int) and t.batch_size >= 1):
        raise ConfigError(f"the batch size must be at least 1, got {t.batch_size!r}")


@dataclass
class JobStatus:
    """What a run's files say about it."""

    run_dir: Path
    state: str  # starting | caching | training | evaluating | done | stopped | failed | died
    step: int = 0
    total: int = 0
    done: int = 0  # progress within the current phase
    phase_total: int = 0
    message: str = ""
    started: float | None = None
    updated: float | None = None
    eta_s: float | None = None
    error: str | None = None
    pid: int | None = None
    name: str = ""
    device: str = ""
    data: str = ""
    preset: str = ""
    losses: list[tuple[int, float]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    metrics_error: str | None = None

    @property
    def running(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        return self.done / self.phase_total if self.phase_total else 0.0

    @property
    def checkpoint(self) -> Path | None:
        last = self.run_dir / "last.pt"
        return last if last.is_file() else None

    @property
    def can_resume(self) -> bool:
        return (
            not self.running and self.checkpoint is not None and self.state in ("stopped", "failed", "died")
        )


# --------------------------------------------------------------------------------------------
# The manager (the caller's side)
# --------------------------------------------------------------------------------------------


class JobManager:
    """Starts, watches, stops and resumes training runs under ``root/runs``; one at a time."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_home()
        self.runs_dir = self.root / "runs"

    # -- starting ------------------------------------------------------------------------------
    def start(self, request: TrainRequest) -> Path:
        """Check the request, then start it in the background; returns the run folder.

        Raises ``JobError`` while another run is going, and the usual ``CarlError`` subclasses
        for a bad preset, bad numbers, missing data or too few videos.
        """
        from .train import resolve_device

        config = request.config()
        device = resolve_device(request.device)
        count = _count_videos(request.data, config)
        self._check_free()
        run_dir = self._new_run_dir(request.name)
        job = {
            "request": asdict(request),
            "config": config.to_dict(),
            "data": str(Path(request.data).expanduser().resolve()),
            "device": str(device),
            "videos": count,
            "resume": False,
            "evaluate": bool(request.evaluate),
            "lock": str((self.root / LOCK).resolve()),
        }
        run_dir.mkdir(parents=True)
        atomic_write_text(run_dir / JOB, json.dumps(job, indent=2))
        self._launch(run_dir, job)
        return run_dir

    def resume(self, run_dir: str | os.PathLike, epochs: int | None = None) -> Path:
        """Continue a stopped (or failed, or killed) run from its ``last.pt``; ``epochs`` may grow it."""
        run_dir = Path(run_dir)
        job = _read_json(run_dir / JOB)
        if job is None:
            raise JobError(f"{run_dir} is not a training run started here (job.json missing)")
        if not (run_dir / "last.pt").is_file():
            raise JobError(
                f"{run_dir.name} stopped before its first checkpoint, so there is nothing to resume: "
                "start a new run"
            )
        st = self.status(run_dir)
        if st.running:
            raise JobError(f"{run_dir.name} is still running")
        if epochs is not None:
            if not (isinstance(epochs, int) and epochs >= 1):
                raise JobError(f"epochs must be a whole number of at least 1, got {epochs!r}")
            job["config"]["train"]["epochs"] = epochs
        self._check_free()
        job["resume"] = True
        job["lock"] = str((self.root / LOCK).resolve())
        atomic_write_text(run_dir / JOB, json.dumps(job, indent=2))
        with contextlib.suppress(FileNotFoundError):
            (run_dir / STOP).unlink()
        self._launch(run_dir, job)
        return run_dir

    def _new_run_dir(self, name: str | None) -> Path:
        stamp = time.strftime("run-%Y%m%d-%H%M%S")
        stem = safe_file_name(name, stamp) if name else stamp
        run_dir, k = self.runs_dir / stem, 1
        while run_dir.exists():
            k += 1
            run_dir = self.runs_dir / f"{stem}-{k}"
        return run_dir

    def _check_free(self) -> None:
        active = self.active()
        if active is not None:
            raise JobError(
                f"a training run is already going ({active.name}); only one runs at a time. "
                "Wait for it to finish or stop it first."
            )

    def _launch(self, run_dir: Path, job: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = self.root / LOCK
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            raise JobError(
                "a training run is already going; only one runs at a time. Wait for it or stop it first."
            ) from None
        with os.fdopen(fd, "w") as f:  # our own pid until the child's is known: alive, so not stale
            json.dump({"pid": os.getpid(), "run_dir": str(run_dir)}, f)
        try:
            _write_status(run_dir, {"state": "starting", "message": "starting", "started": time.time()})
            env = dict(os.environ)
            package_root = str(Path(__file__).resolve().parents[1])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
            with (run_dir / OUTPUT).open("ab") as out:
                # A list of arguments, no shell: nothing the user typed is ever parsed as a command.
                proc = subprocess.Popen(
                    [sys.executable, "-m", "carl_core.jobs", str(run_dir)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,  # a Ctrl-C meant for the app does not kill the run
                )
            atomic_write_text(lock, json.dumps({"pid": proc.pid, "run_dir": str(run_dir)}))
            self._children = getattr(self, "_children", [])
            self._children.append(proc)  # reaped in active(), so a finished child is no zombie
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            raise

    # -- watching ------------------------------------------------------------------------------
    def active(self) -> Path | None:
        """The run going now, or None. Clears a stale lock."""
        for proc in getattr(self, "_children", []):
            proc.poll()
        lock = self.root / LOCK
        info = _read_json(lock)
        if info is None:
            if lock.exists() and time.time() - lock.stat().st_mtime > 5:
                lock.unlink(missing_ok=True)  # unreadable and old: a writer died mid-write
            return None
        pid, run_dir = info.get("pid"), Path(info.get("run_dir", ""))
        if isinstance(pid, int) and _pid_alive(pid):
            return run_dir
        lock.unlink(missing_ok=True)
        return None

    def status(self, run_dir: str | os.PathLike, *, with_log: bool = True) -> JobStatus:
        """The run's state from its files; a run whose process vanished reads as ``died``.

        ``with_log=False`` leaves ``losses`` and ``metrics`` empty: the step log grows with the
        run, and a list of runs does not need it.
        """
        run_dir = Path(run_dir)
        raw = _read_json(run_dir / STATUS) or {}
        job = _read_json(run_dir / JOB) or {}
        request = job.get("request", {})
        st = JobStatus(
            run_dir=run_dir,
            state=raw.get("state", "unknown"),
            step=int(raw.get("step", 0)),
            total=int(raw.get("total", 0)),
            done=int(raw.get("done", 0)),
            phase_total=int(raw.get("phase_total", 0)),
            message=str(raw.get("message", "")),
            started=raw.get("started"),
            updated=raw.get("updated"),
            eta_s=raw.get("eta_s"),
            error=raw.get("error"),
            pid=raw.get("pid"),
            name=run_dir.name,
            device=str(job.get("device", "")),
            data=str(job.get("data", "")),
            preset=str(request.get("preset", "")),
            metrics_error=raw.get("metrics_error"),
        )
        if st.running and self.active() != run_dir:
            # The process is gone without saying so (killed, out of memory, machine restarted).
            pid_alive = isinstance(st.pid, int) and _pid_alive(st.pid)
            if not pid_alive and not (st.state == "starting" and time.time() - (st.started or 0) < 10):
                st.state = "died"
                st.error = st.error or (
                    "the training process ended without a word (killed or out of memory); "
                    f"see {run_dir / OUTPUT}. Resume it from its last checkpoint if it has one."
                )
        if with_log:
            st.losses = read_losses(run_dir)
            st.metrics = _read_json(run_dir / METRICS)
        return st

    def runs(self, *, with_log: bool = True) -> list[JobStatus]:
        """Every run under ``root/runs``, newest first."""
        if not self.runs_dir.is_dir():
            return []
        dirs = [d for d in self.runs_dir.iterdir() if (d / JOB).is_file()]
        dirs.sort(key=lambda d: (d / JOB).stat().st_mtime, reverse=True)
        return [self.status(d, with_log=with_log) for d in dirs]

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Changes whenever a run's status or checkpoint changes (stat calls only, no reading):
        a key for caching what the runs' files say."""

        def stamp(path: Path) -> int:
            return path.stat().st_mtime_ns if path.exists() else 0

        if not self.runs_dir.is_dir():
            return ()
        runs = sorted(self.runs_dir.iterdir())
        return tuple((d.name, stamp(d / STATUS), stamp(d / "last.pt")) for d in runs)

    def checkpoints(self) -> list[tuple[str, Path]]:
        """(label, last.pt) of every run that finished or was stopped with a checkpoint, newest first."""
        out = []
        for st in self.runs(with_log=False):
            if not st.running and st.checkpoint is not None and st.state in ("done", "stopped"):
                what = "trained" if st.state == "done" else f"stopped at step {st.step}"
                out.append((f"{st.name} ({what})", st.checkpoint))
        return out

    def stop(self, run_dir: str | os.PathLike) -> None:
        """Ask the run to stop after its current step; it saves ``last.pt`` first."""
        run_dir = Path(run_dir)
        if not (run_dir / JOB).is_file():
            raise JobError(f"{run_dir} is not a training run started here")
        atomic_write_text(run_dir / STOP, str(time.time()))

    def wait(self, run_dir: str | os.PathLike, timeout: float = 600.0, poll: float = 0.5) -> JobStatus:
        """Block until the run is no longer active (for scripts and tests)."""
        end = time.time() + timeout
        while True:
            st = self.status(run_dir)
            if not st.running:
                return st
            if time.time() > end:
                raise TimeoutError(f"{Path(run_dir).name} still {st.state} after {timeout:.0f} s")
            time.sleep(poll)


def _count_videos(data: str, config: Any) -> int:
    """Readable videos in the training data; too few is the user's to fix, now, not in the background."""
    from .datasets import load_dataset

    path = Path(data).expanduser()
    if not str(data).strip():
        raise DataError("no training data given: choose a folder of videos or a dataset folder")
    records = load_dataset(path, "train", fps=config.data.fps)
    if len(records) < MIN_VIDEOS:
        raise DataError(
            f"training needs at least {MIN_VIDEOS} videos; {path} has {len(records)}. "
            "Add more videos of the action."
        )
    short = [r.name for r in records if r.seq_len < 2]
    if len(short) == len(records):
        raise DataError(f"every video in {path} has fewer than 2 frames: training needs real videos")
    return len(records)


def _pid_alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it if it has exited
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel
    except OSError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # A zombie (exited, not reaped by another parent) is no running job.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_status(run_dir: Path, status: dict[str, Any]) -> None:
    atomic_write_text(run_dir / STATUS, json.dumps({**status, "updated": time.time()}))


# --------------------------------------------------------------------------------------------
# The worker (the child's side)
# --------------------------------------------------------------------------------------------


class _Reporter:
    """Turns the trainer's callbacks into status.json: the phase under way (a field, set when
    the trainer enters it), its progress, and its time left (estimated here, and only here)."""

    def __init__(self, run_dir: Path, started: float):
        self.run_dir = run_dir
        self.state: dict[str, Any] = {"state": "starting", "pid": os.getpid(), "started": started}
        self.current = "starting"
        self.phase_start: tuple[str, float, int] | None = None

    def write(self, **values: Any) -> None:
        self.state.update(values)
        _write_status(self.run_dir, self.state)

    def enter(self, name: str) -> None:
        """A new phase: "caching", "training" or "evaluating"."""
        self.current = name
        self.write(state=name, done=0, phase_total=0, eta_s=None)

    def progress(self, done: int, total: int, message: str) -> None:
        """Progress within the current phase."""
        now, name = time.time(), self.current
        if self.phase_start is None or self.phase_start[0] != name:
            self.phase_start = (name, now, done)
        _, t0, d0 = self.phase_start
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        extra = {"step": done, "total": total} if name == "training" else {}
        self.write(state=name, done=done, phase_total=total, message=message, eta_s=eta, **extra)

    def stop_requested(self) -> bool:
        return (self.run_dir / STOP).exists()


def run_job(run_dir: str | os.PathLike) -> int:
    """Run the job described by ``RUN_DIR/job.json`` here, reporting to its status file."""
    import logging

    from .config import CarlConfig
    from .train import Trainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_dir = Path(run_dir)
    job = _read_json(run_dir / JOB)
    if job is None:
        print(f"error: {run_dir / JOB} is missing or unreadable", file=sys.stderr)
        return 2
    prior = _read_json(run_dir / STATUS) or {}
    rep = _Reporter(run_dir, prior.get("started") or time.time())
    code = 0
    try:
        rep.write(state="starting", message="loading the data and the model", error=None)

        def on_progress(done: int, total: int, message: str) -> None:
            if rep.current == "caching" and rep.stop_requested():  # the step loop polls on its own
                raise _Stopped
            rep.progress(done, total, message)

        config = CarlConfig.from_dict(job["config"])
        trainer = Trainer(
            config,
            job["data"],
            run_dir,
            device=job.get("device", "auto"),
            resume=bool(job.get("resume")),
            on_progress=on_progress,
            on_phase=rep.enter,
            should_stop=rep.stop_requested,
        )
        result = trainer.run()
        if result.stopped:
            rep.write(
                state="stopped", message=f"stopped at step {result.steps}; resume to continue", eta_s=None
            )
            return 0
        if job.get("evaluate"):
            rep.enter("evaluating")
            rep.write(message="checking for labels to evaluate on")
            _evaluate(job, run_dir, rep)
        rep.write(
            state="done",
            message=f"trained {result.steps} steps in {result.seconds:.0f} s",
            eta_s=None,
            step=result.steps,
            total=max(result.steps, rep.state.get("total", 0)),
        )
    except _Stopped:
        rep.write(state="stopped", message="stopped before the first training step", eta_s=None)
    except CarlError as e:
        rep.write(state="failed", error=str(e), message="failed", eta_s=None)
        code = 2
    except Exception as e:  # a bug, not the user's doing: keep the traceback for the report
        traceback.print_exc()
        rep.write(
            state="failed",
            error=f"internal error ({type(e).__name__}: {e}); details in {run_dir / OUTPUT}",
            message="failed",
            eta_s=None,
        )
        code = 1
    finally:
        _release_lock(Path(job["lock"]) if job.get("lock") else None)
    return code


def _evaluate(job: dict[str, Any], run_dir: Path, rep: _Reporter) -> None:
    """The paper's protocols on the validation split, where the data has labels; else nothing."""
    from .checkpoint import load_checkpoint
    from .datasets import has_split, load_dataset
    from .evaluate import evaluate_model

    data = Path(job["data"])
    if not (has_split(data, "train") and has_split(data, "val")):
        return
    train, val = load_dataset(data, "train"), load_dataset(data, "val")
    if any(r.frame_label is None for r in train + val):
        return

    def on_progress(done: int, total: int, message: str) -> None:
        if rep.stop_requested():
            raise _Stopped
        rep.progress(done, total, message)

    try:
        model = load_checkpoint(run_dir / "last.pt", device=job.get("device"))
        metrics = evaluate_model(model, train, val, on_progress=on_progress)
    except _Stopped:
        rep.write(metrics_error="evaluation was stopped")
        return
    except CarlError as e:  # the checkpoint is good; only the metrics are missing
        rep.write(metrics_error=str(e))
        return
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=2))


def _release_lock(lock: Path | None) -> None:
    """Remove the manager's lock if it names this process (a stale or foreign one stays)."""
    info = _read_json(lock) if lock is not None else None
    if lock is not None and info is not None and info.get("pid") == os.getpid():
        lock.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m carl_core.jobs RUN_DIR", file=sys.stderr)
        return 2
    return run_job(args[0])


if __name__ == "__main__":
    sys.exit(main())
