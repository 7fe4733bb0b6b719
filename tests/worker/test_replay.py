"""Dead letters and replay through the API, with a real worker process doing the work."""

from __future__ import annotations

import json

from integrations.config import Settings
from tests.support.processes import ApiServer, WorkerProcess, wait_for
from tests.support.sinks import RecordingSink, Reply
from tests.worker.conftest import Tenant, b64, change, herald_cli


def event_for(sink: RecordingSink) -> dict[str, object]:
    return {
        "name": "replayable",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "notifier": {"type": "REST_API", "baseURI": sink.url, "authType": "NONE"},
        "endPointURI": "/in",
        "payload": b64('{"subject":"$incident.subject"}'),
    }


def test_failed_deliveries_replay_one_and_in_bulk(
    settings: Settings, api: ApiServer, sink: RecordingSink, worker: WorkerProcess
) -> None:
    tenant = Tenant(api, settings, "client_9")
    event = tenant.create_event(event_for(sink))
    sink.respond_with(Reply(status=400, body="bad request: queue closed"))
    herald_cli(
        settings,
        "publish",
        stdin=json.dumps(
            [change("client_9", {"subject": f"s{i}"}, message_id=f"m{i}") for i in range(3)]
        ),
    )
    failed = wait_for(
        lambda: (rows := tenant.activity(status="FAILED")) and len(rows) == 3 and rows,
        30,
        what="three FAILED rows",
    )
    assert all("queue closed" in r["resPayload"] for r in failed)
    assert all(r["attemptLog"][0]["httpStatus"] == 400 for r in failed)

    sink.respond_with(Reply.json({"ok": True}))
    one = failed[0]["id"]
    r = tenant.http.post(f"/api/v2/tenants/client_9/integrations/activity/{one}/replay")
    assert r.status_code == 200 and r.json()["kind"] == "delivery"
    wait_for(
        lambda: (
            tenant.http.get(f"/api/v2/tenants/client_9/integrations/activity/{one}").json()[
                "status"
            ]
            == "SUCCESS"
        ),
        30,
        what="the replayed delivery",
    )
    row = tenant.http.get(f"/api/v2/tenants/client_9/integrations/activity/{one}").json()
    assert [a["outcome"] for a in row["attemptLog"]] == ["permanent", "success"]

    r = tenant.http.post(
        "/api/v2/tenants/client_9/integrations/activity/replay",
        json={"eventId": event["id"], "from": "2000-01-01T00:00:00Z"},
    )
    assert r.status_code == 200 and r.json()["replayed"] == 2
    wait_for(lambda: len(tenant.activity(status="SUCCESS")) == 3, 30, what="bulk replay")
    ok = [req for req in sink.requests if req.path == "/in"]
    assert sorted(req.json()["subject"] for req in ok[-3:]) == ["s0", "s1", "s2"]


def test_a_malformed_message_is_replayed_after_a_fix(
    settings: Settings, api: ApiServer, sink: RecordingSink, worker: WorkerProcess
) -> None:
    tenant = Tenant(api, settings, "client_9")
    tenant.create_event(event_for(sink))
    bad = change("client_9", {"subject": "fixed later"}, message_id="m-bad")
    bad["entity"] = "INCIDNET"
    herald_cli(settings, "publish", stdin=json.dumps(bad))
    [dead] = wait_for(lambda: tenant.activity(status="FAILED"), 30, what="the dead letter")
    assert dead["errorClass"] == "malformed_message"
    assert "entity" in dead["statusMessage"]

    bad["entity"] = "INCIDENT"
    r = tenant.http.post(
        f"/api/v2/tenants/client_9/integrations/activity/{dead['id']}/replay",
        json={"message": bad},
    )
    assert r.status_code == 200 and r.json()["kind"] == "message"
    [req] = sink.wait_for(1, timeout=30)
    assert req.json() == {"subject": "fixed later"}
