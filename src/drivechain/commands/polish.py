"""``drivechain polish``: reword questions and explanations with a language model, keeping only checked variants."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path


def register(app: typer.Typer) -> None:
    """Add the ``polish`` command to the CLI."""

    @app.command("polish")
    def polish_command(
        config: Path | None = ConfigOption,
        data: Path = typer.Option(..., "--data", help="dataset folder to polish"),
        model: str = typer.Option(..., "--model", help="openai:NAME, hf:PATH, or a built-in (which rewords nothing)"),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"),
        gguf: str | None = typer.Option(None, "--gguf", help="hf: a GGUF file of a text-only LM"),
        variants: int = typer.Option(3, "--variants", min=1, max=20, help="rewordings asked per text (K)"),
        explanations: bool = typer.Option(True, "--explanations/--no-explanations", help="also reword explanations"),
        temperature: float = typer.Option(0.7, "--temperature", min=0.0, max=2.0, help="sampling temperature"),
        seed: int = typer.Option(0, "--seed", help="sampling seed sent with every request"),
        max_tokens: int = typer.Option(400, "--max-tokens", min=16, help="completion token limit per request"),
        concurrency: int = typer.Option(4, "--concurrency", min=1, help="requests in flight"),
        timeout: float = typer.Option(120.0, "--timeout", min=0.01, max=3600.0, help="per-request timeout [s]"),
        retries: int = typer.Option(3, "--retries", min=0, max=20, help="retries of a transient failure"),
        max_failure_rate: float = typer.Option(0.05, "--max-failure-rate", min=0.0, max=1.0,
                                               help="share of failed requests above which nothing is written (exit 2)"),
        out: Path = typer.Option(..., "--out", help="polished dataset folder (created)"),
        force: bool = typer.Option(False, "--force", help="replace a non-empty output folder"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="live progress on stderr"),
    ) -> None:
        """Ask a model for K rewordings of every question (and explanation); keep those the checker proves equal."""
        stats = run_polish(data=data, model_spec=model, base_url=base_url, gguf=gguf, k=variants,
                           explanations=explanations, temperature=temperature, seed=seed, max_tokens=max_tokens,
                           concurrency=concurrency, timeout_s=timeout, retries=retries,
                           max_failure_rate=max_failure_rate, out=out, force=force, progress=progress)
        kept, rejected = stats["kept"], stats["rejected"]
        typer.echo(f"polished {sum(stats['texts'].values())} distinct texts: kept {kept.get('question', 0)} question and "
                   f"{kept.get('explanation', 0)} explanation variants; rejected "
                   + ", ".join(f"{kind} {sum(r.values())} ({', '.join(f'{k} {v}' for k, v in r.items()) or '-'})"
                               for kind, r in rejected.items())
                   + f" -> {out}")


def run_polish(*, data: Path, model_spec: str, base_url: str | None, gguf: str | None, k: int, explanations: bool,
               temperature: float, seed: int, max_tokens: int, concurrency: int, timeout_s: float, retries: int,
               max_failure_rate: float, out: Path, force: bool, progress: bool = False) -> dict:
    """Validate, ask the model, check, write; bad input or a failing model raises a one-line DrivechainError."""
    import asyncio
    import tempfile

    from drivechain.commands._common import check_model_server, finite
    from drivechain.dataset import load_dataset
    from drivechain.errors import DrivechainError
    from drivechain.evaluation.runner import Asker, RunPolicy
    from drivechain.evaluation.store import ResultStore
    from drivechain.generate import prepare_out
    from drivechain.language.polish import PolishStats, distinct_texts, polish_texts, write_polished
    from drivechain.models.base import printable
    from drivechain.models.registry import load_model

    finite(temperature, "--temperature", 0.0, 2.0)
    finite(timeout_s, "--timeout", 0.01, 3600.0)
    check_out_path(out, "polish")
    if out.resolve() == data.resolve():
        raise DrivechainError(f"--out {out} is the input dataset; polish writes a new dataset folder")
    prepare_out(out, force)
    dataset = load_dataset(data, verify=True)
    texts = distinct_texts(dataset, explanations)
    check_model_server(model_spec, base_url)
    model = load_model(model_spec, base_url=base_url, timeout_s=timeout_s, gguf=gguf)
    stats = PolishStats()

    async def main(store: ResultStore) -> dict:
        asker = Asker(model, store, RunPolicy(concurrency=concurrency, timeout_s=timeout_s, retries=retries))
        bar = _bar(len(texts), progress)
        try:
            return await polish_texts(texts, asker.ask, k, seed=seed, temperature=temperature, max_tokens=max_tokens,
                                      stats=stats, on_done=bar.advance)
        finally:
            bar.stop()
            await model.aclose()

    with tempfile.TemporaryDirectory(prefix="drivechain-polish-") as tmp:
        store = ResultStore(Path(tmp) / "results.sqlite")
        try:
            variants = asyncio.run(main(store))
        finally:
            store.close()
    if texts and stats.failed_requests / len(texts) > max_failure_rate:
        raise DrivechainError(f"{stats.failed_requests} of {len(texts)} polish requests failed "
                              f"(first: {printable(stats.first_error or 'failed', 200)}); nothing written to {out}")
    config = {"model": model_spec, "model_name": model.name, "variants": k, "explanations": explanations,
              "temperature": temperature, "seed": seed, "max_tokens": max_tokens, "data_name": dataset.manifest.name,
              "data_frames_sha256": dataset.manifest.frames_sha256}
    write_polished(dataset, out, variants, stats, config)
    return stats.as_dict()


class _bar:
    """A rich progress bar on stderr over the distinct texts (or nothing)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("[bold]polish"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True))
            self._task = self._p.add_task("polish", total=total)
            self._p.start()

    def advance(self) -> None:
        if self._p is not None:
            self._p.advance(self._task)

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
