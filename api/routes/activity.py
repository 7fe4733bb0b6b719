"""The activity log: deliveries and dead letters, one or a page at a time, and replay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Services, ServicesDep, TenantDep
from api.paging import PageDep
from api.replay import replay, replay_all
from api.schemas import ActivityOut, ActivityPageOut
from api.search import parse_query
from api.views import activity_view
from integrations.errors import InvalidInput
from integrations.store import Delivery, DeliveryStatus
from integrations.store.deliveries import ACTIVITY_FIELDS, ACTIVITY_SORTS

TENANT = "/api/v2/tenants/{clientId}"

router = APIRouter(prefix=TENANT + "/integrations/activity", tags=["activity"])


class BulkReplayIn(BaseModel):
    """Body of the bulk replay: an event and a time range (and a status, FAILED by default)."""

    model_config = ConfigDict(extra="forbid")
    eventId: str | None = None
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    status: str = DeliveryStatus.FAILED


#: The latest time a query may name (epoch ms of 2100-01-01): past it is a 400, never a
#: database overflow.
MAX_EPOCH_MS = 4_102_444_800_000
_LATEST = datetime.fromtimestamp(MAX_EPOCH_MS / 1000, UTC)

EpochMs = Annotated[
    int | None,
    Query(ge=0, le=MAX_EPOCH_MS, description="epoch milliseconds, on the row's creation time"),
]


def _bounded(field: str, value: datetime | None) -> datetime | None:
    if value is not None:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value > _LATEST:
            raise InvalidInput(field, "must be before 2100-01-01")
    return value


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


@router.get("", response_model=ActivityPageOut)
def activity(
    clientId: TenantDep,
    svc: ServicesDep,
    page: PageDep,
    eventId: str | None = None,
    status: str | None = None,
    messageId: str | None = None,
    installedIntgId: str | None = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    startTime: EpochMs = None,
    endTime: EpochMs = None,
    intgMode: Annotated[
        str | None, Query(description="OUTBOUND (Herald has no inbound integrations)")
    ] = None,
    sortName: Annotated[str, Query(description="one of: " + ", ".join(ACTIVITY_SORTS))] = (
        "createdTime"
    ),
    queryString: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="`field:value` pairs joined by `+`; fields: " + ", ".join(ACTIVITY_FIELDS),
        ),
    ] = None,
) -> dict[str, Any]:
    """A page of the tenant's activity, newest first unless ``isDescendingOrder=false``.

    OpsRamp's parameters (``startTime``, ``endTime``, ``installedIntgId``, ``intgMode``,
    ``sortName``, ``queryString``) and Herald's own (``from``, ``to``, ``eventId``,
    ``status``, ``messageId``) may be mixed: every condition must hold.
    """
    if sortName not in ACTIVITY_SORTS:
        raise InvalidInput("sortName", f"must be one of: {', '.join(ACTIVITY_SORTS)}")
    mode = (intgMode or "OUTBOUND").upper()
    if mode not in ("OUTBOUND", "INBOUND"):
        raise InvalidInput("intgMode", "must be OUTBOUND or INBOUND")
    equal = dict(parse_query(queryString or "", tuple(ACTIVITY_FIELDS)))
    for name, value in (("installedIntgId", installedIntgId), ("status", status)):
        if value:
            equal[name] = value
    if "status" in equal:
        equal["status"] = equal["status"].upper()
    since = _later(_bounded("from", start), _from_ms(startTime))
    until = _earlier(_bounded("to", end), _from_ms(endTime))
    descending = page.descending_or(True)
    if mode == "INBOUND":  # every row of Herald's is outbound
        return page.body([], 0, descending) | {"duplicatesDropped": 0}
    rows, total = svc.store.list_deliveries(
        clientId,
        event_id=eventId,
        message_id=messageId,
        equal=equal,
        since=since,
        until=until,
        offset=page.offset,
        limit=page.size,
        sort=sortName,
        descending=descending,
    )
    body = page.body([activity_view(d) for d in rows], total, descending)
    body["duplicatesDropped"] = svc.store.duplicate_count(clientId)
    return body


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def _activity_or_404(svc: Services, client_id: str, activity_id: str) -> Delivery:
    d = svc.store.get_delivery(activity_id, client_id)
    if d is None:
        raise HTTPException(404, f"activity {activity_id} not found")
    return d


@router.get("/{activityId}", response_model=ActivityOut)
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
