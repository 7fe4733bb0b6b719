"""What an attempt's result means: the activity-log record, and when to try again.

Pure decisions over the attempt's context; the callers (the batch's first attempts and the
``herald.deliver`` retry task) apply them: the schedule first, then the store.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.config import Settings
from integrations.errors import (
    HeraldError,
    PermanentError,
    RetryableError,
    TokenEndpointUnavailable,
)
from integrations.store import AttemptRecord, DeliveryStatus
from notifiers.sender import DeliveryResponse
from notifiers.urls import redact_url
from worker.prepare import Prepared
from worker.schedule import compute_backoff


@dataclass(frozen=True)
class AttemptContext:
    """What is known of a delivery when its attempt ends."""

    delivery_id: str
    #: Attempts made before this one.
    attempts: int
    #: ``attempts`` when the delivery was last replayed: a replay starts a fresh retry budget.
    attempts_base: int
    started_at: datetime
    duration_ms: float
    prepared: Prepared | None = None
    #: ``(event_id, entity_id)`` under which captured response values are kept.
    capture_for: tuple[str, str] | None = None
    #: What the row says beyond the attempt itself: an earlier delivery of the ticket,
    #: waited for, that failed.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The record to store, and the delivery's next due time (``None``: it is finished)."""

    record: AttemptRecord
    due: float | None
    #: ``sent``, ``retrying`` or ``failed``, and a short detail for the task's log line.
    result: str
    detail: str


def _request_fields(ctx: AttemptContext) -> dict[str, object]:
    prepared = ctx.prepared
    if prepared is None:
        return {"request_url": None, "req_payload": None, "warnings": ctx.notes}
    return {
        # Without user info or query: either may carry credentials.
        "request_url": redact_url(prepared.request.url),
        "req_payload": prepared.request.body,
        "warnings": (*prepared.rendered.warnings, *ctx.notes),
    }


def succeeded(ctx: AttemptContext, response: DeliveryResponse, captured: dict[str, str]) -> Outcome:
    """A 2xx answer: the delivery is done, with the values it captured."""
    record = AttemptRecord(
        delivery_id=ctx.delivery_id,
        started_at=ctx.started_at,
        duration_ms=response.duration_ms,
        outcome="success",
        status=DeliveryStatus.SUCCESS,
        status_message=f"delivered: HTTP {response.http_status}",
        http_status=response.http_status,
        res_payload=response.body_excerpt,
        captured=captured or None,
        previous_attempts=ctx.attempts,
        capture_for=ctx.capture_for if captured else None,
        **_request_fields(ctx),  # type: ignore[arg-type]
    )
    return Outcome(record, None, "sent", str(response.http_status))


def _failure(
    ctx: AttemptContext,
    exc: HeraldError,
    status: DeliveryStatus,
    message: str,
    next_attempt_at: datetime | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=ctx.delivery_id,
        started_at=ctx.started_at,
        duration_ms=ctx.duration_ms,
        outcome="permanent" if isinstance(exc, PermanentError) else "retryable",
        status=status,
        status_message=message,
        http_status=exc.http_status,
        error_class=exc.error_class,
        res_payload=exc.response_excerpt,
        next_attempt_at=next_attempt_at,
        previous_attempts=ctx.attempts,
        **_request_fields(ctx),  # type: ignore[arg-type]
    )


def failed(ctx: AttemptContext, exc: HeraldError, *, reason: str | None = None) -> Outcome:
    """The delivery ends FAILED (a permanent error, exhausted retries, a disabled event)."""
    message = reason or exc.reason
    if ctx.notes:
        # Its failure may come from the earlier one's (a value that one would have captured).
        message += f" ({'; '.join(ctx.notes)})"
    return Outcome(_failure(ctx, exc, DeliveryStatus.FAILED, message), None, "failed", message)


def retried_or_failed(
    ctx: AttemptContext,
    exc: RetryableError,
    *,
    schedule: Sequence[float],
    max_retry_after: float,
    now: float,
    rand: Callable[[], float] = random.random,
) -> Outcome:
    """A retryable failure: due again on the schedule, or FAILED once it is spent."""
    made = ctx.attempts + 1
    delay = compute_backoff(
        made - ctx.attempts_base,
        schedule,
        retry_after=exc.retry_after,
        max_retry_after=max_retry_after,
        rand=rand,
    )
    if delay is None:
        return failed(ctx, exc, reason=f"gave up after {made} attempts: {exc.reason}")
    due = now + delay
    message = f"attempt {made} failed, retrying in {delay:.1f}s: {exc.reason}"
    when = datetime.fromtimestamp(due, UTC)
    record = _failure(ctx, exc, DeliveryStatus.RETRYING, message, when)
    return Outcome(record, due, "retrying", f"{delay:.1f}s")


def deferral(
    key: str, failures: int, open_until: float, cooldown: float, rand: Callable[[], float]
) -> tuple[float, str]:
    """When a delivery behind the open breaker ``key`` comes due, and what its row says.

    The waiting deliveries are spread over up to ``cooldown`` seconds (at most 10) so the
    endpoint is not hit by all of them at once when the breaker closes.
    """
    due = open_until + rand() * min(cooldown, 10.0)
    until = datetime.fromtimestamp(open_until, UTC).isoformat(timespec="seconds")
    endpoint = key.split("|", 1)[-1]
    return due, (
        f"waiting: {endpoint} failed {failures} times in a row (circuit open until {until})"
    )


def streak_gap(settings: Settings) -> float:
    """Silence that breaks an event's failure streak: retries are at most the schedule's
    longest delay apart, so a longer gap means the event was not failing in between."""
    return max(settings.retry_schedule) * 1.5 + 60


def trips_breaker(exc: RetryableError, prepared: Prepared | None) -> bool:
    """Whether a retryable failure counts against the endpoint's circuit breaker.

    A 429 is the endpoint rationing this client (Retry-After handles it), and a token endpoint
    failing says nothing of the endpoint itself; neither trips it, nor does a failure before
    any request was built.
    """
    return (
        prepared is not None
        and exc.http_status != 429
        and not isinstance(exc, TokenEndpointUnavailable)
        # Cut off by the batch's own deadline: Herald's queueing, not the endpoint's failure.
        and exc.error_class != "batch_deadline"
    )
