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
from integrations.store import Delivery, DeliveryStatus, NewDelivery, StoredEvent

SUFFIX = "-DEP"


def dependent_id(delivery_id: str) -> str:
    """The id of the dependent call of delivery ``delivery_id``."""
    return delivery_id + SUFFIX


def is_dependent(delivery_id: str) -> bool:
    """Whether ``delivery_id`` is a dependent call."""
    return delivery_id.endswith(SUFFIX)


def dependent_row(first: NewDelivery | Delivery) -> NewDelivery:
    """The row of delivery ``first``'s dependent call (from its new or its stored row), to
    create with its success."""
    return NewDelivery(
        id=dependent_id(first.id),
        tenant_id=first.tenant_id,
        message=first.message,
        event_id=first.event_id,
        installed_id=first.installed_id,
        message_id=first.message_id,
        entity=first.entity,
        event_type=first.event_type,
        entity_id=first.entity_id,
        status=DeliveryStatus.PENDING,
        status_message=f"dependent call of {first.id}, which succeeded",
        ordering_key=first.ordering_key,
        # Right after the first call: before any later change of the ticket.
        sequence=f"{first.sequence}.dep" if first.sequence else None,
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
