"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from integrations.store import unavailable

router = APIRouter(tags=["health"])

#: Readiness answers within about this long, whatever is down.
PROBE_TIMEOUT = 1.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (nothing else is checked: a restart would not help a database
    that is down)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database or Redis does not answer"}})
def readyz(svc: ServicesDep) -> Any:
    """The database and Redis answer; otherwise a 503 naming which does not, and why."""
    problems: dict[str, str] = {}
    try:
        svc.store.ping()
    except Exception as exc:
        problems["database"] = unavailable(exc, svc.settings.database_url) or str(exc)
    probe = redis.Redis.from_url(
        svc.settings.redis_url,
        socket_connect_timeout=PROBE_TIMEOUT,
        socket_timeout=PROBE_TIMEOUT,
    )
    try:
        probe.ping()
    except redis.RedisError as exc:
        problems["redis"] = f"Redis at {svc.settings.redis_url} does not answer: {exc}"
    finally:
        probe.close()
    checks = {name: problems.get(name, "ok") for name in ("database", "redis")}
    if problems:
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return {"status": "ok", "checks": checks}
