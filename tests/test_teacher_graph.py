"""Graph invariants on real frames of every scenario, and determinism."""

from __future__ import annotations

import re

import pytest

from drivechain.schema import STAGES, ObjectsAnswer
from drivechain.sources.base import make_source
from drivechain.teacher.graph import GraphError, build_graph, preferred_action
from drivechain.schema import QA, BooleanAnswer


def _graphs(scenario: str, seed: int, steps: int = 2):
    src = make_source("highway", scenario)
    src.reset(seed=seed)
    out = []
    for _ in range(steps):
        frame = src.frame()
        out.append((frame, build_graph(frame, src)))
        src.step("IDLE")
    return out


@pytest.mark.parametrize("scenario", ["highway", "merge", "intersection", "roundabout", "exit"])
def test_invariants_and_determinism(scenario):
    graphs = _graphs(scenario, seed=7)
    again = _graphs(scenario, seed=7)
    for (frame, graph), (_, graph2) in zip(graphs, again):
        assert graph.model_dump_json() == graph2.model_dump_json()
        rank = {s: i for i, s in enumerate(STAGES)}
        seen: dict[str, str] = {}
        visible = {a.id for a in frame.agents if a.visible}
        for node in graph.nodes:
            assert node.qid not in seen
            for p in node.parents:
                assert p in seen and rank[seen[p]] <= rank[node.stage]
            ids = set(node.objects) | (set(node.answer.ids) if isinstance(node.answer, ObjectsAnswer) else set())
            assert ids <= visible
            per_vehicle = re.search(r"\.v(\d+)$", node.qid)
            if per_vehicle:  # a per-vehicle question names the vehicle by its mark
                assert f"vehicle {per_vehicle.group(1)}" in node.question
            seen[node.qid] = node.stage
        assert graph.get("per.vehicles") is not None


def test_engine_rejects_broken_nodes():
    frame, _ = _graphs("merge", seed=1, steps=1)[0]
    bad = QA(qid="x.y", family="x", stage="perception", question="?", answer=BooleanAnswer(value=True),
             parents=["nope"])
    with pytest.raises(GraphError):
        build_graph(frame, None, families={"perception": [lambda ctx: [bad]]})
    hidden = QA(qid="x.z", family="x", stage="perception", question="?", answer=BooleanAnswer(value=True),
                objects=[10_000])
    with pytest.raises(GraphError):
        build_graph(frame, None, families={"perception": [lambda ctx: [hidden]]})
    assert preferred_action(build_graph(frame, None, families={})) == "IDLE"
