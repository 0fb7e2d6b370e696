"""Model text -> typed values per question id. Untrusted input: never eval'd, never raises.

Typed values: choice -> option index (int); boolean -> bool; number -> float or None ("none");
objects -> list of ids (int) and/or ego-relative positions ((x_m, y_m) tuples); ranking -> list of
ids; text -> str. Anything else is ``Parsed.unparsed`` with the reason.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

from pydantic import BaseModel

from drivechain.interop.drivelm.tags import tags_to_ids
from drivechain.schema import QA

MAX_REPLY_CHARS = 200_000  # longer replies are cut: parsing stays linear and bounded
MAX_JSON_CHARS = 50_000
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

NONE_WORDS = (
    "none", "no collision", "n/a", "na", "null", "nil", "never", "inf", "infinity", "infinite",
    "not applicable", "no vehicle", "no vehicles", "no lead", "no lead vehicle", "no ttc", "nothing",
    "nobody", "no one", "empty", "no objects", "-", "—", "∞", "no such vehicle", "does not exist",
)
_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_YES = {"yes", "true", "y", "yeah", "yep", "correct", "affirmative", "1"}
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_NO = {"no", "false", "n", "nope", "incorrect", "negative", "0"}


class Parsed(BaseModel):
    """One question's parsed answer: ``value`` when understood, else ``unparsed`` says why."""

    qid: str
    value: Any | None = None
    raw: str | None = None
    unparsed: str | None = None


# --------------------------------------------------------------------------- finding answers


def _norm_key(key: Any) -> str:
    return re.sub(r"[\s\"'`\[\]()*]", "", str(key)).lower()


def _json_candidates(text: str) -> list[str]:
    """Balanced {...} spans (outermost), in order of appearance, string-aware."""
    spans: list[str] = []
    depth, start, quote, esc = 0, -1, "", False
    for i, ch in enumerate(text):
        if quote:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote or ch == "\n":
                quote = ""
            continue
        if ch in "\"" and depth > 0:
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                if i + 1 - start <= MAX_JSON_CHARS:
                    spans.append(text[start : i + 1])
    return spans


def _load_obj(blob: str) -> Any:
    """JSON, then tolerant variants (single quotes, trailing commas, Python literals); None if none."""
    try:
        return json.loads(blob)
    except (ValueError, RecursionError):
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", blob)
    try:
        return json.loads(fixed)
    except (ValueError, RecursionError):
        pass
    py = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", blob)))
    for cand in (blob, py):
        try:
            return ast.literal_eval(cand)  # literals only: never executes code
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
            continue
    return None


def _find_in(obj: Any, keys: dict[str, str], out: dict[str, Any], depth: int = 0) -> None:
    if not isinstance(obj, dict) or depth > 3:
        return
    for k, v in obj.items():
        nk = _norm_key(k)
        if nk in keys:
            out[keys[nk]] = v
        elif isinstance(v, dict):
            _find_in(v, keys, out, depth + 1)


def find_answers(text: str, qids: list[str]) -> dict[str, Any]:
    """Raw answer per qid: JSON objects (later ones win), then ``qid: answer`` lines."""
    keys = {_norm_key(q): q for q in qids}
    found: dict[str, Any] = {}
    for blob in _json_candidates(text):
        obj = _load_obj(blob)
        _find_in(obj, keys, found)
    for qid in qids:
        if qid in found:
            continue
        pat = re.compile(r"^[\s*\-#>`\"'\[(]*" + re.escape(qid) + r"[\s*`\"'\])]*[:=\-]+\s*(.+?)\s*$", re.I | re.M)
        hits = pat.findall(text)
        if hits:
            found[qid] = hits[-1].strip().strip(",").strip("\"'` ")
    if len(qids) == 1 and qids[0] not in found:
        # a lone question: the whole reply may be the answer ("The answer is (B).")
        objs = [o for o in (_load_obj(b) for b in _json_candidates(text)) if isinstance(o, dict)]
        single = [o for o in objs if len(o) == 1]
        if single:
            found[qids[0]] = next(iter(single[-1].values()))
        elif text.strip():
            found[qids[0]] = text.strip()
    return found


# --------------------------------------------------------------------------- typed values


def _unwrap(raw: Any) -> Any:
    if isinstance(raw, dict):
        for k in ("answer", "value", "choice", "option", "letter", "ids", "vehicles", "result"):
            if k in raw:
                return raw[k]
    return raw


def _clean(s: str) -> str:
    return " ".join(s.replace("**", "").replace("`", "").split())


