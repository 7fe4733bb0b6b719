"""Herald's Celery tasks: thin wrappers over :mod:`worker.pipeline` and :mod:`worker.delivery`.

Neither task lets work vanish when it fails unexpectedly (the database down, a bug): Celery
acknowledges a failed task (``task_acks_on_failure_or_timeout``), so each task first puts its
work back into a durable schedule in Redis, and only if even that fails rejects the message
for Celery to requeue.
"""

from __future__ import annotations

import hashlib
import logging
import time

from celery.exceptions import Reject

from integrations.config import get_settings
from worker.app import app
from worker.ingest import ack_entry
from worker.pipeline import dead_letter, fan_out
from worker.runtime import Runtime, get_runtime
from worker.schedule import compute_backoff

log = logging.getLogger(__name__)

#: A delivery that failed for an internal reason comes due again after this long.
INTERNAL_RETRY_DELAY = 30.0


def _ingest_attempts_key(prefix: str, raw: str) -> str:
    return f"{prefix}:ingest-attempts:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"


def retry_ingest_later(raw: str, exc: Exception) -> None:
    """Keep a message whose processing failed in the durable ingest-retry schedule.

    It is retried on the delivery retry schedule; once that is spent it is dead-lettered
    with the error, where the activity log shows it. If the dead letter cannot be written
    either (the database is what fails), it keeps waiting at the longest delay.
    """
    rt = get_runtime()
    key = _ingest_attempts_key(rt.settings.redis_prefix, raw)
    attempts = int(rt.redis.incr(key))
    rt.redis.expire(key, int(sum(rt.settings.retry_schedule) * 2) + 86400)
    delay = compute_backoff(attempts, rt.settings.retry_schedule)
    if delay is None:
        try:
            dead_letter(rt.store, raw, f"could not be processed after {attempts} tries: {exc}")
            rt.redis.delete(key)
            return
        except Exception:
            log.exception("dead-lettering a failing message failed too; keeping it scheduled")
            delay = rt.settings.retry_schedule[-1]
    rt.ingest_retries.add(raw, time.time() + delay)


def dispatch_delivery(rt: Runtime, delivery_id: str, expected_attempts: int | None) -> None:
    """Queue a delivery task, with a lease in the retry schedule that outlives the message.

    A broker can lose a task message (kombu's Redis transport pops it before recording it
    as unacknowledged, so a node killed in between takes it along). The schedule entry
    dispatches the delivery again if no task picked it up within the lease; the task replaces
    or removes the entry once the outcome is stored.
    """
    rt.schedule.add(delivery_id, time.time() + rt.settings.dispatch_lease)
    deliver.apply_async(args=(delivery_id, expected_attempts))


@app.task(name="herald.ingest")
def ingest(raw: str, entry_id: str | None = None, from_retry: bool = False) -> int:
    """Validate one entity-change message and dispatch a delivery per matching event.

    The stream entry ``entry_id`` (or the ingest-retry entry, ``from_retry``) is
    acknowledged only here, once every delivery is created and dispatched: until then it is
    dispatched again if this task is lost.
    """
    rt = get_runtime()
    try:
        result = fan_out(rt.store, rt.matchers, raw, dedupe_window=rt.settings.dedupe_window)
        for delivery_id in result.deliveries:
            dispatch_delivery(rt, delivery_id, 0)
        if entry_id is not None:
            ack_entry(rt.redis, rt.settings.stream_key, entry_id)
        if from_retry:
            rt.ingest_retries.remove(raw)
    except Exception as exc:
        log.exception("processing a message failed; it will be retried")
        try:
            retry_ingest_later(raw, exc)
            if entry_id is not None:
                ack_entry(rt.redis, rt.settings.stream_key, entry_id)
        except Exception:
            raise Reject(f"cannot keep the message for a retry: {exc}", requeue=True) from exc
        return -1
    return len(result.deliveries)


_LIMIT = int(get_settings().deliver_time_limit)


# The soft limit bounds one attempt (token request + connect + read, and rendering, which the
# sandbox cannot bound itself); the deliverer records a hit as a retryable internal error.
@app.task(
    name="herald.deliver",
    soft_time_limit=_LIMIT - min(30, _LIMIT // 5),
    time_limit=_LIMIT,
)
def deliver(
    delivery_id: str, expected_attempts: int | None = None, claimed: int | None = None
) -> str:
    """Make one attempt at a delivery; retries go through the durable schedule.

    ``claimed`` is the lease (ms) of the schedule entry that dispatched this task, if one did.
    """
    rt = get_runtime()
    try:
        result = rt.deliverer.deliver(delivery_id, expected_attempts, claimed=claimed)
    except Exception as exc:
        log.exception("delivery %s: internal error; it will be retried", delivery_id)
        try:
            rt.schedule.add(delivery_id, time.time() + INTERNAL_RETRY_DELAY)
        except Exception:
            raise Reject(f"cannot schedule a retry: {exc}", requeue=True) from exc
        return "error"
    log.info("delivery %s: %s %s", delivery_id, result.outcome, result.detail)
    return result.outcome
