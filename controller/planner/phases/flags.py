"""Phase: the feature flags, published once the backend that serves traffic is the spec's.

Waits (holds the pass) until the SSM parameter / flags.json shows the spec's flags; then records
their hash. When this rollout changed the flags, the analysis window starts now (`promotedAt`),
since the flags are the change being watched.
"""

from __future__ import annotations

from controller.api.reasons import Reason
from controller.api.release import ReleaseStatus
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.strategy import flags_hash
from controller.planner.tiers import publish_flags


def reconcile(inp: Inputs, status: ReleaseStatus) -> Result:
    d = Draft(inp, status)
    flags = publish_flags(inp.spec, inp.obs, inp.ctx.namespace, inp.ctx.name)
    if flags is not None:
        d.actions.append(flags)
        waiting_on_aws(d, "publishing feature flags", deadline=False)
        return d.close(holds=True)
    wanted = flags_hash(inp.spec)
    if d.st.flags_hash != wanted:
        if d.st.flags_hash is not None or inp.spec.feature_flags:
            d.event(Reason.FLAGS_PUBLISHED, f"feature flags published: {', '.join(sorted(inp.spec.feature_flags))}")
        d.update(flags_hash=wanted)
        if d.st.rollback_flags is not None:
            # The flags are this rollout's change: the analysis window (and a flip back) starts now.
            d.update(promoted_at=inp.now)
    return d.close()
