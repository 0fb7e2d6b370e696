"""DriveLM's language metrics: what ``language_evaluation.CocoEvaluator(["BLEU", "ROUGE_L", "CIDEr"])`` computes.

That package (bckim92/language-evaluation, not on PyPI) feeds pycocoevalcap's Bleu(4), Rouge and
Cider with captions tokenized by the Java PTB tokenizer (``-preserveLines -lowerCase``,
punctuation tokens dropped), all items pooled into one corpus, references with ``_UNK`` rewritten
to ``_UNKNOWN``. pycocoevalcap (PyPI) ships the same scorers and tokenizer, so with Java present
the figures are DriveLM's own. Without Java the regex tokenizer of ``grading.text_metrics`` is
used and the result says so: BLEU then differs from the official figures (by ~0.1 on the
challenge sample), which callers must print loudly.
"""

from __future__ import annotations

import shutil
from typing import Literal

from drivechain.errors import ConfigError

KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr")
UNK, UNK_REPLACEMENT = "_UNK", "_UNKNOWN"


def pick_tokenizer(tokenizer: Literal["auto", "ptb", "regex"] = "auto") -> str:
    """``ptb`` when asked or when Java is on PATH (auto); ``regex`` otherwise."""
    if tokenizer not in ("auto", "ptb", "regex"):
        raise ConfigError(f"unknown tokenizer {tokenizer!r}; use auto, ptb or regex")
    if tokenizer == "ptb" and not shutil.which("java"):
        raise ConfigError("the PTB tokenizer needs java on PATH; install a JRE (e.g. openjdk-17-jre) or use --tokenizer regex")
    if tokenizer == "auto":
        return "ptb" if shutil.which("java") else "regex"
    return tokenizer


def corpus_scores(predictions: list[str], answers: list[str], tokenizer: str = "auto") -> dict[str, float] | None:
    """BLEU-1..4, ROUGE_L, CIDEr over all (prediction, answer) pairs pooled; None when there are none."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if not predictions:
        return None
    used = pick_tokenizer(tokenizer)  # type: ignore[arg-type]
    gts_raw = {i: [str(a).replace(UNK, UNK_REPLACEMENT)] for i, a in enumerate(answers)}
    res_raw = {i: [str(p)] for i, p in enumerate(predictions)}
    if used == "ptb":
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        # One Java process for both sides (DriveLM starts two): lines are tokenized one by one
        # (-preserveLines), so the tokens are the same and the JVM start-up is paid once.
        both = {("gt", k): [{"caption": c} for c in v] for k, v in gts_raw.items()}
        both.update({("res", k): [{"caption": c} for c in v] for k, v in res_raw.items()})
        tokens = PTBTokenizer().tokenize(both)
        gts = {k: tokens[("gt", k)] for k in gts_raw}
        res = {k: tokens[("res", k)] for k in res_raw}
    else:
        from drivechain.grading.text_metrics import regex_tokenize

        gts = {k: [regex_tokenize(c) for c in v] for k, v in gts_raw.items()}
        res = {k: [regex_tokenize(c) for c in v] for k, v in res_raw.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {k: float(v) for k, v in zip(KEYS, [*bleu, rouge, cider])}
