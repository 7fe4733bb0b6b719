"""Trying an event on a sample change, saved or not, over the live API, against a loopback
ticketing system."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import httpx

from integrations.store import Store
from tests.api.conftest import installed_for
from tests.support.sinks import RecordingSink, Reply

BASE = "/api/v2/tenants/client_9/integrations/installed"


def _event(sink: RecordingSink) -> dict[str, Any]:
    template = '{"subject": "$incident.subject", "impact": "$incident.impact"}'
    return {
        "name": "windows to ticketing",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "filterCriteria": {
            "matchType": "ALL",
            "rules": [
                {"key": "subject", "operator": "Contains", "value": "Windows"},
                {"key": "priority.name", "operator": "Equals", "value": "P1"},
            ],
        },
        "notifier": {
            "type": "REST_API",
            "baseURI": sink.url,
            "authType": "BASIC",
            "userName": "herald",
            "password": "s3cret",
        },
        "endPointURI": "/tickets",
        "headers": [
            {"key": "Content-Type", "value": "application/json"},
            {"key": "X-Api-Key", "value": "k-123"},
        ],
        "payload": base64.b64encode(template.encode()).decode(),
    }


def _change(**data: Any) -> dict[str, Any]:
    return {
        "id": "sample-1",
        "tenantId": "client_9",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "occurredAt": datetime.now(UTC).isoformat(),
        "data": {"id": "INC-1", **data},
    }


def test_a_saved_event_explains_itself_and_sends_only_when_asked(
    api: httpx.Client, store: Store, sink: RecordingSink
) -> None:
    auth, installed = installed_for(api, store)
    event = api.post(f"{BASE}/{installed}/event", json=_event(sink), headers=auth).json()
    url = f"{BASE}/{installed}/event/{event['id']}/test"
    change = _change(subject="Windows host down", priority={"name": "P2"})
    r = api.post(url, json={"change": change}, headers=auth)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["matches"] is False and answer["matchType"] == "ALL"
    assert [rule["matched"] for rule in answer["rules"]] == [True, False]
    request = answer["request"]
    assert (request["method"], request["url"]) == ("POST", f"{sink.url}/tickets")
    assert {"key": "X-Api-Key", "value": "***"} in request["headers"]
    assert request["body"] == '{"subject": "Windows host down", "impact": ""}'
    assert answer["missing"] == ["$incident.impact has no value"]
    assert answer["sent"] is None and sink.requests == []  # nothing sent unless asked
    assert "s3cret" not in r.text and "k-123" not in r.text

    sink.reply(Reply.json({"ticket": "T-1"}, status=201))
    change["data"]["priority"] = {"name": "P1"}
    sent = api.post(url, json={"change": change, "send": True}, headers=auth).json()
    assert sent["matches"] is True
    assert sent["sent"]["status"] == "SUCCESS" and sent["sent"]["httpStatus"] == 201
    assert sent["sent"]["response"] == {"ticket": "T-1"}
    [req] = sink.requests
    assert req.header("X-Api-Key") == "k-123"
    assert (req.header("Authorization") or "").startswith("Basic ")
    row = api.get(
        f"/api/v2/tenants/client_9/integrations/activity/{sent['sent']['activityId']}",
        headers=auth,
    ).json()
    assert row["status"] == "SUCCESS" and row["statusMessage"].startswith("test: ")
    assert row["attempts"] == 1

    # A failed test is recorded as one, and not retried.
    sink.reply(Reply(503))
    failed = api.post(url, json={"change": change, "send": True}, headers=auth).json()
    assert failed["sent"]["status"] == "FAILED" and failed["sent"]["httpStatus"] == 503
    row = api.get(
        f"/api/v2/tenants/client_9/integrations/activity/{failed['sent']['activityId']}",
        headers=auth,
    ).json()
    assert row["errorClass"] == "test" and row["nextAttemptTime"] is None

    # An edit tried before it is saved: the event as it would be, its secrets kept.
    edit = {**_event(sink), "endPointURI": "/tickets/v2"}
    edit["notifier"] = {**edit["notifier"], "password": None}
    tried = api.post(url, json={"change": change, "event": edit}, headers=auth).json()
    assert tried["request"]["url"] == f"{sink.url}/tickets/v2" and tried["sent"] is None
    kept = api.get(f"{BASE}/{installed}/event/{event['id']}", headers=auth).json()
    assert kept["endPointURI"] == "/tickets"  # nothing was saved


def test_an_unsaved_event_and_a_recent_message(
    api: httpx.Client, store: Store, sink: RecordingSink
) -> None:
    auth, installed = installed_for(api, store)
    body = {"event": _event(sink), "change": _change(subject="Windows", priority={"name": "P1"})}
    r = api.post(f"{BASE}/{installed}/event/test", json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["matches"] is True and r.json()["request"]["url"] == f"{sink.url}/tickets"
    # The event was not created.
    events = api.get(f"{BASE}/{installed}/events", headers=auth).json()
    assert events["totalResults"] == 0
    # A bad unsaved event is the same 400 as at creation.
    bad = {**body, "event": {**_event(sink), "payload": "not base64!"}}
    r = api.post(f"{BASE}/{installed}/event/test", json=bad, headers=auth)
    assert r.status_code == 400 and "payload" in r.text
    # Another tenant's change, or neither change nor message, is a 400.
    other = {**body, "change": {**body["change"], "tenantId": "client_x"}}
    r = api.post(f"{BASE}/{installed}/event/test", json=other, headers=auth)
    assert r.status_code == 400 and "change.tenantId" in r.text
    r = api.post(f"{BASE}/{installed}/event/test", json={"event": _event(sink)}, headers=auth)
    assert r.status_code == 400
    missing = {"event": _event(sink), "messageId": "never-seen"}
    r = api.post(f"{BASE}/{installed}/event/test", json=missing, headers=auth)
    assert r.status_code == 404
