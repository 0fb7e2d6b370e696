"""Raters (reward models) and hard-negative selection.

A rater scores a step given the problem and the earlier steps: a probability-like score in [0, 1]
that the step is correct (None = the rater failed; counted, and ranked as 0). Raters:
- ``plausibility`` (default, built in): never reads the teacher's labels; counts internal
  inconsistencies of the chain text (see ``plausibility_violations``); score = 0.4 ** violations, so
  one violation already falls below prm-eval's 0.5 threshold;
- ``oracle``: the teacher's own rating (1 if the step is rated >= 0, else 0): the upper bound;
- any model spec: asked to rate the step, reply parsed strictly (a bare number or {"score": x} in
  [0, 1], nothing else); anything else is a recorded failure.
Hard negatives: of the steps rated -1 for one frame and step, the top-K by rater score are kept
(ties: sample order), the rest dropped; steps rated 0 or +1 are always kept.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Protocol

from pydantic import BaseModel

from drivechain.grading.cot import mentioned_vehicles
from drivechain.process.candidates import NO_ANSWER, Candidate, final_qid, problem_text, step_text
from drivechain.schema import FrameRecord


class Problem(BaseModel):
    """What a rater is told about a frame (never the teacher's labels)."""

    frame_id: str
    text: str
    image: str | None = None
    ground_truth_answer: str = ""
    final_qid: str | None = None


def make_problem(record: FrameRecord) -> Problem:
    """The problem of a frame: its questions, first image and the final answer's truth text."""
    from drivechain.prompts import format_answer

    fq = final_qid(record)
    truth = ""
    if fq is not None:
        qa = record.graph.get(fq)
        assert qa is not None
        truth = format_answer(qa)
        if qa.answer.type == "choice":
            truth = qa.answer.options[qa.answer.preferred]
    image = next(iter(record.frame.images.values()), None)
    return Problem(frame_id=record.frame.frame_id, text=problem_text(record), image=image,
                   ground_truth_answer=truth, final_qid=fq)


class Rater(Protocol):
    """Scores steps (PRM) and whole chains' final answers (ORM)."""

    name: str
    failures: int

    async def score_step(self, problem: Problem, prefix: list[Candidate], step: Candidate) -> float | None:
        """Score in [0, 1] that ``step`` is correct given the earlier steps; None when the rater failed."""
        ...

    async def score_outcome(self, problem: Problem, steps: list[Candidate]) -> float | None:
        """Score in [0, 1] that the chain's final answer is correct, looking at the final answer only."""
        ...


class OracleRater:
    """The teacher's grades as a rater: the ceiling every other rater is compared with."""

    name = "oracle"
    failures = 0

    async def score_step(self, problem: Problem, prefix: list[Candidate], step: Candidate) -> float | None:
        """1 when the teacher rates the step 0 or +1, else 0."""
        if step.rating is None:
            raise ValueError("oracle rater needs rated steps")
        return 1.0 if step.rating >= 0 else 0.0

    async def score_outcome(self, problem: Problem, steps: list[Candidate]) -> float | None:
        """1 when the teacher rates the final answer 0 or +1, else 0."""
        for step in steps:
            for g in step.grades:
                if g.qid == problem.final_qid:
                    return 1.0 if g.rating is not None and g.rating >= 0 else 0.0
        return 0.0


# --------------------------------------------------------------------------- plausibility heuristic

_LINE = re.compile(r"^([A-Za-z0-9_.]+): (.*)$")
_OPTIONS = re.compile(r"^([A-Za-z0-9_.]+): .*\(options: (.*)\)$")
_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?")


def _answers(steps: list[Candidate]) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in steps:
        for line in step_text(s.answers).splitlines():
            m = _LINE.match(line)
            if m:
                out[m.group(1)] = m.group(2).strip()
    return out


def _options(problem: Problem) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for line in problem.text.splitlines():
        m = _OPTIONS.match(line)
        if m:
            out[m.group(1)] = dict(o.split(". ", 1) for o in m.group(2).split(" | ") if ". " in o)
    return out


def plausibility_violations(problem: Problem, prefix: list[Candidate], step: Candidate) -> list[str]:
    """Inconsistencies of ``step`` with the problem and the earlier steps, from the text alone."""
    before, mine = _answers(prefix), _answers([step])
    both = {**before, **mine}
    opts = _options(problem)
    out: list[str] = []
    for qid, ans in mine.items():
        if ans == NO_ANSWER:
            out.append(f"{qid}: no answer")
        if ("ttc" in qid or ans.endswith(" m/s")) and _NUMBER.match(ans) and float(_NUMBER.match(ans).group()) < 0:
            out.append(f"{qid}: negative {ans}")
    # a later step naming a vehicle that neither the questions nor earlier steps mention
    if step.step_index > 0:
        known = mentioned_vehicles(problem.text) | {int(x) for a in before.values() for x in re.findall(r"\b\d+\b", a)}
        for qid, ans in mine.items():
            if qid in ("plan.danger", "plan.importance"):
                ids = {int(x) for x in re.findall(r"\b\d+\b", ans)}
                if ids - known:
                    out.append(f"{qid}: unseen vehicle(s) {sorted(ids - known)}")
    action_text = opts.get("plan.action", {}).get(both.get("plan.action", ""), "")
    for qid, ans in both.items():
        if qid.startswith("plan.safe.") and ans == "no" and action_text and qid.split(".", 2)[2] == action_text:
            if "plan.action" in mine or qid in mine:
                out.append(f"plan.action {action_text} judged unsafe by {qid}")
    if ("per.lead_vehicle" in mine or "pred.ttc_lead" in mine) and both.get("per.lead_vehicle") == "none":
        if _NUMBER.match(both.get("pred.ttc_lead", "none")):
            out.append("time to collision with a lead vehicle that is not there")
    if ("plan.danger_reason" in mine or "plan.danger" in mine) and "plan.danger" in both:
        danger = {int(x) for x in re.findall(r"\b\d+\b", both["plan.danger"])}
        named = mentioned_vehicles(both.get("plan.danger_reason", ""))
        if named - danger:
            out.append("the reason names a vehicle outside the danger set")
    if action_text and any(q in mine for q in ("plan.action", "beh.lateral", "beh.longitudinal")):
        lat = opts.get("beh.lateral", {}).get(both.get("beh.lateral", ""), "").lower()
        lon = opts.get("beh.longitudinal", {}).get(both.get("beh.longitudinal", ""), "").lower()
        side = {"LANE_LEFT": "left", "LANE_RIGHT": "right"}.get(action_text)
        if lat and side and side not in lat:
            out.append(f"lateral behaviour {lat!r} contradicts {action_text}")
        if lat and not side and ("left" in lat or "right" in lat) and "keep" not in lat:
            out.append(f"lateral behaviour {lat!r} contradicts {action_text}")
        if lon and action_text == "FASTER" and any(w in lon for w in ("brak", "decel", "slow")):
            out.append(f"longitudinal behaviour {lon!r} contradicts FASTER")
        if lon and action_text == "SLOWER" and any(w in lon for w in ("accel", "faster", "speed up")):
            out.append(f"longitudinal behaviour {lon!r} contradicts SLOWER")
    return out


class PlausibilityRater:
    """Built-in rater from the text alone (questions + steps): fewer inconsistencies, more convincing."""

    name = "plausibility"
    failures = 0

    async def score_step(self, problem: Problem, prefix: list[Candidate], step: Candidate) -> float | None:
        """0.4 ** number of inconsistencies."""
        return 0.4 ** len(plausibility_violations(problem, prefix, step))

    async def score_outcome(self, problem: Problem, steps: list[Candidate]) -> float | None:
        """The score of the step holding the final answer, judged against all the other steps."""
        k = next((i for i, s in enumerate(steps) if problem.final_qid in s.answers), len(steps) - 1)
        others = [s for i, s in enumerate(steps) if i != k]
        return 0.4 ** len(plausibility_violations(problem, others, steps[k]))


# --------------------------------------------------------------------------- model rater

RATER_SYSTEM = (
    "You check the reasoning of a driving assistant, one step at a time. Steps are answers to the "
    "questions of one stage (perception, prediction, planning, behavior) as 'question id: answer' lines."
)
_STRICT = re.compile(r"^\s*(?:```(?:json)?\s*)?(.*?)\s*(?:```)?\s*$", re.S)


def parse_score(text: str) -> tuple[float | None, str | None]:
    """A strict score: the reply is a number in [0, 1] or {"score": x} and nothing else."""
    body = _STRICT.match(text or "").group(1).strip()  # type: ignore[union-attr]
    try:
        obj: Any = json.loads(body)
    except ValueError:
        return None, f"not a number or {{\"score\": x}}: {body[:60]!r}"
    if isinstance(obj, dict):
        if set(obj) != {"score"}:
            return None, f"expected only the key 'score', got {sorted(obj)[:5]}"
        obj = obj["score"]
    if isinstance(obj, bool) or not isinstance(obj, (int, float)):
        return None, f"score is not a number: {body[:60]!r}"
    if not 0.0 <= float(obj) <= 1.0:
        return None, f"score {obj} outside [0, 1]"
    return float(obj), None


class ModelRater:
    """Any model asked, through the evaluation runner, how likely a step (or final answer) is correct."""

    def __init__(self, asker: Any, spec: str, *, image_root: str = "", max_tokens: int = 64) -> None:
        self.asker = asker
        self.name = spec
        self.image_root = image_root
        self.max_tokens = max_tokens
        self.failures = 0
        self.failure_examples: list[str] = []

    def _request(self, problem: Problem, shown: list[Candidate], ask: str) -> Any:
        from drivechain.models.base import ImagePart, Message, Request, TextPart

        parts: list[Any] = []
        if problem.image and self.image_root:
            parts += [TextPart(text="Current frame:"), ImagePart(path=problem.image)]
        body = [problem.text, ""]
        for i, s in enumerate(shown):
            body += [f"Step {i + 1} ({s.stage}):", s.text]
        body += ["", ask, 'Reply with only {"score": p}, p between 0 and 1, and nothing else.']
        parts.append(TextPart(text="\n".join(body)))
        return Request(messages=[Message(role="system", content=[TextPart(text=RATER_SYSTEM)]),
                                 Message(role="user", content=parts)],
                       temperature=0.0, max_tokens=self.max_tokens, image_root=self.image_root,
                       meta={"frame_id": problem.frame_id, "rater": True})

    async def _score(self, request: Any) -> float | None:
        out = await self.asker.ask(request)
        if not out.response.ok:
            score, err = None, f"model failed: {out.response.error}"
        else:
            score, err = parse_score(out.response.text)
        if err is not None:
            self.failures += 1
            if len(self.failure_examples) < 5:
                self.failure_examples.append(err)
        return score

    async def score_step(self, problem: Problem, prefix: list[Candidate], step: Candidate) -> float | None:
        """p(the last step is correct), strictly parsed."""
        ask = f"Is step {len(prefix) + 1} ({step.stage}) correct, given the scene and the steps before it?"
        return await self._score(self._request(problem, [*prefix, step], ask))

    async def score_outcome(self, problem: Problem, steps: list[Candidate]) -> float | None:
        """p(the final answer is correct), shown only the final answer (outcome reward model)."""
        final = [s for s in steps if problem.final_qid in s.answers]
        shown = [s.model_copy(update={"answers": {problem.final_qid: s.answers[problem.final_qid]}}) for s in final]
        return await self._score(self._request(problem, shown, "Is this final answer correct?"))


def make_rater(spec: str | None, asker_factory: Any = None, *, image_root: str = "", base_url: str | None = None,
               data: Any = None) -> Any:
    """``plausibility`` (default), ``oracle``, ``model:MODEL_DIR`` (a trained reward model; embeddings
    cached under ``data``) or a model spec (needs ``asker_factory(model)``)."""
    spec = (spec or "plausibility").strip()
    if spec == "plausibility":
        return PlausibilityRater()
    if spec == "oracle":
        return OracleRater()
    if spec.startswith("model:"):
        from drivechain.process.reward_model import load_trained_rater

        return load_trained_rater(spec, data)
    from drivechain.models.registry import load_model

    model = load_model(spec, base_url=base_url)
    return ModelRater(asker_factory(model), spec, image_root=image_root)


async def score_steps(rater: Any, problem: Problem, steps: list[Candidate]) -> list[float | None]:
    """Rater scores of every step of a chain, each given the chain's earlier steps."""
    return list(await asyncio.gather(*(rater.score_step(problem, steps[:i], s) for i, s in enumerate(steps))))


def select_hard_negatives(cands: list[Candidate], top_k: int) -> None:
    """Mark ``kept`` on candidates of ONE (frame, step): top-K negatives by rater score, all non-negatives."""
    negs = [c for c in cands if c.rating == -1]
    ranked = sorted(negs, key=lambda c: (-(c.rater_score or 0.0), c.sample))
    keep = {id(c) for c in ranked[:top_k]}
    for c in cands:
        c.kept = c.rating != -1 or id(c) in keep


def kept_dropped_means(cands: list[Candidate]) -> dict[str, float | int | None]:
    """Mean rater score of kept vs dropped negatives (the hard-negative selection's effect)."""
    kept = [c.rater_score or 0.0 for c in cands if c.rating == -1 and c.kept]
    dropped = [c.rater_score or 0.0 for c in cands if c.rating == -1 and not c.kept]
    mean = lambda xs: round(sum(xs) / len(xs), 6) if xs else None  # noqa: E731
    return {"kept_mean": mean(kept), "dropped_mean": mean(dropped), "kept": len(kept), "dropped": len(dropped)}

