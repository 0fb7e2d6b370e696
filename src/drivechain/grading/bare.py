"""A reply to ONE question -> its typed answer, and how it was read (the parse mode).

Models fine-tuned on driving QA (DriveLM-Agent and the like) answer one question at a time in free
text, not with a JSON object keyed by question id. When a request asks a single question, the
reply is read in this order, and the first that yields a value decides the mode:

- ``json``: a JSON object keyed by the question id (what the prompt asks for);
- ``keyed``: a ``qid: answer`` line;
- ``json_single``: a JSON object with one key (``{"answer": "B"}``);
- ``bare``: the answer in words: "B", "B. steady", "The answer is **B**", "yes.", "vehicles 3 and 5",
  "about 20 m", "none". An explicit answer phrase ("answer is", "Answer:") wins over the first line;
- ``unparsed``: nothing above gave a value (the reason is kept).

Untrusted input: never eval'd, never raises.
"""

from __future__ import annotations

import json
import re
from typing import Any

from drivechain.grading.parse import (
    MAX_REPLY_CHARS,
    Parsed,
    _find_in,
    _json_candidates,
    _load_obj,
    _norm_key,
    parse_value,
)
from drivechain.schema import QA

PARSE_MODES = ("json", "keyed", "json_single", "bare", "unparsed")

# "The answer is: B", "Final answer: yes", "**Answer:** 3, 5", "My answer would be none"
_ANSWER_PHRASE = re.compile(
    r"(?:final\s+answer|answer|prediction|decision)\s*(?:is|would\s+be|will\s+be|should\s+be)?\s*[:=\-]?\s*(.+)", re.I)
_LEADS = re.compile(r"^(?:so|therefore|thus|hence|i\s+think|i\s+would\s+say|i\s+believe|my\s+answer)[,:]?\s+", re.I)


def _strip(s: str) -> str:
    s = s.replace("**", "").replace("`", "").replace("__", "")
    s = re.sub(r"^[\s>#*\-]+", "", s)
    return " ".join(s.split()).strip()


def bare_candidates(text: str) -> list[str]:
    """Answer texts to try, best first: the answer phrase's rest, then the first line."""
    lines = [_strip(x) for x in text.splitlines()]
    lines = [x for x in lines if x]
    out: list[str] = []
    for line in reversed(lines):  # the last explicit answer phrase is the model's final word
        m = _ANSWER_PHRASE.search(line)
        if m and m.group(1).strip():
            out.append(m.group(1).strip())
            break
    if lines:
        out.append(_LEADS.sub("", lines[0]))
    return [_sentence(c) for c in out]


def _sentence(s: str) -> str:
    """The first sentence, without its full stop ("yes. The car..." -> "yes"; "B. steady" stays)."""
    parts = re.split(r"(?<=\.)\s+", s)
    head = parts[0]
    if re.fullmatch(r"[(\[]?[A-Z][)\]]?\.", head) and len(parts) > 1:  # an option letter, then its text
        head = f"{head} {parts[1]}"
    return head.rstrip(".").strip()


def _keyed(text: str, qa: QA) -> tuple[Any, str] | None:
    keys = {_norm_key(qa.qid): qa.qid}
    single: Any = None
    found: dict[str, Any] = {}
    for blob in _json_candidates(text):
        obj = _load_obj(blob)
        _find_in(obj, keys, found)
        if isinstance(obj, dict) and len(obj) == 1:
            single = next(iter(obj.values()))
    if qa.qid in found:
        return found[qa.qid], "json"
    pat = re.compile(r"^[\s*\-#>`\"'\[(]*" + re.escape(qa.qid) + r"[\s*`\"'\])]*[:=\-]+\s*(.+?)\s*$", re.I | re.M)
    hits = pat.findall(text)
    if hits:
        return hits[-1].strip().strip(",").strip("\"'` "), "keyed"
    if single is not None:
        return single, "json_single"
    return None


def parse_one(text: Any, qa: QA) -> tuple[Parsed, str]:
    """The answer to ``qa`` in a reply that answers it alone, and the parse mode (see module doc)."""
    text = text[:MAX_REPLY_CHARS] if isinstance(text, str) else ""
    try:
        keyed = _keyed(text, qa)
        if keyed is not None:
            raw, mode = keyed
            value, err = parse_value(qa, raw)
            raw_s = raw if isinstance(raw, str) else json.dumps(raw, default=str)
            if err is None:
                return Parsed(qid=qa.qid, value=value, raw=raw_s[:2000]), mode
            first_err = err
        else:
            first_err = "no answer"
        for cand in bare_candidates(text):
            value, err = parse_value(qa, cand)
            if err is None:
                return Parsed(qid=qa.qid, value=value, raw=cand[:2000]), "bare"
            first_err = first_err if keyed is not None else err
    except Exception as exc:  # defensive: a parser bug must not kill a run; it is recorded
        return Parsed(qid=qa.qid, unparsed=f"parser error: {type(exc).__name__}"), "unparsed"
    return Parsed(qid=qa.qid, raw=text.strip()[:2000] or None, unparsed=first_err), "unparsed"
