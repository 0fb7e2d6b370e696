"""Protocol + frame -> a model Request: the one prompt format every model (built-ins included) answers.

The prompt is plain text in a fixed layout so that it can be read back (``parse_prompt``) by the
built-in baselines, which see only what a real model sees. Layout of the user message::

    Scenario: highway. Navigation: follow lane.
    Known answers:
    Q (per.lead_vehicle): Is there a vehicle ahead in the ego lane?
    A: yes
    Questions:
    [plan.action] (choice) Which action should the ego take?
    A. LANE_LEFT
    B. IDLE
    Format: one letter (A, B)
    Reply with ONE JSON object keyed by question id ...
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Any

from drivechain.errors import ConfigError
from drivechain.interop.drivelm.tags import TAG_NOTE, has_tags
from drivechain.models.base import ImagePart, Message, Request, TextPart
from drivechain.schema import (
    STAGES,
    BooleanAnswer,
    ChoiceAnswer,
    FrameRecord,
    NumberAnswer,
    ObjectsAnswer,
    QA,
    RankingAnswer,
)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COT_HEADERS = ("Perception:", "Prediction:", "Planning:", "Behavior:")
CAMERA_CHOICES = ("front", "all")
# A single-camera frame sends its one image either way; ``front`` picks the first of these names.
FRONT_NAMES = ("CAM_FRONT", "FRONT", "RGB_FRONT", "CAMERA_FRONT")

SYSTEM_PROMPT = (
    "You are the driving assistant of the ego vehicle (the car in the image marked as the ego). "
    "Answer questions about the scene step by step: perception, prediction, planning, behavior.\n"
    "Conventions: positions are ego-relative in metres, x forward and y to the LEFT of the ego; "
    "speeds in m/s, times in s, distances in m. Other vehicles are named by the number marked on them "
    "in the image: 'vehicle 3' is the vehicle marked 3. Driving actions are LANE_LEFT, IDLE (keep lane "
    "and speed), LANE_RIGHT, FASTER, SLOWER.\n"
    "Answer formats: a choice is answered with its option letter; yes/no questions with \"yes\" or "
    "\"no\"; a quantity with a number in the asked unit, or \"none\" when it does not exist; a set of "
    "vehicles with their numbers like \"3, 5\" or \"none\"; a ranking with vehicle numbers most "
    "important first like \"3 > 5 > 1\"."
)


def format_number(value: float) -> str:
    """A float as short text, exact to 1e-6 (no exponent, no trailing zeros)."""
    text = f"{round(float(value), 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_answer(qa: QA) -> str:
    """Canonical reply text of the truth, as a perfect model would write it."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        return LETTERS[a.preferred]
    if isinstance(a, BooleanAnswer):
        return "yes" if a.value else "no"
    if isinstance(a, NumberAnswer):
        return format_value(qa, a.value)
    if isinstance(a, ObjectsAnswer):
        return format_value(qa, list(a.ids))
    if isinstance(a, RankingAnswer):
        return format_value(qa, list(a.ids))
    return a.references[0] if a.references else ""


def format_value(qa: QA, value: Any) -> str:
    """A parsed model value (see grading.parse) rendered as ``format_answer`` renders the truth."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        return LETTERS[int(value)] if isinstance(value, int) and 0 <= value < len(a.options) else str(value)
    if isinstance(a, BooleanAnswer):
        return "yes" if value else "no"
    if isinstance(a, NumberAnswer):
        if value is None:
            return "none"
        return f"{format_number(value)} {a.unit}".strip()
    if isinstance(a, ObjectsAnswer):
        items = [
            f"({format_number(v[0])}, {format_number(v[1])})" if isinstance(v, (tuple, list)) else str(int(v))
            for v in (value or [])
        ]
        return ", ".join(items) if items else "none"
    if isinstance(a, RankingAnswer):
        return " > ".join(str(int(v)) for v in value) if value else "none"
    return "" if value is None else str(value)


def format_hint(qa: QA) -> str:
    """The expected answer format of one question, as told to the model."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        return f"one letter ({', '.join(LETTERS[: len(a.options)])})"
    if isinstance(a, BooleanAnswer):
        return '"yes" or "no"'
    if isinstance(a, NumberAnswer):
        return f'a number in {a.unit}, or "none" if it does not exist'
    tags = qa.meta.get("names") == "tags"  # objects named by DriveLM-style tags, not drawn numbers
    if isinstance(a, ObjectsAnswer):
        return 'object ids like "c1, c3" (or their full tags), or "none"' if tags else 'vehicle numbers like "3, 5", or "none"'
    if isinstance(a, RankingAnswer):
        if tags:
            return 'object ids most important first like "c3 > c1 > c2", or "none"'
        return 'vehicle numbers most important first like "3 > 5 > 1", or "none"'
    return "one short sentence"


