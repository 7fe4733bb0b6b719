"""Replaying activity: a delivery with a fresh retry budget, or a dead letter fed back in.

Kept out of the routes (which only parse and answer) so that a command or another route can
replay the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import Services
from api.dispatch import replay_deliveries, replay_delivery
from integrations.errors import InvalidInput
from integrations.models import EntityChange
from integrations.store import Delivery


def replay(
    svc: Services, client_id: str, delivery: Delivery, fixed: str | None = None
) -> dict[str, Any]:
    """Replay one of ``client_id``'s activity rows; ``fixed`` corrects a dead letter."""
    if delivery.event_id is None:
        # A dead letter: feed the message (as corrected by the caller, if given) back in.
        message = delivery.message if fixed is None else checked_fix(fixed, client_id)
        svc.dispatch.ingest(message)
        svc.store.fail_delivery(
            delivery.id,
            f"replayed at {datetime.now(UTC).isoformat(timespec='seconds')}: "
            f"{delivery.status_message}",
            delivery.error_class or "malformed_message",
        )
        return {"id": delivery.id, "replayed": True, "kind": "message"}
    # Any state may be replayed, PENDING included (a delivery stranded by an outage).
    replay_delivery(
        delivery.id,
        settings=svc.settings,
        store=svc.store,
        client=svc.redis,
        dispatcher=svc.dispatch,
    )
    return {"id": delivery.id, "replayed": True, "kind": "delivery"}


def replay_all(svc: Services, client_id: str, deliveries: list[Delivery]) -> None:
    """Replay many activity rows: their deliveries in their tickets' order (oldest change
    first, every one reset before any is sent), and their dead letters."""
    for d in deliveries:
        if d.event_id is None:
            replay(svc, client_id, d)
    ordered = sorted(
        (d for d in deliveries if d.event_id is not None),
        key=lambda d: (d.sequence or "", d.created_at),
    )
    replay_deliveries(
        [d.id for d in ordered],
        settings=svc.settings,
        store=svc.store,
        client=svc.redis,
        dispatcher=svc.dispatch,
    )


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
