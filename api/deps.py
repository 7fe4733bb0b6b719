"""What every route depends on: the app's services, the authenticated tenant, typed lookups.

Routes take them with ``Depends`` instead of re-doing authentication by hand: the tenant of a
``/api/v2/tenants/{clientId}/...`` route is :func:`tenant`, which answers 401 without a valid
token (the request-limits middleware usually did already, before the body was read) and 403
for another tenant's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request

from api.auth import require_tenant
from api.dispatch import Dispatcher
from api.throttle import LoginThrottle
from integrations.config import Settings
from integrations.store import InstalledIntegration, Store, StoredEvent
from worker.health import BreakerPolicy, EndpointHealth


@dataclass(frozen=True)
class Services:
    """One app's configuration and the things it talks to."""

    settings: Settings
    store: Store
    dispatch: Dispatcher
    redis: redis.Redis
    throttle: LoginThrottle

    def clear_failure_streak(self, event_id: str) -> None:
        """Forget an event's failure streak (a re-activated event starts clean)."""
        health = EndpointHealth(self.redis, self.settings.redis_prefix, BreakerPolicy())
        health.event_succeeded(event_id)


def services(request: Request) -> Services:
    """The services of the app serving ``request``."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def tenant(request: Request, clientId: str, svc: ServicesDep) -> str:
    """The path's tenant, once the bearer token proved to be its own."""
    return require_tenant(request, svc.store, clientId)


TenantDep = Annotated[str, Depends(tenant)]


def installed_or_404(svc: Services, client_id: str, installed_id: str) -> InstalledIntegration:
    """The tenant's installed integration, or a 404 naming it."""
    inst = svc.store.get_installed(client_id, installed_id)
    if inst is None:
        raise HTTPException(404, f"installed integration {installed_id} not found")
    return inst


def live_installed_or_404(svc: Services, client_id: str, installed_id: str) -> InstalledIntegration:
    """:func:`installed_or_404`, and a 409 if it is uninstalled: nothing new goes into it."""
    inst = installed_or_404(svc, client_id, installed_id)
    if inst.state == "UNINSTALLED":
        raise HTTPException(409, f"installed integration {installed_id} is uninstalled")
    return inst


def event_or_404(svc: Services, client_id: str, installed_id: str, event_id: str) -> StoredEvent:
    """The event of the tenant's installed integration, or a 404 naming what is missing."""
    installed_or_404(svc, client_id, installed_id)
    ev = svc.store.get_event(client_id, event_id)
    if ev is None or ev.installed_id != installed_id:
        raise HTTPException(404, f"integration event {event_id} not found")
    return ev
