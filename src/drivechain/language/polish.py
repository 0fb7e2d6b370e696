"""Polishing: a language model rewords each question (and explanation); only checked rewordings are kept.

Each distinct template text of the dataset is sent once (many frames share a question), asking for K
rewordings, one per line. Every candidate line is cleaned of list markers and labels, then passed to
the checker (``language.checker``) against its template; the first K that pass are stored in the QA's
``question_variants`` / ``explanation_variants``. The template stays variant 0. Answers, the graph,
frame state and images are copied untouched: ``content_sha256`` (everything but the text) is equal
before and after.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivechain.dataset import IMAGES, Dataset, building_folder, images_sha256, write_frames, write_manifest
from drivechain.language.checker import check
from drivechain.models.base import Message, Model, Request, TextPart
from drivechain.schema import QA, Manifest

SYSTEM = (
    "You reword questions and explanations about a driving scene into natural, varied English. A rewording "
    "must mean exactly the same: keep every vehicle number, every number with its unit, every option and "
    "action name, left and right, ahead and behind, every 'not' and 'none', every condition and the time "
    "horizon. Add nothing: no new vehicle, number, road user or condition."
)
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d{1,2}[.):]|(?:variant|rewording|paraphrase|option)\s*\d*\s*[:.-])\s*",
                        re.I)


@dataclass
class PolishStats:
    """What polishing did, per kind of text (question / explanation)."""

    texts: Counter = field(default_factory=Counter)  # distinct template texts asked
    candidates: Counter = field(default_factory=Counter)  # candidate lines read from replies
    kept: Counter = field(default_factory=Counter)  # variants kept
    rejected: dict[str, Counter] = field(default_factory=lambda: {"question": Counter(), "explanation": Counter()})
    failed_requests: int = 0
    first_error: str | None = None
    tokens: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the manifest's ``counts.polish``)."""
        return {
            "texts": dict(sorted(self.texts.items())), "candidates": dict(sorted(self.candidates.items())),
            "kept": dict(sorted(self.kept.items())),
            "rejected": {k: dict(sorted(v.items())) for k, v in sorted(self.rejected.items())},
            "failed_requests": self.failed_requests, "tokens": dict(sorted(self.tokens.items())),
        }


def polish_request(text: str, kind: str, k: int, *, seed: int | None, temperature: float, max_tokens: int) -> Request:
    """The request asking for ``k`` rewordings of one template text, one per line."""
    user = (f"Reword this driving {kind} in {k} different ways. Reply with exactly {k} lines, one rewording per "
            f"line, nothing else.\n\n{text}")
    return Request(messages=[Message(role="system", content=[TextPart(text=SYSTEM)]),
                             Message(role="user", content=[TextPart(text=user)])],
                   temperature=temperature, max_tokens=max_tokens, seed=seed, meta={"kind": kind})


def candidates(reply: str) -> list[str]:
    """Candidate rewordings from a reply: one per non-empty line, list markers, labels and quotes removed."""
    out = []
    for line in reply.splitlines():
        line = _LIST_MARK.sub("", line.strip()).strip().strip('"\u201c\u201d\'').strip()
        if line:
            out.append(line)
    return out


def choose(template: str, reply: str, k: int, options: tuple[str, ...], kind: str, stats: PolishStats) -> list[str]:
    """The first ``k`` distinct candidates the checker keeps; rejections counted by their first reason."""
    kept: list[str] = []
    for cand in candidates(reply):
        stats.candidates[kind] += 1
        reasons = check(template, cand, options)
        if not reasons and (cand in kept or len(kept) >= k):
            reasons = ("duplicate",) if cand in kept else ("surplus",)
        if reasons:
            stats.rejected[kind][reasons[0]] += 1
            continue
        kept.append(cand)
        stats.kept[kind] += 1
    return kept


def _options(qa: QA) -> tuple[str, ...]:
    return tuple(getattr(qa.answer, "options", None) or ())


async def polish_texts(
    texts: dict[tuple[str, str], tuple[str, ...]], ask: Callable[[Request], Any], k: int, *,
    seed: int | None, temperature: float, max_tokens: int, stats: PolishStats,
    on_done: Callable[[], None] | None = None,
) -> dict[tuple[str, str], list[str]]:
    """(kind, template) -> kept rewordings, one request per distinct template; ``ask`` is runner.Asker.ask."""
    out: dict[tuple[str, str], list[str]] = {}

    async def one(kind: str, text: str, options: tuple[str, ...]) -> None:
        outcome = await ask(polish_request(text, kind, k, seed=seed, temperature=temperature, max_tokens=max_tokens))
        resp = outcome.response
        stats.texts[kind] += 1
        stats.tokens["prompt"] += resp.usage.prompt_tokens
        stats.tokens["completion"] += resp.usage.completion_tokens
        if not resp.ok:
            stats.failed_requests += 1
            stats.first_error = stats.first_error or resp.error
            out[(kind, text)] = []
        else:
            out[(kind, text)] = choose(text, resp.text, k, options, kind, stats)
        if on_done is not None:
            on_done()

    await asyncio.gather(*(one(kind, text, opts) for (kind, text), opts in texts.items()))
    return out


def distinct_texts(dataset: Dataset, explanations: bool) -> dict[tuple[str, str], tuple[str, ...]]:
    """Every distinct (kind, template text) of the dataset with the answer options it may quote, in file order."""
    texts: dict[tuple[str, str], tuple[str, ...]] = {}
    for rec in dataset.records():
        for qa in rec.graph.nodes:
            texts.setdefault(("question", qa.question), _options(qa))
            if explanations and qa.explanation:
                texts.setdefault(("explanation", qa.explanation), _options(qa))
    return texts


def content_sha256(dataset: Dataset) -> str:
    """sha256 of everything but the wording: records without question/explanation text, plus the images."""
    digest = hashlib.sha256()
    for rec in dataset.records():
        data = rec.model_dump(mode="json")
        for node in data["graph"]["nodes"]:
            for key in ("question", "explanation", "question_variants", "explanation_variants"):
                node.pop(key, None)
        digest.update(json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    digest.update(images_sha256(dataset.root).encode())
    return digest.hexdigest()


def write_polished(dataset: Dataset, out: Path, variants: dict[tuple[str, str], list[str]],
                   stats: PolishStats, config: dict[str, Any]) -> Manifest:
    """Write the polished dataset: the same records with kept variants added, images copied byte for byte."""

    def lines() -> Any:
        for rec in dataset.records():
            for qa in rec.graph.nodes:
                qa.question_variants = list(variants.get(("question", qa.question), []))
                qa.explanation_variants = list(variants.get(("explanation", qa.explanation), []))
            yield rec.model_dump_json()

    per_question = Counter()
    with building_folder(out) as tmp:
        if (dataset.root / IMAGES).is_dir():
            shutil.copytree(dataset.root / IMAGES, tmp / IMAGES)
        frames_hash = write_frames(tmp, lines())
        for (kind, _), kept in variants.items():
            if kind == "question":
                per_question[len(kept)] += 1
        src = dataset.manifest
        counts = {**src.counts, "polish": {**stats.as_dict(),
                                           "questions_with_n_variants": {str(n): c for n, c in sorted(per_question.items())}}}
        manifest = Manifest(
            name=f"{src.name}-polished", source=src.source, config={**src.config, "polish": config},
            seed=src.seed, versions=src.versions, counts=counts, frames_sha256=frames_hash,
            images_sha256=images_sha256(tmp) if src.images_sha256 else "",
        )
        write_manifest(tmp, manifest)
    return manifest
