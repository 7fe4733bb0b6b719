"""Per-ticket ordering against real parts: Redis (stream and schedule), the SQLite store,
loopback sinks, the batch runner and the retry path's deliverer, in process.

The real-worker test (``test_ordering_e2e.py``) covers the wiring through Celery.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from api.dispatch import replay_deliveries
from integrations.config import Settings
from integrations.store import DeliveryStatus, InstalledState, StoredEvent, delivery_id_for
from tests.support.sinks import RecordingSink, Reply
from tests.worker.test_batch import TENANT, Rig
from worker.attempt import Deliverer
from worker.ingest import GROUP, read_entries
from worker.ordering import MAX_TURNS, RECHECK_UNSTORED

CAPTURE = [{"key": "extTicketId", "value": "$result.id"}]


def change(mid: str, ticket: str, kind: str = "CREATE", **data: Any) -> str:
    return json.dumps(
        {
            "id": mid,
            "tenantId": TENANT,
            "entity": "INCIDENT",
            "eventType": kind,
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": {"id": ticket, "subject": mid, **data},
        }
    )


class Tickets(Rig):
    """The batch rig with the retry path's deliverer and a CREATE/UPDATE pair of events."""

    def __init__(self, settings: Settings, client: redis.Redis, sink: RecordingSink) -> None:
        super().__init__(settings, client)
        self.deliverer = Deliverer(settings, self.store, self.sender, client, self.schedule)
        self.create = self.event(sink, name="create", responseHeaders=CAPTURE)
        self.update = self.event(
            sink,
            name="update",
            eventType="UPDATE",
            endPointURI="/tickets/$extTicketId",
            thirdPartyEventType="PATCH",
        )

    def row(self, mid: str, event: StoredEvent) -> Any:
        d = self.store.get_delivery(delivery_id_for(TENANT, mid, event.id))
        assert d is not None
        return d

    def due_in(self, delivery_id: str) -> float:
        due = self.schedule.due_at(delivery_id)
        assert due is not None, f"{delivery_id} is not scheduled"
        return due - time.time()


