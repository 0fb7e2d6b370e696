"""Read run folders of every kind (eval, closed loop, process, prm-eval) for the report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from drivechain.errors import DrivechainError

RUN_KINDS = ("eval", "closedloop", "process", "prm_eval", "other")


@dataclass
class Run:
    """One run folder, its kind, summary and config."""

    path: Path
    kind: str
    summary: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """The model spec the user gave (or the rater/generator), so runs of one model line up."""
        for key in ("model", "rater", "generator"):
            value = self.config.get(key) or self.summary.get(key)
            if value:
                return str(value)
        return self.path.name

    @property
    def complete(self) -> bool:
        """False when the summary says the run stopped early (absent flag = complete, older runs)."""
        return self.summary.get("complete") is not False

    @property
    def incomplete_reason(self) -> str:
        """Why the run is incomplete, in the summary's words ('' when complete)."""
        if self.complete:
            return ""
        return str(self.summary.get("incomplete_reason") or "the run did not finish")

    @property
    def dataset(self) -> str:
        """A short name of the evaluated dataset: its name and the first hex digits of its hash."""
        name = self.config.get("dataset_name") or Path(str(self.config.get("data") or "")).name
        digest = str(self.summary.get("dataset_hash") or self.config.get("dataset_hash")
                     or self.config.get("frames_sha256") or "")
        return f"{name} ({digest[:8]})" if digest else str(name or "")

    @property
    def dataset_key(self) -> str:
        """What makes two runs comparable frame by frame: the dataset's hash (else its folder)."""
        return str(self.summary.get("dataset_hash") or self.config.get("dataset_hash")
                   or self.config.get("frames_sha256") or self.config.get("data") or "")

    def jsonl(self, name: str) -> Iterator[dict[str, Any]]:
        """Rows of a JSONL file in the run folder (missing file = no rows; a bad line is skipped)."""
        path = self.path / name
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line of a killed run: the report shows what is complete
                if isinstance(row, dict):
                    yield row


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise DrivechainError(f"{path} is not valid JSON ({exc}); rerun the command that wrote it") from None
    if not isinstance(data, dict):
        raise DrivechainError(f"{path} does not hold a JSON object; rerun the command that wrote it")
    return data


def detect_kind(path: Path, summary: dict[str, Any]) -> str | None:
    """Which command wrote this folder, from its files and summary keys."""
    if (path / "candidates.jsonl").is_file() or (path / "prm800k.jsonl").is_file():
        return "process"
    if "driving_score" in summary:
        return "closedloop"
    if "transitions" in summary or "stages" in summary:
        return "eval"
    if "best_of_n" in summary or "first_error_f1" in summary:
        return "prm_eval"
    return None


def load_run(path: Path) -> Run:
    """A run folder; DrivechainError (one line) when it is not one."""
    if not path.is_dir():
        raise DrivechainError(f"run folder {path} does not exist; pass folders written by eval/closedloop/process")
    summary = _read_json(path / "summary.json")
    if not summary:
        raise DrivechainError(f"{path} has no summary.json; is the run finished? (rerun it to complete)")
    kind = detect_kind(path, summary)
    if kind is None:  # a run kind this report does not know yet: its summary is listed as it is
        kind = "other"
    return Run(path=path, kind=kind, summary=summary, config=_read_json(path / "config.json"))


def load_runs(paths: list[Path]) -> list[Run]:
    """Every run folder given; a folder holding run folders is expanded one level."""
    runs: list[Run] = []
    for path in paths:
        if path.is_dir() and not (path / "summary.json").exists():
            children = sorted(p for p in path.iterdir() if (p / "summary.json").is_file())
            if children:
                runs.extend(load_run(p) for p in children)
                continue
        runs.append(load_run(path))
    if not runs:
        raise DrivechainError("no run folders given; pass folders written by eval/closedloop/process")
    return runs
