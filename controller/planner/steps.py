"""The step vocabulary every task-set strategy is written in, pure.

A strategy is a `Plan`: a list of steps, then a promotion. A `SetStep` names a desired state
(canary scale, stable scale, canary traffic weight) and is done when AWS is observed in it; a
`PauseStep` holds the previous state for a while (or until `promote`); a `PreviewStep` holds the new
version at full scale with no production weight, reached only by requests with a header. Promotion puts the canary at
full scale and full weight and makes it the primary task set; the previous stable task set then
stays warm for `keep_warm` so a rollback is one weight change.

This module only describes plans; `phases.walker` walks them (`phases.backend` for task sets,
`phases.frontend` for the CloudFront staging canary) and `fleet.Fleet.promote` converges on `PROMOTION`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from controller.api.reasons import Reason
from controller.api.release import StrategyType
from controller.api.types import format_duration

# Never create a canary task set at 0%: a canary with no task cannot be measured or previewed.
MIN_CANARY_SCALE = 1.0


@dataclass(frozen=True)
class SetStep:
    canary_scale: float
    stable_scale: float | None  # None: leave the stable task set's scale as it is
    canary_weight: int
    label: str
    kind: str = Reason.SET_WEIGHT  # the Event reason when the step begins


@dataclass(frozen=True)
class PauseStep:
    duration: timedelta | None  # None: until a promote request
    analysed: bool  # when the time is up, advance only on a Passed analysis verdict
    label: str
    kind: str = Reason.PAUSE


@dataclass(frozen=True)
class PreviewStep:
    """The new version at full scale with no production weight (`state`), reached only by requests
    carrying `header_name: header_value` (a preview route). A written preview is two of these: the
    one that opens it (done once the state and the route are observed, as a SetStep), then the one
    that holds it for `duration` and, when `analysed`, until the analysis has Passed (as a timed
    pause; its timer starts once the route is there). The route exists while the rollout is at one
    of them and at no other time (`phases.preview`)."""

    duration: timedelta
    analysed: bool
    header_name: str
    header_value: str
    hold: bool  # False: opening (lands the state and the route); True: holding for `duration`
    label: str
    kind: str = Reason.PREVIEW

    @property
    def state(self) -> SetStep:
        """The task sets and weights held during the preview: as a blue-green green, no production weight."""
        return PREVIEW_STATE


Step = SetStep | PauseStep | PreviewStep


@dataclass(frozen=True)
class Plan:
    strategy: StrategyType
    steps: tuple[Step, ...]
    keep_warm: timedelta  # how long the previous stable task set outlives the promotion
    analysed: bool  # whether analysis runs during the rollout and the keep-warm window

    def holding(self, index: int) -> SetStep | None:
        """The state a step at `index` must hold: the last SetStep before it, None when none."""
        for step in reversed(self.steps[:index]):
            if isinstance(step, SetStep):
                return step
        return None


def canary_scale(weight: int) -> float:
    """The canary task set's scale for a traffic weight: the weight, never below the minimum.

    >>> canary_scale(10), canary_scale(0)
    (10.0, 1.0)
    """
    return max(float(weight), MIN_CANARY_SCALE)


def pause_label(duration: timedelta | None) -> str:
    """How a pause step is named in events and status.

    >>> pause_label(timedelta(seconds=30)), pause_label(None)
    ('Pause 30s', 'Pause until promote')
    """
    return f"Pause {format_duration(duration)}" if duration is not None else "Pause until promote"


PREVIEW_STATE = SetStep(canary_scale=100.0, stable_scale=100.0, canary_weight=0, label="Preview", kind=Reason.PREVIEW)
"""The state a preview holds: the new version at full scale beside the stable one, which keeps all weight."""

PROMOTION = SetStep(canary_scale=100.0, stable_scale=None, canary_weight=100, label="Promote", kind=Reason.PROMOTING)
"""The state promotion converges on: the canary at full scale with all traffic (then primary)."""
