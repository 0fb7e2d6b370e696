"""Dataset folders: ``manifest.json``, ``frames.jsonl`` (one FrameRecord per line), ``images/*.png``.

A dataset may instead hold its records in shards, ``frames-00000-of-00004.jsonl`` ..., listed in
the manifest (``shards``: file, frames, sha256) and read in that order; ``frames_sha256`` is then the
hash of the shards' concatenation, the same as the single-file layout of the same records.

Writing is deterministic (fixed PNG parameters, no timestamps) and atomic (temp file, then
rename). Reading validates: a schema error names the file and line, an image path that leaves the
folder is rejected, a missing or garbled manifest is a one-line DatasetError.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from typing import TYPE_CHECKING

from pydantic import ValidationError

from drivechain.errors import DatasetError
from drivechain.schema import FrameRecord, Manifest

if TYPE_CHECKING:  # numpy/PIL load only when an image is written (readers start faster)
    import numpy as np

MANIFEST = "manifest.json"
FRAMES = "frames.jsonl"
IMAGES = "images"


def shard_name(index: int, count: int) -> str:
    """File name of shard ``index`` of ``count``: frames-00003-of-00064.jsonl."""
    return f"frames-{index:05d}-of-{count:05d}.jsonl"


# ---------------------------------------------------------------------- writing


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def png_bytes(image: "np.ndarray") -> bytes:
    """PNG encoding with fixed parameters and no metadata: same pixels -> same bytes."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def write_png(path: Path, image: "np.ndarray") -> None:
    """Write an H x W x 3 uint8 image as a deterministic PNG, atomically."""
    atomic_write_bytes(path, png_bytes(image))


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def images_sha256(root: Path) -> str:
    """One hash over every image: sorted relative paths with their file hashes."""
    digest = hashlib.sha256()
    folder = root / IMAGES
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
            digest.update(f"{path.relative_to(root).as_posix()} {sha256_file(path)}\n".encode())
    return digest.hexdigest()


def write_frames(root: Path, lines: Iterable[str], name: str = FRAMES, total: "hashlib._Hash | None" = None) -> str:
    """Write frames.jsonl (or shard ``name``) atomically, streamed; returns its sha256 (``total`` is
    updated with the same bytes: the hash over several shards)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for line in lines:
                data = (line.rstrip("\n") + "\n").encode()
                digest.update(data)
                if total is not None:
                    total.update(data)
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def write_shards(root: Path, groups: Iterable[Iterable[str]], count: int) -> tuple[str, list[dict[str, object]]]:
    """Write ``count`` shards, one per group of record lines; returns (sha256 of all, the manifest's shard list)."""
    total = hashlib.sha256()
    shards: list[dict[str, object]] = []
    for index, lines in enumerate(groups):
        counted = _Counted(lines)
        name = shard_name(index, count)
        shards.append({"file": name, "sha256": write_frames(root, counted, name, total), "frames": counted.n})
    if len(shards) != count:
        raise ValueError(f"{len(shards)} groups of records for {count} shards")
    return total.hexdigest(), shards


class _Counted:
    """An iterable of lines that counts the non-empty ones it hands out."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines, self.n = lines, 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.n += bool(line.strip())
            yield line


def partial_folder(out: Path) -> Path:
    """Where a resumable build of ``out`` keeps its finished tasks until it completes."""
    return out.parent / f".{out.name}.partial"


@contextmanager
def building_folder(out: Path, resumable: bool = False) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``out``; on success it replaces ``out``, on failure it is removed.

    ``resumable``: the folder is ``partial_folder(out)``, kept as it is on failure so that the next
    build picks up the finished tasks in it. An OSError while building becomes a one-line
    DrivechainError; ``out`` is never left half-written.
    """
    from drivechain.errors import DrivechainError

    tmp = partial_folder(out) if resumable else out.parent / f".{out.name}.tmp-{os.getpid()}"
    if not resumable:
        shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException as exc:
        if not resumable:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, DrivechainError):
            raise DrivechainError(f"cannot write the dataset to {out} ({exc.strerror or exc})") from None
        raise


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write manifest.json atomically (sorted keys, fixed indent)."""
    data = manifest.model_dump(mode="json")
    if data.get("shards") is None:  # the single-file layout's manifest stays as it always was
        data.pop("shards", None)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(root / MANIFEST, text.encode())


# ---------------------------------------------------------------------- reading


def _safe_rel(root: Path, rel: str) -> Path:
    """The absolute path of ``rel`` inside ``root``, or a DatasetError if it would leave it."""
    candidate = Path(rel)
    if candidate.is_absolute() or not rel:
        raise DatasetError(f"image path '{rel}' must be relative to the dataset folder {root}")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DatasetError(f"image path '{rel}' leaves the dataset folder {root}; fix frames.jsonl")
    return resolved


class Dataset:
    """A validated dataset folder; records are parsed lazily, one line at a time."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest

    def __len__(self) -> int:
        frames = self.manifest.counts.get("frames")
        if isinstance(frames, int):
            return frames
        n = 0
        for path in self.frame_files():
            with open(path, "rb") as fh:
                n += sum(1 for line in fh if line.strip())
        return n

    def frame_files(self) -> list[Path]:
        """The record files in reading order: the manifest's shards, or frames.jsonl."""
        return frames_files(self.root, self.manifest)

    def frames_sha256(self) -> str:
        """sha256 of the records as stored (all shards in order): compare with the manifest's."""
        digest = hashlib.sha256()
        for path in self.frame_files():
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        return digest.hexdigest()

    def image_path(self, rel: str) -> Path:
        """Absolute path of an image named in a record; paths that leave the folder are rejected."""
        return _safe_rel(self.root, rel)

    def records(self) -> Iterator[FrameRecord]:
        """Every FrameRecord in file order (shard by shard), lazily (``iter_records`` on this folder)."""
        return iter_records(self.root)

    def verify(self) -> None:
        """Check hashes against the manifest and that every image exists; DatasetError otherwise."""
        for shard, path in zip(self.manifest.shards or [], self.frame_files()):
            if sha256_file(path) != shard.sha256:
                raise DatasetError(f"{path} does not match the manifest's sha256; the shard was changed")
        if self.frames_sha256() != self.manifest.frames_sha256:
            where = self.root / FRAMES if not self.manifest.shards else f"the shards of {self.root}"
            raise DatasetError(f"{where} does not match the manifest's sha256; the file was changed")
        if self.manifest.images_sha256 and images_sha256(self.root) != self.manifest.images_sha256:
            raise DatasetError(f"{self.root / IMAGES} does not match the manifest's sha256; images were changed")
        for record in self.records():
            for rel in [*record.frame.images.values(), *record.frame.history_images]:
                if not self.image_path(rel).is_file():
                    raise DatasetError(f"image {rel} of frame {record.frame.frame_id} is missing in {self.root}")


