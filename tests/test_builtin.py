"""Built-in models answer in text through the shared prompt + parser + graders."""

from __future__ import annotations

import asyncio
import json

import pytest

from drivechain.errors import ConfigError
from drivechain.grading.graders import grade_reply
from drivechain.models.base import Message, Model, Request, TextPart
from drivechain.models.builtin import make_builtin
from drivechain.prompts import build_request, format_answer
from drivechain.schema import QA, BooleanAnswer, ChoiceAnswer
from tests.test_grading_data import ACTIONS, nodes, qa, record


def ask(model, req: Request):
    return asyncio.run(model.respond(req))


@pytest.mark.parametrize("cot", [False, True])
def test_oracle_scores_one_on_every_type(cot):
    rec = record()
    oracle = make_builtin("oracle")
    assert isinstance(oracle, Model)
    targets = rec.graph.nodes
    req = build_request(rec, targets, image=True, upstream=[], cot=cot)
    resp = ask(oracle, req)
    assert resp.ok and resp.usage.prompt_tokens == 0 and resp.latency_s >= 0
    grades = grade_reply(resp.text, targets)
    typed = [g for g in grades if g.scored]
    assert {g.type for g in typed} == {"choice", "boolean", "number", "objects", "ranking"}
    assert all(g.score == 1.0 and g.status == "correct" for g in typed), [g for g in typed if g.score < 1]
    assert {g.status for g in grades if not g.scored} == {"language", "ambiguous"}


def test_oracle_per_stage_with_upstream_text():
    rec = record()
    graph = rec.graph.nodes
    per = [n for n in graph if n.stage == "perception"]
    rest = [n for n in graph if n.stage != "perception"]
    req = build_request(rec, rest, image=False, upstream=[(n, format_answer(n)) for n in per])
    grades = grade_reply(ask(make_builtin("oracle"), req).text, rest)
    assert all(g.score == 1.0 for g in grades if g.scored)


def test_oracle_without_meta_is_an_explicit_error():
    req = Request(messages=[Message(role="user", content=[TextPart(text="hi")])])
    resp = ask(make_builtin("oracle"), req)
    assert not resp.ok and "oracle" in resp.error and resp.text == ""


def _many_questions(n: int, frame: int = 0) -> list[QA]:
    out = []
    for i in range(n):
        k = (i * 7 + frame * 3) % 4  # the right answer moves around
        text = f"Question {i} of frame {frame}?"  # the prompt (so the random draw) differs per frame
        if i % 2:
            out.append(qa(f"plan.c{i}", "planning", ChoiceAnswer(options=ACTIONS[:4], acceptable=[k], preferred=k), text))
        else:
            out.append(qa(f"per.b{i}", "perception", BooleanAnswer(value=k < 2), text))
    return out


def _mean_by_type(model, frames: int = 20, per_frame: int = 20) -> dict[str, float]:
    scores: dict[str, list[float]] = {"choice": [], "boolean": []}
    for f in range(frames):
        qs = _many_questions(per_frame, f)
        rec = record(qs, frame_id=f"highway/highway/{f}/0")
        for g in grade_reply(ask(model, build_request(rec, qs, image=True, upstream=[])).text, qs):
            assert g.status != "unparsed"
            scores[g.type].append(g.score)
    return {k: sum(v) / len(v) for k, v in scores.items()}


def test_random_is_near_chance_and_deterministic():
    means = _mean_by_type(make_builtin("random", "1"))
    assert abs(means["choice"] - 0.25) < 0.08
    assert abs(means["boolean"] - 0.5) < 0.1
    rec = record()
    req = build_request(rec, rec.graph.nodes, image=True, upstream=[])
    a, b = ask(make_builtin("random", seed=4), req).text, ask(make_builtin("random", "4"), req).text
    c = ask(make_builtin("random", "5"), req).text
    assert a == b and a != c
    assert all(g.status != "unparsed" for g in grade_reply(a, rec.graph.nodes) if g.scored)


def test_constant_answers_first_option_no_zero_none_and_a_fixed_reply():
    rec = record()
    targets = rec.graph.nodes
    reply = json.loads(ask(make_builtin("constant"), build_request(rec, targets, image=True, upstream=[])).text)
    assert reply["plan.action"] == "A" and reply["per.lead_vehicle"] == "no"
    assert reply["per.behind"] == "none" and reply["pred.ttc_lead"] == "0"
    grades = {g.qid: g for g in grade_reply(json.dumps(reply), targets)}
    assert grades["per.behind"].score == 1.0 and grades["plan.action"].unsafe
    fixed = json.loads(ask(make_builtin("constant", "E"), build_request(rec, targets, image=True, upstream=[])).text)
    assert fixed["plan.action"] == "E"


