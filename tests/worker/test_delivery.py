"""Delivery decisions against real parts (Redis, SQLite store, loopback sinks), in process.

These drive :class:`worker.delivery.Deliverer` directly, one attempt per call, so each
decision (record, retry, give up, defer, disable, capture) is checked without waiting on a
scheduler; the real-worker tests in ``test_end_to_end`` and ``tests/faults`` cover the wiring.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet

from integrations.config import Settings
from integrations.errors import PermanentError
from integrations.models import IntegrationEventIn, Notifier
from integrations.store import AttemptRecord, DeliveryStatus, Store, StoredEvent, delivery_id_for
from notifiers.sender import Sender
from tests.support.sinks import RecordingSink, Reply
from tests.worker.conftest import sink_event_body
from worker.attempt import Deliverer
from worker.events import EventCache
from worker.fanout import fan_out
from worker.lease import MAX_UNFINISHED_STARTS
from worker.schedule import RetrySchedule

TENANT = "client_9"


class Harness:
    """A store, a sender and a deliverer over one test's Redis prefix."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.store = Store(settings.database_url, settings.secret_key)
        self.store.migrate()
        self.sender = Sender(settings, client)
        self.schedule = RetrySchedule(client, settings.redis_prefix)
        self.deliverer = Deliverer(settings, self.store, self.sender, client, self.schedule)
        self.matchers = EventCache(self.store)
        self.store.create_tenant(TENANT)
        self.installed = self.store.install(TENANT, "CUSTOM", "Ticketing").id

    def event(self, sink: RecordingSink, **overrides: Any) -> StoredEvent:
        body = sink_event_body(sink.url, **overrides)
        return self.store.create_event(
            TENANT, self.installed, IntegrationEventIn.model_validate(body)
        )

    def publish(
        self, data: dict[str, Any], *, event_type: str = "CREATE", mid: str = "m1"
    ) -> list[str]:
        raw = json.dumps(
            {
                "id": mid,
                "tenantId": TENANT,
                "entity": "INCIDENT",
                "eventType": event_type,
                "occurredAt": datetime.now(UTC).isoformat(),
                "data": data,
            }
        )
        return fan_out(self.store, self.matchers, raw, dedupe_window=60).deliveries

    def close(self) -> None:
        self.sender.close()
        self.store.close()


@pytest.fixture
def h(settings: Settings, redis_client: redis.Redis) -> Iterator[Harness]:
    harness = Harness(settings, redis_client)
    yield harness
    harness.close()


def test_success_is_recorded_with_the_attempt(h: Harness, sink: RecordingSink) -> None:
    event = h.event(sink)
    [dlv] = h.publish({"id": "INC-1", "subject": "disk"})
    assert dlv == delivery_id_for(TENANT, "m1", event.id)
    assert h.deliverer.deliver(dlv, 0).outcome == "sent"
    [req] = sink.requests
    assert req.json() == {"subject": "disk"}
    assert req.header("idempotency-key") == dlv
    d = h.store.get_delivery(dlv)
    assert d is not None and d.status == "SUCCESS" and d.attempts == 1
    assert d.attempt_log[0].http_status == 200
    # Delivered once: the same dispatch again is a duplicate and sends nothing.
    assert h.deliverer.deliver(dlv, 0).outcome == "skipped"
    assert h.deliverer.deliver(dlv, None).outcome == "skipped"
    assert sink.count == 1


