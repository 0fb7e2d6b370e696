"""DriveLM interop: the official figures, the shared sample's round trip and cameras, speed beside DriveLM's script.

    .venv/bin/python bench/drivelm.py [--shared ../shared/data] [--drivelm-repo PATH] [--items 10000] [--only ...]

Parts (``--only figures,roundtrip,cameras,loaders,speed``; all by default):
- figures: ``drivechain score drivelm`` on the challenge's ``output.json`` vs ``test_eval.json``
  (judge held at 50, PTB tokenizer) against every figure of that folder's NOTICE.md, to 1e-6;
- roundtrip: the DriveLM-nuScenes sample imports (every QA and image accounted for), exports back
  to the identical JSON, and re-imports to the identical frames;
- cameras: the sample's real images through the multi-camera prompt path: image parts, camera
  names, order, and sizes as the OpenAI adapter encodes them;
- loaders: a small highway-env dataset exported to DriveLM's layout and read by DriveLM's own
  ``evaluation.py`` (same figures as drivechain's) and ``convert2llama.py`` (needs ``--drivelm-repo``);
- speed: drivechain's scorer beside DriveLM's unmodified ``challenge/evaluation.py`` on the sample
  and on N synthetic items, the same inputs in the same run, and whether both give the same figures.
  DriveLM's script needs ``language_evaluation`` (not on PyPI) and an OpenAI key: it runs here with
  two stand-ins written to a temp folder, a ``language_evaluation.CocoEvaluator`` emulated with
  pycocoevalcap's PTB tokenizer and scorers (what that package wraps) and a ``gpt_eval`` whose
  judge answers "50". Without ``--drivelm-repo`` (a DriveLM checkout or bare git dir) only
  drivechain is timed.

Exit code 1 when a check fails; parts whose data is missing are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from drivechain.interop.drivelm.judge import ConstantJudge  # noqa: E402
from drivechain.interop.drivelm.score import score_files  # noqa: E402

TOL = 1e-6
FAILED: list[str] = []

LANGUAGE_EVALUATION_STANDIN = '''
"""Stand-in for bckim92/language-evaluation (not on PyPI): CocoEvaluator over pycocoevalcap, as that package does."""
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

_METRICS = {"BLEU": (Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), "ROUGE_L": (Rouge(), "ROUGE_L"),
            "CIDEr": (Cider(), "CIDEr")}


class CocoEvaluator:
    def __init__(self, coco_types=("BLEU", "ROUGE_L", "CIDEr"), unk_token="_UNK"):
        self.coco_types, self.unk = coco_types, unk_token

    def run_evaluation(self, predicts, answers):
        gts, res = {}, {}
        for i, (p, a) in enumerate(zip(predicts, answers)):
            refs = [a] if isinstance(a, str) else a
            gts[i] = [{"caption": r.replace(self.unk, "_UNKNOWN")} for r in refs]
            res[i] = [{"caption": p}]
        tok = PTBTokenizer()
        gts, res = tok.tokenize(gts), tok.tokenize(res)
        out = {}
        for t in self.coco_types:
            scorer, names = _METRICS[t]
            score, _ = scorer.compute_score(gts, res)
            if isinstance(names, list):
                out.update(zip(names, score))
            else:
                out[names] = score
        return out
'''

GPT_EVAL_STANDIN = '''
"""Stand-in for DriveLM's gpt_eval: the judge is held at 50 (no OpenAI key, no network)."""
class GPTEvaluation:
    def forward(self, data):
        return "50"
