"""What the store hands out and takes in: plain frozen dataclasses, no sessions attached."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum, nonmember
from typing import Any

from integrations.models import MASK, SECRET_FIELDS, Header, IntegrationEventIn, Notifier


class DeliveryStatus(StrEnum):
    """Values of the activity log's ``status``."""

    PENDING = "PENDING"
    RETRYING = "RETRYING"
    #: Held behind an earlier delivery of the same ticket (see :mod:`worker.ordering`).
    WAITING = "WAITING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    #: The statuses a delivery never leaves (but for a replay). ``nonmember`` keeps it a plain
    #: class attribute, not another status; members are ``str``s, so they are found in it.
    TERMINAL = nonmember(frozenset({"SUCCESS", "FAILED"}))
    #: The statuses of a delivery still to be sent: a later one of its ticket waits for it.
    UNFINISHED = nonmember(("PENDING", "RETRYING", "WAITING"))


#: :attr:`DeliveryStatus.TERMINAL`, as members.
TERMINAL_STATUSES: frozenset[DeliveryStatus] = frozenset(
    {DeliveryStatus.SUCCESS, DeliveryStatus.FAILED}
)


def delivery_id_for(tenant_id: str, message_id: str, event_id: str) -> str:
    """The stable id of the delivery of one message to one integration event.

    Derived, not random, so that a message processed twice maps to the same delivery: it is the
    ``Idempotency-Key`` and ``webhook-id`` a receiver can deduplicate on.
    """
    digest = hashlib.sha256(f"{tenant_id}\x00{message_id}\x00{event_id}".encode()).hexdigest()
    return f"DLV-{digest[:32]}"


def split_secrets(notifier: Notifier) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a notifier into its public fields and its secret fields."""
    data = notifier.model_dump(mode="json", exclude_none=True)
    hidden = {k: data.pop(k) for k in SECRET_FIELDS if k in data}
    return data, hidden


def notifier_omissions(new: Notifier | None, old: Notifier | None) -> dict[str, Any]:
    """The stored secrets of ``old`` that ``new`` leaves out, by field (pure)."""
    if new is None or old is None:
        return {}
    return {
        field: getattr(old, field)
        for field in SECRET_FIELDS
        if getattr(new, field) is None and getattr(old, field) is not None
    }


def _omissions(
    new: IntegrationEventIn, old: IntegrationEventIn
) -> tuple[dict[str, Any], dict[int, str]]:
    """The stored secrets ``new`` leaves out: notifier fields by name, header values by
    index (a header sent back as ``***``)."""
    fields = notifier_omissions(new.notifier, old.notifier)
    return fields, _masked(new.headers, old.headers)


def _masked(new: list[Header], old: list[Header]) -> dict[int, str]:
    """Header values sent back as ``***`` whose stored values are kept, by index."""
    stored = {h.key.lower(): h.value for h in old}
    return {
        i: stored[h.key.lower()]
        for i, h in enumerate(new)
        if h.value == MASK and h.key.lower() in stored
    }


def _dep_masked(new: IntegrationEventIn, old: IntegrationEventIn) -> dict[int, str]:
    if new.depEvent is None or old.depEvent is None:
        return {}
    return _masked(new.depEvent.headers, old.depEvent.headers)


def omitted_secrets(new: IntegrationEventIn, old: IntegrationEventIn) -> list[str]:
    """The fields whose stored secret :func:`keep_omitted_secrets` would keep (pure)."""
    fields, headers = _omissions(new, old)
    return (
        [f"notifier.{f}" for f in fields]
        + [f"headers[{i}].value" for i in headers]
        + [f"depEvent.headers[{i}].value" for i in _dep_masked(new, old)]
    )


def keep_omitted_secrets(new: IntegrationEventIn, old: IntegrationEventIn) -> IntegrationEventIn:
    """``new`` with every secret it omits taken from ``old`` (pure).

    The API never shows a secret, so an update built from what it showed leaves notifier
    secrets out and sends secret headers back as ``***``: those keep their stored values.
    """
    fields, kept = _omissions(new, old)
    notifier = new.notifier.model_copy(update=fields) if new.notifier and fields else new.notifier
    headers = [
        Header(key=h.key, value=kept[i]) if i in kept else h for i, h in enumerate(new.headers)
    ]
    dependent = new.depEvent
    if dependent is not None and (dep_kept := _dep_masked(new, old)):
        dependent = dependent.model_copy(
            update={
                "headers": [
                    Header(key=h.key, value=dep_kept[i]) if i in dep_kept else h
                    for i, h in enumerate(dependent.headers)
                ]
            }
        )
    return new.model_copy(update={"notifier": notifier, "headers": headers, "depEvent": dependent})


class InstalledState(StrEnum):
    """Where an installed integration is in its life; only an enabled one's events match."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    UNINSTALLED = "UNINSTALLED"


