"""End to end: a canary's preview step, with real traffic through the local load balancer.

The operator runs against the real kube-apiserver and moto; the data plane runs the task sets as
processes and routes by the listener's rules as moto stores them; Prometheus scrapes them and the
analysis measures the new version by its label. Two loads run at once the whole time: production
requests, and requests carrying the preview header. Sampled over the run, from the balancer's own
log: while the preview lasts, header requests reach the new version by the preview rule and
production requests never do; then the canary steps move production traffic, the promotion
completes, and the rule is gone.

With `frontend.canary`, the same header also reaches the new frontend: a local CloudFront edge
(`controller.testing.dataplane.edge`) serves viewers from the primary or the staging distribution as
the continuous deployment policy in moto routes them, and viewers with and without the header are
sampled over the whole release.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from controller.aws.clients import AwsClients
from controller.aws.preview import preview_rule_priority
from controller.testing.aws_world import WorldIds
from controller.testing.dataplane import (
    DataPlane,
    LoadGenerator,
    read_log,
    write_behaviour,
)
from controller.testing.dataplane.edge import Edge
from controller.testing.dataplane.scenario import STEADY_RATE, canary_release
from controller.testing.env import LocalEnvironment
from controller.testing.operator import OperatorProcess
from controller.testing.ports import serve_in_background
from tests.e2e.helpers import Releases, weights_by_colour

pytestmark = pytest.mark.timeout(300)

NAME = "app"
HEADER = "aws-cf-cd-release-preview"  # the default header; its value defaults to the version released
HEALTHY = {"default": {"error_rate": 0.0, "latency_ms": 5}}
PREVIEW_PATH, PRODUCTION_PATH = "/preview", "/"
STEPS = ({"preview": {"duration": "8s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})
# Both tiers previewed: long enough for the viewers' samples even when each request through the
# local edge (several reads of moto) takes a second or two on a loaded machine.
BOTH_TIERS_STEPS = ({"preview": {"duration": "20s"}}, {"setWeight": 50}, {"pause": {"duration": "3s"}})


class SmokeTest:
    """A preview hook's endpoint that does what a smoke test does: on each call, sends a few requests
    with the header it was given through the load balancer, and passes (200) only if the new version
    answered every one. Records what it was given and what answered."""

    def __init__(self, balancer_url: str) -> None:
        self.given: list[dict[str, Any]] = []
        self.answered: list[dict[str, int]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.given.append(body)
                preview = body.get("preview") or {}
                stats = LoadGenerator(balancer_url, rate=20, count=5, path=PREVIEW_PATH,
                                      headers={preview.get("header", "none"): preview.get("value", "")}).run()
                outer.answered.append(dict(stats.by_version))
                self.send_response(200 if stats.by_version == {"2.0.0": 5} else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/smoke"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def release(world: WorldIds, namespace: str, version: str, prometheus: str, smoke: SmokeTest) -> dict[str, Any]:
    body = canary_release(world, name=NAME, namespace=namespace, version=version, prometheus_url=prometheus,
                          steps=STEPS)
    body["spec"]["hooks"] = {"preview": [{"name": "smoke", "webhook": {"url": smoke.url, "timeout": "20s"}}]}
    return body


@pytest.fixture()
def plane(local_env: LocalEnvironment, env_vars: dict[str, str], world: WorldIds, tmp_path: Path) -> Iterator[DataPlane]:
    assert local_env.prometheus is not None
    behaviour = tmp_path / "behaviour.json"
    write_behaviour(behaviour, HEALTHY)
    dp = DataPlane(env_vars["AWS_ENDPOINT_URL"], env_vars["AWS_REGION"], world.cluster, world.service,
                   world.listener_arn, tmp_path / "dataplane", local_env.prometheus.targets_dir, behaviour)
    dp.start()
    try:
        dp.wait_serving({"1.0.0"}, timeout=30)
        yield dp
    finally:
        dp.stop()


def test_preview_header_reaches_the_new_version_while_production_never_does_then_promotion(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    local_env: LocalEnvironment, plane: DataPlane,
) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    owner = f"{namespace}/{NAME}"
    smoke = SmokeTest(plane.balancer_url)
    releases.apply(release(world, namespace, "1.0.0", prometheus, smoke))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)
    assert preview_rule_priority(aws.elbv2, world.listener_arn, owner) is None  # adopting previews nothing
    assert smoke.given == []

    production = LoadGenerator(plane.balancer_url, rate=STEADY_RATE, path=PRODUCTION_PATH).start()
    preview = LoadGenerator(plane.balancer_url, rate=15, path=PREVIEW_PATH, headers={HEADER: "2.0.0"}).start()
    try:
        started = time.time()
        releases.apply(release(world, namespace, "2.0.0", prometheus, smoke))
        # The rule is created, found by its tag, and routes by while the status says Preview.
        releases.wait(namespace, NAME, lambda s: preview_rule_priority(aws.elbv2, world.listener_arn, owner) is not None,
                      60, "the preview rule")
        seen_rule = releases.status(namespace, NAME)
        assert seen_rule.get("currentStep") in (0, 1), seen_rule  # at the preview (opening or holding it)
        status = releases.wait_phase(namespace, NAME, "Succeeded", 150, generation=2)
        # Some requests after the promotion, to see where the header goes then.
        plane.wait_for(lambda p: not p.rules, 10, "no listener rule left in the balancer")
        after_promotion = time.time()
        _wait_logged(plane, after_promotion, 20)
    finally:
        production.stop()
        preview.stop()
        smoke.close()

    # The preview hook ran once the route was there, was given the header, and its requests reached
    # the new version (it passed at its first call: nothing before it would have).
    assert [g["point"] for g in smoke.given] == ["preview"]
    assert smoke.given[0]["preview"] == {"header": HEADER, "value": "2.0.0"}
    assert smoke.answered == [{"2.0.0": 5}]

    assert status["backend"]["stableVersion"] == "2.0.0"
    assert weights_by_colour(aws, world) == {"blue": 0, "green": 100}
    assert preview_rule_priority(aws.elbv2, world.listener_arn, owner) is None
    assert "Promoted" in [e["reason"] for e in releases.events(namespace, NAME)]

    log = [e for e in read_log(plane.request_log) if e["time"] >= started]
    by_rule = [e for e in log if e["rule"] != "default"]
    assert by_rule, "no request was routed by the preview rule"
    # Only header requests were routed by the rule, and each reached the new version.
    assert {e["path"] for e in by_rule} == {PREVIEW_PATH}
    assert {e["version"] for e in by_rule} == {"2.0.0"}
    first, last = by_rule[0]["time"], by_rule[-1]["time"]
    assert last - first >= 6.0, f"the preview lasted {last - first:.1f}s of its 8s"

    # Production requests never reached the new version while the preview was on: not one of them
    # before the last request the rule routed (the rule goes before any weight moves).
    production_new = [e for e in log if e["path"] == PRODUCTION_PATH and e["version"] == "2.0.0"]
    assert production_new, "production never reached the new version after the preview"
    assert min(e["time"] for e in production_new) > last

    # Sampled each second of the preview: both loads flowed, each to its own version only.
    seconds: dict[int, Counter[tuple[str, Any]]] = defaultdict(Counter)
    for e in log:
        if first <= e["time"] <= last:
            seconds[int(e["time"] - first)][(e["path"], e["version"])] += 1
    assert len(seconds) >= 6
    for second, seen in sorted(seconds.items()):
        assert set(seen) <= {(PREVIEW_PATH, "2.0.0"), (PRODUCTION_PATH, "1.0.0")}, (second, seen)
        assert seen[(PREVIEW_PATH, "2.0.0")] > 0 and seen[(PRODUCTION_PATH, "1.0.0")] > 0, (second, seen)

    # After the promotion the rule is gone: header requests go by the default action like any other.
    late = [e for e in log if e["time"] > after_promotion]
    assert late and {e["rule"] for e in late} == {"default"} and {e["version"] for e in late} == {"2.0.0"}


def _wait_logged(plane: DataPlane, after: float, count: int, timeout: float = 20) -> None:
    """Wait until `count` requests were logged after `after` (the loads keep running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for e in read_log(plane.request_log) if e["time"] > after) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} requests logged after {after} in {timeout}s")


