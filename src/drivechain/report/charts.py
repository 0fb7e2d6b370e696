"""Static PNG charts for the report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
# Model names are drawn as given: a dollar sign, backslash, underscore or percent sign is not mathtext.
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: Any, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed metadata dict keeps the PNG bytes free of version/time stamps.
    fig.savefig(path, dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path.name


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


def cost_scatter(points: list[dict[str, Any]], path: Path) -> str:
    """Each model's overall score with its interval, one row per model (no overlapping labels), and its
    price per 1,000 frames written beside it ("no price" for built-ins and unpriced models); the Pareto
    front among priced models is drawn in red."""
    front = pareto_front([(p["name"], p["usd"], p["score"]) for p in points if p.get("usd") is not None])
    ordered = sorted(points, key=lambda p: p["score"])
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.42 * len(ordered)))
    for y, p in enumerate(ordered):
        on = p["name"] in front
        ci = p.get("ci")
        if ci:
            ax.plot(ci, [y, y], color="#c44e52" if on else "#4c72b0", lw=2, alpha=0.6)
        ax.scatter([p["score"]], [y], s=50 if on else 30, color="#c44e52" if on else "#4c72b0", zorder=3)
        usd = p.get("usd")
        price = "no price" if usd is None else f"${usd:,.4g} / 1k frames"
        tokens = p.get("tokens")
        if tokens:
            price += f", {tokens:,.0f} tokens / 1k frames"
        ax.annotate(price, (1.02, y), xycoords=("axes fraction", "data"), va="center", fontsize=8,
                    annotation_clip=False)
    ax.set_yticks(range(len(ordered)), [p["name"] for p in ordered], fontsize=8)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.6, len(ordered) - 0.4)
    ax.set_xlabel("overall score (0-1), 95 % interval")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def best_of_n_chart(curves: dict[str, dict[str, float | None]], path: Path,
                    cis: dict[str, dict[str, list[float]]] | None = None) -> str:
    """Best-of-N planning accuracy per selection method (shaded 95 % intervals when the summary has them)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for method, by_n in sorted(curves.items()):
        pairs = sorted((int(n), v) for n, v in by_n.items() if v is not None)
        if pairs:
            line = ax.plot([n for n, _ in pairs], [v for _, v in pairs], marker="o", label=method)[0]
            band = [(n, (cis or {}).get(method, {}).get(str(n))) for n, _ in pairs]
            band = [(n, ci) for n, ci in band if isinstance(ci, (list, tuple)) and len(ci) == 2]
            if band:
                ax.fill_between([n for n, _ in band], [c[0] for _, c in band], [c[1] for _, c in band],
                                color=line.get_color(), alpha=0.15)
    ns = sorted({int(n) for by_n in curves.values() for n in by_n})
    ax.set_xscale("log", base=2)
    if ns:
        ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("N, chains per frame to choose from")
    ax.set_ylabel("planning accuracy (0-1)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
