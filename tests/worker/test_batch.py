"""The batch path against real parts (Redis, SQLite store, loopback sinks), in process.

:class:`worker.batch.BatchRunner` is driven directly with raw messages, as the
``herald.ingest_batch`` task hands them over, so each decision of a batch (first attempts,
retries, deferral, duplicates, recovery after a crash) is checked without a Celery hop; the
real-worker tests cover the wiring.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from integrations.config import Settings
from integrations.enums import Entity, EventType
from integrations.models import IntegrationEventIn
from integrations.store import DeliveryStatus, Store, StoredEvent, delivery_id_for
from notifiers.sender import Sender
from tests.support.sinks import RecordingSink, Reply
from tests.worker.conftest import sink_event_body
from worker.batch import BatchRunner
from worker.events import EventCache
from worker.fanout import plan_batch
from worker.health import BreakerPolicy, EndpointHealth, breaker_key
from worker.schedule import RetrySchedule
from worker.sending import SendPool

TENANT = "client_9"


def message(mid: str, data: dict[str, Any], *, tenant: str = TENANT) -> str:
    return json.dumps(
        {
            "id": mid,
            "tenantId": tenant,
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": data,
        }
    )


class Rig:
    """A store, a sender pool and a batch runner over one test's Redis prefix."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.client = client
        self.store = Store(settings.database_url, settings.secret_key)
        self.store.migrate()
        self.sender = Sender(settings, client)
        self.pool = SendPool(
            self.sender.send_async, close=self.sender.aclose, concurrency=8, per_endpoint=4
        )
        self.events = EventCache(self.store)
        self.runner = BatchRunner(settings, self.store, client, self.events, self.pool)
        self.schedule = RetrySchedule(client, settings.redis_prefix)
        self.store.create_tenant(TENANT)
        self.installed = self.store.install(TENANT, "CUSTOM", "Ticketing").id

    def event(self, sink: RecordingSink, **overrides: Any) -> StoredEvent:
        body = sink_event_body(sink.url, **overrides)
        return self.store.create_event(
            TENANT, self.installed, IntegrationEventIn.model_validate(body)
        )

    def close(self) -> None:
        self.pool.close()
        self.sender.close()
        self.store.close()


@pytest.fixture
def rig(settings: Settings, redis_client: redis.Redis) -> Iterator[Rig]:
    r = Rig(settings, redis_client)
    yield r
    r.close()


def test_a_batch_makes_every_first_attempt_and_stores_each_outcome(
    rig: Rig, sink: RecordingSink
) -> None:
    event = rig.event(sink)
    raws = [message(f"m{i}", {"id": f"INC-{i}", "subject": f"s{i}"}) for i in range(20)]
    report = rig.runner.run(raws)
    assert (report.messages, report.created, report.sent) == (20, 20, 20)
    assert sorted(r.json()["subject"] for r in sink.requests) == sorted(f"s{i}" for i in range(20))
    for i in range(20):
        d = rig.store.get_delivery(delivery_id_for(TENANT, f"m{i}", event.id))
        assert d is not None and d.status == DeliveryStatus.SUCCESS and d.attempts == 1
        assert d.attempt_log[0].http_status == 200
    # A success against a healthy endpoint leaves nothing in Redis: no schedule entry, no
    # lock, no start counter, no breaker record.
    assert list(rig.client.scan_iter(match=f"{rig.settings.redis_prefix}:*")) == []


def test_failures_in_a_batch_are_scheduled_and_counted_against_the_breaker(
    rig: Rig, sink: RecordingSink
) -> None:
    event = rig.event(sink)
    sink.respond_with(lambda req: Reply(503) if req.json()["subject"] == "bad" else Reply(200))
    raws = [
        message("ok", {"id": "1", "subject": "good"}),
        message("no", {"id": "2", "subject": "bad"}),
    ]
    report = rig.runner.run(raws)
    assert (report.sent, report.retrying) == (1, 1)
    failing = delivery_id_for(TENANT, "no", event.id)
    d = rig.store.get_delivery(failing)
    assert d is not None and d.status == DeliveryStatus.RETRYING and d.http_status == 503
    assert rig.schedule.due_at(failing) is not None  # the retry path takes it from here
    # The endpoint answered the other delivery of the batch: it is alive, the breaker stays
    # closed with no record.
    health = EndpointHealth(rig.client, rig.settings.redis_prefix, BreakerPolicy())
    assert health.state(breaker_key(TENANT, sink.url)).failures == 0
    # A batch whose every attempt at the endpoint fails counts each failure, in one write.
    sink.respond_with(lambda req: Reply(503))
    rig.runner.run([message(f"x{i}", {"id": f"x{i}", "subject": "bad"}) for i in range(3)])
    assert health.state(breaker_key(TENANT, sink.url)).failures == 3


