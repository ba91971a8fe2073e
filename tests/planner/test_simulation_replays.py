"""Replays of the bugs the planner simulation found (tests/planner/simulation.py), each the shrunk
step list it printed, named after what went wrong. Each failed before its fix in the planner; the
seed that found it is in the comment (`benchmarks/simulation.py --start SEED --seeds 1` shows it
again)."""

from __future__ import annotations

from controller.api.release import Phase
from controller.planner.actions import DeleteTaskSet, RemovePreviewRoute, SetListenerWeights

from tests.planner.simulation import PassRecord, Step, live_task_sets, run

ROLLING = {"type": "Rolling", "rolling": {"steps": [20, 51, 62, 100], "interval": "5s"}}
FRONTEND = {"version": "1.0.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"}}


def replay(steps: list[Step]) -> list[PassRecord]:
    trace: list[PassRecord] = []
    found = run(steps, trace=trace)
    assert found is None, str(found)
    return trace


def test_superseding_a_rolling_step_restores_the_stable_scale_before_it_takes_all_traffic() -> None:
    # seed 4: Rolling had shrunk 1.0.0 to 80% for a 20% canary; a new version superseded it and all
    # traffic went back to the 80% task set in the same pass.
    trace = replay([
        {"op": "start", "strategy": ROLLING, "analysis": True, "frontend": None, "flags": None},
        {"op": "version", "version": "1.1.0"},
        {"op": "pass"},
        {"op": "version", "version": "2.1.0"},
    ])
    back = next(p for p in trace if any(isinstance(a, SetListenerWeights) and max(a.weights.values()) == 100
                                        for a in p.decision.actions))
    assert all(ts.scale_percent == 100.0 for ts in back.seen.service.task_sets if ts.image.endswith(":1.0.0"))  # type: ignore[union-attr]


def test_going_back_to_the_stable_version_mid_promotion_keeps_the_task_set_that_serves() -> None:
    # seed 8: the canary 1.1.0 was primary with all traffic (promotion half done) when the spec went
    # back to 1.0.0: the planner took 1.0.0 for a new canary, deleted the 1.1.0 task set that served
    # 100% and shrank 1.0.0 to 17%.
    replay([
        {"op": "start", "strategy": {"type": "Rolling", "rolling": {"steps": [17, 25, 100], "interval": "5s"}},
         "analysis": True, "frontend": FRONTEND, "flags": None},
        {"op": "version", "version": "1.1.0"},
        {"op": "request", "kind": "promote"},
        {"op": "request", "kind": "retry"},
        {"op": "version", "version": "1.0.0"},
    ])


def test_an_invalid_spec_mid_promotion_then_the_stable_version_again_keeps_the_serving_task_set() -> None:
    # seed 9: the same, with an invalid spec in between (the reconciler writes phase Failed over the
    # rollout's status, so the spec change was not seen as superseding a rollout).
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "5m"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "version", "version": "1.3.0"},
        {"op": "measure", "verdict": "Passed"},
        {"op": "invalid", "patch": 0},
        {"op": "version", "version": "1.0.0"},
    ])


def test_a_lost_status_mid_rollout_keeps_the_groups_roles() -> None:
    # seed 9 (after the fix above): the status was lost while 1.1.0 served from green; starting afresh
    # the planner took blue for the stable group, "promoted" onto green and deleted what served there.
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "5m"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "version", "version": "1.1.0"},
        {"op": "request", "kind": "promote"},
        {"op": "measure", "verdict": "Passed"},
        {"op": "version", "version": "1.0.0"},
        {"op": "restart", "back": "empty"},
    ])


def test_a_canary_step_with_less_weight_moves_traffic_before_it_shrinks_the_canary() -> None:
    # seed 20: a Rolling canary at 13% switched to a Canary strategy whose first step is 12%: the canary
    # was scaled to 12% while it still took 13% of the traffic.
    replay([
        {"op": "start", "strategy": {"type": "Rolling", "rolling": {"steps": [13, 42, 74, 100], "interval": "5s"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "version", "version": "1.3.0"},
        {"op": "pass"},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 12}, {"setWeight": 55}]}}},
    ])


