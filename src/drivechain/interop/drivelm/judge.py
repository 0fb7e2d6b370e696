"""DriveLM's GPT score: ``challenge/gpt_eval.py``'s prompt sent to any OpenAI-compatible judge.

The prompt, system message, temperature (0.6) and token limit (3000) are DriveLM's. DriveLM turns
the reply into a number with ``float(reply)`` and crashes on "Score: 30"; here the reply goes
through ``grading.judge.parse_judge`` (a bare number, "Score: 30", "85/100"), and a reply that
still does not parse, or a failed request, is recorded and left out of the mean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from drivechain.models.base import Message, Request, TextPart

SYSTEM = "an evaluator who rates my answer based on the correct answer"
INSTRUCTION = (
    "Rate my answer based on the correct answer out of 100, with higher scores indicating that the answer "
    "is closer to the correct answer, and you should be accurate to single digits like 62, 78, 41,etc. "
    "Output the number only"
)
TEMPERATURE = 0.6
MAX_TOKENS = 3000


def judge_prompt(answer: str, gt: str) -> str:
    """DriveLM's user prompt for one (answer, ground truth) pair, concatenated exactly as theirs."""
    return INSTRUCTION + "This is the correct answer: " + gt + "This is my answer: " + answer


def judge_request(answer: str, gt: str, *, temperature: float = TEMPERATURE, max_tokens: int = MAX_TOKENS,
                  sample: int = 0) -> Request:
    """The chat request DriveLM's GPTEvaluation sends for one pair."""
    return Request(
        messages=[
            Message(role="system", content=[TextPart(text=SYSTEM)]),
            Message(role="user", content=[TextPart(text=judge_prompt(answer, gt))]),
        ],
        temperature=temperature,
        max_tokens=max_tokens,
        n_sample=sample,
        meta={"kind": "drivelm-judge"},
    )


@dataclass
class JudgeResult:
    """Scores per pair (None where it failed) and what failed, with the judge's raw reply."""

    scores: list[float | None]
    failures: list[dict[str, Any]] = field(default_factory=list)


class ConstantJudge:
    """Every pair gets the same score (DriveLM's figures are quoted with the judge held at 50)."""

    def __init__(self, value: float) -> None:
        self.value = float(value)
        self.name = f"constant:{self.value:g}"

    async def score(self, pairs: list[tuple[str, str]], ids: list[str]) -> JudgeResult:
        """The constant for every pair."""
        return JudgeResult([self.value] * len(pairs))


class ModelJudge:
    """A model adapter (``openai:NAME``) asked DriveLM's prompt, a bounded number of requests in flight."""

    def __init__(self, model: Any, *, concurrency: int = 16, retries: int = 2,
                 temperature: float = TEMPERATURE, max_tokens: int = MAX_TOKENS) -> None:
        self.model = model
        self.name = getattr(model, "name", "judge")
        self.concurrency = concurrency
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens

    async def score(self, pairs: list[tuple[str, str]], ids: list[str]) -> JudgeResult:
        """One request per pair; failed requests are retried, then recorded."""
        from drivechain.grading.judge import parse_judge

        sem = asyncio.Semaphore(self.concurrency)
        result = JudgeResult([None] * len(pairs))

        async def one(i: int) -> None:
            answer, gt = pairs[i]
            req = judge_request(answer, gt, temperature=self.temperature, max_tokens=self.max_tokens, sample=i)
            resp = None
            for attempt in range(self.retries + 1):
                async with sem:
                    resp = await self.model.respond(req)
                if resp.ok or not resp.retryable:
                    break
                await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
            assert resp is not None
            if not resp.ok:
                result.failures.append({"id": ids[i], "error": resp.error, "reply": None})
                return
            value, why = parse_judge(resp.text)
            if value is None:
                result.failures.append({"id": ids[i], "error": why, "reply": resp.text[:200]})
            result.scores[i] = value

        await asyncio.gather(*(one(i) for i in range(len(pairs))))
        result.failures.sort(key=lambda f: f["id"])
        return result
