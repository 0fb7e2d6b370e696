"""How a step's questions are split into requests (``--ask``), and the parse-rate summary block.

- ``all``: one request for all questions of the step (as the prompt layout was designed);
- ``stage``: one request per stage (a planning step asks planning, then behavior, separately);
- ``one``: one request per question, with the same upstream evidence, asking for the answer alone
  (how DriveLM-Agent-style models are trained and how lmms-eval / VLMEvalKit ask). The reply is read
  by ``grading.bare.parse_one`` and every row records its ``parse_mode``.

Rows of ``all`` / ``stage`` requests record ``by_id`` (an answer found under its question id) or
``unparsed``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from drivechain.schema import QA, FrameRecord

ASK_MODES = ("all", "stage", "one")


def parse_links(text: str | None) -> tuple[str, ...] | None:
    """``Per->Pred,Pred->Plan`` -> the links in that order (None: every link); an unknown link is a ConfigError."""
    from drivechain.errors import ConfigError
    from drivechain.evaluation.protocols import LINKS

    if text is None or not text.strip():
        return None
    names = [n.strip().replace(" ", "") for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in LINKS]
    if bad:
        raise ConfigError(f"--links: unknown link(s) {', '.join(bad)}; valid links: {', '.join(LINKS)}")
    return tuple(dict.fromkeys(names))


def split_targets(targets: list[QA], mode: str) -> list[list[QA]]:
    """The groups of questions asked together under ``mode``, in graph order."""
    if mode == "one":
        return [[qa] for qa in targets]
    if mode == "stage":
        groups: dict[str, list[QA]] = {}
        for qa in targets:
            groups.setdefault(qa.stage, []).append(qa)
        return list(groups.values())
    return [list(targets)] if targets else []


def _bare_parse(text: str, targets: list[QA], modes: dict[str, str]) -> dict[str, Any]:
    from drivechain.grading.bare import parse_one

    parsed, mode = parse_one(text, targets[0])
    modes[targets[0].qid] = mode
    return {targets[0].qid: parsed}


async def ask_targets(record: FrameRecord, targets: list[QA], opts: Any, ask: Any, *, image: bool,
                      upstream: list[tuple[QA, str]], base: dict[str, Any],
                      ) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """Ask ``targets`` as ``opts.ask`` says (concurrently); graded rows, parses, and whether all succeeded."""
    from drivechain.evaluation.protocols import grade_reply
    from drivechain.prompts import build_request

    mode = getattr(opts, "ask", "all")
    groups = split_targets(targets, mode)

    async def one(group: list[QA]) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        bare = mode == "one"
        req = build_request(
            record, group, image=image, upstream=list(upstream), image_root=opts.image_root, history=opts.history,
            temperature=opts.temperature, max_tokens=opts.max_tokens, seed=opts.seed, cameras=opts.cameras,
            bare=bare,
        )
        out = await ask(req)
        modes: dict[str, str] = {}
        parse = (lambda text, tg: _bare_parse(text, tg, modes)) if bare else None
        rows, parsed = grade_reply(record, group, out, base, parse=parse)
        for r in rows:
            p = parsed.get(r["qid"])
            if bare and r["qid"] in modes:
                r["parse_mode"] = modes[r["qid"]]
            else:
                r["parse_mode"] = "by_id" if p is not None and not p.unparsed else "unparsed"
            r["ask"] = mode
        return rows, parsed, out.ok

    parts = await asyncio.gather(*(one(g) for g in groups))
    rows = [r for p in parts for r in p[0]]
    parsed = {k: v for p in parts for k, v in p[1].items()}
    return rows, parsed, all(p[2] for p in parts)


class AskCounts:
    """Running counts of how replies were read, folded frame by frame (request keys are per frame)."""

    def __init__(self) -> None:
        self.asked = 0  # answers of sent requests that are graded (not ambiguous)
        self.ok = 0  # of those, answers of successful requests
        self.parsed = 0
        self.requests = 0
        self.by_mode: dict[str, int] = {}
        self.per_ask: dict[str, dict[str, int]] = {}

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Fold rows whose request keys do not recur in later calls (one frame's rows, or a whole run's)."""
        keys: set[str] = set()
        ask_keys: dict[str, set[str]] = {}
        for r in rows:
            if "parse_mode" not in r or not r.get("key"):
                continue
            keys.add(r["key"])
            a = self.per_ask.setdefault(r.get("ask", "all"), {"answers": 0, "parsed": 0, "requests": 0})
            ask_keys.setdefault(r.get("ask", "all"), set()).add(r["key"])
            status = r.get("status")
            if status == "ambiguous":  # ambiguous answers are not graded
                continue
            self.asked += 1
            if status == "failed":  # a failed request is not a parsing question
                continue
            self.ok += 1
            self.by_mode[r["parse_mode"]] = self.by_mode.get(r["parse_mode"], 0) + 1
            parsed = r["parse_mode"] != "unparsed"
            self.parsed += parsed
            a["answers"] += 1
            a["parsed"] += parsed
        self.requests += len(keys)
        for mode, ks in ask_keys.items():
            self.per_ask[mode]["requests"] += len(ks)

    def summary(self) -> dict[str, Any] | None:
        """The ``ask`` block of summary.json (None when no graded answer was asked)."""
        if not self.asked:
            return None
        ok = self.ok
        asks = {k: {"answers": v["answers"], "parsed": v["parsed"], "requests": v["requests"],
                    "parse_rate": round(v["parsed"] / v["answers"], 4) if v["answers"] else None}
                for k, v in sorted(self.per_ask.items())}
        return {
            "kind": "ask",
            "title": "Answer parsing",
            "description": "How replies were read: per ask mode (all questions of a step in one request, one "
                           "request per stage, or one per question) and per parse mode (json keyed by question "
                           "id, keyed line, single-key json, bare answer, by_id for multi-question requests).",
            "answers": ok,
            "parsed": self.parsed,
            "parse_rate": round(self.parsed / ok, 4) if ok else None,
            "requests": self.requests,
            "ask": asks,
            "parse_modes": {m: {"answers": n, "share": round(n / ok, 4)} for m, n in sorted(self.by_mode.items())},
        }


def ask_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Parse rate overall, per ask mode and per parse mode, with request counts (None without rows)."""
    counts = AskCounts()
    counts.add(rows)
    return counts.summary()
