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


def _edit_first_line(folder: Path, edit) -> Path:
    path = folder / "frames.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = edit(lines[0])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


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
    for name in ("bad.toml", "unknown.toml", "wrongtype.toml", "afile", "foreign", "empty", "nomani", "trunc",
                 "wrongfield", "escape", "garbsum"):
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
    ("demo-unknown-size", "demo --size huge --out {out}"),
]


@pytest.mark.parametrize("argv", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(scratch: dict[str, Path], tmp_path: Path, argv: str) -> None:
    """Each mistake: exit 2, a single 'error: ...' line, no traceback, no output folder, foreign files intact."""
    out = tmp_path / "out"
    values = {k: str(v) for k, v in scratch.items()} | {"out": str(out), "url": _closed_port_url()}
    args = [a.format_map(values) for a in shlex.split(argv)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("DRIVECHAIN_BASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "drivechain.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    # highway-env's pygame may print an XDG notice on import; that is not ours.
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "XDG_RUNTIME_DIR" not in ln]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in scratch["foreign"].iterdir()) == ["keep.txt"]
    assert scratch["afile"].read_text(encoding="utf-8") == "x"
