"""Which device runs the model: CUDA when PyTorch sees a GPU, else the CPU (DESIGN.md, Conventions)."""

from __future__ import annotations

import os

import torch

from .errors import ConfigError


def default_device() -> torch.device:
    """``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """A ``--device`` value (auto, cpu, cuda, cuda:N; None means auto) as a ``torch.device``.

    ``ConfigError`` for a name that is no device, or for cuda where PyTorch sees no GPU.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is None or name == "auto":
        return default_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here: use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu or cuda")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None


def describe_device() -> str:
    """What runs the model here, in words: "GPU: <name>" or "CPU (<n> cores)"."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} cores)"


__all__ = ["default_device", "describe_device", "resolve_device"]
