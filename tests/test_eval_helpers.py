"""Hand-made frames for the evaluation tests: every answer type, every stage, a text node, an ambiguous node."""

from __future__ import annotations

import json
from pathlib import Path

from drivechain.schema import (
    QA, Agent, BooleanAnswer, ChainGraph, ChoiceAnswer, Frame, FrameRecord, Manifest, NumberAnswer,
    ObjectsAnswer, RankingAnswer, TextAnswer,
)

ACTIONS = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]


def make_record(i: int) -> FrameRecord:
    """One frame with a small graph whose truths vary with ``i``."""
    lead = 1 + i % 3
    agents = [Agent(id=k, x_m=10.0 * k, y_m=4.0 * (k % 2), heading_rad=0.0, speed_mps=20 + k,
                    rel_x_m=10.0 * k, rel_y_m=4.0 * (k % 2)) for k in (1, 2, 3)]
    frame = Frame(
        frame_id=f"test/highway/{i // 4}/{i % 4}", source="test", scenario="highway", episode=i // 4, step=i % 4,
        seed=i, t_s=float(i % 4), ego=Agent(id=0, x_m=0, y_m=0, heading_rad=0, speed_mps=25.0),
        agents=agents, actions=ACTIONS, available_actions=ACTIONS, images={"bev": f"images/{i}.png"},
    )
    pref = (i * 7) % 5
    nodes = [
        QA(qid="per.lead", family="per.lead", stage="perception", question="Which vehicle is the lead vehicle?",
           answer=ObjectsAnswer(ids=[lead])),
        QA(qid="per.lead_gap", family="per.gap", stage="perception", question="Gap to the lead vehicle?",
           answer=NumberAnswer(value=10.0 * lead, unit="m", abs_tol=2.0)),
        QA(qid="per.left_free", family="per.left_free", stage="perception", question="Is the left lane free?",
           answer=BooleanAnswer(value=i % 2 == 0)),
        QA(qid="per.band", family="per.band", stage="perception", question="Is it close?",
           answer=BooleanAnswer(value=True), ambiguous=True),
        QA(qid="pred.ttc", family="pred.ttc", stage="prediction", question="Time to collision with the lead?",
           answer=NumberAnswer(value=None if i % 3 == 0 else 4.0 + i, unit="s", rel_tol=0.2),
           parents=["per.lead"]),
        QA(qid="pred.cut_in", family="pred.cut_in", stage="prediction", question="Will vehicle 2 cut in?",
           answer=BooleanAnswer(value=i % 4 == 1), parents=["per.lead"]),
        QA(qid="pred.rank", family="pred.rank", stage="prediction", question="Rank vehicles by importance.",
           answer=RankingAnswer(ids=[lead] + [k for k in (1, 2, 3) if k != lead])),
        QA(qid="plan.action", family="plan.action", stage="planning", question="Which action should the ego take?",
           answer=ChoiceAnswer(options=ACTIONS, acceptable=[pref], preferred=pref, safe=[pref, (pref + 1) % 5]),
           parents=["pred.ttc"]),
        QA(qid="plan.brake", family="plan.brake", stage="planning", question="Must the ego brake?",
           answer=BooleanAnswer(value=pref == 4)),
        QA(qid="beh.describe", family="beh.describe", stage="behavior", question="Describe the ego's behavior.",
           answer=TextAnswer(references=[f"the ego keeps its lane behind vehicle {lead}"])),
        QA(qid="beh.speed", family="beh.speed", stage="behavior", question="Target speed?",
           answer=NumberAnswer(value=20.0 + i % 3 * 5, unit="m/s", abs_tol=1.0)),
    ]
    return FrameRecord(frame=frame, graph=ChainGraph(nodes=nodes))


def make_records(n: int) -> list[FrameRecord]:
    """``n`` frames."""
    return [make_record(i) for i in range(n)]


def write_dataset(root: Path, n: int) -> Path:
    """A dataset folder (manifest, frames.jsonl, tiny PNGs) that load_dataset reads."""
    import hashlib

    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    lines = []
    for rec in make_records(n):
        Image.new("RGB", (8, 8), (40 + 5 * rec.frame.step, 40 + 5 * rec.frame.episode, 40)).save(root / rec.frame.images["bev"])
        lines.append(rec.model_dump_json() + "\n")
    text = "".join(lines)
    (root / "frames.jsonl").write_text(text, encoding="utf-8")
    manifest = Manifest(name="test", source="test", config={}, seed=0, versions={},
                        counts={"frames": n}, frames_sha256=hashlib.sha256(text.encode()).hexdigest())
    (root / "manifest.json").write_text(json.dumps(manifest.model_dump()), encoding="utf-8")
    return root
