"""Optional LLM judge for text answers: a Request asking a 0-100 score, and a strict parser of it."""

from __future__ import annotations

import math
import re

from drivechain.models.base import Message, Request, TextPart

JUDGE_SYSTEM = (
    "You grade answers of a driving assistant. Compare the ANSWER with the REFERENCE for the QUESTION: "
    "same meaning and same facts (objects, directions, actions) score high, contradictions score low. "
    "Reply with exactly one line: 'Score: N' where N is an integer from 0 to 100."
)

_SCORE = re.compile(r"\bscore\b\s*(?:is|of|=|:)?\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?", re.I)
_BARE = re.compile(r"\s*\**\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*(\d+))?\s*\**\s*\.?\s*")


def judge_request(question: str, reference: str, answer: str, *, max_tokens: int = 32, seed: int | None = 0) -> Request:
    """The judge's request (temperature 0) for one answer against its reference."""
    user = f"QUESTION: {question}\nREFERENCE: {reference}\nANSWER: {answer}\nScore:"
    return Request(
        messages=[
            Message(role="system", content=[TextPart(text=JUDGE_SYSTEM)]),
            Message(role="user", content=[TextPart(text=user)]),
        ],
        temperature=0.0,
        max_tokens=max_tokens,
        seed=seed,
        meta={"kind": "judge"},
    )


def _value(num: str, denom: str | None) -> tuple[float | None, str | None]:
    try:
        v = float(num)
    except ValueError:
        return None, f"unreadable score {num!r}"
    if denom is not None:
        if denom not in ("100",):
            return None, f"score on a scale of {denom}, expected 100"
    if not math.isfinite(v) or not 0 <= v <= 100:
        return None, f"score {num} outside 0-100"
    return v, None


def parse_judge(text: str) -> tuple[float | None, str | None]:
    """(score 0-100, None) or (None, reason): 'Score: 30', '**Score:** 85/100' or a bare number only."""
    if not isinstance(text, str) or not text.strip():
        return None, "empty judge reply"
    text = text[:20_000]
    hits = _SCORE.findall(text)
    if hits:
        values = {(n, d or None) for n, d in hits}
        if len({float(n) for n, _ in values}) > 1:
            return None, "several different scores"
        num, denom = hits[-1]
        return _value(num, denom or None)
    m = _BARE.fullmatch(text)
    if m:
        return _value(m.group(1), m.group(2))
    return None, "no 'Score: N' in the judge reply"
