"""DriveLM v1.1 file + its images -> a drivechain dataset folder.

One Frame per key frame (``frame_id = drivelm/{scene}/{frame}``) with its cameras in
``Frame.images`` (names as DriveLM gives them, copied byte for byte); each QA item becomes a node
of the stage whose list it sits in, typed by ``answers.type_answer``; ``key_object_infos`` become
agents (id N of tag ``cN``; category, status, description, 2D box per camera). DriveLM gives no
metric positions: agents sit at 0 m and ``frame.meta["drivelm"]["positions_known"]`` is False.
Everything DriveLM wrote is kept in ``meta["drivelm"]`` so that export gives the file back.

Edges: from ``con_up`` / ``con_down`` when present (an int = the item's index in the frame's
perception + prediction + planning + behavior list, ``[stage, i]``, ``"stage:i"``, or a question's
exact text); otherwise a node's parents are the previous non-empty stage's nodes that name one of
its objects, or that whole stage when none does. References that resolve to nothing are counted.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from drivechain.dataset import atomic_write_bytes, building_folder, images_sha256, write_frames, write_manifest
from drivechain.errors import DatasetError
from drivechain.interop.drivelm.answers import type_answer
from drivechain.interop.drivelm.layout import STAGES, check_v11, read_json
from drivechain.interop.drivelm.tags import TAG_RE, parse_tags
from drivechain.schema import QA, Agent, ChainGraph, Frame, FrameRecord, Manifest

SHORT = {"perception": "per", "prediction": "pred", "planning": "plan", "behavior": "beh"}
QA_KEYS = ("Q", "A")


def family_of(stage: str, question: str) -> str:
    """A family id from the question's template (tags and numbers blanked), e.g. ``per.what_is_the_moving_status_of_object``."""
    text = TAG_RE.sub(" ", question)
    text = re.split(r"Please select the correct answer", text, flags=re.I)[0]
    words = re.findall(r"[a-z]+", text.lower())[:8]
    return f"{SHORT[stage]}." + ("_".join(words) or "question")


def find_image(images_dir: Path, rel: str) -> Path | None:
    """The file a DriveLM image path names under ``images_dir``: the path itself, then shorter tails of it."""
    root = images_dir.resolve()
    parts = [p for p in Path(rel.replace("\\", "/")).parts if p not in ("..", ".", "/")]
    for start in range(len(parts)):
        candidate = (root / Path(*parts[start:])).resolve()
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    return None


def _agents(infos: dict[str, Any], tags_seen: list[str]) -> tuple[list[Agent], dict[str, Any]]:
    """Agents from key_object_infos (and tags only named in QA); the agent id is N of ``cN``."""
    agents: dict[int, Agent] = {}
    extra: dict[str, Any] = {}
    for tag_text in [*infos.keys(), *tags_seen]:
        tags = parse_tags(tag_text)
        if len(tags) != 1:
            continue
        tag = tags[0]
        info = infos.get(tag_text) if isinstance(infos.get(tag_text), dict) else {}
        if tag.number in agents:
            continue
        box = info.get("2d_bbox")
        boxes = {tag.camera: [float(v) for v in box]} if isinstance(box, list) and len(box) == 4 else {}
        category = str(info.get("Category") or "unknown").lower()
        agents[tag.number] = Agent(id=tag.number, category=category, x_m=0.0, y_m=0.0, heading_rad=0.0,
                                   speed_mps=0.0, boxes=boxes)
        extra[str(tag.number)] = {"tag": tag.text, "status": info.get("Status"),
                                  "description": info.get("Visual_description"), "camera": tag.camera,
                                  "center_px": [tag.x_px, tag.y_px]}
    return [agents[k] for k in sorted(agents) if k != 0], extra


