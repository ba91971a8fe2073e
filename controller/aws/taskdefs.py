"""Task definitions by ARN, described once for the life of the process."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class TaskDefinitionCache:
    """Task definitions by ARN, kept for the life of the process: a revision never changes."""

    def __init__(self) -> None:
        self._by_arn: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, arn: str) -> Mapping[str, Any] | None:
        with self._lock:
            return self._by_arn.get(arn)

    def put(self, td: Mapping[str, Any]) -> None:
        with self._lock:
            self._by_arn[td["taskDefinitionArn"]] = td

    def fetch(self, ecs: Any, arn: str) -> Mapping[str, Any]:
        """The task definition, described at most once per ARN."""
        found = self.get(arn)
        if found is None:
            found = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            self.put(found)
            if found["taskDefinitionArn"] != arn:  # asked by family:revision; remember that name too
                with self._lock:
                    self._by_arn[arn] = found
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_arn)
