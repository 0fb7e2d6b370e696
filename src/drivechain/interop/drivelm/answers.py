"""DriveLM answer text -> a typed drivechain answer, where DriveLM's answer is typed.

Rules, first that applies (each documented in docs/drivelm.md):
- a single letter (``"B"``, ``"B."``) to a question listing options ``A. ... B. ...`` -> choice;
- exactly "Yes." or "No." (case, period optional) -> boolean (longer "Yes, ..." answers stay text);
- nothing but object tags (``<c1,CAM_BACK,1088.3,497.5>``, separated by commas / "and") -> objects,
  or a ranking when the question asks for an order ("priority", "descending order");
- nothing but coordinate pairs ``(x, y)`` / ``[x, y]`` -> objects with positions (unit in meta);
- anything else -> text (counted as untyped in the manifest).
"""

from __future__ import annotations

import re
from typing import Any

from drivechain.interop.drivelm.tags import only_tags
from drivechain.schema import BooleanAnswer, ChoiceAnswer, ObjectsAnswer, RankingAnswer, TextAnswer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OPTIONS_LEAD = re.compile(r"\s*Please select the correct answer from the following options:\s*", re.I)
_OPTION = re.compile(r"(?:^|\s)([A-Z])\.\s")
_LETTER = re.compile(r"\s*([A-Z])\s*\.?\s*")
_YESNO = re.compile(r"\s*(yes|no)\s*\.?\s*", re.I)
_NUM = r"[-+]?\d+(?:\.\d+)?"
_PAIR = re.compile(rf"[(\[]\s*({_NUM})\s*,\s*({_NUM})\s*[)\]]")
ORDER_WORDS = re.compile(r"descending order|priority|in order of", re.I)
COORD_MATCH_RADIUS = 16.0  # DriveLM's match threshold (L1 < 16 in the coordinates' own unit)


def split_options(question: str) -> tuple[str, list[str]] | None:
    """(question stem, options) when the question lists lettered options A, B, C... in sequence."""
    lead = None
    for m in OPTIONS_LEAD.finditer(question):
        lead = m
    tail_start = lead.end() if lead else 0
    tail = question[tail_start:]
    marks = [m for m in _OPTION.finditer(tail)]
    seq: list[re.Match[str]] = []
    for m in marks:
        if m.group(1) == LETTERS[len(seq)]:
            seq.append(m)
    if len(seq) < 2:
        return None
    options = []
    for i, m in enumerate(seq):
        end = seq[i + 1].start() if i + 1 < len(seq) else len(tail)
        options.append(tail[m.end():end].strip())
    stem = question[: lead.start()] if lead else question[: seq[0].start()]
    return stem.strip(), options


def type_answer(question: str, answer: str) -> tuple[Any, dict[str, Any]]:
    """(typed answer, extra meta) for one DriveLM Q/A; the meta says how it was typed."""
    m = _LETTER.fullmatch(answer)
    if m:
        split = split_options(question)
        if split is not None:
            stem, options = split
            idx = LETTERS.index(m.group(1))
            if idx < len(options):
                return ChoiceAnswer(options=options, acceptable=[idx], preferred=idx), {"typed_by": "choice", "stem": stem}
    m = _YESNO.fullmatch(answer)
    if m:
        return BooleanAnswer(value=m.group(1).lower() == "yes"), {"typed_by": "yes/no"}
    tags = only_tags(answer)
    if tags is not None:
        ids: list[int] = []
        for t in tags:
            if t.number not in ids:
                ids.append(t.number)
        if ORDER_WORDS.search(question):
            return RankingAnswer(ids=ids), {"typed_by": "tags", "names": "tags"}
        return ObjectsAnswer(ids=ids), {"typed_by": "tags", "names": "tags"}
    pairs = _PAIR.findall(answer)
    if pairs and re.fullmatch(r"[\s,;.]*", _PAIR.sub(" ", answer)):
        points = [(float(x), float(y)) for x, y in pairs]
        return (ObjectsAnswer(ids=[], positions_m=points, match_radius_m=COORD_MATCH_RADIUS),
                {"typed_by": "coordinates", "coordinate_unit": "as in the question (DriveLM: pixels)"})
    return TextAnswer(references=[answer]), {"typed_by": "text"}