def test_retryable_failures_follow_the_schedule_then_give_up(
    h: Harness, sink: RecordingSink
) -> None:
    sink.respond_with(Reply(status=503, body="busy"))
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    schedule = h.settings.retry_schedule
    for n in range(1, len(schedule) + 1):
        before = time.time()
        assert h.deliverer.deliver(dlv).outcome == "retrying"
        after = time.time()
        due = h.schedule.due_at(dlv)
        assert due is not None
        # The delay is counted from the outcome, somewhere between `before` and `after`: bound
        # it on both sides so a slow attempt cannot fail the check (2 ms for float rounding).
        delay = schedule[n - 1]
        assert before + delay * 0.8 - 0.002 <= due <= after + delay * 1.2 + 0.002
        d = h.store.get_delivery(dlv)
        assert d is not None and d.status == "RETRYING" and d.attempts == n
        assert d.http_status == 503 and d.error_class == "http_503"
    assert h.deliverer.deliver(dlv).outcome == "failed"
    d = h.store.get_delivery(dlv)
    assert d is not None and d.status == "FAILED"
    assert d.status_message.startswith(f"gave up after {len(schedule) + 1} attempts")
    assert [a.outcome for a in d.attempt_log] == ["retryable"] * (len(schedule) + 1)
    assert h.schedule.due_at(dlv) is None
    assert sink.count == len(schedule) + 1


def test_a_permanent_failure_stops_at_once(h: Harness, sink: RecordingSink) -> None:
    sink.respond_with(Reply(status=404, body="no such queue"))
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    assert h.deliverer.deliver(dlv, 0).outcome == "failed"
    d = h.store.get_delivery(dlv)
    assert d is not None and d.status == "FAILED" and d.http_status == 404
    assert "no such queue" in (d.res_payload or "")
    assert h.schedule.due_at(dlv) is None


def test_retry_after_is_honoured(h: Harness, sink: RecordingSink) -> None:
    sink.reply(Reply(status=429, headers={"Retry-After": "7"}))
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    before = time.time()
    assert h.deliverer.deliver(dlv, 0).outcome == "retrying"
    due = h.schedule.due_at(dlv)
    assert due is not None and due - before >= 6.9


def test_a_delivery_locked_by_another_worker_is_looked_at_again_later(
    h: Harness, sink: RecordingSink, redis_client: redis.Redis
) -> None:
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    redis_client.set(h.settings.keys.lock(dlv), "someone-else", ex=60)
    before = time.time()
    assert h.deliverer.deliver(dlv, 0).outcome == "skipped"
    after = time.time()
    assert sink.count == 0
    # Not stranded if the holder died: due again once its lock runs out (60 s), not a lock
    # period of our own (30 s) after this redundant dispatch.
    due = h.schedule.due_at(dlv)
    assert h.deliverer.lease.lock_ttl != 60
    assert due is not None and before + 59 <= due <= after + 61.01


def test_a_schedule_entry_that_outlived_its_delivery_is_dropped(
    h: Harness, sink: RecordingSink
) -> None:
    """An entry re-added just after the outcome was stored (a redundant dispatch racing the
    holder) would otherwise be dispatched again every lease, forever."""
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    assert h.deliverer.deliver(dlv, 0).outcome == "sent"
    h.schedule.add(dlv, time.time() - 1)  # the stale entry
    [(claimed_id, lease)] = h.schedule.claim_due(lease=600.0)
    assert claimed_id == dlv
    assert h.deliverer.deliver(dlv, None, claimed=lease).outcome == "skipped"
    assert h.schedule.due_at(dlv) is None
    assert sink.count == 1


def test_a_delivery_that_keeps_killing_its_worker_becomes_poison(
    h: Harness, sink: RecordingSink, redis_client: redis.Redis
) -> None:
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    redis_client.set(h.settings.keys.starts(dlv), MAX_UNFINISHED_STARTS)
    assert h.deliverer.deliver(dlv, 0).outcome == "failed"
    d = h.store.get_delivery(dlv)
    assert d is not None and d.status == "FAILED" and d.error_class == "poison"
    assert sink.count == 0