def test_a_permanent_failure_and_a_template_error_end_failed_at_once(
    rig: Rig, sink: RecordingSink
) -> None:
    rig.event(sink, name="rejected")
    broken = rig.event(sink, name="broken", payload=base64.b64encode(b"{{ 1 / 0 }}").decode())
    sink.respond_with(lambda req: Reply(400, body="no such queue"))
    report = rig.runner.run([message("m", {"id": "1", "subject": "x"})])
    assert (report.failed, report.retrying) == (2, 0)
    d = rig.store.get_delivery(delivery_id_for(TENANT, "m", broken.id))
    assert d is not None and d.status == DeliveryStatus.FAILED
    assert "template" in d.status_message
    assert sink.count == 1  # the broken template never reached the endpoint


def test_an_open_breaker_defers_a_first_attempt_without_spending_it(
    rig: Rig, sink: RecordingSink
) -> None:
    event = rig.event(sink)
    health = EndpointHealth(rig.client, rig.settings.redis_prefix, BreakerPolicy(threshold=1))
    health.record_failure(breaker_key(TENANT, sink.url))
    report = rig.runner.run([message("m", {"id": "1", "subject": "x"})])
    assert report.deferred == 1 and sink.count == 0
    dlv = delivery_id_for(TENANT, "m", event.id)
    d = rig.store.get_delivery(dlv)
    assert d is not None and d.attempts == 0 and d.status_message.startswith("waiting:")
    assert rig.schedule.due_at(dlv) is not None


def test_a_duplicate_creates_nothing_and_a_crash_after_the_commit_loses_nothing(
    rig: Rig, sink: RecordingSink
) -> None:
    event = rig.event(sink)
    raw = message("m", {"id": "1", "subject": "x"})
    # A batch whose process died after the fan-out committed, before any attempt:
    plan = plan_batch([raw], rig.events)
    rig.store.ingest_batch(plan.messages, plan.rows, rig.settings.dedupe_window)
    # The stream entry is read again: the message is now a duplicate, and the delivery it
    # left PENDING is handed to the per-delivery path instead of being attempted twice.
    report = rig.runner.run([raw])
    assert report.created == 0 and sink.count == 0
    assert [d.id for d in report.redelivered] == [delivery_id_for(TENANT, "m", event.id)]
    # Read once more, before the retry path got to it: handed on again, still not sent.
    again = rig.runner.run([raw])
    assert [d.id for d in again.redelivered] == [d.id for d in report.redelivered]
    assert sink.count == 0


def test_malformed_messages_in_a_batch_are_dead_lettered_beside_the_good_ones(
    rig: Rig, sink: RecordingSink
) -> None:
    rig.event(sink)
    report = rig.runner.run(["not json", message("m", {"id": "1", "subject": "x"})])
    assert (report.dead_letters, report.sent) == (1, 1)
    assert "malformed message" in rig.store.dead_letters()[0].status_message


def test_an_event_change_reaches_the_next_batch(rig: Rig, sink: RecordingSink) -> None:
    event = rig.event(sink)
    rig.runner.run([message("a", {"id": "1", "subject": "x"})])
    rig.store.set_event_active(event.id, False, "paused")
    report = rig.runner.run([message("b", {"id": "2", "subject": "x"})])
    assert report.created == 0 and sink.count == 1


def test_the_event_cache_is_bounded_and_evicts_the_least_recently_used(
    rig: Rig, sink: RecordingSink
) -> None:
    events = EventCache(rig.store, max_size=2)
    made = [rig.event(sink).id for _ in range(3)]
    key = (TENANT, Entity.INCIDENT, EventType.CREATE)
    # A working set larger than the cache is still matched whole; the cache keeps the most
    # recently used, and never clears itself.
    assert sorted(c.event.id for c in events.candidates([key])[key]) == sorted(made)
    assert len(events) == 2


