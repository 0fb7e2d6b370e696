"""A streamed eval: records are pulled lazily, requests start before the dataset is read, rows keep frame order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

from drivechain.evaluation.aggregate import ScoreSums
from drivechain.evaluation.protocols import AskOptions
from drivechain.evaluation.runner import RunPolicy, evaluate
from drivechain.evaluation.summary import stage_scores
from drivechain.models.registry import load_model
from tests.test_eval_helpers import make_record

N = 120


class Spy:
    """The oracle, noting how many records the run had pulled when each request arrived."""

    def __init__(self, pulled: list[int]) -> None:
        self.inner = load_model("oracle")
        self.name = self.inner.name
        self.pulled = pulled
        self.seen: list[int] = []

    async def respond(self, request):  # noqa: ANN001, ANN201
        self.seen.append(self.pulled[0])
        await asyncio.sleep(0.001)
        return await self.inner.respond(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_records_are_pulled_as_the_run_goes_and_rows_keep_frame_order(tmp_path):
    pulled = [0]

    def records() -> Iterator:
        for i in range(N):
            pulled[0] += 1
            yield make_record(i)

    model = Spy(pulled)
    opts = AskOptions(image_root=str(tmp_path), image="without")
    summary = asyncio.run(evaluate(records(), model, tmp_path / "run", protocols=("transitions",), opts=opts,
                                   policy=RunPolicy(concurrency=2, timeout_s=5.0), progress=False,
                                   tokenizer="regex"))
    # the first request left after the first record, not after the whole dataset was read
    assert model.seen[0] < 10
    # at most the window of frames in flight plus the writer's reorder buffer were ever read ahead
    assert max(model.seen) == N and sum(1 for s in model.seen if s < N) > len(model.seen) // 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    order = list(dict.fromkeys(r["frame_id"] for r in rows))
    assert order == [make_record(i).frame.frame_id for i in range(N)]
    assert summary["frames"] == N and summary["overall"] == 1.0 and summary["failures"] == 0
    assert not (tmp_path / "run" / "scores.jsonl.partial").exists()


def test_running_sums_equal_the_means_over_held_rows():
    rows_by_frame = [
        [{"protocol": "transitions", "image": True, "link": "V->Per", "stage": "perception", "family": "a",
          "type": "choice", "status": "correct", "score": 1.0, "frame_id": "f0"},
         {"protocol": "transitions", "image": True, "link": "Per->Pred", "stage": "prediction", "family": "b",
          "type": "number", "status": "partial", "score": 0.5, "frame_id": "f0"},
         {"protocol": "transitions", "image": True, "link": "V->Per", "stage": "perception", "family": "a",
          "type": "text", "status": "correct", "score": 1.0, "frame_id": "f0", "value": "x", "refs": ["x"]}],
        [{"protocol": "transitions", "image": True, "link": "V->Per", "stage": "perception", "family": "a",
          "type": "choice", "status": "wrong", "score": 0.0, "frame_id": "f1"},
         {"protocol": "transitions", "image": True, "link": "V->Pred", "stage": "prediction", "family": "b",
          "type": "choice", "status": "ambiguous", "score": 0.0, "frame_id": "f1"},
         {"protocol": "transitions", "image": True, "link": "V->Pred", "stage": "prediction", "family": "b",
          "type": "choice", "status": "correct", "score": 1.0, "frame_id": "f1"}],
    ]
    sums = ScoreSums()
    for i, rows in enumerate(rows_by_frame):
        sums.add_frame(make_record(i), rows)
    stages = stage_scores(sums)
    # perception: V->Per over typed rows = (1 + 0) / 2; prediction: mean of links Per->Pred 0.5 and V->Pred 1.0
    assert stages["perception"] == 0.5 and stages["prediction"] == 0.75 and stages["planning"] is None
    assert sums.answers == 4 and sums.text_hyps == ["x"] and sums.frames == 2
    assert sums.families["a"].mean() == 0.5 and sums.families["b"].mean() == 0.75
