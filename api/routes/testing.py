"""Testing an integration event on a sample change: saved (``…/event/{eventId}/test``) or
not yet saved (``…/event/test``). See :mod:`api.event_test`."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import Services, ServicesDep, TenantDep, event_or_404, live_installed_or_404
from api.event_test import UNSAVED, run_test
from api.validation import validate_event
from integrations.errors import InvalidInput
from integrations.models import EntityChange, IntegrationEventIn
from integrations.store import StoredEvent
from integrations.store.records import keep_omitted_secrets

TENANT = "/api/v2/tenants/{clientId}"

router = APIRouter(
    prefix=TENANT + "/integrations/installed/{installedIntgId}", tags=["integration events"]
)


class TestIn(BaseModel):
    """A sample change (or the id of a recent message of the tenant), and whether to send."""

    model_config = ConfigDict(extra="forbid")
    change: EntityChange | None = None
    messageId: str | None = Field(default=None, max_length=256)
    #: Send the rendered request once (recorded in the activity log as a test).
    send: bool = False
    #: The event as it would be saved, to try an edit before making it (optional here).
    event: IntegrationEventIn | None = None

    @model_validator(mode="after")
    def _one_change(self) -> TestIn:
        if (self.change is None) == (self.messageId is None):
            raise ValueError("give either change or messageId")
        return self


class UnsavedTestIn(TestIn):
    """:class:`TestIn` with the event to try, as it would be created."""

    event: IntegrationEventIn


def _change(svc: Services, client_id: str, body: TestIn) -> EntityChange:
    if body.change is not None:
        if body.change.tenantId != client_id:
            raise InvalidInput("change.tenantId", f"must be {client_id}, the caller's tenant")
        return body.change
    rows, _ = svc.store.list_deliveries(client_id, message_id=body.messageId, limit=1)
    if not rows or rows[0].event_id is None:
        raise HTTPException(404, f"no message {body.messageId} in the activity log")
    return EntityChange.model_validate_json(rows[0].message)


@router.post("/event/test")
def test_unsaved_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, body: UnsavedTestIn
) -> dict[str, Any]:
    """Try an event before creating it: the same answer as a saved event's test."""
    installed = live_installed_or_404(svc, clientId, installedIntgId)
    validate_event(body.event, svc.settings, svc.store.captured_names(clientId, installedIntgId))
    now = datetime.now(UTC)
    event = StoredEvent(
        id=UNSAVED,
        tenant_id=clientId,
        installed_id=installedIntgId,
        active=True,
        disabled_reason=None,
        spec=body.event,
        created_at=now,
        updated_at=now,
        base_notifier=installed.base_notifier,
    )
    return run_test(svc, event, _change(svc, clientId, body), send=body.send)


@router.post("/event/{eventId}/test")
def test_event(
    clientId: TenantDep, svc: ServicesDep, installedIntgId: str, eventId: str, body: TestIn
) -> dict[str, Any]:
    """Whether the event matches the change, rule by rule, the request it would send
    (secrets masked), the placeholders with no value; sent once only if ``send`` is true.
    With ``event``, an edit of it is tried instead (not saved; omitted secrets kept)."""
    event = event_or_404(svc, clientId, installedIntgId, eventId)
    if body.event is not None:
        # An edit tried before it is saved: the same checks as the update's.
        validate_event(
            body.event, svc.settings, svc.store.captured_names(clientId, installedIntgId, eventId)
        )
        event = dataclasses.replace(event, spec=keep_omitted_secrets(body.event, event.spec))
    return run_test(svc, event, _change(svc, clientId, body), send=body.send)
