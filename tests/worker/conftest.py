"""Fixtures for tests that run the real pipeline: API server, worker processes, sinks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import ApiServer, WorkerProcess, run_herald
from worker.redis_server import free_port


@pytest.fixture
def api(settings: Settings, store: Store, redis_client: Any) -> Iterator[ApiServer]:
    with ApiServer(create_app(settings, store), free_port()) as server:
        yield server


@pytest.fixture
def worker(
    settings: Settings, tmp_path: Path, redis_client: Any, store: Store
) -> Iterator[WorkerProcess]:
    # ``store`` migrated the database: workers, like pool children in production, do not.
    with WorkerProcess(settings, tmp_path, concurrency=2) as w:
        yield w


def herald_cli(settings: Settings, *args: str, stdin: str | None = None) -> str:
    """Run the ``herald`` command as an operator would; its output, once it succeeded."""
    done = run_herald(settings, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Tenant:
    """An API client of one tenant, authenticated like OpsRamp's clients."""

    def __init__(self, api: ApiServer, settings: Settings, client_id: str) -> None:
        creds = json.loads(herald_cli(settings, "tenants", "create", client_id))
        assert creds["client_id"] == client_id
        self.client_id = client_id
        self.http = httpx.Client(base_url=api.url, timeout=10)
        r = self.http.post("/auth/oauth/token", data={"grant_type": "client_credentials", **creds})
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = self.http.post(
            f"/api/v2/tenants/{client_id}/integrations/install/CUSTOM",
            json={"displayName": "Ticketing"},
        )
        r.raise_for_status()
        self.installed = r.json()["id"]

    def create_event(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(
            f"/api/v2/tenants/{self.client_id}/integrations/installed/{self.installed}/event",
            json=body,
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def activity(self, **params: Any) -> list[dict[str, Any]]:
        r = self.http.get(f"/api/v2/tenants/{self.client_id}/integrations/activity", params=params)
        r.raise_for_status()
        rows: list[dict[str, Any]] = r.json()["results"]
        return rows


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def change(
    tenant: str,
    data: dict[str, Any],
    *,
    entity: str = "INCIDENT",
    event_type: str = "CREATE",
    message_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": message_id or f"msg-{time.monotonic_ns()}",
        "tenantId": tenant,
        "entity": entity,
        "eventType": event_type,
        "occurredAt": datetime.now(UTC).isoformat(),
        "data": data,
    }


def sink_event_body(sink_url: str, **overrides: Any) -> dict[str, Any]:
    """An INCIDENT/CREATE event posting ``{"subject": ...}`` to ``sink_url``/tickets."""
    body: dict[str, Any] = {
        "name": "to sink",
        "entity": "INCIDENT",
        "eventType": "CREATE",
        "notifier": {"type": "REST_API", "baseURI": sink_url, "authType": "NONE"},
        "endPointURI": "/tickets",
        "payload": base64.b64encode(b'{"subject":"$incident.subject"}').decode(),
    }
    body.update(overrides)
    return body
