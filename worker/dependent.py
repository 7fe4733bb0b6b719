"""OpsRamp's ``depEvent``: a second call made once an event's own call succeeded.

It is a delivery of its own (id: the first call's, plus :data:`SUFFIX`), created in the
transaction that records the first call's success, so it cannot be lost between the two;
it renders with the values the first call captured, keeps its own attempt log, and retries
on its own schedule without ever repeating the first call. It sorts right after the first
call among its ticket's deliveries (per-ticket ordering), so the ticket's next change waits
for it too.
"""

from __future__ import annotations

import dataclasses

from integrations.models import IntegrationEventIn
from integrations.store import DeliveryStatus, NewDelivery, StoredEvent

SUFFIX = "-DEP"


def dependent_id(delivery_id: str) -> str:
    """The id of the dependent call of delivery ``delivery_id``."""
    return delivery_id + SUFFIX


def is_dependent(delivery_id: str) -> bool:
    """Whether ``delivery_id`` is a dependent call."""
    return delivery_id.endswith(SUFFIX)


def dependent_row(
    *,
    delivery_id: str,
    tenant_id: str,
    message: str,
    event_id: str | None,
    installed_id: str | None,
    message_id: str | None,
    entity: str | None,
    event_type: str | None,
    entity_id: str | None,
    ordering_key: str | None,
    sequence: str | None,
) -> NewDelivery:
    """The row of delivery ``delivery_id``'s dependent call, to create with its success."""
    return NewDelivery(
        id=dependent_id(delivery_id),
        tenant_id=tenant_id,
        message=message,
        event_id=event_id,
        installed_id=installed_id,
        message_id=message_id,
        entity=entity,
        event_type=event_type,
        entity_id=entity_id,
        status=DeliveryStatus.PENDING,
        status_message=f"dependent call of {delivery_id}, which succeeded",
        ordering_key=ordering_key,
        # Right after the first call: before any later change of the ticket.
        sequence=f"{sequence}.dep" if sequence else None,
        ordered=True,
    )


def dependent_spec(spec: IntegrationEventIn) -> IntegrationEventIn:
    """The event as its dependent call sends it: the same notifier, the depEvent's URL,
    method, headers, payload and captures (pure)."""
    dep = spec.depEvent
    assert dep is not None
    return spec.model_copy(
        update={
            "endPointURI": dep.depEndPointURI,
            "thirdPartyEventType": dep.thirdPartyEventType,
            "headers": dep.headers,
            "payload": dep.payload,
            "responseHeaders": dep.responseHeaders,
            "depEvent": None,
        }
    )


def as_sent_by(event: StoredEvent, delivery_id: str) -> StoredEvent:
    """``event`` as delivery ``delivery_id`` sends it: its dependent call's shape if it is one."""
    if not is_dependent(delivery_id) or event.spec.depEvent is None:
        return event
    return dataclasses.replace(event, spec=dependent_spec(event.spec))
