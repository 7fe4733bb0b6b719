"""Installed integrations: install, read, search, update, enable, disable, uninstall, and
the base notifier."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Services, ServicesDep, TenantDep, installed_or_404, live_installed_or_404
from api.paging import PageDep
from api.schemas import InstalledOut, PageOut
from api.search import parse_query
from api.validation import check_urls, notifier_destinations
from api.views import installed_view
from integrations.errors import InvalidInput
from integrations.models import Notifier, mask_secrets
from integrations.store import InstalledIntegration, InstalledState
from integrations.store.installed import SORTS
from integrations.store.records import notifier_omissions

TENANT = "/api/v2/tenants/{clientId}"

router = APIRouter(prefix=TENANT + "/integrations", tags=["installed integrations"])


class OutboundConfigIn(BaseModel):
    """``outboundConfig`` as OpsRamp clients send it; Herald reads ``baseNotifier`` and
    keeps the rest."""

    model_config = ConfigDict(extra="allow")
    baseNotifier: Notifier | None = None


class InstallIn(BaseModel):
    """Body of ``POST .../integrations/install/{intgId}``: OpsRamp's fields Herald has no
    use for (``category``, ``inboundConfig``...) are accepted and kept."""

    model_config = ConfigDict(extra="allow")
    displayName: str = Field(min_length=1, max_length=255)
    outboundConfig: OutboundConfigIn | None = None


class InstalledUpdateIn(BaseModel):
    """Body of ``POST .../integrations/installed/{id}``: what it carries changes; an
    omitted base-notifier secret keeps its stored value."""

    model_config = ConfigDict(extra="allow")
    displayName: str | None = Field(default=None, min_length=1, max_length=255)
    outboundConfig: OutboundConfigIn | None = None


class UninstallIn(BaseModel):
    """Body of ``DELETE .../integrations/installed/{id}`` (optional)."""

    model_config = ConfigDict(extra="forbid")
    uninstallReason: str | None = Field(default=None, max_length=2000)


def _kept(body: BaseModel) -> dict[str, Any]:
    """The fields of ``body`` Herald keeps without using."""
    kept = dict(body.model_extra or {})
    outbound = getattr(body, "outboundConfig", None)
    if outbound is not None and outbound.model_extra:
        kept["outboundConfig"] = dict(outbound.model_extra)
    return kept


def _set_notifier(
    svc: Services,
    client_id: str,
    installed: InstalledIntegration,
    notifier: Notifier,
    field: str,
    *,
    keep_secrets: bool = False,
) -> InstalledIntegration:
    """Check and store a base notifier. ``keep_secrets`` (an update): omitted secrets keep
    their stored values, unless the notifier now points elsewhere (the secrets would follow
    it to a host of the caller's choosing)."""

    def path(name: str) -> str:
        return f"{field}.{name}" if field else name

    check_urls(
        {
            path("baseURI"): notifier.baseURI,
            path("accessTokenURL"): notifier.accessTokenURL,
            path("tokenURL"): notifier.tokenURL,
        },
        svc.settings,
    )
    kept = notifier_omissions(notifier, installed.base_notifier) if keep_secrets else {}
    if kept:
        assert installed.base_notifier is not None
        if notifier_destinations(notifier) != notifier_destinations(installed.base_notifier):
            names = ", ".join(path(k) for k in kept)
            raise InvalidInput(
                path(next(iter(kept))),
                f"the notifier's endpoints changed, so its stored secrets are not kept: send "
                f"{names} again",
            )
        notifier = notifier.model_copy(update=kept)
    updated = svc.store.set_base_notifier(client_id, installed.id, notifier)
    assert updated is not None
    return updated


@router.post("/install/{intgId}", response_model=InstalledOut)
def install(clientId: TenantDep, svc: ServicesDep, intgId: str, body: InstallIn) -> dict[str, Any]:
    """Install integration ``intgId`` for the tenant (with its base notifier, if given)."""
    notifier = body.outboundConfig.baseNotifier if body.outboundConfig else None
    if notifier is not None:  # checked before anything is stored
        check_urls({"outboundConfig.baseNotifier.baseURI": notifier.baseURI}, svc.settings)
    inst = svc.store.install(clientId, intgId, body.displayName, mask_secrets(_kept(body)))
    if notifier is not None:
        inst = _set_notifier(svc, clientId, inst, notifier, "outboundConfig.baseNotifier")
    return installed_view(inst)


@router.get("/installed/search", response_model=PageOut[InstalledOut])
def search_installed(
    clientId: TenantDep,
    svc: ServicesDep,
    page: PageDep,
    queryString: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="`field:value` pairs joined by `+`: displayName (contains), intgId, "
            "state (ENABLED, DISABLED, UNINSTALLED; uninstalled ones only when asked), id",
        ),
    ] = None,
    sortName: Annotated[str, Query(description="one of: " + ", ".join(SORTS))] = "createdTime",
) -> dict[str, Any]:
    """A page of the tenant's installed integrations (oldest first unless asked)."""
    if sortName not in SORTS:
        raise InvalidInput("sortName", f"must be one of: {', '.join(SORTS)}")
    filters = parse_query(queryString or "", ("displayName", "intgId", "state", "id"))
    descending = page.descending_or(False)
    rows, total = svc.store.search_installed(
        clientId,
        filters=filters,
        sort=sortName,
        descending=descending,
        offset=page.offset,
        limit=page.size,
    )
    return page.body([installed_view(i) for i in rows], total, descending)


