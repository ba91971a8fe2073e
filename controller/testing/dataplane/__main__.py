"""`python -m controller.testing.dataplane`: run the local data plane against an AWS endpoint.

    python -m controller.testing.dataplane run --cluster C --service S --listener-arn ARN \\
        --workdir .dev/dataplane --rate 50 [--duration 60 | --count 3000]
    python -m controller.testing.dataplane behaviour --file .dev/dataplane/behaviour.json \\
        1.5.0 error_rate=0.3 latency_ms=20

`run` follows the environment like the controller does (AWS_ENDPOINT_URL, AWS_REGION then
AWS_DEFAULT_REGION), prints one JSON line with the balancer URL and paths once it serves, and stops
cleanly, workloads included, on Ctrl-C, SIGTERM, or when a bounded load is done. With `--rate 0`
it serves without generating load. `behaviour` edits the control file the workloads re-read.
Used by `release-controller dev` and the demo; it never writes to AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from controller.testing.dataplane.loadgen import LoadGenerator
from controller.testing.dataplane.supervisor import DataPlane
from controller.testing.dataplane.workload import write_behaviour


def _run(args: argparse.Namespace) -> int:
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        print("no region: set AWS_REGION or pass --region", file=sys.stderr)
        return 2
    endpoint = args.endpoint or os.environ.get("AWS_ENDPOINT_URL")
    workdir = Path(args.workdir)
    behaviour = Path(args.behaviour_file) if args.behaviour_file else workdir / "behaviour.json"
    if not behaviour.exists():
        write_behaviour(behaviour, {"default": {"error_rate": 0.0, "latency_ms": 5}})
    targets = Path(args.targets_dir) if args.targets_dir else workdir / "targets"

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())

    plane = DataPlane(endpoint, region, args.cluster, args.service, args.listener_arn, workdir, targets, behaviour,
                      balancer_port=args.balancer_port, poll_interval=args.poll_interval)
    with plane:
        print(json.dumps({"balancer": plane.balancer_url, "request_log": str(plane.request_log),
                          "targets_dir": str(targets), "behaviour_file": str(behaviour)}), flush=True)
        load: LoadGenerator | None = None
        try:
            # Load before the workloads listen would only measure start-up 503s.
            plane.wait_for(lambda p: bool(p.workloads()) and all(w.ready for w in p.workloads()),
                           args.ready_timeout, "workloads ready")
        except TimeoutError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        if args.rate > 0:
            load = LoadGenerator(plane.balancer_url, rate=args.rate, duration=args.duration or None,
                                 count=args.count or None).start()
        bounded = load is not None and (args.duration or args.count)
        started = last_report = time.monotonic()
        while not done.wait(0.2):
            if bounded and load is not None and load.finished:
                break
            if args.duration and load is None and time.monotonic() - started > args.duration:
                break
            if args.report_every and time.monotonic() - last_report >= args.report_every:
                last_report = time.monotonic()
                _report(plane, load)
        if load is not None:
            stats = load.stop()
            print(json.dumps({"sent": stats.sent, "by_status": stats.by_status, "by_version": stats.by_version,
                              "late": stats.late, "elapsed": round(stats.elapsed, 3)}), flush=True)
    return 0


def _report(plane: DataPlane, load: LoadGenerator | None) -> None:
    doc: dict[str, Any] = {
        "weights": plane.weights,
        "workloads": [{"version": w.version, "port": w.port, "ready": w.ready, "target_group": w.target_group}
                      for w in plane.workloads()],
    }
    if load is not None:
        s = load.stats()
        doc["load"] = {"sent": s.sent, "by_status": s.by_status, "by_version": s.by_version}
    print(json.dumps(doc), flush=True)


def _behaviour(args: argparse.Namespace) -> int:
    path = Path(args.file)
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    entry: dict[str, Any] = dict(doc.get(args.version, {}))
    for item in args.settings:
        key, _, value = item.partition("=")
        try:
            entry[key] = json.loads(value)  # 0.3, 20, true, false, {...}
        except ValueError:
            entry[key] = value
    doc[args.version] = entry
    write_behaviour(path, doc)
    print(json.dumps(doc, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "behaviour", "-h", "--help"):
        argv.insert(0, "run")
    parser = argparse.ArgumentParser(prog="python -m controller.testing.dataplane")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="follow an ECS service in moto with workloads, a balancer and load")
    run.add_argument("--cluster", required=True)
    run.add_argument("--service", required=True)
    run.add_argument("--listener-arn")
    run.add_argument("--workdir", default=".dataplane")
    run.add_argument("--targets-dir", help="Prometheus file_sd directory (default WORKDIR/targets)")
    run.add_argument("--behaviour-file", help="control file (default WORKDIR/behaviour.json)")
    run.add_argument("--balancer-port", type=int, default=0)
    run.add_argument("--rate", type=float, default=50.0, help="requests per second; 0 for none")
    run.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until interrupted")
    run.add_argument("--count", type=int, default=0, help="requests; 0 for no bound")
    run.add_argument("--poll-interval", type=float, default=0.25)
    run.add_argument("--ready-timeout", type=float, default=20.0, help="seconds to wait for workloads before load")
    run.add_argument("--report-every", type=float, default=0.0, help="print state every N seconds")
    run.add_argument("--region")
    run.add_argument("--endpoint")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)

    beh = sub.add_parser("behaviour", help="set how a version behaves (KEY=JSON ...)")
    beh.add_argument("--file", required=True)
    beh.add_argument("version", help="a version, or 'default'")
    beh.add_argument("settings", nargs="*", help="error_rate=0.3 latency_ms=20 healthy=false")
    beh.set_defaults(func=_behaviour)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
