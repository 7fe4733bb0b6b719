"""Installed integrations' whole lifecycle over the live API, as OpsRamp clients drive it:
install (unknown fields kept), search, update (omitted secrets kept), enable, disable,
uninstall; and what each state means for matching, checked on the worker's own fan-out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from integrations.store import Store
from tests.api.conftest import installed_for
from tests.support.seed import sample_request
from worker.events import EventCache
from worker.fanout import plan_batch

BASE = "/api/v2/tenants/client_9/integrations"


def _change(subject: str = "Windows host down") -> str:
    return json.dumps(
        {
            "id": f"m-{datetime.now(UTC).timestamp()}",
            "tenantId": "client_9",
            "entity": "INCIDENT",
            "eventType": "CREATE",
            "occurredAt": datetime.now(UTC).isoformat(),
            "data": {"id": "INC-1", "subject": subject},
        }
    )


def _matches(store: Store) -> int:
    """How many deliveries a change would create, as a worker's fan-out sees it now."""
    return len(plan_batch([_change()], EventCache(store)).first_attempts)


def test_install_keeps_what_opsramp_clients_send_and_never_echoes_a_secret(
    api: httpx.Client, store: Store
) -> None:
    auth, _ = installed_for(api, store)
    body = {
        "displayName": "ServiceNow",
        "category": "ITSM",
        "inboundConfig": {"authentication": {"authType": "OAUTH2", "apiSecret": "s3cret"}},
        "outboundConfig": {
            "deliveryType": "REALTIME",
            "baseNotifier": {
                "type": "REST_API",
                "baseURI": "https://snow.example.invalid",
                "authType": "BASIC",
                "userName": "herald",
                "password": "hunter2",
            },
        },
    }
    r = api.post(f"{BASE}/install/SERVICENOW", json=body, headers=auth)
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["category"] == "ITSM" and shown["state"] == "ENABLED"
    assert shown["outboundConfig"]["deliveryType"] == "REALTIME"
    assert shown["outboundConfig"]["baseNotifier"]["userName"] == "herald"
    assert shown["inboundConfig"]["authentication"]["apiSecret"] == "***"
    got = api.get(f"{BASE}/installed/{shown['id']}", headers=auth).json()
    assert got == shown
    assert "hunter2" not in json.dumps(got) and "s3cret" not in json.dumps(got)


def test_search_pages_filters_and_sorts(api: httpx.Client, store: Store) -> None:
    auth, first = installed_for(api, store)  # "Ticketing", CUSTOM
    for name, intg in [("Chat ops", "SLACK"), ("My Ticketing", "JIRA")]:
        assert api.post(f"{BASE}/install/{intg}", json={"displayName": name}, headers=auth)
    r = api.get(f"{BASE}/installed/search", params={"pageSize": 2}, headers=auth)
    assert r.status_code == 200, r.text
    page = r.json()
    assert (page["totalResults"], page["totalPages"], page["nextPage"]) == (3, 2, True)
    assert [i["displayName"] for i in page["results"]] == ["Ticketing", "Chat ops"]
    # `+` arrives as a space; a value may hold spaces.
    found = api.get(
        f"{BASE}/installed/search",
        params={"queryString": "displayName:my ticketing+intgId:JIRA"},
        headers=auth,
    ).json()
    assert [i["displayName"] for i in found["results"]] == ["My Ticketing"]
    by_name = api.get(
        f"{BASE}/installed/search",
        params={"sortName": "displayName", "isDescendingOrder": "true"},
        headers=auth,
    ).json()
    assert [i["displayName"] for i in by_name["results"]] == [
        "Ticketing",
        "My Ticketing",
        "Chat ops",
    ]
    assert by_name["descendingOrder"] is True
    for params, field in [
        ({"queryString": "colour:red"}, "queryString"),
        ({"queryString": "justaword"}, "queryString"),
        ({"sortName": "colour"}, "sortName"),
        ({"pageNo": 2**63}, "pageNo"),
    ]:
        bad = api.get(f"{BASE}/installed/search", params=params, headers=auth)
        assert bad.status_code == 400, (params, bad.text)
        assert field in bad.text
    # Another tenant's integrations are never found.
    other, _ = installed_for(api, store, "client_other")
    mine = api.get(
        "/api/v2/tenants/client_other/integrations/installed/search", headers=other
    ).json()
    assert mine["totalResults"] == 1 and first not in json.dumps(mine)


