"""The receiving endpoint misbehaving: 503 spells, the circuit breaker, read timeouts,
refused connections and 429 with ``Retry-After``."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from integrations.store import Delivery
from tests.faults.harness import Responder, Rig, Sink, failing_until, first_per_key, report
from tests.support.processes import wait_for
from tests.support.sinks import Reply

OK = Reply.json({"ok": True})
#: A gap may fall short of its nominal delay by the jitter (20 %) and clock rounding only.
JITTER = 0.2
CLOCK_SLACK = 0.05


def attempt_gaps(row: Delivery) -> list[float]:
    """Seconds between the starts of consecutive attempts."""
    starts = [a.started_at for a in row.attempt_log]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_503_spell_is_retried_on_the_schedule_then_delivered(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """A sink answering 503 for 4 s, then 200: every delivery arrives exactly once, each
    failed attempt is in the activity log, and attempts are spaced by the retry schedule
    (0.5, 1, 2, 4 s, minus at most the 20 % jitter). The breaker is kept out of the way."""
    schedule = (0.5, 1.0, 2.0, 4.0)
    rig = make_rig(retry_schedule=schedule, breaker_threshold=1000)
    event = rig.rest_event(sink.url)
    rig.start_worker("w1", concurrency=2)
    outage = 4.0
    started = time.monotonic()
    responder.use(failing_until(started + outage, Reply(503, body="busy"), OK))
    expected = rig.delivery_ids(rig.publish(f"sched-{i:03d}" for i in range(20)), event)

    rig.wait_delivered(responder, expected, timeout=60)
    recovery = time.monotonic() - (started + outage)
    rows = rig.deliveries(expected)
    attempts = [len(r.attempt_log) for r in rows.values() if r is not None]
    report(
        "503 spell, schedule",
        messages=len(expected),
        attempts_min=min(attempts),
        attempts_max=max(attempts),
        sink_503=responder.statuses()[503],
        duplicates=responder.duplicates(),
        recovery_s=recovery,
    )
    assert responder.duplicates() == 0
    for delivery_id, row in rows.items():
        assert row is not None
        *failed, last = row.attempt_log
        assert failed, "every delivery met the outage"
        assert all(a.outcome == "retryable" and a.http_status == 503 for a in failed)
        assert last.outcome == "success" and last.http_status == 200
        # Every attempt reached the sink and is in the log; no attempt beyond the schedule.
        assert len(responder.for_key(delivery_id)) == len(row.attempt_log) <= len(schedule) + 1
        for n, gap in enumerate(attempt_gaps(row)):
            assert gap >= schedule[n] * (1 - JITTER) - CLOCK_SLACK, (n, gap, row.attempt_log)
            assert gap <= schedule[n] * (1 + JITTER) + 5.0, (n, gap, row.attempt_log)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_open_breaker_defers_deliveries_without_spending_attempts(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """After 3 consecutive failures the endpoint's breaker opens: the other deliveries wait
    ("waiting: ... circuit open") with their attempt count untouched, one probe per cooldown
    hits the endpoint, and once it answers again everything is delivered. Far fewer attempts
    fail than there are deliveries."""
    threshold, concurrency = 3, 2
    rig = make_rig(breaker_threshold=threshold, breaker_cooldown=1.5, breaker_max_cooldown=3.0)
    event = rig.rest_event(sink.url)
    rig.start_worker("w1", concurrency=concurrency)
    outage = 5.0
    started = time.monotonic()
    responder.use(failing_until(started + outage, Reply(503, body="busy"), OK))
    expected = rig.delivery_ids(rig.publish(f"breaker-{i:03d}" for i in range(20)), event)

    def deferred_untried() -> list[Delivery]:
        rows = rig.deliveries(expected).values()
        return [r for r in rows if r and r.attempts == 0 and r.status_message.startswith("waiting")]

    waiting = wait_for(deferred_untried, outage, interval=0.1, what="a deferred delivery")
    rig.wait_delivered(responder, expected, timeout=60)
    recovery = time.monotonic() - (started + outage)
    rows = [r for r in rig.deliveries(expected).values() if r is not None]
    failed_attempts = sum(len(r.attempt_log) - 1 for r in rows)
    first_time = sum(1 for r in rows if len(r.attempt_log) == 1)
    report(
        "breaker",
        messages=len(expected),
        failed_attempts=failed_attempts,
        delivered_on_first_attempt=first_time,
        duplicates=responder.duplicates(),
        recovery_s=recovery,
    )
    assert "circuit open" in waiting[0].status_message
    assert responder.duplicates() == 0
    assert failed_attempts == responder.statuses()[503]
    # Failures before the breaker opens (threshold, plus attempts already in flight), then
    # one probe per cooldown (1.5 s doubling to 3 s over a 5 s outage, raced by concurrency).
    assert failed_attempts <= threshold + concurrency + 3 * concurrency
    assert first_time >= len(expected) - failed_attempts


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_read_timeouts_are_retried(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """A sink slower than HERALD_READ_TIMEOUT (1 s): the attempt is recorded as a timeout
    and retried, and the next one is delivered. The slow answers were 200s the client never
    read, so each timed-out attempt is a duplicate for the receiver, and nothing else is."""
    # 1 s against a 3 s reply: wide margins on both sides, so a busy CI machine cannot turn a
    # prompt retry into another timeout (the sink shares the test process).
    rig = make_rig(read_timeout=1.0, connect_timeout=1.0)
    event = rig.rest_event(sink.url)
    rig.start_worker("w1", concurrency=2)
    responder.use(first_per_key(Reply(200, body="late", delay=3.0), OK))
    started = time.monotonic()
    expected = rig.delivery_ids(rig.publish(f"slow-{i:03d}" for i in range(10)), event)

    rig.wait_delivered(responder, expected, timeout=60)
    rows = [r for r in rig.deliveries(expected).values() if r is not None]
    timeouts = sum(1 for r in rows for a in r.attempt_log if a.error_class == "timeout")
    report(
        "read timeouts",
        messages=len(expected),
        timed_out_attempts=timeouts,
        duplicates=responder.duplicates(),
        recovery_s=time.monotonic() - started,
    )
    for row in rows:
        first, *_, last = row.attempt_log
        assert first.error_class == "timeout" and first.outcome == "retryable"
        assert last.outcome == "success"
    # Every first attempt timed out (checked above); a retry that also stalled past the
    # timeout on a loaded machine is one more timeout and one more duplicate, never a loss.
    assert responder.duplicates() == timeouts >= len(expected)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_refused_connections_are_retried_until_the_sink_is_back(
    make_rig: Callable[..., Rig], responder: Responder
) -> None:
    """The sink's port refuses connections for a while (the server is stopped), then it
    listens again on the same port: attempts fail as ``connect_error`` and are retried, and
    every delivery arrives once it is back."""
    responder.close_connections = True  # no pooled connection survives the stop
    sink = Sink(responder)
    try:
        rig = make_rig()
        event = rig.rest_event(sink.url)
        rig.start_worker("w1", concurrency=2)
        sink.down()
        down_at = time.monotonic()
        expected = rig.delivery_ids(rig.publish(f"refused-{i:03d}" for i in range(10)), event)

        def all_refused() -> bool:
            rows = rig.deliveries(expected).values()
            return all(
                r is not None and any(a.error_class == "connect_error" for a in r.attempt_log)
                for r in rows
            )

        wait_for(all_refused, 30, what="every delivery refused at least once")
        sink.up()
        up_at = time.monotonic()
        rig.wait_delivered(responder, expected, timeout=60)
        report(
            "connection refused",
            messages=len(expected),
            down_s=up_at - down_at,
            duplicates=responder.duplicates(),
            recovery_s=time.monotonic() - up_at,
        )
        assert responder.duplicates() == 0
        for row in rig.deliveries(expected).values():
            assert row is not None and row.attempt_log[-1].outcome == "success"
    finally:
        sink.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_429_retry_after_is_honoured(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """A 429 with ``Retry-After: 2`` postpones the next attempt by at least 2 s, although
    the schedule's first delay is 0.5 s."""
    rig = make_rig(retry_schedule=(0.5, 0.5, 0.5))
    event = rig.rest_event(sink.url)
    rig.start_worker("w1", concurrency=2)
    responder.use(first_per_key(Reply(429, [("Retry-After", "2")], "slow down"), OK))
    started = time.monotonic()
    expected = rig.delivery_ids(rig.publish(f"limited-{i:03d}" for i in range(6)), event)

    rig.wait_delivered(responder, expected, timeout=60)
    gaps = []
    for delivery_id in expected:
        first, second, *rest = responder.for_key(delivery_id)
        assert (first.status, second.status, rest) == (429, 200, [])
        gaps.append(second.received - first.answered)
    report(
        "429 Retry-After: 2",
        messages=len(expected),
        min_gap_s=min(gaps),
        max_gap_s=max(gaps),
        duplicates=responder.duplicates(),
        recovery_s=time.monotonic() - started,
    )
    assert min(gaps) >= 2.0 - CLOCK_SLACK
    assert max(gaps) <= 2.0 + 5.0
    for row in rig.deliveries(expected).values():
        assert row is not None and row.attempt_log[0].http_status == 429