'''


def check(name: str, ok: bool, detail: str = "") -> None:
    """Print one check's outcome; remember failures for the exit code."""
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{(': ' + detail) if detail else ''}")
    if not ok:
        FAILED.append(name)


# --------------------------------------------------------------------------- figures


def notice_figures(notice: Path) -> dict[str, float]:
    """The figures of drivelm-challenge/NOTICE.md's table, by name."""
    figs: dict[str, float] = {}
    for line in notice.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2:
            continue
        label, value = cells
        nums = [float(x) for x in re.findall(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", value)]
        if label.startswith("items scored"):
            figs["scored"], figs["total"] = nums[0], nums[1]
        elif label.startswith("accuracy"):
            figs["accuracy"] = nums[0]
        elif label.startswith("chatgpt"):
            figs["chatgpt"] = nums[0]
        elif label.startswith("match"):
            figs["match"] = nums[0]
        elif label.startswith("Bleu_1"):
            figs.update({f"Bleu_{i + 1}": v for i, v in enumerate(nums)})
        elif label.startswith("ROUGE_L"):
            figs["ROUGE_L"], figs["CIDEr"] = nums
        elif label.startswith("components"):
            figs.update({f"component_{i}": v for i, v in enumerate(nums)})
        elif label.startswith("final score"):
            figs["final"] = nums[-1]
    return figs


def part_figures(shared: Path) -> None:
    """Every NOTICE.md figure reproduced to 1e-6 (judge 50, PTB tokenizer)."""
    folder = shared / "drivelm-challenge"
    print(f"figures: drivechain score drivelm on {folder} (judge 50, PTB)")
    if not shutil.which("java"):
        check("java on PATH (the official language figures need the PTB tokenizer)", False)
        return
    want = notice_figures(folder / "NOTICE.md")
    r = score_files(folder / "output.json", folder / "test_eval.json", ConstantJudge(50), "ptb")
    got = {"scored": r["items"]["scored"], "total": r["items"]["total"], "accuracy": r["accuracy"],
           "chatgpt": r["chatgpt"], "match": r["match"], **r["language"], "final": r["final_score"],
           **{f"component_{i}": v for i, v in enumerate(r["components"])}}
    check("NOTICE.md lists 16 figures", len(want) == 16, f"{len(want)} parsed")
    for name, value in want.items():
        diff = abs(got[name] - value)
        check(f"{name} = {got[name]!r}", diff <= TOL, f"NOTICE {value!r}, |diff| {diff:.1e}")


# --------------------------------------------------------------------------- round trip and cameras


def part_roundtrip(shared: Path, work: Path) -> Path | None:
    """Import the sample (790 QA, 54 images), export it back identical, re-import identical."""
    from drivechain.dataset import load_dataset
    from drivechain.interop.drivelm.exporter import export_drivelm
    from drivechain.interop.drivelm.importer import import_drivelm

    folder = shared / "drivelm-nuscenes-sample"
    src = folder / "train_sample.json"
    print(f"roundtrip: import / export / import of {src}")
    original = json.loads(src.read_text(encoding="utf-8"))
    n_qa = sum(len(v) for sv in original.values() for fv in sv["key_frames"].values() for v in fv["QA"].values())
    t0 = time.perf_counter()
    m = import_drivelm(src, folder, work / "sample")
    t_import = time.perf_counter() - t0
    c = m.counts
    typed = sum(v for k, v in c.items() if k.startswith("typed_"))
    check(f"{c['qa']} QA imported of {n_qa} in the file, {typed} typed+text, {c['untyped']} untyped (text)",
          c["qa"] == n_qa == typed and c["frames"] == 9, f"{t_import:.2f} s")
    check(f"{c['images']} images imported", c["images"] == 54)
    load_dataset(work / "sample", verify=True)
    export_drivelm(load_dataset(work / "sample"), work / "export.json", work / "flat.json")
    back = json.loads((work / "export.json").read_text(encoding="utf-8"))
    check("export equals the original file (values and key order)", json.dumps(back) == json.dumps(original))
    import_drivelm(work / "export.json", folder, work / "again")
    same = (work / "sample" / "frames.jsonl").read_bytes() == (work / "again" / "frames.jsonl").read_bytes()
    check("re-import gives byte-identical frames.jsonl", same)
    print("  typed: " + ", ".join(f"{k[6:]} {v}" for k, v in sorted(c.items()) if k.startswith("typed_")))
    return work / "sample"


def part_cameras(dataset_dir: Path, shared: Path) -> None:
    """The real images through the prompt: parts, names, order, bytes, sizes as the adapter sends them."""
    from PIL import Image

    from drivechain.dataset import load_dataset
    from drivechain.models.base import ImagePart, TextPart
    from drivechain.models.images import image_data_url, resolve_image
    from drivechain.prompts import build_request

    print("cameras: the sample's real images through the multi-camera prompt path")
    ds = load_dataset(dataset_dir)
    original = json.loads((shared / "drivelm-nuscenes-sample" / "train_sample.json").read_text(encoding="utf-8"))
    frames = 0
    for rec in ds.records():
        dl = rec.frame.meta["drivelm"]
        paths = original[dl["scene"]]["key_frames"][dl["frame"]]["image_paths"]
        req = build_request(rec, rec.graph.stage("perception")[:3], image=True, upstream=[], image_root=str(ds.root))
        parts = req.messages[1].content
        labels = [p.text[7:-1] for p in parts if isinstance(p, TextPart) and p.text.startswith("Camera ")]
        images = [p for p in parts if isinstance(p, ImagePart)]
        ok = labels == list(paths) and len(images) == 6
        for i, part in enumerate(parts):
            if isinstance(part, ImagePart):
                cam = parts[i - 1].text[7:-1]
                src = shared / "drivelm-nuscenes-sample" / paths[cam].replace("../", "", 1)
                ok &= resolve_image(str(ds.root), part.path).read_bytes() == src.read_bytes()
        frames += ok
        if rec is not None and frames == 1:
            sizes = []
            for part in images:
                path = resolve_image(str(ds.root), part.path)
                with Image.open(path) as im:
                    orig = im.size
                url = image_data_url(path, 1024, "jpeg")
                import base64
                import io

                with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as sent:
                    sizes.append(f"{orig[0]}x{orig[1]} -> {sent.size[0]}x{sent.size[1]}")
            print(f"  frame {rec.frame.frame_id}: {len(images)} image parts, cameras {', '.join(labels)}")
            print(f"  sizes (file -> sent at --max-image-side 1024, jpeg): {'; '.join(sorted(set(sizes)))}")
    check(f"{frames} of {len(ds)} frames: 6 image parts, each after its camera's name, in DriveLM's order, "
          "the user's bytes", frames == len(ds))


# --------------------------------------------------------------------------- speed


def synthetic(n_items: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """A v1.1 ground truth with tags shaped like the challenge's (8 QA per frame) and noisy predictions."""
    rng = random.Random(seed)
    words = ("the ego vehicle car truck pedestrian light green red left right ahead slowly keep going "
             "stop turn lane speed safe brake crossing intersection sedan white black moving parked").split()

    def sentence(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k)).capitalize() + "."

    def tag(i: int) -> tuple[str, tuple[float, float]]:
        cam = rng.choice(["CAM_FRONT", "CAM_BACK", "CAM_FRONT_LEFT", "CAM_BACK_RIGHT"])
        xy = (round(rng.uniform(0, 1600), 1), round(rng.uniform(0, 900), 1))
        return f"<c{i},{cam},{xy[0]},{xy[1]}>", xy

    gt: dict = {}
    preds: list[dict] = []
    n_frames = max(1, n_items // 8)
    for f in range(n_frames):
        scene, frame = f"scene{f // 5:05d}", f"frame{f:06d}"
        tags = [tag(i + 1) for i in range(3)]
        opts = "Please select the correct answer from the following options: A. Going ahead. B. Stopped. C. Turn left. D. Back up."
        items = {
            "perception": [
                {"Q": "What are the important objects in the current scene?",
                 "A": f"{sentence(10)} The IDs are {tags[0][0]}, {tags[1][0]}, and {tags[2][0]}.", "tag": [2]},
                {"Q": f"What is the moving status of object {tags[0][0]}? {opts}", "A": rng.choice("ABCD"), "tag": [0]},
            ],
            "prediction": [
                {"Q": "What object should the ego vehicle notice first?",
                 "A": f"Firstly notice that {tags[2][0]}. {sentence(8)}", "tag": [3]},
                {"Q": f"Is {tags[1][0]} a traffic sign or a road barrier?", "A": rng.choice(["Yes.", "No."]), "tag": [0]},
            ],
            "planning": [
                {"Q": f"What actions could the ego vehicle take based on {tags[0][0]}?", "A": sentence(12), "tag": [1]},
                {"Q": f"What actions taken by the ego vehicle can lead to a collision with {tags[1][0]}?",
                 "A": sentence(8), "tag": [1]},
                {"Q": "In this scenario, what are safe actions to take for the ego vehicle?", "A": sentence(7), "tag": [1]},
            ],
            "behavior": [{"Q": f"Predict the behavior of the ego vehicle. {opts}", "A": rng.choice("ABCD"), "tag": [0]}],
        }
        gt.setdefault(scene, {"key_frames": {}})["key_frames"][frame] = {"QA": items}
        flat = [it for st in ("perception", "prediction", "planning", "behavior") for it in items[st]]
        for i, it in enumerate(flat):
            a = it["A"]
            if i == 0:  # the first answer finds some objects, a few pixels off: it sets the frame's graph
                found = [t for t in tags if rng.random() < 0.7]
                a = sentence(8) + " " + ", ".join(
                    f"<c1,CAM_FRONT,{xy[0] + rng.uniform(-5, 5):.1f},{xy[1] + rng.uniform(-5, 5):.1f}>" for _, xy in found)
            elif len(a) == 1:
                a = rng.choice("ABCD")
            elif a in ("Yes.", "No."):
                a = rng.choice(["Yes.", "No."])
            elif rng.random() < 0.5:
                a = sentence(rng.randint(5, 14))
            preds.append({"id": f"{scene}_{frame}_{i}", "question": it["Q"], "answer": a})
    return gt, preds


def drivelm_script(repo: Path | None, work: Path) -> Path | None:
    """DriveLM's challenge/evaluation.py (unmodified) in a temp folder beside the two stand-ins, or None."""
    if repo is None:
        return None
    text = None
    if (repo / "challenge" / "evaluation.py").is_file():
        text = (repo / "challenge" / "evaluation.py").read_text(encoding="utf-8")
    else:
        r = subprocess.run(["git", f"--git-dir={repo}", "show", "HEAD:challenge/evaluation.py"],
                           capture_output=True, text=True)
        text = r.stdout if r.returncode == 0 else None
    if not text:
        print(f"  no challenge/evaluation.py in {repo}: DriveLM's script is not timed")
        return None
    folder = work / "drivelm_eval"
    folder.mkdir(exist_ok=True)
    (folder / "evaluation.py").write_text(text, encoding="utf-8")
    (folder / "language_evaluation.py").write_text(LANGUAGE_EVALUATION_STANDIN, encoding="utf-8")
    (folder / "gpt_eval.py").write_text(GPT_EVAL_STANDIN, encoding="utf-8")
    return folder / "evaluation.py"


def run_drivelm(script: Path, pred: Path, gt: Path) -> tuple[float, dict[str, float]]:
    """Wall time of one DriveLM evaluation.py process, and the figures it prints."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(script), "--root_path1", str(pred), "--root_path2", str(gt)],
                       cwd=script.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"DriveLM's evaluation.py failed: {r.stderr.strip().splitlines()[-1:]}")
    figs = {}
    for key in ("accuracy score", "chatgpt score", "match score", "final score"):
        m = re.search(rf"{key}:\s+([-+\d.e]+)", r.stdout)
        figs[key.split()[0]] = float(m.group(1)) if m else float("nan")
    m = re.search(r"language score:\s+(\{.*\})", r.stdout)
    if m:
        for k, v in re.findall(r"'(?:val/)?(\w+)': (?:np\.float64\()?([-+\d.e]+)", m.group(1)):
            figs[k] = float(v)
    return wall, figs


def run_ours(pred: Path, gt: Path) -> tuple[float, float, dict]:
    """(in-process seconds, CLI process seconds, result) of drivechain's scorer, judge at 50, PTB."""
    t0 = time.perf_counter()
    r = score_files(pred, gt, ConstantJudge(50), "ptb")
    inproc = time.perf_counter() - t0
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "drivechain.cli", "score", "drivelm", "--pred", str(pred), "--gt", str(gt),
                        "--judge-constant", "50", "--tokenizer", "ptb"], capture_output=True, text=True, env=env)
    cli = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"drivechain score drivelm failed: {p.stderr.strip()}")
    return inproc, cli, r


def part_loaders(repo: Path | None, work: Path) -> None:
    """A highway-env dataset exported to DriveLM's layout, read by DriveLM's own scripts (and scored alike)."""
    from drivechain.dataset import load_dataset
    from drivechain.generate import GenerateConfig, generate
    from drivechain.interop.drivelm.exporter import export_drivelm

    print("loaders: a highway-env dataset exported, then read by DriveLM's evaluation.py and convert2llama.py")
    script = drivelm_script(repo, work)
    if script is None:
        print("  no --drivelm-repo: skipped")
        return
    cfg = GenerateConfig(scenarios=["highway", "intersection"], episodes=1, steps_per_episode=2, seed=3,
                         image_size=(320, 160))
    generate(cfg, work / "hw", workers=1)
    export_drivelm(load_dataset(work / "hw"), work / "hw" / "drivelm.json", work / "hw" / "flat.json")
    wall, theirs = run_drivelm(script, work / "hw" / "flat.json", work / "hw" / "drivelm.json")
    ours = score_files(work / "hw" / "flat.json", work / "hw" / "drivelm.json", ConstantJudge(50), "ptb")
    diff = compare(ours, theirs)
    check(f"DriveLM's evaluation.py reads the export ({ours['items']['total']} items, accuracy {theirs['accuracy']}, "
          f"final {theirs['final']!r}) and agrees with drivechain", diff <= TOL, f"max |diff| {diff:.1e}")
    text = subprocess.run(["git", f"--git-dir={repo}", "show", "HEAD:challenge/convert2llama.py"],
                          capture_output=True, text=True).stdout if not (repo / "challenge").is_dir() else \
        (repo / "challenge" / "convert2llama.py").read_text(encoding="utf-8")
    folder = work / "hw" / "llama"
    folder.mkdir()
    (folder / "convert2llama.py").write_text(text, encoding="utf-8")
    shutil.copy(work / "hw" / "drivelm.json", folder / "test_eval.json")
    r = subprocess.run([sys.executable, "convert2llama.py"], cwd=folder, capture_output=True, text=True)
    out = json.loads((folder / "test_llama.json").read_text()) if r.returncode == 0 else []
    check(f"DriveLM's convert2llama.py reads the export ({len(out)} conversations)",
          r.returncode == 0 and len(out) == ours["items"]["total"], r.stderr.strip()[-200:])


def compare(ours: dict, theirs: dict) -> float:
    """Largest |difference| between the figures both print."""
    pairs = [(ours["accuracy"], theirs.get("accuracy")), (ours["chatgpt"], theirs.get("chatgpt")),
             (ours["match"], theirs.get("match")), (ours["final_score"], theirs.get("final"))]
    pairs += [(ours["language"][k], theirs.get(k)) for k in ours["language"]]
    return max(abs(a - b) if b is not None else float("inf") for a, b in pairs)


def part_speed(shared: Path | None, repo: Path | None, n_items: int, work: Path) -> None:
    """drivechain vs DriveLM's script on the sample and on synthetic items, side by side."""
    print(f"speed: drivechain score drivelm beside DriveLM's evaluation.py (judge 50, PTB; load {os.getloadavg()[0]:.1f})")
    script = drivelm_script(repo, work)
    cases = []
    if shared is not None and (shared / "drivelm-challenge" / "output.json").is_file():
        cases.append(("challenge sample (66 items)", shared / "drivelm-challenge" / "output.json",
                      shared / "drivelm-challenge" / "test_eval.json"))
    gt, preds = synthetic(n_items)
    (work / "syn_gt.json").write_text(json.dumps(gt))
    (work / "syn_pred.json").write_text(json.dumps(preds))
    cases.append((f"synthetic ({len(preds)} items)", work / "syn_pred.json", work / "syn_gt.json"))
    print("  | input | drivechain in-process | drivechain CLI process | DriveLM evaluation.py process | ratio (DriveLM / CLI) | max |diff| of figures |")
    print("  |---|---|---|---|---|---|")
    for name, pred, gtp in cases:
        inproc, cli, ours = run_ours(pred, gtp)
        if script is not None:
            theirs_s, theirs = run_drivelm(script, pred, gtp)
            diff = compare(ours, theirs)
            print(f"  | {name} | {inproc:.2f} s | {cli:.2f} s | {theirs_s:.2f} s | {theirs_s / cli:.2f} | {diff:.1e} |")
            check(f"{name}: same figures as DriveLM's script", diff <= TOL, f"{diff:.1e}")
        else:
            print(f"  | {name} | {inproc:.2f} s | {cli:.2f} s | - | - | - |")
        print(f"    ({ours['items']['scored']} of {ours['items']['total']} scored; final {ours['final_score']!r})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/data"),
                    help="folder holding drivelm-nuscenes-sample/ and drivelm-challenge/ (default ../shared/data, from the repo root)")
    ap.add_argument("--drivelm-repo", type=Path, default=os.environ.get("DRIVELM_REPO"),
                    help="a DriveLM checkout (or bare git dir) whose challenge/evaluation.py is timed beside drivechain")
    ap.add_argument("--items", type=int, default=10_000, help="synthetic items for the speed part")
    ap.add_argument("--only", default="figures,roundtrip,cameras,loaders,speed", help="comma list of parts")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    shared = args.shared if args.shared.is_dir() else None
    if shared is None:
        print(f"no shared data at {args.shared}: figures, roundtrip and cameras are skipped")
    with tempfile.TemporaryDirectory(prefix="drivelm-bench-") as tmp:
        work = Path(tmp)
        if shared is not None and "figures" in parts:
            part_figures(shared)
        dataset = None
        if shared is not None and ({"roundtrip", "cameras"} & parts):
            dataset = part_roundtrip(shared, work)
        if dataset is not None and "cameras" in parts:
            part_cameras(dataset, shared)
        if "loaders" in parts:
            part_loaders(args.drivelm_repo, work)
        if "speed" in parts:
            part_speed(shared, args.drivelm_repo, args.items, work)
    print("FAILED: " + ", ".join(FAILED) if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
