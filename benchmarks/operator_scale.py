"""How the operator scales: N Releases (default 200) on the local environment, against a bare kopf baseline.

A script, not a test: it prints a table and exits 0 (2 if a phase times out). `make benchmark` runs it;
benchmarks/README.md explains the set-up, the figures and how to read them.

    .venv/bin/python benchmarks/operator_scale.py              # 200 Releases, ~6 minutes
    .venv/bin/python benchmarks/operator_scale.py --quick      # 20 Releases, smoke run
    .venv/bin/python benchmarks/operator_scale.py --sizes 200,1000,2000 --baseline daemon
                                                               # one fresh environment per size,
                                                               # then one summary table

What it does, in order, all in one temporary directory:

1. `LocalEnvironment.up()` (etcd + kube-apiserver, moto server, Prometheus), the CRD applied.
2. N AWS worlds seeded in moto: one ECS service (EXTERNAL controller, one task set running
   1.0.0), one ALB listener with two target groups, one CloudFront distribution per Release; the
   services spread over clusters of at most `--services-per-cluster` (50) in one shared VPC.
3. N Fast Releases at 1.0.0 (+ frontend and feature flags) created in one namespace, then the
   operator started (`release-controller run --resync R`, its own log); the time until all are
   Succeeded is the adoption time.
4. Latency: a few Releases changed to 2.0.0 one at a time while the others stay steady (time from
   the API write to the new task set visible in moto, and to `phase: Succeeded`), then a burst:
   `--burst` (10%) of the Releases changed at once, timed the same way by polling moto and the API
   (p50/p99 of the first AWS change, and when all of them are Succeeded).
5. Steady state over `--periods` resync periods with every Release Succeeded: AWS calls per Release
   per resync by operation (from the operator's release_controller_aws_calls_total), CPU seconds of
   the operator process (/proc/<pid>/stat) per 100 reconciles (release_controller_reconcile_total),
   the CPU of the emulators (moto, kube-apiserver, etcd) over the same window beside it, and peak
   RSS (VmHWM).
6. The operator stopped, benchmarks/bare_kopf.py started on the same N objects, the same steady
   window measured, and the ratios printed.

This module must not change the controller; it only drives it from outside like a user would.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from kubernetes import client as k8s  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from controller.api.release import GROUP, PLURAL, VERSION  # noqa: E402
from controller.aws.clients import AwsClients  # noqa: E402
from controller.kube.client import load_api_client  # noqa: E402
from controller.testing.aws_world import WorldIds, seed_network, seed_world  # noqa: E402
from controller.testing.env import LocalEnvironment  # noqa: E402
from controller.testing.kubectl import install_crd  # noqa: E402
from controller.testing.operator import OperatorProcess  # noqa: E402
from controller.testing.ports import free_port, wait_until  # noqa: E402
from controller.testing.releases import release_for  # noqa: E402

NAMESPACE = "bench"
OLD, NEW = "1.0.0", "2.0.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class PhaseTimeout(RuntimeError):
    """A phase of the benchmark did not finish in its time budget."""


class LoadSampler:
    """The machine's 1-minute load average, sampled every few seconds while a size runs: the
    machine is shared, and every figure here is read against how busy it was."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), os.getloadavg()[0]))
            self._stop.wait(every)

    def start(self) -> LoadSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def between(self, start: float = -math.inf, end: float = math.inf) -> list[float]:
        return [load for at, load in self.samples if start <= at <= end]


def load_note(loads: Sequence[float]) -> str:
    if not loads:
        return "n/a"
    return f"{min(loads):.1f} / {statistics.median(loads):.1f} / {max(loads):.1f}"


