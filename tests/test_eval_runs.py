"""Runs: SIGKILL at several points then resume (nothing lost, nothing repeated), a faulty server,
the API key never written, and one-line errors for bad input."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivechain.dataset import load_dataset
from drivechain.evaluation.protocols import AskOptions
from drivechain.evaluation.runner import RunPolicy, evaluate
from drivechain.models.registry import load_model
from tests.fakeserver import FAULT_KINDS, FakeServer
from tests.test_eval_helpers import write_dataset
from tests.test_eval_protocols import Recorder, prompt_key, rows_of, run

VOLATILE = {"wall_s", "latency_s", "this_run", "requests_per_s"}
SECRET = "sk-test-DO-NOT-LEAK-5f3a9c"


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """A dataset and the replies of a seeded random model to every prompt a run sends."""
    data = write_dataset(tmp_path_factory.mktemp("runs") / "data", 6)
    ds = load_dataset(data)
    rec = Recorder(load_model("random:5"))
    run(list(ds.records()), rec, tmp_path_factory.mktemp("direct") / "run", str(ds.root.resolve()))
    return data, rec.replies


def reply_for(replies):
    return lambda msgs: replies.get(prompt_key(msgs), "no such prompt")


def cli(data: Path, out: Path, base_url: str, *extra: str, env: dict | None = None) -> list[str]:
    return [sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", "openai:scripted",
            "--base-url", base_url, "--out", str(out), "--concurrency", "4", "--timeout", "5", "--no-progress",
            *extra]


def stable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def store_rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT key, status, text, error, attempts FROM results ORDER BY key").fetchall()


def test_sigkill_at_several_points_then_resume_loses_and_repeats_nothing(scripted, tmp_path):
    data, replies = scripted
    with FakeServer(latency_s=0.03, reply=reply_for(replies)) as srv:
        ref = tmp_path / "ref"
        res = subprocess.run(cli(data, ref, srv.base_url), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        total = srv.count
        ref_summary = json.loads((ref / "summary.json").read_text())
        assert ref_summary["requests"] == total and ref_summary["failures"] == 0
        for kill_after in (3, total // 3, (2 * total) // 3):
            out = tmp_path / f"killed{kill_after}"
            start = srv.count
            proc = subprocess.Popen(cli(data, out, srv.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            # with 4 in flight, k + 4 arrivals mean at least k answered (each stored before the next is sent)
            while srv.count - start < kill_after + 4 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
            stored = store_rows(out)
            n_ok = sum(1 for r in stored if r[1] == "ok")
            assert 0 < n_ok < total
            before = srv.count
            res = subprocess.run(cli(data, out, srv.base_url), capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, res.stderr
            # exactly the requests not stored were asked again; stored successes were not repeated
            assert srv.count - before == total - n_ok
            rows = store_rows(out)
            assert len(rows) == total == len({r[0] for r in rows})
            assert all(r[1] == "ok" for r in rows)
            assert {r[0]: r[2] for r in rows} == {r[0]: r[2] for r in store_rows(ref)}
            assert (out / "scores.jsonl").read_bytes() == (ref / "scores.jsonl").read_bytes()
            summary = json.loads((out / "summary.json").read_text())
            assert stable(summary) == stable(ref_summary)
            assert summary["this_run"]["calls"] == total - n_ok
        # a finished run re-run asks nothing
        before = srv.count
        res = subprocess.run(cli(data, ref, srv.base_url), capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and srv.count == before


def _eval(data: Path, out: Path, model, policy: RunPolicy) -> dict:
    ds = load_dataset(data)

    async def main() -> dict:
        try:
            return await evaluate(list(ds.records()), model, out, protocols=("transitions", "free", "cot"),
                                  opts=AskOptions(image_root=str(ds.root.resolve())), policy=policy,
                                  progress=False, tokenizer="regex")
        finally:
            await model.aclose()

    return asyncio.run(main())


def _scores(out: Path) -> list[tuple]:
    return [(r["protocol"], r["link"], r["image"], r["frame_id"], r["qid"], r["score"], r["status"])
            for r in rows_of(out)]


def test_faulty_server_completes_with_explicit_failures_retried_on_rerun(scripted, tmp_path):
    data, replies = scripted
    policy = RunPolicy(concurrency=6, timeout_s=0.4, retries=2, backoff_s=0.01, backoff_max_s=0.05,
                       retry_after_max_s=0.1)
    with FakeServer(reply=reply_for(replies), fault_rate=0.4, fault_kinds=FAULT_KINDS, hang_s=1.0,
                    retry_after="0.05", seed=11) as srv:
        out = tmp_path / "faulty"
        summary = _eval(data, out, load_model("openai:scripted", base_url=srv.base_url, timeout_s=0.4), policy)
        kinds = {r.fault for r in srv.requests}
        assert {"500", "429", "hang", "malformed", "drop", "400"} <= kinds
        failed = [r for r in store_rows(out) if r[1] == "failed"]
        assert failed and summary["failures"] == len(failed)
        assert all(r[3] for r in failed)  # each failure says why
        assert any("gave up after 3 attempts" in r[3] for r in failed)  # retried transient faults
        assert any(r[4] == 1 and "HTTP 400" in r[3] for r in failed)  # a client error is not retried
        failed_rows = [r for r in rows_of(out) if r["status"] == "failed"]
        assert failed_rows and all(r["score"] == 0.0 for r in failed_rows)
        assert summary["failed_answers"] == sum(1 for r in failed_rows if r["type"] != "text")
        # rerun on a healed server: only failures and the chain steps behind them are asked
        srv.configure(fault_rate=0.0)
        before = srv.count
        healed = _eval(data, out, load_model("openai:scripted", base_url=srv.base_url, timeout_s=2), policy)
        asked = srv.count - before
    assert len(failed) <= asked < summary["requests"]
    assert healed["failures"] == 0 and all(r[1] == "ok" for r in store_rows(out))
    # the same scores as a model that never failed
    clean = tmp_path / "clean"
    rec = Recorder(load_model("random:5"))
    _eval(data, clean, rec, policy)
    assert _scores(out) == _scores(clean)


def test_api_key_never_reaches_the_run_folder(scripted, tmp_path):
    data, replies = scripted
    env = {**os.environ, "DRIVECHAIN_API_KEY": SECRET}
    # 401 echoes the Authorization header in its body, as careless servers do
    with FakeServer(reply=reply_for(replies), faults={0: "401", 1: "401", 2: "500", 3: "400"}) as srv:
        out = tmp_path / "run"
        res = subprocess.run(cli(data, out, srv.base_url, "--protocol", "transitions", "--retries", "0", "--limit", "2",
                                 "--max-failure-rate", "1"),
                             capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        assert srv.requests[0].authorization == f"Bearer {SECRET}"  # the key was used...
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "results.sqlite", "scores.jsonl", "summary.json"}
    for p in files:  # ...and written nowhere
        assert SECRET.encode() not in p.read_bytes(), p
    assert any(r[1] == "failed" and "HTTP 401" in r[3] for r in store_rows(out))
    assert SECRET not in res.stdout + res.stderr


@pytest.mark.parametrize("case", ["no-dataset", "bad-spec", "unreachable", "bad-protocol"])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(scripted, tmp_path, case):
    data, _ = scripted
    out = tmp_path / "run"
    args = {
        "no-dataset": ["--data", str(tmp_path / "missing"), "--model", "oracle"],
        "bad-spec": ["--data", str(data), "--model", "nosuch:model"],
        "unreachable": ["--data", str(data), "--model", "openai:x", "--base-url", "http://127.0.0.1:9/v1"],
        "bad-protocol": ["--data", str(data), "--model", "oracle", "--protocol", "everything"],
    }[case]
    res = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", *args, "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error:")
    assert not out.exists()


def test_config_file_fills_options_and_config_json_records_them(scripted, tmp_path):
    data, _ = scripted
    cfg = tmp_path / "eval.toml"
    cfg.write_text('[eval]\nprotocol = "free"\nlimit = 2\nimage = "with"\n')
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--config", str(cfg), "--data", str(data),
                          "--model", "oracle", "--out", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    config = json.loads((out / "config.json").read_text())
    assert (config["protocol"], config["limit"], config["image"], config["frames"]) == ("free", 2, "with", 2)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocols"] == ["free"] and summary["frames"] == 2
    assert summary["free_running"]["planning"] == 1.0 and summary["overall"] is None  # no teacher-forced links
    assert "overall" in res.stdout  # the closing table
