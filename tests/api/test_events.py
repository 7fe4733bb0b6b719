"""The OpsRamp-compatible integration-event API against the seed's reference page."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from integrations.models import decode_payload
from integrations.store import Store
from tests.api.conftest import token_for
from tests.support.seed import sample_request, sample_requests, sample_responses

EVENTS = "/api/v2/tenants/client_9/integrations/installed/{}/event"
EVENT_ID = re.compile(r"^INTG-EVENT-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def sample_response_shape(i: int) -> dict[str, Any]:
    """The seed's sample response ``i``; its eventPayload is not valid JSON, so blank it."""
    text = re.sub(r'"eventPayload"\s*:\s*".*"\s*\n', '"eventPayload": ""\n', sample_responses()[i])
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def assert_shape(expected: Any, actual: Any, path: str = "") -> None:
    """Every key the seed's response shows is in ours, recursively."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing from response"
            assert_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected:
        assert isinstance(actual, list) and actual, f"{path}: expected a non-empty list"
        assert_shape(expected[0], actual[0], f"{path}[0]")


@pytest.mark.parametrize("i", range(3))
def test_seed_sample_is_accepted_verbatim_with_the_seed_response_shape(
    client: TestClient, auth: dict[str, str], installed: str, i: int
) -> None:
    raw = sample_requests()[i]
    r = client.post(
        EVENTS.format(installed), content=raw, headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert_shape(sample_response_shape(i), body)
    sample = sample_request(i)
    assert EVENT_ID.match(body["id"])
    assert body["name"] == sample["name"]
    assert body["entity"] == sample["entity"]
    assert body["headers"] == sample["headers"]
    assert body["eventPayload"] == decode_payload(sample["payload"])
    assert body["notifier"]["authType"] == "OAUTH2"
    assert body["notifier"]["userName"] == "testUser"
    # The seed echoes the URL the event posts to as notifier.baseURI.
    assert body["notifier"]["baseURI"] == "www.google.com/update"
    assert not secret_keys(body), "a secret field was echoed"


def secret_keys(doc: Any) -> list[str]:
    """Keys of secret fields anywhere in a JSON document."""
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in ("password", "apiSecret", "signingSecret", "tokenPayload", "access_token"):
                found.append(key)
            found += secret_keys(value)
    elif isinstance(doc, list):
        for item in doc:
            found += secret_keys(item)
    return found


def test_filter_criteria_get_ids_name_and_actions(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    r = client.post(EVENTS.format(installed), json=sample_request(1), headers=auth)
    assert r.status_code == 200, r.text
    fc = r.json()["filterCriteria"]
    assert isinstance(fc["id"], int)
    assert fc["name"] == "Create event with policy"
    assert fc["actions"] == []
    assert fc["matchType"] == "ANY"  # as requested (the seed's sample response shows ALL)
    ids = [rule["id"] for rule in fc["rules"]]
    assert all(isinstance(x, int) for x in ids) and len(set(ids)) == 2
    assert [rule["key"] for rule in fc["rules"]] == ["Subject", "Description"]


def test_created_event_can_be_read_listed_deactivated_and_deleted(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    created = client.post(EVENTS.format(installed), json=sample_request(0), headers=auth).json()
    one = f"{EVENTS.format(installed)}/{created['id']}"
    assert client.get(one, headers=auth).json()["id"] == created["id"]
    listed = client.get(EVENTS.format(installed) + "s", headers=auth).json()
    assert [e["id"] for e in listed["results"]] == [created["id"]]
    off = client.post(one + "/deactivate", headers=auth).json()
    assert off["active"] is False and off["disabledReason"]
    assert client.post(one + "/activate", headers=auth).json()["active"] is True
    assert client.delete(one, headers=auth).status_code == 200
    assert client.get(one, headers=auth).status_code == 404


def test_secrets_are_never_returned_and_not_stored_in_clear(
    client: TestClient, auth: dict[str, str], installed: str, store: Store
) -> None:
    body = sample_request(0)
    body["notifier"] = {
        "type": "REST_API",
        "baseURI": "https://tickets.example.invalid",
        "authType": "OAUTH2",
        "grantType": "PASSWORD",
        "userName": "svc",
        "password": "pw-SECRET-1",
        "apiKey": "client-key",
        "apiSecret": "api-SECRET-2",
        "accessTokenURL": "https://tickets.example.invalid/token",
    }
    # Issue 8: a credential header whose name says nothing of it is sealed too.
    body["headers"] = [
        {"key": "Content-Type", "value": "application/json"},
        {"key": "Ocp-Apim-Subscription-Key", "value": "sub-SECRET-3"},
    ]
    created = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert created.status_code == 200, created.text
    assert created.json()["headers"] == [
        {"key": "Content-Type", "value": "application/json"},
        {"key": "Ocp-Apim-Subscription-Key", "value": "***"},
    ]
    fetched = client.get(f"{EVENTS.format(installed)}/{created.json()['id']}", headers=auth)
    for text in (created.text, fetched.text):
        assert "SECRET" not in text
    with store.engine.connect() as conn:
        dump = "\n".join(
            str(row) for row in conn.exec_driver_sql("SELECT * FROM integration_events")
        )
    assert "SECRET" not in dump
    # ...yet the worker gets them back.
    spec = store.get_event("client_9", created.json()["id"]).spec  # type: ignore[union-attr]
    assert spec.notifier.apiSecret == "api-SECRET-2"  # type: ignore[union-attr]
    assert spec.headers[1].value == "sub-SECRET-3"


@pytest.mark.parametrize(
    ("spelling", "field", "expected"),
    [
        ("Resource", "entity", "RESOURCE"),
        ("STARTS_WITH", "operator", "Starts with"),
        ("starts with", "operator", "Starts with"),
        ("NOT_CONTAINS", "operator", "Not Contains"),
        ("REST API", "type", "REST_API"),
        ("rest_api", "type", "REST_API"),
        # Issue 10: OpsRamp writes the resource-owner grant so.
        ("PASSWORD_CREDENTIALS", "grantType", "PASSWORD"),
    ],
)
def test_enum_spellings_opsramp_clients_send_are_tolerated(
    client: TestClient,
    auth: dict[str, str],
    installed: str,
    spelling: str,
    field: str,
    expected: str,
) -> None:
    body = sample_request(1)
    if field == "entity":
        body["entity"] = spelling
        body["filterCriteria"]["rules"][0]["resourceType"] = spelling
        # A resource's template reads $resource: $incident would be a 400 (no such root).
        template = '{"name": "$resource.name"}'
        body["payload"] = base64.b64encode(template.encode()).decode()
    elif field == "operator":
        body["filterCriteria"]["rules"][0]["operator"] = spelling
    elif field == "grantType":
        body["notifier"]["grantType"] = spelling
    else:
        body["notifier"]["type"] = spelling
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 200, r.text
    out = r.json()
    got = {
        "entity": out["entity"],
        "operator": out["filterCriteria"]["rules"][0]["operator"],
        "type": out["notifier"]["type"],
        "grantType": out["notifier"].get("grantType"),
    }[field]
    assert got == expected


def test_access_token_uri_is_an_alias(
    client: TestClient, auth: dict[str, str], installed: str, store: Store
) -> None:
    body = sample_request(0)
    body["notifier"]["accessTokenURI"] = "https://auth.example.invalid/token"
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 200, r.text
    ev = store.get_event("client_9", r.json()["id"])
    assert ev is not None and ev.spec.notifier is not None
    assert ev.spec.notifier.accessTokenURL == "https://auth.example.invalid/token"


def _with(path: str, value: Any) -> dict[str, Any]:
    body = sample_request(1)
    target: Any = body
    parts = re.findall(r"[^.\[\]]+", path)
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is _DELETE:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("entity", "INCIDENTS", "entity", "unknown value"),
        ("eventType", "MODIFY", "eventType", "unknown value"),
        ("filterCriteria.rules[0].operator", "Like", "filterCriteria.rules[0].operator", "unknown"),
        ("filterCriteria.matchType", "SOME", "filterCriteria.matchType", "unknown"),
        ("filterCriteria.rules[1].operator", "Regex", None, None),  # valid: placeholder row
        ("payload", "not base64 !!", "payload", "base64"),
        ("notifier.authType", "KERBEROS", "notifier.authType", "unknown"),
        ("thirdPartyEventType", "FETCH", "thirdPartyEventType", "unknown"),
        ("notifier", _DELETE, "notifier", "required when useBaseNotifier is false"),
        ("name", _DELETE, "name", "required"),
        ("fitlerCriteria", {}, "fitlerCriteria", "unknown field"),
        ("notifier.baseURI", "http://169.254.169.254", "notifier.baseURI", "169.254.169.254"),
        ("endPointURI", "http://10.0.0.5/hook", "endPointURI", "10.0.0.5"),
        # Issue 8: a credential ending in a newline leaked through the HTTP library's error.
        (
            "headers",
            [{"key": "Ocp-Apim-Subscription-Key", "value": "abc123\n"}],
            "headers[0].value",
            "control character (U+000A) at 6",
        ),
        ("headers", [{"key": "X-A\r\nX-B", "value": "v"}], "headers[0].key", "control"),
        ("filterCriteria.name", "n" * 100_000, "filterCriteria.name", "at most 255 characters"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: TestClient,
    auth: dict[str, str],
    installed: str,
    path: str,
    value: Any,
    field: str | None,
    words: str | None,
) -> None:
    r = client.post(EVENTS.format(installed), json=_with(path, value), headers=auth)
    if field is None:
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 400
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert field in fields, body
    assert words is not None and words.lower() in fields[field].lower(), body


def test_invalid_regex_is_a_400_naming_the_rule(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    body = sample_request(1)
    body["filterCriteria"]["rules"][1].update(operator="Regex", value="(unclosed")
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "filterCriteria.rules[1].value"


def test_payload_that_is_not_valid_json_is_accepted(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    template = '{"subject":"$incident.subject" "missing":"comma"'
    body = sample_request(0)
    body["payload"] = base64.b64encode(template.encode()).decode()
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["eventPayload"] == template


def test_api_needs_a_token_of_the_same_tenant(
    client: TestClient, store: Store, auth: dict[str, str], installed: str
) -> None:
    url = f"/api/v2/tenants/client_9/integrations/installed/{installed}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    other = token_for(client, store, "client_10")
    assert client.get(url, headers=other).status_code == 403
    assert client.get(url, headers=auth).status_code == 200


def test_token_endpoint_refuses_a_wrong_secret(client: TestClient, store: Store) -> None:
    store.create_tenant("client_9")
    r = client.post(
        "/auth/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "client_9", "client_secret": "x"},
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_events_of_unknown_or_foreign_installed_integration_are_404(
    client: TestClient, store: Store, auth: dict[str, str], installed: str
) -> None:
    missing = f"INTG-{uuid.uuid4()}"
    r = client.post(EVENTS.format(missing), json=sample_request(0), headers=auth)
    assert r.status_code == 404
    other = token_for(client, store, "client_10")
    r = client.post(
        f"/api/v2/tenants/client_10/integrations/installed/{installed}/event",
        json=sample_request(0),
        headers=other,
    )
    assert r.status_code == 404


def test_install_returns_an_intg_id(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post(
        "/api/v2/tenants/client_9/integrations/install/CUSTOM",
        json={"displayName": "ServiceNow"},
        headers=auth,
    )
    assert r.status_code == 200
    assert re.match(r"^INTG-[0-9a-f-]{36}$", r.json()["id"])
    assert r.json()["displayName"] == "ServiceNow"
    got = client.get(
        f"/api/v2/tenants/client_9/integrations/installed/{r.json()['id']}", headers=auth
    )
    assert got.json()["id"] == r.json()["id"]
    bad = client.post("/api/v2/tenants/client_9/integrations/install/CUSTOM", json={}, headers=auth)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "displayName"


def test_base_notifier_is_stored_without_echoing_secrets(
    client: TestClient, auth: dict[str, str], installed: str, store: Store
) -> None:
    url = f"/api/v2/tenants/client_9/integrations/installed/{installed}/notifier"
    r = client.post(
        url,
        json={
            "type": "REST API",
            "baseURI": "tickets.example.invalid",
            "authType": "OAUTH2",
            "grantType": "CLIENT_CREDENTIALS",
            "apiKey": "id",
            "apiSecret": "SECRET-3",
            "accessTokenURI": "https://tickets.example.invalid/token",
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["notifier"] == {"baseURI": "tickets.example.invalid", "authType": "OAUTH2"}
    assert "SECRET" not in r.text
    inst = store.get_installed("client_9", installed)
    assert inst is not None and inst.base_notifier is not None
    assert inst.base_notifier.apiSecret == "SECRET-3"
    body = sample_request(0)
    body.pop("notifier")
    body["useBaseNotifier"] = True
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["useBaseNotifier"] is True
    bad = client.post(url, json={"baseURI": "http://127.0.0.1:1/x"}, headers=auth)
    assert bad.status_code == 200  # loopback is allowed in the test settings
    refused = client.post(url, json={"baseURI": "http://192.168.1.1/x"}, headers=auth)
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "baseURI"


def test_activity_of_an_unknown_id_is_404_and_listing_paginates(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = client.get("/api/v2/tenants/client_9/integrations/activity/DLV-nope", headers=auth)
    assert r.status_code == 404
    page = client.get("/api/v2/tenants/client_9/integrations/activity?pageSize=10", headers=auth)
    assert page.status_code == 200
    assert page.json() | {"results": []} == {
        "results": [],
        "totalResults": 0,
        "pageNo": 1,
        "pageSize": 10,
        "totalPages": 1,
        "nextPage": False,
        "descendingOrder": True,
        "duplicatesDropped": 0,
    }


def test_credential_headers_are_sealed_and_masked(
    client: TestClient, auth: dict[str, str], installed: str, store: Store
) -> None:
    body = sample_request(0)
    body["headers"].append({"key": "Authorization", "value": "Bearer sk_live_SECRET"})
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 200, r.text
    assert {"key": "Authorization", "value": "***"} in r.json()["headers"]
    assert {"key": "accept", "value": "application/json"} in r.json()["headers"]
    assert "SECRET" not in r.text
    with store.engine.connect() as conn:
        dump = "\n".join(
            str(row) for row in conn.exec_driver_sql("SELECT * FROM integration_events")
        )
    assert "SECRET" not in dump
    ev = store.get_event("client_9", r.json()["id"])
    assert ev is not None
    assert ("Authorization", "Bearer sk_live_SECRET") in [(h.key, h.value) for h in ev.spec.headers]


def test_credentials_in_urls_are_refused(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    body = sample_request(0)
    body["endPointURI"] = "https://user:pw@tickets.example.invalid/api"
    r = client.post(EVENTS.format(installed), json=body, headers=auth)
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {"field": "endPointURI", "message": "must not contain credentials; use authType BASIC"}
    ]


def test_malformed_json_names_the_body(
    client: TestClient, auth: dict[str, str], installed: str
) -> None:
    r = client.post(
        EVENTS.format(installed),
        content=b'{"name": "x",',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "body"
    assert r.json()["errors"][0]["message"].startswith("invalid JSON")
    page = client.get("/api/v2/tenants/client_9/integrations/activity?pageSize=0", headers=auth)
    assert page.status_code == 400 and page.json()["errors"][0]["field"] == "pageSize"


def test_replay_of_a_stranded_pending_delivery_is_scheduled_before_dispatch(
    client: TestClient, auth: dict[str, str], store: Store, settings: Any, redis_client: Any
) -> None:
    from worker.schedule import RetrySchedule

    store.create_delivery(
        delivery_id="DLV-stranded", tenant_id="client_9", message="{}", event_id="INTG-EVENT-x"
    )
    r = client.post(
        "/api/v2/tenants/client_9/integrations/activity/DLV-stranded/replay", headers=auth
    )
    assert r.status_code == 200 and r.json()["kind"] == "delivery"
    assert RetrySchedule(redis_client, settings.redis_prefix).due_at("DLV-stranded") is not None


def test_a_fixed_dead_letter_must_be_valid_and_the_callers_own(
    client: TestClient, auth: dict[str, str], store: Store
) -> None:
    store.create_delivery(
        delivery_id="DLQ-1", tenant_id="client_9", message="garbage", status="FAILED"
    )
    url = "/api/v2/tenants/client_9/integrations/activity/DLQ-1/replay"
    message = {
        "id": "m1",
        "tenantId": "victim",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "occurredAt": "2026-11-28T10:00:00Z",
        "data": {},
    }
    r = client.post(url, json={"message": message}, headers=auth)
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "message.tenantId"
    r = client.post(url, json={"message": {**message, "entity": "NOPE"}}, headers=auth)
    assert r.status_code == 400
    assert {e["field"] for e in r.json()["errors"]} == {"message.entity"}
