"""Static PNG charts for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SOURCES = ("V", "Per", "Pred")
TARGETS = ("Per", "Pred", "Plan")
STAGE_ORDER = ("perception", "prediction", "planning", "behavior")


def _save(fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed metadata dict keeps the PNG bytes free of version/time stamps.
    fig.savefig(path, dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path.name


def _matrix(values: dict[str, float | None]) -> np.ndarray:
    grid = np.full((len(SOURCES), len(TARGETS)), np.nan)
    for i, src in enumerate(SOURCES):
        for j, dst in enumerate(TARGETS):
            value = values.get(f"{src}->{dst}")
            if value is not None:
                grid[i, j] = value
    return grid


def _panel(ax: Any, grid: np.ndarray, title: str, cmap: str, vmin: float, vmax: float) -> None:
    ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(TARGETS)), [f"→{t}" for t in TARGETS])
    ax.set_yticks(range(len(SOURCES)), [f"{s}→" for s in SOURCES])
    ax.set_title(title, fontsize=10)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            text = "—" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)


def transition_heatmap(summary: dict[str, Any], path: Path) -> str:
    """Six links with the image, the Per/Pred links without it, and their difference (vision reliance)."""
    with_img = _matrix(summary.get("transitions") or {})
    without = _matrix(summary.get("transitions_no_image") or {})
    without[0, :] = np.nan  # V-> links always have the image
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.0))
    _panel(axes[0], with_img, "with image", "viridis", 0.0, 1.0)
    _panel(axes[1], without, "without image", "viridis", 0.0, 1.0)
    _panel(axes[2], with_img - without, "vision reliance (with − without)", "coolwarm", -0.5, 0.5)
    fig.tight_layout()
    return _save(fig, path)


def propagation_chart(summary: dict[str, Any], path: Path) -> str:
    """Teacher-forced vs free-running score per stage: the gap is the error propagated from upstream."""
    stages = [s for s in STAGE_ORDER if (summary.get("stages") or {}).get(s) is not None]
    tf = [summary["stages"][s] for s in stages]
    free = [(summary.get("free_running") or {}).get(s) or 0.0 for s in stages]
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    x = np.arange(len(stages))
    ax.bar(x - 0.18, tf, 0.36, label="teacher-forced", color="#4c72b0")
    ax.bar(x + 0.18, free, 0.36, label="free-running", color="#dd8452")
    ax.set_xticks(x, stages)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


def pareto_front(points: list[tuple[str, float, float]]) -> set[str]:
    """Names on the cost/score Pareto front (no other point is cheaper and at least as good)."""
    front = set()
    for name, cost, score in points:
        dominated = any(
            (c <= cost and s >= score) and (c < cost or s > score) for n, c, s in points if n != name
        )
        if not dominated:
            front.add(name)
    return front


def cost_scatter(points: list[tuple[str, float, float]], path: Path) -> str:
    """Score against dollars per 1,000 frames, Pareto front marked."""
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for name, cost, score in points:
        on = name in front
        ax.scatter([cost], [score], s=60 if on else 30, color="#c44e52" if on else "#4c72b0", zorder=3)
        ax.annotate(name, (cost, score), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ranked = sorted((c, s) for n, c, s in points if n in front)
    if len(ranked) > 1:
        ax.plot([c for c, _ in ranked], [s for _, s in ranked], "--", color="#c44e52", lw=1, label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xlabel("$ per 1,000 frames")
    ax.set_ylabel("overall score")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def best_of_n_chart(curves: dict[str, dict[str, float | None]], path: Path) -> str:
    """Best-of-N planning accuracy per selection method."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for method, by_n in sorted(curves.items()):
        pairs = sorted((int(n), v) for n, v in by_n.items() if v is not None)
        if pairs:
            ax.plot([n for n, _ in pairs], [v for _, v in pairs], marker="o", label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (candidates)")
    ax.set_ylabel("planning accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