def test_a_restart_from_an_older_status_records_what_serves_as_stable() -> None:
    # seed 43: after 1.3.0 succeeded, a restart decided from the status of revision 1 (1.0.0 stable in
    # blue); 1.3.0 already served from green, so nothing moved, but the status kept 1.0.0 and blue as
    # stable and the drift revert then sent all traffic to the empty blue group.
    replay([
        {"op": "start", "strategy": {"type": "Fast"}, "analysis": True, "frontend": None, "flags": None},
        {"op": "version", "version": "1.3.0"},
        {"op": "measure", "verdict": "Inconclusive"},
        {"op": "pass"},
        {"op": "restart", "back": 3},
    ])


def test_a_progress_deadline_does_not_put_weight_on_the_canary_it_deletes() -> None:
    # seed 58: a clock jump past the progress deadline in the pass that set the canary's first weight:
    # the pass asked for 10% on the canary, then, rolling back, deleted the canary.
    replay([
        {"op": "start", "strategy": {"type": "Auto", "changeClass": "api"}, "analysis": True, "frontend": None,
         "flags": None},
        {"op": "version", "version": "1.1.0"},
        {"op": "clock", "seconds": 3600},
    ])


def test_superseding_a_half_done_promotion_makes_the_stable_task_set_primary_again() -> None:
    # seed 542: 1.1.0 had become primary (promotion half done) when 2.1.0 superseded it; the pass moved
    # traffic back and deleted 1.1.0 but left 1.0.0 ACTIVE, so the service had no primary task set, and
    # a planner that lost its status then took it for an empty service and deleted what served.
    trace = replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}},
         "analysis": False, "frontend": FRONTEND, "flags": {"new_chat": False}},
        {"op": "version", "version": "1.1.0"},
        {"op": "request", "kind": "promote"},
        {"op": "version", "version": "2.1.0"},
        {"op": "paused", "value": True},
        {"op": "restart", "back": "empty"},
        {"op": "version", "version": "1.3.0"},
    ])
    assert all(p.intent.service is not None and p.intent.service.primary is not None for p in trace)


def test_a_restart_from_a_status_older_than_the_world_follows_the_groups_the_task_sets_serve_from() -> None:
    # seed 539: two restarts (status lost, then an older one) left the status naming green as the
    # stable group while 1.2.0 served from blue and the new canary ran in green; the planner took the
    # canary's weight for blue, "promoted" and deleted 1.2.0, which served all traffic. With that
    # fixed, the promoted pass drained and deleted the same leftover twice (leftovers first, keep-warm
    # after): ECS refuses to scale a deleted task set, and the rest of the pass was lost.
    replay([
        {"op": "start", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 97}, {"pause": {"duration": "2m"}}]}},
         "analysis": True, "frontend": {**FRONTEND, "canary": {"steps": [{"setWeight": 4}, {"pause": {"duration": "2m"}}]}},
         "flags": {"new_chat": False}},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "version", "version": "1.3.0"},
        {"op": "pass"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "version", "version": "1.2.0"},
        {"op": "pass"},
        {"op": "restart", "back": "empty"},
        {"op": "version", "version": "1.0.0"},
        {"op": "restart", "back": 3},
    ])


def test_a_frontend_canary_is_analysed_whatever_the_backend_strategy() -> None:
    # seed 519: with metrics, a frontend canary's timed pause waits for a Passed analysis, but with a
    # Fast backend no analysis was ever due: the rollout waited forever ("analysis is pending").
    replay([
        {"op": "start", "strategy": {"type": "Auto", "changeClass": "core"}, "analysis": True,
         "frontend": {**FRONTEND, "canary": {"steps": [{"setWeight": 4}, {"pause": {"duration": "2m"}},
                                                       {"setWeight": 11}, {"pause": {"duration": "30s"}}]}},
         "flags": {"new_chat": False}},
        {"op": "fault", "kind": "throttle_read"},
        {"op": "frontend", "frontend": {"version": "1.1.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"}}},
        {"op": "undo"},
        {"op": "strategy", "strategy": {"type": "Fast"}},
    ])


