"""`kubectl release abort` after an irreversible hook: refused without --force (exit 1, naming the
hook), sent with it, and the request's token says so for the planner."""

from __future__ import annotations

from typing import Any

import pytest

from controller.cli.common import EXIT_REFUSED, CliError
from controller.cli.steer import judge_request, request
from controller.planner.decision import FORCE_SUFFIX, Requests


def release(irreversible: bool, passed: bool, revision: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": "shop", "generation": 2},
        "spec": {"backend": {"version": "2.0.0"},
                 "hooks": {"preRollout": [{"name": "migrate", "irreversible": irreversible, "webhook": {"url": "http://m/"}}]}},
        "status": {"phase": "Paused", "observedGeneration": 2, "revision": 2, "backend": {"stableVersion": "1.0.0"},
                   "hooks": [{"point": "preRollout", "name": "migrate", "revision": revision, "startedAt": "t",
                              "passedAt": "t" if passed else None}]},
    }


class Api:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj, self.sent = obj, []  # type: ignore[var-annotated]

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        return self.obj

    def request(self, namespace: str, name: str, kind: str, suffix: str = "") -> str:
        self.sent.append((kind, suffix))
        return "token"


@pytest.mark.parametrize("irreversible, passed, revision, refused", [
    (True, True, 2, True),     # the migration ran in this rollout: going back needs --force
    (True, False, 2, False),   # not run yet: nothing to protect
    (False, True, 2, False),   # reversible
    (True, True, 1, False),    # an earlier rollout's record
])
def test_abort_is_refused_only_after_an_irreversible_hook_passed_in_this_rollout(
    irreversible: bool, passed: bool, revision: int, refused: bool,
) -> None:
    judged = judge_request("abort", release(irreversible, passed, revision))
    assert judged.send is not refused
    if refused:
        assert "irreversible hook migrate" in judged.message and "--force" in judged.message
    assert judge_request("abort", release(irreversible, passed, revision), force=True).send


def test_request_refuses_with_exit_1_and_sends_force(monkeypatch: pytest.MonkeyPatch) -> None:
    import controller.cli.steer as verbs

    api = Api(release(True, True))
    monkeypatch.setattr(verbs, "get_release", lambda api_, ns, name: api.obj)
    with pytest.raises(CliError) as err:
        request(api, "abort", "ns", "shop")
    assert err.value.code == EXIT_REFUSED and api.sent == []
    assert "abort --force requested" in request(api, "abort", "ns", "shop", force=True)
    assert api.sent == [("abort", FORCE_SUFFIX)]


def test_the_planner_reads_force_from_the_token() -> None:
    assert Requests(abort="2026-01-01T00:00:00+00:00#ab12cd" + FORCE_SUFFIX).abort_forced
    assert not Requests(abort="2026-01-01T00:00:00+00:00#ab12cd").abort_forced
    assert not Requests().abort_forced
    assert Requests(abort="deleted:uid-1").abort_forced  # deleting a Release mid-rollout is a forced abort
