"""The data model round-trips through JSON and rejects what it must."""

import pytest
from pydantic import ValidationError

from drivechain.schema import QA, Agent, ChainGraph, ChoiceAnswer, Frame, FrameRecord, NumberAnswer


def _frame() -> Frame:
    ego = Agent(id=0, x_m=0.0, y_m=0.0, heading_rad=0.0, speed_mps=25.0)
    other = Agent(id=3, x_m=20.0, y_m=4.0, heading_rad=0.0, speed_mps=20.0, rel_x_m=20.0, rel_y_m=-4.0)
    return Frame(
        frame_id="highway/highway/0/0", source="highway", scenario="highway", episode=0, step=0,
        seed=1, t_s=0.0, ego=ego, agents=[other], actions=["LANE_LEFT", "IDLE"],
    )


def test_frame_record_round_trips_with_typed_answers():
    graph = ChainGraph(nodes=[
        QA(qid="plan.action", family="plan.action", stage="planning", question="?",
           answer=ChoiceAnswer(options=["a", "b"], acceptable=[0, 1], preferred=1, safe=[0, 1])),
        QA(qid="pred.ttc", family="pred.ttc", stage="prediction", question="?",
           answer=NumberAnswer(value=None, unit="s", abs_tol=0.5)),
    ])
    rec = FrameRecord(frame=_frame(), graph=graph)
    back = FrameRecord.model_validate_json(rec.model_dump_json())
    assert back == rec
    assert isinstance(back.graph.get("pred.ttc").answer, NumberAnswer)
    assert back.frame.agent(3).rel_y_m == -4.0
    assert back.frame.agent(0) is back.frame.ego
    assert [n.qid for n in back.graph.stage("planning")] == ["plan.action"]


def test_unknown_answer_type_and_extra_fields_are_rejected():
    with pytest.raises(ValidationError):
        QA.model_validate({"qid": "x", "family": "x", "stage": "planning", "question": "?",
                           "answer": {"type": "vibes", "value": 1}})
    with pytest.raises(ValidationError):
        Agent.model_validate({"id": 0, "x_m": 0, "y_m": 0, "heading_rad": 0, "speed_mps": 0, "oops": 1})
