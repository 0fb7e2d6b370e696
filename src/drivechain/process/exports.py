"""Process data in the formats reward-model trainers read (all load with ``datasets.load_dataset("json")``).

- ``prm800k.jsonl`` (PRM800K): one row per frame with every step's completions (the teacher's step,
  chosen, plus the kept candidates; ``finish_reason`` "solution"), and one row per sampled chain with
  one completion per step, cut after its first -1 step (``finish_reason`` "found_error"; the -1 step's
  ``chosen_completion`` is null) or complete (``finish_reason`` "solution").
- ``processbench.json`` (ProcessBench): a JSON list of complete 4-step chains with ``label`` = index of
  the first step rated -1, or -1; items are the teacher's chain, the teacher's chain with step k
  replaced by each kept candidate, and every sampled chain. Rating 0 is not an error.
- ``trl_prm.jsonl`` (TRL's stepwise PRM format): the same items, cut after the first error,
  ``labels[i]`` = rating >= 0 (rating 0 counted correct).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from drivechain.process.candidates import Candidate, Chain, first_error
from drivechain.process.negatives import Problem
from drivechain.process.ratings import final_correct


class Item(BaseModel):
    """A complete chain to export (ProcessBench / TRL), with where it came from."""

    id: str
    generator: str
    frame_id: str
    steps: list[Candidate]

    @property
    def first_error(self) -> int:
        """Index of the first step rated -1, or -1."""
        return first_error(self.steps)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file through a temp file + os.replace: never half-written."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """JSON lines, sorted keys (byte-identical reruns)."""
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _completion(c: Candidate) -> dict[str, Any]:
    return {"text": c.text, "rating": c.rating, "flagged": False}


def _question(p: Problem) -> dict[str, Any]:
    return {"problem": p.text, "ground_truth_answer": p.ground_truth_answer}


def prm800k_rows(problems: dict[str, Problem], teacher: dict[str, list[Candidate]],
                 kept: dict[str, list[list[Candidate]]], chains: list[Chain], generator: str) -> list[dict[str, Any]]:
    """PRM800K rows: per frame (all completions of every step) then per sampled chain (cut at first -1)."""
    rows = []
    for fid, steps in teacher.items():
        label_steps = [{"completions": [_completion(t)] + [_completion(c) for c in kept[fid][k]], "chosen_completion": 0}
                       for k, t in enumerate(steps)]
        rows.append({"frame_id": fid, "kind": "step_candidates", "chain_id": -1, "generator": generator,
                     "question": _question(problems[fid]),
                     "label": {"steps": label_steps, "total_time": 0, "finish_reason": "solution"}})
    for ch in chains:
        stop = ch.first_error
        shown = ch.steps if stop < 0 else ch.steps[: stop + 1]
        label_steps = [{"completions": [_completion(s)], "chosen_completion": None if s.rating == -1 else 0}
                       for s in shown]
        rows.append({"frame_id": ch.frame_id, "kind": "sampled_chain", "chain_id": ch.chain_id, "generator": generator,
                     "question": _question(problems[ch.frame_id]),
                     "label": {"steps": label_steps, "total_time": 0,
                               "finish_reason": "found_error" if stop >= 0 else "solution"}})
    return rows


def export_items(teacher: dict[str, list[Candidate]], kept: dict[str, list[list[Candidate]]],
                 chains: list[Chain], generator: str) -> list[Item]:
    """The complete chains exported to ProcessBench and TRL, in a fixed order."""
    items = []
    for fid, steps in teacher.items():
        items.append(Item(id=f"{fid}#teacher", generator="teacher", frame_id=fid, steps=steps))
        for k, cands in enumerate(kept[fid]):
            for c in cands:
                chain = [*steps[:k], c, *steps[k + 1:]]
                items.append(Item(id=f"{fid}#step{k}.{c.sample}", generator=generator, frame_id=fid, steps=chain))
    for ch in chains:
        items.append(Item(id=f"{ch.frame_id}#chain{ch.chain_id}", generator=generator, frame_id=ch.frame_id,
                          steps=ch.steps))
    return items


def processbench_rows(items: list[Item], problems: dict[str, Problem]) -> list[dict[str, Any]]:
    """ProcessBench records (plus ``stages`` and ``step_ratings`` so prm-eval can rebuild the steps)."""
    return [{"id": it.id, "generator": it.generator, "frame_id": it.frame_id, "problem": problems[it.frame_id].text,
             "steps": [s.text for s in it.steps], "stages": [s.stage for s in it.steps],
             "step_ratings": [s.rating for s in it.steps], "label": it.first_error,
             "final_answer_correct": final_correct(it.steps, problems[it.frame_id].final_qid)} for it in items]


def trl_rows(items: list[Item], problems: dict[str, Problem]) -> list[dict[str, Any]]:
    """TRL stepwise-supervision rows, cut after the first error; rating 0 counts as correct."""
    rows = []
    for it in items:
        stop = it.first_error
        shown = it.steps if stop < 0 else it.steps[: stop + 1]
        rows.append({"prompt": problems[it.frame_id].text, "completions": [s.text for s in shown],
                     "labels": [s.rating is not None and s.rating >= 0 for s in shown]})
    return rows


def completion_ratings(path: Path) -> dict[str, int]:
    """How many completions of a written prm800k.jsonl are rated -1, 0 and +1 (teacher steps, kept candidates
    and sampled chains' steps together: what a PRM trainer reads)."""
    counts = {"-1": 0, "0": 0, "1": 0}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            for step in json.loads(line)["label"]["steps"]:
                for c in step["completions"]:
                    counts[str(c["rating"])] += 1
    return counts


def write_exports(out: Path, problems: dict[str, Problem], teacher: dict[str, list[Candidate]],
                  kept: dict[str, list[list[Candidate]]], chains: list[Chain], generator: str) -> dict[str, int]:
    """Write prm800k.jsonl, processbench.json and trl_prm.jsonl; row counts per file."""
    prm = prm800k_rows(problems, teacher, kept, chains, generator)
    items = export_items(teacher, kept, chains, generator)
    pb = processbench_rows(items, problems)
    trl = trl_rows(items, problems)
    write_jsonl(out / "prm800k.jsonl", prm)
    write_text_atomic(out / "processbench.json", json.dumps(pb, sort_keys=True, indent=1) + "\n")
    write_jsonl(out / "trl_prm.jsonl", trl)
    return {"prm800k.jsonl": len(prm), "processbench.json": len(pb), "trl_prm.jsonl": len(trl)}
