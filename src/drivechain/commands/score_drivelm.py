"""``drivechain score drivelm``: DriveLM's challenge score of a prediction file (evaluation.py's figures)."""

from __future__ import annotations

from pathlib import Path

import typer

from drivechain.commands._common import ConfigOption, check_out_path, command_group


def register(app: typer.Typer) -> None:
    """Add ``score drivelm`` to the CLI."""

    @command_group(app, "score").command("drivelm")
    def score_drivelm_cmd(
        config: Path | None = ConfigOption,
        pred: Path | None = typer.Option(None, "--pred", help="predictions: [{id, question, answer}] (or a submission.json)"),
        run: Path | None = typer.Option(None, "--run", help="or: an 'eval' run folder on an imported DriveLM dataset"),
        save_pred: Path | None = typer.Option(None, "--save-pred", help="with --run: also write its answers as a flat list"),
        gt: Path = typer.Option(..., "--gt", help="ground truth in v1.1 layout with a 'tag' per QA (e.g. test_eval.json)"),
        judge: str | None = typer.Option(None, "--judge", help="GPT-score judge: openai:NAME (any OpenAI-compatible server)"),
        base_url: str | None = typer.Option(None, "--base-url", help="the judge's server, e.g. http://127.0.0.1:8000/v1"),
        judge_constant: float | None = typer.Option(None, "--judge-constant", min=0.0, max=100.0,
                                                    help="hold every GPT score at this value (no judge calls)"),
        concurrency: int = typer.Option(16, "--concurrency", min=1, help="judge requests in flight"),
        timeout: float = typer.Option(120.0, "--timeout", min=0.01, help="per judge request timeout [s]"),
        tokenizer: str = typer.Option("auto", "--tokenizer", help="auto | ptb (Java, official) | regex"),
        out: Path | None = typer.Option(None, "--out", help="write the full result (and what failed to parse) as JSON"),
    ) -> None:
        """accuracy (tag 0), GPT (1), language (2), match (3), graph filter, final = 0.4/0.2/0.2/0.2."""
        from drivechain.errors import ConfigError
        from drivechain.interop.drivelm.judge import ConstantJudge, ModelJudge
        from drivechain.interop.drivelm.language import pick_tokenizer

        if (pred is None) == (run is None):
            raise ConfigError("give exactly one of --pred FILE or --run RUN_FOLDER")
        if run is not None:
            pred = _run_to_pred(run, save_pred)
        if (judge is None) == (judge_constant is None):
            raise ConfigError("give exactly one of --judge openai:NAME (with --base-url) or --judge-constant N")
        if out is not None:
            check_out_path(out.parent, "score drivelm")
        pick_tokenizer(tokenizer)  # type: ignore[arg-type]
        if judge_constant is not None:
            scorer_judge = ConstantJudge(judge_constant)
            result = _score(pred, gt, scorer_judge, tokenizer)
        else:
            from drivechain.commands._common import check_model_server
            from drivechain.models.registry import load_model

            if not judge.startswith("openai:"):
                raise ConfigError(f"--judge {judge!r}: use openai:NAME with --base-url")
            model = load_model(judge, base_url=base_url, timeout_s=timeout)
            check_model_server(judge, base_url)
            result = _score(pred, gt, ModelJudge(model, concurrency=concurrency), tokenizer, model)
        _print(result)
        if out is not None:
            from drivechain.interop.drivelm.exporter import write_json

            write_json(out, result)


def _run_to_pred(run: Path, save: Path | None) -> Path:
    """The run's answers as a prediction file (``save`` or a temp file removed at exit)."""
    import atexit
    import tempfile

    from drivechain.interop.drivelm.eval_block import run_predictions
    from drivechain.interop.drivelm.exporter import write_json

    preds = run_predictions(run)
    if save is None:
        fd, name = tempfile.mkstemp(prefix="drivelm-pred-", suffix=".json")
        import os

        os.close(fd)
        save = Path(name)
        atexit.register(save.unlink, missing_ok=True)
    write_json(save, preds)
    return save


def _score(pred: Path, gt: Path, judge: object, tokenizer: str, model: object = None) -> dict:
    import asyncio

    from drivechain.interop.drivelm.score import score_files

    try:
        return score_files(pred, gt, judge, tokenizer)
    finally:
        if model is not None:
            asyncio.run(model.aclose())  # type: ignore[attr-defined]


def _fmt(v: object) -> str:
    return "-" if v is None else repr(v)


def _print(r: dict) -> None:
    """DriveLM's printout (same names and order), then what drivechain adds."""
    echo = typer.echo
    n = r["items"]
    if not r["language_official"]:
        echo("WARNING: Java is not on PATH: language scores use the regex tokenizer and DIFFER from DriveLM's "
             "official (PTB) figures; install a JRE for the official ones.", err=True)
    echo(f"items scored after the frame graph filter: {n['scored']} of {n['total']} "
         f"(accuracy {n['accuracy']}, gpt {n['gpt']}, language {n['language']}, match {n['match']})")
    if n.get("tags_derived"):
        echo(f"{n['tags_derived']} ground-truth items had no 'tag': routed by their answer type "
             "(choice/yes-no accuracy, tags match, text language)")
    echo(f"accuracy score:  {_fmt(r['accuracy'])}")
    echo(f"chatgpt score:  {_fmt(r['chatgpt'])}   (judge {r['judge']})")
    echo(f"match score:  {_fmt(r['match'])}   (coordinate F1 {_fmt(r['match_f1'])}, GPT {_fmt(r['match_gpt'])})")
    lang = r["language"] or {}
    echo("language score:  " + (", ".join(f"{k} {v!r}" for k, v in lang.items()) or "-")
         + f"   (tokenizer {r['tokenizer']})")
    echo(f"components [chatgpt, language, match, accuracy]: {_fmt(r['components'])}")
    echo(f"final score:  {_fmt(r['final_score'])}")
    if r["missing_components"]:
        echo(f"no final score: no scored items for {', '.join(r['missing_components'])}", err=True)
    fails = r["judge_failures"]["gpt"] + r["judge_failures"]["match"]
    if fails:
        echo(f"{len(fails)} judge replies failed or did not parse (left out of the GPT means; see --out)", err=True)
    if r["problems"]:
        echo(f"{len(r['problems'])} input problems DriveLM's script would crash on were handled (see --out)", err=True)
