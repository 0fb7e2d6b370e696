"""Planning families of recorded logs: log-replay safety per manoeuvre and the voted action.

Three independent votes, as on simulator frames:
- **replay**: each manoeuvre the frame allows (KEEP, SLOW_DOWN, STOP, LANE_LEFT, LANE_RIGHT) rolled
  out along the ego's path against every agent's recorded future (sources/logreplay.py; agents do
  not react) -> the safe set;
- **expert**: what the recorded expert did over H (lane change from its lane ids; else stop /
  slow down / keep from its speed; ``should_brake`` turns a kept speed into SLOW_DOWN);
- **rules**: STOP for a red or yellow light or a stop sign that affects the ego with its stop line
  within RED_LIGHT_REACH_M ahead (a stop sign only while the ego still moves), or a pedestrian in
  the path; otherwise the rules abstain.
Label: the expert's action when it is safe and the rules abstain or agree; expert and rules both
braking (SLOW_DOWN / STOP) -> both accepted. Expert and rules disagree otherwise -> ambiguous (both
accepted, not scored); the expert's or the rules' action unsafe by replay -> dropped (counted in the
manifest as dropped plan.action). Frames without H s of recorded future are not planned.
"""

from __future__ import annotations

import math

from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer, ObjectsAnswer, RankingAnswer, TextAnswer
from drivechain.sources import logreplay as lr
from drivechain.teacher.families._log_ego import expert_manoeuvre
from drivechain.teacher.context import TeacherContext
from drivechain.teacher.families import _log as L
from drivechain.teacher.families.planning import DANGER_BAND_M, DANGER_MAX_M, DANGER_TIE_M, IMPORTANCE_RANGE_M, IMPORTANCE_TOP

P = "planning"
SAFE_QUESTIONS = {
    "KEEP": "Is it safe for the ego to keep its lane and speed for the next {h:g} s?",
    "SLOW_DOWN": "Is it safe for the ego to slow down gently now?",
    "STOP": "Is it safe for the ego to brake to a stop now?",
    "LANE_LEFT": "Is it safe for the ego to change to the left lane now?",
    "LANE_RIGHT": "Is it safe for the ego to change to the right lane now?",
}
BRAKING = frozenset({"SLOW_DOWN", "STOP"})


def _drop(ctx: TeacherContext, family: str) -> None:
    dropped = ctx.frame.meta.setdefault("dropped", {})
    dropped[family] = dropped.get(family, 0) + 1


def replay_checks(ctx: TeacherContext) -> dict[str, lr.ReplayCheck] | None:
    """Manoeuvre -> log-replay verdict for the frame's available manoeuvres (cached per frame)."""
    frame = ctx.frame
    if not L.is_log(frame) or not frame.meta.get("prediction"):
        return None
    if "log_replay" not in ctx.shared:
        sizes = {a.id: (a.length_m, a.width_m) for a in frame.agents}
        tracks = []
        for key, states in sorted(frame.meta.get("tracks", {}).items(), key=lambda kv: int(kv[0])):
            length, width = sizes.get(int(key), (4.5, 2.0))
            if states:
                tracks.append(lr.Track(int(key), [lr.BoxState(t, x, y, h, length, width) for t, x, y, h in states]))
        actions = [a for a in frame.available_actions if a in lr.MANOEUVRES]
        ctx.shared["log_replay"] = lr.check_all(actions, L.ego_path(frame), frame.ego.speed_mps, tracks, ctx.horizon_s,
                                                frame.ego.length_m, frame.ego.width_m)
    return ctx.shared["log_replay"]


