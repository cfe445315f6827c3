"""Errors a user can cause. Each message says what went wrong and what to do.

The CLI prints one line and exits 2; the app shows the message with ``st.error``.
Anything else that escapes is a bug in CARL Studio, not the user's fault.
"""

from __future__ import annotations


class CarlError(Exception):
    """Base class for every error a user can cause and fix."""


class VideoError(CarlError):
    """A file that is no video, cannot be decoded, or has no frames."""


class CheckpointError(CarlError):
    """A checkpoint that is missing, unsafe, corrupt or of the wrong shape."""


class ConfigError(CarlError):
    """An unknown preset, a bad option value or an inconsistent configuration."""


class DataError(CarlError):
    """A dataset that is missing, empty, malformed or too small for the request."""


class WeightsError(CarlError):
    """Pretrained weights that cannot be found, downloaded or loaded."""


class AlignmentError(CarlError):
    """Sequences that cannot be aligned: empty, NaN, mismatched dimensions."""
