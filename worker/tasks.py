"""Herald's Celery tasks: thin wrappers over :mod:`worker.batch`, :mod:`worker.fanout` and
:mod:`worker.attempt`.

Registered with ``shared_task``, so this module imports no Celery app: the composition root
(:mod:`worker.main`) builds the app, and the task options that depend on settings (time
limits) come from the app's configuration (:func:`worker.app.celery_config`).

No task lets work vanish when it fails unexpectedly (the database down, a bug): Celery
acknowledges a failed task (``task_acks_on_failure_or_timeout``), so each task first puts its
work back into a durable schedule in Redis, and only if even that fails rejects the message
for Celery to requeue.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.exceptions import Reject

from integrations.config import get_settings
from integrations.store import unavailable
from worker.batch import INTERNAL_RETRY_DELAY
from worker.fanout import dead_letter_row, fan_out
from worker.gate import SCAN
from worker.heartbeat import Heartbeat
from worker.ingest import ack_entries, consumer_name, read_batch, renew_entries
from worker.lease import MAX_UNFINISHED_STARTS
from worker.runtime import Runtime, get_runtime
from worker.schedule import compute_backoff

# The delivery stack is imported here, in the node's main process, although only the pool
# processes use it: they fork with it loaded. Importing it in each child on its first task
# instead saved about 55 MB of the main process's RSS, but made that first task wait for
# the imports (3.8 s on a busy machine), after every start and every child recycle.

log = logging.getLogger(__name__)


def retry_ingest_later(rt: Runtime, raw: str, exc: Exception) -> None:
    """Keep a message whose processing failed in the durable ingest-retry schedule.

    It is retried on the delivery retry schedule; once that is spent it is dead-lettered
    with the error, where the activity log shows it. If the dead letter cannot be written
    either (the database is what fails), it keeps waiting at the longest delay.
    """
    key = rt.keys.ingest_attempts(raw)
    attempts = int(rt.redis.incr(key))
    rt.redis.expire(key, int(sum(rt.settings.retry_schedule) * 2) + 86400)
    delay = compute_backoff(attempts, rt.settings.retry_schedule)
    if delay is None:
        try:
            reason = f"could not be processed after {attempts} tries: {exc}"
            rt.store.ingest_batch([], [dead_letter_row(raw, reason)], rt.settings.dedupe_window)
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


def _start(rt: Runtime, key: str) -> int:
    """Count one more start of the run counted at ``key``; the starts not yet finished."""
    pipe = rt.redis.pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, 86400)
    starts, _ = pipe.execute()
    return int(starts)


@shared_task(name="herald.ingest_batch")
def ingest_batch(entry_ids: list[str], consumer: str | None = None) -> dict[str, Any]:
    """Process a batch of stream entries: fan out, make every first attempt, acknowledge.

    The entries are acknowledged only once their outcomes are stored (or their messages are
    kept in the ingest-retry schedule): until then a lost task leaves them pending, and
    they are dispatched again.

    A message that kills its worker (one too large to parse, say) would bring its whole
    batch back again and again. So starts that never finished are counted: past
    :data:`MAX_UNFINISHED_STARTS` the batch is taken one entry at a time, each counted on its
    own, and an entry that still kills its worker is dead-lettered with that reason.

    While it runs, the task renews its entries' lease (their idle time in the stream) in the
    name of ``consumer``, the one that read them, so a short ``HERALD_INGEST_CLAIM_IDLE``
    hands a dead worker's entries on quickly without taking a slow batch from a live one.
    """
    rt = get_runtime()
    owner = consumer or consumer_name()

    def renew() -> None:
        renew_entries(rt.redis, rt.keys.stream, owner, entry_ids)

    every = max(0.1, rt.settings.ingest_claim_idle / 3)
    # Renewed at once too: the entries may have waited in the queue for part of their lease.
    renew()
    with Heartbeat(renew, every=every, name="batch's entries"):
        return _run_batch(rt, entry_ids)


def _run_batch(rt: Runtime, entry_ids: list[str]) -> dict[str, Any]:
    # The stream's earlier entries come in the same round trip, for per-ticket ordering.
    entries, earlier = read_batch(rt.redis, rt.keys.stream, entry_ids, SCAN)
    if not entries:
        return {"messages": 0}
    key = rt.keys.batch_starts(entries[0][0])
    starts = _start(rt, key)
    if starts <= MAX_UNFINISHED_STARTS:
        result = _process(rt, entries, earlier)
    else:
        log.warning("batch at %s died %d times: one entry at a time", entries[0][0], starts - 1)
        result = {"messages": 0}
        for entry in entries:
            result["messages"] += int(_single(rt, *entry).get("messages", 0))
    rt.redis.delete(key)
    return result


def _single(rt: Runtime, entry_id: str, raw: str) -> dict[str, Any]:
    """One entry of a batch that kept killing its worker, counted on its own."""
    key = rt.keys.entry_starts(entry_id)
    starts = _start(rt, key)
    if starts <= MAX_UNFINISHED_STARTS:
        result = _process(rt, [(entry_id, raw)])
    else:
        reason = f"poison message: its worker died {starts - 1} times while processing it"
        rt.store.ingest_batch([], [dead_letter_row(raw, reason)], rt.settings.dedupe_window)
        ack_entries(rt.redis, rt.keys.stream, [entry_id])
        result = {"messages": 1, "deadLetters": 1}
    rt.redis.delete(key)
    return result


def _process(
    rt: Runtime, entries: list[tuple[str, str]], earlier: list[Any] | None = None
) -> dict[str, Any]:
    raws = [raw for _, raw in entries]
    entry_ids = [entry_id for entry_id, _ in entries]
    try:
        # The runner acknowledges the entries as soon as their deliveries are stored.
        report = rt.batch.run(raws, entry_ids, earlier)
        if report.redelivered:
            # Deliveries left PENDING by an earlier run of these messages. That run may still
            # be sending them (a producer's duplicate in another batch, a reclaim of a slow
            # batch): the retry path takes them only once any such first attempt has surely
            # ended, answered or cancelled, so two attempts never overlap.
            due = time.time() + rt.batch.send_deadline + 5
            rt.redis.zadd(rt.keys.retry, {d.id: int(due * 1000) for d in report.redelivered})
    except Exception as exc:
        if (outage := unavailable(exc, rt.settings.database_url)) is not None:
            log.warning("%s: %d messages parked in the ingest-retry schedule", outage, len(raws))
        else:
            log.exception(
                "processing a batch of %d messages failed; they will be retried", len(raws)
            )
        try:
            for raw in raws:
                retry_ingest_later(rt, raw, exc)
        except Exception:
            raise Reject(f"cannot keep the batch for a retry: {exc}", requeue=True) from exc
        ack_entries(rt.redis, rt.keys.stream, entry_ids)
        return {"messages": len(raws), "error": type(exc).__name__}
    return {
        "messages": report.messages,
        "sent": report.sent,
        "retrying": report.retrying,
        "failed": report.failed,
        "deferred": report.deferred,
        "waiting": report.waiting,
        "deadLetters": report.dead_letters,
        "ms": report.phases_ms,
    }


@shared_task(name="herald.ingest")
def ingest(raw: str, entry_id: str | None = None, from_retry: bool = False) -> int:
    """Process one message again (from the ingest-retry schedule, or the API's replay of a
    corrected dead letter); its deliveries go to the per-delivery path."""
    try:
        rt = get_runtime()
        result = fan_out(rt.store, rt.events, raw, dedupe_window=rt.settings.dedupe_window)
        for delivery_id in result.deliveries:
            dispatch_delivery(rt, delivery_id, 0)
        if entry_id is not None:
            ack_entries(rt.redis, rt.keys.stream, [entry_id])
        if from_retry:
            rt.ingest_retries.remove(raw)
    except Exception as exc:
        if (outage := unavailable(exc, get_settings().database_url)) is not None:
            log.warning("%s: the message waits in the ingest-retry schedule", outage)
        else:
            log.exception("processing a message failed; it will be retried")
        try:
            rt = get_runtime()
            retry_ingest_later(rt, raw, exc)
            if entry_id is not None:
                ack_entries(rt.redis, rt.keys.stream, [entry_id])
        except Exception:
            raise Reject(f"cannot keep the message for a retry: {exc}", requeue=True) from exc
        return -1
    return len(result.deliveries)


@shared_task(name="herald.deliver")
def deliver(
    delivery_id: str, expected_attempts: int | None = None, claimed: int | None = None
) -> str:
    """Make one attempt at a delivery; retries go through the durable schedule.

    ``claimed`` is the lease (ms) of the schedule entry that dispatched this task, if one did.
    """
    try:
        rt = get_runtime()
        result = rt.deliverer.deliver(delivery_id, expected_attempts, claimed=claimed)
    except Exception as exc:
        log.exception("delivery %s: internal error; it will be retried", delivery_id)
        try:
            get_runtime().schedule.add(delivery_id, time.time() + INTERNAL_RETRY_DELAY)
        except Exception:
            raise Reject(f"cannot schedule a retry: {exc}", requeue=True) from exc
        return "error"
    log.info("delivery %s: %s %s", delivery_id, result.outcome, result.detail)
    return result.outcome
