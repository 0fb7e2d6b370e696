"""The ``drivelm`` block of ``eval``'s summary.json, for datasets imported from DriveLM.

Each graded row of an imported DriveLM item carries its ground truth (``ground_truth``). The block
takes the model's answers on the links from the image alone (V->Per, V->Pred, V->Plan: DriveLM's
own setting, image and question), renders each in DriveLM's answer style (a choice as its letter,
yes/no in the ground truth's spelling, objects as the frame's tags, text as the model wrote it) and
scores them as ``challenge/evaluation.py`` does: accuracy (tag 0), language (tag 2), match
coordinate F1 (tag 3), the frame graph filter. Items without a ``tag`` (training files) get one
from their typed answer: choice/boolean 0, objects/ranking 3, text 2. The GPT score needs a
judge, which ``eval`` does not run: ``chatgpt`` and the final score stay None here; run
``drivechain score drivelm --run RUN --gt FILE --judge ...`` for them.
"""

from __future__ import annotations

from typing import Any

from drivechain.interop.drivelm.layout import Item

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def ground_truth(record: Any, qa: Any) -> dict[str, Any]:
    """What the DriveLM scorer needs of one imported item, stored on its graded rows."""
    dl = record.frame.meta.get("drivelm") or {}
    item = (qa.meta.get("drivelm") or {}).get("item") or {}
    out = {"scene": dl.get("scene"), "frame": dl.get("frame"), "stage": qa.stage,
           "index": int(str(qa.meta["drivelm"].get("id", "_0")).rsplit("_", 1)[1]),
           "Q": item.get("Q", qa.question), "A": item.get("A", ""), "tag": item.get("tag")}
    if qa.answer.type in ("objects", "ranking"):
        out["tags"] = {k: v.get("tag") for k, v in (dl.get("agents") or {}).items()}
    return out


def _yes_no(value: bool, gt: str) -> str:
    word = "yes" if value else "no"
    gt = gt.strip()
    if gt[:1].isupper():
        word = word.capitalize()
    return word + ("." if gt.endswith(".") else "")


def prediction_text(row: dict[str, Any]) -> str:
    """The model's answer of one row in DriveLM's answer style (its raw text when it did not parse)."""
    gt = row["drivelm"]
    value, raw = row.get("value"), row.get("raw")
    kind = row.get("type")
    if value is not None and row.get("status") not in ("unparsed", "failed"):
        if kind == "choice" and isinstance(value, int):
            return LETTERS[value]
        if kind == "boolean" and isinstance(value, bool):
            return _yes_no(value, str(gt["A"]))
        if kind in ("objects", "ranking") and isinstance(value, list):
            tags = gt.get("tags") or {}
            names = [tags.get(str(v)) or (f"({v[0]}, {v[1]})" if isinstance(v, list) else f"c{v}") for v in value]
            return (", ".join(names) + ".") if names else "None."
        if isinstance(value, str):
            return value
    return "" if raw is None else str(raw)


def drivelm_block(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """DriveLM's metrics over the image-only links' answers (chatgpt and final need a judge: None)."""
    from drivechain.interop.drivelm.language import pick_tokenizer
    from drivechain.interop.drivelm.score import figures, route_items

    picked: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        gt = r.get("drivelm")
        if gt and r.get("protocol") == "transitions" and r.get("image") is True and str(r.get("link", "")).startswith("V->"):
            picked.setdefault((gt["scene"], gt["frame"], gt["index"]), r)
    if not picked:
        return None
    keys = sorted(picked)  # rows arrive in completion order: a fixed order keeps summary.json reproducible
    items, preds = [], {}
    for key in keys:
        r = picked[key]
        gt = r["drivelm"]
        qa = {"Q": gt["Q"], "A": gt["A"]}
        if gt.get("tag") is not None:
            qa["tag"] = gt["tag"]
        item = Item(gt["scene"], gt["frame"], gt["stage"], gt["index"], qa)
        items.append(item)
        preds[item.item_id] = {"answer": prediction_text(r)}
    routed = route_items(items, preds)
    out = figures(routed, [], [], pick_tokenizer("auto"))
    out["links"] = ["V->Per", "V->Pred", "V->Plan"]
    out["note"] = "chatgpt and final_score need a judge: drivechain score drivelm --run RUN --gt FILE --judge openai:NAME"
    return out


def run_predictions(run_dir: Any) -> list[dict[str, str]]:
    """A run folder's answers on DriveLM items as the challenge's flat list ``[{id, question, answer}]``."""
    import json
    from pathlib import Path

    from drivechain.errors import DatasetError
    from drivechain.interop.drivelm.layout import item_id

    path = Path(run_dir) / "scores.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path} is missing; --run must be a folder written by 'drivechain eval'")
    out: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                raise DatasetError(f"{path}:{number}: not a JSON line; the run folder is damaged") from None
            gt = r.get("drivelm")
            if gt and r.get("protocol") == "transitions" and r.get("image") is True and str(r.get("link", "")).startswith("V->"):
                iid = item_id(gt["scene"], gt["frame"], gt["index"])
                out.setdefault(iid, {"id": iid, "question": gt["Q"], "answer": prediction_text(r)})
    if not out:
        raise DatasetError(f"{path} holds no answers on imported DriveLM items (V-> links with the image)")
    return list(out.values())
