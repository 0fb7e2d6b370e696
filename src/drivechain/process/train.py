"""``drivechain prm-train``: a process- (PRM) or outcome-supervised (ORM) reward model from process data.

Training examples come from ``processbench.json`` of a process folder (the teacher's chain, the
teacher's chain with one step replaced by each kept candidate, every sampled chain), one example per
step of every item, as in PRM800K (not de-duplicated: a correct step shared by many chains is as
frequent in training as in the chains a reward model ranks, so its scores stay calibrated):
- PRM (process supervision): the steps up to and including the first step rated -1; label 1 for
  +1, 0 for -1; a step rated 0 (acceptable, not preferred) is 1 with ``--neutral pos`` and 0 with
  ``--neutral neg``. Steps after the first error are not labelled (PRM800K).
- ORM (outcome supervision): every step of the chain, labelled with the chain's final answer
  (``final_answer_correct``).
Frames are split by episode (``{source}/{scenario}/{episode}``, so no frame and no episode is on two
sides; ``--split-by frame`` splits frames instead, for datasets with one episode per scenario): ``--heldout`` of the episodes (hashed with the seed) are never used for training or model
selection; of the rest, a sixth is the dev split for early stopping. The head is a one-hidden-layer
MLP (numpy, Adam, L2, binary cross-entropy, fixed seed) on frozen features (``process/features.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivechain.errors import ConfigError, DatasetError
from drivechain.process.features import EmbeddingCache, featurize, get_encoder, step_texts
from drivechain.process.prm_metrics import auroc
from drivechain.process.reward_model import Row, cache_path

KINDS = ("prm", "orm")


@dataclass
class TrainConfig:
    """Options of ``drivechain prm-train``."""

    kind: str = "prm"
    backbone: str = "minilm"
    neutral: str = "pos"
    seed: int = 0
    heldout: float = 0.2
    hidden: int = 64
    epochs: int = 40
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    patience: int = 6
    shuffle_labels: bool = False  # a control: labels permuted within the training split
    split_by: str = "episode"  # or "frame" (datasets with one episode per scenario)


@dataclass
class Example:
    """One labelled step."""

    frame_id: str
    row: Row
    label: int
    item: int = -1  # index of the ProcessBench item it comes from
    first_error: int = -1  # that item's first error (its ProcessBench label)


def episode_of(frame_id: str) -> str:
    """``source/scenario/episode`` of a frame id (the frame id itself when it has fewer parts)."""
    return frame_id.rsplit("/", 1)[0] if frame_id.count("/") >= 3 else frame_id


def _rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}/{key}".encode("utf-8")).hexdigest()


def split_frames(frame_ids: list[str], heldout: float, seed: int, by: str = "episode") -> dict[str, list[str]]:
    """Frames -> {train, dev, heldout} by episode (or by frame), deterministic for a seed; no frame on two sides."""
    group = episode_of if by == "episode" else (lambda f: f)
    episodes = sorted({group(f) for f in frame_ids}, key=lambda e: _rank(e, seed))
    n_held = min(len(episodes) - 1, max(1, round(heldout * len(episodes)))) if heldout > 0 and len(episodes) > 1 else 0
    held = set(episodes[:n_held])
    rest = episodes[n_held:]
    n_dev = min(len(rest) - 1, max(1, round(len(rest) / 6))) if len(rest) > 1 else 0
    dev = set(rest[:n_dev])
    out: dict[str, list[str]] = {"train": [], "dev": [], "heldout": []}
    for f in sorted(set(frame_ids)):
        e = group(f)
        out["heldout" if e in held else "dev" if e in dev else "train"].append(f)
    return out


def step_label(rating: int, neutral: str) -> int:
    """A PRM label from a -1/0/+1 rating."""
    return 1 if rating > 0 or (rating == 0 and neutral == "pos") else 0


def examples(problems: dict[str, Any], items: list[dict[str, Any]], kind: str, neutral: str = "pos",
             dedupe: bool = False) -> list[Example]:
    """Labelled steps of ProcessBench items (see the module docstring), in item order; ``dedupe`` keeps
    each (frame, earlier steps, step, label) once."""
    out: list[Example] = []
    seen: set[tuple[Any, ...]] = set()
    for n, it in enumerate(items):
        text = problems[it["frame_id"]].text
        ratings = it["step_ratings"]
        stop = int(it["label"])
        last = len(ratings) - 1 if kind == "orm" or stop < 0 else stop
        for k in range(last + 1):
            if ratings[k] is None:
                continue
            label = int(bool(it["final_answer_correct"])) if kind == "orm" else step_label(int(ratings[k]), neutral)
            stage = it["stages"][k]
            row: Row = (stage, *step_texts(text, stage, it["steps"][:k], it["steps"][k]))
            key = (it["frame_id"], row, label)
            if dedupe and key in seen:
                continue
            seen.add(key)
            out.append(Example(it["frame_id"], row, label, n, stop))
    return out


def data_hash(root: Path) -> str:
    """SHA-256 of the files training reads (processbench.json, problems.jsonl)."""
    h = hashlib.sha256()
    for name in ("processbench.json", "problems.jsonl"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _bce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of logits and its gradient with respect to them."""
    p = 0.5 * (1.0 + np.tanh(0.5 * z))
    # log(1 + e^-z) and log(1 + e^z), stable for large |z|
    loss = y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)
    return float(loss.mean()) if len(z) else 0.0, (p - y) / max(1, len(z))


