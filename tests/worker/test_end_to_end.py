"""The walking skeleton, end to end, with real parts at every hop.

API (uvicorn on loopback) -> store; ``herald publish`` -> Redis stream -> a real
``celery worker`` process -> matching, rendering -> a real HTTP sink with Basic auth ->
activity log read back through the API.
"""

from __future__ import annotations

import base64
import json
import time

from integrations.config import Settings
from tests.support.processes import ApiServer, WorkerProcess, wait_for
from tests.support.seed import sample_request
from tests.support.sinks import RecordingSink
from tests.worker.conftest import Tenant, b64, change, herald_cli

TEMPLATE = (
    '{"subject":"$incident.subject","priority":"$incident.priority.name",'
    '"impact":"$incident.impact"}'
)


def windows_event(sink: RecordingSink) -> dict[str, object]:
    return {
        "name": "Windows incidents to ticketing",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "filterCriteria": {
            "matchType": "ANY",
            "rules": [
                {
                    "key": "Subject",
                    "operator": "Contains",
                    "value": "Windows",
                    "resourceType": "INCIDENT",
                }
            ],
        },
        "notifier": {
            "type": "REST_API",
            "baseURI": sink.url,
            "authType": "BASIC",
            "userName": "herald",
            "password": "s3cret",
        },
        "endPointURI": "/api/tickets",
        "headers": [
            {"key": "Content-Type", "value": "application/json"},
            {"key": "X-Source", "value": "herald"},
        ],
        "thirdPartyEventType": "POST",
        "payload": b64(TEMPLATE),
    }


def test_configure_publish_deliver_and_see_the_activity(
    settings: Settings, api: ApiServer, sink: RecordingSink, worker: WorkerProcess
) -> None:
    t0 = time.monotonic()
    tenant = Tenant(api, settings, "client_9")
    event = tenant.create_event(windows_event(sink))
    # The seed's samples live in a tenant that never receives changes: their endpoints
    # (www.google.com) are data, never targets.
    idle = Tenant(api, settings, "client_idle")
    for i in range(3):
        idle.create_event(sample_request(i))

    subject = 'Windows "C:\\" drive full\nsecond line'
    messages = [
        change(
            "client_9",
            {"id": "INC-1", "subject": subject, "priority": {"name": "P1"}},
            message_id="m-match",
        ),
        change("client_9", {"id": "INC-2", "subject": "Linux disk full"}, message_id="m-nomatch"),
        change(
            "client_9",
            {"id": "INC-3", "subject": "Windows"},
            event_type="UPDATE",
            message_id="m-update",
        ),
    ]
    herald_cli(settings, "publish", stdin=json.dumps(messages))
    herald_cli(settings, "publish", stdin='{"tenantId": "client_9", "entity": "INCIDENTZ"}')

    [req] = sink.wait_for(1, timeout=30)
    delivered = time.monotonic() - t0
    assert req.method == "POST"
    assert req.path == "/api/tickets"
    assert req.header("authorization") == "Basic " + base64.b64encode(b"herald:s3cret").decode()
    assert req.header("x-source") == "herald"
    assert req.header("content-type") == "application/json"
    assert req.json() == {"subject": subject, "priority": "P1", "impact": ""}
    assert (
        req.header(
            "idempotency-key",
        )
        is not None
    )

    rows = wait_for(
        lambda: [r for r in tenant.activity() if r["status"] == "SUCCESS"],
        15,
        what="the SUCCESS row",
    )
    [row] = rows
    assert row["intgMode"] == "OUTBOUND"
    assert row["eventId"] == event["id"]
    assert row["messageId"] == "m-match"
    assert row["requestUrl"] == f"{sink.url}/api/tickets"
    assert json.loads(row["reqPayload"])["subject"] == subject
    assert json.loads(row["resPayload"]) == {"ok": True}
    assert row["httpStatus"] == 200
    assert row["processedTime"]
    assert row["warnings"] == ["$incident.impact has no value"]
    assert row["attemptLog"][0]["outcome"] == "success"
    assert req.header("idempotency-key") == row["id"]

    # The malformed message is kept, with a reason naming the bad fields, for an operator.
    dead = wait_for(
        lambda: [r for r in tenant.activity(status="FAILED")], 15, what="the dead letter"
    )
    assert dead[0]["errorClass"] == "malformed_message"
    assert "entity" in dead[0]["statusMessage"] and "id" in dead[0]["statusMessage"]
    assert "INCIDENTZ" in dead[0]["message"]
    listed = herald_cli(settings, "dead-letters")
    assert dead[0]["id"] in listed

    # Nothing else went out: no match, wrong event type, the idle tenant's seed events.
    time.sleep(1.0)
    assert sink.count == 1
    # The node logs at INFO: its own task lines, but not httpx's line per request.
    log = worker.log()
    assert "herald.ingest_batch" in log
    assert "HTTP Request:" not in log
    print(f"\nend-to-end: first delivery {delivered:.2f}s after start")
