"""Task definitions by ARN, described once per role for the life of the process."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from controller.aws import acting


class TaskDefinitionCache:
    """Task definitions by ARN, kept for the life of the process (a revision never changes), apart
    for each role the calls are made with (`controller.aws.acting.role`).

    One process acts for every namespace, each perhaps with a role of its own: a task definition
    described with one Release's role is never handed to a pass acting with another, whose role may
    not be allowed to read it (its container definitions, environment included).
    """

    def __init__(self) -> None:
        self._by_arn: dict[tuple[str | None, str], Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._by_arn.get((acting.role(), arn))

    def put(self, td: Mapping[str, Any], *names: str) -> None:
        """Keep `td` for the role in scope, under its ARN and any other name it was asked by."""
        role = acting.role()
        with self._lock:
            for name in (td["taskDefinitionArn"], *names):
                self._by_arn[(role, name)] = td

    def fetch(self, ecs: Any, arn: str) -> Mapping[str, Any]:
        """The task definition, described at most once per ARN (or family:revision) and role."""
        found = self.get(arn)
        if found is None:
            found = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self.put(found, arn)
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_arn)
