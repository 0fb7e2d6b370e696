"""Summary blocks that only some data have: counterfactual probes, corner cases.

Each block is self-describing (``kind``, ``title``, ``description``) so a report can show one it
does not know.
"""

from __future__ import annotations

from typing import Any


def extra_blocks(rows: list[dict[str, Any]], records: list[Any], asked: dict[str, Any] | None) -> dict[str, Any]:
    """{'probes': ..., 'corner': ...} for the blocks this run's rows and frames support.

    ``rows`` need only be those of probes, g1, DriveLM items and corner-case frames (``records``);
    ``asked`` is the ask block, counted over every row as they streamed (evaluation/ask.py AskCounts).
    """
    from drivechain.evaluation.corner_scores import corner_summary
    from drivechain.evaluation.probes import probe_summary

    out: dict[str, Any] = {}
    probes = probe_summary(rows)
    if probes is not None:
        out["probes"] = probes
    from drivechain.evaluation.g1 import g1_summary

    g1 = g1_summary(rows)
    if g1 is not None:
        out["g1"] = g1
    if asked is not None:
        out["ask"] = asked
    corner = corner_summary(rows, records)
    if corner is not None:
        out["corner"] = corner
    return out
