"""Process-supervision steps and the generators that propose them.

A chain has four steps, one per stage (perception, prediction, planning, behavior). A step's text is
its answers as ``qid: answer`` lines, rendered by ``prompts.format_value`` / ``format_answer`` so the
same parser that grades models grades candidates. Generators share one interface:
``candidates(record, step_index, prefix, n)`` (N alternatives for step k on the teacher's prefix)
and ``chains(record, n)`` (N whole chains, for best-of-N). ``perturb.PerturbGenerator`` needs no
model; ``ModelGenerator`` samples any model spec through the evaluation runner (cached, retried).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from drivechain.schema import QA, STAGES, ChoiceAnswer, FrameRecord, TextAnswer

NO_ANSWER = "(no answer)"


class QuestionGrade(BaseModel):
    """The grade of one question inside a step, with the question's process rating."""

    qid: str
    status: str
    score: float
    unsafe: bool = False
    rating: int | None = Field(default=None, description="-1/0/+1; None when not scored (ambiguous)")
    detail: str = ""


class Candidate(BaseModel):
    """One proposed step: the answers to one stage's questions, and (once rated) its labels."""

    frame_id: str
    step_index: int
    stage: str
    answers: dict[str, str] = Field(description="qid -> answer text, in graph order")
    source: str = Field(description="'teacher', 'perturb' or 'model:<spec>'")
    kind: str | None = Field(default=None, description="perturbation kind; None for teacher/model steps")
    target_qid: str | None = Field(default=None, description="the question a perturbation changed")
    intent: int | None = Field(default=None, description="rating the perturbation aims at (-1 or 0)")
    sample: int = 0
    error: str | None = Field(default=None, description="model failure that produced no answer")
    rating: int | None = None
    grades: list[QuestionGrade] = Field(default_factory=list)
    rater_score: float | None = None
    kept: bool | None = None

    @property
    def text(self) -> str:
        """The step as ``qid: answer`` lines."""
        return step_text(self.answers)


class Chain(BaseModel):
    """A whole chain (one step per stage) proposed for a frame."""

    frame_id: str
    chain_id: int
    source: str
    steps: list[Candidate]

    @property
    def first_error(self) -> int:
        """Index of the first step rated -1, or -1 when no step is."""
        return first_error(self.steps)


def first_error(steps: list[Candidate]) -> int:
    """Index of the first step rated -1, or -1 when no step is (ProcessBench's label)."""
    return next((i for i, s in enumerate(steps) if s.rating == -1), -1)


class Generator(Protocol):
    """Anything that proposes steps and chains for a frame."""

    name: str

    async def candidates(self, record: FrameRecord, step_index: int, prefix: list[Candidate], n: int) -> list[Candidate]:
        """N alternatives for step ``step_index`` given the (correct) earlier steps."""
        ...

    async def chains(self, record: FrameRecord, n: int) -> list[Chain]:
        """N whole chains for the frame."""
        ...


def step_text(answers: dict[str, str]) -> str:
    """``qid: answer`` lines (newlines inside an answer are folded so a line stays a question)."""
    return "\n".join(f"{q}: {' '.join(a.split())}" for q, a in answers.items())


def step_targets(record: FrameRecord, stage: str) -> list[QA]:
    """The questions of a step: the stage's nodes, minus ambiguous ones (not scored, no truth to show)."""
    return [qa for qa in record.graph.stage(stage) if not qa.ambiguous]


def teacher_step(record: FrameRecord, step_index: int) -> Candidate:
    """The teacher's own step: its answers rendered as text."""
    from drivechain.prompts import format_answer

    stage = STAGES[step_index]
    answers = {qa.qid: format_answer(qa) for qa in step_targets(record, stage)}
    return Candidate(frame_id=record.frame.frame_id, step_index=step_index, stage=stage, answers=answers,
                     source="teacher")


def teacher_chain(record: FrameRecord) -> list[Candidate]:
    """The teacher's four steps."""
    return [teacher_step(record, k) for k in range(len(STAGES))]


def problem_text(record: FrameRecord) -> str:
    """The question a chain answers: every step's questions, by stage (the image goes beside it)."""
    lines = [f"Driving scene {record.frame.frame_id} (scenario {record.frame.scenario}, command: "
             f"{record.frame.command}). Answer step by step, one step per stage."]
    for stage in STAGES:
        targets = step_targets(record, stage)
        if not targets:
            continue
        lines.append(f"[{stage}]")
        lines += [_problem_line(qa) for qa in targets]
    return "\n".join(lines)


