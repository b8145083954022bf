"""Typed errors. Each carries a one-line message that names the problem and an exit code."""

from __future__ import annotations


class KaocapError(Exception):
    """Base class: ``str(err)`` is a one-line message meant for people; ``exit_code`` for scripts."""

    exit_code = 1


class InputError(KaocapError):
    """An input (file, folder, camera) cannot be opened or decoded."""

    exit_code = 3


class SourceLost(InputError):
    """A live source stopped delivering frames (camera unplugged, stream ended mid-frame)."""


class ModelError(KaocapError):
    """A model file is missing, corrupt, or not the model it claims to be."""

    exit_code = 4


class RuntimeNotAvailable(KaocapError):
    """The requested inference runtime is not installed or cannot run this model file."""

    exit_code = 4


class ConfigError(KaocapError):
    """A configuration value or key is invalid."""

    exit_code = 2


class OutputError(KaocapError):
    """An output (file, port) cannot be written or opened."""

    exit_code = 5
