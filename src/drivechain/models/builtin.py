"""Built-in models: oracle (upper bound), heuristic (prompt-only rules), constant and random (floors).

All answer IN TEXT (a JSON object keyed by qid) and go through the same prompt, parser and graders
as any model. Only the oracle reads ``request.meta["oracle"]``; the others read the prompt text alone.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from typing import Any, Callable

from drivechain.errors import ConfigError
from drivechain.models.base import Message, Request, Response, Usage
from drivechain.prompts import LETTERS, PromptQuestion, PromptView, parse_prompt
from drivechain.grading.parse import parse_boolean, parse_ids, parse_number

BUILTINS = ("oracle", "heuristic", "constant", "random")


def _user_text(request: Request) -> str:
    """The prompt's user text (the system message holds only fixed conventions)."""
    return "\n".join(m.text() for m in request.messages if isinstance(m, Message) and m.role == "user")


class _Builtin:
    """Shared plumbing: measured latency, zero usage, faults returned as ``Response.error``."""

    def __init__(self, name: str, reply: Callable[[Request], str]) -> None:
        self.name = name
        self._reply = reply

    async def respond(self, request: Request) -> Response:
        """Answer one request in text; a request the built-in cannot answer gives ``error``."""
        t0 = time.perf_counter()
        try:
            text = self._reply(request)
        except ValueError as exc:
            return Response(error=f"{self.name}: {exc}", latency_s=time.perf_counter() - t0, model=self.name)
        return Response(text=text, usage=Usage(), latency_s=time.perf_counter() - t0, model=self.name)

    async def aclose(self) -> None:
        """Nothing to release."""


# --------------------------------------------------------------------------- oracle


def _oracle_reply(request: Request) -> str:
    answers = request.meta.get("oracle")
    if not isinstance(answers, dict):
        raise ValueError("request.meta['oracle'] is missing: build requests with drivechain.prompts.build_request")
    return json.dumps(answers, ensure_ascii=False)


# --------------------------------------------------------------------------- constant


def _constant_value(q: PromptQuestion, fixed: str | None) -> str:
    if fixed is not None:
        return fixed
    return {"choice": "A", "boolean": "no", "number": "0", "objects": "none", "ranking": "none"}.get(
        q.type, "keep the lane"
    )


# --------------------------------------------------------------------------- random


def _vehicle_numbers(text: str) -> list[int]:
    nums: list[int] = []
    for m in re.finditer(r"\bvehicles? (\d+)\b", text, flags=re.I):
        if int(m.group(1)) not in nums:
            nums.append(int(m.group(1)))
    return nums


def _random_value(q: PromptQuestion, rng: random.Random, vehicles: list[int]) -> str:
    if q.type == "choice":
        return LETTERS[rng.randrange(max(1, len(q.options)))]
    if q.type == "boolean":
        return rng.choice(["yes", "no"])
    if q.type == "number":
        if rng.random() < 0.2:
            return "none"
        top = {"s": 10.0, "m/s": 35.0, "m": 80.0}.get(q.unit, 50.0)
        return f"{rng.uniform(0.0, top):.1f} {q.unit}".strip()
    pool = vehicles or list(range(1, 7))
    if q.type == "objects":
        k = rng.randint(0, min(3, len(pool)))
        picked = rng.sample(pool, k)
        return ", ".join(map(str, picked)) if picked else "none"
    if q.type == "ranking":
        return " > ".join(map(str, rng.sample(pool, len(pool))))
    return " ".join(rng.sample(q.question.split() or ["ok"], min(5, len(q.question.split() or ["ok"]))))


# --------------------------------------------------------------------------- heuristic


class Facts:
    """What the heuristic believes, from upstream answers in the prompt (defaults otherwise)."""

    def __init__(self, view: PromptView) -> None:
        self.known: dict[str, str] = {qid: ans for qid, _, ans in view.upstream}
        self.left_free = self._bool("free", "left")
        self.right_free = self._bool("free", "right")
        self.cut_in_ids = [
            int(k.rsplit(".v", 1)[1])
            for k, v in self.known.items()
            if k.startswith("pred.cut_in.v") and k.rsplit(".v", 1)[1].isdigit() and parse_boolean(v)[0] is True
        ]
        self.near_ids = self._ids("pred.near_ego")
        lead = self._ids("per.lead_vehicle")
        self.lead: int | None = lead[0] if lead else None
        ttc = parse_number(self.known.get("pred.ttc_lead", "none"))[0]
        self.ttc_short = ttc is not None and ttc < 4.0
        dist = parse_number(self.known["per.lead_distance"])[0] if "per.lead_distance" in self.known else None
        self.lead_dist_m: float | None = dist
        self.vehicles: list[int] = []
        for ans in self.known.values():
            ids, err = parse_ids(ans, positions=False)
            if not err and ids:
                self.vehicles += [i for i in ids if i not in self.vehicles]

    def _bool(self, *words: str) -> bool | None:
        """The yes/no upstream answer whose qid contains all these words (None when not given)."""
        for k, v in self.known.items():
            if all(w in k.lower() for w in words):
                return parse_boolean(v)[0]
        return None

    def _ids(self, qid: str) -> list[int]:
        ids, err = parse_ids(self.known.get(qid, "none"), positions=False)
        return [] if err else list(ids)

    @property
    def lead_close(self) -> bool:
        """A lead vehicle within 25 m (a lead with unknown distance counts as close)."""
        if self.lead_dist_m is not None:
            return self.lead_dist_m < 25.0
        return self.lead is not None

    @property
    def danger(self) -> bool:
        """A threat: a predicted cut-in or a short time to collision with the lead."""
        return bool(self.cut_in_ids or self.ttc_short)

    def dangerous(self) -> list[int]:
        """Vehicles that matter most: cut-ins, then near ones, then a close lead."""
        out: list[int] = []
        lead = [self.lead] if self.lead is not None and self.lead_close else []
        for v in [*self.cut_in_ids, *self.near_ids, *lead]:
            if v not in out:
                out.append(v)
        return out

    def action(self) -> str:
        """Rules: a close or closing lead -> overtake on a free side, else brake; a cut-in -> brake;
        a far lead or none -> keep, speeding up when the lead is far."""
        if self.lead_close or self.ttc_short:
            if self.left_free:
                return "LANE_LEFT"
            if self.right_free:
                return "LANE_RIGHT"
            return "SLOWER"
        if self.cut_in_ids:
            return "SLOWER"
        if self.lead_dist_m is not None and self.lead_dist_m > 40.0:
            return "FASTER"
        return "IDLE"


