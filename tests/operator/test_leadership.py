"""The leader Lease on the real local kube-apiserver, each process's monotonic clock played by the
test: who leads when, and how long nobody acted before a term began (the gap that holds a rollout's
step and pause timers, `Reconciler._held_by_gap`)."""

from __future__ import annotations

import itertools
import os

from kubernetes import client as k8s_client

from controller.operator.leadership import LeaseTimes, Leadership

TIMES = LeaseTimes(lease=15.0, renew=10.0, retry=2.0)
_names = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pair(kube_api: k8s_client.ApiClient) -> tuple[Leadership, Clock, Leadership, Clock]:
    name = f"leader-test-{os.getpid()}-{next(_names)}"
    ca, cb = Clock(), Clock()
    a = Leadership(kube_api, "default", name, me="a", times=TIMES, clock=ca)
    b = Leadership(kube_api, "default", name, me="b", times=TIMES, clock=cb)
    return a, ca, b, cb


def test_a_takeover_after_the_holder_went_silent_counts_the_silence_as_a_gap(kube_api: k8s_client.ApiClient) -> None:
    a, ca, b, cb = pair(kube_api)
    assert a.try_once() and a.begin() == 1
    assert not b.try_once()  # standing by: a holds it
    ca.now = 2.0
    assert a.try_once()  # renewed: a new record
    cb.now = 3.0
    assert not b.try_once()  # b sees that renewal at its 3 s
    # a goes silent (an API server outage it does not come back from first, or a pause). b takes
    # over once the record stood unchanged for the Lease's 15 s on b's clock.
    cb.now = 17.0
    assert not b.try_once()
    cb.now = 19.0
    assert b.try_once() and b.begin() == 1
    # a acted at most until 3 + 10 (its renew deadline after the renewal b saw): from then until
    # 19 nobody did, so the rollout's timers move on by 6 s, not by the 16 s since b last saw a.
    assert b.gap(1) == 6.0
    ca.now = 40.0
    assert not a.try_once()  # a comes back: b holds it


def test_a_lease_handed_back_is_taken_at_once_without_a_gap(kube_api: k8s_client.ApiClient) -> None:
    a, ca, b, cb = pair(kube_api)
    assert a.try_once()
    assert not b.try_once()
    a.stop(release=True)  # SIGTERM: the holder empties the Lease
    cb.now = 1.0
    assert b.try_once() and b.gap(1) == 0.0


def test_the_holder_renewing_after_its_deadline_counts_the_time_past_it(kube_api: k8s_client.ApiClient) -> None:
    a, ca, b, cb = pair(kube_api)
    assert a.try_once() and a.begin() == 1
    ca.now = 25.0  # a was paused (or could not reach the API server) past its 10 s deadline
    assert a.try_once() and a.begin() == 2  # renewed: a new term, nothing remembered acted on
    assert a.gap(2) == 15.0


class Steps(Clock):
    """A clock that reads `then` once after `now`: a call answered `then - now` seconds later."""

    def __init__(self) -> None:
        super().__init__()
        self.then: float | None = None

    def __call__(self) -> float:
        if self.then is not None and getattr(self, "_read", False):
            self.now, self.then, self._read = self.then, None, False
            return self.now
        self._read = self.then is not None
        return self.now


def test_a_renewal_answered_after_its_deadline_leads_from_the_next_one_with_the_whole_gap(
        kube_api: k8s_client.ApiClient) -> None:
    clock = Steps()
    a = Leadership(kube_api, "default", f"leader-test-{os.getpid()}-{next(_names)}", me="a", times=TIMES, clock=clock)
    assert a.try_once() and a.begin() == 1  # valid until 10
    clock.now, clock.then = 200.0, 211.0  # the API server is back at 200; its answer comes at 211
    assert not a.try_once() and not a.leading  # no term that could not act
    clock.now = 212.0
    assert a.try_once() and a.begin() == 2
    assert a.gap(2) == 202.0  # nobody acted from 10 to 212: the gap is not lost with a dead term
