"""Running aggregates of a streamed eval: graded rows and request outcomes are folded in as they come.

Nothing grows with the dataset but a few numbers per frame (the bootstrap needs each frame's sums
and counts per teacher-forced cell), the latencies of successful requests (8 bytes each), and the
rows of the blocks only some data have (probes, g1, corner cases, imported DriveLM), which
are held as before. Sums are accumulated in row order, so a summary made from the stream is the
one the rows held in a list would give.
"""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

from drivechain.evaluation.ask import AskCounts
from drivechain.evaluation.protocols import LINKS
from drivechain.models.base import Response, failure_kind, printable
from drivechain.schema import STAGES

TF_LINKS: dict[str, tuple[str, ...]] = {
    stage: tuple(link for link, (_, stages) in LINKS.items() if stage in stages) for stage in STAGES
}
# bootstrap cells: (stage, link) pairs of the teacher-forced links with the image
CELLS: tuple[tuple[str, str], ...] = tuple((stage, link) for stage, links in TF_LINKS.items() for link in links)
_CELL_INDEX = {c: i for i, c in enumerate(CELLS)}


def typed(row: dict[str, Any]) -> bool:
    """True when the row counts in typed scores (not text, not ambiguous)."""
    return row.get("type") != "text" and row.get("status") != "ambiguous"


class Tally:
    """A running sum and count (the mean of the values added, in the order they were added)."""

    __slots__ = ("total", "n")

    def __init__(self) -> None:
        self.total = 0
        self.n = 0

    def add(self, value: float) -> None:
        """Add one value."""
        self.total += value
        self.n += 1

    def mean(self) -> float | None:
        """The mean rounded to 6 decimals, None when empty."""
        return round(self.total / self.n, 6) if self.n else None


class Tallies(dict):
    """key -> Tally, created on first use."""

    def __missing__(self, key: Any) -> Tally:
        tally = self[key] = Tally()
        return tally

    def mean(self, key: Any) -> float | None:
        """The mean of ``key``'s values (None when it has none)."""
        tally = self.get(key)
        return tally.mean() if tally is not None else None


def _kept(row: dict[str, Any]) -> bool:
    """Rows the special blocks read (probes, g1, imported DriveLM items)."""
    return row.get("protocol") in ("probes", "g1") or "drivelm" in row


class ScoreSums:
    """Graded rows folded frame by frame into what summary.json reports."""

    def __init__(self, variants: bool = False) -> None:
        self.variants = variants  # --variants all: the reworded questions' rows and the frame ids are held
        self.variant_rows: list[dict[str, Any]] = []
        self.frame_ids: list[str] = []
        self.tf = Tallies()  # (image, link) over typed transitions rows
        self.tf_stage = Tallies()  # (link, stage) over typed transitions rows with the image
        self.free = Tallies()  # stage over typed free-running rows
        self.free_seen = False
        self.cot = Tally()
        self.cot_stage = Tallies()
        self.cot_first = Counter()  # first wrong step -> frames
        self.cot_frames = 0
        self.families = Tallies()
        self.unsafe = self.answers = self.failed_answers = self.unparsed = 0
        self.frames = 0
        # per frame: sums and counts per bootstrap cell, flattened (frames x len(CELLS))
        self.cell_sums = array("d")
        self.cell_counts = array("d")
        self.text_hyps: list[str] = []  # text answers of links with the image (language metrics)
        self.text_refs: list[list[str]] = []
        self.kept: list[dict[str, Any]] = []  # rows of the special blocks
        self.corner_records: list[Any] = []  # records of corner-case frames (their meta is needed)
        self.ask = AskCounts()

    def add_frame(self, record: Any, rows: list[dict[str, Any]]) -> None:
        """Fold one frame's graded rows (in row order) into the sums; reworded rows (``variant``) only
        reach the variants block."""
        if self.variants:
            from drivechain.evaluation.variants import variant_group_rows

            self.frame_ids.append(record.frame.frame_id)
            self.variant_rows += variant_group_rows(rows)
            rows = [r for r in rows if not r.get("variant")]
        self.frames += 1
        self.ask.add(rows)
        sums = [0.0] * len(CELLS)
        counts = [0.0] * len(CELLS)
        corner = isinstance(record.frame.meta.get("corner"), dict) and "probe" not in record.frame.meta
        if corner:
            self.corner_records.append(record)
        cot_first = None
        for r in rows:
            protocol, is_typed = r["protocol"], typed(r)
            if corner or _kept(r):
                self.kept.append(r)
            if protocol == "free":
                self.free_seen = True
            if protocol == "cot" and cot_first is None:
                cot_first = str(r.get("first_wrong"))
            if protocol == "transitions" and r["image"] is True and r.get("type") == "text" \
                    and r.get("status") != "ambiguous":
                self.text_hyps.append("" if r.get("value") is None else str(r["value"]))
                self.text_refs.append(list(r.get("refs") or []))
            if not is_typed:
                continue
            score = float(r["score"])
            self.answers += 1
            self.unsafe += 1 if r.get("unsafe") else 0
            self.failed_answers += r.get("status") == "failed"
            self.unparsed += r.get("status") == "unparsed"
            if protocol == "transitions":
                self.tf[(r["image"], r["link"])].add(score)
                if r["image"] is True:
                    self.tf_stage[(r["link"], r["stage"])].add(score)
                    self.families[r["family"]].add(score)
                    c = _CELL_INDEX.get((r["stage"], r["link"]))
                    if c is not None:
                        sums[c] += score
                        counts[c] += 1
            elif protocol == "free":
                self.free[r["stage"]].add(score)
            elif protocol == "cot":
                self.cot.add(score)
                self.cot_stage[r["stage"]].add(score)
        if cot_first is not None:
            self.cot_first[cot_first] += 1
            self.cot_frames += 1
        self.cell_sums.extend(sums)
        self.cell_counts.extend(counts)


class RequestTotals:
    """Final outcomes of the run's requests, folded in one by one (each distinct request once)."""

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.prompt_tokens = self.completion_tokens = self.reasoning_tokens = 0
        self.latencies_s = array("d")  # of successful responses
        self.kinds: Counter[str] = Counter()
        self.first_error: dict[str, str] = {}  # failure kind -> its first error text

    def add(self, resp: Response) -> None:
        """Fold one request's final response."""
        self.requests += 1
        usage = resp.usage
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        if resp.ok:
            self.latencies_s.append(resp.latency_s)
            return
        self.failures += 1
        kind = failure_kind(resp.error)
        self.kinds[kind] += 1
        self.first_error.setdefault(kind, printable(resp.error or "failed", 300))

    def failure_report(self, max_failure_rate: float) -> dict[str, Any]:
        """Failed requests by kind, their rate, the first distinct errors, and whether the run is complete."""
        total, failed = self.requests, self.failures
        rate = failed / total if total else 0.0
        complete = total > 0 and rate <= max_failure_rate
        reason = None
        if total == 0:
            reason = "no request was made"
        elif not complete:
            reason = (f"{failed} of {total} requests failed ({100 * rate:.1f} % > --max-failure-rate "
                      f"{100 * max_failure_rate:g} %): " + ", ".join(f"{k} x{n}" for k, n in self.kinds.most_common()))
        return {
            "complete": complete,
            "incomplete_reason": reason,
            "failure_rate": round(rate, 6),
            "max_failure_rate": max_failure_rate,
            "failures_by_kind": dict(sorted(self.kinds.items())),
            "first_errors": [self.first_error[k] for k, _ in self.kinds.most_common()][:5],
        }
