"""The pure planner: `decide(spec, status, observation, ctx) -> Decision`.

Everything in this package is a function of its arguments. It imports no boto3, kopf, asyncio,
kubernetes or network library and never reads the clock (an import-linter contract checks the
imports; `ctx.now` is the only time). The reconciler observes, asks `needs` what to gather over the
network, gathers it, calls `decide` (with a `Refusal` in the context when it could not go to AWS),
applies the actions in order and writes the status once. Outside the planner, nothing imports its
`phases` or its `standing` (an import-linter contract): this package's exports are its interface.

Reading order for a newcomer: `core` (the pass as a list of phases), `phases/__init__` (the
phases in the order a rollout meets them), `draft` (what a phase gets and returns), `standing`
(how Ready, Progressing, Reconciling and Stalled follow), then the phase a change is about.
"""

from controller.planner.analysis import analysis_due
from controller.planner.core import decide, resume
from controller.planner.decision import Context, Decision, Event, Outcome, Refusal, Requests
from controller.planner.moments import moments
from controller.planner.needs import Needs, needs
from controller.planner.strategy import flags_document, preview_header, resolve, target_hash
from controller.planner.tiers import flags_parameter

__all__ = [
    "Context",
    "Decision",
    "Event",
    "Needs",
    "Outcome",
    "Refusal",
    "Requests",
    "analysis_due",
    "decide",
    "moments",
    "needs",
    "preview_header",
    "flags_document",
    "flags_parameter",
    "resolve",
    "resume",
    "target_hash",
]
