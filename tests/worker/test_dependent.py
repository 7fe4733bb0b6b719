"""OpsRamp's depEvent: the dependent call after a success, as its own delivery (real Redis,
SQLite store, loopback sink, the batch runner and the retry path's deliverer)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis

from integrations.config import Settings
from integrations.store import DeliveryStatus
from tests.support.sinks import RecordingSink, Reply
from tests.worker.test_ordering import Tickets, change
from worker.dependent import dependent_id

DEP = {
    "depEndPointURI": "/tickets/$extTicketId/notes",
    "thirdPartyEventType": "POST",
    "headers": [{"key": "X-Api-Key", "value": "dep-secret"}],
    "payload": base64.b64encode(
        b'{"ticket": "$extTicketId", "note": "$incident.subject"}'
    ).decode(),
}


@pytest.fixture
def tickets(
    settings: Settings, redis_client: redis.Redis, sink: RecordingSink
) -> Iterator[Tickets]:
    t = Tickets(settings, redis_client, sink)
    yield t
    t.close()


def _with_dep(tickets: Tickets, sink: RecordingSink) -> str:
    event = tickets.event(
        sink,
        name="create with note",
        responseHeaders=[{"key": "extTicketId", "value": "$result.id"}],
        depEvent=DEP,
    )
    return event.id


def test_the_dependent_call_follows_a_success_with_what_it_captured(
    tickets: Tickets, sink: RecordingSink
) -> None:
    event_id = _with_dep(tickets, sink)
    sink.respond_with(
        lambda req: (
            Reply.json({"result": {"id": "T-7"}}, status=201)
            if req.path == "/tickets"
            else Reply(
                503 if len([r for r in sink.requests if r.path.endswith("/notes")]) == 1 else 200
            )
        )
    )
    tickets.runner.run([change("c1", "INC-1", subject="disk full")])
    main = tickets.store.get_delivery(tickets.row("c1", tickets.create).id)
    rows, _ = tickets.store.list_deliveries("client_9", event_id=event_id)
    by_id = {d.id: d for d in rows}
    first = next(d for d in rows if not d.id.endswith("-DEP"))
    dep_id = dependent_id(first.id)
    assert first.status == DeliveryStatus.SUCCESS and dep_id in by_id
    assert by_id[dep_id].status == DeliveryStatus.PENDING
    assert tickets.due_in(dep_id) < 1  # dispatched at once
    assert main is not None

    # The dependent call fails: it retries on its own; the first call is never repeated.
    assert tickets.deliverer.deliver(dep_id).outcome == "retrying"
    dep = tickets.store.get_delivery(dep_id)
    assert dep is not None and dep.status == DeliveryStatus.RETRYING and dep.attempts == 1
    assert tickets.deliverer.deliver(dep_id).outcome == "sent"
    calls = [(r.method, r.path) for r in sink.requests]
    assert calls.count(("POST", "/tickets")) == 2  # the create event's and this one's
    notes = [r for r in sink.requests if r.path == "/tickets/T-7/notes"]
    assert len(notes) == 2 and notes[-1].json() == {"ticket": "T-7", "note": "disk full"}
    assert notes[-1].header("X-Api-Key") == "dep-secret"
    done = tickets.store.get_delivery(dep_id)
    assert done is not None and done.status == DeliveryStatus.SUCCESS and done.attempts == 2
    assert [a.http_status for a in done.attempt_log] == [503, 200]
    first_again = tickets.store.get_delivery(first.id)
    assert first_again is not None and first_again.attempts == 1


def test_the_tickets_next_change_waits_for_the_dependent_call(
    tickets: Tickets, sink: RecordingSink
) -> None:
    event_id = _with_dep(tickets, sink)
    sink.respond_with(
        lambda req: (
            Reply.json({"result": {"id": "T-8"}}, status=201)
            if req.path == "/tickets"
            else Reply(200)
        )
    )
    # In one batch: the UPDATE waits for the CREATE's dependent call, not just the CREATE.
    tickets.runner.run([change("c1", "INC-1"), change("u1", "INC-1", "UPDATE")])
    rows, _ = tickets.store.list_deliveries("client_9", event_id=event_id)
    first = next(d for d in rows if not d.id.endswith("-DEP"))
    update = tickets.row("u1", tickets.update)
    assert update.status == DeliveryStatus.WAITING
    assert update.waits_on == dependent_id(first.id)
    assert tickets.deliverer.deliver(dependent_id(first.id)).outcome == "sent"
    assert tickets.due_in(update.id) < 1  # woken by the dependent call's success
    assert tickets.deliverer.deliver(update.id).outcome == "sent"
    paths = [r.path for r in sink.requests]
    assert paths.index("/tickets/T-8/notes") < paths.index("/tickets/T-8")


def test_an_event_that_lost_its_dep_event_fails_the_pending_dependent_call(
    tickets: Tickets, sink: RecordingSink
) -> None:
    event_id = _with_dep(tickets, sink)
    sink.respond_with(Reply.json({"result": {"id": "T-9"}}, status=201))
    tickets.runner.run([change("c1", "INC-9")])
    rows, _ = tickets.store.list_deliveries("client_9", event_id=event_id)
    first = next(d for d in rows if not d.id.endswith("-DEP"))
    stored = tickets.store.load_event(event_id)
    assert stored is not None
    tickets.store.update_event(
        "client_9", event_id, stored.spec.model_copy(update={"depEvent": None})
    )
    assert tickets.deliverer.deliver(dependent_id(first.id)).outcome == "failed"
    gone = tickets.store.get_delivery(dependent_id(first.id))
    assert gone is not None and gone.error_class == "event_changed"
    assert json.loads(gone.message)["id"] == "c1"