def rule_vote(ctx: TeacherContext) -> tuple[str | None, str]:
    """(STOP or None, why): traffic-control and pedestrian rules."""
    frame = ctx.frame
    light = L.traffic_light(frame)
    if light and light.get("state") in ("red", "yellow") and 0 < L.stop_line_ahead_m(light) <= L.RED_LIGHT_REACH_M:
        return "STOP", f"the {light['state']} light's stop line is {L.stop_line_ahead_m(light):.1f} m ahead"
    if frame.ego.speed_mps > L.STOPPED_MPS:
        for s in L.stop_signs(frame):
            if 0 < L.stop_line_ahead_m(s) <= L.RED_LIGHT_REACH_M:
                return "STOP", f"a stop sign's line is {L.stop_line_ahead_m(s):.1f} m ahead"
    node = ctx.node("per.pedestrian_in_path")
    if node is not None and node.answer.ids:  # type: ignore[union-attr]
        return "STOP", f"pedestrians {node.answer.ids} are in the path"  # type: ignore[union-attr]
    return None, "no light, stop sign or pedestrian asks to stop"


def safe_actions(ctx: TeacherContext) -> list[QA]:
    """plan.safe.<ACTION> on logs: the log-replay verdict of each available manoeuvre."""
    checks = replay_checks(ctx)
    if checks is None:
        return []
    visible = {a.id for a in ctx.frame.agents if a.visible}
    out = []
    for action, c in checks.items():
        who = [c.conflict_id] if c.conflict_id in visible else []
        out.append(QA(
            qid=f"plan.safe.{action}", family="plan.safe", stage=P,
            question=SAFE_QUESTIONS[action].format(h=ctx.horizon_s),
            answer=BooleanAnswer(value=c.safe, accept_both=c.ambiguous),
            explanation=f"Replayed against the recorded traffic (which does not react): {c.reason}.",
            parents=[q for q in ("per.vehicles",) if ctx.node(q)], objects=who,
            meta={"replay": {"safe": c.safe, "ambiguous": c.ambiguous, "conflict_id": c.conflict_id,
                             "t_s": c.t_conflict_s, "final_speed_mps": c.ego_final_speed_mps}},
        ))
    return out


def action(ctx: TeacherContext) -> list[QA]:
    """plan.action on logs: replay safety, the expert and the rules vote."""
    checks = replay_checks(ctx)
    if checks is None:
        return []
    frame = ctx.frame
    safe = [a for a, c in checks.items() if c.safe]
    expert = expert_manoeuvre(frame, ctx.horizon_s)
    rule, rule_why = rule_vote(ctx)
    votes = {"replay": ",".join(safe) or "none", "expert": expert or "unknown", "rules": rule or "abstain"}
    options = list(checks)
    if expert is None or expert not in options:
        _drop(ctx, "plan.action")
        return []
    candidates = [expert] + ([rule] if rule and rule != expert else [])
    if any(c not in safe for c in candidates):
        _drop(ctx, "plan.action")  # replay and the expert / rules disagree about safety: no label
        return []
    preferred = rule or expert
    ambiguous = len(candidates) > 1 and not set(candidates) <= BRAKING
    listing = "; ".join(f"{a} ({lr.DESCRIPTIONS[a]})" for a in options)
    return [QA(
        qid="plan.action", family="plan.action", stage=P,
        question=f"Which action should the ego take now? Options: {listing}.",
        answer=ChoiceAnswer(options=options, acceptable=sorted(options.index(c) for c in candidates),
                            preferred=options.index(preferred), safe=[options.index(a) for a in safe]),
        explanation=(f"Safe by log replay: {', '.join(safe) or 'none'}. The recorded expert: {expert}. "
                     f"Rules: {rule or 'abstain'} ({rule_why})."
                     + (" Expert and rules disagree: ambiguous." if ambiguous else "")),
        parents=[f"plan.safe.{a}" for a in options if ctx.node(f"plan.safe.{a}")],
        ambiguous=ambiguous,
        meta={"votes": votes, "option_words": dict(lr.DESCRIPTIONS)},
    )]


