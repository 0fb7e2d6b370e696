"""DriveLM's JSON layouts: reading the v1.1 scene/key-frame file and the challenge's flat lists.

v1.1: ``{scene_token: {"scene_description", "key_frames": {frame_token: {"key_object_infos",
"QA": {"perception": [...], "prediction": [...], "planning": [...], "behavior": [...]},
"image_paths": {camera: path}}}}}``; a QA item is ``{"Q", "A", "C", "con_up", "con_down",
"cluster", "layer"}`` (+ ``"tag"`` in the challenge's test files). The challenge names an item
``{scene}_{frame}_{i}``, ``i`` its index in perception + prediction + planning + behavior.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivechain.errors import DatasetError

STAGES = ("perception", "prediction", "planning", "behavior")


@dataclass(frozen=True)
class Item:
    """One QA item of a v1.1 file with where it sits."""

    scene: str
    frame: str
    stage: str
    index: int  # position in the frame's perception + prediction + planning + behavior
    qa: dict[str, Any]

    @property
    def item_id(self) -> str:
        """The challenge's id ``{scene}_{frame}_{i}``."""
        return item_id(self.scene, self.frame, self.index)


def item_id(scene: str, frame: str, index: int) -> str:
    """The challenge's id of the ``index``-th QA of a key frame."""
    return f"{scene}_{frame}_{index}"


def read_json(path: Path, what: str) -> Any:
    """The parsed JSON file, or a one-line DatasetError naming it."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DatasetError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise DatasetError(f"{what} {path} is a folder; give the JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what} {path} is not valid JSON ({exc}); fix or regenerate the file") from None
    except OSError as exc:
        raise DatasetError(f"{what} {path} cannot be read ({exc.strerror})") from None


def check_v11(data: Any, path: Path) -> dict[str, Any]:
    """``data`` if it has the v1.1 shape (scenes with key frames with QA lists), else DatasetError."""
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected DriveLM's v1.1 layout (an object of scenes), got {type(data).__name__}")
    for scene, sv in data.items():
        frames = sv.get("key_frames") if isinstance(sv, dict) else None
        if not isinstance(frames, dict):
            raise DatasetError(f"{path}: scene {scene} has no 'key_frames' object; not DriveLM's v1.1 layout")
        for frame, fv in frames.items():
            qa = fv.get("QA") if isinstance(fv, dict) else None
            if not isinstance(qa, dict):
                raise DatasetError(f"{path}: key frame {scene}/{frame} has no 'QA' object")
            for stage, items in qa.items():
                if not isinstance(items, list):
                    raise DatasetError(f"{path}: {scene}/{frame} QA '{stage}' is not a list")
                for i, item in enumerate(items):
                    if not isinstance(item, dict) or not isinstance(item.get("Q"), str) or "A" not in item:
                        raise DatasetError(f"{path}: {scene}/{frame} {stage}[{i}] is not a {{Q, A}} item")
    return data


def iter_items(data: dict[str, Any]) -> Iterator[Item]:
    """Every QA item in file order, with the challenge's running index per key frame."""
    for scene, sv in data.items():
        for frame, fv in sv["key_frames"].items():
            qa = fv["QA"]
            index = 0
            for stage in STAGES:
                for item in qa.get(stage) or []:
                    yield Item(scene, frame, stage, index, item)
                    index += 1


def read_predictions(path: Path) -> dict[str, Any]:
    """A flat prediction list ``[{id, answer, ...}]`` (or ``{"results": [...]}``) keyed by id."""
    data = read_json(path, "prediction file")
    if isinstance(data, dict) and isinstance(data.get("results"), list):  # a submission.json
        data = data["results"]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a list of {{id, question, answer}} predictions")
    out: dict[str, Any] = {}
    for i, row in enumerate(data):
        if not isinstance(row, dict) or "id" not in row:
            raise DatasetError(f"{path}: entry {i} has no 'id'; expected {{id, question, answer}} objects")
        out[str(row["id"])] = row  # later entries win, as DriveLM's dict comprehension does
    return out
