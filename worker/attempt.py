"""One attempt at one delivery: the retry path (``herald.deliver``).

First attempts are made by the batch that fanned the change out (:mod:`worker.batch`); every
later attempt (a retry on the schedule, a replay, recovery after a crash) comes through here,
one delivery at a time, under a :class:`~worker.lease.Lease`. The decisions are the same pure
functions the batch uses (:mod:`worker.outcomes`); the request is built by the same
:func:`worker.prepare.build_request`.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from integrations import metrics
from integrations.config import Settings
from integrations.errors import HeraldError, PermanentError, RetryableError
from integrations.models import EntityChange
from integrations.redis_keys import RedisKeys
from integrations.store import (
    Delivery,
    DeliveryStatus,
    InstalledState,
    NewDelivery,
    Store,
    StoredEvent,
)
from notifiers.sender import Sender
from worker.dependent import as_sent_by, dependent_row, is_dependent
from worker.gate import OrderGate
from worker.health import BreakerPolicy, EndpointHealth, breaker_key, is_open
from worker.heartbeat import Heartbeat
from worker.lease import LOCK_TTL, MAX_UNFINISHED_STARTS, Lease
from worker.outcomes import (
    AttemptContext,
    Outcome,
    deferral,
    failed,
    retried_or_failed,
    streak_gap,
    succeeded,
    trips_breaker,
)
from worker.prepare import Prepared, build_request
from worker.schedule import RetrySchedule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What one run of the delivery task did: ``sent``, ``retrying``, ``failed``,
    ``deferred``, ``waiting`` or ``skipped``."""

    outcome: str
    detail: str = ""


def _not_due(delivery: Delivery) -> bool:
    """Whether the delivery waits for a later retry (with a second of slack for clocks)."""
    due = delivery.next_attempt_at
    return due is not None and (due - datetime.now(UTC)).total_seconds() > 1.0


