"""The preview route: the listener rule that takes requests carrying a header to the new version,
and, with `frontend.canary`, the CloudFront staging distribution serving the new frontend to the
same header.

A rollout at a preview step (`steps.PreviewStep`: the one that opens a preview and the one that
holds it) needs the route; at any other moment it must not exist. Two functions keep that, both
level-triggered from the observation, so a pass repeated or interrupted anywhere converges:

  routed   the walker's check at a preview step (`BackendSteps.landed`): the Release's rule is
           observed forwarding the header to the canary target group; if not, ask for it and wait.
           Then, with a frontend canary and a frontend version not live yet, the staging
           distribution is observed serving the new origin path to requests carrying exactly the
           header (`SetStagingHeader`: a SingleHeader continuous deployment policy); if not, ask
           and wait. The frontend comes after the backend here too: its header route is asked for
           only once the backend's is there, so a previewer never gets the new frontend with the
           old backend;
  tidy     the last phase of every pass (`core.decide`): when the status the pass ends with is not
           at a preview step (the step ended by its timer or a promote, the rollout was aborted,
           rolled back, failed its analysis, superseded, deleted, or promoted), or the rule's target
           group is seen with production weight, the Release's rule goes, first of the pass's
           actions, before any weight moves. Likewise, and just before the rule (the reverse of how
           they came), the staging distribution's header routing
           (any header) goes back to SingleWeight at 0%, disabled (`ClearStagingHeader`), which is
           where the frontend canary starts once the backend is promoted and compatible: staging
           never takes production weight during a preview (nor during any backend rollout: a
           weighted share seen then is disabled). A spec the pass refused changes nothing.

The rule is the Release's by its tag (owner `<namespace>/<name>`; `controller.aws.preview`), so a
controller restarted mid-preview finds it again, and removes only its own. A tier of several
services has one rule per service with traffic, each on its own listener to its own canary group,
owned `<namespace>/<name>/<service>` (docs/many-services.md, section 3, "Several services"). Pure.
"""

from __future__ import annotations

from controller.api.release import CLOUDFRONT_HEADER_PREFIX, Phase, ReleaseSpec, ReleaseStatus, Verdict
from controller.api.types import satisfies
from controller.planner.actions import (
    ClearStagingHeader,
    DisableStaging,
    EnsurePreviewRoute,
    RemovePreviewRoute,
    SetStagingHeader,
)
from controller.planner import group
from controller.planner.draft import Draft, Inputs, Result
from controller.planner.phases.rollback import waiting_on_aws
from controller.planner.steps import PreviewStep
from controller.planner.strategy import plan_for
from controller.planner.tiers import frontend_canary_plan, origin_path
from controller.planner.world import Observation


def owner(inp: Inputs, service: str | None = None) -> str:
    """The tag value naming the Release's preview rule: `<namespace>/<name>` for one service (so a rule
    made before tiers existed is still found), `<namespace>/<name>/<service>` for each service of a
    tier of several (each its own rule on its own listener)."""
    base = f"{inp.ctx.namespace}/{inp.ctx.name}"
    return base if service is None or not inp.spec.backend.several else f"{base}/{service}"


def _ours(inp: Inputs, rule_owner: str) -> bool:
    """Whether a preview rule's owner is this Release (its one service's, or any service's of a tier:
    a Kubernetes name holds no `/`, so the prefix names no other Release)."""
    base = owner(inp)
    return rule_owner == base or rule_owner.startswith(base + "/")


def current(spec: ReleaseSpec, status: ReleaseStatus) -> PreviewStep | None:
    """The preview step the rollout is at, None when it is at none (or the preview failed its analysis:
    a rollout paused on a Failed verdict sends no more header traffic to the version that failed)."""
    if status.phase not in (Phase.PROGRESSING, Phase.PAUSED) or status.backend.canary_image is None:
        return None
    if status.strategy is None or status.analysis is not None and status.analysis.verdict == Verdict.FAILED:
        return None
    steps = plan_for(status.strategy, spec).steps
    step = steps[status.current_step] if 0 <= status.current_step < len(steps) else None
    return step if isinstance(step, PreviewStep) else None


def routed(d: Draft, step: PreviewStep, label: str) -> bool:
    """Whether the Release's preview rules (one per service with traffic: `_routes`) and, with a frontend
    canary, the staging distribution's header routing are observed as `step` wants them; if not, ask
    for what is missing and wait. The frontend's header route is asked for only once every service's
    rule is observed: a previewer never gets the new frontend with an old backend."""
    missing = _routes(d, step)
    if missing:
        waiting_on_aws(d, f"{label}: waiting for the preview route ({step.header_name} to the new version"
                          f"{' of ' + ', '.join(missing) if d.several else ''})")
        return False
    staged = staging_header(d.spec, d.obs, step)
    if staged is not None and not staged_by_header(d.obs, staged):
        d.actions.append(staged)
        waiting_on_aws(d, f"{label}: waiting for the staging distribution to serve {staged.origin_path} to "
                          f"{step.header_name}")
        return False
    return True


