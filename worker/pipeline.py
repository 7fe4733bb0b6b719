"""Fan-out of one entity change: find the tenant's matching events and create deliveries.

Order matters for at-least-once without loss: deliveries are created first (idempotently, by a
derived id), and only then is the message remembered as processed. A worker dying in between
re-processes the message on redelivery and creates nothing twice; a message remembered as
processed within the dedupe window is a producer duplicate and is dropped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from integrations.errors import HeraldError
from integrations.models import EntityChange, field_path
from integrations.store import DeliveryStatus, Store, StoredEvent, delivery_id_for
from rules.fields import MISSING, resolve
from rules.matcher import Matcher, compile_criteria

log = logging.getLogger(__name__)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line summary naming each bad field and its problem."""
    return "; ".join(f"{field_path(err['loc']) or 'message'}: {err['msg']}" for err in exc.errors())


def entity_id(data: dict[str, object]) -> str | None:
    """The entity's own id (``id`` or ``uniqueId``, any case), used to key captured values."""
    for key in ("id", "uniqueId"):
        value = resolve(data, key)
        if value is not MISSING and value is not None and value != "":
            return str(value)
    return None


class MatcherCache:
    """Events and their compiled filter criteria, reloaded only when an event changes."""

    def __init__(self, max_size: int = 10_000) -> None:
        self._cache: dict[str, tuple[datetime, StoredEvent, Matcher]] = {}
        self._max = max_size

    def get(
        self, store: Store, event_id: str, updated_at: datetime
    ) -> tuple[StoredEvent, Matcher] | None:
        """The event and its matcher (``None`` if it was deleted meanwhile)."""
        hit = self._cache.get(event_id)
        if hit is not None and hit[0] == updated_at:
            return hit[1], hit[2]
        event = store.load_event(event_id)
        if event is None:
            return None
        matcher = compile_criteria(event.spec.filterCriteria, event.spec.entity)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[event_id] = (updated_at, event, matcher)
        return event, matcher


@dataclass(frozen=True)
class FanOut:
    """What processing one message produced."""

    deliveries: list[str]
    duplicate: bool = False
    dead_letter: str | None = None


def dead_letter(store: Store, raw: str, reason: str) -> str:
    """Keep an unprocessable message, with the reason, where the activity API shows it."""
    tenant = ""
    try:
        parsed = json.loads(raw)
        if isinstance(parsed, dict) and isinstance(parsed.get("tenantId"), str):
            tenant = parsed["tenantId"][:256]
    except ValueError:
        pass
    dlq_id = "DLQ-" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]
    store.create_delivery(
        delivery_id=dlq_id,
        tenant_id=tenant,
        message=raw,
        status=DeliveryStatus.FAILED,
        status_message=f"malformed message: {reason}",
        error_class="malformed_message",
    )
    log.warning("dead-lettered malformed message %s: %s", dlq_id, reason)
    return dlq_id


def fan_out(store: Store, matchers: MatcherCache, raw: str, *, dedupe_window: float) -> FanOut:
    """Validate one raw message and create a delivery per matching integration event."""
    try:
        change = EntityChange.model_validate_json(raw)
    except ValidationError as exc:
        return FanOut([], dead_letter=dead_letter(store, raw, describe_validation_error(exc)))
    if store.seen_recently(change.tenantId, change.id, dedupe_window):
        log.info("dropped duplicate message %s of tenant %s", change.id, change.tenantId)
        # Nothing new is created. Deliveries of the first sighting that were never attempted
        # are dispatched again: if the worker died between remembering the message and
        # dispatching them, this redelivery is their only way out (a second dispatch of one
        # already queued is skipped by the delivery task).
        pending = store.pending_deliveries(change.tenantId, change.id)
        return FanOut(sorted(d.id for d in pending), duplicate=True)

    stored_message = change.model_dump_json()
    ent_id = entity_id(change.data)
    for event_id, updated_at in store.candidate_keys(
        change.tenantId, change.entity, change.eventType
    ):
        failure = None
        try:
            found = matchers.get(store, event_id, updated_at)
            if found is None:
                continue
            event, matcher = found
            if not matcher.matches(change.data):
                continue
        except (HeraldError, ValidationError) as exc:
            # A stored event that no longer loads or compiles (a key change, a rule the
            # engine now rejects) must not block the others, and must not fail silently:
            # the tenant sees a FAILED row naming the event and the reason.
            log.exception("event %s could not be evaluated", event_id)
            event, failure = None, f"integration event {event_id} could not be evaluated: {exc}"
        store.create_delivery(
            delivery_id=delivery_id_for(change.tenantId, change.id, event_id),
            tenant_id=change.tenantId,
            event_id=event_id,
            installed_id=event.installed_id if event else None,
            message_id=change.id,
            entity=change.entity.value,
            event_type=change.eventType.value,
            entity_id=ent_id,
            message=stored_message,
            **(
                {
                    "status": DeliveryStatus.FAILED,
                    "status_message": failure,
                    "error_class": "event_error",
                }
                if failure
                else {}
            ),
        )
    store.remember_message(change.tenantId, change.id, dedupe_window)
    # Every delivery of this message not attempted yet, including any an interrupted earlier
    # run created: their tasks are idempotent, so dispatching one twice sends it once.
    return FanOut(sorted(d.id for d in store.pending_deliveries(change.tenantId, change.id)))