def test_a_status_naming_the_new_canary_as_stable_still_keeps_the_primary() -> None:
    # seed 269: a restart decided from an older status that named 1.1.0 stable (since rolled back; 1.0.0
    # served); undo then rolled out 1.1.0 again, the canary matched the status's stable image, and the
    # task set that served (1.0.0) was taken for a leftover and deleted.
    replay([
        {"op": "start", "strategy": {"type": "Fast"}, "analysis": True, "frontend": FRONTEND, "flags": None},
        {"op": "strategy", "strategy": {"type": "Auto"}},
        {"op": "version", "version": "1.1.0"},
        {"op": "request", "kind": "promote"},
        {"op": "measure", "verdict": "Inconclusive"},
        {"op": "pass"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "pass"},
        {"op": "version", "version": "1.2.0"},
        {"op": "restart", "back": 3},
        {"op": "request", "kind": "abort"},
        {"op": "undo"},
    ])


def test_a_promote_before_the_first_frontend_canary_step_switches_the_origin() -> None:
    # seed 7902 (10,000-seed run): promote while the frontend canary had not started skipped every
    # step and asked CloudFront to promote a staging copy that did not exist: asked again forever.
    trace = replay([
        {"op": "start", "strategy": {"type": "Rolling"}, "analysis": False, "frontend": FRONTEND,
         "flags": {"new_chat": False}},
        {"op": "paused", "value": True},
        {"op": "frontend", "frontend": {"version": "1.1.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"},
                                        "requiresBackend": ">=1.0.0", "canary": {"steps": [{"setWeight": 3}, {"setWeight": 7}]}}},
        {"op": "request", "kind": "promote"},
    ])
    assert trace[-1].seen.frontend is not None and trace[-1].seen.frontend.origin_path == "/releases/1.1.0"


def test_a_status_naming_a_stable_task_set_long_gone_sends_no_traffic_to_an_empty_group() -> None:
    # seed 3481 (10,000-seed run): status lost, then a restart from an older one (mid BlueGreen, 1.0.0
    # stable, since deleted; 2.1.0 primary with all traffic): the preview step put all traffic back on
    # the stable group, where nothing ran.
    replay([
        {"op": "start", "strategy": {"type": "Auto"}, "analysis": False, "frontend": None, "flags": None},
        {"op": "strategy", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "5m"}}},
        {"op": "version", "version": "2.1.0"},
        {"op": "measure", "verdict": "Passed"},
        {"op": "measure", "verdict": "Passed"},
        {"op": "restart", "back": "empty"},
        {"op": "restart", "back": 2},
    ])


def test_a_canary_that_fails_as_its_promotion_lands_is_not_declared_promoted() -> None:
    # seed 6350 (10,000-seed run): a late promotion write landed while the new task set stopped being
    # steady; the pass took its traffic away (to 1.0.0) and, from the same observation, declared it
    # promoted; the next rollout then moved all traffic onto that unsteady task set.
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "5m"}},
         "analysis": False, "frontend": FRONTEND, "flags": None},
        {"op": "version", "version": "3.0.0"},
        {"op": "fault", "kind": "throttle_write", "index": 2},
        {"op": "fault", "kind": "late"},
        {"op": "fault", "kind": "unstable"},
        {"op": "strategy", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}}},
        {"op": "version", "version": "1.0.0"},
    ])


def test_a_canary_left_with_all_traffic_is_not_shrunk_under_it() -> None:
    # seed 4204 (10,000-seed run): status lost, then a restart from an older one (canary 3.0.0 at its
    # 74% step) while 3.0.0, half promoted, served all traffic and 1.0.0 was gone: the weights could
    # not move (no stable task set to take the rest), yet the canary was scaled down to 74%.
    replay([
        {"op": "start", "strategy": {"type": "Auto"}, "analysis": True, "frontend": None, "flags": None},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 74}, {"pause": {"duration": "30s"}}]}}},
        {"op": "version", "version": "3.0.0"},
        {"op": "flags", "flags": {"new_chat": True}},
        {"op": "flags", "flags": {"new_chat": False}},
        {"op": "pass"},
        {"op": "flags", "flags": {"new_chat": False}},
        {"op": "pass"},
        {"op": "flags", "flags": {"new_chat": True}},
        {"op": "request", "kind": "retry"},
        {"op": "flags", "flags": {"new_chat": True}},
        {"op": "pass"},
        {"op": "pass"},
        {"op": "version", "version": "3.0.0"},
        {"op": "restart", "back": "empty"},
        {"op": "restart", "back": 3},
    ])


