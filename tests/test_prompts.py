"""The prompt: conventions, image parts, upstream Q/A lines, lettered options, JSON instruction, meta."""

from __future__ import annotations

from drivechain.models.base import ImagePart, TextPart
from drivechain.prompts import (
    SYSTEM_PROMPT,
    build_request,
    format_answer,
    format_value,
    parse_prompt,
)
from tests.test_grading_data import record


def _by_qid():
    return {n.qid: n for n in record().graph.nodes}


def test_format_answer_for_every_type():
    n = _by_qid()
    assert format_answer(n["plan.action"]) == "E"
    assert format_answer(n["per.lead_vehicle"]) == "yes"
    assert format_answer(n["per.lead_distance"]) == "18.4 m"
    assert format_answer(n["pred.ttc_lead"]) == "none"
    assert format_answer(n["pred.exact"]) == "-3.125 m"
    assert format_answer(n["per.nearby"]) == "3, 5"
    assert format_answer(n["per.behind"]) == "none"
    assert format_answer(n["plan.importance"]) == "3 > 5 > 1"
    assert format_answer(n["plan.none_rank"]) == "none"
    assert format_answer(n["beh.explain"]).startswith("Slow down")
    assert format_value(n["plan.action"], 1) == "B"
    assert format_value(n["per.nearby"], [3, (12.0, -3.5)]) == "3, (12, -3.5)"
    assert format_value(n["pred.ttc_lead"], 2.0) == "2 s"


def test_request_layout_with_image_history_and_upstream():
    rec = record()
    n = _by_qid()
    targets = [n["plan.action"], n["pred.ttc_lead"]]
    up = [(n["per.lead_vehicle"], "yes"), (n["beh.longitudinal"], "C")]
    req = build_request(rec, targets, image=True, upstream=up, history=True, image_root="/data", seed=3)
    system, user = req.messages
    assert system.role == "system" and system.text() == SYSTEM_PROMPT
    assert "x forward" in SYSTEM_PROMPT and "LEFT" in SYSTEM_PROMPT and "vehicle 3" in SYSTEM_PROMPT
    images = [p.path for p in user.content if isinstance(p, ImagePart)]
    assert images == ["images/f1.png", "images/f2.png", "images/f3.png"]
    text = user.content[-1].text
    assert isinstance(user.content[-1], TextPart)
    assert "Q (per.lead_vehicle): Is there a vehicle ahead in the ego lane?\nA: yes" in text
    assert "A: C. decelerate" in text  # an upstream letter carries its option text
    assert "[plan.action] (choice)" in text and "\nA. LANE_LEFT\n" in text and "\nE. SLOWER\n" in text
    assert "Unit: s" in text and "ONE JSON object keyed by question id" in text
    assert req.meta["qids"] == ["plan.action", "pred.ttc_lead"]
    assert req.meta["stages"] == ["prediction", "planning"] and req.meta["frame_id"] == rec.frame.frame_id
    assert req.meta["oracle"] == {"plan.action": "E", "pred.ttc_lead": "none"}
    assert req.image_root == "/data" and req.seed == 3
    # meta is never part of the key, what is sent is
    other = req.model_copy(update={"meta": {}})
    assert other.key("m") == req.key("m")
    no_img = build_request(rec, targets, image=False, upstream=up)
    assert not any(isinstance(p, ImagePart) for p in no_img.messages[1].content)
    assert no_img.key("m") != req.key("m")


def test_cot_prompt_asks_for_stage_sections_then_json():
    rec = record()
    req = build_request(rec, rec.graph.nodes, image=True, upstream=[], cot=True)
    text = req.messages[1].content[-1].text
    for h in ("Perception:", "Prediction:", "Planning:", "Behavior:"):
        assert f'"{h}"' in text
    assert "end with ONE JSON object" in text and req.meta["cot"] is True


def test_prompt_reads_back_for_text_only_baselines():
    rec = record()
    n = _by_qid()
    targets = list(rec.graph.nodes)
    req = build_request(rec, targets, image=False, upstream=[(n["per.left_free"], "no")])
    view = parse_prompt(req.messages[1].text())
    assert [t.qid for t in view.targets] == [q.qid for q in targets]
    action = next(t for t in view.targets if t.qid == "plan.action")
    assert action.type == "choice" and action.options == n["plan.action"].answer.options
    assert next(t for t in view.targets if t.qid == "pred.ttc_v5").unit == "s"
    assert view.upstream == [("per.left_free", "Is the left lane free?", "no")]
    assert (view.scenario, view.command) == ("highway", "follow lane")
