"""Issue 8, bounds: a request is authenticated before its body is read, and its body is
bounded before it is parsed (the real app on a real loopback server)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from api.limits import MAX_BODY
from integrations.store import Store

EVENTS = "/api/v2/tenants/client_9/integrations/installed/x/event"


def bearer(client: httpx.Client, store: Store, client_id: str = "client_9") -> dict[str, str]:
    secret = store.create_tenant(client_id)
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    r = client.post("/auth/oauth/token", data=data)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_no_token_is_a_401_before_the_body_is_parsed(api: httpx.Client) -> None:
    # Parsed first, this malformed body was a 400; now the missing token answers first.
    r = api.post(EVENTS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in r.json()["message"]
    r = api.post(EVENTS, content=b"{not json", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid or expired" in r.json()["message"]


def test_a_body_over_the_limit_is_a_413_from_its_length_alone(
    api: httpx.Client, store: Store
) -> None:
    headers = bearer(api, store)
    big = b"x" * (MAX_BODY + 1)
    r = api.post(EVENTS, content=big, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json() == {
        "code": 413,
        "message": f"request body over {MAX_BODY:,} bytes",
        "errors": [],
    }


def test_a_chunked_body_is_cut_off_at_the_limit(api: httpx.Client, store: Store) -> None:
    headers = bearer(api, store)

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = api.post(EVENTS, content=chunks(), headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text


def test_the_token_route_is_bounded_too_and_normal_requests_pass(
    api: httpx.Client, store: Store
) -> None:
    r = api.post("/auth/oauth/token", content=b"a=" + b"x" * (MAX_BODY + 1))
    assert r.status_code == 413
    headers = bearer(api, store)
    r = api.post(
        "/api/v2/tenants/client_9/integrations/install/CUSTOM",
        json={"displayName": "Ticketing"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    # Another tenant's path with a valid token is still the route's 403.
    r = api.get("/api/v2/tenants/client_x/integrations/installed/1", headers=headers)
    assert r.status_code == 403
    assert json.loads(r.text)["code"] == 403
