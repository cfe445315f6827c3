"""Scaling out under torchrun, on CPU with gloo: training on two "nodes" on localhost is killed and
resumes to exactly the weights of an uninterrupted run; a sharded ``index add`` equals one process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from carl_core.checkpoint import read_checkpoint
from carl_core.cli import main
from carl_core.retrieval import FrameIndex
from carl_core.train import read_log, train
from tests.conftest import fast_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _two_nodes(args: list[str], logs: Path) -> list[subprocess.Popen]:
    """``carl ARGS`` as two single-process nodes meeting at a rendezvous on localhost."""
    port = _port()
    procs = []
    for node in (0, 1):
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}",
            "--nproc-per-node=1", "--master-addr=127.0.0.1", f"--master-port={port}",
            "-m", "carl_core", *args,
        ]  # fmt: skip
        out = (logs / f"node{node}.log").open("ab")
        proc = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=out, stderr=out, start_new_session=True)
        procs.append(proc)
    return procs


def _wait(procs: list[subprocess.Popen], logs: Path, timeout: float = 300) -> None:
    for p in procs:
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(procs)
            raise
        if rc:
            raise AssertionError(f"torchrun failed ({rc}):\n" + (logs / "node0.log").read_text()[-3000:])


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:  # the workers run in sessions of their own: kill them, then the launcher
        for child in _children(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=60)


def test_two_node_training_killed_and_resumed_equals_an_uninterrupted_run(tiny_dataset, tmp_path):
    config = fast_config(epochs=3, cached_features=False, batch_size=1)
    config = config.with_overrides(model={"image_size": 32})
    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    args = ["train", "--data", str(tiny_dataset), "--preset", str(preset), "--workers", "0", "--out"]
    per_epoch = 4  # 8 training videos, 2 processes, 1 video each per step

    _wait(_two_nodes([*args, str(tmp_path / "straight")], tmp_path), tmp_path)
    straight = read_log(tmp_path / "straight")
    assert [e["step"] for e in straight] == list(range(1, 3 * per_epoch + 1))

    run = tmp_path / "killed"
    procs = _two_nodes([*args, str(run)], tmp_path)
    deadline = time.time() + 300
    while len(read_log(run)) <= per_epoch:  # into the second epoch: last.pt holds the first
        assert time.time() < deadline and all(p.poll() is None for p in procs), "no progress to kill"
        time.sleep(0.05)
    (worker,) = [
        c for c in _children(procs[1].pid) if b"carl_core" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]
    os.kill(worker, signal.SIGKILL)  # node 1's only worker: a machine that died
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=120)
    _kill(procs)
    saved = read_checkpoint(run / "last.pt")["step"]
    assert saved % per_epoch == 0 and per_epoch <= saved < 3 * per_epoch

    _wait(_two_nodes([*args, str(run), "--resume"], tmp_path), tmp_path)
    resumed = read_log(run)
    assert [e["step"] for e in resumed] == [e["step"] for e in straight]
    assert [e["loss"] for e in resumed] == [e["loss"] for e in straight]
    a, b = read_checkpoint(tmp_path / "straight" / "last.pt"), read_checkpoint(run / "last.pt")
    assert a["step"] == b["step"] == 3 * per_epoch
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_sharded_index_equals_one_process(tiny_dataset, tmp_path):
    config = fast_config(epochs=0).with_overrides(model={"image_size": 32})
    checkpoint = train(config, tiny_dataset, tmp_path / "run").checkpoint
    videos = sorted(str(p) for p in (tiny_dataset / "videos").glob("*.mp4"))[:5]
    videos.append(videos[1])  # named twice: the later one counts, as for one process
    common = ["--checkpoint", str(checkpoint), "--fps", "all", "--no-cache"]
    port = _port()
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
        "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
        "-m", "carl_core", "index", "add", *videos, "--index", str(tmp_path / "sharded"), *common,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the torchrun workers (OMP_NUM_THREADS=1): the same arithmetic
    try:
        assert main(["index", "add", *videos, "--index", str(tmp_path / "single"), *common]) == 0
    finally:
        torch.set_num_threads(threads)

    one, sharded = FrameIndex.load(tmp_path / "single"), FrameIndex.load(tmp_path / "sharded")
    assert sharded.videos == one.videos and len(one.videos) == 5
    assert one.videos[-1] == Path(videos[1]).name
    assert sharded.meta == one.meta and not (tmp_path / "sharded" / ".shards").exists()
    for vid in one.videos:
        assert sharded.video_path(vid) == one.video_path(vid)
        for x, y in zip(one.get(vid), sharded.get(vid)):
            assert np.array_equal(x, y), vid
    queries = one.get(one.videos[2])[0][::4]
    for x, y in zip(one.search(queries, k=7), sharded.search(queries, k=7)):
        assert np.array_equal(x, y)