@router.get("/installed/{installedIntgId}", response_model=InstalledOut)
def get_installed(clientId: TenantDep, svc: ServicesDep, installedIntgId: str) -> dict[str, Any]:
    """One installed integration (an uninstalled one too, with its ``uninstallReason``)."""
    return installed_view(installed_or_404(svc, clientId, installedIntgId))


@router.post("/installed/{installedIntgId}", response_model=InstalledOut)
def update_installed(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, body: InstalledUpdateIn
) -> dict[str, Any]:
    """Update an installed integration: its name, its base notifier, the fields it keeps."""
    inst = live_installed_or_404(svc, clientId, installedIntgId)
    notifier = body.outboundConfig.baseNotifier if body.outboundConfig else None
    if notifier is not None:
        field = "outboundConfig.baseNotifier"
        inst = _set_notifier(svc, clientId, inst, notifier, field, keep_secrets=True)
    updated = svc.store.update_installed(
        clientId, installedIntgId, display_name=body.displayName, extra=mask_secrets(_kept(body))
    )
    assert updated is not None
    return installed_view(updated)


def _set_state(
    svc: Services, client_id: str, installed_id: str, state: InstalledState
) -> dict[str, Any]:
    live_installed_or_404(svc, client_id, installed_id)
    inst = svc.store.set_installed_state(client_id, installed_id, state)
    assert inst is not None
    return installed_view(inst)


@router.post("/installed/{installedIntgId}/enable", response_model=InstalledOut)
def enable_installed(clientId: TenantDep, svc: ServicesDep, installedIntgId: str) -> dict[str, Any]:
    """Enable an installed integration: its active events match again."""
    return _set_state(svc, clientId, installedIntgId, InstalledState.ENABLED)


@router.post("/installed/{installedIntgId}/disable", response_model=InstalledOut)
def disable_installed(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str
) -> dict[str, Any]:
    """Disable an installed integration: its events match nothing, and its deliveries still
    waiting for a retry end FAILED (``integration_disabled``), replayable once enabled."""
    return _set_state(svc, clientId, installedIntgId, InstalledState.DISABLED)


@router.delete("/installed/{installedIntgId}", response_model=InstalledOut)
def uninstall(
    clientId: TenantDep,
    svc: ServicesDep,
    installedIntgId: str,
    body: Annotated[UninstallIn | None, Body()] = None,
) -> dict[str, Any]:
    """Uninstall: its events stop matching; it, its events and its activity history stay
    readable. Uninstalling twice answers the same."""
    inst = installed_or_404(svc, clientId, installedIntgId)
    if inst.state is not InstalledState.UNINSTALLED:
        reason = body.uninstallReason if body else None
        found = svc.store.set_installed_state(
            clientId, installedIntgId, InstalledState.UNINSTALLED, reason
        )
        assert found is not None
        inst = found
    return installed_view(inst)


@router.post("/installed/{installedIntgId}/notifier", response_model=InstalledOut)
def set_base_notifier(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, body: Notifier
) -> dict[str, Any]:
    """Set (replace) the base notifier that events with ``useBaseNotifier`` send through."""
    inst = live_installed_or_404(svc, clientId, installedIntgId)
    return installed_view(_set_notifier(svc, clientId, inst, body, ""))
