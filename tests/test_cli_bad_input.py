"""Bad input on every CLI command: one line on stderr, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _closed_port_url() -> str:
    """A loopback URL where nothing listens (a port bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rehash(folder: Path) -> Path:
    """Make the manifest agree with an edited frames.jsonl, so the edit itself is what gets caught."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["frames_sha256"] = hashlib.sha256((folder / "frames.jsonl").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _edit_first_line(folder: Path, edit) -> Path:
    path = folder / "frames.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = edit(lines[0])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _rehash(folder)


def _run_folder(path: Path, summary: dict | None = None, scores: bytes | None = None) -> Path:
    path.mkdir()
    if summary is not None:
        (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    if scores is not None:
        (path / "scores.jsonl").write_bytes(scores)
    return path


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, tiny_dataset: Path) -> dict[str, Path]:
    """Broken inputs built once: configs, datasets, run folders, files where folders belong."""
    root = tmp_path_factory.mktemp("bad")
    p: dict[str, Path] = {"ds": tiny_dataset}
    (root / "bad.toml").write_text("not = [toml", encoding="utf-8")
    (root / "unknown.toml").write_text("bogus_key = 1\n", encoding="utf-8")
    (root / "wrongtype.toml").write_text('episodes = "many"\n', encoding="utf-8")
    (root / "afile").write_text("x", encoding="utf-8")
    (root / "foreign").mkdir()
    (root / "foreign" / "keep.txt").write_text("theirs", encoding="utf-8")
    (root / "empty").mkdir()
    _copy(tiny_dataset, root / "nomani")
    (root / "nomani" / "manifest.json").unlink()
    _edit_first_line(_copy(tiny_dataset, root / "trunc"), lambda line: line[:150])

    def wrong_field(line: str) -> str:
        row = json.loads(line)
        row["frame"]["ego"]["speed_mps"] = "fast"
        return json.dumps(row)

    _edit_first_line(_copy(tiny_dataset, root / "wrongfield"), wrong_field)

    def escape(line: str) -> str:
        row = json.loads(line)
        row["frame"]["images"] = {k: "../../../etc/passwd" for k in row["frame"]["images"]}
        return json.dumps(row)

    _edit_first_line(_copy(tiny_dataset, root / "escape"), escape)
    (root / "garbsum").mkdir()
    (root / "garbsum" / "summary.json").write_text('{"model": ', encoding="utf-8")
    # frames.jsonl with a byte that is not UTF-8 (the manifest agrees with the bytes)
    latin = _copy(tiny_dataset, root / "latin")
    raw = (latin / "frames.jsonl").read_bytes()
    (latin / "frames.jsonl").write_bytes(raw.replace(b'"scenario"', b'"sc\xe9nario"', 1))
    _rehash(latin)
    (root / "ro").mkdir()
    (root / "ro").chmod(0o555)
    # a run folder whose results.sqlite is read-only, and one whose results.sqlite is someone else's
    import sqlite3

    for name, sql in (("rosql", "CREATE TABLE results (key TEXT PRIMARY KEY, model TEXT NOT NULL, frame_id TEXT,"
                       " request TEXT, status TEXT, text TEXT, error TEXT, prompt_tokens INT, completion_tokens INT,"
                       " reasoning_tokens INT, latency_s REAL, attempts INT)"),
                      ("foreignsql", "CREATE TABLE results (id INTEGER PRIMARY KEY, payload BLOB)")):
        (root / name).mkdir()
        with sqlite3.connect(root / name / "results.sqlite") as db:
            db.execute(sql)
    (root / "rosql" / "results.sqlite").chmod(0o444)
    eval_summary = {"model": "m", "overall": 0.5, "stages": {"perception": 0.5}, "transitions": {},
                    "transitions_no_image": {}, "requests": 1, "failures": 0, "unparsed": 0, "frames": 1}
    _run_folder(root / "wrongtypes", {**eval_summary, "stages": "high", "overall": "0.5", "transitions": [1, 2],
                                      "frames": {"n": 1}, "tokens": 7, "latency_s": "fast"})
    _run_folder(root / "badscores", eval_summary, b"\xff\xfe\x00garbage\n\x89PNG\r\n")
    # with its dataset named, the report's frame browser reads the scores
    (root / "badscores" / "config.json").write_text(json.dumps({"data": str(tiny_dataset), "model": "m"}))
    for name in ("bad.toml", "unknown.toml", "wrongtype.toml", "afile", "foreign", "empty", "nomani", "trunc",
                 "wrongfield", "escape", "garbsum", "latin", "ro", "rosql", "foreignsql", "wrongtypes", "badscores"):
        p[name.replace(".", "_")] = root / name
    p["root"] = root
    return p


# (case id, argv with {name} placeholders; {out} is a fresh path that must not exist afterwards)
CASES = [
    ("gen-unknown-scenario", "generate --scenarios nope --episodes 1 --steps-per-episode 1 --out {out}"),
    ("gen-unknown-source", "generate --source nope --out {out}"),
    ("gen-config-missing", "generate --config {root}/missing.toml --out {out}"),
    ("gen-config-invalid-toml", "generate --config {bad_toml} --out {out}"),
    ("gen-config-unknown-key", "generate --config {unknown_toml} --out {out}"),
    ("gen-config-wrong-type", "generate --config {wrongtype_toml} --out {out}"),
    ("gen-out-is-file", "generate --scenarios highway --episodes 1 --steps-per-episode 1 --out {afile}"),
    ("gen-out-under-file", "generate --scenarios highway --episodes 1 --steps-per-episode 1 --out {afile}/sub"),
    ("gen-empty-name", "generate --name '' --scenarios highway --episodes 1 --steps-per-episode 1 --out {out}"),
    ("eval-out-under-file", "eval --data {ds} --model oracle --out {afile}/sub"),
    ("eval-unknown-model", "eval --data {ds} --model nope --out {out}"),
    ("eval-unknown-protocol", "eval --data {ds} --model oracle --protocol nope --out {out}"),
    ("eval-limit-zero", "eval --data {ds} --model oracle --limit 0 --out {out}"),
    ("eval-data-missing", "eval --data {root}/nothere --model oracle --out {out}"),
    ("eval-data-empty", "eval --data {empty} --model oracle --out {out}"),
    ("eval-manifest-missing", "eval --data {nomani} --model oracle --out {out}"),
    ("eval-frames-truncated", "eval --data {trunc} --model oracle --out {out}"),
    ("eval-frames-wrong-field", "eval --data {wrongfield} --model oracle --out {out}"),
    ("eval-image-escapes", "eval --data {escape} --model oracle --out {out}"),
    ("eval-out-foreign", "eval --data {ds} --model oracle --out {foreign}"),
    ("eval-unreachable", "eval --data {ds} --model openai:x --base-url {url} --limit 1 --out {out}"),
    ("closedloop-unknown-scenario", "closedloop --model oracle --scenarios nope --out {out}"),
    ("closedloop-out-foreign", "closedloop --model oracle --scenarios highway --episodes 1 --out {foreign}"),
    ("closedloop-unreachable", "closedloop --model openai:x --base-url {url} --scenarios highway --out {out}"),
    ("process-out-is-file", "process --data {ds} --out {afile}"),
    ("process-limit-negative", "process --data {ds} --limit -1 --out {out}"),
    ("process-unreachable", "process --data {ds} --generator openai:x --base-url {url} --limit 1 --out {out}"),
    ("prm-eval-not-process-data", "prm-eval --data {ds} --out {out}"),
    ("prm-eval-out-foreign", "prm-eval --data {ds} --out {foreign}"),
    ("report-not-a-run", "report {empty} --out {out}"),
    ("report-garbled-summary", "report {garbsum} --out {out}"),
    ("report-out-is-file", "report {garbsum} --out {afile}"),
    ("report-out-under-file", "report {garbsum} --out {afile}/sub"),
    ("demo-out-is-file", "demo --out {afile}"),
    ("eval-frames-not-utf8", "eval --data {latin} --model oracle --out {out}"),
    ("eval-frames-not-utf8-no-verify", "eval --data {latin} --model oracle --no-verify --out {out}"),
    ("eval-out-read-only", "eval --data {ds} --model oracle --out {ro}/out"),
    ("eval-run-read-only", "eval --data {ds} --model oracle --out {ro}"),
    ("eval-sqlite-read-only", "eval --data {ds} --model oracle --out {rosql}"),
    ("eval-sqlite-foreign-schema", "eval --data {ds} --model oracle --out {foreignsql}"),
    ("eval-temperature-inf", "eval --data {ds} --model oracle --temperature inf --out {out}"),
    ("eval-temperature-nan", "eval --data {ds} --model oracle --temperature nan --out {out}"),
    ("eval-max-failure-rate-above-1", "eval --data {ds} --model oracle --max-failure-rate 2 --out {out}"),
    ("closedloop-horizon-huge", "closedloop --model oracle --scenarios highway --horizon 1e7 --out {out}"),
    ("closedloop-horizon-zero", "closedloop --model oracle --scenarios highway --horizon 0 --out {out}"),
    ("closedloop-out-read-only", "closedloop --model oracle --scenarios highway --out {ro}/out"),
    ("gen-horizon-huge", "generate --scenarios highway --horizon 1e7 --out {out}"),
    ("gen-epsilon-nan", "generate --scenarios highway --epsilon nan --out {out}"),
    ("process-temperature-nan", "process --data {ds} --temperature nan --out {out}"),
    ("process-out-read-only", "process --data {ds} --out {ro}/out"),
    ("prm-eval-threshold-nan", "prm-eval --data {ds} --threshold nan --out {out}"),
    ("report-summary-wrong-types", "report {wrongtypes} --out {out}"),
    ("report-scores-unreadable", "report {badscores} --out {out}"),
    ("report-out-read-only", "report {badscores} --out {ro}/out"),
    ("demo-unknown-size", "demo --size huge --out {out}"),
]


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(scratch: dict[str, Path], tmp_path: Path, argv: str) -> None:
    """Each mistake: exit 2, a single 'error: ...' line, no traceback, no output folder, foreign files intact."""
    out = tmp_path / "out"
    values = {k: str(v) for k, v in scratch.items()} | {"out": str(out), "url": _closed_port_url()}
    args = [a.format_map(values) for a in shlex.split(argv)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    env.pop("DRIVECHAIN_BASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    # highway-env's pygame may print an XDG notice on import; that is not ours.
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "XDG_RUNTIME_DIR" not in ln]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists()
    assert not [p for p in scratch["root"].iterdir() if p.name.startswith(".")]  # no half-built report
    for name, files in (("ro", []), ("rosql", ["results.sqlite"]), ("foreignsql", ["results.sqlite"])):
        assert sorted(p.name for p in scratch[name].iterdir()) == files  # nothing written into them
    assert sorted(p.name for p in scratch["foreign"].iterdir()) == ["keep.txt"]
    assert scratch["afile"].read_text(encoding="utf-8") == "x"