class Deliverer:
    """Runs single delivery attempts. One per worker process."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sender: Sender,
        client: redis.Redis,
        schedule: RetrySchedule,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self.schedule = schedule
        # A delivery holds its lock for one attempt, which the task's hard time limit bounds.
        self.lease = Lease(
            client,
            RedisKeys(settings.redis_prefix),
            schedule,
            LOCK_TTL,
        )
        self.gate = OrderGate(store, client, RedisKeys(settings.redis_prefix), schedule)
        self.health = EndpointHealth(
            client,
            settings.redis_prefix,
            BreakerPolicy.of(settings),
        )

    def deliver(
        self, delivery_id: str, expected_attempts: int | None = None, *, claimed: int | None = None
    ) -> Result:
        """Make one attempt at ``delivery_id`` unless it is done, stale or in other hands.

        ``expected_attempts`` guards against a task dispatched twice: the dispatcher passes
        the attempt count it saw, and a task whose count is behind is a duplicate.
        ``claimed`` is the lease (ms) of the schedule entry that dispatched this task.
        """
        delivery = self.store.get_delivery(delivery_id)
        if delivery is None or delivery.status in DeliveryStatus.TERMINAL:
            if claimed is not None:
                # A schedule entry outlived its delivery (a redundant dispatch re-added it
                # just after the outcome was stored): drop it, or its lease would dispatch it
                # again forever. Only if untouched since the claim: a replay re-adds it.
                self.schedule.remove_if_unchanged(delivery_id, claimed)
            if delivery is None:
                return Result("skipped", "no such delivery")
            return Result("skipped", f"already {delivery.status}")
        if expected_attempts is not None and delivery.attempts != expected_attempts:
            return Result("skipped", "duplicate dispatch")
        waiting = delivery.status == DeliveryStatus.WAITING
        if expected_attempts is None and _not_due(delivery) and not waiting:
            # (A waiting delivery is woken before its recheck time: it is always looked at.)
            # A redispatch of work rescheduled meanwhile: the schedule holds the real due time.
            return Result("skipped", "not due yet")
        token = self.lease.take(delivery_id)
        if token is None:
            return Result("skipped", "locked by another worker")
        try:
            # Read again under the lock: the previous holder may have finished it meanwhile.
            delivery = self.store.get_delivery(delivery_id)
            if delivery is None or delivery.status in DeliveryStatus.TERMINAL:
                self.schedule.remove(delivery_id)
                return Result("skipped", "finished by another worker")
            wait = self.gate.hold_one(delivery)
            if wait is not None:
                self.gate.wait([wait])
                metrics.delivered("waiting")
                return Result("waiting", wait.reason)
            renew = functools.partial(self.lease.renew, delivery_id, token)
            with Heartbeat(renew, every=self.lease.lock_ttl / 3, name="delivery's lock"):
                return self._counted_attempt(delivery)
        finally:
            self.lease.release(delivery_id, token)

    def _counted_attempt(self, delivery: Delivery) -> Result:
        starts = self.lease.count_start(delivery.id)
        if starts > MAX_UNFINISHED_STARTS:
            self.store.fail_delivery(
                delivery.id,
                f"poison delivery: its worker died {starts - 1} times before the attempt "
                "finished; fix the event and replay it",
                "poison",
            )
            self.schedule.remove(delivery.id)
            self.gate.wake([delivery.ordering_key or ""])
            return Result("failed", "poison")
        result = self._attempt(delivery)
        self.lease.finished(delivery.id)
        if result.outcome in ("sent", "failed") and delivery.ordering_key is not None:
            # Its ticket's next delivery may go now.
            self.gate.wake([delivery.ordering_key])
        return result

    def _give_up(self, delivery: Delivery, reason: str, error_class: str) -> Result:
        self.store.fail_delivery(delivery.id, reason, error_class)
        self.schedule.remove(delivery.id)
        metrics.delivered("failed", error_class=error_class)
        return Result("failed", reason)

    def _attempt(self, delivery: Delivery) -> Result:
        event = self.store.load_event(delivery.event_id) if delivery.event_id else None
        if event is None:
            return self._give_up(delivery, "integration event was deleted", "event_deleted")
        if event.installed_state != InstalledState.ENABLED:
            state = str(event.installed_state).lower()
            return self._give_up(
                delivery, f"its installed integration is {state}", f"integration_{state}"
            )
        if not event.active:
            reason = "integration event is inactive"
            if event.disabled_reason:
                reason += f": {event.disabled_reason}"
            return self._give_up(delivery, reason, "event_inactive")
        if is_dependent(delivery.id) and event.spec.depEvent is None:
            # Sending the event's own call instead would repeat it.
            reason = "the integration event no longer has a depEvent"
            return self._give_up(delivery, reason, "event_changed")
        # A success creates the dependent call, if the event has one.
        follow_up = None
        if event.spec.depEvent is not None and not is_dependent(delivery.id):
            follow_up = dependent_row(delivery)
        event = as_sent_by(event, delivery.id)
        arrived = delivery.created_at.timestamp()

        def apply(outcome: Outcome, follow_up: NewDelivery | None = None) -> Result:
            return self._apply(outcome, follow_up, arrived=arrived)

        started, t0 = datetime.now(UTC), time.perf_counter()
        prepared: Prepared | None = None
        note = self.gate.waited_note(delivery)
        notes = (note,) if note else ()

        def context() -> AttemptContext:
            capture_for = None
            if delivery.entity_id is not None and event.spec.responseHeaders:
                capture_for = (event.id, delivery.entity_id)
            return AttemptContext(
                delivery_id=delivery.id,
                attempts=delivery.attempts,
                attempts_base=delivery.attempts_base,
                started_at=started,
                duration_ms=(time.perf_counter() - t0) * 1000,
                prepared=prepared,
                capture_for=capture_for,
                notes=notes,
            )

        try:
            prepared = self._prepare(delivery, event)
            endpoint = breaker_key(event.tenant_id, prepared.request.url)
            breaker = self.health.state(endpoint)
            if is_open(breaker, time.time()) and self._may_wait(delivery):
                return self._defer(delivery, endpoint, breaker.failures, breaker.open_until)
            response = self.sender.send(prepared.request)
        except RetryableError as exc:
            if trips_breaker(exc, prepared) and prepared is not None:
                self.health.record_failure(breaker_key(event.tenant_id, prepared.request.url))
            disabled = self._auto_disable(event, exc)
            if disabled is not None:
                return apply(failed(context(), exc, reason=disabled))
            return apply(self._retry(context(), exc))
        except PermanentError as exc:
            self._auto_disable(event, exc)
            if prepared is None and delivery.ordered:
                # Not even built: say if an earlier delivery of its ticket failed.
                more = self.gate.failure_note(delivery.ordering_key, delivery.sequence)
                notes = tuple(dict.fromkeys((*notes, more))) if more else notes
            return apply(failed(context(), exc))
        except Exception as exc:
            # A bug, or the task's soft time limit: never lose the delivery over it. Record
            # it and retry on the schedule, which ends in FAILED if it keeps happening.
            log.exception("delivery %s: unexpected error", delivery.id)
            internal = RetryableError(
                f"internal error: {type(exc).__name__}: {exc}", error_class="internal_error"
            )
            return apply(self._retry(context(), internal))
        captured = response.capture(event.spec.responseHeaders)
        result = apply(succeeded(context(), response, captured), follow_up)
        # Bookkeeping after the outcome is safe in the store: a failure here must not turn a
        # delivered notification into a resend.
        try:
            self.health.forget([breaker_key(event.tenant_id, prepared.request.url)], [event.id])
        except Exception:
            log.exception("delivery %s: bookkeeping after success failed", delivery.id)
        return result

    def _prepare(self, delivery: Delivery, event: StoredEvent) -> Prepared:
        change = EntityChange.model_validate_json(delivery.message)
        extra: dict[str, Any] = {}
        if delivery.entity_id is not None:
            extra.update(self.store.captured_for_entity(event, delivery.entity_id))
        return build_request(
            delivery_id=delivery.id,
            event=event,
            entity=change.entity,
            data=change.data,
            extra=extra,
        )

    def _retry(self, ctx: AttemptContext, exc: RetryableError) -> Outcome:
        return retried_or_failed(
            ctx,
            exc,
            schedule=self.settings.retry_schedule,
            max_retry_after=self.settings.max_retry_after,
            now=time.time(),
        )

    def _apply(
        self,
        outcome: Outcome,
        follow_up: NewDelivery | None = None,
        *,
        arrived: float | None = None,
    ) -> Result:
        """Store an outcome: the schedule first (a retry fires even if we die before the
        store has it), then the record; a finished delivery leaves the schedule after.

        ``follow_up`` (a success's dependent call) is created with the record, leased in
        the schedule before it and dispatched at once after it."""
        delivery_id = outcome.record.delivery_id
        if outcome.due is not None:
            self.schedule.add(delivery_id, outcome.due)
        follow_ups = {delivery_id: follow_up} if follow_up is not None else None
        if follow_up is not None:
            self.schedule.add(follow_up.id, time.time() + self.settings.dispatch_lease)
        [recorded] = self.store.record_attempts([outcome.record], follow_ups)
        if recorded and follow_up is not None:
            self.schedule.add(follow_up.id, time.time())
        if not recorded:
            # Another attempt recorded first (a batch's first attempt that was still in
            # flight). Its outcome stands; the schedule keeps whatever it holds, and comes
            # back to the delivery once more if it is not finished.
            current = self.store.get_delivery(delivery_id)
            if current is not None and current.status not in DeliveryStatus.TERMINAL:
                self.schedule.add(delivery_id, time.time() + self.lease.lock_ttl)
            return Result("skipped", "another attempt recorded first")
        if outcome.due is None:
            self.schedule.remove(delivery_id)
        metrics.delivered(
            outcome.result,
            http_status=outcome.record.http_status,
            error_class=outcome.record.error_class,
            arrived=arrived,
        )
        if outcome.result == "failed":
            log.warning("delivery %s failed: %s", delivery_id, outcome.detail)
        return Result(outcome.result, outcome.detail)

    def _may_wait(self, delivery: Delivery) -> bool:
        """Whether a delivery may still be deferred by an open breaker.

        Deferrals spend no attempts, so without a bound a delivery behind a dead endpoint
        would wait until auto-disable. Once it is older than its whole retry budget it is
        attempted regardless, and its retries run out as the schedule says.
        """
        budget = sum(self.settings.retry_schedule) * 1.2
        return (datetime.now(UTC) - delivery.created_at).total_seconds() < budget

    def _defer(self, delivery: Delivery, endpoint: str, failures: int, until: float) -> Result:
        """Wait for an open breaker without spending an attempt."""
        due, why = deferral(
            endpoint, failures, until, self.settings.breaker_cooldown, random.random
        )
        self.schedule.add(delivery.id, due)
        self.store.defer(delivery.id, datetime.fromtimestamp(due, UTC), why)
        return Result("deferred", endpoint)

    def _auto_disable(self, event: StoredEvent, exc: HeraldError) -> str | None:
        """Note a failed attempt; disable the event once every attempt failed for too long.

        Returns the reason when it disabled the event.
        """
        reason = self.health.disable_reason(
            event.id,
            exc.reason,
            time.time(),
            gap=streak_gap(self.settings),
            disable_after=self.settings.disable_after,
        )
        if reason is None:
            return None
        self.store.set_event_active(event.id, False, reason)
        log.warning("event %s %s", event.id, reason)
        return reason


__all__ = ["MAX_UNFINISHED_STARTS", "Deliverer", "Result"]