def test_update_renames_and_keeps_omitted_secrets_of_the_base_notifier(
    api: httpx.Client, store: Store
) -> None:
    auth, installed = installed_for(api, store)
    notifier = {
        "type": "REST_API",
        "baseURI": "https://tickets.example.invalid",
        "authType": "OAUTH2",
        "grantType": "CLIENT_CREDENTIALS",
        "accessTokenURI": "https://tickets.example.invalid/token",
        "apiKey": "client",
        "apiSecret": "the-secret",
    }
    assert api.post(f"{BASE}/installed/{installed}/notifier", json=notifier, headers=auth)
    update = {
        "displayName": "Ticketing (prod)",
        "outboundConfig": {"baseNotifier": {**notifier, "apiSecret": None}},
        "category": "ITSM",
    }
    r = api.post(f"{BASE}/installed/{installed}", json=update, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "Ticketing (prod)" and r.json()["category"] == "ITSM"
    kept = store.get_installed("client_9", installed)
    assert kept is not None and kept.base_notifier is not None
    assert kept.base_notifier.apiSecret == "the-secret"
    # Pointed elsewhere, it must bring its secret again.
    moved = {"baseNotifier": {**notifier, "apiSecret": None, "baseURI": "https://evil.invalid"}}
    r = api.post(f"{BASE}/installed/{installed}", json={"outboundConfig": moved}, headers=auth)
    assert r.status_code == 400
    assert "outboundConfig.baseNotifier.apiSecret" in r.text


def test_disable_enable_and_uninstall_decide_what_matches(api: httpx.Client, store: Store) -> None:
    auth, installed = installed_for(api, store)
    r = api.post(f"{BASE}/installed/{installed}/event", json=sample_request(0), headers=auth)
    assert r.status_code == 200, r.text
    event = r.json()["id"]
    assert _matches(store) == 1

    r = api.post(f"{BASE}/installed/{installed}/disable", headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "DISABLED"
    assert _matches(store) == 0
    r = api.post(f"{BASE}/installed/{installed}/enable", headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "ENABLED"
    assert _matches(store) == 1

    r = api.request(
        "DELETE",
        f"{BASE}/installed/{installed}",
        json={"uninstallReason": "moved to the new instance"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "UNINSTALLED"
    assert r.json()["uninstallReason"] == "moved to the new instance"
    assert _matches(store) == 0
    # Still readable, its events too; nothing new goes in, and it cannot come back.
    assert api.get(f"{BASE}/installed/{installed}", headers=auth).json()["state"] == "UNINSTALLED"
    assert api.get(f"{BASE}/installed/{installed}/event/{event}", headers=auth).status_code == 200
    again = api.post(f"{BASE}/installed/{installed}/event", json=sample_request(0), headers=auth)
    assert again.status_code == 409
    assert api.post(f"{BASE}/installed/{installed}/enable", headers=auth).status_code == 409
    # Uninstalled ones are found only when asked for.
    search = f"{BASE}/installed/search"
    assert api.get(search, headers=auth).json()["totalResults"] == 0
    asked = api.get(search, params={"queryString": "state:UNINSTALLED"}, headers=auth).json()
    assert [i["id"] for i in asked["results"]] == [installed]
    # Uninstalling twice answers the same.
    assert api.delete(f"{BASE}/installed/{installed}", headers=auth).json()["state"] == (
        "UNINSTALLED"
    )
