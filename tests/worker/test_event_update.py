"""Issue 10: updating an event as OpsRamp's clients do (POST, and PUT), secrets kept when
omitted, and the new version picked up by a running worker without a restart."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from integrations.config import Settings
from integrations.store import Store
from tests.api.conftest import installed_for
from tests.support.processes import ApiServer, WorkerProcess, wait_for
from tests.support.sinks import RecordingSink
from tests.worker.conftest import change

EVENTS = "/api/v2/tenants/client_9/integrations/installed/{}/event"


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def event_body(sink_url: str, subject_word: str, **notifier: Any) -> dict[str, Any]:
    template = '{"subject": "$incident.subject", "v": "' + subject_word + '"}'
    return {
        "name": "tickets",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "filterCriteria": {
            "matchType": "ALL",
            "rules": [{"key": "subject", "operator": "Contains", "value": subject_word}],
        },
        "notifier": {"type": "REST_API", "baseURI": sink_url, "authType": "BASIC", **notifier},
        "endPointURI": "/api/tickets",
        "headers": [
            {"key": "Content-Type", "value": "application/json"},
            {"key": "X-Subscription", "value": "sub-key-1"},
        ],
        "payload": base64.b64encode(template.encode()).decode(),
    }


def test_an_update_replaces_the_event_keeps_omitted_secrets_and_reaches_the_worker(
    http: httpx.Client,
    store: Store,
    settings: Settings,
    sink: RecordingSink,
    worker: WorkerProcess,
    redis_client: Any,
) -> None:
    api = http
    auth, installed = installed_for(api, store)
    created = api.post(
        EVENTS.format(installed),
        json=event_body(sink.url, "disk", userName="herald", password="pw-1"),
        headers=auth,
    )
    assert created.status_code == 200, created.text
    event_id = created.json()["id"]

    def publish(mid: str, subject: str) -> None:
        body = change("client_9", {"id": mid, "subject": subject}, message_id=mid)
        redis_client.xadd(settings.stream_key, {"message": json.dumps(body)})

    publish("m1", "disk full")
    [first] = sink.wait_for(1, timeout=30)
    assert first.json() == {"subject": "disk full", "v": "disk"}

    # The update as a client builds it from what GET shows: no password, the secret header
    # as ***. PUT and POST are the same update.
    shown = api.get(f"{EVENTS.format(installed)}/{event_id}", headers=auth).json()
    assert {"key": "X-Subscription", "value": "***"} in shown["headers"]
    update = event_body(sink.url, "cpu", userName="herald")
    update["headers"][1]["value"] = "***"
    r = api.put(f"{EVENTS.format(installed)}/{event_id}", json=update, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == event_id
    r = api.post(f"{EVENTS.format(installed)}/{event_id}", json=update, headers=auth)
    assert r.status_code == 200, r.text

    # The running worker matches and renders the new version, no restart, within 5 s of the
    # update (it reads candidate versions per batch); the kept secrets still go out.
    publish("m2", "disk full again")  # matched only the old version
    publish("m3", "cpu high")
    arrived = wait_for(
        lambda: [q for q in sink.requests if q.json().get("v") == "cpu"], 5, what="new version"
    )
    assert arrived[0].json() == {"subject": "cpu high", "v": "cpu"}
    assert arrived[0].header("x-subscription") == "sub-key-1"
    basic = base64.b64encode(b"herald:pw-1").decode()
    assert arrived[0].header("authorization") == f"Basic {basic}"
    assert [q.json()["v"] for q in sink.requests] == ["disk", "cpu"]


def test_updating_an_unknown_event_is_a_404_and_a_bad_body_a_400(
    http: httpx.Client, store: Store
) -> None:
    api = http
    auth, installed = installed_for(api, store)
    body = event_body("http://127.0.0.1:9", "x")
    r = api.post(f"{EVENTS.format(installed)}/INTG-EVENT-nope", json=body, headers=auth)
    assert r.status_code == 404
    created = api.post(EVENTS.format(installed), json=body, headers=auth).json()
    bad = {**body, "entity": "INCIDENTS"}
    r = api.post(f"{EVENTS.format(installed)}/{created['id']}", json=bad, headers=auth)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "entity"


def test_stored_secrets_do_not_follow_an_event_to_a_new_host(
    http: httpx.Client, store: Store
) -> None:
    # Found in review: a PUT to another host that left the password out kept it, so any
    # holder of the tenant's token could read the secrets out at a host of their own.
    api = http
    auth, installed = installed_for(api, store)
    body = event_body("http://127.0.0.1:9", "x", userName="herald", password="pw-1")
    created = api.post(EVENTS.format(installed), json=body, headers=auth).json()
    moved = event_body("http://127.0.0.2:9", "x", userName="herald")
    moved["headers"][1]["value"] = "***"
    r = api.post(f"{EVENTS.format(installed)}/{created['id']}", json=moved, headers=auth)
    assert r.status_code == 400, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "notifier.password"
    assert "send notifier.password, headers[1].value again" in error["message"]
    stored = store.get_event("client_9", created["id"])
    assert stored is not None and stored.spec.notifier is not None
    assert stored.spec.notifier.baseURI == "http://127.0.0.1:9"  # unchanged
    # With the secrets sent again, the move is an ordinary update.
    moved = event_body("http://127.0.0.2:9", "x", userName="herald", password="pw-2")
    r = api.post(f"{EVENTS.format(installed)}/{created['id']}", json=moved, headers=auth)
    assert r.status_code == 200, r.text
