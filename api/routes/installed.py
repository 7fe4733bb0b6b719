"""Installed integrations: install, read, and the base notifier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ServicesDep, TenantDep, installed_or_404
from api.validation import check_urls
from api.views import installed_view
from integrations.models import Notifier

TENANT = "/api/v2/tenants/{clientId}"

router = APIRouter(prefix=TENANT + "/integrations", tags=["installed integrations"])


class InstallIn(BaseModel):
    """Body of ``POST .../integrations/install/{intgId}``."""

    model_config = ConfigDict(extra="allow")
    displayName: str = Field(min_length=1, max_length=255)


@router.post("/install/{intgId}")
def install(clientId: TenantDep, svc: ServicesDep, intgId: str, body: InstallIn) -> dict[str, Any]:
    """Install integration ``intgId`` for the tenant."""
    return installed_view(svc.store.install(clientId, intgId, body.displayName))


@router.get("/installed/{installedIntgId}")
def get_installed(clientId: TenantDep, svc: ServicesDep, installedIntgId: str) -> dict[str, Any]:
    """One installed integration."""
    return installed_view(installed_or_404(svc, clientId, installedIntgId))


@router.post("/installed/{installedIntgId}/notifier")
def set_base_notifier(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, body: Notifier
) -> dict[str, Any]:
    """Set the base notifier that events with ``useBaseNotifier`` send through."""
    installed_or_404(svc, clientId, installedIntgId)
    check_urls(
        {"baseURI": body.baseURI, "accessTokenURL": body.accessTokenURL, "tokenURL": body.tokenURL},
        svc.settings,
    )
    inst = svc.store.set_base_notifier(clientId, installedIntgId, body)
    assert inst is not None
    return installed_view(inst)