def _upstream_answer(qa: QA, text: str) -> str:
    """Upstream choice answers carry their option text: a bare letter means nothing without options."""
    a = qa.answer
    if isinstance(a, ChoiceAnswer):
        m = re.fullmatch(r"\s*\(?([A-Z])\)?\.?\s*", text)
        if m and LETTERS.index(m.group(1)) < len(a.options):
            return f"{m.group(1)}. {a.options[LETTERS.index(m.group(1))]}"
    return text


def _question_block(qa: QA) -> str:
    lines = [f"[{qa.qid}] ({qa.answer.type}) {_one_line(qa.question)}"]
    if isinstance(qa.answer, ChoiceAnswer):
        lines += [f"{LETTERS[i]}. {_one_line(opt)}" for i, opt in enumerate(qa.answer.options)]
    if isinstance(qa.answer, NumberAnswer):
        lines.append(f"Unit: {qa.answer.unit}")
    lines.append(f"Format: {format_hint(qa)}")
    return "\n".join(lines)


def select_cameras(images: dict[str, str], cameras: str | Sequence[str] = "all") -> list[tuple[str, str]]:
    """(camera, path) pairs to send: ``all`` (dataset order), ``front``, or camera names (comma list)."""
    if not images:
        return []
    if isinstance(cameras, str):
        if cameras == "all":
            return list(images.items())
        if cameras == "front":
            front = next((c for c in images if c.upper() in FRONT_NAMES), next(iter(images)))
            return [(front, images[front])]
        cameras = [c.strip() for c in cameras.split(",") if c.strip()]
    missing = [c for c in cameras if c not in images]
    if missing:
        raise ConfigError(
            f"camera(s) {', '.join(missing)} not in this frame (it has {', '.join(images)}); "
            "use --cameras front, all or names from that list"
        )
    return [(c, images[c]) for c in cameras]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def build_request(
    record: FrameRecord,
    targets: list[QA],
    *,
    image: bool,
    upstream: list[tuple[QA, str]],
    image_root: str = "",
    history: bool = False,
    cot: bool = False,
    temperature: float = 0.0,
    max_tokens: int = 1024,
    seed: int | None = None,
    cameras: str | Sequence[str] = "all",
    bare: bool = False,
) -> Request:
    """The request asking ``targets`` of one frame, given the image and/or upstream answers as text.

    ``bare`` (one question only) asks for the answer alone instead of a JSON object.
    """
    frame = record.frame
    parts: list[TextPart | ImagePart] = []
    if image:
        if history:
            for i, path in enumerate(frame.history_images):
                parts.append(TextPart(text=f"Past frame {i - len(frame.history_images)} (oldest first):"))
                parts.append(ImagePart(path=path))
        chosen = select_cameras(frame.images, cameras)
        if len(chosen) == 1:
            parts.append(TextPart(text=f"Current frame ({chosen[0][0]}):"))
            parts.append(ImagePart(path=chosen[0][1]))
        elif chosen:
            # Each image follows its camera's name, so the model can tell the views (and tags) apart.
            parts.append(TextPart(text=f"Current frame, {len(chosen)} cameras ({', '.join(c for c, _ in chosen)}):"))
            for cam, path in chosen:
                parts.append(TextPart(text=f"Camera {cam}:"))
                parts.append(ImagePart(path=path))
    body = [f"Scenario: {frame.scenario}. Navigation: {frame.command}."]
    if any(has_tags(qa.question) for qa in targets) or any(has_tags(qa.question) for qa, _ in upstream):
        body.append(TAG_NOTE)
    if upstream:
        body.append("Known answers:")
        for qa, ans in upstream:
            body.append(f"Q ({qa.qid}): {_one_line(qa.question)}")
            body.append(f"A: {_one_line(_upstream_answer(qa, ans))}")
    body.append("Questions:")
    body += [_question_block(qa) for qa in targets]
    example = json.dumps({qa.qid: "..." for qa in targets[:2]})
    if cot:
        body.append(
            "Reason step by step in four short sections headed "
            + ", ".join(f'"{h}"' for h in COT_HEADERS)
            + ", then end with ONE JSON object keyed by question id with your answers, like "
            + example
        )
    elif bare and len(targets) == 1:
        body.append("Reply with the answer only, in the format above, and nothing else.")
    else:
        body.append(
            "Reply with ONE JSON object keyed by question id with your answers as strings, like "
            + example
            + ", and nothing else."
        )
    parts.append(TextPart(text="\n".join(body)))
    stages = [s for s in STAGES if any(q.stage == s for q in targets)]
    return Request(
        messages=[
            Message(role="system", content=[TextPart(text=SYSTEM_PROMPT)]),
            Message(role="user", content=parts),
        ],
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        image_root=image_root,
        meta={
            "frame_id": frame.frame_id,
            "qids": [q.qid for q in targets],
            "stages": stages,
            "stage": stages[0] if len(stages) == 1 else "+".join(stages),
            "upstream_qids": [q.qid for q, _ in upstream],
            "image": image,
            "history": history,
            "cot": cot,
            "bare": bare and len(targets) == 1,
            "cameras": [c for c, _ in select_cameras(frame.images, cameras)] if image else [],
            "oracle": {q.qid: format_answer(q) for q in targets},
        },
    )


