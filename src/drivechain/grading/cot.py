"""Chain-of-thought steps: split free-form reasoning into steps mapped to stages; find the first error.

Also THE step-rating rule, shared by the CoT protocol (evaluation) and process supervision
(``process.ratings`` calls ``answer_rating`` and ``combine_ratings``; nothing else rates a step).
Per answer (``answer_rating``), from its typed grade:
- not rated (None): an ambiguous node; a text answer whose references are unknown;
- -1: unparsed, failed, unsafe, or below full score (wrong, partial credit beyond a tolerance,
  F1 < 1, NDCG < 1); a text answer naming ("vehicle N") other vehicles than its references name,
  or an empty one;
- 0 (grey): accepted only thanks to a documented grey band, i.e. it differs from the teacher's
  preferred answer but is accepted (an acceptable-not-preferred option; the other yes/no inside the
  rule's band: the grader sets ``grey`` only then, so the teacher's own value is +1);
- +1 otherwise (the teacher's own answer always is).
A step's rating is the minimum of its answers' ratings, +1 when none is rated ("+1 otherwise").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from drivechain.grading.graders import Grade
from drivechain.grading.parse import Parsed, parse_reply
from drivechain.schema import QA, STAGES

STAGE_WORDS: dict[str, tuple[str, ...]] = {
    "perception": ("perception", "perceive", "observation", "observe", "scene", "see", "detect"),
    "prediction": ("prediction", "predict", "forecast", "will", "future", "expect", "intent"),
    "planning": ("planning", "plan", "decision", "decide", "safe", "action"),
    "behavior": ("behavior", "behaviour", "control", "steer", "accelerat", "brak", "maneuver", "manoeuvre"),
}
# a header names a stage at the start of a line: "Perception:", "## Step 2 - Prediction", "**Planning**"
_HEADER = re.compile(
    r"^[ \t>#*_\-]*(?:(?:step\s*)?\d+\s*[.):\-–]?\s*)?[*_]*\s*"
    r"(perception|perceive|prediction|predict|planning|plan|decision|behaviou?r|action)\b"
    r"\s*(?:stage|step)?[*_]*\s*(?:[:\-–]|$)[*_]*",
    re.I | re.M,
)
_NUMBERED = re.compile(r"^[ \t>#*_]*(?:step\s*\d+\b|\d+[.)])[*_]*\s*[:\-–]?", re.I | re.M)
_HEADER_STAGE = {
    "perception": "perception", "perceive": "perception", "prediction": "prediction", "predict": "prediction",
    "planning": "planning", "plan": "planning", "decision": "planning", "behavior": "behavior",
    "behaviour": "behavior", "action": "behavior",
}


@dataclass
class Step:
    """One reasoning step: its stage (None when it names none) and its text."""

    stage: str | None
    text: str


def _keyword_stage(text: str) -> str | None:
    low = text.lower()
    counts = {s: sum(len(re.findall(r"\b" + w, low)) for w in ws) for s, ws in STAGE_WORDS.items()}
    best = max(counts.values())
    top = [s for s, c in counts.items() if c == best]
    return top[0] if best > 0 and len(top) == 1 else None


def _strip_final_json(text: str) -> tuple[str, str]:
    """Split off a trailing JSON answer (fenced or a last {...} block) so it is not part of a step."""
    m = re.search(r"```(?:json)?\s*\{.*\}\s*```\s*$", text, re.S | re.I)
    if m:
        return text[: m.start()], m.group(0)
    end = text.rstrip()
    if end.endswith("}"):
        depth = 0
        for i in range(len(end) - 1, -1, -1):
            depth += {"}": 1, "{": -1}.get(end[i], 0)
            if depth == 0:
                return text[:i], end[i:]
    return text, ""


def split_steps(text: str) -> list[Step]:
    """Steps of a reasoning text: by stage headers, else numbered steps (stage by header or keywords), else paragraphs."""
    if not isinstance(text, str):
        return []
    body, final = _strip_final_json(text[:200_000])
    steps: list[Step] = []
    heads = list(_HEADER.finditer(body))
    nums = list(_NUMBERED.finditer(body))
    if heads and len(heads) >= len(nums):
        pre = body[: heads[0].start()].strip()
        if pre:
            steps.append(Step(None, pre))
        for i, h in enumerate(heads):
            chunk = body[h.end() : heads[i + 1].start() if i + 1 < len(heads) else len(body)].strip()
            steps.append(Step(_HEADER_STAGE[h.group(1).lower()], chunk))
    elif len(nums) >= 2:
        head_at = {h.start(): _HEADER_STAGE[h.group(1).lower()] for h in heads}
        pre = body[: nums[0].start()].strip()
        if pre:
            steps.append(Step(_keyword_stage(pre), pre))
        for i, h in enumerate(nums):
            chunk = body[h.end() : nums[i + 1].start() if i + 1 < len(nums) else len(body)].strip()
            steps.append(Step(head_at.get(h.start()) or _keyword_stage(chunk), chunk))
    else:
        paras = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
        steps += [Step(_keyword_stage(p), p) for p in paras]
    if final.strip():
        steps.append(Step(None, final.strip()))
    return steps


def cot_answers(text: str, targets: list[QA]) -> dict[str, Parsed]:
    """Answers of a CoT reply: the final JSON first; a question it lacks is read from its stage's step."""
    parsed = parse_reply(text, targets)
    missing = [q for q in targets if parsed[q.qid].unparsed]
    if missing:
        steps = split_steps(text)
        for qa in missing:
            stage_text = "\n".join(s.text for s in steps if s.stage == qa.stage)
            if stage_text:
                again = parse_reply(stage_text, [qa]) if len(targets) > 1 else {}
                if again and again[qa.qid].unparsed is None:
                    parsed[qa.qid] = again[qa.qid]
    return parsed