def _resolve(ref: Any, order: list[tuple[str, int]], questions: dict[str, int]) -> int | None:
    """Flat index a dependency reference names, or None."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return ref if 0 <= ref < len(order) else None
    if isinstance(ref, (list, tuple)) and len(ref) == 2 and ref[0] in STAGES and isinstance(ref[1], int):
        return order.index((ref[0], ref[1])) if (ref[0], ref[1]) in order else None
    if isinstance(ref, str):
        m = re.fullmatch(r"\s*(perception|prediction|planning|behavior)\s*[:/\[]\s*(\d+)\s*\]?\s*", ref)
        if m:
            key = (m.group(1), int(m.group(2)))
            return order.index(key) if key in order else None
        return questions.get(ref)
    return None


def _refs(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) and not (len(value) == 2 and value[0] in STAGES) else [value]


def convert_frame(scene: str, scene_index: int, frame: str, frame_index: int, fv: dict[str, Any],
                  images: dict[str, str], counts: Counter[str]) -> FrameRecord:
    """One key frame -> FrameRecord (images already placed; ``images`` maps camera -> dataset path)."""
    qa_lists = fv["QA"]
    counts["qa_in_other_lists"] += sum(len(v) for k, v in qa_lists.items() if k not in STAGES)
    items = [(stage, i, item) for stage in STAGES for i, item in enumerate(qa_lists.get(stage) or [])]
    order = [(stage, i) for stage, i, _ in items]
    qids = [f"{SHORT[stage]}.{i}" for stage, i, _ in items]
    questions = {item["Q"]: k for k, (_, _, item) in enumerate(items)}
    tags_seen = [t.text for _, _, item in items for t in parse_tags(f"{item['Q']} {item['A']}")]
    infos = fv.get("key_object_infos") if isinstance(fv.get("key_object_infos"), dict) else {}
    agents, agent_meta = _agents(infos, tags_seen)
    parents: list[set[int]] = [set() for _ in items]
    has_deps = False
    for k, (_, _, item) in enumerate(items):
        for field, up in (("con_up", True), ("con_down", False)):
            for ref in _refs(item.get(field)):
                has_deps = True
                j = _resolve(ref, order, questions)
                if j is None or j == k:
                    counts["unresolved_dependencies"] += 1
                elif up:
                    parents[k].add(j)
                else:
                    parents[j].add(k)
    objects = [sorted({t.number for t in parse_tags(f"{item['Q']} {item['A']}")}) for _, _, item in items]
    if not has_deps:
        by_stage = {s: [k for k, (st, _, _) in enumerate(items) if st == s] for s in STAGES}
        prev: list[int] = []
        for s in STAGES:
            for k in by_stage[s]:
                shared = [j for j in prev if set(objects[j]) & set(objects[k])]
                parents[k] = set(shared or prev)
            prev = by_stage[s] or prev
        counts["frames_edges_by_stage_order"] += 1
    else:
        counts["frames_edges_from_dependencies"] += 1
    nodes = []
    for k, (stage, i, item) in enumerate(items):
        question, answer_text = item["Q"], item["A"]
        if not isinstance(answer_text, str):
            raise DatasetError(f"{scene}/{frame} {stage}[{i}]: answer is {type(answer_text).__name__}, expected text")
        answer, how = type_answer(question, answer_text)
        counts[f"typed_{answer.type}"] += 1
        if answer.type == "text":
            counts["untyped"] += 1
        counts["qa"] += 1
        meta: dict[str, Any] = {"drivelm": {"item": item, "stage_index": i, "id": f"{scene}_{frame}_{k}"}}
        if how.get("names"):
            meta["names"] = how["names"]
        meta["typed_by"] = how["typed_by"]
        if "coordinate_unit" in how:
            meta["coordinate_unit"] = how["coordinate_unit"]
        nodes.append(QA(qid=qids[k], family=family_of(stage, question), stage=stage,  # type: ignore[arg-type]
                        question=how.get("stem", question), answer=answer,
                        parents=[qids[j] for j in sorted(parents[k])], objects=objects[k], meta=meta))
    frame_meta = {
        "drivelm": {
            "scene": scene, "frame": frame,
            "scene_fields": None,  # filled by the caller for the scene's first frame
            "frame_fields": {k: v for k, v in fv.items() if k not in ("QA",)},
            "frame_keys": list(fv.keys()),
            "qa_stages": list(qa_lists.keys()),
            "other_qa": {k: v for k, v in qa_lists.items() if k not in STAGES},  # kept for export, not asked
            "agents": agent_meta,
            "positions_known": False,
        }
    }
    ego = Agent(id=0, category="ego", x_m=0.0, y_m=0.0, heading_rad=0.0, speed_mps=0.0)
    fr = Frame(frame_id=f"drivelm/{scene}/{frame}", source="drivelm", scenario="nuscenes", episode=scene_index,
               step=frame_index, seed=0, t_s=0.0, ego=ego, agents=agents, command="not given", actions=[],
               images=images, meta=frame_meta)
    return FrameRecord(frame=fr, graph=ChainGraph(nodes=nodes))


def import_drivelm(json_path: Path, images_dir: Path | None, out: Path, name: str | None = None) -> Manifest:
    """Write ``out`` (a dataset folder) from a DriveLM v1.1 file; images found under ``images_dir``."""
    data = check_v11(read_json(json_path, "DriveLM file"), json_path)
    if images_dir is not None and not images_dir.is_dir():
        raise DatasetError(f"--images {images_dir} is not a folder")
    counts: Counter[str] = Counter()
    records: list[str] = []
    missing: list[str] = []
    with building_folder(out) as tmp:
        for s_idx, (scene, sv) in enumerate(data.items()):
            for f_idx, (frame, fv) in enumerate(sv["key_frames"].items()):
                paths = fv.get("image_paths") if isinstance(fv.get("image_paths"), dict) else {}
                images: dict[str, str] = {}
                for cam, rel in paths.items():
                    if images_dir is None or not isinstance(rel, str):
                        continue
                    src = find_image(images_dir, rel)
                    if src is None:
                        missing.append(rel)
                        continue
                    dest = f"images/{scene}/{frame}/{cam}{src.suffix.lower() or '.jpg'}"
                    atomic_write_bytes(tmp / dest, src.read_bytes())
                    images[cam] = dest
                    counts["images"] += 1
                rec = convert_frame(scene, s_idx, frame, f_idx, fv, images, counts)
                if f_idx == 0:
                    rec.frame.meta["drivelm"]["scene_fields"] = {k: v for k, v in sv.items() if k != "key_frames"}
                records.append(rec.model_dump_json())
                counts["frames"] += 1
            counts["scenes"] += 1
        if missing:
            raise DatasetError(
                f"{len(missing)} image(s) named in {json_path} are not under --images {images_dir} "
                f"(first: {missing[0]}); point --images at the folder holding them, or omit --images"
            )
        frames_hash = write_frames(tmp, records)
        from drivechain import __version__

        manifest = Manifest(
            name=name or json_path.stem, source="drivelm",
            config={"file": json_path.name, "images": images_dir is not None, "layout": "v1.1"},
            seed=0, versions={"drivechain": __version__},
            counts={**dict(sorted(counts.items())), "stages": _stage_counts(data)},
            frames_sha256=frames_hash, images_sha256=images_sha256(tmp),
        )
        write_manifest(tmp, manifest)
    return manifest


def _stage_counts(data: dict[str, Any]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for sv in data.values():
        for fv in sv["key_frames"].values():
            for stage, items in fv["QA"].items():
                out[stage] += len(items)
    return dict(sorted(out.items()))
