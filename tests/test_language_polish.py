"""``drivechain polish`` against the loopback server: a scripted paraphraser whose good rewordings are
kept and whose wrong ones (swapped side, dropped "not", renumbered vehicle, added road user) are
rejected and counted; everything but the text is unchanged; the polished dataset verifies and evaluates."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from drivechain.dataset import load_dataset
from drivechain.language.checker import check
from drivechain.language.polish import candidates, content_sha256
from tests.fakeserver import FakeServer

GOOD = ("In this scene, {}", "Put simply: {}")


def _swap_sides(text: str) -> str:
    return re.sub(r"\b(left|right)\b", lambda m: "right" if m.group(1) == "left" else "left", text)


def paraphraser(messages) -> str:
    """Two faithful rewordings among near-misses, as a careless model would write them."""
    text = messages[-1]["content"] if isinstance(messages[-1]["content"], str) else messages[-1]["content"][0]["text"]
    template = text.split("\n\n", 1)[1]
    lines = [f"1. {GOOD[0].format(template)}"]
    if re.search(r"\b(left|right)\b", template):
        lines.append(f"2. {_swap_sides(template)}")
    if re.search(r"\bnot\b", template):
        lines.append("3. " + re.sub(r" ?not\b", "", template, count=1))
    if re.search(r"[Vv]ehicle \d", template):
        lines.append("4. " + re.sub(r"([Vv]ehicle) (\d+)", lambda m: f"{m.group(1)} {int(m.group(2)) + 7}", template, count=1))
    lines.append(f"5. {template} Assume a pedestrian is crossing.")
    lines.append(f'- "{GOOD[1].format(template)}"')
    lines.append(f"7. {GOOD[1].format(template)} Maybe in 9 s.")
    return "Here are the rewordings:\n" + "\n".join(lines)


def _polish(data, out, srv, *extra):
    return subprocess.run([sys.executable, "-m", "drivechain.cli", "polish", "--data", str(data), "--model", "openai:p",
                           "--base-url", srv.base_url, "--variants", "2", "--out", str(out), "--no-progress",
                           "--retries", "0", *extra], capture_output=True, text=True, timeout=300)


def test_polish_keeps_only_checked_variants_and_touches_nothing_but_text(tiny_dataset, tmp_path):
    out = tmp_path / "polished"
    with FakeServer(reply=paraphraser) as srv:
        proc = _polish(tiny_dataset, out, srv)
        asked = srv.count
    assert proc.returncode == 0, proc.stderr[-2000:]
    src, dst = load_dataset(tiny_dataset), load_dataset(out, verify=True)
    assert content_sha256(dst) == content_sha256(src)
    assert dst.manifest.images_sha256 == src.manifest.images_sha256
    pairs = list(zip(src.records(), dst.records(), strict=True))
    n_questions = 0
    for a, b in pairs:
        for qa, qb in zip(a.graph.nodes, b.graph.nodes, strict=True):
            assert qb.question == qa.question and qb.explanation == qa.explanation and qb.answer == qa.answer
            # the two faithful rewordings, in reply order, and nothing else
            assert qb.question_variants == [g.format(qa.question) for g in GOOD]
            if qa.explanation:
                assert qb.explanation_variants == [g.format(qa.explanation) for g in GOOD]
            n_questions += 1
    polish = dst.manifest.counts["polish"]
    texts = polish["texts"]["question"] + polish["texts"]["explanation"]
    assert asked == texts  # one request per distinct text, shared by every frame that asks it
    rejected = polish["rejected"]["question"]
    for reason in ("side", "negation", "vehicle", "added_entity", "horizon"):
        assert rejected.get(reason, 0) > 0, (reason, rejected)
    assert polish["kept"]["question"] == 2 * polish["texts"]["question"]
    assert "Here are the rewordings:" not in json.dumps(polish)  # a preamble line is rejected, not kept
    assert sum(polish["rejected"]["question"].values()) + polish["kept"]["question"] == polish["candidates"]["question"]
    assert n_questions > 100

    # the polished dataset evaluates (text as asked is variant 0: the same scores as the source)
    runs = {}
    for name, data in (("src", tiny_dataset), ("dst", out)):
        proc = subprocess.run([sys.executable, "-m", "drivechain.cli", "eval", "--data", str(data), "--model", "oracle",
                               "--limit", "2", "--protocol", "transitions", "--out", str(tmp_path / name),
                               "--no-progress"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert runs["dst"]["overall"] == runs["src"]["overall"] == 1.0


def test_candidates_strip_markers_and_the_checker_guards_every_line():
    reply = '1. "Is car 3 ahead?"\n\n- Is vehicle 3 in front?\nVariant 3: Is vehicle 3 ahead of us?\n(4) Is vehicle 4 ahead?'
    got = candidates(reply)
    assert got == ["Is car 3 ahead?", "Is vehicle 3 in front?", "Is vehicle 3 ahead of us?", "Is vehicle 4 ahead?"]
    assert [check("Is vehicle 3 ahead of the ego?", c) == () for c in got] == [True, True, True, False]


def test_failing_server_writes_nothing_and_exits_2(tmp_path):
    from tests.test_eval_helpers import write_dataset

    data = write_dataset(tmp_path / "data", 2)
    out = tmp_path / "polished"
    with FakeServer(fault_rate=1.0, fault_kinds=("400",)) as srv:
        proc = _polish(data, out, srv)
    assert proc.returncode == 2, proc.stderr
    assert "polish requests failed" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def _one_question_dataset(root):
    """One frame, one question with a side, a negation-free wording and a horizon word ("now")."""
    import hashlib

    from PIL import Image

    from drivechain.schema import QA, BooleanAnswer, ChainGraph, FrameRecord, Manifest
    from tests.test_eval_helpers import make_record

    rec = make_record(0)
    qa = QA(qid="plan.safe.left", family="plan.safe", stage="planning", answer=BooleanAnswer(value=True),
            question="Is it safe for the ego to change to the left lane now?")
    rec = FrameRecord(frame=rec.frame, graph=ChainGraph(nodes=[qa]))
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / rec.frame.images["bev"])
    text = rec.model_dump_json() + "\n"
    (root / "frames.jsonl").write_text(text)
    manifest = Manifest(name="one", source="test", config={}, seed=0, versions={}, counts={"frames": 1},
                        frames_sha256=hashlib.sha256(text.encode()).hexdigest())
    (root / "manifest.json").write_text(json.dumps(manifest.model_dump()))
    return root, qa.question


@pytest.mark.slow
def test_smollm2_polishes_and_the_checker_rejects_its_mistakes(tmp_path):
    """The real SmolLM2-135M rewords a question; its unfaithful lines (it drops or adds "not", swaps
    sides) are rejected by reason, whatever it keeps passes the checker, the answer is untouched."""
    from tests.test_models_hf_text import SMOL_GGUF, smol_folder

    data, template = _one_question_dataset(tmp_path / "data")
    out = tmp_path / "polished"
    proc = subprocess.run([sys.executable, "-m", "drivechain.cli", "polish", "--data", str(data), "--model",
                           f"hf:{smol_folder()}", "--gguf", SMOL_GGUF, "--variants", "3", "--max-tokens", "48",
                           "--no-explanations", "--timeout", "1200", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=1800)  # a guard only: ~30 s of CPU
    assert proc.returncode == 0, proc.stderr[-2000:]
    dst = load_dataset(out, verify=True)
    assert content_sha256(dst) == content_sha256(load_dataset(data))
    polish = dst.manifest.counts["polish"]
    rejected = polish["rejected"]["question"]
    kept = polish["kept"].get("question", 0)
    assert polish["texts"] == {"question": 1} and polish["failed_requests"] == 0
    assert polish["candidates"]["question"] == kept + sum(rejected.values()) >= 1
    assert sum(rejected.values()) >= 1, polish  # SmolLM2-135M has never rewritten it faithfully three times
    (qa,) = next(dst.records()).graph.nodes
    assert qa.question == template and len(qa.question_variants) == kept <= 3
    assert all(check(template, v) == () for v in qa.question_variants)
