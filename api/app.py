"""The FastAPI app: OpsRamp-compatible integration events, activity log and replay."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

import redis
from fastapi import Body, FastAPI, Form, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import basic_credentials, require_tenant
from api.dispatch import CeleryDispatcher, Dispatcher, replay_delivery
from api.errors import install_handlers
from api.limits import RequestLimits
from api.throttle import LoginThrottle
from api.views import activity_view, event_view, installed_view
from integrations.config import Settings
from integrations.errors import HeraldError, InvalidInput
from integrations.models import EntityChange, IntegrationEventIn, Notifier
from integrations.rulebook import compile_criteria, validate_template
from integrations.store import DeliveryStatus, Store
from notifiers.safety import check_literal_url
from notifiers.urls import resolve_url
from worker.health import BreakerPolicy, EndpointHealth

TENANT = "/api/v2/tenants/{clientId}"


class InstallIn(BaseModel):
    """Body of ``POST .../integrations/install/{intgId}``."""

    model_config = ConfigDict(extra="allow")
    displayName: str = Field(min_length=1, max_length=255)


class BulkReplayIn(BaseModel):
    """Body of the bulk replay: an event and a time range (and a status, FAILED by default)."""

    model_config = ConfigDict(extra="forbid")
    eventId: str | None = None
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    status: str = DeliveryStatus.FAILED


def _check_urls(spec_urls: dict[str, str | None], settings: Settings) -> None:
    """Refuse at save time a URL whose host is a literal address Herald will not reach."""
    for field, url in spec_urls.items():
        if url:
            if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
                # Credentials in a URL end up in logs and activity rows; they belong in the
                # notifier's auth fields, which are sealed.
                raise InvalidInput(field, "must not contain credentials; use authType BASIC")
            reason = check_literal_url(url, settings.allowed_networks)
            if reason:
                raise InvalidInput(field, reason)


def validate_event(spec: IntegrationEventIn, settings: Settings) -> None:
    """Checks beyond the model: regexes, template syntax, URLs (each a 400 naming the field)."""
    compile_criteria(spec.filterCriteria, spec.entity)
    validate_template(spec.template)
    n = spec.notifier
    if n is not None and not spec.useBaseNotifier:
        try:
            resolve_url(n.baseURI, spec.endPointURI)
        except HeraldError as exc:
            raise InvalidInput("endPointURI", exc.reason) from None
    _check_urls(
        {
            "endPointURI": spec.endPointURI,
            "notifier.baseURI": n.baseURI if n else None,
            "notifier.accessTokenURL": n.accessTokenURL if n else None,
            "notifier.tokenURL": n.tokenURL if n else None,
        },
        settings,
    )


def create_app(
    settings: Settings, store: Store | None = None, dispatcher: Dispatcher | None = None
) -> FastAPI:
    """Build the API over ``store`` (opened from ``settings`` when not given)."""
    store = store or Store(settings.database_url, settings.secret_key)
    dispatch: Dispatcher = dispatcher or CeleryDispatcher(settings)
    app = FastAPI(
        title="Herald",
        version="0.1.0",
        description="Outbound integration events, compatible with OpsRamp's API.",
    )
    app.state.store = store
    install_handlers(app)
    app.add_middleware(RequestLimits, store=store)
    redis_client = redis.Redis.from_url(settings.redis_url)
    throttle = LoginThrottle(redis_client, settings.keys)

    def tenant(request: Request, client_id: str) -> str:
        return require_tenant(request, store, client_id)

    def installed_or_404(client_id: str, installed_id: str) -> Any:
        inst = store.get_installed(client_id, installed_id)
        if inst is None:
            raise HTTPException(404, f"installed integration {installed_id} not found")
        return inst

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/auth/oauth/token")
    def token(
        request: Request,
        grant_type: Annotated[str, Form()] = "client_credentials",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> JSONResponse:
        if grant_type != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "only client_credentials is supported",
                },
                status_code=400,
            )
        creds = basic_credentials(request)
        if creds is not None and client_id is None:
            client_id, client_secret = creds
        address = request.client.host if request.client else "unknown"
        # Checked before the secret is hashed: a throttled guess costs no PBKDF2.
        wait = throttle.retry_after(client_id or "", address)
        if wait is not None:
            return JSONResponse(
                {
                    "error": "too_many_requests",
                    "error_description": f"too many failed token requests; retry in {wait} s",
                },
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        if not client_id or not client_secret or not store.verify_tenant(client_id, client_secret):
            throttle.failed(client_id or "", address)
            return JSONResponse(
                {"error": "invalid_client", "error_description": "unknown client or wrong secret"},
                status_code=401,
            )
        throttle.succeeded(client_id)
        access = store.issue_token(client_id, settings.api_token_ttl)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": settings.api_token_ttl,
                "scope": "global",
            },
            headers={"Cache-Control": "no-store"},
        )

    # -- installed integrations ------------------------------------------------------------

    @app.post(TENANT + "/integrations/install/{intgId}")
    def install(request: Request, clientId: str, intgId: str, body: InstallIn) -> dict[str, Any]:
        tenant(request, clientId)
        return installed_view(store.install(clientId, intgId, body.displayName))

    @app.get(TENANT + "/integrations/installed/{installedIntgId}")
    def get_installed(request: Request, clientId: str, installedIntgId: str) -> dict[str, Any]:
        tenant(request, clientId)
        return installed_view(installed_or_404(clientId, installedIntgId))

    @app.post(TENANT + "/integrations/installed/{installedIntgId}/notifier")
    def set_base_notifier(
        request: Request, clientId: str, installedIntgId: str, body: Notifier
    ) -> dict[str, Any]:
        tenant(request, clientId)
        installed_or_404(clientId, installedIntgId)
        _check_urls(
            {
                "baseURI": body.baseURI,
                "accessTokenURL": body.accessTokenURL,
                "tokenURL": body.tokenURL,
            },
            settings,
        )
        inst = store.set_base_notifier(clientId, installedIntgId, body)
        assert inst is not None
        return installed_view(inst)

    # -- integration events ----------------------------------------------------------------

    @app.post(TENANT + "/integrations/installed/{installedIntgId}/event")
    def create_event(
        request: Request, clientId: str, installedIntgId: str, body: IntegrationEventIn
    ) -> dict[str, Any]:
        tenant(request, clientId)
        installed_or_404(clientId, installedIntgId)
        validate_event(body, settings)
        return event_view(store.create_event(clientId, installedIntgId, body))

    @app.get(TENANT + "/integrations/installed/{installedIntgId}/events")
    def list_events(request: Request, clientId: str, installedIntgId: str) -> dict[str, Any]:
        tenant(request, clientId)
        installed_or_404(clientId, installedIntgId)
        events = [event_view(e) for e in store.list_events(clientId, installedIntgId)]
        return {"results": events, "totalResults": len(events)}

    def event_or_404(client_id: str, installed_id: str, event_id: str) -> Any:
        installed_or_404(client_id, installed_id)
        ev = store.get_event(client_id, event_id)
        if ev is None or ev.installed_id != installed_id:
            raise HTTPException(404, f"integration event {event_id} not found")
        return ev

    @app.get(TENANT + "/integrations/installed/{installedIntgId}/event/{eventId}")
    def get_event(
        request: Request, clientId: str, installedIntgId: str, eventId: str
    ) -> dict[str, Any]:
        tenant(request, clientId)
        return event_view(event_or_404(clientId, installedIntgId, eventId))

    @app.delete(TENANT + "/integrations/installed/{installedIntgId}/event/{eventId}")
    def delete_event(
        request: Request, clientId: str, installedIntgId: str, eventId: str
    ) -> dict[str, Any]:
        tenant(request, clientId)
        event_or_404(clientId, installedIntgId, eventId)
        store.delete_event(clientId, eventId)
        return {"id": eventId, "deleted": True}

    for action, active in (("activate", True), ("deactivate", False)):

        def _toggle(
            request: Request,
            clientId: str,
            installedIntgId: str,
            eventId: str,
            _active: bool = active,
        ) -> dict[str, Any]:
            tenant(request, clientId)
            event_or_404(clientId, installedIntgId, eventId)
            reason = None if _active else "deactivated through the API"
            if _active:
                # A re-activated event starts with a clean record: old failures must not
                # disable it again at its first hiccup.
                clear_failure_streak(eventId)
            ev = store.set_event_active(eventId, _active, reason)
            assert ev is not None
            return event_view(ev)

        app.post(
            TENANT + "/integrations/installed/{installedIntgId}/event/{eventId}/" + action,
            name=f"{action}_event",
        )(_toggle)

    # -- activity log and replay -----------------------------------------------------------

    @app.get(TENANT + "/integrations/activity")
    def activity(
        request: Request,
        clientId: str,
        eventId: str | None = None,
        status: str | None = None,
        messageId: str | None = None,
        start: Annotated[datetime | None, Query(alias="from")] = None,
        end: Annotated[datetime | None, Query(alias="to")] = None,
        pageNo: Annotated[int, Query(ge=1)] = 1,
        pageSize: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        tenant(request, clientId)
        rows, total = store.list_deliveries(
            clientId,
            event_id=eventId,
            status=status.upper() if status else None,
            message_id=messageId,
            since=start,
            until=end,
            offset=(pageNo - 1) * pageSize,
            limit=pageSize,
        )
        pages = max(1, math.ceil(total / pageSize))
        return {
            "results": [activity_view(d) for d in rows],
            "totalResults": total,
            "pageNo": pageNo,
            "pageSize": pageSize,
            "totalPages": pages,
            "nextPage": pageNo < pages,
            "duplicatesDropped": store.duplicate_count(clientId),
        }

    @app.get(TENANT + "/integrations/activity/{activityId}")
    def activity_one(request: Request, clientId: str, activityId: str) -> dict[str, Any]:
        tenant(request, clientId)
        d = store.get_delivery(activityId, clientId)
        if d is None:
            raise HTTPException(404, f"activity {activityId} not found")
        return activity_view(d)

    def replay_one(delivery_id: str, client_id: str, fixed: str | None = None) -> dict[str, Any]:
        d = store.get_delivery(delivery_id, client_id)
        if d is None:
            raise HTTPException(404, f"activity {delivery_id} not found")
        if d.event_id is None:
            # A dead letter: feed the message (as corrected by the caller, if given) back in.
            message = d.message if fixed is None else checked_fix(fixed, client_id)
            dispatch.ingest(message)
            store.fail_delivery(
                d.id,
                f"replayed at {datetime.now(UTC).isoformat(timespec='seconds')}: "
                f"{d.status_message}",
                d.error_class or "malformed_message",
            )
            return {"id": d.id, "replayed": True, "kind": "message"}
        # Any state may be replayed, PENDING included (a delivery stranded by an outage).
        replay_delivery(
            d.id, settings=settings, store=store, client=redis_client, dispatcher=dispatch
        )
        return {"id": d.id, "replayed": True, "kind": "delivery"}

    def checked_fix(fixed: str, client_id: str) -> str:
        """A corrected dead letter: it must now be valid, and be the caller's own."""
        try:
            change = EntityChange.model_validate_json(fixed)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("message", *e["loc"])} for e in exc.errors()]
            ) from None
        if change.tenantId != client_id:
            raise InvalidInput("message.tenantId", f"must be {client_id}, the caller's tenant")
        return fixed

    @app.post(TENANT + "/integrations/activity/{activityId}/replay")
    def replay(
        request: Request,
        clientId: str,
        activityId: str,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        tenant(request, clientId)
        fixed = None
        if body and "message" in body:
            fixed = (
                json.dumps(body["message"])
                if not isinstance(body["message"], str)
                else body["message"]
            )
        return replay_one(activityId, clientId, fixed)

    @app.post(TENANT + "/integrations/activity/replay")
    def replay_bulk(request: Request, clientId: str, body: BulkReplayIn) -> dict[str, Any]:
        tenant(request, clientId)
        ids: list[str] = []
        page = 0
        while True:
            rows, _ = store.list_deliveries(
                clientId,
                event_id=body.eventId,
                status=body.status.upper(),
                since=body.start,
                until=body.end,
                offset=page * 500,
                limit=500,
            )
            ids.extend(d.id for d in rows)
            if len(rows) < 500:
                break
            page += 1
        for delivery_id in ids:
            replay_one(delivery_id, clientId)
        return {"replayed": len(ids), "ids": ids}

    def clear_failure_streak(event_id: str) -> None:
        EndpointHealth(redis_client, settings.redis_prefix, BreakerPolicy()).event_succeeded(
            event_id
        )

    return app
