"""Counterfactual probes: edit one vehicle of a dataset frame, re-render, re-label, record what changed.

For each sampled frame of a highway dataset the state is rebuilt by replay (reset(seed) + the
recorded actions; checked against the recorded positions), the original is re-labelled, and up to
K probes are made, each = one edit (sources/edits.py) of one vehicle: the *critical* one (the
hazard of a corner case, else the lead, else the most dangerous, else the nearest) or a
*distractor* (the visible vehicle farthest behind or away). The teacher labels the edited frame;
a question whose answer changed is an expected flip, one whose answer did not is a must-not-change
(stable) question, the rest (inside a band, ranking, text) are left out. Each probe is verified:
a removed vehicle is gone from the labels and the image, and every untouched vehicle keeps its
state and its perception labels. docs/probes.md.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from drivechain.dataset import IMAGES, building_folder, images_sha256, load_dataset, write_frames, write_manifest, write_png
from drivechain.errors import ConfigError
from drivechain.schema import QA, ChainGraph, Frame, FrameRecord, Manifest, ObjectsAnswer
from drivechain.sources.edits import (
    EDITS, REPLAY_TOLERANCE_M, EditError, edited_fork, render_edited, replay, replay_error_m,
)
from drivechain.sources.render import CAMERA

PROBES_FILE = "probes.jsonl"
COLOR_SPREAD = 60  # a pixel whose max - min channel exceeds this is a vehicle's colour (the road is grey)


class ProbeConfig(BaseModel):
    """What decides a probe set's content (recorded in its manifest)."""

    model_config = ConfigDict(extra="forbid")

    edits: list[str] = Field(default_factory=lambda: list(EDITS))
    per_frame: int = Field(default=2, ge=1)
    frames: int | None = Field(default=None, ge=1, description="sample at most this many frames (None: all)")
    seed: int = 0
    relabel: bool = Field(default=True, description="re-label the original with the current teacher (False: reuse "
                          "the recorded labels; only right when the dataset was made by the same teacher code)")


# ---------------------------------------------------------------------- answers


def answer_change(a: QA, b: QA) -> str:
    """'flip', 'same' or 'unclear' between the same question's answers on two frames."""
    if a.ambiguous or b.ambiguous or a.answer.type != b.answer.type:
        return "unclear"
    x, y = a.answer, b.answer
    if x.type == "boolean":
        if x.accept_both or y.accept_both:
            return "unclear"
        return "same" if x.value == y.value else "flip"
    if x.type == "choice":
        if x.options != y.options:
            return "unclear"
        if set(x.acceptable) == set(y.acceptable) and x.preferred == y.preferred:
            return "same"
        return "flip" if not set(x.acceptable) & set(y.acceptable) else "unclear"
    if x.type == "number":
        if x.value is None or y.value is None:
            return "same" if x.value == y.value else "flip"
        tol = max(number_tolerance(a), number_tolerance(b))
        diff = abs(x.value - y.value)
        return "same" if diff <= tol else ("flip" if diff > 2 * tol else "unclear")
    if x.type == "objects":
        if x.optional_ids or y.optional_ids:
            return "unclear"
        return "same" if set(x.ids) == set(y.ids) else "flip"
    return "unclear"  # rankings and text are not probed


def number_tolerance(qa: QA) -> float:
    """The grading tolerance of a number answer (abs and rel, the larger) [its unit]."""
    ans = qa.answer
    value = abs(ans.value or 0.0)
    return max(ans.abs_tol or 0.0, (ans.rel_tol or 0.0) * value, 1e-9)


# ---------------------------------------------------------------------- which vehicles


def pick_agents(frame: Frame, graph: ChainGraph) -> dict[str, int]:
    """The critical vehicle and a distractor among the visible agents ({} roles left out if none)."""
    visible = [a for a in frame.agents if a.visible]
    if not visible:
        return {}
    ids = {a.id for a in visible}
    critical = None
    hazard = (frame.meta.get("corner") or {}).get("hazard_id")
    if hazard in ids:
        critical = hazard
    for qid in ("per.lead_vehicle", "plan.danger"):
        node = graph.get(qid)
        if critical is None and node is not None and isinstance(node.answer, ObjectsAnswer):
            critical = next((i for i in node.answer.ids if i in ids), None)
    if critical is None:
        critical = min(visible, key=lambda a: np.hypot(a.rel_x_m, a.rel_y_m)).id
    out = {"critical": critical}
    others = [a for a in visible if a.id != critical]
    if others:
        # farthest behind first (a vehicle behind matters least to the ego's next step), then farthest
        out["distractor"] = max(others, key=lambda a: (a.rel_x_m < 0, np.hypot(a.rel_x_m, a.rel_y_m))).id
    return out


# ---------------------------------------------------------------------- verification


def _mentions(node: QA) -> set[int]:
    ids = set(node.objects)
    if hasattr(node.answer, "ids"):
        ids |= set(node.answer.ids)  # type: ignore[union-attr]
    return ids


