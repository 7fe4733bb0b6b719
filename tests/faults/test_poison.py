"""Poison input: a message that is not JSON, and templates that fail only when rendered."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from integrations.store import DeliveryStatus
from tests.faults.harness import Responder, Rig, Sink, report
from tests.support.processes import wait_for

#: Both compile (``validate_template`` accepts them when the event is saved) and fail when
#: rendered: a division by zero and a sandbox violation.
DIVISION_BY_ZERO = '{"n": {{ incident.seq / 0 }}}'
SANDBOX_ESCAPE = '{"c": "{{ incident.__class__ }}"}'


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_poison_ends_failed_once_with_a_reason_and_never_loops(
    make_rig: Callable[..., Rig], sink: Sink, responder: Responder
) -> None:
    """An unparseable stream entry is dead-lettered once (FAILED, ``malformed_message``); a
    delivery whose template fails at render time ends FAILED after one attempt with the
    template error as its reason. Neither is retried: seconds later nothing has grown, the
    stream, the Celery queue and the retry schedule are empty. The healthy event of the same
    message is delivered."""
    rig = make_rig()
    healthy = rig.rest_event(sink.url, name="healthy")
    zero = rig.rest_event(sink.url, name="division by zero", template=DIVISION_BY_ZERO)
    escape = rig.rest_event(sink.url, name="sandbox escape", template=SANDBOX_ESCAPE)
    rig.start_worker("w1", concurrency=2)
    started = time.monotonic()
    rig.publish_raw("not json")
    [message] = rig.publish(["poison-1"])
    [ok_id] = rig.delivery_ids([message], healthy)
    [zero_id] = rig.delivery_ids([message], zero)
    [escape_id] = rig.delivery_ids([message], escape)

    def dead_letters() -> list[str]:
        return [d.id for d in rig.store.dead_letters() if d.message == "not json"]

    def settled() -> bool:
        rows = rig.deliveries([zero_id, escape_id])
        failed = all(r is not None and r.status == DeliveryStatus.FAILED for r in rows.values())
        return failed and bool(dead_letters())

    rig.wait_delivered(responder, [ok_id], timeout=30)
    wait_for(settled, 30, what="the poison to end FAILED")
    settle_s = time.monotonic() - started
    before = rig.deliveries([zero_id, escape_id])
    time.sleep(4.0)  # longer than several retry delays (0.5, 1, 2 s) and scheduler ticks
    after = rig.deliveries([zero_id, escape_id])
    prefix = rig.settings.redis_prefix
    leftovers = {
        "stream": rig.client.xlen(rig.settings.stream_key),
        "pending": rig.client.xpending(rig.settings.stream_key, "herald")["pending"],
        "queue": rig.client.llen(rig.settings.queue)
        + rig.client.llen(rig.settings.keys.batch_queue),
        "retry": rig.client.zcard(f"{prefix}:retry"),
    }
    report("poison", settled_s=settle_s, sink_requests=len(responder.answers), **leftovers)

    [dead_id] = dead_letters()
    dead = rig.store.get_delivery(dead_id)
    assert dead is not None and dead.status == DeliveryStatus.FAILED
    assert dead.error_class == "malformed_message"
    assert dead.status_message.startswith("malformed message:")
    for delivery_id, error in ((zero_id, "ZeroDivisionError"), (escape_id, "SecurityError")):
        row, later = before[delivery_id], after[delivery_id]
        assert row is not None and later is not None
        assert row.status == later.status == DeliveryStatus.FAILED
        assert row.attempts == later.attempts == 1, later.attempt_log
        assert "template failed to render" in later.status_message
        assert error in later.status_message
        assert later.error_class == "invalid_input"
    # Only the healthy delivery reached the sink, once.
    assert [a.key for a in responder.answers] == [ok_id]
    assert leftovers == {"stream": 0, "pending": 0, "queue": 0, "retry": 0}
