"""``drivechain eval``: score a model on a dataset, link by link, into a resumable run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from drivechain.commands._common import ConfigOption, check_out_folder
from drivechain.commands._common import check_server as _check_server

# Settings that decide a run's results: a folder holding a run with other values is refused.
IDENTITY = ("model", "frames_sha256", "protocols", "image", "limit", "max_tokens", "seed", "temperature",
            "history", "max_image_side_px", "reasoning", "cameras", "ask", "links", "gguf", "max_steps", "variants")
OWNED = ("scores.jsonl", "summary.json", "results.sqlite", "config.json")

PROTOCOL_CHOICES = ("transitions", "free", "cot", "all", "probes", "g1")
IMAGE_CHOICES = ("both", "with", "without")


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to the CLI."""

    @app.command("eval")
    def eval_cmd(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="dataset folder (from 'drivechain generate')"),
        model: str = typer.Option(..., "--model", help="openai:NAME, hf:PATH, oracle, heuristic, constant, random"),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"),
        protocol: str = typer.Option("all", "--protocol", help="transitions | free | cot | all | probes (on a probe set) | g1 (one call per reasoning step)"),
        max_steps: int = typer.Option(6, "--max-steps", min=1, help="g1: reasoning calls before the answer call"),
        image: str = typer.Option("both", "--image", help="links from Per/Pred: both | with | without the image"),
        concurrency: int = typer.Option(16, "--concurrency", min=1, help="requests in flight"),
        limit: int | None = typer.Option(None, "--limit", min=1, help="first K frames only"),
        timeout: float = typer.Option(120.0, "--timeout", min=0.01, max=3600.0, help="per-request timeout [s]"),
        retries: int = typer.Option(4, "--retries", min=0, max=20, help="retries of a transient failure"),
        max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="completion token limit"),
        seed: int = typer.Option(0, "--seed", help="sampling seed sent with every request"),
        temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0, help="sampling temperature"),
        history: bool = typer.Option(False, "--history/--no-history",
                                     help="also send the dataset's past frames (video models)"),
        cameras: str = typer.Option("all", "--cameras",
                                    help="cameras sent per frame: all | front | names, e.g. CAM_FRONT,CAM_BACK"),
        max_image_side: int = typer.Option(1024, "--max-image-side", min=16,
                                           help="images are downscaled to this longest side [px]"),
        reasoning: bool = typer.Option(False, "--reasoning/--no-reasoning",
                                       help="reasoning model: send max_completion_tokens"),
        prices: Path | None = typer.Option(None, "--prices", help="price table TOML overriding the shipped one"),
        gguf: str | None = typer.Option(None, "--gguf", help="hf: a GGUF file (name inside the hf:FOLDER, or a path) of a text-only LM"),
        ask: str = typer.Option("all", "--ask", help="all | stage | one: questions per request (one = one request per question, bare answers accepted)"),
        variants: str = typer.Option("template", "--variants", help="template | all: also ask every kept rewording of a polished dataset (teacher-forced links)"),
        links: str | None = typer.Option(None, "--links", help="teacher-forced links to ask, e.g. Per->Pred,Pred->Plan (default: all)"),
        out: Path = typer.Option(..., "--out", help="run folder (re-run the same command to resume)"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="live progress on stderr"),
        max_failure_rate: float = typer.Option(0.05, "--max-failure-rate", min=0.0, max=1.0,
                                               help="share of failed requests above which the run is incomplete (exit 1)"),
        force: bool = typer.Option(False, "--force", help="replace a run with other settings in --out"),
        verify: bool = typer.Option(True, "--verify/--no-verify",
                                    help="refuse a dataset whose frames.jsonl no longer matches its manifest"),
    ) -> None:
        """Score a model step by step: teacher-forced transitions, free-running chain, chain of thought."""
        run_eval(
            data=data, model_spec=model, base_url=base_url, protocol=protocol, image=image,
            concurrency=concurrency, limit=limit, timeout_s=timeout, retries=retries, max_tokens=max_tokens,
            seed=seed, prices_path=prices, out=out, progress=progress, temperature=temperature,
            history=history, max_image_side_px=max_image_side, reasoning=reasoning, cameras=cameras,
            max_failure_rate=max_failure_rate, force=force, verify=verify,
            ask=ask, links=links, gguf=gguf, max_steps=max_steps, variants=variants,
        )