def _routes(d: Draft, step: PreviewStep) -> list[str]:
    """Ask for each service's preview rule not observed yet; the services still without one.

    Per service (`group.members`: one service is the Release itself), on its own listener, forwarding
    to its own canary target group, wave by wave: a service's rule is asked for only once every
    service it comes after is routed, so header traffic never reaches a new service behind an old one
    it comes after. No rule for a service without traffic (a worker: it runs no new task at a step
    with no weight, `group._toward`, so header traffic is served by its old version), one whose new
    version serves production already (a status older than the world, after the promotion landed,
    with no stable task set left to take the weights back: a route would preview nothing; `tidy`
    removes one), or one with nothing to roll out (it runs the tier's version already)."""
    done: dict[str, bool] = {}
    missing: list[str] = []
    by = {m.name: m for m in d.members}
    for wave in d.spec.backend.waves():
        for n in wave:
            m = by[n]
            listener, canary_tg = m.obs.listener, m.fleet.canary_tg
            if listener is None or canary_tg is None or m.status.backend.canary_image is None \
                    or listener.weight(canary_tg) > 0:
                done[n] = True
                continue
            who = owner(d.inp, n)
            mine = listener.preview_of(who)
            done[n] = listener.previews_read and len(mine) == 1 and mine[0].routes(
                step.header_name, step.header_value, canary_tg)
            if done[n]:
                continue
            missing.append(n)
            if all(done.get(a, False) for a in m.service.after):
                d.actions.append(EnsurePreviewRoute(listener.arn, who, step.header_name, (step.header_value,), canary_tg))
    return missing


def staging_header(spec: ReleaseSpec, obs: Observation, step: PreviewStep) -> SetStagingHeader | None:
    """What the staging distribution must do during `step`: serve the spec's frontend to the preview
    header. None without a frontend canary, when the frontend's version is live already (nothing new to
    preview), when its `requiresBackend` excludes the backend being previewed (that pair never ships:
    the frontend would be held after the promotion), when the distribution is not observed, or for a
    header CloudFront cannot route by (the CRD refuses that with a frontend canary)."""
    fe = spec.frontend
    want = origin_path(spec)
    if fe is None or not frontend_canary_plan(spec) or want is None or obs.frontend is None:
        return None
    if fe.requires_backend and not satisfies(spec.backend.version, fe.requires_backend):
        return None
    if obs.frontend.origin_path == want or not step.header_name.lower().startswith(CLOUDFRONT_HEADER_PREFIX):
        return None
    return SetStagingHeader(fe.cloudfront.distribution_id, fe.cloudfront.origin_id, want, step.header_name,
                            step.header_value)


def staged_by_header(obs: Observation, a: SetStagingHeader) -> bool:
    staging = obs.frontend.staging if obs.frontend is not None else None
    return staging is not None and staging.routes_header(a.header_name, a.header_value, a.origin_path)


def tidy(inp: Inputs, status: ReleaseStatus) -> Result:
    """The Release's preview rule removed when the pass ends anywhere but at a preview step, or at one
    while its target group is seen with production weight (a rollout superseded onto a preview while
    its weights are still on their way back to 0: the route waits for them, `routed` asks for it
    again once they are there). The staging distribution's header routing goes with it, and whenever
    no preview of this spec wants it. A spec the pass did not take on (refused) changes nothing."""
    d = Draft(inp, status)
    if status.target_hash != inp.hash:
        return d.close()
    step = current(inp.spec, status)
    keep, removals = _tidy_route(inp, step, status)
    staging = inp.obs.frontend.staging if inp.obs.frontend is not None else None
    if staging is not None and staging.policy_enabled and staging.weight_percent > 0 and \
            status.backend.canary_image is not None and inp.obs.frontend is not None:
        # A backend rollout under way and staging with production weight: a frontend canary's share
        # left by a superseded rollout (its one-off DisableStaging lost, or seen late). The frontend
        # takes production weight only after the backend is promoted, so it goes, every pass it is seen.
        d.actions.append(DisableStaging(inp.obs.frontend.distribution_id))
    if staging is not None and staging.header_routed:
        # Kept only as this preview wants it: another header, value or frontend (a superseding spec)
        # goes now, and `routed` asks for the right one once the backend's route is right.
        wanted = staging_header(inp.spec, inp.obs, step) if step is not None and keep else None
        if wanted is None or not staged_by_header(inp.obs, wanted):
            distribution = inp.obs.frontend.distribution_id if inp.obs.frontend is not None else ""
            d.actions.append(ClearStagingHeader(distribution))
    # The frontend's route goes before the backend's, the reverse of how they came: a previewer may
    # meet the new backend behind the old frontend (the backend is compatible with it), never the
    # new frontend in front of the old backend.
    d.actions.extend(removals)
    return d.close()


def _tidy_route(inp: Inputs, step: PreviewStep | None,
                status: ReleaseStatus) -> tuple[bool, list[RemovePreviewRoute]]:
    """Whether every route may stay, and the removals of the Release's preview rules that `step` does
    not keep, each service's on its own listener, the last wave first (`Backend.rollback_order`).

    A service's rule stays only at a preview step, under its own owner, while its canary target group
    has no production weight. Any other rule of this Release on a listener it reads goes: another
    service's owner (a service renamed), the bare owner on a tier of several or a service's on a tier
    of one (the spec changed its form mid-preview)."""
    keep_all = step is not None
    removals: list[RemovePreviewRoute] = []
    services = {s.name: s for s in inp.spec.backend.service_list()}
    for n in inp.spec.backend.rollback_order():
        listener = inp.obs.view(n).listener
        if listener is None:
            continue
        # A service with nothing to roll out (it runs the tier's version already, or goes home) keeps
        # no rule, as `_routes` asks it none.
        rolling = not inp.spec.backend.several or group.status_of(status, services[n]).backend.canary_image is not None
        own = owner(inp, n)
        ours = list(dict.fromkeys(r.owner for r in listener.previews if _ours(inp, r.owner)))
        for who in ours:
            rules = listener.preview_of(who)
            clear = all(r.target_group_arn is not None and listener.weight(r.target_group_arn) == 0 for r in rules)
            if who == own and step is not None and clear and rolling:
                continue
            removals.append(RemovePreviewRoute(listener.arn, who))
            if who == own:
                keep_all = False
    return keep_all, removals
