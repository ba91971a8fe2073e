"""The planner simulation over many seeds: how many passes and faults it ran, what it found.

    nice -n 10 .venv/bin/python benchmarks/simulation.py --seeds 10000 [--start 0] [--steps 40]

Each seed is one scenario of `--steps` events (spec edits, requests, clock jumps, restarts, AWS
faults, analysis answers) played against the pure planner and the fake AWS world, with every
invariant checked after every pass (tests/planner/simulation.py says which and how). Prints seeds
run, passes, faults injected per kind, violations per invariant and the time taken; for the first
failing seeds, a shrunk reproduction to paste into tests/planner/test_simulation_replays.py.
Exits 1 when any seed failed. A measurement and a bug hunt: `make test` runs a bounded number of
seeds in tests/planner/test_simulation.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.planner.simulation import FAULTS, INVARIANTS, reproduction, run, run_seeds, scenario, shrink  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--steps", type=int, default=40, help="events per scenario")
    parser.add_argument("--show", type=int, default=3, help="failing seeds to shrink and print")
    args = parser.parse_args()

    started = time.perf_counter()
    report = run_seeds(range(args.start, args.start + args.seeds), args.steps)
    elapsed = time.perf_counter() - started

    print(f"seeds      {report.seeds} ({args.start}..{args.start + args.seeds - 1}), {args.steps} steps each")
    print(f"passes     {report.stats.passes} ({report.stats.passes / max(1, report.seeds):.1f} per seed)")
    print("faults     " + ", ".join(f"{k} {report.stats.faults[k]}" for k in FAULTS)
          + f" (total {sum(report.stats.faults.values())})")
    print("covered    " + ", ".join(f"{k} {v} passes" for k, v in sorted(report.stats.covered.items())))
    print("violations " + ", ".join(f"{k} {report.violations[k]}" for k in INVARIANTS)
          + f" (failing seeds {len(report.failing)})")
    print(f"time       {elapsed:.1f} s ({1000 * elapsed / max(1, report.stats.passes):.2f} ms per pass)")
    for seed, found in report.failing[: args.show]:
        steps = shrink(scenario(seed, args.steps), found.invariant)
        print()
        print(reproduction(steps, run(steps) or found, seed))
    return 1 if report.failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
