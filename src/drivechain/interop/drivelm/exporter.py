"""A drivechain dataset -> DriveLM's v1.1 layout and the challenge's flat ``{id, question, answer}`` list.

Frames imported from DriveLM are written back from what the import kept (``meta["drivelm"]``):
the file comes back as it was. Other frames (highway-env, nuScenes, Bench2Drive sources) are
rendered: scene = ``{source}-{scenario}-{episode}``, key frame = the step; agents with a pixel box
become ``key_object_infos`` under the source's own tag (``frame.meta["drivelm_tags"]``) or else a
tag ``<cID,CAMERA,cx,cy>`` at the box centre in the first camera that sees them; answers in DriveLM's style (a choice as
its letter with the options appended to the question, "Yes."/"No.", objects as tags); ``con_up``
holds the parents' indices; ``tag`` routes each item in DriveLM's scorer (choice/boolean 0,
number 1, text 2, objects/ranking 3 when rendered as tags with coordinates, else 1).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from drivechain.dataset import Dataset, atomic_write_bytes
from drivechain.interop.drivelm.layout import STAGES
from drivechain.interop.drivelm.tags import format_tag
from drivechain.schema import QA, FrameRecord

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OPTIONS_LEAD = " Please select the correct answer from the following options: "


def _agent_tags(record: FrameRecord) -> dict[int, tuple[str, dict[str, Any]]]:
    """Agent id -> (tag, key_object_info): the source's own tag (``frame.meta["drivelm_tags"]``) when it
    wrote one, else one at the box centre in the first camera that sees the agent."""
    from drivechain.interop.drivelm.tags import parse_tags

    own = record.frame.meta.get("drivelm_tags")
    own = own if isinstance(own, dict) else {}
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for a in record.frame.agents:
        tag = own.get(str(a.id))
        parsed = parse_tags(tag) if isinstance(tag, str) else []
        if parsed and parsed[0].camera in a.boxes:
            box = a.boxes[parsed[0].camera]
        elif a.boxes:
            cam, box = next(iter(a.boxes.items()))
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            tag = tag if parsed else format_tag(a.id, cam, cx, cy)
        elif parsed:
            box = []
        else:
            continue
        status = "Moving" if a.speed_mps > 0.5 else "Stationary"
        out[a.id] = (str(tag), {"Category": a.category.capitalize(), "Status": status,
                                "Visual_description": f"{a.category.capitalize()} {a.id}.",
                                "2d_bbox": [float(v) for v in box]})
    return out


def _objects_text(ids: list[Any], tags: dict[int, tuple[str, dict[str, Any]]]) -> tuple[str, bool]:
    """Objects as DriveLM writes them: tags joined by ", ", a final period; (text, all had a tag)."""
    if not ids:
        return "None.", False
    parts, all_tagged = [], True
    for v in ids:
        if isinstance(v, (list, tuple)):
            parts.append(f"({v[0]:.1f}, {v[1]:.1f})")
        elif int(v) in tags:
            parts.append(tags[int(v)][0])
        else:
            parts.append(f"vehicle {int(v)}")
            all_tagged = False
    return ", ".join(parts) + ".", all_tagged


def render_item(qa: QA, tags: dict[int, tuple[str, dict[str, Any]]], parents: list[int]) -> dict[str, Any]:
    """A drivechain QA node as a DriveLM item (for frames that did not come from DriveLM)."""
    from drivechain.prompts import format_answer

    a = qa.answer
    q = qa.question
    tag = [1]
    if a.type == "choice":
        q = q + OPTIONS_LEAD + " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(a.options))
        text, tag = LETTERS[a.preferred], [0]
    elif a.type == "boolean":
        text, tag = ("Yes." if a.value else "No."), [0]
    elif a.type in ("objects", "ranking"):
        ids = list(a.ids) + (list(getattr(a, "positions_m", [])) if a.type == "objects" else [])
        text, tagged = _objects_text(ids, tags)
        tag = [3] if tagged else [1]
    elif a.type == "text":
        text, tag = format_answer(qa), [2]
    else:
        text = format_answer(qa)
    return {"Q": q, "A": text, "C": None, "con_up": parents or None, "con_down": None,
            "cluster": None, "layer": None, "tag": tag}


def _frame_entry(record: FrameRecord, image_base: Path, out_dir: Path) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(scene, frame token, scene fields, key-frame object) of one record."""
    frame = record.frame
    dl = frame.meta.get("drivelm") if isinstance(frame.meta.get("drivelm"), dict) else None
    nodes = record.graph.nodes
    if dl is not None:
        qa: dict[str, Any] = {s: [] for s in dl.get("qa_stages") or STAGES}
        for n in nodes:
            item = (n.meta.get("drivelm") or {}).get("item")
            qa.setdefault(n.stage, []).append(item if isinstance(item, dict) else render_item(n, {}, []))
        qa.update(dl.get("other_qa") or {})
        fields = {**(dl.get("frame_fields") or {}), "QA": qa}
        keys = dl.get("frame_keys") or list(fields)  # DriveLM's own key order
        entry = {k: fields[k] for k in keys if k in fields}
        return dl["scene"], dl["frame"], dict(dl.get("scene_fields") or {}), entry
    tags = _agent_tags(record)
    flat = [n.qid for s in STAGES for n in nodes if n.stage == s]
    qa = {s: [] for s in STAGES}
    for s in STAGES:
        for n in nodes:
            if n.stage == s:
                parents = [flat.index(p) for p in n.parents if p in flat]
                qa[s].append(render_item(n, tags, parents))
    images = {cam: os.path.relpath(image_base / rel, out_dir) for cam, rel in frame.images.items()}
    entry = {"key_object_infos": {t: info for _, (t, info) in sorted(tags.items())}, "QA": qa, "image_paths": images}
    scene = f"{frame.source}-{frame.scenario}-{frame.episode}"
    return scene, str(frame.step), {"scene_description": f"{frame.scenario}, navigation: {frame.command}."}, entry


def to_v11(dataset: Dataset, out_dir: Path) -> dict[str, Any]:
    """The dataset as DriveLM's v1.1 object (scene -> key frames), in dataset order."""
    data: dict[str, Any] = {}
    for record in dataset.records():
        scene, token, scene_fields, entry = _frame_entry(record, dataset.root.resolve(), out_dir.resolve())
        sv = data.setdefault(scene, {})
        if "key_frames" not in sv:
            sv.update({k: v for k, v in scene_fields.items() if k != "key_frames"})
            sv["key_frames"] = {}
        sv["key_frames"][token] = entry
    return data


def to_flat(data: dict[str, Any]) -> list[dict[str, str]]:
    """The challenge's flat list: ``{id, question, answer}`` per QA in evaluation order."""
    from drivechain.interop.drivelm.layout import iter_items

    return [{"id": it.item_id, "question": it.qa["Q"], "answer": it.qa["A"]} for it in iter_items(data)]


def write_json(path: Path, data: Any) -> None:
    """Indented UTF-8 JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode("utf-8"))


def export_drivelm(dataset: Dataset, out: Path, flat: Path | None = None) -> dict[str, int]:
    """Write the v1.1 file (and the flat list); returns counts of scenes, frames and QA."""
    data = to_v11(dataset, out.parent)
    write_json(out, data)
    items = to_flat(data)
    if flat is not None:
        write_json(flat, items)
    return {"scenes": len(data), "frames": sum(len(s["key_frames"]) for s in data.values()), "qa": len(items)}