def _problem_line(qa: QA) -> str:
    line = f"{qa.qid}: {' '.join(qa.question.split())}"
    if isinstance(qa.answer, ChoiceAnswer):
        from drivechain.prompts import LETTERS

        line += " (options: " + " | ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(qa.answer.options)) + ")"
    return line


def final_qid(record: FrameRecord) -> str | None:
    """The chain's final answer: ``plan.action`` when scored, else None (frame left out of best-of-N)."""
    qa = record.graph.get("plan.action")
    return qa.qid if qa is not None and not qa.ambiguous else None


def render_parsed(qa: QA, parsed: Any) -> str:
    """A parsed model answer as text, or NO_ANSWER when it did not parse."""
    from drivechain.prompts import format_value

    if getattr(parsed, "unparsed", None) is not None:
        # a text answer keeps the model's own words; nothing else is trusted unparsed
        raw = getattr(parsed, "raw", None)
        if isinstance(qa.answer, TextAnswer) and isinstance(raw, str) and raw.strip():
            return raw.strip()
        return NO_ANSWER
    value = parsed.value
    return format_value(qa, value)


class ModelGenerator:
    """Samples a model: step k on the teacher's steps < k, and free-running whole chains."""

    def __init__(self, asker: Any, spec: str, *, image_root: str, temperature: float = 0.7, seed: int = 0,
                 max_tokens: int = 512, image: bool = True) -> None:
        self.asker = asker
        self.name = f"model:{spec}"
        self.image_root = image_root
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.image = image
        self.failures = 0

    async def _ask_stages(self, record: FrameRecord, stages: list[str], upstream: list[tuple[QA, str]],
                          sample: int) -> tuple[dict[str, dict[str, str]], str | None]:
        """One request answering ``stages`` together; answers per stage and the failure, if any."""
        from drivechain.grading.parse import parse_reply
        from drivechain.prompts import build_request

        targets = [qa for st in stages for qa in step_targets(record, st)]
        out: dict[str, dict[str, str]] = {st: {} for st in stages}
        if not targets:
            return out, None
        req = build_request(record, targets, image=self.image, upstream=upstream, image_root=self.image_root,
                            temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed)
        req = req.model_copy(update={"n_sample": sample})
        outcome = await self.asker.ask(req)
        error = None
        if outcome.response.ok:
            parsed = parse_reply(outcome.response.text, targets)
        else:
            error = outcome.response.error or "model failed"
            self.failures += 1
            parsed = {}
        for qa in targets:
            p = parsed.get(qa.qid)
            out[qa.stage][qa.qid] = render_parsed(qa, p) if p is not None else NO_ANSWER
        return out, error

    async def candidates(self, record: FrameRecord, step_index: int, prefix: list[Candidate], n: int) -> list[Candidate]:
        """N samples of step k with the teacher's answers of the earlier stages given as upstream."""
        stage = STAGES[step_index]
        upstream = _upstream(record, prefix)
        out = []
        for i in range(n):
            answers, error = await self._ask_stages(record, [stage], upstream, i)
            out.append(Candidate(frame_id=record.frame.frame_id, step_index=step_index, stage=stage,
                                 answers=answers[stage], source=self.name, sample=i, error=error))
        return out

    async def chains(self, record: FrameRecord, n: int) -> list[Chain]:
        """N free-running chains: Per from the image, Pred from its own Per, Plan + Beh from its own Per + Pred."""
        import asyncio

        async def one(i: int) -> Chain:
            steps: list[Candidate] = []
            for group in (["perception"], ["prediction"], ["planning", "behavior"]):
                answers, error = await self._ask_stages(record, group, _upstream(record, steps), 1000 + i)
                for st in group:
                    steps.append(Candidate(frame_id=record.frame.frame_id, step_index=STAGES.index(st), stage=st,
                                           answers=answers[st], source=self.name, sample=i, error=error))
            return Chain(frame_id=record.frame.frame_id, chain_id=i, source=self.name, steps=steps)

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _upstream(record: FrameRecord, prefix: list[Candidate]) -> list[tuple[QA, str]]:
    """Earlier steps as (question, answer text) pairs for the prompt; unanswered questions are left out."""
    pairs = []
    for step in prefix:
        for qid, text in step.answers.items():
            qa = record.graph.get(qid)
            if qa is not None and text != NO_ANSWER:
                pairs.append((qa, text))
    return pairs