def _colour_pixels(image: np.ndarray, box: list[float]) -> int:
    h, w = image.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return 0
    patch = image[y0:y1, x0:x1].astype(int)
    return int(((patch.max(axis=2) - patch.min(axis=2)) > COLOR_SPREAD).sum())


def _overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def verify_probe(edit: str, vid: int, orig: FrameRecord, edited: FrameRecord,
                 image_o: np.ndarray, image_e: np.ndarray) -> dict[str, bool]:
    """The checks of one probe: untouched vehicles unchanged (state, perception labels); removal complete."""
    fo, fe = orig.frame, edited.frame
    keep = [a for a in fo.agents if a.id != vid]
    after = {a.id: a for a in fe.agents}
    untouched = all(
        a.id in after and (a.x_m, a.y_m, a.speed_mps, a.lane_id, a.boxes) ==
        (after[a.id].x_m, after[a.id].y_m, after[a.id].speed_mps, after[a.id].lane_id, after[a.id].boxes)
        for a in keep
    )
    per_e = {n.qid: n for n in edited.graph.nodes}
    labels = True
    for n in orig.graph.nodes:
        own = n.qid.rsplit(".v", 1)
        if n.stage != "perception" or len(own) != 2 or not own[1].isdigit() or int(own[1]) == vid:
            continue
        other = per_e.get(n.qid)
        labels &= other is not None and other.answer == n.answer
    out = {"untouched_state": untouched, "untouched_labels": labels}
    if edit == "remove":
        out["gone_from_labels"] = vid not in after and not any(vid in _mentions(n) for n in edited.graph.nodes)
        agent = fo.agent(vid)
        box = agent.boxes.get(CAMERA) if agent else None
        others = [a.boxes.get(CAMERA) for a in keep if a.boxes.get(CAMERA)] + [fo.ego.boxes.get(CAMERA)]
        if box and not any(o and _overlaps(box, o) for o in others):
            out["gone_from_image"] = _colour_pixels(image_o, box) > 0 and _colour_pixels(image_e, box) == 0
    return out


# ---------------------------------------------------------------------- building


def _frame_rng(seed: int, frame_id: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}/{frame_id}".encode()).digest()[:8], "big"))


def _label(frame: Frame, source: Any, horizon_s: float) -> ChainGraph:
    from drivechain.teacher.graph import build_graph

    return build_graph(frame, source, horizon_s=horizon_s)


def _observe(source: Any, parent: Any = None) -> tuple[Frame, np.ndarray]:
    from drivechain.sources.corner_cases import corner_meta

    frame = source.frame()
    frame.meta.update(corner_meta(source.env))
    return frame, source.render() if parent is None else render_edited(parent, source)


def build_probes(data: Path, out: Path, cfg: ProbeConfig, force: bool = False,
                 on_frame: Any = None) -> dict[str, Any]:
    """Write a probe set (a dataset folder of original + edited frames, and probes.jsonl) to ``out``."""
    from drivechain.generate import prepare_out
    from drivechain.sources.base import make_source

    bad = [e for e in cfg.edits if e not in EDITS]
    if bad or not cfg.edits:
        raise ConfigError(f"unknown edit(s) {', '.join(bad) or '(none)'}; choose from: {', '.join(EDITS)}")
    dataset = load_dataset(data)
    if dataset.manifest.source != "highway":
        raise ConfigError(f"probes need a simulator dataset (source highway); {data} is from '{dataset.manifest.source}'")
    prepare_out(out, force)
    gen = dataset.manifest.config
    image_size = tuple(gen["image_size"]) if gen.get("image_size") else None
    horizon_s = float(gen.get("horizon_s", 3.0))
    episodes: dict[tuple[str, int], list[FrameRecord]] = defaultdict(list)
    for rec in dataset.records():
        episodes[(rec.frame.scenario, rec.frame.episode)].append(rec)
    all_ids = [r.frame.frame_id for recs in episodes.values() for r in recs]
    chosen = set(all_ids)
    if cfg.frames is not None and cfg.frames < len(all_ids):
        chosen = set(random.Random(cfg.seed).sample(all_ids, cfg.frames))
    stats: dict[str, Any] = defaultdict(int)
    lines: list[str] = []
    probe_rows: list[str] = []
    with building_folder(out) as tmp:
        sources: dict[str, Any] = {}
        for (scenario, episode), recs in episodes.items():
            recs = sorted(recs, key=lambda r: r.frame.step)
            wanted = [r for r in recs if r.frame.frame_id in chosen]
            if not wanted:
                continue
            if scenario not in sources:
                sources[scenario] = make_source("highway", scenario, image_size=image_size,
                                                marks=gen.get("marks", True), horizon_s=horizon_s)
            source = sources[scenario]
            replay(source, recs[0].frame.seed, episode, [])
            done_steps = 0
            for rec in wanted:
                for r in recs[done_steps:rec.frame.step]:
                    source.step(str(r.frame.meta.get("ego_action", "IDLE")))
                done_steps = rec.frame.step
                _probe_frame(rec, source, cfg, horizon_s, tmp, lines, probe_rows, stats)
                if on_frame:
                    on_frame(stats)
        for src in sources.values():
            src.close()
        if stats["probes"] == 0:
            raise ConfigError(f"no probe could be made from {data} (frames replayed: {stats['frames']}, "
                              f"replay mismatches: {stats['replay_mismatch']}); check the dataset")
        frames_hash = write_frames(tmp, lines)
        write_frames_named(tmp / PROBES_FILE, probe_rows)
        manifest = Manifest(
            name=f"{dataset.manifest.name}-probes", source="highway",
            config={"probes": cfg.model_dump(mode="json"), "data": str(data), "data_name": dataset.manifest.name,
                    "data_frames_sha256": dataset.manifest.frames_sha256, **{k: gen.get(k) for k in
                    ("image_size", "marks", "horizon_s")}},
            seed=cfg.seed, versions=dataset.manifest.versions,
            # "frames" counts the records (originals + edited) as every dataset's manifest does
            counts=dict(sorted({**stats, "frames_probed": stats["frames"], "frames": len(lines)}.items())),
            frames_sha256=frames_hash, images_sha256=images_sha256(tmp),
        )
        write_manifest(tmp, manifest)
    return dict(stats)


