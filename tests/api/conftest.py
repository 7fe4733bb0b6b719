"""API fixtures: the real app over a real store, with a tenant and its bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import ApiServer
from worker.redis_server import free_port


@pytest.fixture
def api(settings: Settings, store: Store, redis_client: Any) -> Iterator[httpx.Client]:
    """The real app on a real loopback server, and a client of it."""
    server = ApiServer(create_app(settings, store), free_port())
    with server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def client(settings: Settings, store: Store, redis_client: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store)) as c:
        yield c


def token_for(client: TestClient, store: Store, client_id: str) -> dict[str, str]:
    """Create tenant ``client_id`` and return Authorization headers with its bearer token."""
    secret = store.create_tenant(client_id)
    r = client.post(
        "/auth/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def auth(client: TestClient, store: Store) -> dict[str, str]:
    return token_for(client, store, "client_9")


@pytest.fixture
def installed(client: TestClient, auth: dict[str, str]) -> str:
    r = client.post(
        "/api/v2/tenants/client_9/integrations/install/CUSTOM",
        json={"displayName": "Ticketing"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def login(api: httpx.Client, client_id: str, secret: str) -> httpx.Response:
    """A token request, as an OpsRamp client sends it, to a live API."""
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return api.post("/auth/oauth/token", data=data)


def installed_for(
    api: httpx.Client, store: Store, client_id: str = "client_9"
) -> tuple[dict[str, str], str]:
    """A new tenant's bearer-token headers and an integration installed for it, on a live API."""
    secret = store.create_tenant(client_id)
    auth = {"Authorization": f"Bearer {login(api, client_id, secret).json()['access_token']}"}
    r = api.post(
        f"/api/v2/tenants/{client_id}/integrations/install/CUSTOM",
        json={"displayName": "Ticketing"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    return auth, str(r.json()["id"])