def _is_none_word(s: str) -> bool:
    t = re.sub(r"[.!\s\"'()\[\]]+$", "", s.strip().lower()).strip("\"' ([")
    return t in NONE_WORDS or any(t.startswith(w + " ") or t.startswith(w + ",") for w in NONE_WORDS if len(w) > 2)


def _alnum(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def parse_choice(raw: Any, options: list[str]) -> tuple[Any, str | None]:
    """Option index from a letter, "(B)", "The answer is B", or the option's own text."""
    raw = _unwrap(raw)
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not isinstance(raw, str):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            for i, o in enumerate(options):
                if _alnum(o) == _alnum(str(raw)):
                    return i, None
            return None, "a number where an option letter was asked"
        return None, f"no option in a {type(raw).__name__}"
    s = _clean(raw)
    n = len(options)

    def letter(ch: str) -> tuple[Any, str | None]:
        i = LETTERS.index(ch.upper())
        return (i, None) if i < n else (None, f"letter {ch.upper()} out of range (A-{LETTERS[n - 1]})")

    m = re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?[.:)]?", s)
    if m and (m.group(1).isupper() or len(s) <= 3):
        return letter(m.group(1))
    for i, o in enumerate(options):
        if _alnum(o) and _alnum(o) == _alnum(s):
            return i, None
    m = re.match(r"^[(\[]?([A-Z])(?:[.):\]]|\s*[-–]\s)", s)
    if m:
        return letter(m.group(1))
    m = re.search(r"\b(?:answer|option|choice|pick|choose|select)\w*\s*(?:is|would be|:)?\s*[:\-]?\s*[(\[]?([A-Z])\b[)\]]?", s, re.I)
    if m and (m.group(1).isupper() or "(" in m.group(0)):
        return letter(m.group(1))
    low = s.lower()
    hits = [i for i, o in enumerate(options) if o.strip() and re.search(r"(?<![\w])" + re.escape(o.strip().lower()) + r"(?![\w])", low)]
    # an option text inside another (e.g. "LEFT" in "LANE_LEFT") does not count twice
    hits = [i for i in hits if not any(j != i and options[i].lower() in options[j].lower() and j in hits for j in hits)]
    if len(hits) == 1:
        return hits[0], None
    # the answer is a fragment of exactly one option ("left" for "change to the left lane")
    frag = _alnum(s)
    inside = [i for i, o in enumerate(options) if len(frag) >= 3 and frag in _alnum(o)]
    if not hits and len(inside) == 1:
        return inside[0], None
    paren = set(re.findall(r"\(([A-Z])\)", s))
    if len(paren) == 1:
        return letter(paren.pop())
    if len(hits) > 1:
        return None, "names several options"
    return None, "no option letter or option text"


def parse_boolean(raw: Any) -> tuple[Any, str | None]:
    """True/False from yes/no/true/false in words (first word wins, else a unique mention)."""
    raw = _unwrap(raw)
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if isinstance(raw, bool):
        return raw, None
    if isinstance(raw, (int, float)) and raw in (0, 1):
        return bool(raw), None
    if not isinstance(raw, str):
        return None, f"no yes/no in a {type(raw).__name__}"
    words = re.findall(r"[a-z0-9]+", raw.lower())
    if not words:
        return None, "empty answer"
    if words[0] in _YES:
        return True, None
    if words[0] in _NO:
        return False, None
    yes = any(w in ("yes", "true") for w in words)
    no = any(w in ("no", "false") for w in words)
    if yes != no:
        return yes, None
    return None, "both yes and no" if yes else "no yes/no"


def parse_number(raw: Any) -> tuple[Any, str | None]:
    """A float (first number in the text, units ignored) or None for "none"/"no collision"/"N/A"."""
    raw = _unwrap(raw)
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if raw is None:
        return None, None
    if isinstance(raw, bool):
        return None, "true/false where a number was asked"
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            return (None, None) if raw > 0 else (None, "not a finite number")
        return float(raw), None
    if not isinstance(raw, str):
        return None, f"no number in a {type(raw).__name__}"
    s = _clean(raw)
    if _is_none_word(s):
        return None, None
    m = _NUM.search(s.replace(",", "") if re.search(r"\d,\d{3}\b", s) else s)
    if not m:
        words = [w for w in re.findall(r"[a-z]+", s.lower()) if w in _WORD_NUMBERS]
        if len(words) == 1:
            return float(_WORD_NUMBERS[words[0]]), None
        if re.search(r"\b(none|no collision|n/a|never|infinite|not applicable)\b", s.lower()):
            return None, None
        return None, "no number"
    try:
        value = float(m.group(0))
    except (ValueError, OverflowError):
        return None, "unreadable number"
    if not math.isfinite(value):
        return None, "not a finite number"
    return value, None