def test_a_spec_naming_the_stable_version_while_another_is_primary_is_no_canary_of_itself() -> None:
    # seed 6311 (10,000-seed run): a restart from an older status (Succeeded 1.0.0; 1.0.0 had since
    # been rolled back and 1.2.0 served) re-created 1.0.0 beside 1.2.0; a strategy edit then rolled
    # out 1.0.0 as a canary while the status named it stable: the canary's weight went to the other
    # target group, where nothing ran.
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "version", "version": "1.2.0"},
        {"op": "frontend", "frontend": {"version": "1.1.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"},
                                        "requiresBackend": ">=3.0.0", "canary": {"steps": [{"setWeight": 8}]}}},
        {"op": "fault", "kind": "twice"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "version", "version": "1.0.0"},
        {"op": "request", "kind": "promote"},
        {"op": "pass"},
        {"op": "fault", "kind": "stale"},
        {"op": "strategy", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}}},
        {"op": "restart", "back": 2},
        {"op": "strategy", "strategy": {"type": "Rolling", "rolling": {"steps": [68, 84, 100], "interval": "30s"}}},
    ])


def test_the_old_primary_beside_an_unsteady_stable_task_set_stays_until_it_is_steady() -> None:
    # seed 6311 (10,000-seed run, after the fix above): the same world, with 1.0.0 not steady beside
    # 1.2.0 in the group with all traffic; a new version made 1.0.0 primary and deleted 1.2.0 at
    # once, leaving the traffic on a task set that was not steady.
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "version", "version": "1.2.0"},
        {"op": "frontend", "frontend": {"version": "1.1.0", "cloudfront": {"distributionId": "E2ABCDEF", "originId": "web"},
                                        "requiresBackend": ">=3.0.0", "canary": {"steps": [{"setWeight": 8}]}}},
        {"op": "fault", "kind": "twice"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "version", "version": "1.0.0"},
        {"op": "request", "kind": "promote"},
        {"op": "pass"},
        {"op": "fault", "kind": "stale"},
        {"op": "strategy", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s"}}},
        {"op": "restart", "back": 2},
        {"op": "fault", "kind": "unstable"},
        {"op": "version", "version": "2.0.0"},
    ])


def test_the_whole_going_back_story_keeps_traffic_on_steady_task_sets() -> None:
    # seed 2506 (10,000-seed run), the shrunk sequence: after the early Succeeded above, a strategy
    # edit rolled "out" 1.0.0 as a canary of itself, and the next version made the unsteady 1.0.0
    # primary and deleted 3.0.0, which served all traffic.
    replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "30s"}},
         "analysis": False, "frontend": FRONTEND, "flags": None},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 23}, {"pause": {"duration": "2m"}}]}}},
        {"op": "version", "version": "3.0.0"},
        {"op": "pass"},
        {"op": "frontend", "frontend": {**FRONTEND, "requiresBackend": ">=1.0.0,<2.0.0"}},
        {"op": "measure", "verdict": "Inconclusive"},
        {"op": "pass"},
        {"op": "version", "version": "2.0.0"},
        {"op": "fault", "kind": "unstable"},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "version", "version": "1.0.0"},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 2}, {"pause": {"duration": "30s"}}]}}},
        {"op": "invalid", "patch": 1},
        {"op": "strategy", "strategy": {"type": "Auto"}},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "pass"},
        {"op": "version", "version": "1.3.0"},
    ])


def test_going_back_mid_promotion_is_not_succeeded_while_the_old_canary_serves() -> None:
    # seed 2506 (10,000-seed run), the first wrong pass: the spec went back to 1.0.0 while 3.0.0, half
    # promoted, served all traffic and 1.0.0 was not steady; the pass could not move traffic yet, and
    # said Succeeded "backend 1.0.0 live" all the same (the next rollout then took 1.0.0 for a canary).
    trace = replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "30s"}},
         "analysis": False, "frontend": FRONTEND, "flags": None},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 23}, {"pause": {"duration": "2m"}}]}}},
        {"op": "version", "version": "3.0.0"},
        {"op": "pass"},
        {"op": "frontend", "frontend": {**FRONTEND, "requiresBackend": ">=1.0.0,<2.0.0"}},
        {"op": "measure", "verdict": "Inconclusive"},
        {"op": "pass"},
        {"op": "version", "version": "2.0.0"},
        {"op": "fault", "kind": "unstable"},
        {"op": "version", "version": "1.0.0"},
    ])
    for p in trace:
        st, weights = p.decision.status, p.intent.listener.weights  # type: ignore[union-attr]
        if st.phase == Phase.SUCCEEDED:
            serving = {ts.image for ts in live_task_sets(p.intent) if ts.scale_percent > 0 and weights.get(ts.target_group_arn or "", 0) > 0}
            assert serving == {st.backend.stable_image}, f"pass {p.index}: Succeeded while {serving} serve"