_BEH_WORDS = {
    "SLOWER": ("decel", "slow", "brak", "yield"),
    "FASTER": ("accel", "fast", "speed up"),
    "IDLE": ("keep", "maintain", "constant", "straight", "idle", "cruise"),
    "LANE_LEFT": ("left",),
    "LANE_RIGHT": ("right",),
}


def _pick(options: list[str], words: tuple[str, ...]) -> int | None:
    for i, o in enumerate(options):
        if any(w in o.lower() for w in words):
            return i
    return None


def _heuristic_value(q: PromptQuestion, f: Facts) -> str:
    qid = q.qid.lower()
    act = f.action()
    if q.type == "choice":
        if qid.startswith("beh."):
            # lateral questions follow lane changes, longitudinal ones speed changes; else keep
            key = act if act.startswith("LANE") == ("lateral" in qid) else "IDLE"
            idx = _pick(q.options, _BEH_WORDS[key])
        else:
            idx = _pick(q.options, (act.lower(),))
        if idx is None:
            idx = _pick(q.options, _BEH_WORDS["IDLE"])
        return LETTERS[idx or 0]
    if q.type == "boolean":
        if qid.startswith("plan.safe."):
            action = q.qid.split(".")[-1].upper()
            ok = {
                "LANE_LEFT": bool(f.left_free),
                "LANE_RIGHT": bool(f.right_free),
                "IDLE": not f.danger,
                "FASTER": not (f.danger or f.lead_close),
                "SLOWER": True,
            }.get(action, False)
            return "yes" if ok else "no"
        if "danger" in qid:
            return "yes" if f.danger else "no"
        if qid in f.known:
            return f.known[qid]
        if "free" in qid:
            return "yes"
        return "no"
    if q.type == "number":
        if "ttc" in qid:
            return "3 s" if f.lead_close or f.danger else "none"
        return {"s": "none", "m/s": "25 m/s", "m": "30 m"}.get(q.unit, "0")
    if q.type == "objects":
        if "danger" in qid:
            vs = f.dangerous()[:1]
        elif qid in f.known:
            return f.known[qid]
        else:
            vs = []
        return ", ".join(map(str, vs)) if vs else "none"
    if q.type == "ranking":
        vs = f.dangerous() + [v for v in f.vehicles if v not in f.dangerous()]
        return " > ".join(map(str, vs[:5])) if vs else "none"
    return {"SLOWER": "Slow down", "IDLE": "Keep lane and speed"}.get(act, f"Do {act}") + "."


# --------------------------------------------------------------------------- factory


def _seed_of(arg: str | None, options: dict[str, Any]) -> int:
    raw = arg if arg is not None else options.get("seed", 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"random model: seed {raw!r} is not an integer; use random:SEED") from None


def make_builtin(name: str, arg: str | None = None, **options: Any) -> _Builtin:
    """A built-in model by name: oracle, heuristic, constant[:REPLY], random[:SEED] (or seed=...)."""
    if name == "oracle":
        return _Builtin("oracle", _oracle_reply)
    if name == "heuristic":

        def heuristic(req: Request) -> str:
            view = parse_prompt(_user_text(req))
            facts = Facts(view)
            return json.dumps({q.qid: _heuristic_value(q, facts) for q in view.targets})

        return _Builtin("heuristic", heuristic)
    if name == "constant":
        fixed = arg if arg is not None else options.get("reply")

        def constant(req: Request) -> str:
            view = parse_prompt(_user_text(req))
            return json.dumps({q.qid: _constant_value(q, fixed) for q in view.targets})

        return _Builtin("constant" if fixed is None else f"constant:{fixed}", constant)
    if name == "random":
        seed = _seed_of(arg, options)

        def rand(req: Request) -> str:
            text = _user_text(req)
            digest = hashlib.sha256(f"{seed}:{req.key('random')}".encode()).hexdigest()
            rng = random.Random(int(digest[:16], 16))
            view = parse_prompt(text)
            vehicles = _vehicle_numbers(text)
            return json.dumps({q.qid: _random_value(q, rng, vehicles) for q in view.targets})

        return _Builtin(f"random:{seed}", rand)
    raise ConfigError(f"unknown built-in model {name!r}; use one of {', '.join(BUILTINS)}")