_VEHICLE = re.compile(r"\bvehicles?\s+#?(\d+)", re.IGNORECASE)
_FULL = 1.0 - 1e-9


def mentioned_vehicles(text: str) -> set[int]:
    """Vehicle numbers a sentence names ("vehicle 3"; "vehicles 3 and 5" names 3 only: documented)."""
    return {int(m) for m in _VEHICLE.findall(text or "")}


def _grade_field(g: Any, name: str, default: Any) -> Any:
    return getattr(g, name, default) if not isinstance(g, dict) else g.get(name, default)


def answer_rating(grade: Grade | dict, text: str | None = None, references: Sequence[str] | None = None) -> int | None:
    """-1 / 0 / +1 of one graded answer, None when not rated (rules in the module doc).

    ``grade`` is a ``graders.Grade`` or an evaluation row (a dict with its fields). A text answer needs
    its own words (``text``, else the row's ``value``) and the references (``references``, else the
    row's ``refs``); without references it is not rated.
    """
    status = _grade_field(grade, "status", "")
    if status == "ambiguous":
        return None
    if _grade_field(grade, "type", "") == "text" or status == "language":
        refs = references if references is not None else _grade_field(grade, "refs", None)
        if refs is None:
            return None
        words = text if text is not None else _grade_field(grade, "value", None)
        if status in ("unparsed", "failed") or not isinstance(words, str) or not words.strip():
            return -1
        truth = set().union(*(mentioned_vehicles(r) for r in refs)) if refs else set()
        return 1 if not truth or mentioned_vehicles(words) == truth else -1
    if status in ("unparsed", "failed", "unsafe") or _grade_field(grade, "unsafe", False):
        return -1
    if float(_grade_field(grade, "score", 0.0)) < _FULL:
        return -1
    return 0 if _grade_field(grade, "grey", False) else 1


def combine_ratings(ratings: Iterable[int | None]) -> int:
    """A step's rating: the worst of its answers' ratings, +1 when none is rated."""
    rated = [r for r in ratings if r is not None]
    return min(rated) if rated else 1


def step_rating(grades: Sequence[Grade | dict]) -> int:
    """+1 / 0 / -1 for one step from its questions' grades (see module doc)."""
    return combine_ratings(answer_rating(g) for g in grades)


def stage_ratings(grades: Sequence[Grade | dict]) -> list[tuple[str, int]]:
    """(stage, rating) in chain order for the stages that have grades."""
    by_stage = {s: [g for g in grades if _grade_field(g, "stage", "") == s] for s in STAGES}
    return [(s, step_rating(gs)) for s, gs in by_stage.items() if gs]


def first_wrong_step(step_grades: Sequence[int | float | Sequence[Grade | dict]]) -> int:
    """Index of the first step rated -1 (a rating number or a step's list of grades), or -1."""
    for i, step in enumerate(step_grades):
        rating = step if isinstance(step, (int, float)) else step_rating(step)
        if rating < 0:
            return i
    return -1
