"""Per-ticket ordering through real parts at every hop: the API, ``herald publish``, the
Redis stream, a real ``celery worker`` with two pool processes, and a loopback ticketing
system that is busy when the CREATE arrives."""

from __future__ import annotations

import json

from integrations.config import Settings
from tests.support.processes import ApiServer, WorkerProcess, wait_for
from tests.support.sinks import RecordedRequest, RecordingSink, Reply
from tests.worker.conftest import Tenant, change, herald_cli, sink_event_body


def test_the_update_waits_for_the_retrying_create_and_addresses_the_ticket_it_opened(
    settings: Settings, api: ApiServer, sink: RecordingSink, worker: WorkerProcess
) -> None:
    tenant = Tenant(api, settings, "client_9")
    create = tenant.create_event(
        sink_event_body(sink.url, responseHeaders=[{"key": "extTicketId", "value": "$result.id"}])
    )
    update = tenant.create_event(
        sink_event_body(
            sink.url,
            name="update",
            eventType="UPDATE",
            endPointURI="/tickets/$extTicketId",
            thirdPartyEventType="PATCH",
        )
    )
    # Busy at first, asking for a 3 s pause: the CREATE retries while the UPDATE arrives.
    busy = [True]

    def answer(request: RecordedRequest) -> Reply:
        if request.method == "POST" and request.json().get("subject") == "disk" and busy:
            busy.clear()
            return Reply(503, [("Retry-After", "3")], "busy")
        return Reply.json({"result": {"id": "T-1"}}, status=201)

    sink.respond_with(answer)
    messages = [
        change("client_9", {"id": "INC-1", "subject": "disk"}, message_id="c1"),
        change(
            "client_9", {"id": "INC-1", "subject": "worse"}, event_type="UPDATE", message_id="u1"
        ),
        change("client_9", {"id": "INC-2", "subject": "other"}, message_id="c2"),
    ]
    herald_cli(settings, "publish", stdin=json.dumps(messages))

    def row(event: dict[str, object], message: str) -> dict[str, object] | None:
        rows = tenant.activity(eventId=event["id"], messageId=message)
        return rows[0] if rows else None

    first = wait_for(lambda: row(create, "c1"), 15, what="the CREATE's row")
    # The UPDATE waits: first, if its batch was stored before the CREATE's, for that
    # change to be stored (waitsOn empty, rechecked in a second), then for the CREATE.
    waiting = wait_for(
        lambda: (r := row(update, "u1")) and r["status"] == "WAITING" and r["waitsOn"] and r,
        15,
        interval=0.05,
        what="the UPDATE to wait for the CREATE",
    )
    assert waiting["waitsOn"] == first["id"] and waiting["attempts"] == 0
    # The unrelated ticket did not wait.
    assert wait_for(lambda: (r := row(create, "c2")) and r["status"] == "SUCCESS", 10)

    done = wait_for(
        lambda: (r := row(update, "u1")) and r["status"] == "SUCCESS" and r,
        30,
        what="the UPDATE to be delivered",
    )
    assert done["attempts"] == 1 and done["waitsOn"] == first["id"]
    ticket = [(r.method, r.path) for r in sink.requests if r.json().get("subject") != "other"]
    assert ticket == [("POST", "/tickets"), ("POST", "/tickets"), ("PATCH", "/tickets/T-1")]
