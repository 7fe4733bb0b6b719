"""Liveness and readiness over the live API: ready only when the database and Redis answer,
and a 503 naming which does not."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from api.app import create_app
from integrations.config import Settings
from integrations.store import Store
from tests.support.processes import ApiServer, run_herald
from worker.redis_server import free_port


def test_ready_when_both_answer(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    r = api.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_not_ready_names_what_does_not_answer(
    settings: Settings, store: Store, redis_client: Any
) -> None:
    no_redis = dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    no_db = dataclasses.replace(
        settings, database_url=f"postgresql://herald@127.0.0.1:{free_port()}/herald"
    )
    for broken, down in [(no_redis, "redis"), (no_db, "database")]:
        app_store = store if down == "redis" else Store(broken.database_url, broken.secret_key)
        with ApiServer(create_app(broken, app_store), free_port()) as server:
            r = httpx.get(f"{server.url}/readyz", timeout=10)
            assert r.json()["checks"]["redis" if down == "database" else "database"] == "ok"
            # Alive all the same: a restart would not bring the database back.
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "unavailable"
        assert r.json()["checks"][down] != "ok" and "127.0.0.1" in r.json()["checks"][down]


def test_version(settings: Settings) -> None:
    done = run_herald(settings, "--version")
    assert done.returncode == 0 and done.stdout.startswith("herald ")
