"""``drivechain score drivelm``: DriveLM's challenge score of a prediction file, plus a per-stage breakdown.

Walks the ground truth as ``challenge/evaluation.py`` does (scene, key frame, QA in perception +
prediction + planning + behavior order, the frame graph filter) and routes every kept item by its
tags: 0 accuracy, 1 GPT, 2 language, 3 match (coordinate F1 and GPT, averaged). Final score =
0.4 GPT/100 + 0.2 language + 0.2 match/100 + 0.2 accuracy. What DriveLM's script would crash on
is recorded under ``problems`` instead.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivechain.interop.drivelm import metrics
from drivechain.interop.drivelm.language import KEYS, corpus_scores, pick_tokenizer
from drivechain.interop.drivelm.layout import STAGES, Item, check_v11, iter_items, read_json, read_predictions


@dataclass
class Routed:
    """The kept items split by metric, in DriveLM's order."""

    accuracy: list[tuple[str, str]] = field(default_factory=list)
    gpt: list[tuple[str, str]] = field(default_factory=list)
    language: list[tuple[str, str]] = field(default_factory=list)
    match: list[tuple[str, str]] = field(default_factory=list)
    ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stage_acc: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    total: int = 0
    kept: int = 0
    derived_tags: int = 0
    problems: list[dict[str, str]] = field(default_factory=list)


DEFAULT_TAGS = {"choice": [0], "boolean": [0], "objects": [3], "ranking": [3], "text": [2], "number": [1]}


def derived_tags(question: str, answer: str) -> list[int]:
    """Tags for an item without any: choice/boolean 0 (accuracy), objects/ranking 3 (match), text 2 (language)."""
    from drivechain.interop.drivelm.answers import type_answer

    return DEFAULT_TAGS[type_answer(question, answer)[0].type]


def _tags(raw: Any) -> list[int]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return [raw]
    if isinstance(raw, list):
        return [t for t in raw if isinstance(t, int) and not isinstance(t, bool)]
    return []


def route(gt: dict[str, Any], preds: dict[str, Any]) -> Routed:
    """Apply the graph filter and sort every kept item into its metrics (evaluation.py's main loop)."""
    return route_items(iter_items(gt), preds)


def route_items(items: Iterable[Item], preds: dict[str, Any]) -> Routed:
    """``route`` over items in DriveLM's order (key frame by key frame, running index)."""
    out = Routed()
    graph: list[tuple[float, float]] = []
    last_frame: tuple[str, str] | None = None
    for item in items:
        out.total += 1
        iid = item.item_id
        notes: list[str] = []
        row = preds.get(iid)
        if row is None:
            notes.append("no prediction with this id; scored as an empty answer")
            predict = ""
        else:
            predict = row.get("answer")
            if not isinstance(predict, str):
                notes.append(f"answer is {type(predict).__name__}, not text; scored as its text form")
                predict = "" if predict is None else str(predict)
        answer = item.qa["A"] if isinstance(item.qa["A"], str) else str(item.qa["A"])
        question = item.qa["Q"]
        if "tag" in item.qa:
            tags = _tags(item.qa.get("tag"))
        else:  # a training file: route by the answer's type, as the eval block does (DriveLM would crash)
            tags = derived_tags(question, answer)
            out.derived_tags += 1
        first = (item.scene, item.frame) != last_frame
        last_frame = (item.scene, item.frame)
        if first:
            matched, _ = metrics.match_result(predict, answer, notes)
            graph = matched
            keep = True
        else:
            keep = metrics.in_graph(question, graph, notes)
        for note in notes:
            out.problems.append({"id": iid, "problem": note})
        if not keep:
            continue
        out.kept += 1
        pair = (predict, answer)
        if 0 in tags:
            out.accuracy.append(pair)
            out.ids["accuracy"].append(iid)
            out.stage_acc[item.stage].append(1.0 if predict == answer else 0.0)
        if 1 in tags:
            out.gpt.append(pair)
            out.ids["gpt"].append(iid)
        if 2 in tags:
            out.language.append(pair)
            out.ids["language"].append(iid)
        if 3 in tags:
            out.match.append(pair)
            out.ids["match"].append(iid)
    return out


async def _judge_all(judge: Any, routed: Routed) -> tuple[Any, Any]:
    gpt = await judge.score(routed.gpt, routed.ids["gpt"])
    match = await judge.score(routed.match, routed.ids["match"])
    return gpt, match



def score_files(pred_path: Path, gt_path: Path, judge: Any, tokenizer: str = "auto") -> dict[str, Any]:
    """The DriveLM score of a prediction file against a v1.1 ground truth with tags."""
    gt = check_v11(read_json(gt_path, "ground-truth file"), gt_path)
    preds = read_predictions(pred_path)
    used = pick_tokenizer(tokenizer)  # type: ignore[arg-type]
    routed = route(gt, preds)
    gpt_res, match_res = asyncio.run(_judge_all(judge, routed))
    out = figures(routed, gpt_res.scores, match_res.scores, used)
    out["judge"] = judge.name
    out["judge_failures"] = {"gpt": gpt_res.failures, "match": match_res.failures}
    out["unused_predictions"] = len(set(preds) - {i.item_id for i in iter_items(gt)})
    return out


def figures(routed: Routed, gpt: list[float | None], match_gpt_scores: list[float | None],
            tokenizer: str) -> dict[str, Any]:
    """Every figure evaluation.py prints (None where no item or no judge score), and the breakdown."""
    chatgpt = metrics.mean([v for v in gpt if v is not None])
    f1s = [metrics.match_result(a, g)[1] * 100 for a, g in routed.match]
    f1_mean = metrics.mean(f1s)
    match_gpt = metrics.mean([v for v in match_gpt_scores if v is not None])
    match = None if f1_mean is None or match_gpt is None else (f1_mean + match_gpt) / 2.0
    acc = metrics.accuracy(routed.accuracy)
    lang = corpus_scores([p for p, _ in routed.language], [g for _, g in routed.language], tokenizer)
    language = metrics.language_aggregate(lang) if lang else None
    parts = {"chatgpt": chatgpt, "language": language, "match": match, "accuracy": acc}
    missing = [k for k, v in parts.items() if v is None]
    final = None if missing else metrics.final_score(chatgpt, language, match, acc)  # type: ignore[arg-type]
    return {
        "final_score": final,
        "components": None if missing else [chatgpt / 100.0, language, match / 100.0, acc],  # type: ignore[operator]
        "weights": list(metrics.WEIGHTS),
        "accuracy": acc,
        "chatgpt": chatgpt,
        "match": match,
        "match_f1": f1_mean,
        "match_gpt": match_gpt,
        "language": {k: lang[k] for k in KEYS} if lang else None,
        "language_score": language,
        "tokenizer": tokenizer,
        "language_official": tokenizer == "ptb",
        "items": {
            "total": routed.total,
            "scored": routed.kept,
            "filtered_by_graph": routed.total - routed.kept,
            "accuracy": len(routed.accuracy),
            "gpt": len(routed.gpt),
            "language": len(routed.language),
            "match": len(routed.match),
            "tags_derived": routed.derived_tags,
        },
        "by_stage_accuracy": {s: {"accuracy": metrics.mean(routed.stage_acc[s]), "n": len(routed.stage_acc[s])}
                              for s in STAGES if routed.stage_acc.get(s)},
        "missing_components": missing,
        "problems": routed.problems,
    }