def write_frames_named(path: Path, rows: list[str]) -> None:
    """Write JSON lines to ``path`` (inside a folder being built)."""
    path.write_text("".join(r.rstrip("\n") + "\n" for r in rows), encoding="utf-8")


def _probe_frame(rec: FrameRecord, source: Any, cfg: ProbeConfig, horizon_s: float, root: Path,
                 lines: list[str], probe_rows: list[str], stats: dict[str, Any]) -> None:
    stats["frames"] += 1
    frame_o, image_o = _observe(source)
    if replay_error_m(frame_o, rec.frame) > REPLAY_TOLERANCE_M:
        stats["replay_mismatch"] += 1
        return
    frame_o.meta["ego_action"] = rec.frame.meta.get("ego_action")
    graph_o = _label(frame_o, source, horizon_s) if cfg.relabel else rec.graph
    orig = FrameRecord(frame=frame_o, graph=graph_o)
    fid = rec.frame.frame_id
    stem = f"{IMAGES}/probes/{frame_o.scenario}/{frame_o.episode:04d}_{frame_o.step:03d}"
    roles = pick_agents(frame_o, graph_o)
    candidates = [(edit, role, vid) for edit in cfg.edits for role, vid in roles.items()]
    # seeded order; an edit that cannot apply gives its place to the next candidate
    order = _frame_rng(cfg.seed, fid).sample(candidates, len(candidates))
    edited_lines, qids_o = [], set()
    made = 0
    for edit, role, vid in order:
        if made >= cfg.per_frame:
            break
        try:
            fork, info = edited_fork(source, vid, edit)
        except EditError:
            stats["edit_not_applicable"] += 1
            continue
        made += 1
        frame_e, image_e = _observe(fork, parent=source)
        frame_e.meta["ego_action"] = rec.frame.meta.get("ego_action")
        graph_e = _label(frame_e, fork, horizon_s)
        fork.close()
        pid = f"{fid}~{edit}.v{vid}"
        rel = f"{stem}_{edit}_v{vid}.png"
        frame_e.images = {CAMERA: rel}
        frame_e.frame_id = pid
        edited = FrameRecord(frame=frame_e, graph=graph_e)
        by_qid = {n.qid: n for n in graph_e.nodes}
        flips, stable = [], []
        for n in graph_o.nodes:
            other = by_qid.get(n.qid)
            kind = answer_change(n, other) if other is not None else "unclear"
            (flips if kind == "flip" else stable if kind == "same" else []).append(n.qid)
        checks = verify_probe(edit, vid, orig, edited, image_o, image_e)
        valid = all(checks.values())
        write_png(root / rel, image_e)
        probe = {"id": pid, "of": fid, "edit": edit, "agent": vid, "role": role, "change": info,
                 "flips": flips, "stable": stable, "checks": checks, "valid": valid}
        edited.frame.meta["probe"] = probe
        stats["probes"] += 1
        stats["valid"] += int(valid)
        stats[f"edit.{edit}"] += 1
        if valid:
            qids_o |= set(flips) | set(stable)
            edited_lines.append(edited.model_dump_json())
        probe_rows.append(_json(probe))
    rel_o = f"{stem}.png"
    write_png(root / rel_o, image_o)
    frame_o.images = {CAMERA: rel_o}
    frame_o.meta["probe_qids"] = sorted(qids_o)
    lines.append(orig.model_dump_json())
    lines.extend(edited_lines)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True)
