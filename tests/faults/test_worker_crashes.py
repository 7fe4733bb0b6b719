"""Worker processes dying under load: ``kill -9`` of a pool child, of a whole node, SIGTERM.

Deliveries are slow at the sink (a delayed 200) so that attempts are in flight when the fault
hits. Loss is measured at the sink by ``Idempotency-Key`` and in the activity log.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.harness import CRASH_TEST_TIMEOUT, Responder, Rig, Sink, first_per_key, report
from tests.support.processes import wait_for
from tests.support.sinks import Reply

SLOW_OK = Reply(200, [("Content-Type", "application/json")], '{"ok": true}', delay=0.6)


@pytest.mark.slow
@pytest.mark.timeout(CRASH_TEST_TIMEOUT)
def test_killed_pool_child_and_killed_node_lose_nothing(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """SIGKILL of a pool child mid-delivery, then SIGKILL of the whole node mid-load, loses no
    delivery: the child's message is requeued (``reject_on_worker_lost``), the node's unacked
    messages come back after the visibility timeout, stream entries it had read are reclaimed,
    and the locks the dead attempts held expire. A new node delivers everything."""
    rig = make_rig()
    responder.use(SLOW_OK)
    event = rig.rest_event(sink.url)
    w1 = rig.start_worker("w1", concurrency=2)
    message_ids = [f"crash-{i:03d}" for i in range(40)]
    expected = rig.delivery_ids(message_ids, event)

    with rig.producer(message_ids, rate=5.0):
        wait_for(lambda: responder.in_flight >= 2, 30, what="two deliveries in flight")
        [victim, *_] = w1.children()
        os.kill(victim, signal.SIGKILL)
        child_killed = time.monotonic()
        exposed = exposure(rig, responder, expected)
        # The pool replaces the child and goes on; kill the node while it is busy again.
        time.sleep(2.0)
        wait_for(lambda: responder.in_flight >= 1, 30, what="a delivery in flight")
        delivered_before = len(responder.delivered())
        w1.kill_node()
        node_killed = time.monotonic()
        exposed += exposure(rig, responder, expected)
        time.sleep(1.0)  # the producer keeps publishing while no worker runs
        rig.start_worker("w2", concurrency=2)

    bound = rig.crash_recovery_bound + 30
    rig.wait_delivered(responder, expected, timeout=bound, what="every delivery after the kills")
    recovered = time.monotonic()
    duplicates = responder.duplicates()
    report(
        "kill -9 child + node",
        messages=len(expected),
        delivered_before_node_kill=delivered_before,
        duplicates=duplicates,
        exposed_at_the_kills=exposed,
        recovery_s=recovered - node_killed,
        since_child_kill_s=recovered - child_killed,
    )
    assert delivered_before < len(expected), "the node must die with work left to do"
    assert rig.status_counts()["SUCCESS"] == len(expected)
    # Only a request that reached the sink and whose outcome was not yet stored when its
    # process was killed can reach the sink twice (a batch's outcomes are stored together,
    # so that is at most the batches in flight).
    assert duplicates <= exposed


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigterm_under_load_finishes_in_flight_work_and_loses_nothing(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """SIGTERM while deliveries are in flight: the worker finishes what it is doing and exits
    by itself (warm shutdown), returning prefetched messages to the queue; a new worker
    delivers the rest. A graceful stop sends nothing twice."""
    # Batches of 4: the worker is stopped while it holds some and others wait in the stream.
    rig = make_rig(ingest_batch=4)
    responder.use(SLOW_OK)
    event = rig.rest_event(sink.url)
    w1 = rig.start_worker("w1", concurrency=2)
    message_ids = rig.publish(f"term-{i:03d}" for i in range(24))
    expected = rig.delivery_ids(message_ids, event)

    wait_for(lambda: responder.in_flight >= 2, 30, what="two deliveries in flight")
    w1.signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert w1.proc is not None
    code = w1.proc.wait(timeout=60)
    exited = time.monotonic() - signalled
    delivered_before = len(responder.delivered())
    in_flight_left = responder.in_flight
    rig.start_worker("w2", concurrency=2)

    rig.wait_delivered(responder, expected, timeout=90, what="every delivery after SIGTERM")
    duplicates = responder.duplicates()
    report(
        "SIGTERM under load",
        messages=len(expected),
        exit_code=code,
        exit_s=exited,
        delivered_before_restart=delivered_before,
        duplicates=duplicates,
        recovery_s=time.monotonic() - signalled,
    )
    assert code == 0, w1.log()
    assert in_flight_left == 0, "the worker exited while an attempt was still in flight"
    assert delivered_before < len(expected), "SIGTERM must arrive with work left to do"
    assert rig.status_counts()["SUCCESS"] == len(expected)
    # A warm shutdown completes and acknowledges its in-flight attempts before exiting.
    assert duplicates == 0


def exposure(rig: Rig, responder: Responder, expected: list[str]) -> int:
    """Deliveries that reached the sink without being recorded as delivered: the most a kill
    at this instant can make the sink see twice."""
    done = {i for i, d in rig.deliveries(expected).items() if d and d.status == "SUCCESS"}
    return len(responder.reached() - done)


def blocked_on_the_queue(rig: Rig) -> bool:
    """Whether a worker is blocked in BRPOP right now (kombu re-issues it about every 1 s)."""
    return any(c["cmd"] == "brpop" and "b" in c["flags"] for c in rig.client.client_list())


@pytest.mark.slow
@pytest.mark.timeout(CRASH_TEST_TIMEOUT)
def test_task_taken_by_a_node_that_dies_before_recording_it_is_not_lost(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """kombu's Redis transport pops a message (BRPOP) *before* it records it as unacked: a
    node that dies in between takes the message with it, and the visibility timeout cannot
    bring back what was never recorded. The soak run hit this window with a plain SIGKILL;
    here it is made deterministic by freezing the node (SIGSTOP, like a paused VM) while it
    is blocked on the queue, replaying a delivery exactly as ``POST .../activity/{id}/replay``
    does, and then SIGKILLing the frozen node. Herald must still deliver it: the activity
    log, not the broker, has to be the source of truth for work that is not done."""
    from api.dispatch import CeleryDispatcher, replay_delivery

    rig = make_rig()
    dispatcher = CeleryDispatcher(rig.settings)
    # Each delivery is rejected (permanently) once, then accepted when replayed.
    responder.use(first_per_key(Reply(400, body="rejected"), Reply.json({"ok": True})))
    event = rig.rest_event(sink.url)
    w1 = rig.start_worker("w1", concurrency=1)
    assert w1.proc is not None
    queue = rig.settings.queue
    taken: str | None = None
    for attempt in range(10):
        [delivery_id] = rig.delivery_ids(rig.publish([f"frozen-{attempt}"]), event)
        wait_for(
            lambda i=delivery_id: (d := rig.store.get_delivery(i)) and d.status == "FAILED",
            30,
            what="the delivery to fail permanently",
        )
        wait_for(lambda: blocked_on_the_queue(rig), 5, interval=0.01, what="a blocked BRPOP")
        os.killpg(w1.proc.pid, signal.SIGSTOP)
        # Exactly what POST .../activity/{id}/replay does.
        replay_delivery(
            delivery_id,
            settings=rig.settings,
            store=rig.store,
            client=rig.client,
            dispatcher=dispatcher,
        )
        time.sleep(0.3)
        if rig.client.llen(queue) == 0:
            taken = delivery_id
            break
        # Frozen between two BRPOPs: let it run, deliver this one, and try again.
        os.killpg(w1.proc.pid, signal.SIGCONT)
        rig.wait_delivered(responder, [delivery_id], timeout=30)
    assert taken is not None, "the frozen node never took a task from the queue"
    unacked = int(rig.client.hlen("unacked"))
    w1.kill_node()
    killed = time.monotonic()
    rig.start_worker("w2", concurrency=1)

    try:
        # However Herald recovers it (broker redelivery, or a retry-schedule safety net due
        # once the lock expired), it has no reason to take longer than a crashed attempt.
        bound = rig.crash_recovery_bound + 10
        rig.wait_delivered(responder, [taken], timeout=bound, what="the replayed delivery")
    finally:
        row = rig.store.get_delivery(taken)
        report(
            "node dies between BRPOP and unacked",
            tries=attempt + 1,
            recorded_unacked=unacked,
            final_status=row.status if row else None,
            recovery_s=time.monotonic() - killed,
        )
    assert responder.duplicates() == 0
