"""The fake AWS world itself: it must know every action kind the planner can emit, so that no
planner test passes because the world ignored (or refused) an action."""

from __future__ import annotations

from typing import get_args

from controller.planner.actions import Action

from tests.planner.sim import APPLY


def test_the_world_applies_every_action_kind() -> None:
    assert set(APPLY) == set(get_args(Action))
