"""The data model: frames of privileged world state, typed answers, the QA graph, the manifest.

Conventions (every layer relies on them):
- world coordinates are the simulator's own, in metres; headings in radians;
- ego-relative coordinates: ``rel_x_m`` forward along the ego heading, ``rel_y_m`` to the ego's LEFT;
- agent ids are assigned by the source, stable within an episode; the ego is always id 0;
- action names are the scenario's meta-action names (``LANE_LEFT``, ``IDLE``, ``LANE_RIGHT``,
  ``FASTER``, ``SLOWER``); a scenario lists only the ones it really has.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

Stage = Literal["perception", "prediction", "planning", "behavior"]
STAGES: tuple[Stage, ...] = ("perception", "prediction", "planning", "behavior")
STAGE_SHORT: dict[str, str] = {"perception": "Per", "prediction": "Pred", "planning": "Plan", "behavior": "Beh"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- world state


class Agent(_Model):
    """One traffic participant (the ego included) at one instant."""

    id: int = Field(description="stable within an episode; the ego is 0")
    category: str = "car"
    x_m: float = Field(description="world x [m]")
    y_m: float = Field(description="world y [m]")
    heading_rad: float = Field(description="world heading [rad]")
    speed_mps: float = Field(description="speed [m/s]")
    length_m: float = 5.0
    width_m: float = 2.0
    lane_id: str | None = Field(default=None, description="lane key 'from>to>index' in the road network")
    rel_x_m: float = Field(default=0.0, description="ego-relative, forward [m]")
    rel_y_m: float = Field(default=0.0, description="ego-relative, to the left [m]")
    visible: bool = Field(default=True, description="inside the rendered image")
    boxes: dict[str, list[float]] = Field(
        default_factory=dict, description="camera -> pixel box [x0, y0, x1, y1]"
    )
    crashed: bool = False


class Lane(_Model):
    """One lane of the road network near the ego."""

    id: str
    polyline_m: list[tuple[float, float]] = Field(description="centre line, world [m]")
    width_m: float
    left_id: str | None = None
    right_id: str | None = None
    speed_limit_mps: float | None = None


class FutureState(_Model):
    """An agent's state at a future time, from a privileged forward simulation."""

    t_s: float = Field(description="time after the frame [s]")
    x_m: float
    y_m: float
    speed_mps: float
    lane_id: str | None = None
    rel_x_m: float = Field(default=0.0, description="relative to the ego at the same future time [m]")
    rel_y_m: float = Field(default=0.0, description="relative to the ego at the same future time, left [m]")


class Frame(_Model):
    """The privileged state of one decision step."""

    frame_id: str = Field(description="{source}/{scenario}/{episode}/{step}")
    source: str
    scenario: str
    episode: int
    step: int
    seed: int
    t_s: float = Field(description="simulated time since reset [s]")
    ego: Agent
    agents: list[Agent] = Field(default_factory=list, description="other agents, not the ego")
    lanes: list[Lane] = Field(default_factory=list)
    signals: list[dict[str, Any]] = Field(default_factory=list)
    command: str = "follow lane"
    actions: list[str] = Field(description="meta-actions the scenario has, in the env's order")
    available_actions: list[str] = Field(default_factory=list, description="actions allowed now")
    images: dict[str, str] = Field(default_factory=dict, description="camera -> path relative to dataset")
    history_images: list[str] = Field(default_factory=list, description="K previous frames, oldest first")
    future: dict[int, list[FutureState]] = Field(
        default_factory=dict, description="agent id -> future states (ego id 0 keeps lane and speed)"
    )
    horizon_s: float = Field(default=3.0, description="prediction look-ahead horizon H [s]")
    meta: dict[str, Any] = Field(default_factory=dict)

    def agent(self, agent_id: int) -> Agent | None:
        """The agent with this id (0 = ego), or None."""
        if agent_id == 0:
            return self.ego
        return next((a for a in self.agents if a.id == agent_id), None)


# --------------------------------------------------------------------------- typed answers


class ChoiceAnswer(_Model):
    """Pick one option; several can be acceptable, one is preferred."""

    type: Literal["choice"] = "choice"
    options: list[str]
    acceptable: list[int] = Field(description="indices graded 1")
    preferred: int
    safe: list[int] | None = Field(default=None, description="indices in the safe set; a pick outside is unsafe")