def test_deleted_and_inactive_events_fail_visibly(h: Harness, sink: RecordingSink) -> None:
    gone = h.event(sink, name="gone")
    off = h.event(sink, name="off")
    dlvs = h.publish({"subject": "x"})
    h.store.delete_event(TENANT, gone.id)
    h.store.set_event_active(off.id, False, "deactivated through the API")
    for dlv in dlvs:
        assert h.deliverer.deliver(dlv, 0).outcome == "failed"
    reasons = sorted(d.status_message for d in map(h.store.get_delivery, dlvs) if d)
    assert reasons == [
        "integration event is inactive: deactivated through the API",
        "integration event was deleted",
    ]
    assert sink.count == 0


def test_missing_placeholder_is_a_warning_and_template_errors_are_permanent(
    h: Harness, sink: RecordingSink
) -> None:
    h.event(sink, payload=base64.b64encode(b'{"a":"$incident.nothere"}').decode())
    [dlv] = h.publish({"subject": "x"})
    h.deliverer.deliver(dlv, 0)
    d = h.store.get_delivery(dlv)
    assert d is not None and d.status == "SUCCESS"
    assert d.warnings == ["$incident.nothere has no value"]
    assert sink.requests[0].json() == {"a": ""}


def test_the_breaker_defers_without_spending_attempts(
    settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> None:
    # A long retry schedule: the breaker only defers a delivery the schedule could still wait
    # for, and the fixture's sub-second schedule would make that depend on the test's speed.
    h = Harness(
        dataclasses.replace(
            settings, breaker_threshold=2, breaker_cooldown=30, retry_schedule=(60.0, 120.0)
        ),
        redis_client,
    )
    try:
        sink.respond_with(Reply(status=503))
        h.event(sink)
        dlvs = [h.publish({"subject": "x"}, mid=f"m{i}")[0] for i in range(3)]
        assert h.deliverer.deliver(dlvs[0], 0).outcome == "retrying"
        assert h.deliverer.deliver(dlvs[1], 0).outcome == "retrying"  # opens the breaker
        assert h.deliverer.deliver(dlvs[2], 0).outcome == "deferred"
        d = h.store.get_delivery(dlvs[2])
        assert d is not None and d.attempts == 0 and "circuit open" in d.status_message
        assert sink.count == 2
        due = h.schedule.due_at(dlvs[2])
        assert due is not None and due >= time.time() + 25
    finally:
        h.close()


def test_an_event_failing_for_the_whole_window_is_disabled(
    settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> None:
    h = Harness(dataclasses.replace(settings, disable_after=0.0), redis_client)
    try:
        sink.respond_with(Reply(status=500))
        event = h.event(sink)
        [dlv] = h.publish({"subject": "x"})
        assert h.deliverer.deliver(dlv, 0).outcome == "failed"
        stored = h.store.get_event(TENANT, event.id)
        assert stored is not None and not stored.active
        assert stored.disabled_reason is not None
        assert stored.disabled_reason.startswith("auto-disabled: every delivery attempt failed")
        d = h.store.get_delivery(dlv)
        assert d is not None and d.status == "FAILED" and "auto-disabled" in d.status_message
    finally:
        h.close()


def test_response_capture_lets_an_update_address_the_remote_ticket(
    h: Harness, sink: RecordingSink
) -> None:
    sink.reply(Reply.json({"result": {"id": "T-77", "url": "https://t/77"}}, status=201))
    create = h.event(
        sink,
        responseHeaders=[
            {"key": "extTicketId", "value": "$result.id"},
            {"key": "extTicketURL", "value": "$result.url"},
        ],
    )
    h.event(
        sink,
        name="update",
        eventType="UPDATE",
        endPointURI="/tickets/$extTicketId",
        thirdPartyEventType="PATCH",
        payload=base64.b64encode(
            b'{"ticket":"$extTicketId","subject":"$incident.subject"}'
        ).decode(),
    )
    [first] = h.publish({"id": "INC-1", "subject": "created"}, mid="c1")
    h.deliverer.deliver(first, 0)
    row = h.store.get_delivery(first)
    assert row is not None and row.captured == {
        "extTicketId": "T-77",
        "extTicketURL": "https://t/77",
    }
    assert h.store.captured_for_entity(create, "INC-1")["extTicketId"] == "T-77"
    # The UPDATE event reads values captured by the CREATE event for the same incident.
    [second] = h.publish({"id": "INC-1", "subject": "updated"}, event_type="UPDATE", mid="u1")
    assert h.deliverer.deliver(second, 0).outcome == "sent", h.store.get_delivery(second)
    update_req = sink.requests[1]
    assert update_req.method == "PATCH"
    assert update_req.path == "/tickets/T-77"
    assert update_req.json() == {"ticket": "T-77", "subject": "updated"}


def test_a_soap_answer_is_captured_for_the_update(h: Harness, sink: RecordingSink) -> None:
    """CREATE goes to a SOAP endpoint whose envelope carries the new record's sys_id; the
    UPDATE event addresses that record with it."""
    sink.reply(
        Reply.soap("<insertResponse><sys_id>9d3c</sys_id><number>INC7</number></insertResponse>")
    )
    h.event(
        sink,
        notifier={"type": "SOAP_API", "baseURI": sink.url, "authType": "NONE"},
        endPointURI="/incident.do?SOAP",
        payload=base64.b64encode(
            b"<insert><short_description>$incident.subject</short_description></insert>"
        ).decode(),
        responseHeaders=[
            {"key": "extTicketId", "value": "$insertResponse.sys_id"},
            {"key": "extTicketNumber", "value": "$insertResponse.number"},
        ],
    )
    h.event(
        sink,
        name="update",
        eventType="UPDATE",
        endPointURI="/api/now/table/incident/$extTicketId",
        thirdPartyEventType="PATCH",
        payload=base64.b64encode(b'{"number":"$extTicketNumber"}').decode(),
    )
    [first] = h.publish({"id": "INC-1", "subject": "a <b> & c"}, mid="c1")
    assert h.deliverer.deliver(first, 0).outcome == "sent"
    row = h.store.get_delivery(first)
    assert row is not None and row.captured == {"extTicketId": "9d3c", "extTicketNumber": "INC7"}
    assert "<short_description>a &lt;b&gt; &amp; c</short_description>" in sink.requests[0].text
    [second] = h.publish({"id": "INC-1", "subject": "b"}, event_type="UPDATE", mid="u1")
    assert h.deliverer.deliver(second, 0).outcome == "sent"
    update = sink.requests[1]
    assert (update.method, update.path) == ("PATCH", "/api/now/table/incident/9d3c")
    assert update.json() == {"number": "INC7"}


def test_use_base_notifier(h: Harness, sink: RecordingSink) -> None:
    h.store.set_base_notifier(
        TENANT,
        h.installed,
        Notifier(type="REST_API", baseURI=sink.url, authType="BASIC", userName="u", password="p"),  # type: ignore[arg-type]
    )
    h.event(sink, useBaseNotifier=True, notifier=None, endPointURI="/via-base")
    [dlv] = h.publish({"subject": "x"})
    assert h.deliverer.deliver(dlv, 0).outcome == "sent"
    [req] = sink.requests
    assert req.path == "/via-base"
    assert req.header("authorization") == "Basic " + base64.b64encode(b"u:p").decode()


def test_duplicate_messages_are_dropped_and_counted(h: Harness, sink: RecordingSink) -> None:
    h.event(sink)
    [first] = h.publish({"subject": "x"}, mid="dup")
    assert h.deliverer.deliver(first, 0).outcome == "sent"
    assert h.publish({"subject": "x"}, mid="dup") == []
    assert h.store.duplicate_count(TENANT) == 1
    assert sink.count == 1


def test_malformed_messages_are_dead_lettered_with_the_reason(h: Harness) -> None:
    result = fan_out(
        h.store, h.matchers, '{"tenantId": "client_9", "entity": "NOPE"}', dedupe_window=60
    )
    assert result.dead_letter is not None
    d = h.store.get_delivery(result.dead_letter)
    assert d is not None and d.status == "FAILED" and d.tenant_id == "client_9"
    assert "entity" in d.status_message and "id: Field required" in d.status_message
    garbage = fan_out(h.store, h.matchers, "not json at all", dedupe_window=60)
    assert garbage.dead_letter is not None
    g = h.store.get_delivery(garbage.dead_letter)
    assert g is not None and g.message == "not json at all" and "Invalid JSON" in g.status_message


def test_a_redelivered_message_dispatches_deliveries_left_pending(
    h: Harness, sink: RecordingSink
) -> None:
    """A worker that died after fan-out but before dispatch strands nothing."""
    h.event(sink)
    [dlv] = h.publish({"subject": "x"}, mid="crash")
    # ...the worker dies here; the ingest task is redelivered:
    assert h.publish({"subject": "x"}, mid="crash") == [dlv]
    assert h.deliverer.deliver(dlv, 0).outcome == "sent"
    # Once attempted, a further duplicate dispatches nothing.
    assert h.publish({"subject": "x"}, mid="crash") == []


def test_an_internal_failure_leaves_the_delivery_scheduled(
    settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> None:
    """The safety net: a failure outside the attempt's own handling strands nothing."""
    h = Harness(settings, redis_client)
    try:
        basic = {
            "type": "REST_API",
            "baseURI": sink.url,
            "authType": "BASIC",
            "userName": "u",
            "password": "p",
        }
        h.event(sink, notifier=basic)
        [dlv] = h.publish({"subject": "x"})
    finally:
        h.close()
    # A worker whose key differs cannot open the event's secrets: the attempt blows up.
    wrong = Harness(
        dataclasses.replace(settings, secret_key=Fernet.generate_key().decode()), redis_client
    )
    try:
        with pytest.raises(PermanentError, match="HERALD_SECRET_KEY differs"):
            wrong.deliverer.deliver(dlv, 0)
        assert wrong.schedule.due_at(dlv) is not None
        d = wrong.store.get_delivery(dlv)
        assert d is not None and d.status == "PENDING"
    finally:
        wrong.close()


def test_a_replay_after_exhausted_retries_gets_a_fresh_budget(
    h: Harness, sink: RecordingSink
) -> None:
    sink.respond_with(Reply(status=503))
    h.event(sink)
    [dlv] = h.publish({"subject": "x"})
    while h.deliverer.deliver(dlv).outcome == "retrying":
        pass
    spent = len(h.settings.retry_schedule) + 1
    h.store.reset_for_replay(dlv)
    assert h.deliverer.deliver(dlv).outcome == "retrying"
    d = h.store.get_delivery(dlv)
    assert d is not None and d.attempts == spent + 1 and d.status == "RETRYING"


def test_an_attempt_that_lost_the_race_to_record_keeps_the_delivery_scheduled(
    h: Harness, sink: RecordingSink
) -> None:
    """A first attempt in a batch records RETRYING while a retry-path attempt of the same
    delivery is in flight: the late one stores nothing, and must not drop the schedule
    entry the batch's retry needs."""
    h.event(sink)
    [dlv] = h.publish({"id": "INC-1", "subject": "x"})

    def batch_records_first(_req: object) -> Reply:
        h.store.record_attempts(
            [
                AttemptRecord(
                    delivery_id=dlv,
                    started_at=datetime.now(UTC),
                    duration_ms=1.0,
                    outcome="retryable",
                    status=DeliveryStatus.RETRYING,
                    status_message="attempt 1 failed (the batch)",
                    previous_attempts=0,
                )
            ]
        )
        return Reply(200)

    sink.respond_with(batch_records_first)
    assert h.deliverer.deliver(dlv, 0).outcome == "skipped"
    row = h.store.get_delivery(dlv)
    assert row is not None and row.status == DeliveryStatus.RETRYING and row.attempts == 1
    assert h.schedule.due_at(dlv) is not None
