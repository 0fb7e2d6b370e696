"""Build one frame's chain graph: run every stage's question families in order, check the edges."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from drivechain.schema import STAGES, ChainGraph, ChoiceAnswer, Frame, ObjectsAnswer, RankingAnswer, QA
from drivechain.teacher.context import TeacherContext

Family = Callable[[TeacherContext], list[QA]]

# stage -> modules holding that stage's ``FAMILIES`` lists, in order; a new family is one function
# appended there (families of recorded logs sit in log_*.py and emit nothing on simulator frames)
_STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "perception": ("drivechain.teacher.families.perception", "drivechain.teacher.families.log_perception"),
    "prediction": ("drivechain.teacher.families.prediction", "drivechain.teacher.families.log_prediction"),
    "planning": ("drivechain.teacher.families.planning", "drivechain.teacher.families.log_planning"),
    "behavior": ("drivechain.teacher.families.behavior", "drivechain.teacher.families.log_behavior"),
}


def load_families() -> dict[str, list[Family]]:
    """Stage -> list of family callables; a stage whose module does not exist yet has none."""
    out: dict[str, list[Family]] = {}
    for stage in STAGES:
        out[stage] = []
        for name in _STAGE_MODULES[stage]:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name != name:  # a real import error inside the module must surface
                    raise
                continue
            out[stage] += list(getattr(module, "FAMILIES", []))
    return out


FAMILIES_BY_STAGE: dict[str, list[Family]] = load_families()


class GraphError(ValueError):
    """A family produced a node that breaks the graph's invariants (a teacher bug, not bad input)."""


def _mentioned_ids(node: QA) -> list[int]:
    ids = list(node.objects)
    if isinstance(node.answer, (ObjectsAnswer, RankingAnswer)):
        ids += node.answer.ids
    return ids


def _check_node(node: QA, stage: str, known: dict[str, str], visible: set[int]) -> None:
    if node.stage != stage:
        raise GraphError(f"{node.qid}: family of stage {stage} produced a {node.stage} node")
    if node.qid in known:
        raise GraphError(f"{node.qid}: duplicate qid")
    for parent in node.parents:
        if parent not in known:  # parents must be built before (same or earlier stage)
            raise GraphError(f"{node.qid}: parent {parent} does not exist before it")
    hidden = [i for i in _mentioned_ids(node) if i != 0 and i not in visible]
    if hidden:
        raise GraphError(f"{node.qid}: mentions agents not visible in the image: {hidden}")


def build_graph(
    frame: Frame,
    world: object | None,
    horizon_s: float = 3.0,
    families: dict[str, list[Family]] | None = None,
) -> ChainGraph:
    """Annotate one frame: perception -> prediction -> planning -> behavior families, checked."""
    ctx = TeacherContext(frame=frame, world=world, horizon_s=horizon_s)  # type: ignore[arg-type]
    by_stage = FAMILIES_BY_STAGE if families is None else families
    visible = {a.id for a in frame.agents if a.visible}
    known: dict[str, str] = {}
    for stage in STAGES:
        for family in by_stage.get(stage, []):
            for node in family(ctx):
                _check_node(node, stage, known, visible)
                known[node.qid] = stage
                ctx.nodes.append(node)
    return ChainGraph(nodes=list(ctx.nodes))


def preferred_action(graph: ChainGraph) -> str:
    """The ``plan.action`` node's preferred option; 'IDLE' only when the graph has no such node."""
    node = graph.get("plan.action")
    if node is None or not isinstance(node.answer, ChoiceAnswer):
        return "IDLE"
    return node.answer.options[node.answer.preferred]