# --------------------------------------------------------------------------- one header through both tiers


class Viewers:
    """Viewers of the frontend through the local CloudFront edge, over time: one with the preview
    header, one without, each asking for the page every ~0.1 s; records (time, with header, the
    frontend version the page showed)."""

    def __init__(self, edge: Edge, header: dict[str, str]) -> None:
        self.edge, self.header = edge, header
        self.samples: list[tuple[float, bool, str]] = []
        self.policy: list[tuple[float, bool]] = []  # (when a read began, whether it routed by a header)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(h,), daemon=True) for h in (True, False)]
        self._threads.append(threading.Thread(target=self._read_policy, daemon=True))

    def start(self) -> Viewers:
        for t in self._threads:
            t.start()
        return self

    def _run(self, with_header: bool) -> None:
        while not self._stop.is_set():
            req = urllib.request.Request(self.edge.url + "/", headers=self.header if with_header else {})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    body = resp.read().decode()
            except OSError as exc:
                body = f"error {exc}"
            version = next((v for v in ("2.0.0", "1.0.0") if f"frontend {v}" in body), body)
            self.samples.append((time.time(), with_header, version))
            self._stop.wait(0.1)

    def _read_policy(self) -> None:
        """The primary's continuous deployment policy as the edge reads it, every ~0.1 s."""
        while not self._stop.is_set():
            began = time.time()
            try:
                self.policy.append((began, self.edge.routing().kind == "SingleHeader"))
            except Exception:  # noqa: BLE001 - a failed read says nothing either way
                pass
            self._stop.wait(0.1)

    def latest(self, with_header: bool) -> str | None:
        return next((v for _, h, v in reversed(self.samples) if h == with_header), None)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=15)


