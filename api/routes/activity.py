"""The activity log: deliveries and dead letters, one or a page at a time, and replay."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Services, ServicesDep, TenantDep
from api.paging import PageDep
from api.replay import replay, replay_all
from api.views import activity_view
from integrations.store import Delivery, DeliveryStatus

TENANT = "/api/v2/tenants/{clientId}"

router = APIRouter(prefix=TENANT + "/integrations/activity", tags=["activity"])


class BulkReplayIn(BaseModel):
    """Body of the bulk replay: an event and a time range (and a status, FAILED by default)."""

    model_config = ConfigDict(extra="forbid")
    eventId: str | None = None
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    status: str = DeliveryStatus.FAILED


@router.get("")
def activity(
    clientId: TenantDep,
    svc: ServicesDep,
    page: PageDep,
    eventId: str | None = None,
    status: str | None = None,
    messageId: str | None = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """A page of the tenant's activity, newest first."""
    rows, total = svc.store.list_deliveries(
        clientId,
        event_id=eventId,
        status=status.upper() if status else None,
        message_id=messageId,
        since=start,
        until=end,
        offset=page.offset,
        limit=page.size,
    )
    # Newest first is the store's order; OpsRamp's ascending flag reverses the page.
    descending = page.descending_or(True)
    views = [activity_view(d) for d in rows]
    body = page.body(views if descending else views[::-1], total, descending)
    body["duplicatesDropped"] = svc.store.duplicate_count(clientId)
    return body


def _activity_or_404(svc: Services, client_id: str, activity_id: str) -> Delivery:
    d = svc.store.get_delivery(activity_id, client_id)
    if d is None:
        raise HTTPException(404, f"activity {activity_id} not found")
    return d


@router.get("/{activityId}")
def activity_one(clientId: TenantDep, svc: ServicesDep, activityId: str) -> dict[str, Any]:
    """One activity row, every attempt included."""
    return activity_view(_activity_or_404(svc, clientId, activityId))


@router.post("/{activityId}/replay")
def replay_one(
    clientId: TenantDep,
    svc: ServicesDep,
    activityId: str,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """Replay one row; a dead letter may come with a corrected ``message``."""
    fixed = None
    if body and "message" in body:
        message = body["message"]
        fixed = message if isinstance(message, str) else json.dumps(message)
    return replay(svc, clientId, _activity_or_404(svc, clientId, activityId), fixed)


@router.post("/replay")
def replay_bulk(clientId: TenantDep, svc: ServicesDep, body: BulkReplayIn) -> dict[str, Any]:
    """Replay every row of an event (or all) in a time range and status."""
    found: list[Delivery] = []
    page = 0
    while True:
        rows, _ = svc.store.list_deliveries(
            clientId,
            event_id=body.eventId,
            status=body.status.upper(),
            since=body.start,
            until=body.end,
            offset=page * 500,
            limit=500,
        )
        found.extend(rows)
        if len(rows) < 500:
            break
        page += 1
    replay_all(svc, clientId, found)
    return {"replayed": len(found), "ids": [d.id for d in found]}