@dataclass(frozen=True)
class InstalledIntegration:
    """An installed integration: the parent of integration events."""

    id: str
    tenant_id: str
    intg_id: str
    display_name: str
    base_notifier: Notifier | None
    created_at: datetime
    state: InstalledState = InstalledState.ENABLED
    #: Why it was uninstalled, as the caller said.
    state_reason: str | None = None
    #: What OpsRamp clients sent that Herald keeps without using (``category``...).
    extra: Mapping[str, Any] | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StoredEvent:
    """An integration event as stored, with its secrets opened (never echo ``spec`` as is)."""

    id: str
    tenant_id: str
    installed_id: str
    active: bool
    disabled_reason: str | None
    spec: IntegrationEventIn
    created_at: datetime
    updated_at: datetime
    #: The installed integration's base notifier (secrets opened), loaded with the event so a
    #: worker never reads the installed integration per delivery.
    base_notifier: Notifier | None = None
    #: The installed integration's state: a delivery of a disabled one is not attempted.
    installed_state: InstalledState = InstalledState.ENABLED


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, for the activity log."""

    number: int
    started_at: datetime
    duration_ms: float
    outcome: str
    http_status: int | None
    error_class: str | None
    reason: str
    response_excerpt: str


@dataclass(frozen=True)
class Delivery:
    """A row of the activity log."""

    id: str
    tenant_id: str
    event_id: str | None
    installed_id: str | None
    message_id: str | None
    entity: str | None
    event_type: str | None
    entity_id: str | None
    status: DeliveryStatus
    status_message: str
    error_class: str | None
    request_url: str | None
    req_payload: str | None
    res_payload: str | None
    http_status: int | None
    attempts: int
    attempts_base: int
    warnings: list[str]
    captured: dict[str, str]
    message: str
    created_at: datetime
    processed_time: datetime | None
    next_attempt_at: datetime | None
    attempt_log: list[Attempt]
    #: The ticket this delivery is ordered by (:func:`worker.ordering.ordering_key`), and its
    #: place among the ticket's deliveries; ``None`` for a dead letter or an entity without id.
    ordering_key: str | None = None
    sequence: str | None = None
    #: Whether it waits for earlier deliveries of its ticket (the event's ``ordering``).
    ordered: bool = True
    #: The delivery it waits, or last waited, for.
    waits_on: str | None = None


@dataclass(frozen=True)
class NewDelivery:
    """A delivery row to create (a dead letter when ``event_id`` and ``message_id`` are None)."""

    id: str
    tenant_id: str
    message: str
    event_id: str | None = None
    installed_id: str | None = None
    message_id: str | None = None
    entity: str | None = None
    event_type: str | None = None
    entity_id: str | None = None
    status: DeliveryStatus = DeliveryStatus.PENDING
    status_message: str = ""
    error_class: str | None = None
    ordering_key: str | None = None
    sequence: str | None = None
    ordered: bool = True


@dataclass(frozen=True)
class Unfinished:
    """A delivery of a ticket not finished yet, as the store lists it."""

    key: str
    sequence: str
    id: str
    status: str
    #: When it is due again (epoch seconds), if it is scheduled.
    due: float | None = None


@dataclass(frozen=True)
class IngestBatch:
    """What :meth:`Store.ingest_batch` did."""

    #: ``(tenant_id, message_id)`` of the messages new within the window (or seen before it).
    fresh: frozenset[tuple[str, str]]
    #: Ids of the deliveries this batch inserted (not those that existed already).
    created: frozenset[str]
    #: Deliveries of duplicate messages still PENDING: an interrupted earlier run left them.
    redelivered: tuple[Delivery, ...]
    #: The unfinished deliveries of the tickets asked for, as the transaction saw them (its
    #: own new rows among them): what per-ticket ordering reads.
    unfinished: tuple[Unfinished, ...] = ()


@dataclass(frozen=True)
class AttemptRecord:
    """The outcome of one attempt, as the store records it."""

    delivery_id: str
    started_at: datetime
    duration_ms: float
    #: ``success``, ``retryable`` or ``permanent``.
    outcome: str
    status: DeliveryStatus
    status_message: str
    http_status: int | None = None
    error_class: str | None = None
    request_url: str | None = None
    req_payload: str | None = None
    res_payload: str | None = None
    warnings: tuple[str, ...] = ()
    captured: Mapping[str, str] | None = None
    next_attempt_at: datetime | None = None
    #: Attempts already made before this one (the worker knows it); the batch write records
    #: the attempt only if the delivery still has this many, so two workers cannot both.
    previous_attempts: int | None = None
    #: ``(event_id, entity_id)`` to upsert ``captured`` under, in the same transaction.
    capture_for: tuple[str, str] | None = None