# --------------------------------------------------------------------------- reading a prompt back


@dataclass
class PromptQuestion:
    """A target question as read back from the prompt text (what a text-only baseline knows)."""

    qid: str
    type: str
    question: str
    options: list[str] = field(default_factory=list)
    unit: str = ""


@dataclass
class PromptView:
    """What a prompt tells: scenario, navigation command, upstream (qid, question, answer), targets."""

    scenario: str = ""
    command: str = ""
    upstream: list[tuple[str, str, str]] = field(default_factory=list)
    targets: list[PromptQuestion] = field(default_factory=list)


_HEAD = re.compile(r"^\[([^\]\s]+)\] \((\w+)\) (.*)$")
_OPT = re.compile(r"^([A-Z])\. (.*)$")


def parse_prompt(text: str) -> PromptView:
    """Read back a prompt built by ``build_request`` (its user text); unknown lines are ignored."""
    view = PromptView()
    m = re.search(r"Scenario: (.*?)\. Navigation: (.*?)\.$", text, flags=re.M)
    if m:
        view.scenario, view.command = m.group(1), m.group(2)
    section = ""
    pending_q: tuple[str, str] | None = None
    current: PromptQuestion | None = None
    for line in text.splitlines():
        if line in ("Known answers:", "Questions:"):
            section = line
            continue
        if section == "Known answers:":
            mq = re.match(r"^Q \(([^)\s]+)\): (.*)$", line)
            if mq:
                pending_q = (mq.group(1), mq.group(2))
            elif line.startswith("A: ") and pending_q:
                view.upstream.append((pending_q[0], pending_q[1], line[3:]))
                pending_q = None
        elif section == "Questions:":
            mh = _HEAD.match(line)
            if mh:
                current = PromptQuestion(qid=mh.group(1), type=mh.group(2), question=mh.group(3))
                view.targets.append(current)
            elif current is not None:
                mo = _OPT.match(line)
                if mo and current.type == "choice" and LETTERS.index(mo.group(1)) == len(current.options):
                    current.options.append(mo.group(2))
                elif line.startswith("Unit: "):
                    current.unit = line[6:]
    return view
