"""The small shared helpers: device choice, time left, safe file names, the run log, config checks."""

from __future__ import annotations

import json

import pytest
import torch

from carl_core.config import load_preset
from carl_core.devices import default_device, describe_device, resolve_device
from carl_core.errors import ConfigError
from carl_core.io import safe_file_name
from carl_core.progress import format_duration, prefixed
from carl_core.run_log import append_log, read_log, read_losses, rewrite_log


def test_devices():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected
    assert resolve_device("auto") == resolve_device(None) == default_device()
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert describe_device().startswith(("GPU: ", "CPU ("))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (59.4, "0:59"), (59.6, "1:00"), (355, "5:55"), (3600, "1:00:00"), (None, "?")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
    assert format_duration(float("nan")) == format_duration(float("inf")) == "?"


def test_prefixed_progress():
    calls = []
    prefixed(lambda *a: calls.append(a), "caching")(1, 2, "clip.mp4")
    assert calls == [(1, 2, "caching: clip.mp4")]
    assert prefixed(None, "caching") is None


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("take 1.mp4", "take_1.mp4"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "fallback"),
        (".hidden.mov", "hidden.mov"),
        ("squats-v1", "squats-v1"),
        ("Übung.mp4", "bung.mp4"),
        ("", "fallback"),
    ],
)
def test_safe_file_name(name, safe):
    assert safe_file_name(name, "fallback") == safe


def test_safe_file_name_keeps_the_suffix_of_a_long_name():
    name = safe_file_name("x" * 200 + ".mp4")
    assert len(name) == 80 and name.endswith(".mp4")


def test_run_log_round_trip_and_a_half_written_line(tmp_path):
    assert read_log(tmp_path) == []
    for entry in ({"step": 1, "loss": 1.0}, {"step": 2, "skipped": True}, {"step": 3, "loss": 1 / 3}):
        append_log(tmp_path, entry)
    with (tmp_path / "log.jsonl").open("a") as f:
        f.write('{"step": 4, "lo')  # a run killed mid-write
    assert [e["step"] for e in read_log(tmp_path)] == [1, 2, 3]
    assert read_losses(tmp_path) == [(1, 1.0), (3, 1 / 3)]
    rewrite_log(tmp_path, [{"step": 1, "loss": 1.0}])
    assert json.loads((tmp_path / "log.jsonl").read_text()) == {"step": 1, "loss": 1.0}


def test_heads_that_do_not_divide_the_width_are_a_config_error():
    # Caught when the configuration is made, not as an assert deep inside the model.
    with pytest.raises(ConfigError, match="divisible by model.num_heads"):
        load_preset("small").with_overrides(model={"hidden_size": 100, "num_heads": 8})
