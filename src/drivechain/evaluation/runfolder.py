"""Run folders: one writer at a time (a lock), and no run mixed with another run's settings.

Every command that writes a run folder stores its settings in ``config.json``. A new invocation
whose settings that decide the results (model, dataset hash, protocol options) differ is refused
with one line; ``--force`` removes the old run's files first. A folder holding only a config.json
(a run killed right after writing it) resumes like any other run with the same settings.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from drivechain.errors import ConfigError

LOCK_NAME = ".drivechain.lock"


def run_identity_diff(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """The identity keys whose values differ between a stored config and the new one."""
    return [k for k in keys if k in old and old.get(k) != new.get(k)]


def claim_run_folder(out: Path, command: str, config: dict[str, Any], identity: tuple[str, ...],
                     owned: tuple[str, ...], force: bool) -> None:
    """Check that ``out`` holds no run with other settings (``--force``: remove that run's files).

    A stored config.json whose identity keys match (or a folder with nothing but config.json, e.g. a
    run killed right after writing it) resumes; otherwise a one-line ConfigError names the settings.
    """
    path = out / "config.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(old, dict):
            raise ValueError("not an object")
    except (OSError, ValueError, UnicodeDecodeError):
        if not force:
            raise ConfigError(f"{path} is unreadable; use --force to replace the run or choose another --out") from None
        old = {}
    diff = run_identity_diff(old, config, identity) if old else ["config.json"]
    if not diff:
        return
    if not force:
        shown = ", ".join(f"{k} {old.get(k)!r} -> {config.get(k)!r}" if k != "config.json" else k for k in diff[:3])
        raise ConfigError(f"--out {out} holds a '{command}' run with other settings ({shown}); "
                          "use --force to replace it or choose another --out")
    remove_run_files(out, (*owned, "config.json"))


def remove_run_files(out: Path, names: tuple[str, ...]) -> None:
    """Delete the named files and folders of a run (with SQLite's and our temp companions); others stay."""
    for name in names:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            for extra in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm", ".tmp", ".partial"))):
                extra.unlink(missing_ok=True)


class RunLock:
    """An exclusive lock on a run folder while this process writes it (a second writer gets one line)."""

    def __init__(self, out: Path, command: str) -> None:
        self.out, self.command, self._fh = out, command, None
        self._created = False

    def __enter__(self) -> "RunLock":
        import fcntl

        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        fh = open(self.out / LOCK_NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ConfigError(f"--out {self.out} is being written by {holder}; wait for it to finish or choose"
                              f" another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"drivechain {self.command} (pid {os.getpid()})")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the lock; the file stays (unlinking it would race)
            self._fh = None
            # a command refused before writing anything leaves no folder behind
            if self._created and [p.name for p in self.out.iterdir()] == [LOCK_NAME]:
                shutil.rmtree(self.out, ignore_errors=True)
