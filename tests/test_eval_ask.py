"""``--ask all|stage|one`` and ``--links``: requests per question, bare answers, parse modes, the summary block."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivechain.evaluation.protocols import AskOptions, count_requests, targets_of
from drivechain.evaluation.runner import RunPolicy, evaluate
from drivechain.models.base import Request, Response, Usage
from drivechain.prompts import parse_prompt
from tests.fakeserver import FakeServer
from tests.test_eval_helpers import make_records, write_dataset

FAST = RunPolicy(concurrency=8, timeout_s=5.0, retries=1, backoff_s=0.01)
STYLES = ("The answer is **{}**", "{}.", "Answer: {}", "{}")


class BareOracle:
    """Answers every request with the truth of its FIRST question, in words (no JSON, no question id)."""

    name = "bare-oracle"

    def __init__(self) -> None:
        self.prompts: list[Request] = []

    async def respond(self, request: Request) -> Response:
        self.prompts.append(request)
        qid = request.meta["qids"][0]
        truth = request.meta["oracle"][qid]
        style = STYLES[len(self.prompts) % len(STYLES)]
        return Response(text=style.format(truth), usage=Usage(prompt_tokens=100, completion_tokens=5), model=self.name)

    async def aclose(self) -> None:
        return None


def _run(records, model, out: Path, **ask) -> dict:
    opts = AskOptions(image_root=str(out), image="without", **ask)

    async def main() -> dict:
        return await evaluate(records, model, out, protocols=("transitions", "free"), opts=opts, policy=FAST,
                              progress=False, tokenizer="regex")

    return asyncio.run(main())


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]


def test_one_request_per_question_reads_bare_answers_and_scores_them(tmp_path):
    records = make_records(3)
    write_dataset(tmp_path, 3)  # the images the V links send
    model = BareOracle()
    s = _run(records, model, tmp_path / "one", ask="one")
    rows = [r for r in _rows(tmp_path / "one") if r["status"] != "ambiguous"]
    # every request asked one question and said so; the number of requests is what was counted
    assert all(len(p.meta["qids"]) == 1 and p.meta["bare"] for p in model.prompts)
    assert "answer only" in model.prompts[0].messages[-1].content[-1].text
    opts = AskOptions(image_root="", image="without", ask="one")
    assert s["requests"] == sum(count_requests(r, ("transitions", "free"), "without", opts) for r in records)
    typed = [r for r in rows if r["type"] != "text"]
    assert typed and all(r["score"] == 1.0 for r in typed), [r for r in typed if r["score"] < 1][:2]
    assert {r["parse_mode"] for r in rows} == {"bare"} and {r["ask"] for r in rows} == {"one"}
    block = s["ask"]
    assert block["parse_rate"] == 1.0 and block["parse_modes"]["bare"]["answers"] == len(rows)
    assert block["ask"]["one"]["requests"] == s["requests"]


def test_the_same_bare_model_asked_all_at_once_is_mostly_unparsed(tmp_path):
    records = make_records(3)
    write_dataset(tmp_path, 3)
    s_all = _run(records, BareOracle(), tmp_path / "all", ask="all")
    s_stage = _run(records, BareOracle(), tmp_path / "stage", ask="stage")
    assert s_all["ask"]["parse_modes"]["unparsed"]["answers"] > 0
    assert s_all["ask"]["parse_rate"] < 0.5
    # stage splits planning from behavior: more requests than all, fewer than one per question
    n_one = sum(count_requests(r, ("transitions", "free"), "without", AskOptions("", "without", ask="one")) for r in records)
    assert s_all["requests"] < s_stage["requests"] < n_one
    assert set(s_all["ask"]["parse_modes"]) <= {"by_id", "unparsed"}


def _served_reply(messages: list[dict]) -> str:
    """A text-only server model: reads the one question from the prompt and answers in words."""
    user = messages[-1]["content"]
    text = user if isinstance(user, str) else "\n".join(p.get("text", "") for p in user if p.get("type") == "text")
    view = parse_prompt(text)
    q = view.targets[0]
    return {"choice": "The answer is: B. IDLE", "boolean": "yes.", "number": "about 20 m",
            "objects": "vehicles 3 and 5", "ranking": "3 > 1", "text": "The ego keeps its lane."}[q.type]


def test_cli_one_question_per_request_on_chosen_text_links_through_a_loopback_server(tmp_path):
    data = write_dataset(tmp_path / "data", 2)
    records = make_records(2)
    with FakeServer(reply=_served_reply) as srv:
        proc = subprocess.run(
            [sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", "openai:text",
             "--base-url", srv.base_url, "--protocol", "transitions", "--image", "without", "--ask", "one",
             "--links", "Per->Pred,Pred->Plan", "--out", str(tmp_path / "run"), "--no-progress"],
            capture_output=True, text=True, timeout=120)
        bodies = [r.body for r in srv.requests]
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(tmp_path / "run")
    assert {r["link"] for r in rows} == {"Per->Pred", "Pred->Plan"} and not any(r["image"] for r in rows)
    assert "image_url" not in json.dumps(bodies)  # text-only links: no image travelled
    asked = sum(len(targets_of(r, ("prediction",))) + len(targets_of(r, ("planning", "behavior"))) for r in records)
    assert len(bodies) == asked
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["ask"]["parse_rate"] == 1.0 and set(summary["ask"]["parse_modes"]) == {"bare"}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["ask"] == "one" and config["links"] == ["Per->Pred", "Pred->Plan"]
    assert "parsed" in proc.stdout
    # a boolean answered "yes." scored as yes, a number "about 20 m" as 20
    yes = [r for r in rows if r["type"] == "boolean"]
    assert yes and all(r["value"] is True for r in yes)
    assert all(r["value"] == 20.0 for r in rows if r["type"] == "number")


@pytest.mark.parametrize("args, message", [
    (["--ask", "some"], "--ask"),
    (["--links", "Per->Pred,V->Behavior"], "unknown link"),
])
def test_bad_ask_or_links_is_one_line_and_exit_2(tmp_path, args, message):
    data = write_dataset(tmp_path / "data", 1)
    proc = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", "oracle",
                           "--out", str(tmp_path / "run"), "--no-progress", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