def test_a_failed_flags_rollout_whose_flags_are_already_back_ends_rolled_back() -> None:
    # seed 9646 (10,000-seed run): a flags-only rollout inside the keep-warm window failed its
    # analysis and flipped the flags back; that status was lost, and the restarted pass found the
    # flags already back, the backend unchanged and no frontend to move: "no warm previous version
    # to go back to", still Progressing, forever.
    trace = replay([
        {"op": "start", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 1}, {"pause": {"duration": "30s"}}, {"setWeight": 30}]}},
         "analysis": True, "frontend": {**FRONTEND, "canary": {"steps": [{"setWeight": 2}, {"setWeight": 5}]}},
         "flags": {"new_chat": False}},
        {"op": "strategy", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "5m"}}},
        {"op": "version", "version": "1.1.0"},
        {"op": "version", "version": "1.1.0"},
        {"op": "clock", "seconds": 30},
        {"op": "paused", "value": False},
        {"op": "request", "kind": "retry"},
        {"op": "pass"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "flags", "flags": {"new_chat": True}},
        {"op": "clock", "seconds": 30},
        {"op": "pass"},
        {"op": "restart", "back": 1},
    ])
    assert trace[-1].decision.status.phase == Phase.ROLLED_BACK


def test_a_pause_after_a_lost_delete_of_the_superseded_canary_never_leaves_three_task_sets() -> None:
    # seed 15578 (10,000-19,999 run): a superseding pass deleted the old canary (1.2.0) and created
    # the new one (2.0.0) together; the delete was lost, and `paused: true` then held three live task
    # sets. A pause still deletes leftovers that serve no traffic.
    trace = replay([
        {"op": "start", "strategy": {"type": "Canary", "canary": {"steps": [{"setWeight": 41}, {"pause": {"duration": "30s"}}, {"setWeight": 75}]}},
         "analysis": False, "frontend": None, "flags": None},
        {"op": "version", "version": "1.2.0"},
        {"op": "strategy", "strategy": {"type": "Rolling", "rolling": {"steps": [34, 92, 100], "interval": "5s"}}},
        {"op": "version", "version": "2.0.0"},
        {"op": "fault", "kind": "lose", "index": 2},
        {"op": "paused", "value": True},
    ])
    paused = next(p for p in trace if p.decision.status.phase == Phase.PAUSED)
    assert any(isinstance(a, DeleteTaskSet) for a in paused.decision.actions)


