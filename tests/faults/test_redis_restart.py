"""Redis restarting under the running worker (AOF on), with work in every stage."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.faults.harness import CRASH_TEST_TIMEOUT, Responder, Rig, Sink, failing_until, report
from tests.support.processes import wait_for
from tests.support.sinks import Reply


@pytest.mark.slow
@pytest.mark.timeout(CRASH_TEST_TIMEOUT)
def test_redis_restart_with_work_queued_in_flight_and_scheduled(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """Redis restarts while changes wait in the stream, deliveries are in flight and failed
    ones wait in the retry schedule. AOF keeps the stream, the queue, the unacked messages
    and the schedule; the running worker reconnects by itself (it is never restarted) and
    every delivery arrives."""
    rig = make_rig()
    # 503 (slowly, so attempts are in flight) until well after the restart, then 200.
    failing = Reply(503, body="down for maintenance", delay=0.4)
    responder.use(failing)
    event = rig.rest_event(sink.url)
    worker = rig.start_worker("w1", concurrency=2)
    retry_key = f"{rig.settings.redis_prefix}:retry"

    first = rig.publish(f"redis-a-{i:03d}" for i in range(30))
    wait_for(lambda: rig.client.zcard(retry_key) >= 3, 30, what="failed deliveries scheduled")
    wait_for(lambda: responder.in_flight >= 1, 30, what="a delivery in flight")
    scheduled = int(rig.client.zcard(retry_key))
    in_flight = responder.in_flight
    # A burst right before the restart: the worker is still reading it when Redis goes.
    second = rig.publish((f"redis-b-{i:03d}" for i in range(40)), at_once=True)
    in_stream = int(rig.client.xlen(rig.settings.stream_key))
    rig.redis.restart()
    restarted = time.monotonic()
    responder.use(failing_until(restarted + 2.0, failing, Reply.json({"ok": True})))
    third = rig.publish(f"redis-c-{i:03d}" for i in range(10))

    expected = rig.delivery_ids([*first, *second, *third], event)
    report(
        "redis restart (state when Redis went down)",
        scheduled=scheduled,
        in_stream=in_stream,
        in_flight=in_flight,
    )
    # Worst case: a message held by the dying connection comes back after the visibility
    # timeout and a restore sweep, then waits for the lock of the interrupted attempt.
    bound = rig.crash_recovery_bound + 30
    rig.wait_delivered(responder, expected, timeout=bound, what="every delivery after the restart")
    duplicates = responder.duplicates()
    report(
        "redis restart",
        messages=len(expected),
        duplicates=duplicates,
        recovery_s=time.monotonic() - restarted,
    )
    assert worker.proc is not None and worker.proc.poll() is None, "the worker must survive"
    assert scheduled >= 3
    assert rig.status_counts()["SUCCESS"] == len(expected)
    # Sink answers before the restart were 503: no 2xx can be repeated by it.
    assert duplicates == 0
