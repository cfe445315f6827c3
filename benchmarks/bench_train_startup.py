"""Start-up of a training run: a new run, then "Train longer" (resume with more epochs).

Each run is a fresh Python process, as the app's background job is, timed from its start to
its first training step (the new run then finishes its one epoch, for a checkpoint to resume),
split into: imports, building the run (data, model) and the frozen-backbone features
("caching"). A warm-up run with another seed first fills the ONNX export and the OS file
cache, so both timed runs start from the same state. Prints the load average: the machine may
be shared.

    python benchmarks/bench_train_startup.py [--data FOLDER]

Default data: the bundled sample squats (``assets/samples``), the app's "videos loaded above".
Works on any checkout of CARL Studio (it uses only ``Trainer``'s on_progress callback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(run_dir: str, epochs: int, resume: bool, seed: int, data: str) -> None:
    t0 = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from carl_core.config import load_preset
    from carl_core.train import Trainer

    marks: dict[str, float] = {"imports": time.perf_counter() - t0}

    class FirstStep(Exception):
        pass

    def on_progress(done: int, total: int, message: str) -> None:
        now = time.perf_counter() - t0
        if message.startswith("caching"):
            marks["caching_end"] = now
        else:
            marks.setdefault("first_step", now)
            if resume:
                raise FirstStep  # the rest of the run is not start-up

    config = load_preset("small").with_overrides(train={"epochs": epochs, "seed": seed})
    trainer = Trainer(config, data, run_dir, resume=resume, on_progress=on_progress)
    marks["built"] = time.perf_counter() - t0
    with contextlib.suppress(FirstStep):
        trainer.run()
    print(json.dumps(marks))


def run(args: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT / "assets" / "samples"))
    p.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        run_dir, epochs, resume, seed, data = a.child
        child(run_dir, int(epochs), resume == "1", int(seed), data)
        return
    work = Path(tempfile.mkdtemp(prefix="carl-bench-startup-"))
    env = {**os.environ, "CARL_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; data {a.data}")
    run([str(work / "warm"), "1", "0", "7", a.data], env)  # ONNX export, OS file cache
    rows = {
        "new run": run([str(work / "run"), "1", "0", "1", a.data], env),
        "train longer (resume)": run([str(work / "run"), "2", "1", "1", a.data], env),
    }
    print(f"{'':24s} {'imports':>8s} {'built':>8s} {'caching':>8s} {'to step 1':>10s}")
    for name, m in rows.items():
        caching = m.get("caching_end", m["built"]) - m["built"]
        print(f"{name:24s} {m['imports']:8.1f} {m['built']:8.1f} {caching:8.1f} {m['first_step']:10.1f}")
    fresh, again = rows["new run"]["first_step"], rows["train longer (resume)"]["first_step"]
    print(f"train longer / new run, time to the first step: {again / fresh:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
