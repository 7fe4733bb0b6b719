"""The FastAPI app: OpsRamp-compatible integration events, activity log and replay.

:func:`create_app` wires the services every route depends on (:mod:`api.deps`), the error
handlers, the request-limits middleware and one router per resource (:mod:`api.routes`).
"""

from __future__ import annotations

import redis
from fastapi import FastAPI

from api.deps import Services
from api.dispatch import CeleryDispatcher, Dispatcher
from api.errors import install_handlers
from api.limits import RequestLimits
from api.openapi import install_openapi
from api.routes import (
    activity,
    events,
    health,
    installed,
    metrics,
    placeholders,
    testing,
    token,
)
from api.throttle import LoginThrottle
from integrations.config import Settings
from integrations.store import Store


def create_app(
    settings: Settings, store: Store | None = None, dispatcher: Dispatcher | None = None
) -> FastAPI:
    """Build the API over ``store`` (opened from ``settings`` when not given)."""
    store = store or Store(settings.database_url, settings.secret_key)
    client = redis.Redis.from_url(settings.redis_url)
    app = FastAPI(
        title="Herald",
        version="0.1.0",
        description="Outbound integration events, compatible with OpsRamp's API.",
    )
    app.state.store = store
    app.state.services = Services(
        settings=settings,
        store=store,
        dispatch=dispatcher or CeleryDispatcher(settings),
        redis=client,
        throttle=LoginThrottle(client, settings.keys),
    )
    install_handlers(app)
    app.add_middleware(RequestLimits, store=store)

    for module in (health, metrics, token, installed, testing, events, activity, placeholders):
        app.include_router(module.router)
    install_openapi(app)
    return app
