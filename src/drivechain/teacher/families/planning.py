"""Planning families: per-action safety, the voted action, the most dangerous object, importance ranking.

All need the privileged world (rollouts): with no world (recorded logs) they emit nothing.
Thresholds and bands are documented in docs/planning.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivechain.schema import QA, Agent, BooleanAnswer, ChoiceAnswer, ObjectsAnswer, RankingAnswer, TextAnswer
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.geometry import road_view
from drivechain.teacher.planners import idm_mobil, lookahead, ttc_rules
from drivechain.teacher.planners.vote import ACTION_WORDS, PlannerResult, VoteResult, real_actions, vote

P = "planning"
DANGER_MAX_M = 15.0  # risk below this: the vehicle is dangerous
DANGER_BAND_M = 1.0  # best risk within DANGER_MAX_M +- this: plan.danger ambiguous
DANGER_TIE_M = 1.0  # runner-up (same in-path status) within this of the best: plan.danger ambiguous
OFF_PATH_PENALTY_M = 10.0  # a vehicle never in the ego's path counts this much farther
IMPORTANCE_RANGE_M = 50.0
IMPORTANCE_TOP = 5
CRASH_RISK_M = -100.0

SAFE_QUESTIONS = {
    "LANE_LEFT": "Is it safe for the ego to change to the left lane now?",
    "LANE_RIGHT": "Is it safe for the ego to change to the right lane now?",
    "IDLE": "Is it safe for the ego to keep its lane and speed for the next {h:g} s?",
    "FASTER": "Is it safe for the ego to speed up now?",
    "SLOWER": "Is it safe for the ego to slow down now?",
}


@dataclass
class PlanningLabels:
    """Everything the planning and behavior families derive from: planner outputs and the vote."""

    results: list[PlannerResult]
    vote: VoteResult
    checks: dict[str, lookahead.ActionCheck]


def planning_labels(ctx: TeacherContext) -> PlanningLabels | None:
    """Run the three planners once per frame (cached in ctx.shared); None without a world."""
    if ctx.world is None:
        return None
    if "planning" not in ctx.shared:
        checks = lookahead.check_actions(ctx, reduced=True)
        la = PlannerResult(
            lookahead.NAME, [c.action for c in checks if c.safe], lookahead.preferred_of(checks),
            {"checks": {c.action: c.to_meta() for c in checks}},
        )
        results = [la, idm_mobil.plan(ctx.frame, ctx.horizon_s), ttc_rules.plan(ctx.frame, ctx.horizon_s)]
        ctx.shared["planning"] = PlanningLabels(results, vote(results, la), {c.action: c for c in checks})
    return ctx.shared["planning"]


def _existing(ctx: TeacherContext, qids: list[str]) -> list[str]:
    return [q for q in qids if ctx.node(q) is not None]


def _visible_ids(ctx: TeacherContext) -> set[int]:
    return {a.id for a in ctx.frame.agents if a.visible}


def _safety_parents(ctx: TeacherContext, action: str) -> list[str]:
    if action in ("LANE_LEFT", "LANE_RIGHT"):
        side = "left" if action == "LANE_LEFT" else "right"
        base = (["per.vehicles", f"per.lane_free.{side}"] + ctx.qids(f"per.gap.{side}_")
                + ctx.qids(f"per.closing.{side}_") + ctx.qids("pred.cut_in"))
    else:
        base = ["per.vehicles", "per.lead_vehicle", "per.lead_distance", "per.closing.ego_ahead", "pred.ttc_lead"]
    return _existing(ctx, base + ctx.qids("pred.cross_first"))


def _who(vid: int | None, visible: set[int]) -> str:
    """'vehicle N' for a vehicle the image shows, else 'a vehicle outside the image'."""
    return f"vehicle {vid}" if vid in visible else "a vehicle outside the image"


def _check_sentence(c: lookahead.ActionCheck, h_s: float, visible: set[int]) -> str:
    what = f"Simulated for {h_s:g} s (the action, then the ego follows the traffic's IDM), " \
           f"'{ACTION_WORDS.get(c.action, c.action)}'"
    if c.crashed:
        who = f" with {_who(c.crashed_with, visible)}" if c.crashed_with is not None else ""
        return f"{what} ends in a collision{who}."
    if c.off_road:
        return f"{what} leaves the road."
    if c.margin_m is None or c.gap_m is None or c.required_m is None:
        return f"{what} brings no vehicle within its RSS distances (lateral and longitudinal) of the ego."
    where = "ahead of" if c.critical_ahead else "behind"
    if c.margin_m >= 0:
        return (f"{what} keeps the RSS distances: the tightest, {_who(c.critical_id, visible)}, stays "
                f"{c.gap_m:.1f} m {where} the ego where RSS needs {c.required_m:.1f} m (t = {c.critical_t_s:.1f} s).")
    return (f"{what} violates the RSS longitudinal distance: {_who(c.critical_id, visible)} comes within "
            f"{max(c.gap_m, 0.0):.1f} m {where} the ego where RSS needs {c.required_m:.1f} m, short by "
            f"{-c.margin_m:.1f} m (t = {c.critical_t_s:.1f} s).")


def lane_change_cause(ctx: TeacherContext, c: lookahead.ActionCheck, view=None) -> tuple[int | None, bool]:
    """(the vehicle that makes an unsafe action unsafe, whether it is outside the lane the action moves into)."""
    cause = c.crashed_with if c.crashed else (c.critical_id if c.margin_m is not None and c.margin_m < 0 else None)
    if cause is None or c.action not in lookahead.LANE_CHANGES:
        return cause, False
    view = view if view is not None else road_view(ctx.frame)
    agent = ctx.frame.agent(cause)
    if view is None or agent is None:
        return cause, False
    offset = 1 if c.action == "LANE_LEFT" else -1
    return cause, offset not in view.locate(agent).offsets()


def safe_actions(ctx: TeacherContext) -> list[QA]:
    """plan.safe.<ACTION>: is each real action safe (look-ahead, RSS); inside the margin band both answers count."""
    labels = planning_labels(ctx)
    if labels is None:
        return []
    visible = _visible_ids(ctx)
    view = road_view(ctx.frame)
    out = []
    for action in real_actions(ctx.frame):
        c = labels.checks[action]
        band = not c.crashed and not c.off_road and c.margin_m is not None and abs(c.margin_m) < lookahead.SAFE_BAND_M
        who = [i for i in (c.crashed_with, c.critical_id) if i is not None and i in visible]
        cause, outside = lane_change_cause(ctx, c, view) if not c.safe else (None, False)
        text = _check_sentence(c, ctx.horizon_s, visible)
        if outside and cause is not None:
            text += f" The cause, {_who(cause, visible)}, is not in the lane the ego moves into."
        meta = {"check": c.to_meta(), "band_m": lookahead.SAFE_BAND_M}
        if cause is not None:
            meta.update(cause_id=cause, cause_outside_lane=outside)
        out.append(QA(
            qid=f"plan.safe.{action}", family="plan.safe", stage=P,
            question=SAFE_QUESTIONS.get(action, f"Is it safe for the ego to do {action} now?").format(h=ctx.horizon_s),
            answer=BooleanAnswer(value=c.safe, accept_both=band),
            explanation=text, parents=_safety_parents(ctx, action),
            objects=sorted(set(who)), meta=meta,
        ))
    return out


FALLBACK_ORDER = ("SLOWER", "IDLE", "FASTER", "LANE_LEFT", "LANE_RIGHT")
"""When every action collides: brake in lane first (a driver's emergency response; a swerve into an
occupied lane makes the ego the one at fault), a lane change last."""


def least_bad_action(checks: list[lookahead.ActionCheck]) -> str:
    """The action to take when none is safe: no collision first, then the largest RSS margin, then FALLBACK_ORDER."""
    def rank(c: lookahead.ActionCheck) -> tuple:
        order = FALLBACK_ORDER.index(c.action) if c.action in FALLBACK_ORDER else len(FALLBACK_ORDER)
        ok = not c.crashed and not c.off_road
        margin = (c.margin_m if c.margin_m is not None else 1e9) if ok else 0.0
        return (ok, margin, -order)
    return max(checks, key=rank).action


def action(ctx: TeacherContext) -> list[QA]:
    """plan.action: which action to take (choice over the scenario's actions, voted by three planners)."""
    labels = planning_labels(ctx)
    if labels is None or not real_actions(ctx.frame):
        return []
    v = labels.vote
    options = list(ctx.frame.actions)
    if v.preferred is not None:
        preferred = v.preferred
    else:  # nothing safe: the least bad, never scored (ambiguous) but driven in closed loop
        preferred = least_bad_action(list(labels.checks.values()))
    acceptable = v.acceptable or [preferred]
    listing = "; ".join(f"{a} ({ACTION_WORDS.get(a, a)})" for a in options)
    return [QA(
        qid="plan.action", family="plan.action", stage=P,
        question=f"Which action should the ego take now? Options: {listing}.",
        answer=ChoiceAnswer(options=options, acceptable=[options.index(a) for a in acceptable],
                            preferred=options.index(preferred), safe=[options.index(a) for a in v.safe]),
        explanation=(f"Safe by look-ahead: {', '.join(v.safe) or 'none'}. Votes: "
                     + ", ".join(f"{k} -> {a}" for k, a in v.votes.items()) + f". {v.reason}."),
        parents=_existing(ctx, [f"plan.safe.{a}" for a in real_actions(ctx.frame)]),
        ambiguous=v.ambiguous,
        meta={"votes": v.votes, "safe_sets": v.safe_sets, "reason": v.reason, "majority": v.majority,
              "option_words": {a: ACTION_WORDS.get(a, a) for a in options},
              "planners": {r.name: r.meta for r in labels.results[1:]}},
    )]


@dataclass
class Risk:
    """How dangerous one visible vehicle is if the ego keeps lane and speed (IDLE rollout)."""

    agent: Agent
    risk_m: float  # lower = more dangerous: path margin [m], off-path distance + penalty, crash = -100
    in_path: bool
    t_s: float
    gap_m: float


def risks(ctx: TeacherContext) -> list[Risk]:
    """Risk of every visible vehicle from the IDLE rollout, most dangerous first (ties by id)."""
    if "risks" in ctx.shared:
        return ctx.shared["risks"]
    roll = ctx.rollout("IDLE", reduced=True)
    visible = {a.id: a for a in ctx.frame.agents if a.visible}
    best: dict[int, Risk] = {}
    for snap in roll.samples:
        for other in snap.agents:
            if other.id not in visible:
                continue
            g = lookahead.path_gap(snap.ego, other, snap.t_s)
            if g is not None:
                r = Risk(visible[other.id], g.margin_m, True, snap.t_s, g.gap_m)
            else:
                gap = lookahead.box_distance_m(snap.ego, other)
                r = Risk(visible[other.id], gap + OFF_PATH_PENALTY_M, False, snap.t_s, gap)
            if other.id not in best or r.risk_m < best[other.id].risk_m:
                best[other.id] = r
    if roll.crashed and roll.crashed_with in best:
        best[roll.crashed_with].risk_m = CRASH_RISK_M
    out = sorted(best.values(), key=lambda r: (r.risk_m, r.agent.id))
    ctx.shared["risks"] = out
    return out


def _reason(r: Risk, ctx: TeacherContext) -> str:
    a = r.agent
    where = "ahead" if a.rel_x_m >= 0 else "behind"
    side = "" if abs(a.rel_y_m) < 2.0 else (" on the left" if a.rel_y_m > 0 else " on the right")
    if r.risk_m == CRASH_RISK_M:
        what = f"keeping lane and speed, the ego would collide with it within {ctx.horizon_s:g} s"
    elif r.in_path:
        what = f"it is in the ego's path and the gap would shrink to {max(r.gap_m, 0):.0f} m in {r.t_s:.0f} s"
    else:
        what = f"it would come within {max(r.gap_m, 0):.0f} m of the ego in {r.t_s:.0f} s"
    return f"Vehicle {a.id}, {abs(a.rel_x_m):.0f} m {where}{side}, is the most dangerous: {what}."


def danger(ctx: TeacherContext) -> list[QA]:
    """plan.danger (objects: the most dangerous vehicle) and plan.danger_reason (text)."""
    if ctx.world is None:
        return []
    rs = risks(ctx)
    parents = _existing(ctx, ["per.vehicles", "pred.ttc_lead", "pred.near_ego"])
    q = f"Which vehicle is the most dangerous to the ego if it keeps lane and speed for {ctx.horizon_s:g} s?"
    dangerous = [r for r in rs if r.risk_m < DANGER_MAX_M]
    edge = any(abs(r.risk_m - DANGER_MAX_M) < DANGER_BAND_M for r in rs[:1])
    if not dangerous:
        text = f"No vehicle is dangerous: keeping lane and speed, none comes close within {ctx.horizon_s:g} s."
        ids: list[int] = []
        ambiguous = edge
    else:
        top = dangerous[0]
        ids = [top.agent.id]
        # a vehicle in the ego's path is plainly more dangerous than one beside it: a tie needs the same status
        ambiguous = edge or (len(rs) > 1 and rs[1].in_path == top.in_path and rs[1].risk_m - top.risk_m < DANGER_TIE_M)
        text = _reason(top, ctx)
    meta = {"risk_m": {str(r.agent.id): round(r.risk_m, 2) for r in rs[:IMPORTANCE_TOP]}}
    node = QA(qid="plan.danger", family="plan.danger", stage=P, question=q,
              answer=ObjectsAnswer(ids=ids, positions_m=[(round(r.agent.rel_x_m, 1), round(r.agent.rel_y_m, 1))
                                                        for r in dangerous[:1]]),
              explanation=text, parents=parents, objects=ids, ambiguous=ambiguous, meta=meta)
    reason = QA(qid="plan.danger_reason", family="plan.danger_reason", stage=P,
                question="Why is that vehicle the most dangerous?" if ids else "Is any vehicle dangerous, and why?",
                answer=TextAnswer(references=[text]), explanation=text, parents=["plan.danger"], objects=ids,
                ambiguous=ambiguous)
    return [node, reason]


def importance(ctx: TeacherContext) -> list[QA]:
    """plan.importance: visible vehicles within IMPORTANCE_RANGE_M ranked by risk (most important first)."""
    if ctx.world is None:
        return []
    near = [r for r in risks(ctx) if math.hypot(r.agent.rel_x_m, r.agent.rel_y_m) < IMPORTANCE_RANGE_M]
    ranked = near[:IMPORTANCE_TOP]
    if len(ranked) < 2:
        return []
    ids = [r.agent.id for r in ranked]
    return [QA(
        qid="plan.importance", family="plan.importance", stage=P,
        question=(f"Rank the vehicles within {IMPORTANCE_RANGE_M:g} m by how much they matter to the ego's "
                  f"next {ctx.horizon_s:g} s, most important first (at most {IMPORTANCE_TOP})."),
        answer=RankingAnswer(ids=ids),
        explanation="Ranked by predicted closeness to the ego's path if it keeps lane and speed (a vehicle "
                    f"beside the path counts {OFF_PATH_PENALTY_M:g} m farther than one in it): "
                    + ", ".join(f"vehicle {r.agent.id} ({'in the path' if r.in_path else 'beside the path'}, "
                                f"closest {max(r.gap_m, 0):.0f} m)" for r in ranked) + ".",
        parents=_existing(ctx, ["per.vehicles", "plan.danger"]), objects=ids,
        meta={"risk_m": [round(r.risk_m, 2) for r in ranked]},
    )]


FAMILIES = [safe_actions, action, danger, importance]
