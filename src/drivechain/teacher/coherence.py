"""The rule of every parent -> child edge of a chain graph, and the check that no parent contradicts its child.

An edge is keyed by family: ``"<parent family> -> <child family>"``. Its rule says what the parent's
answer implies for the child's; ``check_graph`` applies it to every edge of a frame's graph. A
violation is a parent answer that contradicts its child's answer under the rule. Answers that
accept both values (a band) and ambiguous nodes are never a contradiction: a reader may take either
side. Edges whose parent only supplies context (a fact the child's explanation uses, implying no
particular answer) are listed with the rule "context" and are not checked. docs/questions.md lists
the rules; the generator counts checked edges and violations per edge in the manifest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drivechain.schema import QA, BooleanAnswer, ChainGraph, ChoiceAnswer, NumberAnswer, ObjectsAnswer, RankingAnswer
from drivechain.teacher import bands, rss

Check = Callable[[QA, QA, ChainGraph], bool]  # True: coherent


@dataclass(frozen=True)
class Rule:
    """One edge's rule: its statement and its check (None: a context edge, not checked)."""

    text: str
    check: Check | None


def _strict_bool(node: QA) -> bool | None:
    """The node's yes/no when it is firm (not ambiguous, not accepting both), else None."""
    a = node.answer
    if node.ambiguous or not isinstance(a, BooleanAnswer) or a.accept_both:
        return None
    return a.value


def _choice(node: QA) -> str | None:
    a = node.answer
    if node.ambiguous or not isinstance(a, ChoiceAnswer):
        return None
    return a.options[a.preferred]


def _ids(node: QA) -> list[int]:
    a = node.answer
    return list(a.ids) if isinstance(a, (ObjectsAnswer, RankingAnswer)) else []


def _lanes(graph: ChainGraph) -> tuple[int, int] | None:
    """(lane count, ego lane from the left) when both perception answers exist."""
    n, k = graph.get("per.lanes"), graph.get("per.ego_lane")
    if n is None or k is None or not isinstance(n.answer, NumberAnswer) or not isinstance(k.answer, NumberAnswer):
        return None
    if n.answer.value is None or k.answer.value is None:
        return None
    return int(n.answer.value), int(k.answer.value)


def _side_of(qid: str) -> int:
    """+1 for a qid about the left lane, -1 right, 0 the ego lane."""
    tail = qid.rsplit(".", 1)[-1]
    return 1 if "left" in tail else (-1 if "right" in tail else 0)


# --- checks -------------------------------------------------------------------------------------


def _objects_listed(parent: QA, child: QA, graph: ChainGraph) -> bool:
    return set(child.objects) | set(_ids(child)) <= set(_ids(parent)) | {0}


def _ego_lane_within(parent: QA, child: QA, graph: ChainGraph) -> bool:
    lanes = _lanes(graph)
    return lanes is None or 1 <= lanes[1] <= lanes[0]