def risks(ctx: TeacherContext) -> list[tuple[float, float, int]]:
    """(closest gap [m], its time [s], id) of every visible agent to the ego keeping its lane and speed, smallest first."""
    frame = ctx.frame
    if "log_risks" not in ctx.shared:
        path, out = L.ego_path(frame), []
        for a in frame.agents:
            states = frame.meta.get("tracks", {}).get(str(a.id))
            if not a.visible or not states:
                continue
            track = lr.Track(a.id, [lr.BoxState(t, x, y, h, a.length_m, a.width_m) for t, x, y, h in states])
            g, t = lr.closest_approach("KEEP", path, frame.ego.speed_mps, track, ctx.horizon_s,
                                       frame.ego.length_m, frame.ego.width_m)
            out.append((round(g, 2), t, a.id))
        ctx.shared["log_risks"] = sorted(out)
    return ctx.shared["log_risks"]


def danger(ctx: TeacherContext) -> list[QA]:
    """plan.danger / plan.danger_reason on logs: the visible agent the KEEP replay comes closest to."""
    if replay_checks(ctx) is None:
        return []
    rs, h = risks(ctx), ctx.horizon_s
    dangerous = [r for r in rs if r[0] < DANGER_MAX_M]
    edge = bool(rs) and abs(rs[0][0] - DANGER_MAX_M) < DANGER_BAND_M
    if not dangerous:
        ids, ambiguous = [], edge
        text = f"No road user is dangerous: keeping lane and speed, the recorded traffic stays {DANGER_MAX_M:g} m away."
    else:
        g, t, aid = dangerous[0]
        ids = [aid]
        ambiguous = edge or (len(rs) > 1 and rs[1][0] - g < DANGER_TIE_M)
        a = ctx.frame.agent(aid)
        what = ("the ego would run into it" if g == 0.0 else f"the gap would shrink to {g:.0f} m")
        text = (f"{a.category.capitalize()} {aid}, {abs(a.rel_x_m):.0f} m {'ahead' if a.rel_x_m >= 0 else 'behind'}, "  # type: ignore[union-attr]
                f"is the most dangerous: keeping lane and speed, {what} at {t:.1f} s (recorded motion, non-reactive).")
    parents = [q for q in ("per.vehicles", "pred.near_ego") if ctx.node(q)]
    node = QA(qid="plan.danger", family="plan.danger", stage=P,
              question=f"Which road user is the most dangerous to the ego if it keeps lane and speed for {h:g} s?",
              answer=ObjectsAnswer(ids=ids), explanation=text, parents=parents, objects=ids, ambiguous=ambiguous,
              meta={"gap_m": {str(i): g for g, _, i in rs[:IMPORTANCE_TOP]}})
    reason = QA(qid="plan.danger_reason", family="plan.danger_reason", stage=P,
                question="Why is that road user the most dangerous?" if ids else "Is any road user dangerous, and why?",
                answer=TextAnswer(references=[text]), explanation=text, parents=["plan.danger"], objects=ids,
                ambiguous=ambiguous)
    return [node, reason]


def importance(ctx: TeacherContext) -> list[QA]:
    """plan.importance on logs: visible agents within range ranked by their closest gap to the KEEP replay."""
    if replay_checks(ctx) is None:
        return []
    near = [r for r in risks(ctx) if (a := ctx.frame.agent(r[2])) and math.hypot(a.rel_x_m, a.rel_y_m) < IMPORTANCE_RANGE_M]
    ranked = near[:IMPORTANCE_TOP]
    if len(ranked) < 2:
        return []
    ids = [i for _, _, i in ranked]
    return [QA(
        qid="plan.importance", family="plan.importance", stage=P,
        question=(f"Rank the road users within {IMPORTANCE_RANGE_M:g} m by how much they matter to the ego's next "
                  f"{ctx.horizon_s:g} s, most important first (at most {IMPORTANCE_TOP})."),
        answer=RankingAnswer(ids=ids),
        explanation="Ranked by the closest gap to the ego keeping lane and speed, against their recorded motion: "
                    + ", ".join(f"{i} ({g:.0f} m)" for g, _, i in ranked) + ".",
        parents=[q for q in ("per.vehicles", "plan.danger") if ctx.node(q)], objects=ids,
        meta={"gap_m": [g for g, _, _ in ranked]},
    )]


FAMILIES = [safe_actions, action, danger, importance]
