"""The generator for recorded logs: replay clips, label every frame, write a dataset folder.

Same folder format as the simulator generator (manifest.json, frames.jsonl, images/). Per frame and
camera the original image is copied byte for byte (``meta['images_raw']``) and a copy with the
visible agents' ids drawn is what prompts show (``Frame.images``; the original itself when the camera
sees no agent). Deterministic: same clips and
config -> byte-identical dataset. The manifest counts, per family, the labels kept, the labels
marked ambiguous (votes disagree or inside a band) and the labels dropped (the source cannot label
them, or the votes disagree too much to keep either answer).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from drivechain.dataset import IMAGES, atomic_write_bytes, building_folder, images_sha256, write_frames, write_manifest
from drivechain.errors import ConfigError
from drivechain.generate import _versions, prepare_out
from drivechain.schema import FrameRecord, Manifest

MARKED_JPEG_QUALITY = 90


class LogGenerateConfig(BaseModel):
    """Everything that decides a log dataset's content (recorded in the manifest)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "drivechain-log"
    source: str
    dataroot: str
    routes: str = "*"
    cameras: Literal["front", "all"] = "front"
    stride: int = Field(default=5, ge=1)
    limit: int | None = Field(default=None, ge=1)
    horizon_s: float = Field(default=3.0, gt=0.0)
    marks: bool = True
    version: str | None = None
    """nuScenes: the table version under the data root (v1.0-mini, v1.0-trainval); other sources: None."""


def _marked_jpeg(raw: Path, boxes: dict[int, list[float]]) -> bytes:
    import numpy as np
    from PIL import Image

    from drivechain.sources.camera import mark_image

    with Image.open(raw) as im:
        image = np.asarray(im.convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(mark_image(image, boxes)).save(buf, format="JPEG", quality=MARKED_JPEG_QUALITY)
    return buf.getvalue()


def _records(cfg: LogGenerateConfig, root: Path, counts: dict[str, Counter], notes: dict) -> Iterator[str]:
    from drivechain.sources.logs import make_log_source
    from drivechain.teacher.graph import build_graph
    from drivechain.teacher.restrict import restrict

    source = make_log_source(cfg.source, Path(cfg.dataroot), routes=cfg.routes, cameras=cfg.cameras,
                             stride=cfg.stride, limit=cfg.limit, horizon_s=cfg.horizon_s,
                             **({"version": cfg.version} if cfg.version else {}))
    notes.update(getattr(source, "notes", {}))  # what the source could not provide (e.g. no lane map)
    for clip in source.clips():
        for item in source.frames(clip):
            frame = item.frame
            base = f"{IMAGES}/{clip}/{frame.step:05d}"
            raw_paths: dict[str, str] = {}
            for cam, path in item.camera_files.items():
                rel = f"{base}_{cam}.jpg"
                atomic_write_bytes(root / rel, path.read_bytes())
                raw_paths[cam] = rel
                marks = {a.id: a.boxes[cam] for a in frame.agents if cam in a.boxes}
                if cfg.marks and marks:  # a camera that sees no agent shows its original
                    rel_m = f"{base}_{cam}_marked.jpg"
                    atomic_write_bytes(root / rel_m, _marked_jpeg(path, marks))
                    frame.images[cam] = rel_m
                else:
                    frame.images[cam] = rel
            frame.meta["images_raw"] = raw_paths
            graph = build_graph(frame, None, horizon_s=cfg.horizon_s)
            graph, unsupported = restrict(graph, source.families)
            counts["frames"][clip] += 1
            counts["families"].update(n.family for n in graph.nodes)
            counts["stages"].update(n.stage for n in graph.nodes)
            counts["ambiguous"].update(n.family for n in graph.nodes if n.ambiguous)
            counts["unsupported"].update(unsupported)
            counts["dropped"].update(frame.meta.get("dropped", {}))
            yield FrameRecord(frame=frame, graph=graph).model_dump_json() + "\n"


def generate_logs(cfg: LogGenerateConfig, out: Path, force: bool = False,
                  on_frame: Callable[[], None] | None = None) -> Manifest:
    """Write a dataset folder at ``out`` from the recorded clips (built in a temp folder, renamed into place)."""
    out = Path(out)
    if not Path(cfg.dataroot).is_dir():
        raise ConfigError(f"--dataroot {cfg.dataroot} is not a folder; point it at the recorded clips")
    prepare_out(out, force)
    counts: dict[str, Counter] = {k: Counter() for k in
                                  ("frames", "families", "stages", "ambiguous", "unsupported", "dropped")}
    notes: dict = {}
    with building_folder(out) as tmp:
        (tmp / IMAGES).mkdir(parents=True)

        def lines() -> Iterator[str]:
            for line in _records(cfg, tmp, counts, notes):
                if on_frame:
                    on_frame()
                yield line

        frames_hash = write_frames(tmp, lines())
        if not counts["frames"]:
            raise ConfigError(f"no frame to label under {cfg.dataroot} (routes '{cfg.routes}'); check --routes and --limit")
        manifest = Manifest(
            name=cfg.name, source=cfg.source, config=cfg.model_dump(mode="json"), seed=0, versions=_versions(),
            counts={
                "frames": sum(counts["frames"].values()),
                "episodes": len(counts["frames"]),
                "clips": dict(sorted(counts["frames"].items())),
                **{k: dict(sorted(counts[k].items())) for k in ("stages", "families", "ambiguous", "unsupported", "dropped")},
                **({"source_notes": dict(sorted(notes.items()))} if notes else {}),
            },
            frames_sha256=frames_hash, images_sha256=images_sha256(tmp),
        )
        write_manifest(tmp, manifest)
    return manifest