def test_an_analysis_that_never_answers_ends_the_rollout_at_the_progress_deadline() -> None:
    # seed 20: Prometheus down (every measurement a provider error) during a Rolling rollout: it was
    # held at its first analysed step for ever, Progressing, with nobody asked to act.
    trace = replay([
        {"op": "start", "strategy": {"type": "Rolling", "rolling": {"steps": [13, 42, 74, 100], "interval": "5s"}},
         "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "measure", "verdict": "Inconclusive"},
        {"op": "version", "version": "2.1.0"},
    ])
    last = trace[-1].decision.status
    assert last.phase == Phase.ROLLED_BACK and "analysis never answered" in last.message, last.message
    held = [p for p in trace if p.decision.status.backend.canary_version == "2.1.0"]
    assert held[-1].index - held[0].index < 120
    assert [e.reason for p in trace for e in p.decision.events].count("AnalysisHeld") == 1


def test_a_failed_analysis_after_promotion_with_nothing_warm_to_go_back_to_ends_failed() -> None:
    # seed 1249 of 10,000: the analysis failed in the keep-warm window (no data while the promoted
    # version served) with no warm previous version: the Release stayed Progressing for ever,
    # repeating "no warm previous version to go back to". It ends Failed now, the version serving.
    from tests.planner.simulation import scenario

    trace: list[PassRecord] = []
    assert run(scenario(1249), trace=trace) is None
    last = trace[-1].decision.status
    assert last.phase in (Phase.FAILED, Phase.SUCCEEDED, Phase.ROLLED_BACK), last.message


BLUE_GREEN_HEADER = {"type": "BlueGreen", "blueGreen": {"previewDuration": "10s", "scaleDownDelay": "30s",
                                                        "previewHeader": {}}}


def test_a_preview_route_that_lands_late_waits_until_no_production_weight_is_on_its_group() -> None:
    # seed 3018: a blue-green preview's route landed late, after a Canary superseding it had moved 66%
    # of production onto the canary's group; back to the blue-green preview, the route was kept while
    # that weight was still there. It goes until the weights are back at 0, then comes again.
    trace = replay([
        {"op": "start", "strategy": BLUE_GREEN_HEADER, "analysis": False, "frontend": FRONTEND, "flags": None},
        {"op": "version", "version": "1.3.0"},
        {"op": "fault", "kind": "late"},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [
            {"setWeight": 66}, {"pause": {"duration": "2m"}}, {"setWeight": 99}, {"pause": {"duration": "30s"}}]}}},
        {"op": "strategy", "strategy": BLUE_GREEN_HEADER},
    ])
    assert any(p.intent.listener and p.intent.listener.previews for p in trace)  # the preview did happen


def test_a_refused_spec_leaves_the_preview_route_as_it_is() -> None:
    # seed 3212: a spec refused as incompatible (the frontend requires a backend >= 3.0.0) asked for the
    # preview route's removal: a refused spec changes nothing in AWS.
    replay([
        {"op": "start", "strategy": {"type": "Canary", "canary": {"steps": [
            {"preview": {"duration": "2m"}}, {"setWeight": 93}, {"pause": {}}]}},
         "analysis": True, "frontend": FRONTEND, "flags": None},
        {"op": "version", "version": "1.1.0"},
        {"op": "frontend", "frontend": {**FRONTEND, "requiresBackend": ">=3.0.0"}},
        {"op": "strategy", "strategy": {"type": "Rolling", "rolling": {"steps": [21, 51, 92, 100], "interval": "30s"}}},
    ])


def test_a_stable_task_set_deleted_under_a_rollout_is_created_again_where_the_traffic_goes() -> None:
    # seed 1101 (10,000-seed run): a superseded rollout's changes landed late, after a restart that
    # had lost the status and adopted 3.0.0 as the stable: 3.0.0's task set was deleted while the
    # listener sent all traffic to its (now empty) group, and the pass did nothing about it.
    trace = replay([
        {"op": "start", "strategy": {"type": "Canary", "canary": {"steps": [
            {"preview": {"duration": "30s"}}, {"setWeight": 28}, {"setWeight": 47}, {"pause": {"duration": "2m"}}]}},
         "analysis": False, "frontend": None, "flags": {"new_chat": False}},
        {"op": "version", "version": "3.0.0"},
        {"op": "strategy", "strategy": {"type": "Rolling", "rolling": {"steps": [95, 100], "interval": "30s"}}},
        {"op": "request", "kind": "promote"},
        {"op": "version", "version": "3.0.0"},
        {"op": "measure", "verdict": "NoData"},
        {"op": "paused", "value": False},
        {"op": "pass"},
        {"op": "version", "version": "1.3.0"},
        {"op": "fault", "kind": "late"},
        {"op": "restart", "back": "empty"},
    ])
    restored = [p for p in trace if any(type(a).__name__ == "EnsureTaskSet" and a.image.endswith(":3.0.0")
                                        for a in p.decision.actions)]
    assert restored, "3.0.0's task set was not created again"


