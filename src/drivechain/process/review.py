"""``drivechain review``: the teacher labels a trained PRM most confidently disagrees with, for a person to check.

Every labelled step of a process folder's ProcessBench items (up to and including the first error,
each distinct step once) is scored by the PRM; disagreement = |teacher label - PRM score| (label 1 for
a step rated 0 or +1, 0 for -1). The steps are listed by disagreement, largest first, with the
(frame, question) labels to look at:
- a step the teacher rates -1 or 0 and the PRM believes: the questions whose answer differs from the
  teacher's own (those are what the teacher marked down);
- a step the teacher rates +1 and the PRM doubts: the questions whose removal raises the PRM's score
  most (leave-one-line-out), up to two.
Labels already confirmed (``"verdict": "ok"`` in the corrections file) or already marked wrong are
left out. Each listed label comes with the corrections.jsonl line a reviewer would add if the
teacher is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drivechain.process.prm_eval import load_process_dir, parse_step_text
from drivechain.process.reward_model import load_model
from drivechain.process.train import examples


def _teacher_answers(items: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    return {it["frame_id"]: [parse_step_text(t) for t in it["steps"]] for it in items if it.get("generator") == "teacher"}


def _lines_without(step: str, qid: str) -> str:
    return "\n".join(line for line in step.splitlines() if not line.startswith(f"{qid}: "))


def review(data: Path, model_dir: Path, top: int = 20) -> list[dict[str, Any]]:
    """The ``top`` steps where the PRM most confidently disagrees with the teacher, with the labels to check."""
    from drivechain.process.corrections import load_corrections

    problems, items, _ = load_process_dir(data)
    model = load_model(model_dir, data)
    exs = examples(problems, items, "prm", "pos", dedupe=True)
    scores = model.score_rows([e.row for e in exs])
    ratings: dict[tuple[Any, ...], int] = {}
    for it in items:
        stop = int(it["label"])
        for k in range(len(it["steps"]) if stop < 0 else stop + 1):
            ratings[(it["frame_id"], tuple(it["steps"][:k + 1]))] = it["step_ratings"][k]
    teacher = _teacher_answers(items)
    try:
        cfg = json.loads((data / "config.json").read_text(encoding="utf-8"))
        corr_path = Path((cfg.get("corrections") or {}).get("path", ""))
    except (OSError, ValueError):
        corr_path = Path("")
    done = set(load_corrections(corr_path if corr_path.name else None))
    held = model.heldout_frames()
    order = sorted(range(len(exs)), key=lambda i: (-abs(exs[i].label - float(scores[i])), i))
    out: list[dict[str, Any]] = []
    for i in order:
        if len(out) >= top:
            break
        if abs(exs[i].label - float(scores[i])) < 0.5:
            break  # the PRM agrees with the teacher from here on
        e, p = exs[i], float(scores[i])
        stage, _, earlier, step = e.row
        rating = ratings.get((e.frame_id, (*earlier, step)))
        answers = parse_step_text(step)
        k = len(earlier)
        truth = teacher.get(e.frame_id, [{}] * 4)[k] if k < len(teacher.get(e.frame_id, [])) else {}
        if rating is not None and rating < 1:
            suspects = [q for q, a in answers.items() if truth.get(q) is not None and truth[q] != a]
        else:
            rows = [(stage, e.row[1], earlier, _lines_without(step, q)) for q in answers]
            gains = model.score_rows(rows) - p if rows else []
            suspects = [q for _, q in sorted(zip(gains, answers), key=lambda t: -t[0])[:2] if _ > 0]
        suspects = [q for q in suspects if (e.frame_id, q) not in done]
        if not suspects:
            continue
        out.append({"frame_id": e.frame_id, "stage": stage, "teacher_rating": rating, "prm_score": round(p, 4),
                    "disagreement": round(abs(e.label - p), 4), "split": "heldout" if e.frame_id in held else "train",
                    "labels": [{"qid": q, "answer": answers.get(q), "teacher_answer": truth.get(q),
                                "correction": {"frame_id": e.frame_id, "qid": q, "verdict": "wrong",
                                               "note": "teacher label judged wrong by a reviewer"}}
                               for q in suspects]})
    try:
        model.cache.save()
    except OSError:
        pass  # only time is lost
    return out
