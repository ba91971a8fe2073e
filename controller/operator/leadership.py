"""One acting process per operator scope: a `coordination.k8s.io/v1` Lease, as client-go's
`leaderelection` holds one, checked before every write (`controller.fencing`).

Why not kopf's peering: kopf pauses the standby's watches through a KopfPeering object in each
watched namespace. An API server outage longer than its keepalives killed peered replicas
(`Multidimensional multitasker has failed`), deleting a watched namespace deleted its peering
object and with it the operator, and two operators with different `--peering` names never saw
each other: both wrote AWS for one Release. kopf now runs standalone (controller/operator/main.py;
`--peering` is deprecated and ignored); this Lease decides who acts.

The Lease lives in the operator's own namespace (`claims_namespace()`, never a watched one, so a
namespace deletion cannot take it away), named after what the process watches (namespaces and
selector) unless RELEASE_CONTROLLER_LEADER_LEASE names it: every process started on the same scope,
whatever `--peering` name an older Deployment still passes, competes for the same Lease.
Deployments with different scopes (a second shard, disjoint namespaces) each have their own. Two
deployments whose scopes overlap without being equal must share a Lease name through
RELEASE_CONTROLLER_LEADER_LEASE (README).

Timing, all on this process's monotonic clock (wall clocks are never compared across processes):

- the leader renews every `retry` seconds; it acts only until `renew` seconds after the start of
  its last successful renewal (`valid_until`), and stops acting then, whether or not it could reach
  the API server (a paused process finds the deadline passed the moment it resumes);
- a candidate takes over only after it has seen the same Lease record (holder, renew time) unchanged
  for the Lease's own `leaseDurationSeconds`, measured on its own clock from when it first saw it;
- `lease > renew`: the old leader's deadline (its renewal's start + renew) passes before the
  candidate, which saw that renewal only after it was written, may take over (+ lease).

Time for the rollout's timers comes from the API server, not from this host's clock: each Lease
read carries the server's `Date`, and `server_now()` is this host's clock corrected by the offset
last measured. Every replica stamps and compares step and pause times on the same clock, so a
replica whose clock is off (by 10 minutes, say) neither ends a pause early nor fails a rollout at
once (the error is the `Date` header's one-second resolution plus half a round trip). A process
that has not measured the offset does not lead (leading needs a Lease write), so it decides nothing.

A term that begins after nobody acted (the holder renewing past its deadline, or a candidate taking
over from a holder it last saw renew more than `renew` seconds ago: an outage, a pause) carries that
gap (`gap(term)`); the first pass of the term moves the rollout's step and pause timers on by it,
so time in which nobody could act never counts towards a pause.

The leader's term grows each time it starts leading; a pass started in an older term may not
write (`Fence.check(term)`). Leaving on SIGTERM, the leader empties the Lease's holder so a standby
takes over at once (client-go's ReleaseOnCancel).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from controller import metrics
from controller.api.release import GROUP
from controller.fencing import NotLeading

log = logging.getLogger(__name__)

LEADER_LABEL = f"{GROUP}/leader"
SCOPE_ANNOTATION = f"{GROUP}/scope"


@dataclass(frozen=True)
class LeaseTimes:
    """client-go's defaults: a Lease of 15 s, renewed within 10 s, tried every 2 s."""

    lease: float = 15.0
    renew: float = 10.0
    retry: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease > self.renew > self.retry > 0:
            raise ValueError(f"leader election needs lease > renew > retry > 0, not {self}")


def lease_name(namespaces: Sequence[str], all_namespaces: bool, selector: str | None) -> str:
    """The Lease of one operator scope: the same namespaces and selector, the same name.

    >>> lease_name(["b", "a"], False, None) == lease_name(["a", "b"], False, None)
    True
    """
    return "release-controller-leader-" + hashlib.sha256(scope_of(namespaces, all_namespaces, selector).encode()).hexdigest()[:16]