class BooleanAnswer(_Model):
    """Yes / no. ``accept_both`` when the frame sits inside a rule's documented band."""

    type: Literal["boolean"] = "boolean"
    value: bool
    accept_both: bool = False


class NumberAnswer(_Model):
    """A quantity with a unit; None means "none" (e.g. no time to collision)."""

    type: Literal["number"] = "number"
    value: float | None
    unit: str
    abs_tol: float | None = None
    rel_tol: float | None = None


class ObjectsAnswer(_Model):
    """A set of agents, by id; positions (ego-relative, [m]) allow matching by position."""

    type: Literal["objects"] = "objects"
    ids: list[int]
    positions_m: list[tuple[float, float]] = Field(default_factory=list)
    match_radius_m: float = 4.0
    optional_ids: list[int] = Field(
        default_factory=list, description="inside a rule's band: neither required nor penalised"
    )


class RankingAnswer(_Model):
    """Agents ordered most important first."""

    type: Literal["ranking"] = "ranking"
    ids: list[int]


class TextAnswer(_Model):
    """Free text, scored by language metrics apart from ``overall``."""

    type: Literal["text"] = "text"
    references: list[str]


Answer = Annotated[
    Union[ChoiceAnswer, BooleanAnswer, NumberAnswer, ObjectsAnswer, RankingAnswer, TextAnswer],
    Field(discriminator="type"),
]


class QA(_Model):
    """One node of a frame's chain graph."""

    qid: str = Field(description="unique in the frame, e.g. 'pred.cut_in.v3'")
    family: str = Field(description="question family, e.g. 'pred.cut_in'")
    stage: Stage
    question: str
    answer: Answer
    explanation: str = ""
    parents: list[str] = Field(default_factory=list, description="qids this answer depends on")
    objects: list[int] = Field(default_factory=list, description="agent ids it mentions")
    ambiguous: bool = Field(default=False, description="inside a band with no safe answer: not scored")
    meta: dict[str, Any] = Field(default_factory=dict, description="e.g. planner votes, margins")
    # Checked rewordings from 'drivechain polish' (the template is variant 0); omitted when empty,
    # so a dataset that was never polished keeps its bytes and hash.
    question_variants: list[str] = Field(
        default_factory=list, exclude_if=lambda v: not v, description="variants 1..K of the question"
    )
    explanation_variants: list[str] = Field(
        default_factory=list, exclude_if=lambda v: not v, description="checked rewordings of the explanation"
    )

    def question_variant(self, index: int) -> str | None:
        """Variant ``index`` of the question (0 = the template), or None if it has no such variant."""
        if index == 0:
            return self.question
        return self.question_variants[index - 1] if 0 < index <= len(self.question_variants) else None


class ChainGraph(_Model):
    """The QA DAG of one frame, stages in order."""

    nodes: list[QA] = Field(default_factory=list)

    def stage(self, stage: str) -> list[QA]:
        """The nodes of one stage, in graph order."""
        return [n for n in self.nodes if n.stage == stage]

    def get(self, qid: str) -> QA | None:
        """The node with this qid, or None."""
        return next((n for n in self.nodes if n.qid == qid), None)


class FrameRecord(_Model):
    """One line of frames.jsonl: a frame and its graph."""

    frame: Frame
    graph: ChainGraph


class Shard(_Model):
    """One record file of a sharded dataset, as listed in its manifest."""

    file: str = Field(description="file name inside the dataset folder, e.g. frames-00000-of-00004.jsonl")
    frames: int = Field(ge=0)
    sha256: str


class Manifest(_Model):
    """manifest.json of a dataset folder."""

    schema_version: str = SCHEMA_VERSION
    name: str
    source: str
    config: dict[str, Any]
    seed: int
    versions: dict[str, str] = Field(description="package -> version")
    counts: dict[str, Any] = Field(default_factory=dict)
    frames_sha256: str = Field(description="sha256 of frames.jsonl, or of the shards' concatenation in order")
    images_sha256: str = ""
    shards: list[Shard] | None = Field(default=None, description="the record files when the dataset is sharded")
