"""Language metrics for text answers: BLEU-1..4, ROUGE-L, CIDEr with pycocoevalcap's scorers.

Tokenizer: ``"regex"`` (default when Java is absent) lowercases and keeps runs of letters/digits
(decimals like ``12.5`` and apostrophes inside words stay whole), dropping punctuation as the PTB
tokenizer of the COCO caption toolkit does; ``"ptb"`` uses that Java tokenizer; ``"auto"`` picks
``ptb`` when a ``java`` binary is on PATH, else ``regex``. The tokenizer used is in the result.
"""

from __future__ import annotations

import re
import shutil
from typing import Hashable, Literal

from drivechain.errors import ConfigError

_TOKEN = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")
EMPTY = "__empty__"  # stands for an empty hypothesis: matches no reference (ROUGE divides by length)


def regex_tokenize(text: str) -> str:
    """Lowercased word/number tokens joined by spaces."""
    return " ".join(_TOKEN.findall(str(text).lower()))


def _ptb(texts: dict[Hashable, list[str]]) -> dict[Hashable, list[str]]:
    import os
    import sys
    import tempfile

    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # The Java tokenizer writes "PTBTokenizer tokenized N tokens at ..." to the inherited stderr on
    # every call: catch it at the file-descriptor level, and show it only if tokenizing fails.
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            return PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})
        except Exception:
            caught.seek(0)
            os.write(saved, caught.read()[-2000:])
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def language_scores(
    hyps: dict[Hashable, str],
    refs: dict[Hashable, list[str]],
    tokenizer: Literal["auto", "regex", "ptb"] = "auto",
) -> dict[str, float | int | str]:
    """Corpus BLEU-1..4, ROUGE-L, CIDEr over the keys with references (a missing hypothesis is empty)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if tokenizer not in ("auto", "regex", "ptb"):
        raise ConfigError(f"unknown tokenizer {tokenizer!r}; use auto, regex or ptb")
    used = ("ptb" if shutil.which("java") else "regex") if tokenizer == "auto" else tokenizer
    keys = [k for k in refs if any(str(r).strip() for r in refs[k])]
    out: dict[str, float | int | str] = {"n": len(keys), "tokenizer": used}
    names = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider")
    if not keys:
        return out | {n: 0.0 for n in names}
    res_raw = {i: [str(hyps.get(k) or "")] for i, k in enumerate(keys)}
    gts_raw = {i: [str(r) for r in refs[k] if str(r).strip()] for i, k in enumerate(keys)}
    if used == "ptb":
        if not shutil.which("java"):
            raise ConfigError("the PTB tokenizer needs java on PATH; install a JRE or use tokenizer='regex'")
        # One JVM for hypotheses and references together (it tokenizes line by line, so alike).
        both = _ptb({**{("res", k): v for k, v in res_raw.items()}, **{("gts", k): v for k, v in gts_raw.items()}})
        res = {k: both.get(("res", k), [""]) for k in res_raw}
        gts = {k: both.get(("gts", k), [""]) for k in gts_raw}
    else:
        res = {k: [regex_tokenize(t) for t in v] for k, v in res_raw.items()}
        gts = {k: [regex_tokenize(t) for t in v] for k, v in gts_raw.items()}
    res = {k: [v[0] if v and v[0].strip() else EMPTY] for k, v in res.items()}
    gts = {k: [t if t.strip() else EMPTY for t in v] for k, v in gts.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge = _rouge_l(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    scores = [*bleu, rouge, cider]
    return out | {n: float(v) for n, v in zip(names, scores)}


def _rouge_l(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
    """pycocoevalcap's corpus ROUGE-L (the mean of per-answer scores), each distinct pair scored once.

    Templated answers repeat a lot and the LCS is pure Python: the same per-answer scores, averaged
    the way ``Rouge.compute_score`` averages them, at the cost of the distinct pairs only.
    """
    import numpy as np
    from pycocoevalcap.rouge.rouge import Rouge

    scorer = Rouge()
    cache: dict[tuple[str, tuple[str, ...]], float] = {}
    scores = []
    for k in gts:
        key = (res[k][0], tuple(gts[k]))
        if key not in cache:
            cache[key] = scorer.calc_score(res[k], gts[k])
        scores.append(cache[key])
    return float(np.mean(np.array(scores)))


def drivelm_language(scores: dict[str, float | int | str]) -> float:
    """DriveLM's language aggregate: mean(BLEU-1..4)/3 + ROUGE-L/3 + CIDEr/30."""
    bleu = sum(float(scores[f"bleu{i}"]) for i in range(1, 5)) / 4
    return bleu / 3 + float(scores["rouge_l"]) / 3 + float(scores["cider"]) / 30
