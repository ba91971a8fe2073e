"""The local environment is real: a kube-apiserver with RBAC, moto over HTTP, a scraping Prometheus,
and `down` leaves no process behind, even when called from another process than `up`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from controller.testing.binaries import KUBERNETES_VERSION
from controller.testing.env import LocalEnvironment
from controller.testing.ports import process_alive, wait_until
from controller.testing.prometheus import query

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def _kubectl(env: LocalEnvironment, *args: str) -> str:
    proc = subprocess.run(
        ["kubectl", *args],
        env={**os.environ, **env.env_vars()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_kubectl_reaches_the_api_server_through_the_kubeconfig(local_env: LocalEnvironment) -> None:
    version = json.loads(_kubectl(local_env, "version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    namespaces = _kubectl(local_env, "get", "namespaces", "-o", "name").split()
    assert {"namespace/default", "namespace/kube-system"} <= set(namespaces)


def test_rbac_refuses_an_identity_without_bindings_and_admits_it_once_bound(
    local_env: LocalEnvironment, kube_api: k8s_client.ApiClient
) -> None:
    assert local_env.kube is not None
    kubeconfig = local_env.kube.service_account_kubeconfig("default", "env-check")
    restricted = k8s_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        with pytest.raises(ApiException) as refused:
            k8s_client.CoreV1Api(restricted).list_namespaced_secret("default")
        assert refused.value.status == 403
        assert "system:serviceaccount:default:env-check" in str(refused.value.body)

        rbac = k8s_client.RbacAuthorizationV1Api(kube_api)
        rbac.create_namespaced_role("default", {
            "metadata": {"name": "env-check-secrets"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
        })
        rbac.create_namespaced_role_binding("default", {
            "metadata": {"name": "env-check-secrets"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "env-check-secrets"},
            "subjects": [{"kind": "ServiceAccount", "name": "env-check", "namespace": "default"}],
        })
        # The authorizer sees new bindings through an informer: allow it a moment.
        deadline = time.monotonic() + 10
        while True:
            try:
                k8s_client.CoreV1Api(restricted).list_namespaced_secret("default")
                break
            except ApiException as exc:
                if exc.status != 403 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # Bound to secrets only: everything else is still refused.
        with pytest.raises(ApiException) as still_refused:
            k8s_client.CoreV1Api(restricted).list_namespaced_config_map("default")
        assert still_refused.value.status == 403
    finally:
        restricted.close()


def test_moto_answers_ecs_over_http(aws_env: dict[str, str]) -> None:
    ecs = boto3.client(
        "ecs",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=aws_env["AWS_REGION"],
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
    )
    ecs.create_cluster(clusterName="env-check")
    arns = ecs.list_clusters()["clusterArns"]
    assert any(arn.endswith(":cluster/env-check") for arn in arns), arns


def test_prometheus_scrapes_itself_and_registered_targets(local_env: LocalEnvironment) -> None:
    prometheus = local_env.prometheus
    assert prometheus is not None
    url = local_env.env_vars()["PROMETHEUS_URL"]
    # Prometheus's own port doubles as a target registered the way the data plane registers one.
    prometheus.register_target("env-check", f"127.0.0.1:{prometheus.port}", {"app": "env-check"})

    def sample(promql: str) -> list[str]:
        return [r["value"][1] for r in query(url, promql)]

    deadline = time.monotonic() + 15
    while not (sample('up{job="prometheus"}') == ["1"] and sample('up{app="env-check"}') == ["1"]):
        assert time.monotonic() < deadline, (sample("up"), prometheus.config_path.read_text())
        time.sleep(0.5)

    prometheus.unregister_target("env-check")
    deadline = time.monotonic() + 15
    while any(t["labels"].get("app") == "env-check" for t in _active_targets(url)):
        assert time.monotonic() < deadline, "target still scraped after unregister"
        time.sleep(0.5)


def _active_targets(url: str) -> list[dict[str, dict[str, str]]]:
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=5) as resp:
        targets: list[dict[str, dict[str, str]]] = json.load(resp)["data"]["activeTargets"]
    return targets


def test_dev_up_in_one_process_and_down_in_another_leaves_no_process(tmp_path: Path) -> None:
    """What `release-controller dev up` / `dev down` do: each call is its own short-lived process."""

    def run(call: str) -> float:
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-c",
             f"from pathlib import Path; from controller.testing.env import LocalEnvironment; "
             f"LocalEnvironment(Path({str(tmp_path)!r})).{call}"],
            cwd=ROOT, check=True, timeout=300,
        )
        return time.monotonic() - started

    try:
        _up_then_down_elsewhere(tmp_path, run)
    finally:
        LocalEnvironment(tmp_path).down()  # a no-op unless an assertion left it running


def _up_then_down_elsewhere(tmp_path: Path, run: Callable[[str], float]) -> None:
    up_seconds = run("up()")
    env = LocalEnvironment(tmp_path)
    processes = env.processes
    assert {p.name for p in processes} == {"etcd", "kube-apiserver", "moto", "prometheus"}
    # The process that started them has exited; they still serve.
    assert all(process_alive(p.pid, p.start_time) for p in processes)
    assert "export KUBECONFIG=" in (tmp_path / "env.sh").read_text()
    assert json.loads(_kubectl(env, "get", "namespace", "default", "-o", "json"))["metadata"]["name"] == "default"

    down_seconds = run("down()")
    assert not [p for p in processes if process_alive(p.pid, p.start_time)]
    assert not (tmp_path / "env.sh").exists()
    print(f"\nenvironment up in {up_seconds:.1f}s, down in {down_seconds:.1f}s (incl. interpreter start)")


def test_several_environments_started_at_once_each_get_their_own_ports(tmp_path: Path) -> None:
    """Three `release-controller dev up` at the same moment (as several pytest-xdist workers, or
    engineers on one machine, start theirs): all come up, on ports of their own (they failed with
    "Address already in use" when ports were picked by binding port 0 and closing it)."""
    dirs = [tmp_path / f"env{i}" for i in range(3)]
    cli = str(Path(sys.executable).with_name("release-controller"))
    ups = [subprocess.Popen([cli, "dev", "up", "--dir", str(d)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for d in dirs]
    try:
        outputs = [up.communicate(timeout=300)[0] for up in ups]
        assert [up.returncode for up in ups] == [0, 0, 0], outputs
        envs = [LocalEnvironment(d) for d in dirs]
        endpoints = [(e.env_vars()["AWS_ENDPOINT_URL"], e.env_vars()["PROMETHEUS_URL"], e.kube_server().url)
                     for e in envs]
        assert len({url for three in endpoints for url in three}) == 9, endpoints
        for env in envs:  # each answers as itself: its own API server, moto and Prometheus
            assert json.loads(_kubectl(env, "get", "namespace", "default", "-o", "json"))["metadata"]["name"] == "default"
            with urllib.request.urlopen(f"{env.env_vars()['AWS_ENDPOINT_URL']}/moto-api/", timeout=5) as resp:
                assert resp.status == 200
            url = env.env_vars()["PROMETHEUS_URL"]
            wait_until(lambda: bool(query(url, 'up{job="prometheus"} == 1')), 20, f"{url} scraping itself")  # noqa: B023
    finally:
        for d in dirs:
            LocalEnvironment(d).down()