def _frontend(world: WorldIds, version: str) -> dict[str, Any]:
    return {"version": version, "canary": {"steps": [{"setWeight": 10}]},
            "cloudfront": {"distributionId": world.distribution_id, "originId": world.origin_id, "bucket": world.bucket}}


def test_one_header_reaches_the_new_frontend_and_the_new_backend_while_viewers_without_it_get_the_old_ones(
    operator: OperatorProcess, releases: Releases, namespace: str, world: WorldIds, aws: AwsClients,
    local_env: LocalEnvironment, plane: DataPlane, env_vars: dict[str, str],
) -> None:
    assert local_env.prometheus is not None
    prometheus = local_env.prometheus.url
    for version in ("1.0.0", "2.0.0"):
        aws.s3.put_object(Bucket=world.bucket, Key=f"releases/{version}/index.html",
                          Body=f"<html>frontend {version}</html>".encode(), ContentType="text/html")

    def release(version: str) -> dict[str, Any]:
        body = canary_release(world, name=NAME, namespace=namespace, version=version, prometheus_url=prometheus,
                              steps=BOTH_TIERS_STEPS)
        body["spec"]["frontend"] = _frontend(world, version)
        return body

    releases.apply(release("1.0.0"))
    releases.wait_phase(namespace, NAME, "Succeeded", 60, generation=1)

    edge = Edge(env_vars["AWS_ENDPOINT_URL"], world.distribution_id)
    edge.start()
    viewers = Viewers(edge, {HEADER: "2.0.0"}).start()
    production = LoadGenerator(plane.balancer_url, rate=STEADY_RATE, path=PRODUCTION_PATH).start()
    preview = LoadGenerator(plane.balancer_url, rate=15, path=PREVIEW_PATH, headers={HEADER: "2.0.0"}).start()
    try:
        started = time.time()
        releases.apply(release("2.0.0"))
        # The staging distribution serves the new frontend to the header while the backend is previewed.
        at_preview = releases.wait(namespace, NAME, lambda s: viewers.latest(True) == "2.0.0", 90,
                                   "the new frontend behind the header")
        assert at_preview.get("currentStep") in (0, 1) and at_preview["backend"].get("canaryVersion") == "2.0.0", \
            at_preview
        assert at_preview["frontend"].get("stableVersion") == "1.0.0"
        # Then the backend's steps and promotion, then the frontend's canary and promotion, as before.
        status = releases.wait(namespace, NAME, lambda s: s.get("phase") == "Succeeded" and s.get(
            "observedGeneration") == 2 and (s.get("frontend") or {}).get("stableVersion") == "2.0.0", 200,
                               "both tiers at 2.0.0")
        settled = time.time()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(t > settled and not h for t, h, _ in viewers.samples):
            time.sleep(0.2)
    finally:
        viewers.stop()
        production.stop()
        preview.stop()
        edge.stop()

    assert status["backend"]["stableVersion"] == "2.0.0"
    samples = [s for s in viewers.samples if s[0] >= started]
    log = [e for e in read_log(plane.request_log) if e["time"] >= started]
    by_rule = [e for e in log if e["rule"] != "default"]
    assert by_rule and {e["version"] for e in by_rule} == {"2.0.0"}
    preview_end = by_rule[-1]["time"]
    staged = [t for t, h, v in samples if h and v == "2.0.0"]
    # The frontend's preview: from the first page the edge staged to the header until the last read
    # of the policy that still routed the header (its start: a page that ended before then was routed
    # by a read before it). The operator lifts the staging header, then the backend's rule, in one
    # pass; the local balancer sees the rule go one poll of moto later, so the backend's preview
    # (until its last rule-routed request) outlasts the frontend's by that much.
    routed = [t for t, on in viewers.policy if t >= min(staged) and on]
    assert routed, "no read of the policy ever saw it route by the header"
    window = (min(staged), max(routed))
    assert window[1] - window[0] >= 4.0, f"the new frontend was previewed for {window[1] - window[0]:.1f}s only"

    # While both were previewed, sampled over time: the header got the new frontend (edge) and the new
    # backend (balancer); viewers and requests without it got the old ones, every time.
    inside = [s for s in samples if window[0] <= s[0] <= window[1]]
    assert {v for _, h, v in inside if h} == {"2.0.0"}
    assert {v for _, h, v in inside if not h} == {"1.0.0"}
    assert len([s for s in inside if s[1]]) >= 10 and len([s for s in inside if not s[1]]) >= 10
    backend_inside = [e for e in log if window[0] <= e["time"] <= window[1]]
    assert {e["version"] for e in backend_inside if e["path"] == PREVIEW_PATH} == {"2.0.0"}
    assert {e["version"] for e in backend_inside if e["path"] == PRODUCTION_PATH} == {"1.0.0"}

    # Without the header, no viewer saw the new frontend before the backend was promoted: the first one
    # came after the last production request the old backend answered.
    unheadered_new = [t for t, h, v in samples if not h and v == "2.0.0"]
    last_old_backend = max(e["time"] for e in log if e["path"] == PRODUCTION_PATH and e["version"] == "1.0.0")
    assert unheadered_new, "no viewer without the header ever got the new frontend"
    assert min(unheadered_new) > last_old_backend
    # Nor did anyone without the header between the preview's start and the backend's promotion.
    assert all(v == "1.0.0" for t, h, v in samples if not h and t <= last_old_backend)

    # At the end every viewer gets the new frontend, and the policy routes by no header any more.
    assert {v for t, h, v in samples if t > settled} == {"2.0.0"}
    primary = aws.cloudfront.get_distribution_config(Id=world.distribution_id)["DistributionConfig"]
    policy = aws.cloudfront.get_continuous_deployment_policy(Id=primary["ContinuousDeploymentPolicyId"])
    traffic = policy["ContinuousDeploymentPolicy"]["ContinuousDeploymentPolicyConfig"]
    assert traffic["TrafficConfig"]["Type"] == "SingleWeight" and not traffic["Enabled"]
    reasons = [e["reason"] for e in releases.events(namespace, NAME)]
    assert "Promoted" in reasons and "FrontendPromoted" in reasons
