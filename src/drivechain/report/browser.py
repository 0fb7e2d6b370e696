"""The frame browser's data: a small index of every frame (for filters), and lazily loaded chunks.

``index``: per frame its scenario, families and, per model and answer view, one outcome letter per
stage (see ``scores.stage_outcomes``) and the families it got wrong. ``frames-NNNN``: the QA graph
(truth, explanation, band) and every model's answers for CHUNK frames. ``requests-NNNN``: per frame
and model, each request's prompt as sent (deduplicated messages) and raw reply, from results.sqlite.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Callable

from drivechain.report.bands import band_of
from drivechain.report.loaders import Run
from drivechain.report.scores import VIEWS, WRONG, RunScores, first_wrong_stage, stage_outcomes, stage_percent
from drivechain.schema import STAGES, ChoiceAnswer, FrameRecord

CHUNK = 20  # frames per lazily loaded file


def _truth(qa: Any) -> str:
    from drivechain.prompts import format_answer

    text = format_answer(qa)
    if isinstance(qa.answer, ChoiceAnswer):  # a letter alone means little to a reader
        text = f"{text} ({qa.answer.options[qa.answer.preferred]})"
    return text


def build_index(records: list[FrameRecord], models: list[str], scored: list[RunScores]) -> dict[str, Any]:
    """The browser's index: enough per frame to filter without loading any chunk."""
    families = sorted({qa.family for rec in records for qa in rec.graph.nodes})
    fam_idx = {f: i for i, f in enumerate(families)}
    views = [v for v in VIEWS if any(v in a for s in scored for a in s.answers.values())]
    frames = []
    for n, rec in enumerate(records):
        fid = rec.frame.frame_id
        stage_of = {qa.qid: qa.stage for qa in rec.graph.nodes}
        family_of = {qa.qid: qa.family for qa in rec.graph.nodes}
        per_model = []
        for s in scored:
            got = s.answers.get(fid, {})
            entry = {}
            for view in views:
                answers = got.get(view)
                if not answers:
                    continue
                wrong = sorted({fam_idx[family_of[q]] for q, a in answers.items()
                                if a[1] in WRONG and q in family_of})
                entry[view] = [stage_outcomes(answers, stage_of), wrong, stage_percent(answers, stage_of)]
            per_model.append(entry)
        frames.append({"id": fid, "sc": rec.frame.scenario, "c": n // CHUNK,
                       "fam": sorted({fam_idx[qa.family] for qa in rec.graph.nodes}), "m": per_model})
    return {"models": models, "views": {v: VIEWS[v] for v in views}, "stages": list(STAGES),
            "families": families, "scenarios": sorted({r.frame.scenario for r in records}),
            "chunk": CHUNK, "frames": frames}


def frame_chunk(records: list[FrameRecord], scored: list[RunScores],
                image: Callable[[Path], str | None], image_path: Callable[[str], Path]) -> dict[str, Any]:
    """Graph, truths, explanations, bands and every model's answers for a slice of frames."""
    out = {}
    for rec in records:
        fid = rec.frame.frame_id
        images = []
        for name, rel in rec.frame.images.items():
            src = image(image_path(rel))
            if src:
                images.append([name, src])
        nodes = [{"q": qa.qid, "f": qa.family, "s": qa.stage, "type": qa.answer.type, "question": qa.question,
                  "truth": _truth(qa), "expl": qa.explanation, "band": band_of(qa),
                  "parents": [p for p in qa.parents], "amb": qa.ambiguous} for qa in rec.graph.nodes]
        stage_of = {qa.qid: qa.stage for qa in rec.graph.nodes}
        answers, first = [], []
        for s in scored:
            got = s.answers.get(fid, {})
            answers.append(got)
            first.append({v: first_wrong_stage(stage_outcomes(a, stage_of)) for v, a in got.items()})
        out[fid] = {"id": fid, "scenario": rec.frame.scenario, "command": rec.frame.command,
                    "images": images, "nodes": nodes, "answers": answers, "first_wrong": first}
    return {"frames": out}


class Transcripts:
    """Prompts and replies of one chunk's frames, messages stored once however many requests share them."""

    def __init__(self, image: Callable[[Path], str | None]) -> None:
        self.image = image
        self.frames: dict[str, list[list[dict[str, Any]]]] = {}
        self.messages: dict[str, Any] = {}

    def _message(self, msg: dict[str, Any], root: Path) -> str:
        content = msg.get("content")
        parts: list[list[str]] = []
        for part in content if isinstance(content, list) else [{"type": "text", "text": str(content or "")}]:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image":
                rel = str(part.get("path") or "")
                src = self.image(root / rel) if rel and ".." not in Path(rel).parts else None
                parts.append(["image", src or "", rel])
            else:
                parts.append(["text", str(part.get("text") or "")])
        body = {"role": str(msg.get("role") or ""), "parts": parts}
        mid = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
        self.messages.setdefault(mid, body)
        return mid

    def add(self, fid: str, model_i: int, n_models: int, key: str, label: str, row: tuple[Any, ...]) -> None:
        """One stored request/response of model ``model_i`` for frame ``fid``."""
        request, status, text, error, pt, ct, rt, lat = row
        try:
            req = json.loads(request)
        except (TypeError, json.JSONDecodeError):
            req = {}
        root = Path(str(req.get("image_root") or "."))
        mids = [self._message(m, root) for m in req.get("messages") or [] if isinstance(m, dict)]
        slot = self.frames.setdefault(fid, [[] for _ in range(n_models)])
        slot[model_i].append({"key": key, "label": label, "ok": status == "ok", "reply": text or "",
                              "error": error or "", "tokens": [pt, ct, rt], "latency_s": lat, "prompt": mids})

    def data(self) -> dict[str, Any]:
        """The chunk's JSON-able content."""
        for per_model in self.frames.values():
            for reqs in per_model:
                reqs.sort(key=lambda r: r["label"])
        return {"frames": self.frames, "messages": self.messages}


def read_requests(run: Run, wanted: dict[str, dict[str, str]]) -> dict[str, tuple[Any, ...]]:
    """key -> stored row for the wanted keys (frame -> key -> label), reading results.sqlite read-only."""
    path = run.path / "results.sqlite"
    keys = {k for per in wanted.values() for k in per}
    if not path.is_file() or not keys:
        return {}
    out = {}
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            for key, *rest in db.execute("SELECT key, request, status, text, error, prompt_tokens, "
                                         "completion_tokens, reasoning_tokens, latency_s FROM results"):
                if key in keys:
                    out[key] = tuple(rest)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return {}  # an unreadable store: the browser shows answers without transcripts
    return out