def run_eval(
    *, data: Path, model_spec: str, base_url: str | None, protocol: str, image: str, concurrency: int,
    limit: int | None, timeout_s: float, retries: int, max_tokens: int, seed: int, prices_path: Path | None,
    out: Path, progress: bool, temperature: float = 0.0, history: bool = False,
    max_image_side_px: int = 1024, reasoning: bool = False, cameras: str = "all",
    max_failure_rate: float = 0.05, force: bool = False, verify: bool = True,
    ask: str = "all", links: str | None = None, gguf: str | None = None, max_steps: int = 6,
    variants: str = "template",
) -> dict[str, Any]:
    """Validate everything, then run; bad input raises DrivechainError before the run folder is touched."""
    import asyncio
    import shutil

    import time

    from drivechain.commands import _common
    from drivechain.commands._common import (
        OWNED_NOTE, RESUME_HINT, RunLock, check_writable, claim_run_folder, fail_if_incomplete, finite,
    )

    started = _common.COMMAND_STARTED or time.perf_counter()  # wall_s covers the whole command
    from drivechain.commands.eval_stream import DatasetStream
    from drivechain.dataset import load_dataset
    from drivechain.errors import ConfigError, DatasetError
    from drivechain.evaluation.protocols import PROTOCOLS, AskOptions
    from drivechain.evaluation.runner import RunPolicy, evaluate, write_json_atomic
    from drivechain.models.pricing import load_prices
    from drivechain.models.registry import load_model

    if protocol not in PROTOCOL_CHOICES:
        raise ConfigError(f"--protocol {protocol!r} is not one of {', '.join(PROTOCOL_CHOICES)}")
    if image not in IMAGE_CHOICES:
        raise ConfigError(f"--image {image!r} is not one of {', '.join(IMAGE_CHOICES)}")
    finite(temperature, "--temperature", 0.0, 2.0)
    finite(timeout_s, "--timeout", 0.01, 3600.0)
    finite(max_failure_rate, "--max-failure-rate", 0.0, 1.0)
    check_out_folder(out, "eval", OWNED)
    check_writable(out, "eval")
    from drivechain.evaluation.ask import ASK_MODES, parse_links

    if ask not in ASK_MODES:
        raise ConfigError(f"--ask {ask!r} is not one of {', '.join(ASK_MODES)}")
    link_set = parse_links(links)
    protocols = PROTOCOLS if protocol == "all" else (protocol,)
    if variants not in ("template", "all"):
        raise ConfigError(f"--variants {variants!r} is not one of template, all")
    if variants == "all" and "transitions" not in protocols:
        raise ConfigError("--variants all asks rewordings on the teacher-forced links: use --protocol transitions or all")
    dataset = load_dataset(data)
    stream = DatasetStream(dataset, verify=verify, limit=limit, cameras=cameras)
    if variants == "all" and not _has_variants(dataset):
        raise ConfigError(f"--variants all: dataset {data} has no reworded questions; polish it first"
                          " ('drivechain polish --data ... --out ...')")
    price_table = load_prices(prices_path)
    model = load_model(model_spec, base_url=base_url, timeout_s=timeout_s,
                       max_image_side_px=max_image_side_px, reasoning=reasoning, gguf=gguf)
    url = getattr(model, "base_url", None)
    if isinstance(url, str) and url.startswith("http"):
        _check_server(url, timeout_s=min(timeout_s, 5.0))
    opts = AskOptions(image_root=str(dataset.root.resolve()), image=image, history=history,
                      temperature=temperature, max_tokens=max_tokens, seed=seed, cameras=cameras,
                      ask=ask, links=link_set, max_steps=max_steps)
    policy = RunPolicy(concurrency=concurrency, timeout_s=timeout_s, retries=retries)
    # Options only: the API key lives in the environment and never reaches the run folder.
    config = {
        "data": str(data), "dataset_name": dataset.manifest.name, "frames_sha256": stream.dataset_hash,
        "model": model_spec, "gguf": gguf, "model_name": model.name, "base_url": url if isinstance(url, str) else None,
        "protocol": protocol, "protocols": list(protocols), "image": image, "concurrency": concurrency,
        "limit": limit, "timeout_s": timeout_s, "retries": retries, "max_tokens": max_tokens, "seed": seed,
        "temperature": temperature, "history": history, "cameras": cameras, "ask": ask, "max_steps": max_steps,
        "links": list(link_set) if link_set is not None else None, "max_image_side_px": max_image_side_px,
        "reasoning": reasoning, "prices": str(prices_path) if prices_path else None, "frames": stream.frames,
        "max_failure_rate": max_failure_rate, "variants": variants,
    }
    claim_run_folder(out, "eval", config, IDENTITY, OWNED, force)
    if (out / "results.sqlite").exists():  # a store of another schema is refused before anything is written
        from drivechain.evaluation.store import ResultStore

        ResultStore(out / "results.sqlite").close()

    async def main() -> dict[str, Any]:
        try:
            return await evaluate(stream, model, out, protocols=protocols, opts=opts, policy=policy,
                                  prices=price_table, progress=progress, max_failure_rate=max_failure_rate,
                                  dataset_hash=stream.dataset_hash, expected_frames=stream.frames,
                                  verify=stream.verify(), after_stream=stream.check_count, started=started,
                                  variants=variants == "all")
        finally:
            await model.aclose()

    created = not out.exists()
    try:
        with RunLock(out, "eval"):
            write_json_atomic(out / "config.json", config)
            RESUME_HINT.append(f"{OWNED_NOTE.format(out=out)}; rerun the same command to resume")
            summary = asyncio.run(main())
    except (DatasetError, ConfigError):
        if created:  # found mid-stream (a changed dataset, an unknown camera): nothing of this run is worth keeping
            shutil.rmtree(out, ignore_errors=True)
        raise
    _print_table(summary, out)
    fail_if_incomplete(summary, out)
    return summary


