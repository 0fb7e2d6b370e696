"""Hand-made frames and QA nodes covering every answer type (shared by the grading/prompt/builtin tests)."""

from __future__ import annotations

from drivechain.schema import (
    QA,
    Agent,
    BooleanAnswer,
    ChainGraph,
    ChoiceAnswer,
    Frame,
    FrameRecord,
    NumberAnswer,
    ObjectsAnswer,
    RankingAnswer,
    TextAnswer,
)

ACTIONS = ["LANE_LEFT", "IDLE", "LANE_RIGHT", "FASTER", "SLOWER"]


def qa(qid: str, stage: str, answer, question: str = "", **kw) -> QA:
    """A QA node with the family taken from the qid."""
    family = ".".join(qid.split(".")[:2])
    return QA(qid=qid, family=family, stage=stage, question=question or f"Question {qid}?", answer=answer, **kw)


def nodes() -> list[QA]:
    """One chain with every answer type, none numbers, empty sets and a ranking."""
    return [
        qa("per.lead_vehicle", "perception", BooleanAnswer(value=True), "Is there a vehicle ahead in the ego lane?"),
        qa("per.left_free", "perception", BooleanAnswer(value=False), "Is the left lane free?"),
        qa("per.right_free", "perception", BooleanAnswer(value=True, accept_both=True), "Is the right lane free?"),
        qa("per.lead_distance", "perception", NumberAnswer(value=18.4, unit="m", abs_tol=2.0, rel_tol=0.1)),
        qa("per.nearby", "perception", ObjectsAnswer(ids=[3, 5], positions_m=[(18.4, 0.1), (-6.0, 4.0)])),
        qa("per.behind", "perception", ObjectsAnswer(ids=[])),
        qa("pred.cut_in.v3", "prediction", BooleanAnswer(value=True), "Will vehicle 3 cut in?", objects=[3]),
        qa("pred.ttc_lead", "prediction", NumberAnswer(value=None, unit="s", abs_tol=0.5)),
        qa("pred.ttc_v5", "prediction", NumberAnswer(value=2.25, unit="s", rel_tol=0.2)),
        qa("pred.exact", "prediction", NumberAnswer(value=-3.125, unit="m")),
        qa(
            "plan.action",
            "planning",
            ChoiceAnswer(options=ACTIONS, acceptable=[1, 4], preferred=4, safe=[1, 2, 4]),
            "Which action should the ego take?",
        ),
        qa("plan.safe.LANE_LEFT", "planning", BooleanAnswer(value=False), "Is LANE_LEFT safe?"),
        qa("plan.importance", "planning", RankingAnswer(ids=[3, 5, 1])),
        qa("plan.none_rank", "planning", RankingAnswer(ids=[])),
        qa(
            "beh.longitudinal",
            "behavior",
            ChoiceAnswer(options=["accelerate", "keep speed", "decelerate"], acceptable=[2], preferred=2),
        ),
        qa("beh.explain", "behavior", TextAnswer(references=["Slow down because vehicle 3 cuts in."])),
        qa("per.amb", "perception", BooleanAnswer(value=True), ambiguous=True),
    ]


def record(graph_nodes: list[QA] | None = None, frame_id: str = "highway/highway/0/3") -> FrameRecord:
    """A frame with an image and two history images, and its graph."""
    ego = Agent(id=0, x_m=100.0, y_m=4.0, heading_rad=0.0, speed_mps=25.0)
    others = [
        Agent(id=3, x_m=118.4, y_m=4.1, heading_rad=0.0, speed_mps=20.0, rel_x_m=18.4, rel_y_m=0.1),
        Agent(id=5, x_m=94.0, y_m=0.0, heading_rad=0.0, speed_mps=27.0, rel_x_m=-6.0, rel_y_m=4.0),
    ]
    frame = Frame(
        frame_id=frame_id,
        source="highway",
        scenario="highway",
        episode=0,
        step=3,
        seed=7,
        t_s=3.0,
        ego=ego,
        agents=others,
        actions=ACTIONS,
        available_actions=ACTIONS,
        images={"bev": "images/f3.png"},
        history_images=["images/f1.png", "images/f2.png"],
    )
    return FrameRecord(frame=frame, graph=ChainGraph(nodes=graph_nodes if graph_nodes is not None else nodes()))


def test_record_covers_every_answer_type():
    types = {n.answer.type for n in record().graph.nodes}
    assert types == {"choice", "boolean", "number", "objects", "ranking", "text"}
    assert FrameRecord.model_validate_json(record().model_dump_json()) == record()
