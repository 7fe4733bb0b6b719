"""Integration events of an installed integration: create, list, read, delete, (de)activate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from api.deps import (
    ServicesDep,
    TenantDep,
    event_or_404,
    installed_or_404,
    live_installed_or_404,
)
from api.paging import PageDep
from api.schemas import EventOut, PageOut
from api.validation import destinations, validate_event
from api.views import event_view
from integrations.errors import InvalidInput
from integrations.models import IntegrationEventIn
from integrations.store.records import omitted_secrets

TENANT = "/api/v2/tenants/{clientId}"

#: The seed's three sample requests (``shared/seed/create-integration-event.txt``), as the
#: document's examples; a test keeps them equal to the seed.
SEED_EXAMPLES = {
    f"seed-{i + 1}": {"summary": sample["name"], "value": sample}
    for i, sample in enumerate(
        json.loads((Path(__file__).resolve().parents[1] / "seed_examples.json").read_text())
    )
}

router = APIRouter(
    prefix=TENANT + "/integrations/installed/{installedIntgId}", tags=["integration events"]
)


@router.post("/event", response_model=EventOut)
def create_event(
    clientId: TenantDep,
    svc: ServicesDep,
    installedIntgId: str,
    body: Annotated[IntegrationEventIn, Body(openapi_examples=SEED_EXAMPLES)],
) -> dict[str, Any]:
    """Create an event (the seed's ``Create integration event``)."""
    live_installed_or_404(svc, clientId, installedIntgId)
    validate_event(body, svc.settings, svc.store.captured_names(clientId, installedIntgId))
    return event_view(svc.store.create_event(clientId, installedIntgId, body))


@router.get("/events", response_model=PageOut[EventOut])
def list_events(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, page: PageDep
) -> dict[str, Any]:
    """The events of the installed integration, a page at a time (oldest first unless
    ``isDescendingOrder``)."""
    installed_or_404(svc, clientId, installedIntgId)
    events = svc.store.list_events(clientId, installedIntgId)
    descending = page.descending_or(False)
    if descending:
        events.reverse()
    chosen = events[page.offset : page.offset + page.size]
    return page.body([event_view(e) for e in chosen], len(events), descending)


@router.get("/event/{eventId}", response_model=EventOut)
def get_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, eventId: str
) -> dict[str, Any]:
    """One event, secrets masked."""
    return event_view(event_or_404(svc, clientId, installedIntgId, eventId))


@router.post("/event/{eventId}", response_model=EventOut)
@router.put("/event/{eventId}", response_model=EventOut)
def update_event(
    clientId: TenantDep,
    svc: ServicesDep,
    installedIntgId: str,
    eventId: str,
    body: IntegrationEventIn,
) -> dict[str, Any]:
    """Replace an event (OpsRamp's update); secrets it omits keep their stored values.

    Every worker compiles the new version at its next batch.
    """
    live_installed_or_404(svc, clientId, installedIntgId)
    current = event_or_404(svc, clientId, installedIntgId, eventId)
    validate_event(body, svc.settings, svc.store.captured_names(clientId, installedIntgId, eventId))
    kept = omitted_secrets(body, current.spec)
    if kept and destinations(body) != destinations(current.spec):
        # Kept secrets would follow the event to hosts they were never meant for: any
        # holder of the tenant's token could read them out at a host of their own.
        raise InvalidInput(
            kept[0],
            "the event's endpoints changed, so its stored secrets are not kept: send "
            f"{', '.join(kept)} again",
        )
    updated = svc.store.update_event(clientId, eventId, body)
    if updated is None:
        raise HTTPException(404, f"integration event {eventId} not found")
    return event_view(updated)


@router.delete("/event/{eventId}")
def delete_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, eventId: str
) -> dict[str, Any]:
    """Delete an event; its activity history stays."""
    event_or_404(svc, clientId, installedIntgId, eventId)
    svc.store.delete_event(clientId, eventId)
    return {"id": eventId, "deleted": True}


def _set_active(
    svc: ServicesDep, client_id: str, installed_id: str, event_id: str, active: bool
) -> dict[str, Any]:
    live_installed_or_404(svc, client_id, installed_id)
    event_or_404(svc, client_id, installed_id, event_id)
    if active:
        # A re-activated event starts with a clean record: old failures must not disable it
        # again at its first hiccup.
        svc.clear_failure_streak(event_id)
    reason = None if active else "deactivated through the API"
    ev = svc.store.set_event_active(event_id, active, reason)
    assert ev is not None
    return event_view(ev)


@router.post("/event/{eventId}/activate", name="activate_event", response_model=EventOut)
def activate_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, eventId: str
) -> dict[str, Any]:
    """Let the event match changes again."""
    return _set_active(svc, clientId, installedIntgId, eventId, True)


@router.post("/event/{eventId}/deactivate", name="deactivate_event", response_model=EventOut)
def deactivate_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, eventId: str
) -> dict[str, Any]:
    """Stop the event matching changes."""
    return _set_active(svc, clientId, installedIntgId, eventId, False)
