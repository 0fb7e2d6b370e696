"""Paraphrase robustness (``eval --variants all``): each question asked in each of its kept wordings.

A polished dataset (``drivechain polish``) gives a question up to K checked rewordings; variant 0 is
the template. For variant i >= 1 the frame is asked again on the teacher-forced links with every
question that has an i-th wording reworded (upstream questions shown as context too); only the rows
of questions that really have variant i are kept, tagged ``variant: i``. Template rows carry
no ``variant`` field and are the only rows the usual summary sees, so scores stay comparable with a run
without variants.

The ``variants`` block of summary.json, overall and per family and per link: the mean score per
variant over the questions that have at least one rewording (variant 0 = their template), the
**drop** (template score minus the mean over its rewordings, per question, averaged) and the
**consistency** (share of questions whose parsed answer is the same in every wording; an unparsed
or failed answer is an answer of its own), each with a 95 % bootstrap interval over frames.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drivechain.schema import FrameRecord

BOOTSTRAP_SAMPLES = 1000


def max_variants(records: list[FrameRecord]) -> int:
    """The largest number of question rewordings any node of these frames has."""
    return max((len(qa.question_variants) for rec in records for qa in rec.graph.nodes), default=0)


def variant_record(record: FrameRecord, index: int) -> tuple[FrameRecord, set[str]] | None:
    """The frame with every question that has wording ``index`` reworded, and those qids; None if none has it."""
    reworded: set[str] = set()
    nodes = []
    for qa in record.graph.nodes:
        text = qa.question_variant(index)
        if text is None or index == 0:
            nodes.append(qa)
            continue
        reworded.add(qa.qid)
        nodes.append(qa.model_copy(update={"question": text}))
    if not reworded:
        return None
    return record.model_copy(update={"graph": record.graph.model_copy(update={"nodes": nodes})}), reworded


def frame_variant_jobs(record: FrameRecord, ask: Any, opts: Any) -> list[Any]:
    """Coroutines asking every rewording of one frame on the teacher-forced links (rows tagged ``variant``)."""
    from drivechain.evaluation.protocols import transitions

    async def job(vrec: FrameRecord, qids: set[str], index: int) -> list:
        rows = await transitions(vrec, ask, opts)
        return [{**r, "variant": index} for r in rows if r["qid"] in qids]

    jobs = []
    for index in range(1, max_variants([record]) + 1):
        made = variant_record(record, index)
        if made is not None:
            jobs.append(job(made[0], made[1], index))
    return jobs


def count_variant_requests(record: FrameRecord, opts: Any) -> int:
    """Requests the rewordings of one frame make."""
    from drivechain.evaluation.protocols import count_requests

    return sum(count_requests(made[0], ("transitions",), opts.image, opts)
               for index in range(1, max_variants([record]) + 1) if (made := variant_record(record, index)))


def variant_group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of one frame's rows, those the ``variants`` block reads: typed transition rows of reworded questions,
    in every wording (template included), cut to the fields it uses."""
    from drivechain.evaluation.summary import typed

    tf = [r for r in rows if r.get("protocol") == "transitions" and typed(r)]
    reworded = {(r["qid"], r["link"], r["image"]) for r in tf if r.get("variant")}
    fields = ("frame_id", "qid", "link", "image", "variant", "family", "score", "status", "value", "protocol", "type")
    return [{k: r[k] for k in fields if k in r} for r in tf if (r["qid"], r["link"], r["image"]) in reworded]


def _answer(row: dict[str, Any]) -> str:
    import json

    if row.get("status") in ("failed", "unparsed"):
        return f"<{row.get('status')}>"
    return json.dumps(row.get("value"), sort_keys=True)


def _groups(rows: list[dict[str, Any]]) -> dict[tuple, dict[int, dict[str, Any]]]:
    """(frame, qid, link, image) -> variant -> row, for typed transition rows of reworded questions."""
    from drivechain.evaluation.summary import typed

    groups: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if r.get("protocol") == "transitions" and typed(r):
            groups[(r["frame_id"], r["qid"], r["link"], r["image"])][int(r.get("variant") or 0)] = r
    return {k: v for k, v in groups.items() if 0 in v and len(v) > 1}


def _block(groups: list[dict[int, dict[str, Any]]], frames: list[str], seed: int) -> dict[str, Any]:
    import numpy as np

    per_variant: dict[int, list[float]] = defaultdict(list)
    drops, consistent, frame_of = [], [], []
    for g in groups:
        for index, row in g.items():
            per_variant[index].append(float(row["score"]))
        others = [float(row["score"]) for index, row in g.items() if index > 0]
        drops.append(float(g[0]["score"]) - sum(others) / len(others))
        consistent.append(1.0 if len({_answer(row) for row in g.values()}) == 1 else 0.0)
        frame_of.append(g[0]["frame_id"])
    fidx = {f: i for i, f in enumerate(frames)}
    idx = np.array([fidx[f] for f in frame_of])
    rng = np.random.default_rng(seed)

    def ci(values: list[float]) -> list[float] | None:
        sums = np.bincount(idx, weights=np.array(values), minlength=len(frames))
        counts = np.bincount(idx, minlength=len(frames))
        pick = rng.integers(0, len(frames), size=(BOOTSTRAP_SAMPLES, len(frames)))
        n = counts[pick].sum(axis=1)
        means = sums[pick].sum(axis=1)[n > 0] / n[n > 0]
        if means.size == 0:
            return None
        lo, hi = np.percentile(means, [2.5, 97.5])
        return [round(float(lo), 6), round(float(hi), 6)]

    return {
        "questions": len(groups),
        "per_variant": {str(i): round(sum(v) / len(v), 6) for i, v in sorted(per_variant.items())},
        "drop": round(sum(drops) / len(drops), 6), "drop_ci95": ci(drops),
        "consistency": round(sum(consistent) / len(consistent), 6), "consistency_ci95": ci(consistent),
    }


def variants_summary(rows: list[dict[str, Any]], frames: list[str], seed: int = 0) -> dict[str, Any] | None:
    """The ``variants`` block of summary.json (None when no reworded question was asked)."""
    groups = _groups(rows)
    if not groups:
        return None
    frames = sorted(set(frames) | {k[0] for k in groups})
    by_family: dict[str, list] = defaultdict(list)
    by_link: dict[str, list] = defaultdict(list)
    for key, g in groups.items():
        by_family[g[0]["family"]].append(g)
        by_link[key[2] if key[3] else f"{key[2]} (no image)"].append(g)
    return {
        **_block(list(groups.values()), frames, seed),
        "families": {f: _block(gs, frames, seed) for f, gs in sorted(by_family.items())},
        "links": {link: _block(gs, frames, seed) for link, gs in sorted(by_link.items())},
    }
