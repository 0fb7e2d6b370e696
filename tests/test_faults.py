"""A run never lies: failed requests are failures (never graded, retried on resume), too many of them
make a run incomplete (exit 1), interrupts stop cleanly, runs are never overwritten or mixed.

Every test drives the real CLI in a subprocess against tests/fakeserver.py's loopback server.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakeserver import FakeServer
from tests.test_eval_helpers import write_dataset

SRC = str(Path(__file__).resolve().parents[1] / "src")
ROOT = str(Path(__file__).resolve().parents[1])
ANSWER = '{"answer": "A"}'


def env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's sources first, no user settings."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("DRIVECHAIN_")}
    out["PYTHONPATH"] = os.pathsep.join([SRC, ROOT])
    out["PYTHONWARNINGS"] = "ignore"
    return {**out, **extra}


def drivechain(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True,
                          env=kw.pop("env", None) or env(), timeout=timeout, **kw)


def eval_args(data: Path, out: Path, url: str, *extra: str) -> list[str]:
    # --protocol cot: exactly one request per frame
    return ["eval", "--data", str(data), "--model", "openai:fake", "--base-url", url, "--protocol", "cot",
            "--out", str(out), "--retries", "1", "--timeout", "3", "--no-progress", *extra]


def stored(out: Path) -> dict[str, tuple[str, str, str | None]]:
    with sqlite3.connect(out / "results.sqlite") as db:
        return {k: (s, t, e) for k, s, t, e in db.execute("SELECT key, status, text, error FROM results")}


def scores(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "scores.jsonl").read_text(encoding="utf-8").splitlines()]


class FailOne:
    """Faults for the server: the first request seen (by its messages) fails ``times`` times with ``kind``."""

    def __init__(self, kind: str, times: int) -> None:
        self.kind, self.times, self.target, self.n = kind, times, None, 0

    def __call__(self, index: int, body: dict) -> str | None:
        key = json.dumps(body.get("messages"), sort_keys=True)
        self.target = self.target or key
        if key == self.target and self.n < self.times:
            self.n += 1
            return self.kind
        return None


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("faults") / "data", 6)


# ------------------------------------------------------------------------ failures are failures

@pytest.mark.parametrize("kind", ["404", "500", "null", "empty", "emptychoices", "malformed", "drop", "hang"])
def test_a_failed_request_is_a_failure_record_never_graded_and_retried_next_run(
        data: Path, tmp_path: Path, kind: str) -> None:
    out = tmp_path / "run"
    # the first request fails, and so does its one retry unless the kind is final (404)
    with FakeServer(reply=lambda m: ANSWER, faults=FailOne(kind, 1 if kind == "404" else 2), hang_s=6.0) as srv:
        res = drivechain(*eval_args(data, out, srv.base_url, "--max-failure-rate", "0.5"))
        assert res.returncode == 0, res.stderr
        rows = stored(out)
        failed = {k: v for k, v in rows.items() if v[0] == "failed"}
        assert len(rows) == 6 and len(failed) == 1
        # not graded: the score rows of that request are 'failed', never 'unparsed'
        bad = [r for r in scores(out) if r["key"] in failed]
        assert bad and all(r["status"] in ("failed", "ambiguous") and r["score"] == 0.0 for r in bad)
        assert not any(r["status"] == "unparsed" for r in bad)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["failures"] == 1 and summary["complete"] is True
        assert sum(summary["failures_by_kind"].values()) == 1
        # the first failure of its kind was told at once, on one line
        assert sum("warning: a request failed" in ln for ln in res.stderr.splitlines()) == 1
        before = srv.count
        again = drivechain(*eval_args(data, out, srv.base_url))
        assert again.returncode == 0, again.stderr
        assert srv.count - before == 1  # exactly the failed request was asked again
    assert all(v[0] == "ok" for v in stored(out).values())
    assert json.loads((out / "summary.json").read_text())["failures"] == 0


def test_unparsed_text_stays_the_models_fault_not_a_failure(data: Path, tmp_path: Path) -> None:
    with FakeServer(reply=lambda m: "I like turtles") as srv:
        res = drivechain(*eval_args(data, tmp_path / "run", srv.base_url))
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["failures"] == 0 and summary["unparsed"] > 0 and summary["complete"] is True


def test_failures_above_the_threshold_exit_1_with_the_first_distinct_errors(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # a base URL without /v1: every request is a 404
    with FakeServer(reply=lambda m: ANSWER) as srv:
        res = drivechain(*eval_args(data, out, srv.base_url.removesuffix("/v1")))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "INCOMPLETE" in res.stderr and "HTTP 404" in res.stderr
    assert "6 of 6 requests failed" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and "6 of 6" in summary["incomplete_reason"]
    assert summary["failures_by_kind"] == {"HTTP 404": 6} and summary["first_errors"][0].startswith("HTTP 404")
    assert (out / "scores.jsonl").is_file()  # what exists is written
    # under the threshold set by the user, the same kind of run is complete
    with FakeServer(reply=lambda m: ANSWER, faults={0: "400"}) as srv:
        ok = drivechain(*eval_args(data, tmp_path / "ok", srv.base_url, "--max-failure-rate", "0.2"))
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["complete"] is True


def test_closed_loop_episode_whose_requests_failed_is_incomplete_not_scored(tmp_path: Path) -> None:
    out = tmp_path / "cl"
    with FakeServer(faults=lambda i, body: "400") as srv:
        res = drivechain("closedloop", "--model", "openai:dead", "--base-url", srv.base_url, "--scenarios", "merge",
                         "--episodes", "1", "--max-steps", "2", "--no-teacher-baseline", "--no-replay",
                         "--retries", "0", "--out", str(out), timeout=240)
    assert res.returncode == 1, res.stderr
    assert "INCOMPLETE" in res.stderr and "HTTP 400" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False
    assert summary["episodes"] == 0 and summary.get("driving_score") is None  # the IDLE fallback is not scored
    assert summary["failures"]["incomplete_episodes"] == 1
    assert list(summary["incomplete_episodes"]) == ["model/merge/0000"]


def _wait_for_rows(out: Path, n: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if (out / "results.sqlite").exists():
            try:
                if len(stored(out)) >= n:
                    return
            except sqlite3.DatabaseError:
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no rows stored in time")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_cleanly_keeps_everything_and_says_how_to_resume(
        data: Path, tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER, latency_s=lambda i: 0.05 if i < 2 else 30.0) as srv:
        proc = subprocess.Popen([sys.executable, "-m", "drivechain.cli",
                                 *eval_args(data, out, srv.base_url, "--concurrency", "1")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        _wait_for_rows(out, 2, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        assert "Traceback" not in err
        assert "rerun the same command to resume" in err and str(out) in err
        rows = stored(out)
        assert len(rows) == 2 and all(v[0] == "ok" for v in rows.values())
        assert not (out / "summary.json").exists() and not (out / "scores.jsonl").exists()
        srv.configure(latency_s=0.0)
        before = srv.count
        res = drivechain(*eval_args(data, out, srv.base_url))
        assert res.returncode == 0, res.stderr
        assert srv.count - before == 4
    assert json.loads((out / "summary.json").read_text())["requests"] == 6


# ------------------------------------------------------------------------ runs are not overwritten or mixed

def test_out_holding_a_run_with_other_settings_is_refused_and_force_replaces(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER) as srv:
        assert drivechain(*eval_args(data, out, srv.base_url)).returncode == 0
        res = drivechain(*eval_args(data, out, srv.base_url, "--temperature", "0.5"))
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
        assert "other settings" in res.stderr and "temperature" in res.stderr and "--force" in res.stderr
        other = drivechain("eval", "--data", str(data), "--model", "oracle", "--protocol", "cot", "--out", str(out),
                           "--no-progress")
        assert other.returncode == 2 and "model" in other.stderr
        assert json.loads((out / "summary.json").read_text())["model"] == "openai:fake"
        forced = drivechain(*eval_args(data, out, srv.base_url, "--temperature", "0.5", "--force"))
        assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "config.json").read_text())["temperature"] == 0.5
    cl = ["closedloop", "--model", "oracle", "--scenarios", "merge", "--episodes", "1", "--no-teacher-baseline",
          "--no-replay", "--max-steps"]
    for command, changed in ((["process", "--data", str(data), "--chains", "0", "--limit", "2", "--n", "2"],
                              ["process", "--data", str(data), "--chains", "0", "--limit", "2", "--n", "3"]),
                             ([*cl, "1"], [*cl, "2"])):
        run_dir = tmp_path / command[0]
        assert drivechain(*command, "--out", str(run_dir), timeout=240).returncode == 0
        res = drivechain(*changed, "--out", str(run_dir), timeout=240)
        assert res.returncode == 2 and "other settings" in res.stderr, (command, res.stderr)
        assert drivechain(*changed, "--out", str(run_dir), "--force", timeout=240).returncode == 0


def test_a_second_writer_on_one_run_folder_gets_one_line(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER, latency_s=lambda i: 0.0 if i == 0 else 30.0) as srv:
        first = subprocess.Popen([sys.executable, "-m", "drivechain.cli", *eval_args(data, out, srv.base_url, "--timeout", "60")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        try:
            _wait_for_rows(out, 1, first)
            # frames stream in: wait until the first writer has sent its last request (one per frame)
            frames = json.loads((data / "manifest.json").read_text())["counts"]["frames"]
            deadline = time.time() + 30
            while srv.count < frames and time.time() < deadline:
                time.sleep(0.05)
            count = srv.count
            second = drivechain(*eval_args(data, out, srv.base_url))
            assert second.returncode == 2, second.stderr
            assert second.stderr.startswith("error: ") and second.stderr.count("\n") == 1
            assert "being written by drivechain eval" in second.stderr
            assert srv.count == count  # the second writer sent nothing
        finally:
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=30)


def test_a_kill_right_after_config_json_does_not_block_resume(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER) as srv:
        assert drivechain(*eval_args(data, out, srv.base_url)).returncode == 0
        for p in out.iterdir():
            if p.name != "config.json":
                p.unlink()
        res = drivechain(*eval_args(data, out, srv.base_url))
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["requests"] == 6


def test_a_kill_mid_rerun_leaves_the_previous_complete_pair(data: Path, tmp_path: Path) -> None:
    import hashlib

    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER, faults={0: "400", 1: "400", 2: "400"}) as srv:
        res = drivechain(*eval_args(data, out, srv.base_url, "--max-failure-rate", "1"))
        assert res.returncode == 0, res.stderr
        pair = (out / "scores.jsonl").read_bytes(), (out / "summary.json").read_bytes()
        srv.configure(faults=None, latency_s=lambda i: 0.0 if i == 6 else 30.0)
        proc = subprocess.Popen([sys.executable, "-m", "drivechain.cli", *eval_args(data, out, srv.base_url)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        deadline = time.time() + 60
        while sum(1 for v in stored(out).values() if v[0] == "ok") < 4 and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.communicate()
    assert ((out / "scores.jsonl").read_bytes(), (out / "summary.json").read_bytes()) == pair
    summary = json.loads(pair[1])
    assert summary["scores_sha256"] == hashlib.sha256(pair[0]).hexdigest()


def test_a_dataset_that_no_longer_matches_its_manifest_is_refused(data: Path, tmp_path: Path) -> None:
    import shutil

    edited = tmp_path / "edited"
    shutil.copytree(data, edited)
    lines = (edited / "frames.jsonl").read_text(encoding="utf-8").splitlines()
    (edited / "frames.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    res = drivechain("eval", "--data", str(edited), "--model", "oracle", "--out", str(tmp_path / "run"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "no longer matches its manifest" in res.stderr and "--no-verify" in res.stderr
    assert not (tmp_path / "run").exists()
    ok = drivechain("eval", "--data", str(edited), "--model", "oracle", "--protocol", "cot", "--no-verify",
                    "--no-progress", "--out", str(tmp_path / "run"))
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["frames"] == 5
    assert summary["dataset_hash"] == __import__("hashlib").sha256((edited / "frames.jsonl").read_bytes()).hexdigest()


def test_rates_come_from_the_whole_run_not_the_last_invocation(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with FakeServer(reply=lambda m: ANSWER, latency_s=0.2) as srv:
        assert drivechain(*eval_args(data, out, srv.base_url, "--concurrency", "2")).returncode == 0
        first = json.loads((out / "summary.json").read_text())
        assert drivechain(*eval_args(data, out, srv.base_url)).returncode == 0  # fully cached
    second = json.loads((out / "summary.json").read_text())
    assert second["this_run"]["calls"] == 0
    assert second["wall_s"] == first["wall_s"] and second["requests_per_s"] == first["requests_per_s"]
    assert second["requests_per_s"] < 20  # 6 requests at 0.2 s, 2 in flight: ~10 req/s, not a cached 500+
    assert second["latency_s"] == first["latency_s"]


# ------------------------------------------------------------------------ hostile replies

SECRET = "sk-live-" + "Q" * 40 + "-END"


def test_a_huge_reply_is_stored_once_capped_and_never_copied_into_scores(data: Path, tmp_path: Path) -> None:
    from drivechain.models.base import MAX_REPLY_CHARS

    out = tmp_path / "run"
    huge = '{"answer": "A"} ' + "x" * 5_000_000
    with FakeServer(reply=lambda m: huge) as srv:
        res = drivechain(*eval_args(data, out, srv.base_url))
    assert res.returncode == 0, res.stderr
    assert (out / "scores.jsonl").stat().st_size < 200_000  # not 6 x 5 MB per answer row
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT length(text), reply_chars FROM results").fetchall()
    assert rows and all(n == MAX_REPLY_CHARS and full == len(huge) for n, full in rows)
    assert json.loads((out / "summary.json").read_text())["failures"] == 0


def test_the_key_is_redacted_before_any_cut_and_in_reply_text(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"

    def reply(messages: list[dict]) -> str:
        return f'{{"answer": "A"}} by the way your key is {SECRET}'

    # the first request's error body echoes the Authorization header where a cut at 300 splits the key
    with FakeServer(reply=reply, faults={0: "401pad"}) as srv:
        res = drivechain(*eval_args(data, out, srv.base_url, "--max-failure-rate", "0.5"),
                         env=env(DRIVECHAIN_API_KEY=SECRET))
        assert srv.requests[0].authorization == f"Bearer {SECRET}"
    assert res.returncode == 0, res.stderr
    everything = res.stdout + res.stderr + "".join(
        p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*") if p.is_file())
    assert SECRET[:12] not in everything and "Q" * 8 not in everything
    with sqlite3.connect(out / "results.sqlite") as db:
        texts = [t for (t,) in db.execute("SELECT text FROM results WHERE status = 'ok'")]
        errors = [e for (e,) in db.execute("SELECT error FROM results WHERE status = 'failed'")]
    assert len(texts) == 5 and all("***" in t for t in texts)
    assert len(errors) == 1 and "***" in errors[0]


def test_escape_sequences_from_a_server_never_reach_the_terminal(data: Path, tmp_path: Path) -> None:
    with FakeServer(reply=lambda m: "\x1b[2J\x1b[31m{\"answer\": \"A\"}\x1b[0m", faults=FailOne("ansi", 2)) as srv:
        res = drivechain(*eval_args(data, tmp_path / "run", srv.base_url, "--max-failure-rate", "0"))
    assert res.returncode == 1  # one failure in six is above a rate of 0
    assert "boom" in res.stderr  # the error is shown ...
    assert "\x1b" not in res.stderr and "\x1b" not in res.stdout and "\x07" not in res.stderr  # ... defanged


def test_model_names_with_mathtext_characters_draw_in_the_charts(data: Path, tmp_path: Path) -> None:
    runs = []
    with FakeServer(reply=lambda m: ANSWER) as srv:
        for i, name in enumerate(["we$ird_mo%del", "back\\slash$x$", "50%_off"]):
            out = tmp_path / f"run{i}"
            res = drivechain("eval", "--data", str(data), "--model", f"openai:{name}", "--base-url", srv.base_url,
                             "--protocol", "transitions", "--limit", "2", "--no-progress", "--out", str(out))
            assert res.returncode == 0, res.stderr
            runs.append(str(out))
    res = drivechain("report", *runs, "--out", str(tmp_path / "report"))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert list((tmp_path / "report" / "charts").glob("*.png"))  # the cost chart names every model
    html = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "we$ird_mo%del" in html


# ------------------------------------------------------------------------ a quiet, honest terminal

def test_help_keeps_units_in_brackets() -> None:
    res = drivechain("eval", "--help", env=env(COLUMNS="200"))
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "per-request timeout [s]" in text and "longest side [px]" in text
    res = drivechain("closedloop", "--help", env=env(COLUMNS="200"))
    assert "horizon [s]" in " ".join(res.stdout.split())


def test_tables_are_not_cut_at_80_columns_and_the_tokenizer_is_named(tiny_dataset: Path, tmp_path: Path) -> None:
    res = drivechain("eval", "--data", str(tiny_dataset), "--model", "oracle", "--limit", "2", "--protocol",
                     "transitions", "--no-progress", "--out", str(tmp_path / "run"), env=env(COLUMNS="80"))
    assert res.returncode == 0, res.stderr
    assert "teacher-forced" in res.stdout and "free-running" in res.stdout and "propagation" in res.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    tokenizer = summary["language"]["tokenizer"]
    assert tokenizer in ("ptb", "regex") and f"tokenizer {tokenizer}" in res.stdout
    # the Java tokenizer's own chatter and SDL's runtime-dir complaint are not ours to print
    assert "PTBTokenizer" not in res.stderr and "tokens per second" not in res.stderr
    assert "XDG_RUNTIME_DIR" not in res.stderr


def test_generate_is_quiet_and_an_sdl_dummy_driver_does_not_make_black_frames(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    quiet = env(SDL_VIDEODRIVER="dummy")
    quiet.pop("XDG_RUNTIME_DIR", None)
    res = drivechain("generate", "--scenarios", "merge", "--episodes", "1", "--steps-per-episode", "1",
                     "--image-size", "160x40", "--out", str(tmp_path / "ds"), env=quiet, timeout=240)
    assert res.returncode == 0, res.stderr
    assert "XDG_RUNTIME_DIR" not in res.stderr
    images = list((tmp_path / "ds").rglob("*.png"))
    assert images and all(np.asarray(Image.open(p)).max() > 0 for p in images)


def test_closed_loop_progress_counts_decisions_and_the_teacher_apart(tmp_path: Path) -> None:
    import pty

    # a terminal, so the progress bar is drawn as a user sees it
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "drivechain.cli", "closedloop", "--model", "oracle", "--scenarios",
                             "merge", "--episodes", "1", "--max-steps", "2", "--no-replay", "--out",
                             str(tmp_path / "cl")], stdin=slave, stdout=slave, stderr=slave, env=env(COLUMNS="120"))
    os.close(slave)
    chunks = []
    deadline = time.time() + 240
    while time.time() < deadline:  # read while it runs: a full terminal buffer would block the child
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=30)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "closedloop model (1 episodes)" in text and "teacher baseline (1 episodes)" in text
    assert "2/2" in text and "decisions" in text


def test_make_run_installs_core_only_and_test_installs_extras_under_constraints() -> None:
    import shutil
    import tomllib

    root = Path(ROOT)
    assert shutil.which("make")

    def dry(target: str) -> list[str]:
        res = subprocess.run(["make", "-n", "-B", target], cwd=root, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return [ln for ln in res.stdout.splitlines() if "pip install" in ln]

    run_lines, test_lines = dry("run"), dry("test")
    assert run_lines and all("-e ." in ln and "[" not in ln and "-c constraints.txt" in ln for ln in run_lines)
    assert any("[test" in ln and "hf" in ln and "-c constraints.txt" in ln for ln in test_lines)
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    core = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(name in " ".join(core) for name in ("torch", "playwright", "pytest"))
    pins = [d for deps in extras.values() for d in deps if "==" in d]
    assert pins == [] and any(d.startswith("torch>=") for d in extras["hf"])
    constraints = (root / "constraints.txt").read_text().splitlines()
    assert any(line.startswith("torch==") for line in constraints)
