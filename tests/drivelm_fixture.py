"""A small DriveLM-format data set written by the tests themselves: v1.1 JSON, six tiny JPGs per key frame.

Two scenes, three key frames. Covers every typing rule (lettered choice, Yes./No., tags, a ranking,
coordinates, text), ``key_object_infos``, dependency fields in one frame (with one reference that
resolves to nothing), and DriveLM's relative image paths ``../nuscenes/samples/CAM_*/...jpg``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CAMERAS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_FRONT_RIGHT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
CAR = "<c1,CAM_FRONT,800.0,450.0>"
WALKER = "<c2,CAM_BACK,400.5,500.5>"
LIGHT = "<c3,CAM_FRONT_LEFT,120.0,60.5>"
IMAGE_SIZE = (64, 36)  # 16:9 like nuScenes, small


def qa(q: str, a: str, **extra: Any) -> dict[str, Any]:
    """A DriveLM QA item with the placeholder graph fields."""
    return {"Q": q, "A": a, "C": None, "con_up": None, "con_down": None, "cluster": None, "layer": None, **extra}


def frame_a1() -> dict[str, Any]:
    return {
        "key_object_infos": {
            CAR: {"Category": "Vehicle", "Status": "Moving", "Visual_description": "Red hatchback.",
                  "2d_bbox": [760.0, 420.0, 840.0, 480.0]},
            WALKER: {"Category": "Pedestrian", "Status": "Standing", "Visual_description": "Person with an umbrella.",
                     "2d_bbox": [380.0, 450.0, 421.0, 551.0]},
        },
        "QA": {
            "perception": [
                qa("What are the important objects in the current scene?",
                   f"A red hatchback ahead and a person behind. The IDs are {CAR} and {WALKER}."),
                qa(f"What is the moving status of object {CAR}? Please select the correct answer from the following "
                   "options: A. Stopped. B. Going ahead. C. Turn left. D. Back up.", "B"),
                qa("Are there trucks to the back of the ego car?", "No."),
            ],
            "prediction": [
                qa(f"What object would consider {WALKER} to be most relevant to its decision?", f"{CAR}."),
                qa(f"Would {CAR} be in the moving direction of the ego vehicle?", "Yes."),
            ],
            "planning": [
                qa("What is the priority of the objects that the ego vehicle should consider?(in descending order)",
                   f"{CAR}, {WALKER}."),
                qa("Where will the ego vehicle be after one and two seconds?", "(3.2, 0.1), (6.5, 0.3)"),
                qa("In this scenario, what are safe actions to take for the ego vehicle?",
                   "Keep going at the same speed, decelerate gradually."),
            ],
            "behavior": [qa("Predict the behavior of the ego vehicle.",
                            "The ego vehicle is going straight. The ego vehicle is driving slowly.")],
        },
        "image_paths": image_paths("sceneA", "fA1"),
    }


def frame_a2() -> dict[str, Any]:
    return {
        "key_object_infos": {
            LIGHT: {"Category": "Traffic element", "Status": None, "Visual_description": "Red light.",
                    "2d_bbox": [100.0, 40.0, 140.0, 81.0]},
        },
        "QA": {
            "perception": [qa("Is there any traffic element in the front view?",
                              "Yes, there is a traffic light in the front view.")],
            "prediction": [qa(f"What does {LIGHT} mean?", "Stop.")],
            "planning": [qa(f"Is it necessary for the ego vehicle to take {LIGHT} into account?", "yes")],
            "behavior": [],
        },
        "image_paths": image_paths("sceneA", "fA2"),
    }


def frame_b1() -> dict[str, Any]:
    # Dependency fields filled: an index, a [stage, i] pair, a question's text, and one dangling reference.
    return {
        "key_object_infos": {},
        "QA": {
            "perception": [qa("Please describe the current scene.", "An empty road at night.")],
            "prediction": [qa("Will anything cross the road?", "No.", con_up=[0])],
            "planning": [
                qa("What is the target action of the ego vehicle?", "Go straight.",
                   con_up=[["prediction", 0], "Please describe the current scene."]),
                qa("What is the probability of a collision?", "Low.", con_up="perception:7"),
            ],
            "behavior": [qa("Predict the behavior of the ego vehicle.", "The ego vehicle is going straight.",
                            con_up=[2])],
        },
        "image_paths": image_paths("sceneB", "fB1"),
    }


def image_paths(scene: str, frame: str) -> dict[str, str]:
    """DriveLM-style relative paths for the six cameras of a key frame."""
    return {cam: f"../nuscenes/samples/{cam}/{scene}__{cam}__{frame}.jpg" for cam in CAMERAS}


def drivelm_data() -> dict[str, Any]:
    """The v1.1 object: two scenes, three key frames, 17 QA."""
    return {
        "sceneA": {"scene_description": "The ego vehicle drives through a junction.",
                   "key_frames": {"fA1": frame_a1(), "fA2": frame_a2()}},
        "sceneB": {"scene_description": "A quiet road.", "key_frames": {"fB1": frame_b1()}},
    }


def camera_color(index: int) -> tuple[int, int, int]:
    """A distinct flat colour per camera, so a test can tell the images apart."""
    return (40 * index + 20, 255 - 40 * index, (97 * index) % 256)


def write_drivelm(root: Path, data: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``root/data/sample.json`` and the JPGs under ``root/data/nuscenes``; returns (json, images dir)."""
    from PIL import Image

    data = drivelm_data() if data is None else data
    folder = root / "data"
    images = folder / "nuscenes"
    for sv in data.values():
        for fv in sv["key_frames"].values():
            for i, (cam, rel) in enumerate(fv["image_paths"].items()):
                path = images / rel.split("nuscenes/", 1)[1]
                path.parent.mkdir(parents=True, exist_ok=True)
                size = (IMAGE_SIZE[0] + 2 * i, IMAGE_SIZE[1] + i)  # sizes differ per camera: order is checkable
                Image.new("RGB", size, camera_color(i)).save(path, format="JPEG", quality=90)
    path = folder / "sample.json"
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    return path, images


def with_tags(data: dict[str, Any]) -> dict[str, Any]:
    """The same data as a challenge test file: every QA gets a ``tag`` like DriveLM's test_eval.json."""
    data = json.loads(json.dumps(data))
    for sv in data.values():
        for fv in sv["key_frames"].values():
            for stage, items in fv["QA"].items():
                for item in items:
                    a = item["A"]
                    if a in ("B", "No.", "Yes.", "yes"):
                        item["tag"] = [0]
                    elif "<c" in a:
                        item["tag"] = [3]
                    else:
                        item["tag"] = [1] if stage == "planning" else [2]
    return data
