"""`kubectl release promote [--full]` and every verb on a Release being deleted: what is sent, and
what is refused (exit 1, saying why, nothing written)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.cli.common import EXIT_REFUSED, CliError
from controller.cli.steer import request
from controller.planner.decision import FULL_SUFFIX, Requests



class Api:
    """The two calls `request` makes of the Kubernetes API: read the Release, write a request."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj, self.sent = obj, []  # type: ignore[var-annotated]

    def current(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def request(self, namespace: str, name: str, kind: str, suffix: str = "") -> str:
        self.sent.append((kind, suffix))
        return "token"


def paused(deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "shop", "generation": 2}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T15:00:00Z"
    return {"metadata": meta, "spec": {"backend": {"version": "2.0.0"}},
            "status": {"phase": "Paused", "observedGeneration": 2, "backend": {"stableVersion": "1.0.0"}}}


def test_promote_ends_the_pause_and_full_skips_every_step() -> None:
    api = Api(paused())
    said = request(api, "promote", "shop", "shop")
    assert "ends the current pause" in said and api.sent == [("promote", "")]
    said = request(api, "promote", "shop", "shop", full=True)
    assert "skips every remaining step" in said and api.sent[-1] == ("promote", FULL_SUFFIX)
    assert Requests(promote="t" + FULL_SUFFIX).promote_full and not Requests(promote="t").promote_full


@pytest.mark.parametrize("kind", ["promote", "abort", "retry"])
def test_a_release_being_deleted_refuses_every_request(kind: str) -> None:
    api = Api(paused(deleting=True))
    with pytest.raises(CliError) as refused:
        request(api, kind, "shop", "shop")
    assert refused.value.code == EXIT_REFUSED and "being deleted" in str(refused.value) and api.sent == []
