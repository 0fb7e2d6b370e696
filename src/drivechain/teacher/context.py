"""What every question family sees for one frame: the frame, the privileged world, the nodes so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drivechain.schema import QA, Frame

if TYPE_CHECKING:  # the source layer sits below the teacher; import only for type hints
    from drivechain.sources.base import Rollout, Source


@dataclass
class TeacherContext:
    """One frame's annotation state, shared by the families of every stage in order.

    ``world`` is a privileged simulator positioned at the frame (None for recorded logs: families
    that need a look-ahead then emit nothing). ``nodes`` holds the QA nodes built so far, in stage
    order, so later families can name their parents. ``shared`` is scratch space between families
    of the same frame (e.g. planner results), never written to the dataset.
    """

    frame: Frame
    world: "Source | None" = None
    horizon_s: float = 3.0
    nodes: list[QA] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)
    _rollouts: dict[tuple[str, bool, bool], "Rollout"] = field(default_factory=dict, repr=False)

    def rollout(self, action: str, reduced: bool = True, ego_idm: bool = False) -> "Rollout":
        """The world's look-ahead for ``action`` over the horizon, cached per (action, reduced, ego_idm).

        ego_idm: after the action's first decision step the ego follows IDM longitudinally (the
        safety look-ahead); otherwise it keeps lane and target speed (what prediction questions ask).
        """
        if self.world is None:
            raise ValueError("no privileged world in this context (recorded log): cannot roll out")
        key = (action, reduced, ego_idm)
        if key not in self._rollouts:
            if ego_idm:
                self._rollouts[key] = self.world.rollout(action, self.horizon_s, reduced=reduced, ego_idm=True)
            else:
                self._rollouts[key] = self.world.rollout(action, self.horizon_s, reduced=reduced)
        return self._rollouts[key]

    def node(self, qid: str) -> QA | None:
        """The node built so far with this qid, or None."""
        return next((n for n in self.nodes if n.qid == qid), None)

    def qids(self, family_prefix: str) -> list[str]:
        """Qids built so far whose family equals or starts with ``family_prefix``, in build order."""
        return [n.qid for n in self.nodes if n.family == family_prefix or n.qid.startswith(family_prefix)]
