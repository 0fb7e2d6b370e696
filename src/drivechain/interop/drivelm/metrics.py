"""DriveLM challenge metrics computed exactly as ``challenge/evaluation.py`` does, minus its crashes.

- accuracy (tag 0): exact string equality of prediction and answer;
- match (tag 3): coordinates are the numbers with a decimal point (``\\d+\\.\\d+``, signs ignored)
  read in pairs; each predicted pair, in order, is matched greedily to the nearest remaining
  ground-truth pair by L1 distance and counts as a true positive when that distance is < 16 px;
  F1 = 2PR / (P + R + 1e-8) with P = TP / (TP + FP + 1e-8), R = TP / (TP + FN + 1e-8);
- the frame graph filter: the first QA of a key frame is always scored and its matched
  ground-truth pairs form the frame's graph; a later QA is scored only if every coordinate pair in
  its question is in that graph (a question without coordinates always passes).

Where DriveLM's script raises (an odd count of numbers in a ground truth or a question, a missing
prediction, a non-string answer), these functions carry on as documented and record the problem.
"""

from __future__ import annotations

import re

COORD = re.compile(r"\d+\.\d+")
MATCH_L1_PX = 16.0


def coordinate_pairs(text: str, problems: list[str] | None = None, what: str = "text") -> list[tuple[float, float]]:
    """Pairs of decimal numbers in ``text``; an odd count drops the last number (recorded)."""
    nums = [float(x) for x in COORD.findall(text)]
    if len(nums) % 2:
        if problems is not None:
            problems.append(f"odd number of coordinates in the {what} ({len(nums)}); last one dropped")
        nums = nums[:-1]
    return [(nums[i], nums[i + 1]) for i in range(0, len(nums), 2)]


def match_result(answer: str, gt: str, problems: list[str] | None = None) -> tuple[list[tuple[float, float]], float]:
    """(matched ground-truth pairs, F1) of the predicted coordinates against the true ones."""
    # DriveLM drops the last number of an odd prediction silently: not a problem worth recording.
    pred = coordinate_pairs(answer)
    truth = coordinate_pairs(gt, problems, "ground truth")
    length = len(truth)
    matched: list[tuple[float, float]] = []
    tp = fp = 0
    for px, py in pred:
        best, best_i = float("inf"), -1
        for i, (gx, gy) in enumerate(truth):
            d = abs(px - gx) + abs(py - gy)
            if d < best:
                best, best_i = d, i
        if best < MATCH_L1_PX:
            tp += 1
            matched.append(truth.pop(best_i))
        else:
            fp += 1
    fn = length - tp
    precision = tp / (tp + fp + 1e-8)
    recall = tp / (tp + fn + 1e-8)
    f1 = 2 * precision * recall / (precision + recall + 1e-8)
    return matched, f1


def in_graph(question: str, graph: list[tuple[float, float]], problems: list[str] | None = None) -> bool:
    """DriveLM's graph filter: every coordinate pair of the question is among the frame's matched pairs."""
    return all(q in graph for q in coordinate_pairs(question, problems, "question"))


def accuracy(pairs: list[tuple[str, str]]) -> float | None:
    """Share of exact matches (None without items; DriveLM divides by zero there)."""
    if not pairs:
        return None
    return sum(1.0 if a == g else 0.0 for a, g in pairs) / len(pairs)


def mean(values: list[float]) -> float | None:
    """Plain mean in list order (DriveLM's ``sum / len``), None when empty."""
    return sum(values) / len(values) if values else None


def language_aggregate(scores: dict[str, float]) -> float:
    """DriveLM's language score: BLEU-1..4 / 4 / 3 each, + ROUGE-L / 3 + CIDEr / 10 / 3, summed in that order."""
    score = 0.0
    for key in ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"):
        score += scores[key] / 4.0 / 3.0
    score += scores["ROUGE_L"] / 3.0
    score += scores["CIDEr"] / 10.0 / 3.0
    return score


WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # chatgpt, language, match, accuracy


def final_score(chatgpt: float, language: float, match: float, acc: float) -> float:
    """0.4 GPT/100 + 0.2 language + 0.2 match/100 + 0.2 accuracy, summed as DriveLM sums it."""
    scores = [chatgpt / 100.0, language, match / 100.0, acc]
    return sum(x * y for x, y in zip(scores, WEIGHTS))