# --------------------------------------------------------------------------- process figures


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (not its children), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int, field: str = "VmHWM") -> float:
    """VmHWM: the process's peak resident set size; VmRSS: its resident set now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for pid {pid}")


_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text format -> {(name, labels): value} (enough for counters and gauges)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m["labels"] or "")))
        out[(m["name"], labels)] = float(m["value"])
    return out


def metric_sum(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def by_label(samples: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (n, ls), v in samples.items():
        if n == name:
            key = dict(ls).get(label, "")
            out[key] = out.get(key, 0.0) + v
    return out


# The series the benchmark reads. A scrape of the operator's whole registry at 2,000 Releases costs it
# tens of ms of CPU (a series per Release and phase), and waiting for round boundaries scrapes often;
# asking for these names only (prometheus_client's `name[]`) keeps the benchmark out of what it measures.
BENCH_SERIES = ("release_controller_reconcile_total", "release_controller_aws_calls_total",
                "bare_kopf_objects", "bare_kopf_wakeups_total")


def fetch_metrics(port: int, names: Sequence[str] = BENCH_SERIES) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    query = "&".join(f"name[]={name}" for name in names)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=10) as resp:
        return parse_metrics(resp.read().decode())


@dataclass(frozen=True)
class Sample:
    at: float
    cpu: float
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]


def sample(pid: int, metrics_port: int) -> Sample:
    return Sample(time.monotonic(), cpu_seconds(pid), fetch_metrics(metrics_port))


# --------------------------------------------------------------------------- the API and AWS side


@dataclass
class Cluster:
    """The benchmark's view of the Releases in the API server and their services in moto."""

    custom: k8s.CustomObjectsApi
    aws: AwsClients
    worlds: dict[str, WorldIds]  # Release name -> its world

    def create(self, name: str, version: str) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, self.body(name, version))

    def set_version(self, name: str, version: str) -> int:
        """Change a Release to `version` (backend and frontend); returns the new generation."""
        body = self.body(name, version)
        obj = self.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, {"spec": body["spec"]})
        return int(obj["metadata"]["generation"])

    def body(self, name: str, version: str) -> dict[str, Any]:
        return release_for(
            self.worlds[name], name=name, namespace=NAMESPACE, version=version, frontend_version=version,
            environment="production", featureFlags={"new_chat_interface": version == NEW},
        )

    def phases(self) -> dict[str, tuple[str | None, int | None, int]]:
        """name -> (phase, observedGeneration, generation) for every Release, in one LIST."""
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        return {
            o["metadata"]["name"]: (
                (o.get("status") or {}).get("phase"),
                (o.get("status") or {}).get("observedGeneration"),
                int(o["metadata"]["generation"]),
            )
            for o in items
        }

    def resource_versions(self) -> dict[str, str]:
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in items}

    def changed_in_aws(self, names: Iterable[str]) -> set[str]:
        """The Releases whose service has a task set that is not the seeded one (the first change a
        Fast rollout makes after registering the task definition)."""
        by_cluster: dict[str, list[str]] = {}
        for name in names:
            by_cluster.setdefault(self.worlds[name].cluster, []).append(name)
        changed: set[str] = set()
        for cluster, group in by_cluster.items():
            for i in range(0, len(group), 10):
                chunk = group[i : i + 10]
                services = {self.worlds[n].service: n for n in chunk}
                resp = self.aws.ecs.describe_services(cluster=cluster, services=list(services))
                for svc in resp["services"]:
                    world = self.worlds[services[svc["serviceName"]]]
                    if any(ts["taskSetArn"] != world.initial_task_set_arn for ts in svc.get("taskSets", [])):
                        changed.add(services[svc["serviceName"]])
        return changed