@pytest.fixture
def tickets(
    settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> Iterator[Tickets]:
    t = Tickets(settings, redis_client, sink)
    yield t
    t.close()


def test_an_update_waits_for_its_retrying_create_then_goes_with_the_ticket_it_opened(
    tickets: Tickets, sink: RecordingSink
) -> None:
    sink.reply(Reply(503, body="busy"))
    tickets.runner.run([change("c1", "INC-1")])
    create = tickets.row("c1", tickets.create)
    assert create.status == DeliveryStatus.RETRYING

    # A later batch: the UPDATE of INC-1 waits; an unrelated ticket's CREATE goes at once.
    report = tickets.runner.run([change("u1", "INC-1", "UPDATE"), change("c2", "INC-2")])
    assert (report.sent, report.waiting) == (1, 1)
    update = tickets.row("u1", tickets.update)
    assert update.status == DeliveryStatus.WAITING
    assert update.waits_on == create.id and create.id in update.status_message
    assert update.attempts == 0 and update.attempt_log == []
    assert tickets.due_in(update.id) > 30  # no wake-up yet: it waits for the CREATE
    assert [r.path for r in sink.requests] == ["/tickets", "/tickets"]

    # The CREATE's retry succeeds and captures the ticket id: the UPDATE is woken at once.
    sink.reply(Reply.json({"result": {"id": "T-9"}}, status=201))
    assert tickets.deliverer.deliver(create.id).outcome == "sent"
    assert tickets.due_in(update.id) < 1
    assert tickets.deliverer.deliver(update.id).outcome == "sent"
    assert (sink.requests[-1].method, sink.requests[-1].path) == ("PATCH", "/tickets/T-9")
    done = tickets.row("u1", tickets.update)
    assert done.status == DeliveryStatus.SUCCESS and done.attempts == 1
    assert done.waits_on == create.id  # the row still says what it waited for


def test_in_one_batch_the_update_waits_when_its_create_is_retrying(
    tickets: Tickets, sink: RecordingSink
) -> None:
    sink.reply(Reply(503))
    report = tickets.runner.run([change("c1", "INC-1"), change("u1", "INC-1", "UPDATE")])
    assert (report.retrying, report.waiting, report.sent) == (1, 1, 0)
    create, update = tickets.row("c1", tickets.create), tickets.row("u1", tickets.update)
    assert update.status == DeliveryStatus.WAITING and update.waits_on == create.id
    assert len(sink.requests) == 1  # the UPDATE was never sent


def test_after_a_failed_create_the_update_goes_and_says_why_it_has_no_ticket(
    tickets: Tickets, sink: RecordingSink
) -> None:
    plain = tickets.event(sink, name="note", eventType="UPDATE", endPointURI="/notes")
    sink.reply(Reply(400, body="no such queue"))
    tickets.runner.run([change("c1", "INC-1")])
    create = tickets.row("c1", tickets.create)
    assert create.status == DeliveryStatus.FAILED
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    # The one that needs the captured id fails, naming the CREATE and its reason.
    update = tickets.row("u1", tickets.update)
    assert update.status == DeliveryStatus.FAILED
    assert "$extTicketId has no value" in update.status_message
    assert f"an earlier delivery of this ticket, {create.id}, failed" in update.status_message
    assert "HTTP 400" in update.status_message
    # The one that does not need it is sent.
    assert tickets.row("u1", plain).status == DeliveryStatus.SUCCESS


def test_an_event_that_opts_out_is_sent_at_once(tickets: Tickets, sink: RecordingSink) -> None:
    loose = tickets.event(
        sink, name="loose", eventType="UPDATE", endPointURI="/feed", ordering="NONE"
    )
    sink.respond_with(lambda req: Reply(503) if req.path == "/tickets" else Reply(200))
    tickets.runner.run([change("c1", "INC-1")])
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    assert tickets.row("u1", loose).status == DeliveryStatus.SUCCESS
    # The ordered UPDATE of the same ticket still waits.
    assert tickets.row("u1", tickets.update).status == DeliveryStatus.WAITING


def test_a_later_change_waits_while_an_earlier_one_is_still_unstored(
    tickets: Tickets, settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> None:
    """Two batches in two processes: the later one is stored first. Its UPDATE must not go
    before the CREATE, which the stream still holds."""
    stream = settings.stream_key
    redis_client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    first = redis_client.xadd(stream, {"message": change("c1", "INC-1")}).decode()
    second = redis_client.xadd(stream, {"message": change("u1", "INC-1", "UPDATE")}).decode()
    redis_client.xreadgroup(GROUP, "node", {stream: ">"})
    [(entry, raw)] = read_entries(redis_client, stream, [second])
    tickets.runner.run([raw], [entry])
    update = tickets.row("u1", tickets.update)
    assert update.status == DeliveryStatus.WAITING and update.waits_on is None
    assert "still being stored" in update.status_message
    assert tickets.due_in(update.id) <= RECHECK_UNSTORED + 0.5
    assert sink.requests == []
    # Its entry is acknowledged and gone: the deliveries are stored and leased.
    assert redis_client.xrange(stream, second, second) == []

    sink.reply(Reply.json({"result": {"id": "T-1"}}, status=201))
    [(entry, raw)] = read_entries(redis_client, stream, [first])
    tickets.runner.run([raw], [entry])
    assert tickets.row("c1", tickets.create).status == DeliveryStatus.SUCCESS
    assert tickets.due_in(update.id) < 1  # woken by the CREATE's success
    assert tickets.deliverer.deliver(update.id).outcome == "sent"
    assert [r.path for r in sink.requests] == ["/tickets", "/tickets/T-1"]


def test_a_waiting_delivery_rechecks_on_its_own_if_no_one_wakes_it(
    tickets: Tickets, sink: RecordingSink
) -> None:
    """A worker that died between the CREATE's outcome and the wake-up: the UPDATE's own
    recheck finds the CREATE done and goes (the schedule and the row survive restarts)."""
    sink.reply(Reply(503))
    tickets.runner.run([change("c1", "INC-1")])
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    create, update = tickets.row("c1", tickets.create), tickets.row("u1", tickets.update)
    # The CREATE succeeds behind the ordering's back (as if the wake-up was lost).
    sink.reply(Reply.json({"result": {"id": "T-5"}}, status=201))
    assert tickets.deliverer.deliver(create.id).outcome == "sent"
    tickets.schedule.add(update.id, time.time() + 600)
    # A fresh deliverer (a restarted worker), at the recheck:
    t = tickets
    again = Deliverer(t.settings, t.store, t.sender, t.client, t.schedule)
    assert again.deliver(update.id).outcome == "sent"
    assert sink.requests[-1].path == "/tickets/T-5"


def test_a_retrying_delivery_waits_for_an_earlier_one_replayed_meanwhile(
    tickets: Tickets, sink: RecordingSink
) -> None:
    """A replay keeps the order: the replayed CREATE goes before the UPDATE's next try."""
    sink.reply(Reply(400))
    tickets.runner.run([change("c1", "INC-1")])
    plain = tickets.event(sink, name="note", eventType="UPDATE", endPointURI="/notes")
    sink.reply(Reply(503))
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    note = tickets.row("u1", plain)
    assert note.status == DeliveryStatus.RETRYING
    create = tickets.row("c1", tickets.create)
    tickets.store.reset_for_replay(create.id)
    assert tickets.deliverer.deliver(note.id).outcome == "waiting"
    held = tickets.row("u1", plain)
    assert held.status == DeliveryStatus.WAITING and held.waits_on == create.id
    assert held.attempts == 1  # waiting spent no attempt
    sink.reply(Reply.json({"result": {"id": "T-2"}}, status=201))
    assert tickets.deliverer.deliver(create.id).outcome == "sent"
    assert tickets.due_in(note.id) < 1
    assert tickets.deliverer.deliver(note.id).outcome == "sent"
    assert [r.path for r in sink.requests][-2:] == ["/tickets", "/notes"]


def test_many_changes_of_one_ticket_in_a_batch_go_in_order(
    tickets: Tickets, sink: RecordingSink
) -> None:
    plain = tickets.event(sink, name="note", eventType="UPDATE", endPointURI="/notes")
    raws = [change("c0", "INC-1")] + [change(f"u{i}", "INC-1", "UPDATE") for i in range(1, 12)]
    sink.reply(Reply.json({"result": {"id": "T-3"}}, status=201))
    report = tickets.runner.run(raws)
    # One turn per change (its two UPDATE events together), up to a bound; the rest wait
    # and go through the retry path.
    assert report.sent == 1 + 2 * (MAX_TURNS - 1)
    assert report.waiting == 2 * 11 - 2 * (MAX_TURNS - 1)
    subjects = [r.json().get("subject") for r in sink.requests if r.path == "/notes"]
    assert subjects == [f"u{i}" for i in range(1, MAX_TURNS)]
    rows, _ = tickets.store.list_deliveries(TENANT, status="WAITING")
    assert all(d.waits_on is not None for d in rows)
    # Each waiting one goes once woken, in order.
    for d in sorted(rows, key=lambda d: (d.sequence or "", d.id)):
        assert tickets.deliverer.deliver(d.id).outcome == "sent"
    subjects = [r.json().get("subject") for r in sink.requests if r.path == "/notes"]
    assert subjects == [f"u{i}" for i in range(1, 12)]
    patches = [r.path for r in sink.requests if r.method == "PATCH"]
    assert patches == ["/tickets/T-3"] * 11
    assert tickets.row("u11", plain).status == DeliveryStatus.SUCCESS


def test_a_ticket_without_an_id_is_never_held(tickets: Tickets, sink: RecordingSink) -> None:
    raw = json.loads(change("c1", "x"))
    raw["data"] = {"subject": "no id"}
    sink.reply(Reply(503))
    tickets.runner.run([json.dumps(raw)])
    later = {**raw, "id": "c2"}
    report = tickets.runner.run([json.dumps(later)])
    assert report.waiting == 0 and report.retrying + report.sent == 1


def test_waiting_rows_are_listed_with_what_they_wait_on(
    tickets: Tickets, sink: RecordingSink
) -> None:
    sink.reply(Reply(503))
    tickets.runner.run([change("c1", "INC-1"), change("u1", "INC-1", "UPDATE")])
    rows, total = tickets.store.list_deliveries(TENANT, status="WAITING")
    assert total == 1 and rows[0].waits_on == tickets.row("c1", tickets.create).id
    assert rows[0].next_attempt_at is not None
    assert rows[0].next_attempt_at > datetime.now(UTC) + timedelta(seconds=30)


def test_a_bulk_replay_resets_every_row_before_it_sends_any(
    tickets: Tickets, sink: RecordingSink
) -> None:
    """Even handed newest first, and taken by a worker the instant each is queued, the
    replayed UPDATE waits for the replayed CREATE."""
    plain = tickets.event(sink, name="note", eventType="UPDATE", endPointURI="/notes")
    sink.respond_with(Reply(400))
    tickets.runner.run([change("c1", "INC-1")])
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    create, note = tickets.row("c1", tickets.create), tickets.row("u1", plain)
    assert (create.status, note.status) == (DeliveryStatus.FAILED, DeliveryStatus.FAILED)
    sink.respond_with(Reply.json({"result": {"id": "T-4"}}, status=201))
    outcomes: dict[str, str] = {}

    class AtOnce:
        """A dispatcher whose worker takes each delivery the moment it is queued."""

        def deliver(self, delivery_id: str) -> None:
            outcomes[delivery_id] = tickets.deliverer.deliver(delivery_id).outcome

        def ingest(self, raw: str) -> None:
            raise AssertionError("no message is replayed here")

    replay_deliveries(
        [note.id, create.id],
        settings=tickets.settings,
        store=tickets.store,
        client=tickets.client,
        dispatcher=AtOnce(),
    )
    assert outcomes == {note.id: "waiting", create.id: "sent"}
    assert tickets.due_in(note.id) < 1  # woken by the CREATE
    assert tickets.deliverer.deliver(note.id).outcome == "sent"
    assert [r.path for r in sink.requests][-2:] == ["/tickets", "/notes"]


def test_a_retry_of_a_disabled_integration_ends_failed_and_says_so(
    tickets: Tickets, sink: RecordingSink
) -> None:
    sink.reply(Reply(503))
    tickets.runner.run([change("c1", "INC-1")])
    create = tickets.row("c1", tickets.create)
    assert create.status == DeliveryStatus.RETRYING
    tickets.store.set_installed_state(TENANT, tickets.installed, InstalledState.DISABLED)
    assert tickets.deliverer.deliver(create.id).outcome == "failed"
    done = tickets.row("c1", tickets.create)
    assert done.status == DeliveryStatus.FAILED and done.error_class == "integration_disabled"
    assert "disabled" in done.status_message
    assert len(sink.requests) == 1  # nothing more was sent


def test_an_update_addressed_with_utils_ext_entity_id_waits_and_uses_the_captured_id(
    tickets: Tickets, sink: RecordingSink
) -> None:
    """OpsRamp's own way of writing it: the function reads the captured id, so the event
    is ordered behind the CREATE like one that reads $extTicketId."""
    opsramp = tickets.event(
        sink,
        name="opsramp update",
        eventType="UPDATE",
        endPointURI="/api/now/table/incident/"
        "$utils.extEntityId($incident.id, $installedAppId, $entity)",
        thirdPartyEventType="PUT",
        ordering="NONE",  # reading a captured value orders it regardless
    )
    sink.reply(Reply(503))
    tickets.runner.run([change("c1", "INC-1")])
    tickets.runner.run([change("u1", "INC-1", "UPDATE")])
    held = tickets.row("u1", opsramp)
    assert held.status == DeliveryStatus.WAITING
    sink.respond_with(Reply.json({"result": {"id": "SYS-1"}}, status=201))
    assert tickets.deliverer.deliver(tickets.row("c1", tickets.create).id).outcome == "sent"
    assert tickets.deliverer.deliver(held.id).outcome == "sent"
    put = [r for r in sink.requests if r.method == "PUT"]
    assert [r.path for r in put] == ["/api/now/table/incident/SYS-1"]