def test_heuristic_reads_upstream_so_teacher_forced_differs_from_free_running():
    rec = record()
    graph = {n.qid: n for n in rec.graph.nodes}
    targets = [graph["plan.action"], graph["plan.safe.LANE_LEFT"], graph["beh.longitudinal"]]
    up = [graph[q] for q in ("per.lead_vehicle", "per.left_free", "pred.cut_in.v3", "pred.ttc_lead")]
    heur = make_builtin("heuristic")
    forced = build_request(rec, targets, image=False, upstream=[(n, format_answer(n)) for n in up])
    g_forced = grade_reply(ask(heur, forced).text, targets)
    assert [g.score for g in g_forced] == [1.0, 1.0, 1.0]  # cut-in predicted -> SLOWER, decelerate
    wrong = {"pred.cut_in.v3": "no", "per.left_free": "yes"}
    free = build_request(rec, targets, image=False, upstream=[(n, wrong.get(n.qid, format_answer(n))) for n in up])
    g_free = grade_reply(ask(heur, free).text, targets)
    assert sum(g.score for g in g_free) < sum(g.score for g in g_forced)
    # it never reads the oracle answers in meta
    free.meta["oracle"] = {}
    assert ask(heur, free).text == ask(heur, free.model_copy(update={"meta": {}})).text


def test_heuristic_without_upstream_gives_parseable_defaults():
    rec = record()
    resp = ask(make_builtin("heuristic"), build_request(rec, rec.graph.nodes, image=True, upstream=[]))
    grades = grade_reply(resp.text, rec.graph.nodes)
    assert all(g.status != "unparsed" for g in grades if g.scored)


def test_unknown_builtin_and_bad_seed_are_config_errors():
    with pytest.raises(ConfigError):
        make_builtin("genius")
    with pytest.raises(ConfigError):
        make_builtin("random", "abc")
    assert asyncio.run(make_builtin("constant").aclose()) is None


def _run_chain(model, rec, *, forced: bool) -> dict[str, float]:
    """Per-stage mean score; upstream = teacher answers (forced) or the model's own (free-running)."""
    from drivechain.grading.parse import parse_reply
    from drivechain.prompts import format_value

    upstream: list = []
    means = {}
    for stages in (("perception",), ("prediction",), ("planning", "behavior")):
        tg = [n for n in rec.graph.nodes if n.stage in stages]
        if not tg:
            continue
        req = build_request(rec, tg, image=True, upstream=list(upstream))
        text = ask(model, req).text
        grades = [g for g in grade_reply(text, tg) if g.scored]
        means[stages[0]] = sum(g.score for g in grades) / max(1, len(grades))
        if forced:
            upstream += [(n, format_answer(n)) for n in tg if not n.ambiguous]
        else:
            parsed = parse_reply(text, tg)
            upstream += [(n, format_value(n, parsed[n.qid].value)) for n in tg if not parsed[n.qid].unparsed]
    return means


def test_on_real_teacher_graphs_oracle_is_perfect_and_heuristic_propagates_errors(tiny_dataset):
    from drivechain.dataset import load_dataset

    ds = load_dataset(tiny_dataset)
    records = list(ds.records())
    oracle, heur = make_builtin("oracle"), make_builtin("heuristic")
    types = set()
    tf, fr = [], []
    for rec in records:
        for cot in (False, True):
            req = build_request(rec, rec.graph.nodes, image=True, upstream=[], cot=cot)
            grades = [g for g in grade_reply(ask(oracle, req).text, rec.graph.nodes) if g.scored]
            assert all(g.score == 1.0 for g in grades), [g for g in grades if g.score < 1]
            types |= {g.type for g in grades}
        tf.append(_run_chain(heur, rec, forced=True).get("planning", 0.0))
        fr.append(_run_chain(heur, rec, forced=False).get("planning", 0.0))
    assert types >= {"choice", "boolean", "number", "objects", "ranking"}
    assert sum(tf) > sum(fr)  # its planning rules need correct upstream answers
    assert sum(tf) / len(tf) < 1.0
