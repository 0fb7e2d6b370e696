"""Human verdicts on the teacher's labels: ``corrections.jsonl``, honoured by ratings, exports and training.

One JSON object per line: ``{"frame_id": ..., "qid": ..., "verdict": "wrong" | "ok", "note": ...}``.
- ``wrong``: the teacher's label of that question in that frame is not trusted. The node is treated
  as ambiguous from then on: it is not asked, not part of any step, not rated, not exported, so no
  step is rated -1 (or +1) because of it. A wrong label is worse than a missing one.
- ``ok``: a person checked the label and agrees; nothing changes (kept so a reviewer's work is
  recorded and ``drivechain review`` can leave confirmed labels out).
The last line for a (frame, qid) wins. ``drivechain process`` reads ``--corrections FILE`` (default:
``corrections.jsonl`` in the dataset folder), applies it to every frame before rating, and records
the file's SHA-256 in its ``config.json``; ``prm-train`` refuses process data whose corrections file
has changed since (re-run ``process``, which re-rates from the dataset, so ratings, exports and the
training labels all follow the verdicts).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from drivechain.errors import DatasetError
from drivechain.schema import FrameRecord

FILENAME = "corrections.jsonl"
VERDICTS = ("wrong", "ok")


class Correction(BaseModel):
    """A person's verdict on one (frame, question) label."""

    frame_id: str
    qid: str
    verdict: str
    note: str = ""


def load_corrections(path: Path | None) -> dict[tuple[str, str], Correction]:
    """(frame_id, qid) -> the last verdict in the file; empty when the file does not exist."""
    if path is None or not path.is_file():
        return {}
    out: dict[tuple[str, str], Correction] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"corrections file {path} cannot be read ({exc}); fix or remove it") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            c = Correction.model_validate(json.loads(line))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0][:100]
            raise DatasetError(f"{path}:{n} is not a correction ({first}); expected "
                               '{"frame_id": ..., "qid": ..., "verdict": "wrong"|"ok"}') from None
        if c.verdict not in VERDICTS:
            raise DatasetError(f"{path}:{n}: verdict {c.verdict!r} must be one of {', '.join(VERDICTS)}")
        out[(c.frame_id, c.qid)] = c
    return out


def file_sha256(path: Path | None) -> str | None:
    """SHA-256 of a corrections file, None when there is none."""
    if path is None or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def apply_corrections(records: list[FrameRecord], corrections: dict[tuple[str, str], Correction]) -> dict[str, Any]:
    """Mark labels judged wrong as ambiguous (in place); counts of applied, confirmed and unmatched verdicts."""
    applied, confirmed = 0, 0
    matched: set[tuple[str, str]] = set()
    for rec in records:
        fid = rec.frame.frame_id
        for qa in rec.graph.nodes:
            c = corrections.get((fid, qa.qid))
            if c is None:
                continue
            matched.add((fid, qa.qid))
            if c.verdict == "wrong":
                qa.ambiguous = True
                qa.meta = {**qa.meta, "correction": c.note or "marked wrong by a reviewer"}
                applied += 1
            else:
                confirmed += 1
    frames = {r.frame.frame_id for r in records}
    unmatched = sorted(f"{f}:{q}" for f, q in corrections if f in frames and (f, q) not in matched)
    return {"wrong": applied, "ok": confirmed, "unmatched": unmatched[:20], "unmatched_count": len(unmatched)}


def default_path(dataset_root: Path) -> Path:
    """``corrections.jsonl`` inside the dataset folder."""
    return dataset_root / FILENAME


def check_corrections_current(process_dir: Path) -> None:
    """Refuse process data rated before its corrections file changed (its labels would be stale)."""
    try:
        cfg = json.loads((process_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # no record of corrections: nothing to compare
    rec = cfg.get("corrections")
    if not isinstance(rec, dict) or not rec.get("path"):
        return
    now = file_sha256(Path(rec["path"]))
    if now != rec.get("sha256"):
        raise DatasetError(f"{rec['path']} changed since 'drivechain process' rated {process_dir}; "
                           f"re-run 'drivechain process --out {process_dir}' so the labels follow it")