def _has_variants(dataset: Any) -> bool:
    """Whether any question of the dataset has a rewording: the manifest's polish counts, else a scan."""
    kept = ((dataset.manifest.counts.get("polish") or {}).get("kept") or {}).get("question")
    if isinstance(kept, int):
        return kept > 0
    from drivechain.dataset import iter_records

    return any(qa.question_variants for rec in iter_records(dataset.root) for qa in rec.graph.nodes)


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _print_table(s: dict[str, Any], out: Path) -> None:
    """The end-of-run table: stages, links, free-running, propagation, cost and latency."""
    from rich.markup import escape
    from rich.table import Table

    from drivechain.models.base import printable

    flag = "" if s.get("complete", True) else "  INCOMPLETE (not comparable)"
    t = Table(title=f"{escape(printable(s['model']))}  overall {_fmt(s['overall'])}  ({s['frames']} frames){flag}")
    t.add_column("stage")
    t.add_column("teacher-forced")
    t.add_column("95% CI")
    t.add_column("free-running")
    t.add_column("propagation")
    t.add_column("CoT")
    for stage, v in s["stages"].items():
        ci = (s.get("ci95") or {}).get("stages", {}).get(stage)
        t.add_row(stage, _fmt(v), "-" if not ci else f"{ci[0]:.3f}-{ci[1]:.3f}",
                  _fmt((s.get("free_running") or {}).get(stage)), _fmt((s.get("propagation") or {}).get(stage)),
                  _fmt(((s.get("cot") or {}).get("stages") or {}).get(stage)))
    links = Table(title="transitions (with image / without)")
    links.add_column("link")
    links.add_column("with image")
    links.add_column("without")
    for link, v in s["transitions"].items():
        links.add_row(link, _fmt(v), _fmt(s["transitions_no_image"].get(link)))
    from drivechain.commands._common import wide_console

    console = wide_console()  # a pipe or a log file: no 80-column cut of headers
    console.print(t)
    console.print(links)
    lang = s.get("language") or {}
    if lang:
        console.print(f"language (text answers, {lang.get('n')}; tokenizer {lang.get('tokenizer')}): "
                      f"BLEU-4 {_fmt(lang.get('bleu4'))}  ROUGE-L {_fmt(lang.get('rouge_l'))}  "
                      f"CIDEr {_fmt(lang.get('cider'))}  DriveLM language {_fmt(lang.get('drivelm'))}",
                      markup=False, highlight=False)
    probes = s.get("probes")
    if probes:  # --protocol probes (docs/probes.md)
        console.print(f"probes: flip recall {_fmt(probes['flip_recall'])} over {probes['flips']} pairs, stability "
                      f"{_fmt(probes['stability'])} over {probes['stable']} pairs ({probes['probes']} probes)")
    asked = s.get("ask")
    if asked:
        modes = ", ".join(f"{k} {v['answers']}" for k, v in asked["parse_modes"].items())
        console.print(f"parsed {asked['parsed']}/{asked['answers']} answers ({_fmt(asked['parse_rate'])}): {modes}")
    var = s.get("variants")
    if var:  # --variants all (evaluation/variants.py)
        per = "  ".join(f"v{k} {_fmt(v)}" for k, v in var["per_variant"].items())
        ci = var.get("drop_ci95") or [None, None]
        console.print(f"wordings: {var['questions']} reworded questions, score {per}; drop {_fmt(var['drop'])} "
                      f"(95% CI {_fmt(ci[0])}..{_fmt(ci[1])}), consistency {_fmt(var['consistency'])}",
                      markup=False, highlight=False)
    console.print(
        f"requests {s['requests']}  failures {s['failures']}  unparsed {s['unparsed']}  "
        f"tokens {s['tokens']['prompt']}+{s['tokens']['completion']}  cost $ {_fmt(s['cost_usd'])}  "
        f"latency p50 {_fmt(s['latency_s']['p50'])} s p95 {_fmt(s['latency_s']['p95'])} s  "
        f"wall {s['wall_s']} s ({_fmt(s.get('requests_per_s'))} req/s over the whole run)  -> {out}",
        markup=False, highlight=False,
    )