def poll(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise PhaseTimeout(f"{what} not reached in {timeout:.0f}s")


def all_succeeded(cluster: Cluster, names: Sequence[str], version_generation: Mapping[str, int] | None = None) -> bool:
    phases = cluster.phases()
    for name in names:
        phase, observed, generation = phases.get(name, (None, None, 0))
        wanted = version_generation.get(name, generation) if version_generation else generation
        if phase != "Succeeded" or observed != wanted:
            return False
    return True


# --------------------------------------------------------------------------- phases


@dataclass
class Report:
    releases: int
    resync: float
    clusters: int
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))
        print(f"  {what}: {value}  {note}".rstrip(), flush=True)

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows)
        vwidth = max(len(r[1]) for r in self.rows)
        print()
        print(f"release-controller scale benchmark: {self.releases} Releases, resync {self.resync:g}s, "
              f"{self.clusters} ECS cluster(s), one service + listener + distribution per Release")
        print("-" * (width + vwidth + 40))
        for what, value, note in self.rows:
            print(f"{what:<{width}}  {value:>{vwidth}}  {note}".rstrip())
        print("-" * (width + vwidth + 40))
        for failure in self.failed:
            print(f"TARGET MISSED: {failure}")


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def spread(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {statistics.median(values):.1f}s  p99 {pct(values, 99):.1f}s  max {max(values):.1f}s"


def seed(aws: AwsClients, n: int, per_cluster: int, report: Report) -> dict[str, WorldIds]:
    started = time.monotonic()
    network = seed_network(aws, "bench")
    clusters = max(1, math.ceil(n / per_cluster))

    retried: list[int] = []

    def one(i: int) -> tuple[str, WorldIds]:
        name = f"rel-{i:03d}"
        # moto's server is not thread-safe everywhere: concurrent elbv2 CreateTargetGroup calls
        # sometimes fail with HTTP 500 ("OrderedDict mutated during iteration" in moto). Seed that
        # world again under a new name; the half-made one is left unused.
        for attempt in range(4):
            try:
                world = seed_world(aws, name=f"b{i:03d}" + (f"r{attempt}" if attempt else ""),
                                   cluster=f"bench-{i % clusters}", network=network,
                                   image=f"repo/pratiko-backend:{OLD}", frontend_version=OLD)
                return name, world
            except Exception:
                if attempt == 3:
                    raise
                retried.append(i)
        raise AssertionError("unreachable")

    with ThreadPoolExecutor(max_workers=4) as pool:  # moto's server is threaded; 4 keeps it busy
        worlds = dict(pool.map(one, range(n)))
    report.add("seed AWS worlds in moto", f"{time.monotonic() - started:.1f}s",
               f"{n} worlds, {clusters} clusters" + (f", {len(retried)} re-seeded after a moto error" if retried else ""))
    return worlds


def reconciles(port: int) -> float:
    return metric_sum(fetch_metrics(port), "release_controller_reconcile_total")


def after_round(port: int, timeout: float, at_least: float = 0.0, round_size: float = 0.0) -> None:
    """Return just after a resync round: the reconcile count has reached `at_least`, changed, and then
    stayed put for a second. Steady rounds come as bursts of N passes after each batched read, so a
    window between two such moments holds whole rounds (each scrape costs the operator ~1 ms)."""
    deadline = time.monotonic() + timeout
    last, quiet_since, moved = reconciles(port), time.monotonic(), False
    now = last
    while time.monotonic() < deadline:
        # Each scrape costs the operator CPU (~1 ms at 200 Releases, more with more series): poll
        # slowly until the rounds waited for are nearly done.
        time.sleep(0.5 if now >= at_least - round_size else 2.0)
        now = reconciles(port)
        if now != last:
            last, quiet_since, moved = now, time.monotonic(), True
        elif moved and now >= at_least and time.monotonic() - quiet_since >= 1.0:
            return
    raise PhaseTimeout("no steady resync round seen")


def operator_window(pid: int, port: int, rounds: int, releases: int, resync: float,
                    timeout: float) -> tuple[Sample, Sample]:
    """Sample the operator over exactly `rounds` resync rounds (no scraping in between but the last few).

    A round starts `resync` seconds after the previous one ended, so when the emulator is slow to
    answer a round, `rounds` rounds take longer than `rounds` x `resync`: wait for them (`timeout`).
    """
    after_round(port, max(resync * 3, timeout))
    first = sample(pid, port)
    start = metric_sum(first.metrics, "release_controller_reconcile_total")
    time.sleep(max(0.0, (rounds - 0.5) * resync))
    after_round(port, max(resync * 3, timeout), at_least=start + rounds * releases, round_size=releases)
    return first, sample(pid, port)


def time_window(pid: int, port: int, seconds: float) -> tuple[Sample, Sample]:
    first = sample(pid, port)
    time.sleep(seconds)
    return first, sample(pid, port)


def measure_operator(args: argparse.Namespace, env: LocalEnvironment, workdir: Path, report: Report,
                     figures: dict[str, float] | None = None) -> dict[str, float]:
    """Drive the operator through adoption, changes, a burst and a steady window; `figures` (if
    given) is filled as the phases finish, so a later timeout keeps the earlier figures."""
    n = args.releases
    env_vars = {**os.environ, **env.env_vars()}
    aws = AwsClients.from_env(env.env_vars())
    worlds = seed(aws, n, args.services_per_cluster, report)
    api = load_api_client(str(env.kubeconfig))
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    try:
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    cluster = Cluster(custom, aws, worlds)
    names = sorted(worlds)
    for name in names:
        cluster.create(name, OLD)

    log = workdir / "operator.log"
    operator = OperatorProcess(env_vars, namespaces=(NAMESPACE,), resync=args.resync, log_path=log).start()
    assert operator.process is not None
    pid = operator.process.pid
    figures = {} if figures is None else figures
    try:
        started = time.monotonic()
        poll(lambda: all_succeeded(cluster, names), args.timeout, f"all {n} Releases Succeeded at {OLD}", 1.0)
        report.add("adopt: start -> all Succeeded", f"{time.monotonic() - started:.1f}s",
                   f"{n} Releases at {OLD}, nothing to change in AWS")

        # Latency of one change while the others are steady.
        singles, rest = names[: args.singles], names[args.singles :]
        generations: dict[str, int] = {}
        first_change: list[float] = []
        to_succeeded: list[float] = []
        for name in singles:
            applied = time.monotonic()
            generation = generations[name] = cluster.set_version(name, NEW)
            poll(lambda: name in cluster.changed_in_aws([name]), args.timeout, f"{name}: new task set", 0.05)
            first_change.append(time.monotonic() - applied)
            poll(lambda: all_succeeded(cluster, [name], {name: generation}), args.timeout, f"{name}: Succeeded", 0.1)
            to_succeeded.append(time.monotonic() - applied)
        report.add("one change: apply -> first AWS change", spread(first_change),
                   f"{len(singles)} Releases one at a time; new task set seen in moto (poll 50 ms)")
        report.add("one change: apply -> Succeeded (Fast)", spread(to_succeeded), "poll 100 ms")

        # The burst: a share of the Releases changed at once.
        rest = rest[: max(1, math.ceil(n * args.burst))] if rest else rest
        applied_at: dict[str, float] = {}
        for name in rest:
            applied_at[name] = time.monotonic()
            generations[name] = cluster.set_version(name, NEW)
        burst_started = applied_at[rest[0]] if rest else time.monotonic()
        cpu_before = process_cpu(env, pid)
        changed_at: dict[str, float] = {}
        done_at: dict[str, float] = {}
        rounds: list[float] = []
        deadline = time.monotonic() + args.timeout
        while len(done_at) < len(rest) and time.monotonic() < deadline:
            t0 = time.monotonic()
            pending = [x for x in rest if x not in changed_at]
            for name in cluster.changed_in_aws(pending) if pending else ():
                changed_at[name] = time.monotonic()
            phases = cluster.phases()
            for name in rest:
                phase, observed, _ = phases[name]
                if name not in done_at and phase == "Succeeded" and observed == generations[name]:
                    done_at[name] = time.monotonic()
                    changed_at.setdefault(name, done_at[name])
            rounds.append(time.monotonic() - t0)
            time.sleep(max(0.0, 0.5 - rounds[-1]))
        if len(done_at) < len(rest):
            raise PhaseTimeout(f"burst: {len(rest) - len(done_at)} of {len(rest)} Releases not Succeeded in {args.timeout:.0f}s")
        cpu_burst = {k: v - cpu_before.get(k, 0.0) for k, v in process_cpu(env, pid).items()}
        burst_wall = time.monotonic() - burst_started
        resolution = statistics.median(rounds) + 0.5 if rounds else 0.0
        first_changes = [changed_at[x] - applied_at[x] for x in rest]
        report.add(f"burst of {len(rest)}: apply -> first AWS change",
                   spread(first_changes),
                   f"poll round {resolution:.1f}s (the resolution)")
        figures.update(burst=len(rest), burst_p50=statistics.median(first_changes), burst_p99=pct(first_changes, 99),
                       burst_all=max(done_at.values()) - burst_started)
        report.add(f"burst of {len(rest)}: apply -> Succeeded (Fast)",
                   spread([done_at[x] - applied_at[x] for x in rest]),
                   f"all done {max(done_at.values()) - burst_started:.1f}s after the first apply")
        report.add("burst: CPU seconds of the operator", f"{cpu_burst.pop('operator'):.1f}s",
                   f"over {burst_wall:.0f}s on {os.cpu_count()} cores; others: "
                   + ", ".join(f"{k} {v:.1f}s" for k, v in cpu_burst.items()))

        # Steady state: let every worker settle on the resync, then measure whole rounds. The first
        # round after the burst asks for a pass of each Release whose last pass wrote its status;
        # the next one finds them settled. (A fixed 1.5 x resync was too short once rounds took
        # longer than resync: at 1,000 Releases 64 such passes fell inside the window.)
        time.sleep(args.resync)
        after_round(operator.metrics_port, max(args.resync * 3, args.timeout))
        after_round(operator.metrics_port, max(args.resync * 3, args.timeout))
        versions_before = cluster.resource_versions()
        others_before = process_cpu(env, pid)
        spy = start_profile(pid, workdir / "py-spy.txt") if args.profile else None
        try:
            first, last = operator_window(pid, operator.metrics_port, args.periods, n, args.resync, args.timeout)
        finally:
            stop_profile(spy, report)
        others = {k: v - others_before.get(k, 0.0) for k, v in process_cpu(env, pid).items() if k != "operator"}
        written = sum(1 for k, v in cluster.resource_versions().items() if versions_before.get(k) != v)
        if not all_succeeded(cluster, names, generations):
            report.failed.append("a Release left Succeeded during the steady window")
        elapsed = last.at - first.at
        passes = metric_sum(last.metrics, "release_controller_reconcile_total") - metric_sum(
            first.metrics, "release_controller_reconcile_total")
        periods = passes / n  # every steady Release is reconciled once per resync round
        before = by_label(first.metrics, "release_controller_aws_calls_total", "operation")
        after = by_label(last.metrics, "release_controller_aws_calls_total", "operation")
        calls = {op: n_ - before.get(op, 0.0) for op, n_ in after.items() if n_ - before.get(op, 0.0) > 0}
        total_calls = sum(calls.values())
        writes = {op: c for op, c in calls.items() if not _is_read(op)}
        per_release_resync = total_calls / max(passes, 1)
        cpu = last.cpu - first.cpu
        figures.update(
            cpu=cpu, elapsed=elapsed, reconciles=passes, rss=rss_mib(pid), rss_now=rss_mib(pid, "VmRSS"),
            periods=periods,
            steady_from=first.at, steady_to=last.at, resync=args.resync, full_passes=passes - unchanged_passes(first, last),
            calls_per=per_release_resync, **{f"cpu_{k}": v for k, v in others.items()},
        )
        unchanged = unchanged_passes(first, last)
        report.add("steady window", f"{elapsed:.0f}s", f"{periods:.1f} resync rounds of {n} reconciles "
                   f"({passes:.0f}, {unchanged:.0f} found unchanged by the round without a pass)")
        report.add("AWS calls per Release per resync", f"{per_release_resync:.3f}",
                   f"{total_calls:.0f} calls; target <= 1 read")
        for op, count in sorted(calls.items(), key=lambda kv: -kv[1]):
            report.add(f"  {op}", f"{count / (n * periods):.3f}", f"{count:.0f} calls")
        if writes:
            report.failed.append(f"AWS writes in steady state: {dict(writes)}")
        if per_release_resync > 1.0:
            report.failed.append(f"{per_release_resync:.2f} AWS calls per Release per resync (target <= 1)")
        report.add("operator CPU in steady window", f"{cpu:.2f}s", f"{cpu / elapsed * 100:.1f}% of one core")
        report.add("operator CPU per round / resync period", f"{cpu / max(periods, 1e-9) / args.resync * 100:.1f}%",
                   f"of one core, were a round to start every {args.resync:g}s (rounds took "
                   f"{elapsed / max(periods, 1e-9):.0f}s apart: the emulator's answers)")
        report.add("emulators' CPU in the same window", ", ".join(f"{k} {v:.2f}s" for k, v in others.items()),
                   "what answers the operator's reads (moto) and watches (kube-apiserver, etcd)")
        report.add("operator CPU per 100 reconciles", f"{cpu / max(passes, 1) * 100:.3f}s",
                   "incl. the batched AWS read of the round")
        report.add("Release objects written in steady window", f"{written}", "status write skipped when unchanged")
        if written:
            report.failed.append(f"{written} Releases written during the steady window (expected none)")
        report.add("operator peak RSS (VmHWM)", f"{figures['rss']:.0f} MiB",
                   f"resident at the end of the steady window (VmRSS): {figures['rss_now']:.0f} MiB")
    finally:
        operator.stop()
    return figures


def start_profile(pid: int, out: Path) -> tuple[subprocess.Popen[bytes], Path] | None:
    """py-spy over the steady window (`--profile`): collapsed stacks of the thread holding the GIL,
    50 samples a second, written when it is stopped. None if py-spy is not installed."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return None
    proc = subprocess.Popen([str(spy), "record", "-p", str(pid), "--gil", "--nonblocking", "-r", "50", "-f", "raw",
                             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return proc, out


def stop_profile(spy: tuple[subprocess.Popen[bytes], Path] | None, report: Report) -> None:
    if spy is None:
        return
    proc, out = spy
    proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    report.add("py-spy profile of the steady window", str(out), "collapsed stacks (flamegraph.pl, speedscope)")


def unchanged_passes(first: Sample, last: Sample) -> float:
    """Reconciles the resync round settled without a pass; the rest of a steady window's reconciles
    are full passes (a round that found drift, or a worker's fallback)."""
    return metric_sum(last.metrics, "release_controller_reconcile_total", result="unchanged") - metric_sum(
        first.metrics, "release_controller_reconcile_total", result="unchanged")


def process_cpu(env: LocalEnvironment, operator_pid: int) -> dict[str, float]:
    """CPU seconds so far of the operator and of each server of the environment."""
    out = {"operator": cpu_seconds(operator_pid)}
    for process in env.processes:
        try:
            out[process.name] = cpu_seconds(process.pid)
        except OSError:
            continue
    return out


def _is_read(operation: str) -> bool:
    action = operation.split(":", 1)[-1]
    return action.startswith(("Describe", "Get", "List"))


def measure_bare_kopf(args: argparse.Namespace, env: LocalEnvironment, workdir: Path, mode: str) -> dict[str, float]:
    port = free_port()
    log = workdir / f"bare-kopf-{mode}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "bare_kopf.py"), "--namespace", NAMESPACE,
             "--resync", str(args.resync), "--metrics-port", str(port), "--mode", mode],
            env={**os.environ, **env.env_vars(), "PYTHONUNBUFFERED": "1"},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"bare kopf exited with {proc.returncode}; see {log}")
            try:
                samples = fetch_metrics(port)
            except OSError:
                return False
            return bool(metric_sum(samples, "bare_kopf_objects") >= args.releases)

        wait_until(ready, args.timeout, "bare kopf sees every Release")
        time.sleep(args.resync * 1.5)
        first, last = time_window(proc.pid, port, args.periods * args.resync)
        elapsed = last.at - first.at
        wakeups = metric_sum(last.metrics, "bare_kopf_wakeups_total") - metric_sum(first.metrics, "bare_kopf_wakeups_total")
        return dict(cpu=last.cpu - first.cpu, elapsed=elapsed, reconciles=wakeups, rss=rss_mib(proc.pid),
                    periods=elapsed / args.resync)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)