def one_blas_thread() -> Any:
    """A context that keeps BLAS to one thread: the head's matrices are small, and on a shared machine
    BLAS threads spin-wait for cores (measured 6x slower training under load)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fit_head(x_tr: np.ndarray, y_tr: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, cfg: TrainConfig
             ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Train the MLP head (numpy, Adam, L2) with early stopping on dev loss; (weights of the best epoch, curves).

    Plain (unweighted) cross-entropy: the output is a calibrated p(correct), so prm-eval's 0.5 means
    "more likely right than wrong" (weighting the classes to balance pushed most correct steps below
    0.5 and the first-error F1 to 0). Without a dev split, the training loss decides."""
    rng = np.random.default_rng(cfg.seed)
    d = x_tr.shape[1]
    w = {"w1": (rng.standard_normal((cfg.hidden, d)) * np.sqrt(2.0 / d)).astype(np.float32),
         "b1": np.zeros(cfg.hidden, dtype=np.float32),
         "w2": (rng.standard_normal((1, cfg.hidden)) * np.sqrt(1.0 / cfg.hidden)).astype(np.float32),
         "b2": np.zeros(1, dtype=np.float32)}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v2 = {k: np.zeros_like(v) for k, v in w.items()}
    yf_tr = y_tr.astype(np.float32)

    def forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.maximum(x @ w["w1"].T + w["b1"], 0.0)
        return h, (h @ w["w2"].T + w["b2"]).reshape(-1)

    curves: list[dict[str, Any]] = []
    best: tuple[float, dict[str, np.ndarray]] | None = None
    bad, step = 0, 0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for epoch in range(1, cfg.epochs + 1):
        perm = rng.permutation(len(x_tr))
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            x, y = x_tr[idx], yf_tr[idx]
            h, z = forward(x)
            loss, gz = _bce(z, y)
            total += loss * len(idx)
            gh = np.outer(gz, w["w2"][0]) * (h > 0)
            grads = {"w2": (gz @ h)[None, :], "b2": np.array([gz.sum()], dtype=np.float32),
                     "w1": gh.T @ x, "b1": gh.sum(axis=0)}
            step += 1
            for k in w:
                g = grads[k] + (cfg.weight_decay * w[k] if k.startswith("w") else 0.0)
                m[k] = b1 * m[k] + (1 - b1) * g
                v2[k] = b2 * v2[k] + (1 - b2) * g * g
                w[k] = (w[k] - cfg.lr * (m[k] / (1 - b1 ** step)) / (np.sqrt(v2[k] / (1 - b2 ** step)) + eps)).astype(np.float32)
        train_loss = total / max(1, len(x_tr))
        if len(x_dev):
            _, zd = forward(x_dev)
            dev_loss = _bce(zd, y_dev.astype(np.float32))[0]
            dev_auroc = auroc(y_dev, zd)
        else:
            dev_loss, dev_auroc = train_loss, None
        curves.append({"epoch": epoch, "train_loss": round(train_loss, 6), "dev_loss": round(dev_loss, 6),
                       "dev_auroc": dev_auroc})
        if best is None or dev_loss < best[0] - 1e-5:
            best = (dev_loss, {k: v.copy() for k, v in w.items()})
            bad = 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    assert best is not None
    return best[1], curves


def tune_threshold(exs: list[Example], scores: np.ndarray) -> tuple[float, float | None]:
    """The score threshold with the best ProcessBench first-error F1 on these examples (ties: nearest 0.5).

    An item's predicted first error is its first step scored below the threshold; the examples of an
    item reach its first error (PRM) or its end (ORM), which is all the exact match needs."""
    from drivechain.process.prm_eval import first_error_f1, predicted_first_error

    by: dict[int, tuple[int, list[float]]] = {}
    for e, s in zip(exs, scores):
        if e.item >= 0:
            by.setdefault(e.item, (e.first_error, []))[1].append(float(s))
    if not by:
        return 0.5, None
    best: tuple[float, float, float] | None = None
    for thr in np.round(np.linspace(0.05, 0.95, 19), 2):
        labels = [lab for lab, _ in by.values()]
        preds = [predicted_first_error(sc, float(thr)) for _, sc in by.values()]
        f1 = first_error_f1(labels, preds)["f1"]
        key = (f1 if f1 is not None else -1.0, -abs(float(thr) - 0.5))
        if best is None or key > best[:2]:
            best = (key[0], key[1], float(thr))
    assert best is not None
    return best[2], (best[0] if best[0] >= 0 else None)


