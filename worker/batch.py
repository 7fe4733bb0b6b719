"""A batch of entity changes end to end: fan out, then make every first attempt at once.

One ``herald.ingest_batch`` task carries a batch of stream entries. Its first attempts are
made here, where the fan-out happened, with no second task hop, and with their bookkeeping
shared by the whole batch:

1. one transaction remembers the messages and creates the deliveries (:mod:`worker.fanout`);
2. one pipelined read gets the breaker records of the batch's endpoints and the failure
   streaks of its events;
3. the requests go out together (:class:`~worker.sending.SendPool`);
4. one pipeline schedules the retries (before the store has them: if this process dies
   in between, a retry still fires);
5. one transaction stores every outcome (:meth:`Store.record_attempts`);
6. one round trip closes breakers and failure streaks that a success ended, only for those
   that were open: a success against a healthy endpoint writes nothing to Redis.

For a first attempt the stream entry itself is the lease: it is acknowledged only after the
outcomes are stored (by the task), so a crash re-reads the batch; its messages are then
duplicates and the deliveries they left PENDING go to the per-delivery path, locks and all.
The duplicates such a crash can cause are bounded by the batch size.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from integrations import metrics
from integrations.config import Settings
from integrations.errors import HeraldError, PermanentError, RetryableError
from integrations.redis_keys import RedisKeys
from integrations.store import Store, Unfinished
from notifiers.sender import DeliveryResponse
from worker.dependent import dependent_id, dependent_row
from worker.events import EventCache
from worker.fanout import Planned, dependency_rounds, ingest, plan_batch
from worker.first_attempt import FirstAttempt, as_counted
from worker.gate import Entries, OrderGate
from worker.health import (
    BreakerPolicy,
    BreakerState,
    EndpointHealth,
    breaker_key,
    is_open,
)
from worker.ordering import BatchTurns
from worker.outcomes import (
    Outcome,
    deferral,
    failed,
    retried_or_failed,
    succeeded,
)
from worker.prepare import build_request
from worker.probing import RecentSuccess, split_for_probing
from worker.report import BatchReport, Phases
from worker.schedule import RetrySchedule
from worker.sending import SendPool, SendResult
from worker.streaks import FailureStreaks

log = logging.getLogger(__name__)

#: A delivery whose attempt failed for an internal reason (a bug, a time limit) comes due
#: again after this long; the retry task uses it too.
INTERNAL_RETRY_DELAY = 30.0


class BatchRunner:
    """Runs batches in one worker process (store, Redis, sender pool shared)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: redis.Redis,
        events: EventCache,
        pool: SendPool,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.redis = client
        self.keys = RedisKeys(settings.redis_prefix)
        self.events = events
        self.pool = pool
        self.now = now
        self.health = EndpointHealth(client, settings.redis_prefix, BreakerPolicy.of(settings))
        self.recent = RecentSuccess()
        self.streaks = FailureStreaks(settings, store, self.health, now=now)
        self.gate = OrderGate(
            store, client, self.keys, RetrySchedule(client, settings.redis_prefix), now=now
        )
        #: Every first attempt of a batch ends (answered, or cancelled) within this many
        #: seconds of its fan-out: well inside the task's soft time limit, and what the retry
        #: path waits before it takes over deliveries a crashed batch left (see tasks.py).
        self.send_deadline = min(settings.batch_send_deadline, settings.deliver_time_limit / 3)

    def run(
        self,
        raws: Sequence[str],
        entry_ids: Sequence[str] | None = None,
        earlier: Entries | None = None,
    ) -> BatchReport:
        """Fan out ``raws`` and make the first attempts of the deliveries they create.

        ``entry_ids``: their stream entries, acknowledged here once the deliveries are stored
        (and leased in the retry schedule), and their order; ``earlier``: the stream's entries
        before them, if the caller read them already."""
        clock = Phases()
        plan = plan_batch(raws, self.events, entry_ids)
        clock.lap("plan")
        # The stream (earlier changes unstored) before the store (unfinished deliveries of the
        # tickets, read in the ingest transaction): worker.ordering says why.
        orders = [p.order for p in plan.first_attempts]
        bound = max((o.sequence for o in orders if o.sequence), default=None)
        own = entry_ids or ()
        unstored = self.gate.unstored_before(bound, besides=own, entries=earlier) if bound else {}
        tickets = {o.key for o in orders if o.waits and o.key}
        result = ingest(
            self.store, plan, dedupe_window=self.settings.dedupe_window, tickets=tickets
        )
        todo = [p for p in plan.first_attempts if p.delivery_id in result.created]
        mine = [p.delivery_id for p in todo]
        self.gate.settle(own, mine, self.send_deadline + 5)
        held = self.gate.holds(
            [p.order for p in todo], unstored, besides=mine, unfinished=result.unfinished
        )
        turns = BatchTurns([p.order for p in todo], held)
        clock.lap("ingest")
        counts = dict.fromkeys(("sent", "retrying", "failed", "deferred"), 0)
        latest: dict[str, Unfinished] = {}  # as each turn's store read it
        unfinished = list(mine)
        try:
            send_until = time.monotonic() + self.send_deadline
            for turn, wave in enumerate(dependency_rounds(todo)):
                going = [
                    (p, notes)
                    for p in wave
                    for ok, notes in [turns.admit(p.order, turn, now=self.now())]
                    if ok
                ]
                outcomes, deferred, read = self._first_attempts(going, clock, send_until)
                latest.update((u.id, u) for u in read)
                metrics.delivered_many(as_counted(outcomes))
                for attempt, outcome in outcomes:
                    counts[outcome.result] += 1
                    failure = outcome.record.status_message if outcome.result == "failed" else None
                    turns.ended_with(outcome.record.delivery_id, failure, outcome.due)
                    if outcome.result == "sent" and attempt.planned.live.event.spec.depEvent:
                        # The ticket's next change waits for the dependent call too.
                        turns.followed_by(
                            attempt.planned.delivery_id, dependent_id(attempt.planned.delivery_id)
                        )
                counts["deferred"] += len(deferred)
                sent = {p.delivery_id for p, _ in going}
                unfinished = [d for d in unfinished if d not in sent]
            self.gate.wait(turns.waits.values())
            metrics.DELIVERIES.labels("waiting").inc(len(turns.waits))
            unfinished = []
            self.gate.wake(
                {p.order.key for p in todo if p.delivery_id in turns.ended and p.order.key},
                done=sorted(turns.ended),
                unfinished=[u for u in latest.values() if u.id not in turns.ended],
            )
        except Exception:
            # Never lose a delivery over a bug or a time limit: every one of this batch whose
            # outcome is not stored is picked up by the retry path. Their entries are
            # acknowledged as usual, since the schedule now holds them.
            log.exception(
                "batch: first attempts failed; %d deliveries rescheduled", len(unfinished)
            )
            self._reschedule(unfinished, INTERNAL_RETRY_DELAY)
            counts["retrying"] += len(unfinished)
        return BatchReport(
            messages=len(plan.messages),
            created=len(result.created),
            dead_letters=len(plan.dead_letters),
            redelivered=result.redelivered,
            phases_ms=clock.phases,
            waiting=len(turns.waits),
            **counts,
        )

    # -- the attempts ----------------------------------------------------------------------

    def _first_attempts(
        self, todo: list[tuple[Planned, tuple[str, ...]]], clock: Phases, send_until: float
    ) -> tuple[list[tuple[FirstAttempt, Outcome]], list[FirstAttempt], list[Unfinished]]:
        """Send one turn's deliveries and store their outcomes; those and the deferred."""
        # Captured values of every delivery of the round that reads them, in one query.
        captures = self.store.captured_for_entities(
            (p.live.event, p.entity_id)
            for p, _ in todo
            if p.live.needs_captures and p.entity_id is not None
        )
        attempts = [self._prepare(p, captures, notes) for p, notes in todo]
        ready = [a for a in attempts if a.prepared is not None]
        endpoints = sorted({a.breaker_key for a in ready if a.breaker_key})
        event_ids = sorted({a.planned.live.event.id for a in attempts})
        states, failing = self.health.snapshot(endpoints, event_ids)
        clock.lap("prepare")
        sent, deferred, counted = self._send(ready, states, send_until)
        outcomes = [self._outcome(a, None) for a in attempts if a.prepared is None]
        outcomes += [self._outcome(a, r) for a, r in sent]
        outcomes = self.streaks.note(outcomes, states, counted, FirstAttempt.context)
        self._defer(deferred, states)
        clock.lap("send")
        unfinished = self._store(outcomes)
        clock.lap("store")
        self._forget(outcomes, states, failing)
        return outcomes, deferred, unfinished

    def _send(
        self, ready: list[FirstAttempt], states: dict[str, BreakerState], send_until: float
    ) -> tuple[list[tuple[FirstAttempt, SendResult]], list[FirstAttempt], dict[str, int]]:
        """Send what may go; ``(sent with results, deferred, failures already counted)``.

        Endpoints not seen healthy lately are probed first (:mod:`worker.probing`); their
        probes' failures are counted against the breaker before the rest may follow.
        """
        now = self.now()
        threshold = self.health.policy.threshold
        first, held, deferred = split_for_probing(
            ready,
            lambda a: a.breaker_key or "",
            is_open=lambda k: is_open(states[k], now),
            healthy=self.recent.__contains__,
            probes=lambda k: threshold - states[k].failures,
        )
        sent = self._send_now(first, send_until)
        probed: dict[str, list[tuple[FirstAttempt, SendResult]]] = {}
        for attempt, result in sent:
            if attempt.breaker_key in held:
                probed.setdefault(attempt.breaker_key, []).append((attempt, result))
        counted: dict[str, int] = {}
        later: list[FirstAttempt] = []
        for key, rest in held.items():
            probes = probed.get(key, [])
            if not any(isinstance(r, DeliveryResponse) for _, r in probes):
                trips = sum(1 for a, r in probes if a.trips_on(r))
                if trips:
                    states[key] = self.health.record_failure(key, self.now(), count=trips)
                    counted[key] = trips
                if is_open(states[key], self.now()):
                    deferred.extend(rest)
                    continue
            later.extend(rest)
        return sent + self._send_now(later, send_until), deferred, counted

    def _send_now(
        self, attempts: list[FirstAttempt], send_until: float
    ) -> list[tuple[FirstAttempt, SendResult]]:
        if not attempts:
            return []
        results = self.pool.send_all(
            [(a.breaker_key or "", a.prepared.request) for a in attempts if a.prepared],
            deadline=max(0.0, send_until - time.monotonic()),
        )
        for attempt, result in zip(attempts, results, strict=True):
            if isinstance(result, DeliveryResponse) and attempt.breaker_key:
                self.recent.note(attempt.breaker_key)
        return list(zip(attempts, results, strict=True))

    def _prepare(
        self,
        planned: Planned,
        captures: dict[tuple[str, str], dict[str, str]],
        notes: tuple[str, ...] = (),
    ) -> FirstAttempt:
        attempt = FirstAttempt(planned, datetime.now(UTC), time.perf_counter(), notes=notes)
        event = planned.live.event
        extra: dict[str, Any] | None = None
        try:
            if planned.live.needs_captures and planned.entity_id is not None:
                extra = dict(captures.get((event.id, planned.entity_id), {}))
            attempt.prepared = build_request(
                delivery_id=planned.delivery_id,
                event=event,
                entity=planned.change.entity,
                data=planned.change.data,
                extra=extra,
            )
            attempt.breaker_key = breaker_key(event.tenant_id, attempt.prepared.request.url)
        except HeraldError as exc:
            attempt.error = exc
            order = planned.order
            note = self.gate.failure_note(order.key, order.sequence) if order.waits else None
            if note is not None and note not in attempt.notes:
                attempt.notes = (*attempt.notes, note)
        return attempt

    def _outcome(
        self, attempt: FirstAttempt, result: SendResult | None
    ) -> tuple[FirstAttempt, Outcome]:
        duration_ms = (time.perf_counter() - attempt.t0) * 1000
        ctx = attempt.context(duration_ms)
        if isinstance(result, DeliveryResponse):
            spec = attempt.planned.live.event.spec
            try:
                captured = result.capture(spec.responseHeaders)
            except Exception:  # a 2xx is a success even if its body cannot be read
                log.exception("delivery %s: response capture failed", ctx.delivery_id)
                captured = {}
            return attempt, succeeded(ctx, result, captured)
        error = attempt.error if result is None else result
        if isinstance(error, PermanentError):
            return attempt, failed(ctx, error)
        if not isinstance(error, RetryableError):
            log.error("delivery %s: unexpected error", ctx.delivery_id, exc_info=error)
            error = RetryableError(
                f"internal error: {type(error).__name__}: {error}", error_class="internal_error"
            )
        attempt.error = error
        return attempt, retried_or_failed(
            ctx,
            error,
            schedule=self.settings.retry_schedule,
            max_retry_after=self.settings.max_retry_after,
            now=self.now(),
        )

    # -- bookkeeping -----------------------------------------------------------------------

    def _defer(self, deferred: list[FirstAttempt], states: dict[str, BreakerState]) -> None:
        """Deliveries behind an open breaker wait without spending an attempt."""
        if not deferred:
            return
        waits = {}
        for attempt in deferred:
            key = attempt.breaker_key or ""
            state = states[key]
            waits[attempt.planned.delivery_id] = deferral(
                key, state.failures, state.open_until, self.settings.breaker_cooldown, random.random
            )
        self._schedule({delivery_id: due for delivery_id, (due, _) in waits.items()})
        self.store.defer_many(
            [(d, datetime.fromtimestamp(due, UTC), why) for d, (due, why) in waits.items()]
        )

    def _store(self, outcomes: list[tuple[FirstAttempt, Outcome]]) -> list[Unfinished]:
        """The schedule first (retries, and a lease for each dependent call a success
        creates), then every record and the dependent calls in one transaction, then those
        calls dispatched."""
        due = {o.record.delivery_id: o.due for _, o in outcomes if o.due is not None}
        follow_ups = {
            a.planned.delivery_id: dependent_row(a.planned.row)
            for a, o in outcomes
            if o.result == "sent" and a.planned.live.event.spec.depEvent is not None
        }
        lease = self.now() + self.settings.dispatch_lease
        due |= {row.id: lease for row in follow_ups.values()}
        if due:
            self._schedule(due)
        # The finished ones' tickets are read in the same transaction, for the wake-up.
        tickets = {
            a.planned.order.key for a, o in outcomes if o.due is None and a.planned.order.key
        }
        recorded, unfinished = self.store.record_and_read(
            [o.record for _, o in outcomes], follow_ups, tickets
        )
        won = {o.record.delivery_id for (_, o), ok in zip(outcomes, recorded, strict=True) if ok}
        if ready := {row.id: self.now() for main, row in follow_ups.items() if main in won}:
            self._schedule(ready)
        return unfinished

    def _forget(
        self,
        outcomes: list[tuple[FirstAttempt, Outcome]],
        states: dict[str, BreakerState],
        failing: set[str],
    ) -> None:
        try:
            sent = [a for a, o in outcomes if o.result == "sent"]
            endpoints = {a.breaker_key for a in sent if a.breaker_key}
            self.health.forget(
                sorted(e for e in endpoints if states[e].failures),
                sorted({a.planned.live.event.id for a in sent} & failing),
            )
        except redis.RedisError:
            # The outcomes are stored: a failure here must not turn them into resends.
            log.exception("batch: bookkeeping after success failed")

    def _schedule(self, due: dict[str, float]) -> None:
        self.redis.zadd(self.keys.retry, {d: int(t * 1000) for d, t in due.items()})

    def _reschedule(self, delivery_ids: list[str], delay: float) -> None:
        if delivery_ids:
            self._schedule(dict.fromkeys(delivery_ids, self.now() + delay))
