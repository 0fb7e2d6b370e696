"""``drivechain prm-train``: a process- (PRM) or outcome-supervised (ORM) reward model from process data.

Training examples come from ``processbench.json`` of a process folder (the teacher's chain, the
teacher's chain with one step replaced by each kept candidate, every sampled chain), one example per
step, de-duplicated on (frame, earlier steps, step, label):
- PRM (process supervision): the steps up to and including the first step rated -1; label 1 for
  +1, 0 for -1; a step rated 0 (acceptable, not preferred) is 1 with ``--neutral pos`` and 0 with
  ``--neutral neg``. Steps after the first error are not labelled (PRM800K).
- ORM (outcome supervision): every step of the chain, labelled with the chain's final answer
  (``final_answer_correct``).
Frames are split by episode (``{source}/{scenario}/{episode}``, so no frame and no episode is on two
sides): ``--heldout`` of the episodes (hashed with the seed) are never used for training or model
selection; of the rest, a sixth is the dev split for early stopping. The head is a one-hidden-layer
MLP (torch, Adam, binary cross-entropy with the classes weighted to balance, fixed seed) on frozen features (``process/features.py``).
"""

from __future__ import annotations

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
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    patience: int = 6
    shuffle_labels: bool = False  # a control: labels permuted within the training split


@dataclass
class Example:
    """One labelled step."""

    frame_id: str
    row: Row
    label: int


def episode_of(frame_id: str) -> str:
    """``source/scenario/episode`` of a frame id (the frame id itself when it has fewer parts)."""
    return frame_id.rsplit("/", 1)[0] if frame_id.count("/") >= 3 else frame_id


def _rank(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}/{key}".encode("utf-8")).hexdigest()


def split_frames(frame_ids: list[str], heldout: float, seed: int) -> dict[str, list[str]]:
    """Frames -> {train, dev, heldout} by episode, deterministic for a seed; every side non-empty when possible."""
    episodes = sorted({episode_of(f) for f in frame_ids}, key=lambda e: _rank(e, seed))
    n_held = min(len(episodes) - 1, max(1, round(heldout * len(episodes)))) if heldout > 0 and len(episodes) > 1 else 0
    held = set(episodes[:n_held])
    rest = episodes[n_held:]
    n_dev = min(len(rest) - 1, max(1, round(len(rest) / 6))) if len(rest) > 1 else 0
    dev = set(rest[:n_dev])
    out: dict[str, list[str]] = {"train": [], "dev": [], "heldout": []}
    for f in sorted(set(frame_ids)):
        e = episode_of(f)
        out["heldout" if e in held else "dev" if e in dev else "train"].append(f)
    return out


def step_label(rating: int, neutral: str) -> int:
    """A PRM label from a -1/0/+1 rating."""
    return 1 if rating > 0 or (rating == 0 and neutral == "pos") else 0


def examples(problems: dict[str, Any], items: list[dict[str, Any]], kind: str, neutral: str = "pos") -> list[Example]:
    """Labelled steps of ProcessBench items (see the module docstring), de-duplicated, in item order."""
    out: list[Example] = []
    seen: set[tuple[Any, ...]] = set()
    for it in items:
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
            if key in seen:
                continue
            seen.add(key)
            out.append(Example(it["frame_id"], row, label))
    return out


def data_hash(root: Path) -> str:
    """SHA-256 of the files training reads (processbench.json, problems.jsonl)."""
    h = hashlib.sha256()
    for name in ("processbench.json", "problems.jsonl"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def fit_head(x_tr: np.ndarray, y_tr: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, cfg: TrainConfig
             ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Train the MLP head with early stopping on dev loss; (weights of the best epoch, curves)."""
    import torch

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], cfg.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                              torch.nn.Linear(cfg.hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Classes weighted to balance, so 0.5 (prm-eval's threshold) separates them whatever the error rate.
    n_pos = max(1, int(y_tr.sum()))
    n_neg = max(1, int(len(y_tr) - y_tr.sum()))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(n_neg / n_pos))
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr.astype(np.float32))
    xd, yd = torch.from_numpy(x_dev), torch.from_numpy(y_dev.astype(np.float32))
    curves: list[dict[str, Any]] = []
    best: tuple[float, dict[str, np.ndarray]] | None = None
    bad = 0
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]).squeeze(1), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            logit_d = net(xd).squeeze(1) if len(xd) else torch.zeros(0)
            dev_loss = float(loss_fn(logit_d, yd)) if len(xd) else total / max(1, len(xt))
        row = {"epoch": epoch, "train_loss": round(total / max(1, len(xt)), 6), "dev_loss": round(dev_loss, 6),
               "dev_auroc": None if not len(xd) else auroc(y_dev, logit_d.numpy())}
        curves.append(row)
        if best is None or dev_loss < best[0] - 1e-5:
            sd = net.state_dict()
            best = (dev_loss, {"w1": sd["0.weight"].numpy().copy(), "b1": sd["0.bias"].numpy().copy(),
                               "w2": sd["3.weight"].numpy().copy(), "b2": sd["3.bias"].numpy().copy()})
            bad = 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    assert best is not None
    return best[1], curves


def validate(cfg: TrainConfig) -> None:
    """Refuse options out of range (one line)."""
    if cfg.kind not in KINDS:
        raise ConfigError(f"prm-train: --kind {cfg.kind!r} must be prm or orm")
    if cfg.neutral not in ("pos", "neg"):
        raise ConfigError(f"prm-train: --neutral {cfg.neutral!r} must be pos or neg")
    if not 0.0 <= cfg.heldout < 1.0:
        raise ConfigError(f"prm-train: --heldout {cfg.heldout} must be in [0, 1)")
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
    split = split_frames(sorted(problems), cfg.heldout, cfg.seed)
    side = {f: k for k, fs in split.items() for f in fs}
    exs = examples(problems, items, cfg.kind, cfg.neutral)
    by = {k: [e for e in exs if side[e.frame_id] == k] for k in split}
    cache = EmbeddingCache(get_encoder(cfg.backbone), cache_path(data, cfg.backbone))
    weights, curves = train_examples(by["train"], by["dev"], cfg, cache)
    try:
        cache.save()
    except OSError:
        pass
    from drivechain.process.reward_model import sigmoid

    held = by["heldout"]
    held_auroc = None
    if held:
        x = featurize(cache, [e.row for e in held])
        h = np.maximum(x @ weights["w1"].T + weights["b1"], 0.0)
        p = sigmoid((h @ weights["w2"].T + weights["b2"]).reshape(-1))
        held_auroc = auroc([e.label for e in held], p)
    config = {
        "kind": cfg.kind, "backbone": cfg.backbone, "neutral": cfg.neutral, "seed": cfg.seed, "heldout_share": cfg.heldout,
        "hidden": cfg.hidden, "epochs_max": cfg.epochs, "epochs_run": len(curves), "lr": cfg.lr,
        "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "patience": cfg.patience,
        "shuffle_labels": cfg.shuffle_labels, "features": int(weights["w1"].shape[1]),
        "data": str(data), "data_hash": data_hash(data), "split_by": "episode",
        "frames": split, "examples": {k: len(v) for k, v in by.items()},
        "positives": {k: sum(e.label for e in v) for k, v in by.items()},
        "heldout_auroc": held_auroc, "train_seconds": round(time.perf_counter() - t0, 2),
        "texts_encoded": cache.encoded,
    }
    write_model(out, weights, config, curves)
    return config
