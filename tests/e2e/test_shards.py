"""Sharding a fleet across Deployments: two operators on one namespace, each started with its own
`--selector`, and so its own leader Lease (as two Helm releases of the chart with `watch.selector`
would run, docs/sharding.md). Each rolls out only the Releases its selector matches; a Release
that no shard selects is left alone (no status, no finalizer); a Release relabelled into the other
shard is taken over by that shard.

Both operators run in their own namespace, outside the session operator's `test-*` glob.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from controller.aws.clients import AwsClients
from controller.testing.aws_world import seed_world
from controller.testing.operator import OperatorProcess
from controller.testing.ports import wait_until
from controller.testing.releases import release_for
from tests.e2e.conftest import Releases

pytestmark = pytest.mark.timeout(300)


def handled(log: Path) -> set[str]:
    """Names of the Releases this operator ran a pass for (its JSON log's pass lines)."""
    names = set()
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("message") == "pass":
            names.add(record["name"])
    return names


def test_two_shards_each_handle_only_their_own_releases(
    own_namespace: str, releases: Releases, aws: AwsClients, env_vars: dict[str, str],
    tmp_path: Path,
) -> None:
    ns = own_namespace

    worlds = {name: seed_world(aws, name=f"s{os.getpid()}{name}") for name in ("app-a", "app-b", "app-none")}
    labels = {"app-a": {"shard": "a"}, "app-b": {"shard": "b"}, "app-none": {}}

    def release(name: str, version: str, shard: dict[str, str]) -> dict[str, object]:
        body = release_for(worlds[name], name=name, namespace=ns, version=version, rollback={"window": "1s"})
        body["metadata"]["labels"] = shard
        return body

    logs = {s: tmp_path / f"shard-{s}.log" for s in ("a", "b")}
    shards = [
        OperatorProcess(env_vars, namespaces=(ns,), resync=2.0, log_path=logs[s],
                        extra_args=["--selector", f"shard={s}", "--log-format", "json"])
        for s in ("a", "b")
    ]
    try:
        for shard in shards:
            shard.start()
        for name in worlds:
            releases.apply(release(name, "1.0.0", labels[name]))
        releases.wait_phase(ns, "app-a", "Succeeded", 90, generation=1)
        releases.wait_phase(ns, "app-b", "Succeeded", 90, generation=1)
        # Both shards have had every watch event of app-none by now (it was created before them).
        none = releases.get(ns, "app-none")
        assert not none.get("status"), "a Release no shard selects got a status"
        assert not none["metadata"].get("finalizers"), "a Release no shard selects got a finalizer"
        # A pass logs its line after its status write: wait for the line, then check no other.
        wait_until(lambda: "app-a" in handled(logs["a"]) and "app-b" in handled(logs["b"]), 10,
                   "each shard's log naming the pass of its Release")
        assert handled(logs["a"]) == {"app-a"} and handled(logs["b"]) == {"app-b"}

        # Relabelled into shard b, with a new version: shard b rolls it out.
        releases.apply(release("app-a", "2.0.0", {"shard": "b"}))
        releases.wait_phase(ns, "app-a", "Succeeded", 90, generation=2)
        b_passes = [json.loads(line) for line in logs["b"].read_text().splitlines()]
        assert any(r.get("message") == "pass" and r.get("name") == "app-a" and r.get("revision") == 2 for r in b_passes)
        # Each shard keeps its own finalizer: shard a let go of app-a, and nobody fights over it.
        wait_until(lambda: len(releases.get(ns, "app-a")["metadata"].get("finalizers") or []) == 1, 20,
                   "app-a carries only shard b's finalizer")
        assert releases.get(ns, "app-a")["metadata"]["finalizers"] == releases.get(ns, "app-b")["metadata"]["finalizers"]
    finally:
        for shard in shards:
            shard.stop()
    assert "app-none" not in handled(logs["a"]) | handled(logs["b"])
