"""One delivery attempt: render, send, record, and decide what happens next.

The decisions are pure (:func:`worker.schedule.compute_backoff`, the error classes of
:mod:`integrations.errors`); this module only wires them to the store, the sender and the
retry schedule. Every outcome lands in the activity log, with the attempt's time, HTTP status,
error class, response excerpt and duration.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from integrations.config import Settings
from integrations.errors import (
    HeraldError,
    NotifierMisconfigured,
    PermanentError,
    RetryableError,
    TokenEndpointUnavailable,
)
from integrations.models import EntityChange, Notifier
from integrations.store import Delivery, DeliveryStatus, Store, StoredEvent
from notifiers.sender import DeliveryResponse, OutboundRequest, Sender
from notifiers.urls import redact_url, resolve_url
from rules.render import Rendered, detect_syntax, render
from rules.url import render_url
from worker.health import BreakerPolicy, EndpointHealth, endpoint_of, is_open, should_disable
from worker.schedule import RetrySchedule, compute_backoff

log = logging.getLogger(__name__)

# Release a lock only if it is still ours (it may have expired and been taken by another).
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


#: Attempts that may start and never finish (the worker died) before a delivery is poison.
MAX_UNFINISHED_STARTS = 5


@dataclass(frozen=True)
class Result:
    """What one run of the delivery task did: ``sent``, ``retrying``, ``failed`` or ``skipped``."""

    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class Prepared:
    """A delivery ready to send."""

    request: OutboundRequest
    rendered: Rendered


def _not_due(delivery: Delivery) -> bool:
    """Whether the delivery waits for a later retry (with a second of slack for clocks)."""
    due = delivery.next_attempt_at
    return due is not None and (due - datetime.now(UTC)).total_seconds() > 1.0


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name.lower():
            return value
    return None


class Deliverer:
    """Runs delivery attempts. One per worker process."""

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
        self.redis = client
        self.schedule = schedule
        self._unlock = client.register_script(_UNLOCK)
        self.health = EndpointHealth(
            client,
            settings.redis_prefix,
            BreakerPolicy(
                settings.breaker_threshold, settings.breaker_cooldown, settings.breaker_max_cooldown
            ),
        )
        # A delivery holds its lock for one attempt, which the task's hard time limit bounds.
        self.lock_ttl = int(settings.deliver_time_limit) + 20

    # -- preparation -----------------------------------------------------------------------

    def notifier_for(self, event: StoredEvent) -> Notifier:
        """The event's own notifier, or its installed integration's base notifier."""
        if not event.spec.useBaseNotifier and event.spec.notifier is not None:
            return event.spec.notifier
        installed = self.store.get_installed(event.tenant_id, event.installed_id)
        if installed is None or installed.base_notifier is None:
            raise NotifierMisconfigured(
                "useBaseNotifier is true but the installed integration has no base notifier; "
                "set one with POST .../integrations/installed/{id}/notifier"
            )
        return installed.base_notifier

    def prepare(self, delivery: Delivery, event: StoredEvent) -> Prepared:
        """Render the payload and build the request (raises a PermanentError if it cannot)."""
        notifier = self.notifier_for(event)
        change = EntityChange.model_validate_json(delivery.message)
        extra: dict[str, Any] = {}
        if delivery.entity_id is not None:
            extra.update(self.store.captured_for_entity(event, delivery.entity_id))
        headers = [(h.key, h.value) for h in event.spec.headers]
        syntax = detect_syntax(event.spec.template, _header(headers, "content-type"))
        if notifier.type.value == "SOAP_API":
            syntax = detect_syntax(event.spec.template, "text/xml")
        try:
            rendered = render(
                event.spec.template,
                entity=change.entity,
                data=change.data,
                extra=extra,
                syntax=syntax,
                reraise=(SoftTimeLimitExceeded,),
            )
        except (HeraldError, SoftTimeLimitExceeded):
            raise
        except Exception as exc:  # a template error is the tenant's to fix, never a retry
            raise PermanentError(
                f"payload template failed to render: {exc}", error_class="template_error"
            ) from None
        end_point = event.spec.endPointURI
        if end_point:
            end_point = render_url(end_point, entity=change.entity, data=change.data, extra=extra)
        url = resolve_url(notifier.baseURI, end_point)
        request = OutboundRequest(
            delivery_id=delivery.id,
            notifier=notifier,
            method=event.spec.thirdPartyEventType,
            url=url,
            headers=headers,
            body=rendered.body,
        )
        return Prepared(request=request, rendered=rendered)

    # -- the attempt -----------------------------------------------------------------------

    def deliver(
        self, delivery_id: str, expected_attempts: int | None = None, *, claimed: int | None = None
    ) -> Result:
        """Make one attempt at ``delivery_id`` unless it is done, stale or in other hands.

        ``expected_attempts`` guards against a task dispatched twice: the fan-out dispatches
        with the attempt count it saw, and a task whose count is behind is a duplicate.
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
        if expected_attempts is None and _not_due(delivery):
            # A redispatch of work that was rescheduled meanwhile (a dispatch lease ran out
            # while the task waited in a long queue): the schedule holds the real due time.
            return Result("skipped", "not due yet")
        # The safety net: until this attempt's outcome is in the store, the delivery stays in
        # the retry schedule, due once the lock has surely expired. Whatever happens to this
        # process meanwhile (an exception, a hard time limit, a kill, another worker holding
        # the lock and dying), the delivery comes due again; every outcome below replaces or
        # removes this entry only after the store has it.
        self.schedule.add(delivery_id, time.time() + self.lock_ttl + 1)
        lock_key = f"{self.settings.redis_prefix}:lock:{delivery_id}"
        token = uuid.uuid4().hex
        if not self.redis.set(lock_key, token, nx=True, ex=self.lock_ttl):
            # Put the safety entry back where the holder's lock runs out: a redundant dispatch
            # (a restored or redispatched task) must not push it a whole lock period later,
            # which would delay recovery when the holder has died (seen after a Redis restart:
            # 92 s instead of 65 s). Past the lock (-2: gone already) it comes due at once.
            remaining_ms = max(int(self.redis.pttl(lock_key)), 0)
            self.schedule.add(delivery_id, time.time() + remaining_ms / 1000 + 1)
            return Result("skipped", "locked by another worker")
        try:
            # Read again under the lock: the previous holder may have finished it meanwhile.
            delivery = self.store.get_delivery(delivery_id)
            if delivery is None or delivery.status in DeliveryStatus.TERMINAL:
                self.schedule.remove(delivery_id)
                return Result("skipped", "finished by another worker")
            return self._counted_attempt(delivery)
        finally:
            self._unlock(keys=[lock_key], args=[token])

    def starts_key(self, delivery_id: str) -> str:
        """Redis key counting attempts that started and never finished."""
        return f"{self.settings.redis_prefix}:starts:{delivery_id}"

    def _counted_attempt(self, delivery: Delivery) -> Result:
        # Count starts that never finished: a delivery that kills its worker (a template that
        # exhausts memory, a hard time limit) comes back through acks_late or the safety net,
        # and would loop forever.
        starts_key = self.starts_key(delivery.id)
        starts = int(self.redis.incr(starts_key))
        self.redis.expire(starts_key, 86400)
        if starts > MAX_UNFINISHED_STARTS:
            self.store.fail_delivery(
                delivery.id,
                f"poison delivery: its worker died {starts - 1} times before the attempt "
                "finished; fix the event and replay it",
                "poison",
            )
            self.schedule.remove(delivery.id)
            return Result("failed", "poison")
        result = self._attempt(delivery)
        self.redis.delete(starts_key)
        return result

    def _attempt(self, delivery: Delivery) -> Result:
        event = self.store.load_event(delivery.event_id) if delivery.event_id else None
        if event is None:
            self.store.fail_delivery(delivery.id, "integration event was deleted", "event_deleted")
            self.schedule.remove(delivery.id)
            return Result("failed", "event deleted")
        if not event.active:
            reason = "integration event is inactive"
            if event.disabled_reason:
                reason += f": {event.disabled_reason}"
            self.store.fail_delivery(delivery.id, reason, "event_inactive")
            self.schedule.remove(delivery.id)
            return Result("failed", reason)

        started = datetime.now(UTC)
        t0 = time.perf_counter()
        prepared: Prepared | None = None
        try:
            prepared = self.prepare(delivery, event)
            endpoint = self._breaker_key(event, prepared)
            breaker = self.health.state(endpoint)
            if is_open(breaker, time.time()) and self._may_wait(delivery):
                return self._defer(delivery, endpoint, breaker.failures, breaker.open_until)
            response = self.sender.send(prepared.request)
        except RetryableError as exc:
            # A 429 is the endpoint rationing this client (Retry-After handles it), and a token
            # endpoint failing says nothing of the endpoint itself: neither trips the breaker.
            if (
                prepared is not None
                and exc.http_status != 429
                and not isinstance(exc, TokenEndpointUnavailable)
            ):
                self.health.record_failure(self._breaker_key(event, prepared))
            disabled = self._auto_disable(event, exc)
            if disabled is not None:
                return self._fail(delivery, prepared, exc, started, t0, reason=disabled)
            return self._retry_or_fail(delivery, prepared, exc, started, t0)
        except PermanentError as exc:
            self._auto_disable(event, exc)
            return self._fail(delivery, prepared, exc, started, t0)
        except Exception as exc:
            # A bug, or the task's soft time limit: never lose the delivery over it. Record
            # it and retry on the schedule, which ends in FAILED if it keeps happening.
            log.exception("delivery %s: unexpected error", delivery.id)
            internal = RetryableError(
                f"internal error: {type(exc).__name__}: {exc}", error_class="internal_error"
            )
            return self._retry_or_fail(delivery, prepared, internal, started, t0)
        return self._succeed(delivery, event, prepared, response, started)

    @staticmethod
    def _breaker_key(event: StoredEvent, prepared: Prepared) -> str:
        # Per tenant: one tenant's failures on a shared SaaS host must not pause the others'.
        return f"{event.tenant_id}|{endpoint_of(prepared.request.url)}"

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
        # Spread the waiting deliveries so the endpoint is not hit by all of them at once
        # when the breaker closes.
        due = until + random.uniform(0.0, min(self.settings.breaker_cooldown, 10.0))
        self.schedule.add(delivery.id, due)
        self.store.defer(
            delivery.id,
            datetime.fromtimestamp(due, UTC),
            f"waiting: {endpoint} failed {failures} times in a row (circuit open until "
            f"{datetime.fromtimestamp(until, UTC).isoformat(timespec='seconds')})",
        )
        return Result("deferred", endpoint)

    def _auto_disable(self, event: StoredEvent, exc: HeraldError) -> str | None:
        """Note a failed attempt; disable the event once every attempt failed for too long.

        Returns the reason when it disabled the event.
        """
        now = time.time()
        # Retries are at most the schedule's longest delay apart; a longer silence means the
        # event was not failing in between.
        gap = max(self.settings.retry_schedule) * 1.5 + 60
        since = self.health.event_failed(event.id, now, gap=gap)
        if not should_disable(since, now, self.settings.disable_after):
            return None
        started = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        reason = f"auto-disabled: every delivery attempt failed since {started}; last: {exc.reason}"
        self.store.set_event_active(event.id, False, reason)
        log.warning("event %s %s", event.id, reason)
        return reason

    def _common(self, prepared: Prepared | None) -> dict[str, Any]:
        return {
            # Without user info or query: either may carry credentials.
            "request_url": redact_url(prepared.request.url) if prepared else None,
            "req_payload": prepared.request.body if prepared else None,
            "warnings": list(prepared.rendered.warnings) if prepared else [],
        }

    def _succeed(
        self,
        delivery: Delivery,
        event: StoredEvent,
        prepared: Prepared,
        response: DeliveryResponse,
        started: datetime,
    ) -> Result:
        captured = response.capture(event.spec.responseHeaders)
        self.store.record_attempt(
            delivery.id,
            started_at=started,
            duration_ms=response.duration_ms,
            outcome="success",
            status=DeliveryStatus.SUCCESS,
            status_message=f"delivered: HTTP {response.http_status}",
            http_status=response.http_status,
            error_class=None,
            res_payload=response.body_excerpt,
            captured=captured,
            **self._common(prepared),
        )
        self.schedule.remove(delivery.id)
        # Bookkeeping after the outcome is safe in the store: a failure here must not turn a
        # delivered notification into a resend.
        try:
            if captured and delivery.entity_id is not None:
                self.store.save_captured(event.id, delivery.entity_id, captured)
            self.health.record_success(self._breaker_key(event, prepared))
            self.health.event_succeeded(event.id)
        except Exception:
            log.exception("delivery %s: bookkeeping after success failed", delivery.id)
        return Result("sent", str(response.http_status))

    def _fail(
        self,
        delivery: Delivery,
        prepared: Prepared | None,
        exc: HeraldError,
        started: datetime,
        t0: float,
        reason: str | None = None,
    ) -> Result:
        self.store.record_attempt(
            delivery.id,
            started_at=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
            outcome="permanent" if isinstance(exc, PermanentError) else "retryable",
            status=DeliveryStatus.FAILED,
            status_message=reason or exc.reason,
            http_status=exc.http_status,
            error_class=exc.error_class,
            res_payload=exc.response_excerpt,
            **self._common(prepared),
        )
        self.schedule.remove(delivery.id)
        log.warning("delivery %s failed: %s", delivery.id, reason or exc.reason)
        return Result("failed", reason or exc.reason)

    def _retry_or_fail(
        self,
        delivery: Delivery,
        prepared: Prepared | None,
        exc: RetryableError,
        started: datetime,
        t0: float,
    ) -> Result:
        made = delivery.attempts + 1
        delay = compute_backoff(
            # A replay starts a fresh retry budget.
            made - delivery.attempts_base,
            self.settings.retry_schedule,
            retry_after=exc.retry_after,
            max_retry_after=self.settings.max_retry_after,
        )
        if delay is None:
            return self._fail(
                delivery,
                prepared,
                exc,
                started,
                t0,
                reason=f"gave up after {made} attempts: {exc.reason}",
            )
        due = time.time() + delay
        # Schedule before recording: if this process dies in between, the retry still fires.
        self.schedule.add(delivery.id, due)
        self.store.record_attempt(
            delivery.id,
            started_at=started,
            duration_ms=(time.perf_counter() - t0) * 1000,
            outcome="retryable",
            status=DeliveryStatus.RETRYING,
            status_message=f"attempt {made} failed, retrying in {delay:.1f}s: {exc.reason}",
            http_status=exc.http_status,
            error_class=exc.error_class,
            res_payload=exc.response_excerpt,
            next_attempt_at=datetime.fromtimestamp(due, UTC),
            **self._common(prepared),
        )
        return Result("retrying", f"{delay:.1f}s")


__all__ = ["Deliverer", "Result"]
