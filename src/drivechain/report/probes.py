"""Counterfactual-probe section: flip recall and stability per model (from each run's ``probes`` block), and
probe pairs side by side: the original and the edited image, and per tracked question the teacher's and each
model's answer on both frames (rows of scores.jsonl, ``protocol == "probes"``). docs/probes.md.

Images are copied into the report by ``Site.image`` (hashed file names, never a name a model or a run chose).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from drivechain.report.loaders import Run

# pairs drawn per probe set: enough to read, few enough that the page stays light (the counts cover all)
MAX_PAIRS = 24
GROUPS = (("by_edit", "Edit"), ("by_role", "Vehicle edited"), ("by_link", "Link"), ("by_family", "Question family"))


def _metrics(block: dict[str, Any]) -> dict[str, Any]:
    keys = ("flip_recall", "flip_recall_ci95", "flips", "stability", "stability_ci95", "stable")
    return {k: block.get(k) for k in keys}


def _tables(runs: list[Run]) -> list[dict[str, Any]]:
    """Overall, then one table per grouping: rows = group values, one (flip recall, stability) pair per model."""
    blocks = [r.summary["probes"] for r in runs]
    out = [{"title": "All probes", "head": "", "rows": [{"name": "all", "cells": [_metrics(b) for b in blocks]}],
            "extra": [{"probes": b.get("probes"), "frames": b.get("frames"), "unanswered": b.get("unanswered_pairs")}
                      for b in blocks]}]
    for key, head in GROUPS:
        names = sorted({k for b in blocks for k in (b.get(key) or {})})
        if names:
            out.append({"title": f"By {head.lower()}", "head": head, "rows": [
                {"name": n, "cells": [_metrics((b.get(key) or {}).get(n) or {}) for b in blocks]} for n in names]})
    return out


def _question_texts(dataset: Any) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    records = {rec.frame.frame_id: rec for rec in dataset.records()}
    texts = {fid: {n.qid: n.question for n in rec.graph.nodes} for fid, rec in records.items()}
    return records, texts


def _pairs(runs: list[Run], dataset: Any, image: Callable[[Path], str | None]) -> tuple[list[dict[str, Any]], int]:
    """Up to MAX_PAIRS probes (dataset order) with both images and every tracked question's answers."""
    records, texts = _question_texts(dataset)
    answers: list[dict[tuple[str, str], dict[str, Any]]] = []
    for run in runs:
        got: dict[tuple[str, str], dict[str, Any]] = {}
        for row in run.jsonl("scores.jsonl"):
            if row.get("protocol") == "probes" and isinstance(row.get("qid"), str):
                got[(str(row.get("frame_id")), row["qid"])] = row
        answers.append(got)
    edited = [rec for rec in records.values() if isinstance(rec.frame.meta.get("probe"), dict)
              and rec.frame.meta["probe"].get("of") in records]
    out = []
    for rec in edited[:MAX_PAIRS]:
        probe = rec.frame.meta["probe"]
        orig = records[probe["of"]]
        cam = next(iter(orig.frame.images), None)
        pics = [image(dataset.image_path(r.frame.images[cam])) if cam in r.frame.images else None for r in (orig, rec)]
        questions = []
        for expect, qids in (("flip", probe.get("flips") or []), ("stable", probe.get("stable") or [])):
            for qid in qids:
                cells = []
                truth = [None, None]
                for got in answers:
                    a, b = got.get((orig.frame.frame_id, qid)), got.get((rec.frame.frame_id, qid))
                    for i, row in enumerate((a, b)):
                        if row is not None and truth[i] is None:
                            truth[i] = row.get("truth")
                    cells.append({"before": a.get("raw") if a else None, "after": b.get("raw") if b else None,
                                  "outcome": _outcome(a, b, expect)})
                questions.append({"qid": qid, "question": texts[rec.frame.frame_id].get(qid, ""), "expect": expect,
                                  "truth": truth, "models": cells})
        out.append({"id": rec.frame.frame_id, "of": orig.frame.frame_id, "edit": probe.get("edit"),
                    "agent": probe.get("agent"), "role": probe.get("role"), "images": pics,
                    "questions": questions})
    return out, len(edited)


def _outcome(a: dict[str, Any] | None, b: dict[str, Any] | None, expect: str) -> str:
    """'followed' when the model did what the teacher did (changed its answer exactly when the teacher's
    changed), 'missed' otherwise, 'unanswered' when either answer is missing, unparsed or failed."""
    from drivechain.evaluation.probes import answered, model_changed

    if a is None or b is None or not (answered(a) and answered(b)):
        return "unanswered"
    return "followed" if model_changed(a, b) == (expect == "flip") else "missed"


def probes_section(evals: list[Run], labels: dict[str, str], image: Callable[[Path], str | None]) -> list[dict[str, Any]]:
    """One entry per probe set that eval runs with a ``probes`` block evaluated."""
    from drivechain.dataset import load_dataset
    from drivechain.errors import DrivechainError

    by_data: dict[str, list[Run]] = {}
    for run in evals:
        if isinstance(run.summary.get("probes"), dict) and run.config.get("data"):
            by_data.setdefault(str(run.config["data"]), []).append(run)
    out = []
    for data, runs in by_data.items():
        entry: dict[str, Any] = {"dataset": runs[0].dataset, "models": [labels[str(r.path)] for r in runs],
                                 "tables": _tables(runs), "pairs": [], "pairs_total": 0}
        try:
            entry["pairs"], entry["pairs_total"] = _pairs(runs, load_dataset(Path(data)), image)
        except (DrivechainError, OSError, ValueError):
            entry["missing"] = True  # the probe set moved: the figures stand, the pairs are left out
        out.append(entry)
    return out
