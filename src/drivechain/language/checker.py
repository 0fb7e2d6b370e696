"""The paraphrase checker: a reworded question or explanation is kept only if it says the same thing.

A template and a candidate rewording are both reduced to the *facts* a grader or a model relies on:
the vehicles named by number, every number with its unit, option letters, action names and the
answer options quoted in the text, lane sides (left/right), directions (ahead/behind), negations,
time horizons ("now", "next 3 s"), bounds ("within", "at least"), conditions ("if", "unless") and
the kinds of road users mentioned. The candidate is kept only when its facts equal the template's:
nothing dropped, nothing changed, nothing added. The rules are deliberately strict: a rejected good
paraphrase costs one variant, an accepted wrong one would change what the question asks.

A rewording must also stay on topic: it reuses at least ``MIN_OVERLAP`` of the template's content
words (a model's preamble or an unrelated sentence is rejected as ``unrelated``).

Every rejection carries reasons (``REASONS``); ``check`` returns them in that order, so a caller can
count each rejected variant once by its first reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

REASONS = (
    "empty", "malformed", "duplicate", "unrelated", "vehicle", "number", "horizon", "option", "side", "direction",
    "negation", "condition", "bound", "added_entity",
)

_UNITS = {
    "m/s^2": "m/s^2", "m/s²": "m/s^2", "m/s2": "m/s^2",
    "metres per second": "m/s", "meters per second": "m/s", "m/s": "m/s", "mps": "m/s",
    "km/h": "km/h", "kph": "km/h", "kmh": "km/h", "mph": "mph",
    "metres": "m", "meters": "m", "metre": "m", "meter": "m", "m": "m",
    "seconds": "s", "second": "s", "secs": "s", "sec": "s", "s": "s",
    "percent": "%", "%": "%", "lanes": "lane", "lane": "lane",
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}

# Vehicle references: "vehicle 3", "car #3", "vehicles 3 and 5", "vehicles 1, 2 or 4".
_NOT_QUANTITY = rf"(?![\d.])(?!\s*-?\s*(?:{_UNIT_RE})(?![a-z]))"  # "vehicle 1, 13 m ahead": 13 is a distance
_VEHICLE_RE = re.compile(
    r"\b(?:vehicles?|cars?|trucks?|agents?|ids?|marks?|objects?)\s*(?:no\.\s*|number\s+|#\s*)?"
    rf"(\d+{_NOT_QUANTITY}(?:\s*(?:,\s*(?:and\s+|or\s+)?|\band\b|\bor\b|&)\s*(?:(?:vehicle|car)s?\s*)?#?\s*\d+{_NOT_QUANTITY})*)"
    r"|#\s*(\d+)\b"
)
_NUMBER_RE = re.compile(rf"(?<![\w.])([+-]?\d+(?:\.\d+)?)(?:\s*-?\s*({_UNIT_RE})(?![a-z]))?")
_SPELLED_RE = re.compile(rf"\b({'|'.join(_WORD_NUMBERS)})[\s-]+({_UNIT_RE})(?![a-z])")
_ONE_SECOND_RE = re.compile(r"\b(?:a|an|one|(?:the\s+)?next)\s+second\b(?!\s+(?:vehicle|car|lane))")
_ACTION_RE = re.compile(r"\b[A-Z]{2,}(?:_[A-Z]+)*\b")
_LETTER_RE = re.compile(r"(?:^|[\s(\[])([A-H])(?:[.):\]])(?=\s|$)")

_NOW = ("right now", "at the moment", "at this moment", "at present", "currently", "now")
_SIDES = re.compile(r"\b(leftmost|rightmost|left|right)\b")
_DIRECTIONS = (("in front of", "ahead"), ("in front", "ahead"), ("ahead", "ahead"), ("forward", "ahead"),
               ("behind", "behind"), ("in back of", "behind"), ("to the rear", "behind"), ("backward", "behind"))
_NEGATION_RE = re.compile(r"\b(not|no|never|without|nobody|nothing|neither|nor)\b")
_CONDITION_RE = re.compile(r"\b(if|unless|assuming|provided|supposing|given that|in case|except)\b")
_BOUNDS = (("no more than", "at most"), ("up to", "at most"), ("at most", "at most"), ("maximum of", "at most"),
           ("no less than", "at least"), ("at least", "at least"), ("minimum of", "at least"),
           ("more than", "above"), ("greater than", "above"), ("farther than", "above"), ("beyond", "above"),
           ("less than", "below"), ("fewer than", "below"), ("closer than", "below"), ("within", "below"))
_ENTITIES = {"pedestrian": "pedestrian", "person": "pedestrian", "people": "pedestrian", "cyclist": "cyclist",
             "bicycle": "cyclist", "bike": "cyclist", "motorcycle": "motorcycle", "motorbike": "motorcycle",
             "truck": "truck", "lorry": "truck", "bus": "bus", "traffic light": "signal", "signal": "signal",
             "stop sign": "sign", "sign": "sign", "crosswalk": "crossing", "crossing": "crossing",
             "animal": "animal", "obstacle": "obstacle", "cone": "obstacle", "emergency": "emergency"}
_ENTITY_RE = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(_ENTITIES, key=len, reverse=True)) + r")(?:e?s)?\b")


@dataclass(frozen=True)
class Facts:
    """What a text commits to, in comparable form."""

    vehicles: frozenset[int]
    numbers: Counter  # (value, unit) -> count; time numbers (unit s) are the horizon
    actions: frozenset[str]
    letters: frozenset[str]
    options: frozenset[str]
    none: bool  # "answer none if ...": the none answer is an option too
    sides: frozenset[str]
    side_order: tuple[str, ...]  # left/right in reading order, repeats collapsed
    directions: frozenset[str]
    negations: int
    now: bool
    conditions: int
    bounds: frozenset[str]
    entities: frozenset[str]


def _normalise(text: str) -> str:
    text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
            .replace("\u2013", "-").replace("\u2014", "-").replace("\u2212", "-"))
    text = re.sub(r"\bcan't\b", "can not", text, flags=re.I)
    text = re.sub(r"\bwon't\b", "will not", text, flags=re.I)
    text = re.sub(r"\bcannot\b", "can not", text, flags=re.I)
    return re.sub(r"n't\b", " not", text)


def _value(raw: str) -> str:
    value = float(raw)
    return f"{0.0 if value == 0 else value:g}"  # "+0.0", "-0" and "0" are one number


def _collapse(words: list[str]) -> tuple[str, ...]:
    return tuple(w for i, w in enumerate(words) if i == 0 or words[i - 1] != w)


def _phrases(text: str, table: Sequence[tuple[str, str]]) -> tuple[set[str], str]:
    """Canonical names of the phrases found (longest first); the text with them blanked."""
    found: set[str] = set()
    for phrase, name in table:
        pattern = re.compile(rf"\b{re.escape(phrase)}\b")
        if pattern.search(text):
            found.add(name)
            text = pattern.sub(" ", text)
    return found, text


def facts(text: str, options: Sequence[str] = ()) -> Facts:
    """The facts of a question or explanation; ``options`` are the answer options to look for."""
    raw = _normalise(text)
    actions = frozenset(_ACTION_RE.findall(raw))
    letters = frozenset(_LETTER_RE.findall(raw))
    low = raw.lower()
    quoted = frozenset(o.lower() for o in options if o and re.search(rf"(?<!\w){re.escape(o.lower())}(?!\w)", low))
    vehicles: set[int] = set()
    for m in _VEHICLE_RE.finditer(low):
        vehicles.update(int(d) for d in re.findall(r"\d+", m.group(1) or m.group(2)))
    rest = _VEHICLE_RE.sub(" ", low)
    rest = _SPELLED_RE.sub(lambda m: f"{_WORD_NUMBERS[m.group(1)]} {m.group(2)}", rest)
    rest = _ONE_SECOND_RE.sub(" 1 s", rest)
    numbers: Counter = Counter()
    for m in _NUMBER_RE.finditer(rest):
        numbers[(_value(m.group(1)), _UNITS.get(m.group(2) or "", ""))] += 1
    now_found, rest_now = _phrases(low, [(p, "now") for p in _NOW])
    directions, _ = _phrases(low, _DIRECTIONS)
    bounds, _ = _phrases(low, _BOUNDS)
    return Facts(
        vehicles=frozenset(vehicles),
        numbers=numbers,
        actions=actions,
        letters=letters,
        options=quoted,
        none=bool(re.search(r"\bnone\b", low)),
        sides=frozenset(_SIDES.findall(rest_now)),  # "right now" is not a side
        side_order=_collapse(_SIDES.findall(rest_now)),
        directions=frozenset(directions),
        negations=len(_NEGATION_RE.findall(low)),
        now=bool(now_found),
        conditions=len(_CONDITION_RE.findall(low)),
        bounds=frozenset(bounds),
        entities=frozenset(_ENTITIES[m.group(1)] for m in _ENTITY_RE.finditer(low)),
    )


def _values(numbers: Counter) -> Counter:
    out: Counter = Counter()
    for (value, _), n in numbers.items():
        out[value] += n
    return out


def _units(numbers: Counter) -> set[str]:
    return {unit for _, unit in numbers if unit}


# Share of the template's content words (by their first 4 letters) a rewording must still use.
MIN_OVERLAP = 0.3
_STOP = frozenset("about after again also among answer does from have into just more most much only other over "
                  "same some such than that their them then there these they this those very what when where "
                  "which while will with would your".split())


def _stems(text: str) -> set[str]:
    return {w[:4] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP}


def _overlap(template: str, variant: str) -> float:
    stems = _stems(template)
    return 1.0 if not stems else len(stems & _stems(variant)) / len(stems)


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def check(template: str, variant: str, options: Sequence[str] = ()) -> tuple[str, ...]:
    """Why ``variant`` does not say what ``template`` says (reasons in ``REASONS`` order); () = kept."""
    if not variant or not variant.strip():
        return ("empty",)
    if "\n" in variant.strip() or len(variant) > 3 * len(template) + 80 or any(c in variant and c not in template for c in "{}<>`*"):
        return ("malformed",)
    if _squash(variant) == _squash(template):
        return ("duplicate",)
    if variant.rstrip().endswith(":") or _overlap(template, variant) < MIN_OVERLAP:
        return ("unrelated",)  # a preamble ("Here are three rewordings:") or a text about something else
    a, b = facts(template, options), facts(variant, options)
    reasons = []
    if a.vehicles != b.vehicles:
        reasons.append("vehicle")
    # Values are compared as a multiset and units as a set: "21.0 to 18.1 m/s" may become
    # "21.0 m/s to 18.1 m/s", but "30 m" may not become "30 s". Values said in seconds are the horizon.
    time_values = {v for v, u in (*a.numbers, *b.numbers) if u == "s"}
    values_a, values_b = _values(a.numbers), _values(b.numbers)
    plain_a = Counter({v: n for v, n in values_a.items() if v not in time_values})
    plain_b = Counter({v: n for v, n in values_b.items() if v not in time_values})
    if plain_a != plain_b or _units(a.numbers) != _units(b.numbers):
        reasons.append("number")
    if values_a - plain_a != values_b - plain_b or (a.now and not b.now):
        reasons.append("horizon")
    if a.actions != b.actions or a.letters != b.letters or not a.options <= b.options or a.none != b.none:
        reasons.append("option")
    # With both sides named, their order carries the pairing ("LANE_LEFT (change to the left lane)").
    if a.sides != b.sides or (len(a.sides) > 1 and a.side_order != b.side_order):
        reasons.append("side")
    if a.directions != b.directions:
        reasons.append("direction")
    if a.negations != b.negations:
        reasons.append("negation")
    if a.conditions != b.conditions:
        reasons.append("condition")
    if a.bounds != b.bounds:
        reasons.append("bound")
    if not b.entities <= a.entities:
        reasons.append("added_entity")
    return tuple(r for r in REASONS if r in reasons)