def test_an_endpoint_not_seen_healthy_is_probed_before_the_rest_of_the_batch_goes(
    rig: Rig, sink: RecordingSink
) -> None:
    """A batch of 10 to an endpoint that is down: only as many requests as the breaker has
    failures left go out; they open it, and the other deliveries wait without an attempt."""
    rig.runner.health.policy = BreakerPolicy(threshold=3, cooldown=30)
    event = rig.event(sink)
    sink.respond_with(lambda req: Reply(503))
    report = rig.runner.run([message(f"m{i}", {"id": str(i), "subject": "x"}) for i in range(10)])
    assert sink.count == 3
    assert (report.retrying, report.deferred) == (3, 7)
    rows = [rig.store.get_delivery(delivery_id_for(TENANT, f"m{i}", event.id)) for i in range(10)]
    assert sorted(r.attempts for r in rows if r) == [0] * 7 + [1] * 3
    # Once the endpoint answers, a batch goes out whole.
    rig.client.delete(rig.settings.keys.breaker(breaker_key(TENANT, sink.url)))
    sink.respond_with(lambda req: Reply(200))
    sink.clear()
    rig.runner.run([message("ok", {"id": "ok", "subject": "x"})])
    rig.runner.run([message(f"n{i}", {"id": f"n{i}", "subject": "x"}) for i in range(10)])
    assert sink.count == 11


def test_the_same_message_twice_in_one_batch_is_sent_once(rig: Rig, sink: RecordingSink) -> None:
    rig.event(sink)
    raw = message("m", {"id": "1", "subject": "x"})
    report = rig.runner.run([raw, raw])
    assert (report.created, report.sent) == (1, 1)
    assert sink.count == 1
    assert rig.store.duplicate_count(TENANT) == 1


def test_a_create_and_its_update_in_one_batch_go_in_order(rig: Rig, sink: RecordingSink) -> None:
    """The UPDATE reads the ticket id its CREATE captures: in one batch, it is prepared only
    once the CREATE's outcome is stored."""
    sink.reply(Reply.json({"result": {"id": "T-77"}}, status=201))
    rig.event(sink, responseHeaders=[{"key": "extTicketId", "value": "$result.id"}])
    update = rig.event(
        sink,
        name="update",
        eventType="UPDATE",
        endPointURI="/tickets/$extTicketId",
        thirdPartyEventType="PATCH",
    )
    created = json.loads(message("c1", {"id": "INC-1", "subject": "created"}))
    updated = {**created, "id": "u1", "eventType": "UPDATE", "data": {"id": "INC-1"}}
    report = rig.runner.run([json.dumps(created), json.dumps(updated)])
    assert report.sent == 2, rig.store.get_delivery(delivery_id_for(TENANT, "u1", update.id))
    assert [(r.method, r.path) for r in sink.requests] == [
        ("POST", "/tickets"),
        ("PATCH", "/tickets/T-77"),
    ]


def test_what_a_batch_cannot_send_within_its_deadline_is_cancelled_and_retried(
    rig: Rig, sink: RecordingSink
) -> None:
    event = rig.event(sink)
    sink.respond_with(lambda req: Reply(200, delay=3.0))
    rig.runner.send_deadline = 0.5
    started = time.monotonic()
    report = rig.runner.run([message(f"m{i}", {"id": str(i), "subject": "x"}) for i in range(3)])
    # It returns at the deadline, with nothing of the batch still going out.
    assert time.monotonic() - started < 2.5
    assert report.retrying == 3
    d = rig.store.get_delivery(delivery_id_for(TENANT, "m0", event.id))
    assert d is not None and d.status == DeliveryStatus.RETRYING
    assert d.error_class == "batch_deadline"
    # Cut off by Herald's own deadline, the endpoint is not blamed.
    health = EndpointHealth(rig.client, rig.settings.redis_prefix, BreakerPolicy())
    assert health.state(breaker_key(TENANT, sink.url)).failures == 0
