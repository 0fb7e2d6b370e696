"""``--protocol g1``: one call per reasoning step through a loopback server, the conversation grows,
the answers come from a last call, first-error location, the step cap, a failed call."""

from __future__ import annotations

import json
import subprocess
import sys

from drivechain.evaluation.g1 import read_step, step_stage
from drivechain.prompts import format_answer
from tests.fakeserver import FakeServer
from tests.test_eval_helpers import make_records, write_dataset

STEPS = [("Perception", "The lead vehicle is ahead in my lane."), ("Prediction", "Vehicle 2 will not cut in."),
         ("Planning", "Keep going.")]


def _texts(messages):
    return [m["content"] if isinstance(m["content"], str) else " ".join(p.get("text", "") for p in m["content"])
            for m in messages]


def _server(answers: dict, always_continue: bool = False):
    def reply(messages):
        texts = _texts(messages)
        if "final answers" in texts[-1]:
            return "Here you go:\n" + json.dumps(answers)
        k = sum(1 for m in messages if m["role"] == "assistant")
        title, content = STEPS[min(k, len(STEPS) - 1)]
        action = "continue" if always_continue or k < len(STEPS) - 1 else "final_answer"
        return json.dumps({"title": f"Step {k + 1}: {title}", "content": content, "next_action": action})
    return reply


def _eval(tmp_path, srv, *extra):
    data = write_dataset(tmp_path / "data", 1)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", "openai:g",
                           "--base-url", srv.base_url, "--protocol", "g1", "--retries", "0", "--out", str(out),
                           "--no-progress", *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    return json.loads((out / "summary.json").read_text()), rows


def test_g1_loop_grows_the_conversation_and_locates_the_first_wrong_stage(tmp_path):
    rec = make_records(1)[0]
    answers = {qa.qid: format_answer(qa) for qa in rec.graph.nodes}
    answers["pred.cut_in"] = "no" if answers["pred.cut_in"] == "yes" else "yes"  # one wrong prediction
    with FakeServer(reply=_server(answers)) as srv:
        summary, rows = _eval(tmp_path, srv)
        sizes = [len(r.body["messages"]) for r in srv.requests]
    assert sizes == [2, 4, 6, 8]  # three steps, then the answer call, each with the whole conversation
    assert summary["requests"] == 4 and summary["tokens"]["completion"] >= 0
    assert {r["protocol"] for r in rows} == {"g1"}
    r0 = rows[0]
    assert r0["n_steps"] == 3 and r0["calls"] == 4
    assert [s["stage"] for s in r0["g1_steps"]] == ["perception", "prediction", "planning"]
    assert r0["first_wrong"] == "prediction" and r0["first_wrong_step"] == 1
    wrong = [r for r in rows if r["score"] < 1 and r["type"] != "text" and r["status"] != "ambiguous"]
    assert [r["qid"] for r in wrong] == ["pred.cut_in"]
    block = summary["g1"]
    assert block["first_error"] == {"prediction": 1} and block["calls"] == 4 and block["steps_mean"] == 3


def test_g1_stops_at_max_steps_and_a_failed_call_fails_the_frame(tmp_path):
    rec = make_records(1)[0]
    answers = {qa.qid: format_answer(qa) for qa in rec.graph.nodes}
    with FakeServer(reply=_server(answers, always_continue=True)) as srv:
        summary, rows = _eval(tmp_path / "cap", srv, "--max-steps", "2")
        assert srv.count == 3
    assert rows[0]["n_steps"] == 2 and rows[0]["first_wrong"] == "none"
    with FakeServer(reply=_server(answers), faults={1: "400"}) as srv:
        summary, rows = _eval(tmp_path / "fail", srv, "--max-failure-rate", "1")
        assert srv.count == 2  # the loop stops at the failed call
    assert {r["status"] for r in rows} <= {"failed", "ambiguous"} and rows[0]["first_wrong"] == "failed"


def test_step_replies_are_read_leniently():
    assert read_step('ok {"title": "Planning", "content": "brake", "next_action": "final_answer"}')["next_action"] == "final_answer"
    plain = read_step("I see vehicle 3 ahead. final answer next")
    assert plain["content"].startswith("I see") and plain["next_action"] == "final_answer"
    assert step_stage({"title": "Step 2: Prediction", "content": ""}) == "prediction"
    assert step_stage({"title": "", "content": "I will plan to brake; the plan is safe"}) == "planning"
