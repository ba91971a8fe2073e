"""Real metric sources for the provider tests: a Prometheus server scraping a tiny exporter, a moto
server for CloudWatch, and a local health endpoint.

The Prometheus here is a minimal stand-in used until `controller.testing.prometheus` exists: the
real `/usr/bin/prometheus` on a free loopback port, scraping every second an exporter this file
runs in a thread (prometheus_client's WSGI app on wsgiref), so queries see real scraped data.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import boto3
import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.testing.moto import MotoServer
from controller.testing.ports import free_port, serve_in_background, serving, wait_until

PROMETHEUS = "/usr/bin/prometheus"
REGION = "eu-west-1"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class NoisyLatency(Collector):
    """`demo_latency_seconds{version}`: a fresh random value at every scrape, per version, around
    the mean set in `means`, so range queries return distinct points for the Mann-Whitney test."""

    def __init__(self) -> None:
        self.means: dict[str, float] = {}
        self.rng = random.Random(7)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("demo_latency_seconds", "simulated latency", labels=["version"])
        for version, mean in self.means.items():
            family.add_metric([version], mean * (1 + self.rng.uniform(-0.1, 0.1)))
        yield family


@dataclass
class Exporter:
    """Metrics a test sets, served over HTTP for Prometheus to scrape."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    port: int = 0

    def __post_init__(self) -> None:
        self.requests = Counter("demo_requests", "requests served", ["version", "code"], registry=self.registry)
        self.error_ratio = Gauge("demo_error_ratio", "share of 5xx", ["version"], registry=self.registry)
        self.latency = NoisyLatency()
        self.registry.register(self.latency)
        self.port = free_port()
        self.server: WSGIServer = make_server(
            "127.0.0.1", self.port, make_wsgi_app(self.registry), handler_class=_Quiet
        )
        self.thread = serve_in_background(self.server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Prometheus:
    address: str
    process: subprocess.Popen[bytes]

    def has_series(self, query: str) -> bool:
        url = f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.load(resp)["data"]["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    yield exp
    exp.stop()


@pytest.fixture(scope="session")
def prometheus(exporter: Exporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    if not shutil.which(PROMETHEUS):
        pytest.skip(f"{PROMETHEUS} is not installed")
    work: Path = tmp_path_factory.mktemp("prometheus")
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: demo\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{exporter.port}'], labels: {{environment: production}}}}]\n"
    )
    port = free_port()
    log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Prometheus(f"http://127.0.0.1:{port}", process)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}; see {work / 'prometheus.log'}")
        with urllib.request.urlopen(f"{server.address}/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)

    try:
        wait_until(ready, 30, "prometheus")
        # The first scrape lands about one interval after start; wait for it once for all tests.
        wait_until(lambda: server.has_series("up{job='demo'} == 1"), 20, "first scrape of the exporter", 0.3)
        yield server
    finally:
        server.stop()
        log.close()


@pytest.fixture()
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture()
def cloudwatch(moto_server: MotoServer) -> Any:
    # A fresh AWS per test: moto 5.2's GetMetricData ignores the namespace, so a unique namespace
    # per test would not keep tests' datapoints apart.
    moto_server.reset()
    return boto3.client(
        "cloudwatch",
        endpoint_url=moto_server.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class HealthDocs:
    """What the local health endpoint answers, path -> (status, body); tests change it."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.delay = 0.0


@pytest.fixture()
def health_server() -> Iterator[tuple[str, HealthDocs]]:
    docs = HealthDocs()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if docs.delay:
                time.sleep(docs.delay)
            status, body = docs.routes.get(self.path, (404, b'{"error": "not found"}'))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    with serving(server):
        yield f"http://127.0.0.1:{server.server_address[1]}", docs


PASSWORD = "test-pw-7"
# bcrypt of PASSWORD (Prometheus's web config wants the hash, not the password: its documented
# `basic_auth_users`); computed once, so the tests need no bcrypt library.
PASSWORD_HASH = "$2b$12$t0IeDIvpAUvFQZvIpyLmGemFGdfpkelkxDakCFZJoKDQhz/eDPMDW"


@pytest.fixture(scope="session")
def guarded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus behind its own basic authentication (user `admin`, PASSWORD)."""
    if not shutil.which(PROMETHEUS):
        pytest.skip(f"{PROMETHEUS} is not installed")
    work: Path = tmp_path_factory.mktemp("guarded-prometheus")
    (work / "prometheus.yml").write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    (work / "web.yml").write_text(f"basic_auth_users:\n  admin: '{PASSWORD_HASH}'\n")
    port = free_port()
    log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--web.config.file={work / 'web.yml'}",
         f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    server = Prometheus(f"http://127.0.0.1:{port}", process)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}; see {work / 'prometheus.log'}")
        try:
            urllib.request.urlopen(f"{server.address}/-/ready", timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # up, and asking for credentials
        return False

    try:
        wait_until(ready, 30, "guarded prometheus")
        yield server
    finally:
        server.stop()
        log.close()