def _side_lane_exists(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """A question about the left/right lane is asked only where that lane exists; a missing lane is never free."""
    lanes = _lanes(graph)
    if lanes is None:
        return True
    n, k = lanes
    side = _side_of(child.qid)
    exists = (k > 1) if side == 1 else ((k < n) if side == -1 else True)
    if child.family == "per.lane_free":
        return exists or _strict_bool(child) is not True
    return exists


def _same_vehicle(parent: QA, child: QA, graph: ChainGraph) -> bool:
    ids = _ids(parent)
    return not ids or not child.objects or set(child.objects) <= set(ids)


def _lead_speed_vs_ttc(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """A lead that is faster or about as fast is not being closed on: no time to collision."""
    speed = _choice(parent)
    if child.ambiguous or speed is None or not isinstance(child.answer, NumberAnswer):
        return True
    if speed in ("faster", "about the same speed") and len(parent.answer.acceptable) == 1:  # type: ignore[union-attr]
        return child.answer.value is None
    return True


def _cut_in_from_side_lane(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """Only a vehicle in the left or right lane can cut into the ego lane."""
    a = parent.answer
    if parent.ambiguous or not isinstance(a, ChoiceAnswer):
        return True
    return bool({a.options[i] for i in a.acceptable} & {"left lane", "right lane"})


def _lane_free_vs_safe(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """Not free => the lane change is unsafe; free => safe unless the child names another cause."""
    free, safe = _strict_bool(parent), _strict_bool(child)
    if free is None or safe is None:
        return True
    if free is False:
        return safe is False
    if safe:
        return True
    cause = child.meta.get("cause_id")
    blockers = set(parent.objects)
    # the lane is free of vehicles that break RSS now; an unsafe change must be caused by something else
    return cause is not None and cause not in blockers and child.meta.get("cause_outside_lane", False)


def _safe_vs_action(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """The preferred action and every acceptable one are labelled safe."""
    a = child.answer
    if child.ambiguous or not isinstance(a, ChoiceAnswer):
        return True
    action = parent.qid.split(".", 2)[2]
    if action not in a.options:
        return True
    picked = a.options.index(action) in set(a.acceptable) | {a.preferred}
    safe = _strict_bool(parent)
    return not picked or safe is not False


def _action_vs_lateral(parent: QA, child: QA, graph: ChainGraph) -> bool:
    action, lat = _choice(parent), _choice(child)
    if action is None or lat is None:
        return True
    want = {"LANE_LEFT": "change to the left lane", "LANE_RIGHT": "change to the right lane"}.get(action, "keep lane")
    return lat == want


def _action_vs_longitudinal(parent: QA, child: QA, graph: ChainGraph) -> bool:
    action, lon = _choice(parent), _choice(child)
    if action is None or lon is None:
        return True
    if action == "FASTER":
        return lon not in ("decelerate", "stop")
    if action == "SLOWER":
        return lon != "accelerate"
    return True


def _danger_vs_reason(parent: QA, child: QA, graph: ChainGraph) -> bool:
    return set(child.objects) == set(_ids(parent))


def _danger_first(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """The most dangerous vehicle, when ranked, is ranked first."""
    ids, ranked = _ids(parent), _ids(child)
    if parent.ambiguous or not ids or ids[0] not in ranked:
        return True
    return ranked[0] == ids[0]


def _ttc_vs_idle(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """Reaching the lead within one decision step at the current speeds makes keeping lane and speed unsafe."""
    a = parent.answer
    if parent.ambiguous or not isinstance(a, NumberAnswer) or a.value is None:
        return True
    return not (a.value <= TTC_UNSAFE_S and _strict_bool(child) is True)


def _gap_pair(suffix: str, graph: ChainGraph) -> tuple[QA, float, float] | None:
    """(gap node, gap [m], closing speed [m/s]) of ``per.gap.<suffix>`` and its sibling, when both are firm."""
    gap, closing = graph.get(f"per.gap.{suffix}"), graph.get(f"per.closing.{suffix}")
    if gap is None or closing is None or gap.ambiguous or closing.ambiguous:
        return None
    g, c = gap.answer, closing.answer
    if not isinstance(g, NumberAnswer) or not isinstance(c, NumberAnswer) or g.value is None or c.value is None:
        return None
    return gap, g.value, c.value


def _gap_vs_free(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """Free => the gap to the closest vehicle on each side keeps its RSS distance at the stated closing speed."""
    if _strict_bool(child) is not True:
        return True
    suffix = parent.qid.split(".", 2)[2]
    pair = _gap_pair(suffix, graph)
    if pair is None or "ego_speed_mps" not in pair[0].meta:
        return True
    node, gap, closing = pair
    v_ego = float(node.meta["ego_speed_mps"])
    rear, front = (v_ego, v_ego - closing) if suffix.endswith("_ahead") else (v_ego + closing, v_ego)
    # the answers are rounded to 0.1 m and 0.1 m/s: a firm "free" keeps its distance by > 2 m (the band)
    return gap - rss.longitudinal_m(rear, front) >= -ROUNDING_M


def _closing_vs_ttc(parent: QA, child: QA, graph: ChainGraph) -> bool:
    """TTC = lead distance / closing speed (within the TTC's tolerance); none only when not closing or > TTC_MAX."""
    c, t = parent.answer, child.answer
    dist = graph.get("per.lead_distance")
    if parent.ambiguous or child.ambiguous or dist is None or not isinstance(dist.answer, NumberAnswer):
        return True
    if not isinstance(c, NumberAnswer) or not isinstance(t, NumberAnswer) or c.value is None or dist.answer.value is None:
        return True
    closing, gap = c.value, max(dist.answer.value, 0.0)
    if t.value is None:
        return closing <= bands.TTC_MIN_CLOSING_MPS + 0.05 or gap / closing > bands.TTC_MAX_S * 0.95
    if closing <= 0:
        return False
    want = gap / closing
    return abs(t.value - want) <= max(t.abs_tol or 0.0, (t.rel_tol or 0.0) * want)


ROUNDING_M = 0.5
"""Slack of the gap rule for answers stored at 0.1 m and 0.1 m/s (an RSS distance moves ~0.3 m per 0.05 m/s)."""

TTC_UNSAFE_S = 1.0
"""pred.ttc_lead at or below this (one decision step) implies plan.safe.IDLE = no."""

CONTEXT = "context: the parent states a fact the child's explanation uses; it implies no particular answer"

RULES: dict[str, Rule] = {
    "per.lanes -> per.ego_lane": Rule("1 <= ego lane <= number of lanes", _ego_lane_within),
    "per.ego_lane -> per.lane_free": Rule("no lane on that side (ego in the outermost lane) => not free",
                                          _side_lane_exists),
    "per.ego_lane -> per.count": Rule("a side lane is counted only where it exists", _side_lane_exists),
    "per.ego_lane -> per.exists": Rule("a side lane is asked about only where it exists", _side_lane_exists),
    "per.ego_lane -> per.refer": Rule("a side lane is asked about only where it exists", _side_lane_exists),
    "per.ego_lane -> per.vehicle_lane": Rule(CONTEXT, None),
    "per.lead_vehicle -> per.lead_distance": Rule("about the lead vehicle named by the parent", _same_vehicle),
    "per.lead_vehicle -> per.lead_speed": Rule("about the lead vehicle named by the parent", _same_vehicle),
    "per.lead_vehicle -> per.closing": Rule("about the lead vehicle named by the parent", _same_vehicle),
    "per.refer -> per.gap": Rule("about the vehicle the referring question names", _same_vehicle),
    "per.refer -> per.closing": Rule("about the vehicle the referring question names", _same_vehicle),
    "per.gap -> per.lane_free": Rule("free => the gap to the closest vehicle ahead (behind) in that lane keeps its RSS "
                                     "distance, the ego (that vehicle) the rear one, at the stated closing speed",
                                     _gap_vs_free),
    "per.closing -> per.lane_free": Rule("free => the gap keeps its RSS distance at this closing speed (with per.gap)",
                                         _gap_vs_free),
    "per.gap -> plan.safe": Rule("context: the look-ahead starts from this gap; per.lane_free carries the RSS "
                                 "implication at the current speeds, speeds change over the horizon", None),
    "per.closing -> plan.safe": Rule("context: the look-ahead starts from this closing speed (see per.gap)", None),
    "per.lead_speed -> pred.ttc_lead": Rule("lead faster or about as fast => no time to collision (none)",
                                            _lead_speed_vs_ttc),
    "per.lead_distance -> pred.ttc_lead": Rule("TTC = lead distance / closing speed (with per.closing.ego_ahead)", None),
    "per.closing -> pred.ttc_lead": Rule("TTC = lead distance / closing speed within the TTC's tolerance; none only "
                                         f"when closing at most {bands.TTC_MIN_CLOSING_MPS:g} m/s or TTC > "
                                         f"{bands.TTC_MAX_S:g} s", _closing_vs_ttc),
    "per.vehicle_lane -> pred.cut_in": Rule("only a vehicle in the left or right lane is asked about",
                                            _cut_in_from_side_lane),
    "per.lane_free -> plan.safe": Rule("lane not free (a vehicle in it inside its RSS distance now) => the change "
                                       "is unsafe; free => safe, unless the child names a cause outside that lane",
                                       _lane_free_vs_safe),
    "plan.safe -> plan.action": Rule("the preferred and every acceptable action are labelled safe", _safe_vs_action),
    "plan.action -> beh.lateral": Rule("LANE_LEFT/LANE_RIGHT => change left/right; otherwise keep lane",
                                       _action_vs_lateral),
    "plan.action -> beh.longitudinal": Rule("FASTER never decelerates or stops; SLOWER never accelerates",
                                            _action_vs_longitudinal),
    "plan.danger -> plan.danger_reason": Rule("the reason is about the vehicle named dangerous", _danger_vs_reason),
    "plan.danger -> plan.importance": Rule("the most dangerous vehicle, when ranked, is ranked first", _danger_first),
    "pred.ttc_lead -> plan.safe": Rule(f"TTC <= {TTC_UNSAFE_S:g} s => keeping lane and speed is unsafe", _ttc_vs_idle),
}
"""Edge rules by family pair; any edge from per.vehicles checks that the child mentions only listed vehicles."""

LISTED = Rule("the child mentions only vehicles per.vehicles lists", _objects_listed)


def rule_for(parent: QA, child: QA) -> Rule:
    """The rule of one edge (context when no implication is defined for the pair)."""
    if parent.family == "per.vehicles":
        return LISTED
    return RULES.get(f"{parent.family} -> {child.family}", Rule(CONTEXT, None))


def _applies(parent: QA, child: QA) -> bool:
    # pred.ttc_lead constrains only plan.safe.IDLE; per.lane_free.<side> only the change to that side
    if parent.family == "pred.ttc_lead" and child.family == "plan.safe":
        return child.qid == "plan.safe.IDLE"
    if parent.family in ("per.gap", "per.closing") and child.family == "per.lane_free":
        return parent.qid.split(".", 2)[2].split("_")[0] == child.qid.rsplit(".", 1)[1]
    if parent.family == "per.lane_free" and child.family == "plan.safe":
        return child.qid == {"left": "plan.safe.LANE_LEFT", "right": "plan.safe.LANE_RIGHT"}[parent.qid.rsplit(".", 1)[1]]
    return True


def check_graph(graph: ChainGraph) -> tuple[Counter[str], Counter[str], list[str]]:
    """(edges checked per edge key, violations per edge key, one line per violation)."""
    checked: Counter[str] = Counter()
    violated: Counter[str] = Counter()
    lines: list[str] = []
    for child in graph.nodes:
        for pid in child.parents:
            parent = graph.get(pid)
            if parent is None:
                continue
            rule = rule_for(parent, child)
            key = f"{parent.family} -> {child.family}"
            if rule.check is None or not _applies(parent, child):
                continue
            checked[key] += 1
            if not rule.check(parent, child, graph):
                violated[key] += 1
                lines.append(f"{pid} -> {child.qid}: {rule.text}")
    return checked, violated, lines
