"""Kubernetes-style conditions on a Release status, pure.

A condition's `lastTransitionTime` moves only when its `status` changes (Kubernetes API
conventions); reason and message may change freely. Nothing here reads the clock: `now` is given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Sequence

from controller.api.release import Condition, ConditionType

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: Status,
    reason: str,
    message: str,
    now: datetime,
) -> list[Condition]:
    """Return `conditions` with `type_` set, keeping the transition time when status is unchanged.

    >>> from datetime import datetime, timezone
    >>> t0, t1 = datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 2, tzinfo=timezone.utc)
    >>> cs = set_condition([], ConditionType.READY, "False", "Progressing", "", t0)
    >>> cs = set_condition(cs, ConditionType.READY, "False", "Paused", "", t1)
    >>> cs[0].reason, cs[0].last_transition_time == t0
    ('Paused', True)
    """
    old = find(conditions, type_)
    when = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(type=type_, status=status, reason=reason, message=message[:32768], last_transition_time=when)
    out = [c for c in conditions if c.type != type_]
    out.append(new)
    # A stable order keeps `kubectl get -o yaml` diffs and the "status unchanged" check quiet.
    order = list(ConditionType)
    return sorted(out, key=lambda c: order.index(c.type))


def find(conditions: Sequence[Condition], type_: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
