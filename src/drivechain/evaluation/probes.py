"""The probes protocol: the same questions on an original frame and its counterfactual edits.

Run on a probe set (``drivechain probe``). Each frame is asked, from the image alone (V->Per,
V->Pred, V->Plan), the questions its probes track: an original its ``probe_qids``, an edited frame
its probe's expected flips and must-not-change (stable) questions. Pairing the answers gives
- flip recall: of the questions whose teacher answer the edit changed, the share whose model
  answer changed too;
- stability: of the questions whose teacher answer did not change, the share whose model answer
  did not change either;
per family, link, edit and role (critical / distractor), with 95 % bootstrap intervals over
probes. docs/probes.md.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from drivechain.schema import FrameRecord

# the image-only links, by target stages (behavior is asked with planning)
PROBE_LINKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("V->Per", ("perception",)),
    ("V->Pred", ("prediction",)),
    ("V->Plan", ("planning", "behavior")),
)
BOOTSTRAP_SAMPLES = 1000


def probe_qids(record: FrameRecord) -> set[str]:
    """The questions a probe-set frame is asked (none for a frame of an ordinary dataset)."""
    probe = record.frame.meta.get("probe")
    if isinstance(probe, dict):
        return set(probe.get("flips", [])) | set(probe.get("stable", []))
    return set(record.frame.meta.get("probe_qids") or [])


def _groups(record: FrameRecord) -> list[tuple[str, list[Any]]]:
    wanted = probe_qids(record)
    out = []
    for link, stages in PROBE_LINKS:
        targets = [n for n in record.graph.nodes if n.qid in wanted and n.stage in stages]
        if targets:
            out.append((link, targets))
    return out


def count_probe_requests(record: FrameRecord) -> int:
    """Requests the probes protocol sends for this frame."""
    return len(_groups(record))


async def probes(record: FrameRecord, ask: Any, opts: Any) -> list[dict[str, Any]]:
    """Ask a probe-set frame its tracked questions from the image; rows carry the probe pairing."""
    from drivechain.evaluation.protocols import _build, grade_reply
    from drivechain.prompts import format_answer

    probe = record.frame.meta.get("probe") if isinstance(record.frame.meta.get("probe"), dict) else None
    expect = {}
    if probe:
        expect = {**{q: "flip" for q in probe.get("flips", [])}, **{q: "stable" for q in probe.get("stable", [])}}

    async def one(link: str, targets: list[Any]) -> list[dict[str, Any]]:
        out = await ask(_build(record, targets, opts, image=True, upstream=[]))
        base = {"protocol": "probes", "link": link, "image": True,
                "probe_id": probe["id"] if probe else None,
                "probe_of": probe["of"] if probe else record.frame.frame_id,
                "probe_edit": probe["edit"] if probe else None,
                "probe_role": probe["role"] if probe else None}
        rows, _ = grade_reply(record, targets, out, base)
        by_qid = {t.qid: t for t in targets}
        for row in rows:
            qa = by_qid[row["qid"]]
            row["expect"] = expect.get(row["qid"])
            row["truth"] = format_answer(qa)
            row["tol"] = _tolerance(qa)
        return rows

    parts = await asyncio.gather(*(one(link, t) for link, t in _groups(record)))
    return [r for rows in parts for r in rows]


def _tolerance(qa: Any) -> float | None:
    if qa.answer.type != "number":
        return None
    from drivechain.probing import number_tolerance

    return number_tolerance(qa)


def answered(row: dict[str, Any]) -> bool:
    """Did the model give a usable answer (not failed, not unparsed)?"""
    return row.get("status") not in ("failed", "unparsed") and row.get("raw") is not None


def model_changed(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Did the model's answer change between two rows of the same question?"""
    va, vb = a.get("value"), b.get("value")
    if a.get("type") == "number" and isinstance(va, (int, float)) and isinstance(vb, (int, float)):
        return abs(float(va) - float(vb)) > float(a.get("tol") or 0.0)
    if isinstance(va, list) and isinstance(vb, list):
        return sorted(map(str, va)) != sorted(map(str, vb))
    return va != vb


def pair_outcomes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One item per (probe, tracked question): expected kind and whether the model behaved so."""
    originals = {(r["probe_of"], r["qid"]): r for r in rows
                 if r.get("protocol") == "probes" and r.get("probe_id") is None}
    out = []
    for r in rows:
        if r.get("protocol") != "probes" or r.get("probe_id") is None or r.get("expect") is None:
            continue
        o = originals.get((r["probe_of"], r["qid"]))
        if o is None:
            continue
        ok = answered(o) and answered(r)
        changed = ok and model_changed(o, r)
        good = changed if r["expect"] == "flip" else (ok and not changed)
        out.append({"probe": r["probe_id"], "of": r["probe_of"], "qid": r["qid"], "family": r["family"],
                    "link": r["link"], "edit": r["probe_edit"], "role": r["probe_role"], "expect": r["expect"],
                    "ok": float(good), "answered": ok})
    return out


def _bootstrap(items: list[dict[str, Any]], seed: int = 0) -> list[float] | None:
    """95 % percentile interval of the mean of ``ok``, resampling probes (items of a probe together)."""
    import numpy as np

    if not items:
        return None
    by_probe: dict[str, list[float]] = defaultdict(list)
    for it in items:
        by_probe[it["probe"]].append(it["ok"])
    sums = np.array([sum(v) for v in by_probe.values()])
    counts = np.array([len(v) for v in by_probe.values()])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sums), size=(BOOTSTRAP_SAMPLES, len(sums)))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [round(float(lo), 6), round(float(hi), 6)]


def _cell(items: list[dict[str, Any]]) -> dict[str, Any]:
    flips = [i for i in items if i["expect"] == "flip"]
    stable = [i for i in items if i["expect"] == "stable"]
    mean = lambda xs: round(sum(x["ok"] for x in xs) / len(xs), 6) if xs else None  # noqa: E731
    return {"flip_recall": mean(flips), "flip_recall_ci95": _bootstrap(flips), "flips": len(flips),
            "stability": mean(stable), "stability_ci95": _bootstrap(stable), "stable": len(stable)}


def probe_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``probes`` block of summary.json (None when the run has no probe rows)."""
    items = pair_outcomes(rows)
    if not items:
        return None
    block: dict[str, Any] = {
        "kind": "probes",
        "title": "Counterfactual probes",
        "description": "Same questions on an original frame and on a copy with one vehicle edited (removed, "
                       "moved a lane, sped up/slowed, braking). flip_recall: share of the answers the edit "
                       "changed for the teacher that the model changed too; stability: share of the answers the "
                       "edit did not change that the model kept. 95 % bootstrap intervals over probes. "
                       "docs/probes.md",
        "probes": len({i["probe"] for i in items}),
        "frames": len({i["of"] for i in items}),
        "unanswered_pairs": sum(1 for i in items if not i["answered"]),
        **_cell(items),
    }
    for key in ("family", "link", "edit", "role"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for it in items:
            groups[str(it[key])].append(it)
        block[f"by_{key}"] = {k: _cell(v) for k, v in sorted(groups.items())}
    return block