def test_a_restart_back_onto_a_preview_after_the_promotion_asks_no_route_to_the_version_that_serves() -> None:
    # seed 7140 (10,000 seeds on the frontend-preview branch; it fails the same on integrate): a
    # restart took the status back to the preview's hold after the promotion had landed (1.1.0 primary
    # with all traffic, 1.0.0 deleted). The walker could not move the weights back (no stable task set
    # to take them) and the preview asked for a route to the group that served all production.
    frontend = {**FRONTEND, "canary": {"steps": [{"setWeight": 5}]}}
    trace = replay([
        {"op": "start", "strategy": {"type": "BlueGreen", "blueGreen": {"previewDuration": "1m", "scaleDownDelay": "5m",
                                                                        "previewHeader": {}}},
         "analysis": False, "frontend": frontend, "flags": None},
        {"op": "version", "version": "1.1.0"},
        {"op": "paused", "value": False},
        {"op": "frontend", "frontend": {**FRONTEND, "version": "2.0.0", "requiresBackend": ">=1.0.0"}},
        {"op": "version", "version": "1.1.0"},
        {"op": "restart", "back": 3},
        {"op": "fault", "kind": "throttle_read"},
        {"op": "restart", "back": 3},
    ])
    assert trace[-1].decision.status.phase == Phase.SUCCEEDED


def test_a_tier_service_with_nothing_to_roll_out_keeps_no_preview_rule() -> None:
    # seed 1552 (2,000 seeds, tiers with previews): a version superseded mid-preview left mcp with
    # nothing to roll out (its entry's canary gone) while the tier stayed at the preview step, and
    # mcp's rule stayed, routing the header to a group the rollout no longer moves.
    trace = replay([
        {"op": "start", "strategy": {"type": "Rolling", "rolling": {"steps": [73, 88, 100], "interval": "5s"}},
         "analysis": True, "frontend": None, "flags": None,
         "tier": [["api", [], True], ["worker", [], False], ["mcp", ["api"], True]]},
        {"op": "strategy", "strategy": {"type": "Fast"}},
        {"op": "version", "version": "3.0.0"},
        {"op": "measure", "verdict": "Failed"},
        {"op": "strategy", "strategy": {"type": "Canary", "canary": {"steps": [
            {"preview": {"duration": "30s"}}, {"setWeight": 77}, {"pause": {"duration": "2m"}}]}}},
        {"op": "measure", "verdict": "NoData"},
        {"op": "pass"},
        {"op": "version", "version": "1.0.0"},
    ])
    assert any(isinstance(a, RemovePreviewRoute) and a.owner.endswith("/mcp")
               for p in trace for a in p.decision.actions)


def test_a_task_set_serving_when_the_stable_image_runs_nowhere_is_the_way_back_not_a_leftover() -> None:
    # seed 4221: after restarts onto older statuses and a late write across a strategy change, the
    # status named a stable image that ran nowhere and the canary was primary; the 3.0.0 task set
    # serving 75% of the traffic was drained as a leftover with nothing to take that traffic. (With
    # two services, the other service's steps also "landed" without their weights.)
    steps: list[Step] = [
        {"op": "start", "strategy": {"type": "Fast"}, "analysis": True, "frontend": None, "flags": {"new_chat": False}},
        {"op": "request", "kind": "retry"},
        {"op": "version", "version": "1.3.0"},
        {"op": "pass"},
        {"op": "restart", "back": 3},
        {"op": "version", "version": "3.0.0"},
        {"op": "restart", "back": 3},
        {"op": "version", "version": "2.1.0"},
        {"op": "fault", "kind": "late"},
        {"op": "strategy", "strategy": {"type": "Rolling"}},
    ]
    trace = replay(steps)
    # The pass that found 3.0.0 serving 75% beside a 2.1.0 primary deleted nothing serving.
    found = next(p for p in trace if any(ts.image and ts.image.endswith(":3.0.0") and ts.scale_percent == 75.0
                                         for ts in live_task_sets(p.seen)))
    assert not any(isinstance(a, DeleteTaskSet) for a in found.decision.actions)
    tier: list[Step] = [{**steps[0], "tier": [["api", [], True], ["mcp", ["api"], True]]}, *steps[1:3],
                        {"op": "version", "version": "1.3.0"}, {"op": "pass"}, {"op": "restart", "back": 3},
                        {"op": "version", "version": "3.0.0"}, {"op": "restart", "back": 3}, {"op": "pass"},
                        {"op": "fault", "kind": "late"}, {"op": "strategy", "strategy": {"type": "Rolling"}}]
    replay(tier)