def scope_of(namespaces: Sequence[str], all_namespaces: bool, selector: str | None) -> str:
    watched = "*" if all_namespaces else ",".join(sorted(set(namespaces)))
    return f"namespaces={watched};selector={selector or ''}"


def identity() -> str:
    """This process, unique even for two processes of one pod: host (the pod's name), pid, a nonce."""
    host = os.environ.get("POD_ID") or os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{host}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


Listener = Callable[[bool, int, str], None]
"""Called on every change: (leading, term, why). From the election's thread."""


class Leadership:
    """A Lease held with client-go's rules; `begin`/`check` make it a `controller.fencing.Fence`."""

    def __init__(self, api_client: Any, namespace: str, name: str, me: str | None = None,
                 times: LeaseTimes = LeaseTimes(), clock: Callable[[], float] = time.monotonic,
                 scope: str = "", wall: Callable[[], dt.datetime] | None = None) -> None:
        self._leases = client.CoordinationV1Api(api_client)
        self.wall = wall or _now  # this host's clock (tests shift it: RELEASE_CONTROLLER_TEST_CLOCK_OFFSET_SECONDS)
        self._offset: dt.timedelta | None = None  # this host's clock minus the API server's
        self.namespace, self.name, self.me, self.times, self.clock, self.scope = namespace, name, me or identity(), times, clock, scope
        self._lock = threading.Lock()
        self._term = 0
        self._leading = False
        self._valid_until = -float("inf")
        self._last_valid_until = -float("inf")  # the deadline of the last renewal, kept across terms
        self._observed: tuple[Any, ...] | None = None  # the other holder's record, as last seen
        self._observed_at = 0.0
        # The other holder's last renewal as this process saw it, kept across outages (unlike
        # `_observed`): (record, when first seen). A takeover's gap is counted from it.
        self._renewal_seen: tuple[tuple[Any, ...], float] | None = None
        self._takeover_gap = 0.0
        self._carried: tuple[float, float] | None = None  # a late takeover's gap, and when it was taken
        self._why = "starting"
        self._listeners: list[Listener] = []
        self._gaps: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        metrics.set_leader("standby", "starting")

    # -- the fence
    def begin(self) -> int:
        with self._lock:
            if not self._leading or self.clock() >= self._valid_until:
                raise NotLeading(f"not leading ({self._why})")
            return self._term

    def check(self, term: int | None = None) -> None:
        with self._lock:
            if not self._leading:
                raise NotLeading(f"not leading ({self._why})")
            if self.clock() >= self._valid_until:
                raise NotLeading("the leader Lease was not renewed within its renew deadline")
            if term is not None and term != self._term:
                raise NotLeading(f"the pass began in leadership term {term}; this is term {self._term}")

    def server_now(self) -> dt.datetime:
        """The API server's time now, as last measured; this host's clock until a first measurement."""
        with self._lock:
            offset = self._offset
        return self.wall() - offset if offset is not None else self.wall()

    @property
    def offset(self) -> dt.timedelta | None:
        with self._lock:
            return self._offset

    @property
    def leading(self) -> bool:
        with self._lock:
            return self._leading and self.clock() < self._valid_until

    @property
    def why(self) -> str:
        with self._lock:
            return self._why

    @property
    def alive(self) -> bool:
        """The election's thread runs (or has not been started, or was stopped on purpose)."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- the election
    def start(self) -> "Leadership":
        self._thread = threading.Thread(target=self._run, name="rc-leader", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stop electing; as leader, empty the Lease's holder so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.times.retry + 5)
        was = self.leading
        self._set(False, "stopping")
        if release and was:
            try:
                self._release()
            except Exception as exc:  # noqa: BLE001 - best effort: the Lease then expires
                log.warning("could not hand the leader Lease back: %s", _api_error(exc))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_once()
            self._stop.wait(self.times.retry)

    def try_once(self) -> bool:
        """One acquire-or-renew; True when this process leads afterwards."""
        started = self.clock()
        with self._lock:
            was_valid = self._leading and started < self._valid_until
            last_valid = self._last_valid_until
        try:
            won, why = self._acquire_or_renew(started)
        except Exception as exc:  # noqa: BLE001 - the API server down, slow, or refusing: keep trying
            won, why = False, f"the API server did not answer: {_api_error(exc)}"
            # A candidate counts the lease out only on what it saw without a break: after an
            # outage, the holder gets a whole lease to renew before anyone takes over.
            self._observed = None
            with self._lock:
                held = self._leading and self.clock() < self._valid_until
            if held:  # still within the renew deadline of the last renewal
                return True
        if won and not was_valid and self.clock() >= started + self.times.renew:
            # The write landed, but its answer came after its own renew deadline (an API server just
            # back, a loaded host): a term begun now could not act and would end at once, and the gap
            # before it would be lost with it. Lead from the next renewal, which carries the whole gap.
            if why != "renewed":
                self._carried = (self._takeover_gap, started)
            won, why = False, "the Lease write answered after its renew deadline: renewing again"
        if won:
            with self._lock:
                self._valid_until = self._last_valid_until = started + self.times.renew
                carried = self._carried[0] + (started - self._carried[1]) if self._carried else 0.0
                if not was_valid and why == "renewed" and last_valid > -float("inf"):
                    self._gaps[self._term + 1] = max(started - last_valid, carried)
                elif not was_valid and (self._takeover_gap or carried):
                    self._gaps[self._term + 1] = max(self._takeover_gap, carried)
                self._carried = None
            # After a gap (the deadline passed: a pause, an outage) it is a new term even with the
            # same holder: what the process remembers from before must not be acted on.
            self._set(True, why, new_term=not was_valid)
        else:
            self._set(False, why)
        return won

    def _acquire_or_renew(self, started: float) -> tuple[bool, str]:
        self._takeover_gap = 0.0
        lease = self._get()
        if lease is None:
            return (self._create(), "created the leader Lease")
        spec = lease.spec
        holder = spec.holder_identity or ""
        if holder == self.me:
            self._write(lease, transitions=False)
            return True, "renewed"
        record = (holder, spec.renew_time, spec.acquire_time, spec.lease_transitions, lease.metadata.resource_version)
        if record != self._observed:
            self._observed, self._observed_at = record, started
        if self._renewal_seen is None or self._renewal_seen[0] != record:
            self._renewal_seen = (record, started)
        duration = float(spec.lease_duration_seconds or self.times.lease)
        if holder and started - self._observed_at < duration:
            return False, f"standing by: {holder} holds the leader Lease {self.namespace}/{self.name}"
        try:
            self._write(lease, transitions=True)
        except ApiException as exc:
            if exc.status == 409:
                return False, "another process took the leader Lease first"
            raise
        # The holder acted at most until its renew deadline after the last renewal this process saw
        # (it saw it no earlier than it happened); from then until now nobody acted: an outage of
        # the API server, or the holder paused. That gap holds the rollout's timers as a renewal
        # after a gap does. Nothing seen (just started) or an emptied holder (a handover): no gap.
        seen_at = self._renewal_seen[1] if self._renewal_seen is not None and holder else None
        self._takeover_gap = max(started - seen_at - self.times.renew, 0.0) if seen_at is not None else 0.0
        return True, f"took over the leader Lease from {holder or 'nobody'}"

    def _set(self, leading: bool, why: str, new_term: bool = False) -> None:
        with self._lock:
            changed = leading != self._leading or (leading and new_term)
            self._leading, self._why = leading, why
            if changed and leading:
                self._term += 1
            term = self._term
            if not leading:
                self._valid_until = -float("inf")
        if changed:
            (log.warning if not leading else log.info)(
                "leadership %s (term %d): %s", "taken" if leading else "lost or not held", term, why)
            metrics.set_leader("leading" if leading else "standby", _reason(why))
            for listener in self._listeners:
                listener(leading, term, why)
        elif not leading and why != getattr(self, "_last_logged", None):
            log.info("%s", why)
            metrics.set_leader("standby", _reason(why))
        self._last_logged = why

    def gap(self, term: int) -> float:
        """Seconds nobody acted before `term` began: this process renewed its own Lease after its
        renew deadline had passed (an API server outage, a pause), so no other process led
        meanwhile; or it took the Lease over from a holder whose last renewal it saw that long
        before, plus the holder's renew deadline. 0 when this process saw no renewal before (it
        just started) or the holder handed the Lease back."""
        with self._lock:
            return self._gaps.get(term, 0.0)

    # -- the Lease
    def _get(self) -> Any:
        sent = self.wall()
        try:
            lease, _, headers = self._leases.read_namespaced_lease_with_http_info(
                self.name, self.namespace, _request_timeout=self._timeout())
        except ApiException as exc:
            if exc.status == 404:
                self._measure(sent, exc.headers)
                return None
            raise
        self._measure(sent, headers)
        return lease

    def _measure(self, sent: dt.datetime, headers: Any) -> None:
        """This host's clock minus the API server's, from the answer's `Date` (whole seconds: the
        server's time was within [Date, Date + 1 s) when it answered)."""
        date = (headers or {}).get("Date") if headers is not None else None
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date) + dt.timedelta(seconds=0.5)
        except (TypeError, ValueError):
            return
        received = self.wall()
        local = sent + (received - sent) / 2
        offset = local - server
        with self._lock:
            first = self._offset is None
            self._offset = offset
        if first or abs(offset.total_seconds()) > 5:
            (log.info if first else log.debug)("this host's clock is %+.1fs off the API server's; timers use the "
                                               "API server's", offset.total_seconds())

    def _timeout(self) -> float:
        return max(self.times.retry, 1.0)

    def _create(self) -> bool:
        now = self.wall()
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, labels={LEADER_LABEL: "true"},
                                         annotations={SCOPE_ANNOTATION: self.scope} if self.scope else None),
            spec=client.V1LeaseSpec(holder_identity=self.me, lease_duration_seconds=int(self.times.lease),
                                    acquire_time=now, renew_time=now, lease_transitions=0),
        )
        try:
            self._leases.create_namespaced_lease(self.namespace, body, _request_timeout=self._timeout())
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise

    def _write(self, lease: Any, transitions: bool) -> None:
        """Replace conditioned on the resourceVersion read (in the body): a concurrent writer gets 409."""
        now = self.wall()
        lease.spec.renew_time = now
        lease.spec.lease_duration_seconds = max(int(self.times.lease), 1)
        if transitions:
            lease.spec.holder_identity = self.me
            lease.spec.acquire_time = now
            lease.spec.lease_transitions = (lease.spec.lease_transitions or 0) + 1
        self._leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=self._timeout())

    def _release(self) -> None:
        lease = self._get()
        if lease is None or lease.spec.holder_identity != self.me:
            return
        lease.spec.holder_identity = ""
        lease.spec.lease_duration_seconds = 1
        lease.spec.renew_time = self.wall()
        self._leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=self._timeout())
        log.info("handed the leader Lease %s/%s back", self.namespace, self.name)


def _reason(why: str) -> str:
    """A bounded label value for the metric (the log line has the whole sentence)."""
    for prefix, reason in (("standing by", "held-by-another"), ("the API server", "api-unreachable"),
                           ("another process", "lost-race"), ("stopping", "stopping"), ("starting", "starting"),
                           ("the leader Lease was not renewed", "renew-deadline")):
        if why.startswith(prefix):
            return reason
    return "leading" if why.startswith(("renewed", "took over", "created")) else "other"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _api_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f"{status} {getattr(exc, 'reason', '') or ''}".strip() if status is not None else type(exc).__name__
