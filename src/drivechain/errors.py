"""The one exception the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class DrivechainError(Exception):
    """Bad input (dataset, config, reply, server): the message names the thing and what to do."""


class ConfigError(DrivechainError):
    """A broken or unknown option or config file."""


class DatasetError(DrivechainError):
    """An unreadable or invalid dataset folder."""