def validate(cfg: TrainConfig) -> None:
    """Refuse options out of range (one line)."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"prm-train: --kind {cfg.kind!r} must be prm or orm")
    if cfg.neutral not in ("pos", "neg"):
        raise ConfigError(f"prm-train: --neutral {cfg.neutral!r} must be pos or neg")
    if not 0.0 <= cfg.heldout < 1.0:
        raise ConfigError(f"prm-train: --heldout {cfg.heldout} must be in [0, 1)")
    if cfg.split_by not in ("episode", "frame"):
        raise ConfigError(f"prm-train: --split-by {cfg.split_by!r} must be episode or frame")
    if cfg.epochs < 1 or cfg.hidden < 1:
        raise ConfigError("prm-train: --epochs and --hidden must be >= 1")


def train_examples(train: list[Example], dev: list[Example], cfg: TrainConfig, cache: EmbeddingCache
                   ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Features, optional label shuffling (the control), and the fitted head."""
    if not train or len({e.label for e in train}) < 2:
        raise DatasetError("prm-train: the training split needs labelled steps of both classes; use more frames")
    x_tr = featurize(cache, [e.row for e in train])
    y_tr = np.array([e.label for e in train], dtype=np.int64)
    if cfg.shuffle_labels:
        y_tr = np.random.default_rng(cfg.seed).permutation(y_tr)
    x_dev = featurize(cache, [e.row for e in dev])
    y_dev = np.array([e.label for e in dev], dtype=np.int64)
    with one_blas_thread():
        return fit_head(x_tr, y_tr, x_dev, y_dev, cfg)


def write_model(out: Path, weights: dict[str, np.ndarray], config: dict[str, Any], curves: list[dict[str, Any]]) -> None:
    """Weights, config and curves into a model folder (each file replaced atomically)."""
    from drivechain.process.exports import write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "weights.tmp.npz"
    np.savez(tmp, **weights)
    tmp.replace(out / "weights.npz")
    write_text_atomic(out / "curves.json", json.dumps(curves, indent=1) + "\n")
    write_text_atomic(out / "config.json", json.dumps(config, sort_keys=True, indent=2) + "\n")


def train_model(data: Path, out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """Train a reward model on a process folder into ``out``; returns its config (with held-out figures)."""
    from drivechain.process.corrections import check_corrections_current
    from drivechain.process.prm_eval import load_process_dir

    validate(cfg)
    problems, items, _ = load_process_dir(data)
    check_corrections_current(data)
    t0 = time.perf_counter()
    split = split_frames(sorted(problems), cfg.heldout, cfg.seed, cfg.split_by)
    side = {f: k for k, fs in split.items() for f in fs}
    exs = examples(problems, items, cfg.kind, cfg.neutral)
    by = {k: [e for e in exs if side[e.frame_id] == k] for k in split}
    cache = EmbeddingCache(get_encoder(cfg.backbone), cache_path(data, cfg.backbone))
    weights, curves = train_examples(by["train"], by["dev"], cfg, cache)
    try:
        cache.save()
    except OSError:
        pass
    from drivechain.process.reward_model import head_scores

    tune_on = by["dev"] or by["train"]
    threshold, tune_f1 = tune_threshold(tune_on, head_scores(weights, featurize(cache, [e.row for e in tune_on])))
    held = by["heldout"]
    held_auroc = None
    if held:
        held_auroc = auroc([e.label for e in held], head_scores(weights, featurize(cache, [e.row for e in held])))
    config = {
        "kind": cfg.kind, "backbone": cfg.backbone, "neutral": cfg.neutral, "seed": cfg.seed, "heldout_share": cfg.heldout,
        "hidden": cfg.hidden, "epochs_max": cfg.epochs, "epochs_run": len(curves), "lr": cfg.lr,
        "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "patience": cfg.patience,
        "shuffle_labels": cfg.shuffle_labels, "features": int(weights["w1"].shape[1]),
        "data": str(data), "data_hash": data_hash(data), "split_by": cfg.split_by,
        "frames": split, "examples": {k: len(v) for k, v in by.items()},
        "positives": {k: sum(e.label for e in v) for k, v in by.items()},
        "heldout_auroc": held_auroc, "threshold": threshold, "threshold_tuned_on": "dev" if by["dev"] else "train",
        "threshold_first_error_f1": tune_f1, "train_seconds": round(time.perf_counter() - t0, 2),
        "texts_encoded": cache.encoded,
    }
    write_model(out, weights, config, curves)
    return config
