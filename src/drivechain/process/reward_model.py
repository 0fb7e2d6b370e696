"""A trained reward model on disk and as a rater (``model:MODEL_DIR``).

A model folder (written by ``process/train.py``) holds ``config.json`` (kind prm|orm, backbone,
neutral, seeds, the data hash, the frames of each split), ``weights.npz`` (the head: one hidden
layer, ReLU, one logit) and ``curves.json`` (loss and AUROC per epoch). Inference is numpy only:
p(step correct) = sigmoid(head(features)), features from ``process/features.py``.

As a rater: ``score_step`` = p(step correct | questions, earlier steps); ``score_outcome`` = the score
of the chain's last step given all earlier ones (for an ORM that is its outcome prediction, as in
"Let's Verify Step by Step"). Requests of one event-loop pass are encoded together (micro-batching),
and embeddings are cached per text.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np

from drivechain.errors import ConfigError
from drivechain.process.features import EmbeddingCache, featurize, get_encoder, step_texts

Row = tuple[str, str, tuple[str, ...], str]  # stage, questions, earlier steps, step


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def head_scores(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """p(correct) of feature rows under head weights ``w1, b1, w2, b2`` (one ReLU layer, one logit)."""
    h = np.maximum(x @ w["w1"].T + w["b1"], 0.0)
    return sigmoid((h @ w["w2"].T + w["b2"]).reshape(-1))


class RewardModel:
    """A loaded model folder: its config and head; scores feature rows."""

    def __init__(self, root: Path, cache_path: Path | None = None) -> None:
        self.root = root
        try:
            self.config: dict[str, Any] = json.loads((root / "config.json").read_text(encoding="utf-8"))
            with np.load(root / "weights.npz") as z:
                self.w = {k: z[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2")}
        except FileNotFoundError as exc:
            raise ConfigError(f"reward model {root}: {Path(exc.filename or '').name} missing; "
                              "train one with 'drivechain prm-train'") from None
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"reward model {root} is broken ({str(exc)[:80]}); retrain it with 'drivechain prm-train'") from None
        if self.config.get("kind") not in ("prm", "orm") or "backbone" not in self.config:
            raise ConfigError(f"reward model {root}: config.json lacks kind/backbone; retrain it")
        self.cache = EmbeddingCache(get_encoder(self.config["backbone"]), cache_path)
        expected = featurize(self.cache, []).shape[1]
        if self.w["w1"].shape[1] != expected:
            raise ConfigError(f"reward model {root}: weights expect {self.w['w1'].shape[1]} features, "
                              f"the {self.config['backbone']} backbone gives {expected}; retrain it")

    @property
    def kind(self) -> str:
        """``prm`` or ``orm``."""
        return str(self.config["kind"])

    def score_rows(self, rows: list[Row]) -> np.ndarray:
        """p(correct) of every row."""
        from drivechain.process.train import one_blas_thread

        if not rows:
            return np.zeros(0, dtype=np.float32)
        x = featurize(self.cache, rows)
        with one_blas_thread():
            return head_scores(self.w, x)

    def heldout_frames(self) -> set[str]:
        """Frames the model never saw in training or early stopping."""
        return set(self.config.get("frames", {}).get("heldout", []))


class TrainedRater:
    """A trained reward model as a rater (``model:MODEL_DIR``)."""

    def __init__(self, model: RewardModel, spec: str) -> None:
        self.model = model
        self.name = spec
        self.threshold = float(model.config.get("threshold", 0.5))  # first-error threshold tuned on dev
        self.failures = 0
        self.failure_examples: list[str] = []
        self._pending: list[tuple[Row, asyncio.Future[float]]] = []
        self._seen = -1

    async def score_step(self, problem: Any, prefix: list[Any], step: Any) -> float | None:
        """p(step correct), given the stage's questions and the earlier steps."""
        row: Row = (step.stage, *step_texts(problem.text, step.stage, [p.text for p in prefix], step.text))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[float] = loop.create_future()
        self._pending.append((row, fut))
        if len(self._pending) == 1:
            self._seen = -1
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        # Wait one more loop pass while requests keep arriving, then encode them all at once.
        if len(self._pending) != self._seen:
            self._seen = len(self._pending)
            asyncio.get_running_loop().call_soon(self._flush)
            return
        batch, self._pending = self._pending, []
        try:
            scores = self.model.score_rows([r for r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - hand the failure to every waiter, not to the loop
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), s in zip(batch, scores):
            if not fut.done():
                fut.set_result(float(s))

    async def score_outcome(self, problem: Any, steps: list[Any]) -> float | None:
        """The last step's score given all earlier steps (an ORM's outcome prediction)."""
        if not steps:
            return 0.0
        return await self.score_step(problem, steps[:-1], steps[-1])

    def save_cache(self) -> None:
        """Keep the embeddings computed while rating."""
        try:
            self.model.cache.save()
        except OSError:
            pass  # a read-only data folder only costs time on the next run


def load_model(root: Path, data: Path | None = None) -> RewardModel:
    """A model folder, its embeddings cached beside the process data ``data`` when given."""
    if not root.is_dir():
        raise ConfigError(f"reward model {root} is not a folder; train one with 'drivechain prm-train --out {root}'")
    try:
        probe = json.loads((root / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        probe = {}  # RewardModel names the problem
    backbone = str(probe.get("backbone", "")) if isinstance(probe, dict) else ""
    return RewardModel(root, cache_path(data, backbone) if data is not None and backbone else None)


def load_trained_rater(spec: str, data: Path | None = None) -> TrainedRater:
    """``model:MODEL_DIR`` -> a rater; embeddings cached beside the process data when given."""
    return TrainedRater(load_model(Path(spec.split(":", 1)[1]), data), spec)


def cache_path(data: Path, backbone: str) -> Path | None:
    """Where embeddings of a process folder are cached (``DATA/cache/embeddings-<backbone>.npz``)."""
    if backbone == "hash":
        return None  # hashing is cheaper than reading a cache
    folder = data / "cache"
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return None
    return folder / f"embeddings-{backbone}.npz"
