"""The records ``drivechain eval`` reads: streamed, checked beside the stream, never parsed up front.

Only the first record is read before the run starts (so a dataset with no frames, or a camera it
does not have, is one line before anything is written). The frame count comes from the manifest;
the frames file's sha256 is checked against the manifest in a thread while requests are already
being sent, and a mismatch stops the run with exit code 2 before any score or summary is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from drivechain.commands._common import check_frame_count, frames_hash
from drivechain.dataset import Dataset, iter_records
from drivechain.errors import ConfigError


class DatasetStream:
    """An iterable of a dataset's records (up to ``limit``), read lazily, each checked for ``cameras``."""

    def __init__(self, dataset: Dataset, *, verify: bool, limit: int | None, cameras: str) -> None:
        from drivechain.prompts import select_cameras

        self.dataset, self.limit, self.cameras, self.verify_data = dataset, limit, cameras, verify
        self._select = select_cameras
        self._reader = iter_records(dataset.root)
        first = next(self._reader, None)
        if first is None:
            raise ConfigError(f"dataset {dataset.root} has no frames to evaluate")
        select_cameras(first.frame.images, cameras)  # an unknown camera is one line now, not a failure per request
        self._first = first
        counted = dataset.manifest.counts.get("frames")
        counted = counted if isinstance(counted, int) else None
        # frames the run expects (the progress bar's total); the real count is checked after the stream
        self.frames = min(limit, counted) if limit and counted else (limit or counted)
        self._check_hash = bool(verify and dataset.manifest.frames_sha256)
        # With verification the manifest's hash names the run (the file is checked to match it beside the
        # stream); without, the file as it is names it.
        self.dataset_hash = dataset.manifest.frames_sha256 if self._check_hash else frames_hash(dataset, False)

    def __iter__(self) -> Iterator[Any]:
        if self._first is None:
            raise RuntimeError("a DatasetStream is read once")
        first, self._first = self._first, None
        yield first
        n = 1
        for record in self._reader:
            if self.limit is not None and n >= self.limit:
                break
            self._select(record.frame.images, self.cameras)
            n += 1
            yield record

    async def verify(self) -> None:
        """The frames file's sha256 against the manifest (a thread; DatasetError when it differs)."""
        if self._check_hash:
            await asyncio.to_thread(frames_hash, self.dataset, True)

    def check_count(self, frames: int) -> None:
        """After the stream: a dataset whose number of frames differs from its manifest is refused."""
        check_frame_count(self.dataset, frames, self.limit, self.verify_data)
