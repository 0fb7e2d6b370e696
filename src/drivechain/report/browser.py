"""The frame browser's data: a frame's QA graph laid out by stage, and each model's answers on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivechain.report.loaders import Run
from drivechain.schema import STAGES, ChoiceAnswer, FrameRecord

COL_W = 230  # px between stage columns
ROW_H = 20  # px between nodes of one column
NODE_W = 210
NODE_H = 16
BAD = ("wrong", "unsafe", "unparsed")


@dataclass
class NodeBox:
    """One QA node placed in the SVG."""

    qid: str
    stage: str
    x: int
    y: int


@dataclass
class FrameView:
    """What the browser shows for one frame."""

    frame_id: str
    image: str | None
    command: str
    nodes: list[NodeBox]
    edges: list[tuple[int, int, int, int]]
    width: int
    height: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # qid, stage, question, truth, per-model cells
    first_wrong: dict[str, str | None] = field(default_factory=dict)  # model -> stage of its first wrong step
    cameras: list[tuple[str, str]] = field(default_factory=list)  # (camera, image) of the frame's other cameras


def layout(record: FrameRecord) -> tuple[list[NodeBox], list[tuple[int, int, int, int]], int, int]:
    """Nodes in one column per stage, edges from each parent's right side to the child's left side."""
    boxes: dict[str, NodeBox] = {}
    tallest = 0
    for col, stage in enumerate(STAGES):
        nodes = record.graph.stage(stage)
        tallest = max(tallest, len(nodes))
        for row, qa in enumerate(nodes):
            boxes[qa.qid] = NodeBox(qa.qid, stage, 10 + col * COL_W, 10 + row * ROW_H)
    edges = []
    for qa in record.graph.nodes:
        child = boxes[qa.qid]
        for parent in qa.parents:
            if parent in boxes:
                p = boxes[parent]
                edges.append((p.x + NODE_W, p.y + NODE_H // 2, child.x, child.y + NODE_H // 2))
    return list(boxes.values()), edges, 20 + len(STAGES) * COL_W, 20 + max(tallest, 1) * ROW_H


def answers_by_frame(run: Run, frame_ids: set[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """frame -> qid -> the model's graded answer (free-running chain preferred, else the V-> link)."""
    rank = {("free", None): 0, ("transitions", "V->Per"): 1, ("transitions", "V->Pred"): 1,
            ("transitions", "V->Plan"): 1}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in run.jsonl("scores.jsonl"):
        fid = row.get("frame_id")
        if fid not in frame_ids:
            continue
        key = (row.get("protocol"), None if row.get("protocol") == "free" else row.get("link"))
        if key not in rank or (row.get("protocol") == "transitions" and row.get("image") is not True):
            continue
        held = out.setdefault(fid, {}).get(row.get("qid", ""))
        if held is None or rank[key] < held["_rank"]:
            out[fid][row["qid"]] = {**row, "_rank": rank[key]}
    return out


def pick_frames(records: list[FrameRecord], runs: list[Run], limit: int) -> list[FrameRecord]:
    """Frames where models go wrong first (most wrong answers), then the rest, in dataset order."""
    wrong: dict[str, int] = {}
    for run in runs:
        for row in run.jsonl("scores.jsonl"):
            if row.get("status") in BAD:
                wrong[row["frame_id"]] = wrong.get(row["frame_id"], 0) + 1
    per_scenario: dict[str, list[FrameRecord]] = {}
    for rec in records:
        per_scenario.setdefault(rec.frame.scenario, []).append(rec)
    # Round-robin over scenarios so every scenario appears, most-failed frames first within each.
    queues = [sorted(v, key=lambda r: -wrong.get(r.frame.frame_id, 0)) for v in per_scenario.values()]
    picked: list[FrameRecord] = []
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked


def frame_view(record: FrameRecord, image: str | None, runs: list[Run],
               answers: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> FrameView:
    """Graph layout plus a table row per question with the truth and every model's answer."""
    from drivechain.prompts import format_answer

    nodes, edges, width, height = layout(record)
    view = FrameView(record.frame.frame_id, image, record.frame.command, nodes, edges, width, height)
    models = [r.model for r in runs]
    for qa in record.graph.nodes:
        cells = []
        for model in models:
            got = answers.get(model, {}).get(record.frame.frame_id, {}).get(qa.qid)
            if got is None:
                cells.append({"text": "—", "status": "none"})
            else:
                raw = got.get("raw")
                cells.append({"text": "" if raw is None else str(raw), "status": got.get("status", "none")})
        truth = format_answer(qa)
        if isinstance(qa.answer, ChoiceAnswer):  # a letter alone means little to a reader
            truth = f"{truth} ({qa.answer.options[qa.answer.preferred]})"
        view.rows.append({"qid": qa.qid, "stage": qa.stage, "question": qa.question,
                          "truth": truth, "ambiguous": qa.ambiguous, "cells": cells})
    for model in models:
        got = answers.get(model, {}).get(record.frame.frame_id, {})
        view.first_wrong[model] = next(
            (s for s in STAGES if any(v.get("stage") == s and v.get("status") in BAD for v in got.values())), None
        )
    return view
