"""The pure planner: `decide(spec, status, observation, ctx) -> Decision`.

Everything in this package is a function of its arguments. It imports no boto3, kopf, asyncio,
kubernetes or network library and never reads the clock (an import-linter contract checks the
imports; `ctx.now` is the only time). The reconciler observes, calls `analysis_due` and `decide`,
applies the actions in order and writes the status once.

Reading order for a newcomer: `core` (the pass as a list of phases), `phases/__init__` (the
phases in the order a rollout meets them), `draft` (what a phase gets and returns), `standing`
(how Ready and Progressing follow), then the phase a change is about.
"""

from controller.planner.analysis import analysis_due
from controller.planner.core import decide
from controller.planner.decision import Context, Decision, Event, Requests
from controller.planner.strategy import flags_document, resolve, target_hash
from controller.planner.tiers import flags_parameter

__all__ = [
    "Context",
    "Decision",
    "Event",
    "Requests",
    "analysis_due",
    "decide",
    "flags_document",
    "flags_parameter",
    "resolve",
    "target_hash",
]
