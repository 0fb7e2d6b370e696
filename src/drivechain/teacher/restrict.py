"""Keep only the question families a source can label (the teacher asks nothing it cannot verify)."""

from __future__ import annotations

from collections import Counter

from drivechain.schema import ChainGraph


def restrict(graph: ChainGraph, families: frozenset[str]) -> tuple[ChainGraph, Counter[str]]:
    """(graph with nodes of ``families`` only, dropped count per family); a node whose parent was
    dropped is dropped too, so no edge points at a missing node."""
    kept, dropped = [], Counter()
    names: set[str] = set()
    for node in graph.nodes:
        if node.family in families and all(p in names for p in node.parents):
            kept.append(node)
            names.add(node.qid)
        else:
            dropped[node.family] += 1
    return ChainGraph(nodes=kept), dropped