def _ids_from_text(s: str) -> tuple[list[Any], str | None]:
    s = tags_to_ids(s)  # DriveLM-style tags <c1,CAM_BACK,x,y> and bare "c1" name object 1
    items: list[Any] = []
    for m in re.finditer(r"\(\s*([-+]?\d+(?:\.\d+)?)\s*(?:m\s*)?,\s*([-+]?\d+(?:\.\d+)?)\s*(?:m\s*)?\)", s):
        items.append((float(m.group(1)), float(m.group(2))))
    rest = re.sub(r"\(\s*[-+]?\d+(?:\.\d+)?\s*(?:m\s*)?,\s*[-+]?\d+(?:\.\d+)?\s*(?:m\s*)?\)", " ", s)
    nums = re.findall(r"[-+]?\d+(?:\.\d+)?", rest)
    for t in nums:
        if "." in t or t.startswith("-"):
            return [], f"{t!r} is not a vehicle number"
        items.append(int(t))
    return items, None


def parse_ids(raw: Any, positions: bool = True) -> tuple[Any, str | None]:
    """Vehicle ids (and ego-relative (x, y) positions) from "vehicle 3, v5", "[3, 5]", "none"."""
    raw = _unwrap(raw)
    if raw is None:
        return [], None
    if isinstance(raw, bool):
        return None, "true/false where vehicles were asked"
    if isinstance(raw, (int, float)) or (isinstance(raw, dict) and "x" in raw and "y" in raw):
        raw = [raw]
    items: list[Any] = []
    if isinstance(raw, (list, tuple)):
        if len(raw) == 2 and all(isinstance(v, float) for v in raw) and positions:
            raw = [raw]
        for v in raw:
            v = _unwrap(v)
            if isinstance(v, dict) and "x" in v and "y" in v:
                v = [v["x"], v["y"]]
            if isinstance(v, bool):
                return None, "true/false inside a vehicle list"
            if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
                if v < 0:
                    return None, f"{v} is not a vehicle number"
                items.append(int(v))
            elif isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v):
                items.append((float(v[0]), float(v[1])))
            elif isinstance(v, str):
                if _is_none_word(v):
                    continue
                sub, err = _ids_from_text(v)
                if err or not sub:
                    return None, err or f"no vehicle number in {v[:40]!r}"
                items += sub
            else:
                return None, f"unreadable vehicle entry {str(v)[:40]!r}"
    elif isinstance(raw, str):
        s = _clean(raw)
        if _is_none_word(s) or re.fullmatch(r"[\[\]{}()\s]*", s):
            return [], None
        items, err = _ids_from_text(s)
        if err:
            return None, err
        if not items:
            return None, "no vehicle numbers"
    else:
        return None, f"no vehicles in a {type(raw).__name__}"
    if not positions and any(isinstance(v, tuple) for v in items):
        return None, "positions where a ranking of vehicle numbers was asked"
    out: list[Any] = []
    for v in items:
        if v not in out:
            out.append(v)
    return out, None


def parse_value(qa: QA, raw: Any) -> tuple[Any, str | None]:
    """Typed value of one raw answer for this question, or (None, reason)."""
    a = qa.answer
    if a.type == "choice":
        return parse_choice(raw, a.options)
    if a.type == "boolean":
        return parse_boolean(raw)
    if a.type == "number":
        return parse_number(raw)
    if a.type == "objects":
        return parse_ids(raw, positions=True)
    if a.type == "ranking":
        return parse_ids(raw, positions=False)
    raw = _unwrap(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, "empty answer"
    return (raw.strip() if isinstance(raw, str) else json.dumps(raw)), None


def parse_reply(text: str, targets: list[QA]) -> dict[str, Parsed]:
    """Parse a model's reply for every target question; never raises."""
    out: dict[str, Parsed] = {}
    text = text if isinstance(text, str) else ""
    text = text[:MAX_REPLY_CHARS]
    try:
        found = find_answers(text, [q.qid for q in targets])
    except Exception as exc:  # defensive: a parser bug must not kill a run; it is recorded
        found = {}
        err = f"parser error: {type(exc).__name__}"
        return {q.qid: Parsed(qid=q.qid, unparsed=err) for q in targets}
    for qa in targets:
        if qa.qid not in found:
            out[qa.qid] = Parsed(qid=qa.qid, unparsed="no answer for this question id")
            continue
        raw = found[qa.qid]
        raw_s = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        try:
            value, err = parse_value(qa, raw)
        except Exception as exc:  # defensive, as above
            value, err = None, f"parser error: {type(exc).__name__}"
        out[qa.qid] = Parsed(qid=qa.qid, value=None if err else value, raw=raw_s[:2000], unparsed=err)
    return out
