"""The placeholder catalogue of each entity (OpsRamp's ``Get Integration Event Placeholders``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import TenantDep
from api.schemas import PlaceholdersOut
from integrations.enums import Entity
from integrations.errors import InvalidInput
from integrations.placeholders import placeholders

router = APIRouter(prefix="/api/v2/tenants/{clientId}/integrations/events", tags=["placeholders"])


@router.get("/placeHolders/{entityType}", response_model=PlaceholdersOut)
def list_placeholders(clientId: TenantDep, entityType: str) -> dict[str, Any]:
    """``results[{name, value, description}]``: what a template can read about the entity."""
    try:
        entity = Entity.parse(entityType)
    except ValueError as exc:
        raise InvalidInput("entityType", str(exc)) from None
    found = [
        {"name": p.name, "value": p.value, "description": p.description}
        for p in placeholders(entity)
    ]
    return {"entityType": entity.value, "results": found, "totalResults": len(found)}