def frames_files(root: Path, manifest: Manifest | None = None) -> list[Path]:
    """The files holding a dataset's records, in reading order: the shards its manifest lists
    (``manifest``, else read from ``root``), or ``frames.jsonl``."""
    if manifest is None:
        try:
            shards = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("shards")
        except (OSError, ValueError, AttributeError):
            shards = None  # no (readable) manifest: the single-file layout; load_dataset names the problem
        names = [str(s.get("file", "")) if isinstance(s, dict) else "" for s in shards or []]
    else:
        names = [s.file for s in manifest.shards or []]
    for name in names:
        if Path(name).name != name or not name.endswith(".jsonl"):
            raise DatasetError(f"{root / MANIFEST} lists shard '{name}', not a .jsonl file of the folder;"
                               " regenerate the dataset")
    return [root / name for name in names] or [root / FRAMES]


def iter_records(path: str | Path) -> Iterator[FrameRecord]:
    """Every FrameRecord of the dataset folder ``path``, in file order, parsed one line at a time.

    The one streaming reader: ``eval``, ``process`` and ``report`` read records through it (directly or
    through ``Dataset.records()``), so memory does not grow with the dataset while reading; a sharded
    dataset is read shard after shard in its manifest's order (``frames_files``). Nothing
    is read before the first ``next()``. A line that is not UTF-8 or not a valid record, or an image
    path that leaves the folder, raises DatasetError naming the file and line.
    """
    root = Path(path)
    for file in frames_files(root):
        yield from _iter_file(root, file)


def _iter_file(root: Path, path: Path) -> Iterator[FrameRecord]:
    try:
        fh = open(path, "rb")  # bytes: a line that is not UTF-8 is named, not a traceback mid-iteration
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read ({exc.strerror}); regenerate the dataset") from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DatasetError(f"{path}:{number}: not UTF-8 text; regenerate the dataset") from None
            if not line.strip():
                continue
            try:
                record = FrameRecord.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                raise DatasetError(f"{path}:{number}: invalid record ({where}: {first.get('msg')})") from None
            except UnicodeDecodeError:
                raise DatasetError(f"{path}:{number}: not UTF-8 text") from None
            frame = record.frame
            for rel in [*frame.images.values(), *frame.history_images]:
                try:
                    _safe_rel(root, rel)
                except DatasetError as exc:
                    raise DatasetError(f"{path}:{number}: {exc}") from None
            yield record


def load_dataset(path: str | Path, verify: bool = False) -> Dataset:
    """Open a dataset folder (manifest checked now, records lazily); ``verify`` also checks hashes."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; run 'drivechain generate --out {root}'")
    manifest_path = root / MANIFEST
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{manifest_path} is missing; {root} is not a drivechain dataset") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{manifest_path} cannot be read ({exc}); regenerate the dataset") from None
    try:
        manifest = Manifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "json"
        raise DatasetError(f"{manifest_path} is invalid ({where}: {first.get('msg')}); regenerate the dataset") from None
    dataset = Dataset(root, manifest)
    for path in dataset.frame_files():
        if not path.is_file():
            raise DatasetError(f"{path} is missing; regenerate the dataset")
    if verify:
        dataset.verify()
    return dataset
