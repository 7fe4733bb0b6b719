"""Issue 10: paging as OpsRamp pages, bounds checked (the real app on a loopback server)."""

from __future__ import annotations

import base64

import httpx
import pytest

from integrations.store import Store
from tests.api.conftest import installed_for


def event(name: str) -> dict[str, object]:
    return {
        "name": name,
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "notifier": {"type": "REST_API", "baseURI": "http://127.0.0.1:9", "authType": "NONE"},
        "payload": base64.b64encode(b'{"a": 1}').decode(),
    }


def test_events_are_paged_as_opsramp_pages(api: httpx.Client, store: Store) -> None:
    auth, installed = installed_for(api, store)
    events = f"/api/v2/tenants/client_9/integrations/installed/{installed}/events"
    for i in range(5):
        r = api.post(events[: -len("s")], json=event(f"e{i}"), headers=auth)
        assert r.status_code == 200, r.text
    page = api.get(events, params={"pageNo": 2, "pageSize": 2}, headers=auth).json()
    assert [e["name"] for e in page["results"]] == ["e2", "e3"]  # oldest first by default
    assert {k: page[k] for k in page if k != "results"} == {
        "totalResults": 5,
        "pageNo": 2,
        "pageSize": 2,
        "totalPages": 3,
        "nextPage": True,
        "descendingOrder": False,
    }
    last = api.get(
        events, params={"pageNo": 3, "pageSize": 2, "isDescendingOrder": "true"}, headers=auth
    ).json()
    assert [e["name"] for e in last["results"]] == ["e0"] and last["nextPage"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"pageNo": 2**63}, "pageNo"),
        ({"pageNo": 0}, "pageNo"),
        ({"pageSize": 501}, "pageSize"),
        ({"isDescendingOrder": "sideways"}, "isDescendingOrder"),
    ],
)
def test_paging_bounds_are_a_400_naming_the_parameter(
    api: httpx.Client, store: Store, params: dict[str, object], field: str
) -> None:
    auth, _ = installed_for(api, store)
    r = api.get("/api/v2/tenants/client_9/integrations/activity", params=params, headers=auth)
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_activity_pages_say_their_order(api: httpx.Client, store: Store) -> None:
    auth, _ = installed_for(api, store)
    r = api.get("/api/v2/tenants/client_9/integrations/activity", headers=auth).json()
    assert r["descendingOrder"] is True and r["totalPages"] == 1 and r["results"] == []