def compare(report: Report, operator: dict[str, float], bare: Mapping[str, float], mode: str, n: int) -> None:
    # Per pass: a reconcile of the operator and a wake-up of the baseline each happen once per
    # Release per resync in steady state.
    op_rate = operator["cpu"] / max(operator["reconciles"], 1) * 100
    bare_rate = bare["cpu"] / max(bare["reconciles"], 1) * 100
    report.add(f"bare kopf ({mode}) CPU in steady window", f"{bare['cpu']:.2f}s",
               f"{bare['elapsed']:.0f}s, {bare['reconciles']:.0f} wake-ups")
    report.add(f"bare kopf ({mode}) CPU per 100 wake-ups", f"{bare['cpu'] / max(bare['reconciles'], 1) * 100:.3f}s")
    report.add(f"bare kopf ({mode}) peak RSS (VmHWM)", f"{bare['rss']:.0f} MiB")
    ratio = op_rate / bare_rate if bare_rate > 0 else float("inf")
    report.add(f"CPU ratio operator / bare kopf ({mode})", f"{ratio:.2f}x",
               "CPU per Release per resync; target <= 2x")
    report.add(f"RSS ratio operator / bare kopf ({mode})", f"{operator['rss'] / bare['rss']:.2f}x")
    above = (operator["rss"] - bare["rss"]) * 1024 / n
    report.add(f"RSS per Release above bare kopf ({mode})", f"{above:.0f} KiB", "target < 100 KiB")
    operator.setdefault("bare_rss", bare["rss"])
    operator.setdefault("rss_above_per", above)
    if ratio > 2.0:
        report.failed.append(f"operator CPU {ratio:.1f}x the bare kopf {mode} baseline (target <= 2x)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Operator scale benchmark (see the module docstring).")
    parser.add_argument("--releases", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 Releases, 2 periods: a smoke run")
    parser.add_argument("--resync", type=float, default=30.0, help="operator --resync seconds (the default of `run`)")
    parser.add_argument("--burst", type=float, default=0.1, help="share of the Releases changed at once")
    parser.add_argument("--sizes", help="comma-separated Release counts, one fresh environment each (overrides --releases)")
    parser.add_argument("--periods", type=int, default=6, help="resync periods in each steady window")
    parser.add_argument("--singles", type=int, default=3, help="Releases changed one at a time")
    parser.add_argument("--services-per-cluster", type=int, default=50)
    parser.add_argument("--baseline", choices=("daemon", "timer", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds each phase may take")
    parser.add_argument("--workdir", type=Path, help="keep the environment's files and logs here")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy over the operator's steady window, into <workdir>/py-spy.txt (pip install py-spy)")
    args = parser.parse_args(argv)
    if args.quick:
        args.releases, args.periods, args.singles = 20, 2, 2
    args.singles = min(args.singles, max(args.releases - 1, 0))

    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [args.releases]
    began = time.monotonic()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rc-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"benchmark workdir: {workdir}", flush=True)
    code = 0
    summary: list[tuple[int, dict[str, float], list[str]]] = []
    for size in sizes:
        args.releases = size
        args.singles = min(args.singles, max(size - 1, 0))
        figures, failed, size_code = run_size(args, workdir / f"n{size}" if len(sizes) > 1 else workdir)
        summary.append((size, figures, failed))
        code = max(code, size_code)
    if len(sizes) > 1:
        print_summary(summary, args)
    print(f"logs: {workdir}  (total {time.monotonic() - began:.0f}s)")
    return code


def run_size(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, float], list[str], int]:
    """One size in a fresh local environment: the operator, then the bare kopf baseline(s)."""
    workdir.mkdir(parents=True, exist_ok=True)
    report = Report(args.releases, args.resync, max(1, math.ceil(args.releases / args.services_per_cluster)))
    print(f"--- {args.releases} Releases (workdir {workdir})", flush=True)
    env = LocalEnvironment(workdir / "env")
    code = 0
    operator: dict[str, float] = {}
    loads = LoadSampler().start()
    try:
        env.up()
        report.add("local environment up", f"{env.startup_seconds:.1f}s")
        for attempt in range(3):
            try:
                install_crd({**os.environ, **env.env_vars()})
                break
            except RuntimeError:
                # `kubectl wait` fails, rather than waits, on a CRD whose status has no conditions
                # yet (a busy API server); the apply is idempotent, so try again.
                if attempt == 2:
                    raise
                time.sleep(2)
        measure_operator(args, env, workdir, report, operator)
        modes = ("daemon", "timer") if args.baseline == "both" else (args.baseline,)
        for mode in modes:
            compare(report, operator, measure_bare_kopf(args, env, workdir, mode), mode, args.releases)
    except PhaseTimeout as exc:
        report.failed.append(f"timed out: {exc}")
        code = 2
    finally:
        env.down()
        loads.stop()
    steady = loads.between(operator.get("steady_from", math.inf), operator.get("steady_to", -math.inf))
    report.add("load average (1 min), whole run", load_note(loads.between()), "min / median / max; 2 cores, shared")
    report.add("load average (1 min), steady window", load_note(steady), "min / median / max")
    if steady:
        operator["load_steady"] = statistics.median(steady)
    if loads.samples:
        operator["load_max"] = max(loads.between())
    check_targets(report, operator, args.releases)
    if report.rows:
        report.print()
    return operator, report.failed, code


def check_targets(report: Report, f: Mapping[str, float], n: int) -> None:
    """Issue 17's targets (stated for 2,000 Releases; checked at every size)."""
    if "cpu" in f and f["cpu"] / f["elapsed"] >= 0.05:
        report.failed.append(f"steady operator CPU {f['cpu'] / f['elapsed']:.1%} of one core (target < 5%)")
    if "cpu" in f and f["cpu"] / f["periods"] / f["resync"] >= 0.05:
        report.failed.append(f"operator CPU per round / resync {f['cpu'] / f['periods'] / f['resync']:.1%} of one core "
                             "(target < 5%)")
    if "rss_above_per" in f and f["rss_above_per"] >= 100:
        report.failed.append(f"RSS {f['rss_above_per']:.0f} KiB per Release above bare kopf (target < 100 KiB)")
    if "calls_per" in f and f["calls_per"] > 0.3:
        report.failed.append(f"{f['calls_per']:.3f} AWS calls per Release per resync (target <= 0.3)")
    if f.get("full_passes"):
        report.failed.append(f"{f['full_passes']:.0f} full passes in the steady window (rounds found every Release "
                             "unchanged, so these are workers' fallbacks or drift)")


def print_summary(summary: Sequence[tuple[int, Mapping[str, float], Sequence[str]]], args: argparse.Namespace) -> None:
    """One row per size (the table in benchmarks/README.md); n/a where a phase timed out."""
    def cell(figures: Mapping[str, float], fmt: str, *keys: str) -> str:
        try:
            return fmt.format(*(figures[k] for k in keys))
        except KeyError:
            return "n/a"

    print()
    print(f"summary: resync {args.resync:g}s, burst {args.burst:.0%} of the Releases, baseline {args.baseline}")
    header = ("Releases", "steady CPU/Release/round", "steady CPU (% core)", "CPU per round / resync (% core)",
              "moto CPU (% core)",
              "peak RSS", "bare kopf RSS", "RSS/Release above bare", "marginal RSS/Release above bare",
              "AWS calls/Release/resync", "burst first change p50 / p99", "burst all Succeeded",
              "full passes in steady window", "load avg, steady (max)")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    previous: tuple[int, Mapping[str, float]] | None = None
    for n, f, failed in summary:
        elapsed = f.get("elapsed") or float("nan")
        # The growth of (operator - bare kopf) RSS from the previous size, per added Release: the
        # operator's fixed overhead (boto3's clients and models, metrics) cancels out.
        marginal = "n/a"
        if previous is not None and "rss" in f and "bare_rss" in f and "rss" in previous[1] and "bare_rss" in previous[1]:
            grown = (f["rss"] - f["bare_rss"]) - (previous[1]["rss"] - previous[1]["bare_rss"])
            marginal = f"{grown * 1024 / (n - previous[0]):.0f} KiB"
        previous = (n, f)
        row = (
            str(n),
            f"{f['cpu'] / (n * max(f['periods'], 1e-9)) * 1000:.3f} ms" if "cpu" in f else "n/a",
            f"{f['cpu'] / elapsed * 100:.1f}%" if "cpu" in f else "n/a",
            f"{f['cpu'] / max(f['periods'], 1e-9) / f['resync'] * 100:.1f}%" if "cpu" in f else "n/a",
            f"{f['cpu_moto'] / elapsed * 100:.1f}%" if "cpu_moto" in f else "n/a",
            cell(f, "{:.0f} MiB", "rss"),
            cell(f, "{:.0f} MiB", "bare_rss"),
            cell(f, "{:.0f} KiB", "rss_above_per"),
            marginal,
            cell(f, "{:.3f}", "calls_per"),
            cell(f, "{:.1f} s / {:.1f} s", "burst_p50", "burst_p99"),
            cell(f, "{:.1f} s", "burst_all"),
            cell(f, "{:.0f}", "full_passes"),
            f"{cell(f, '{:.1f}', 'load_steady')} ({cell(f, '{:.1f}', 'load_max')})",
        )
        print("| " + " | ".join(row) + " |" + ("  (" + "; ".join(failed) + ")" if failed else ""))

if __name__ == "__main__":
    sys.exit(main())
