"""Dataset folders: ``manifest.json``, ``frames.jsonl`` (one FrameRecord per line), ``images/*.png``.

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


def write_frames(root: Path, lines: Iterable[str]) -> str:
    """Write frames.jsonl (one JSON record per line) atomically, streamed; returns its sha256."""
    path = root / FRAMES
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for line in lines:
                data = (line.rstrip("\n") + "\n").encode()
                digest.update(data)
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


@contextmanager
def building_folder(out: Path) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``out``; on success it replaces ``out``, on failure it is removed.

    An OSError while building becomes a one-line DrivechainError; ``out`` is never left half-written.
    """
    from drivechain.errors import DrivechainError

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, DrivechainError):
            raise DrivechainError(f"cannot write the dataset to {out} ({exc.strerror or exc})") from None
        raise


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write manifest.json atomically (sorted keys, fixed indent)."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
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
        with open(self.root / FRAMES, "rb") as fh:
            return sum(1 for line in fh if line.strip())

    def image_path(self, rel: str) -> Path:
        """Absolute path of an image named in a record; paths that leave the folder are rejected."""
        return _safe_rel(self.root, rel)

    def records(self) -> Iterator[FrameRecord]:
        """Every FrameRecord in file order, lazily (``iter_records`` on this folder)."""
        return iter_records(self.root)

    def verify(self) -> None:
        """Check hashes against the manifest and that every image exists; DatasetError otherwise."""
        frames_hash = sha256_file(self.root / FRAMES)
        if frames_hash != self.manifest.frames_sha256:
            raise DatasetError(f"{self.root / FRAMES} does not match the manifest's sha256; the file was changed")
        if self.manifest.images_sha256 and images_sha256(self.root) != self.manifest.images_sha256:
            raise DatasetError(f"{self.root / IMAGES} does not match the manifest's sha256; images were changed")
        for record in self.records():
            for rel in [*record.frame.images.values(), *record.frame.history_images]:
                if not self.image_path(rel).is_file():
                    raise DatasetError(f"image {rel} of frame {record.frame.frame_id} is missing in {self.root}")


def frames_files(root: Path) -> list[Path]:
    """The files holding a dataset's records, in reading order (today: ``frames.jsonl``)."""
    return [root / FRAMES]


def iter_records(path: str | Path) -> Iterator[FrameRecord]:
    """Every FrameRecord of the dataset folder ``path``, in file order, parsed one line at a time.

    The one streaming reader: ``eval``, ``process`` and ``report`` read records through it (directly or
    through ``Dataset.records()``), so memory does not grow with the dataset while reading, and a
    reader of another layout (e.g. sharded frame files) plugs in here and in ``frames_files``. Nothing
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
    if not (root / FRAMES).is_file():
        raise DatasetError(f"{root / FRAMES} is missing; regenerate the dataset")
    dataset = Dataset(root, manifest)
    if verify:
        dataset.verify()
    return dataset
