"""Fan-out of a batch of entity changes: validate, match, and create their deliveries at once.

Order matters for at-least-once without loss. A batch's messages are remembered and its
deliveries created in ONE transaction (:meth:`Store.ingest_batch`), by derived ids, with
insert-on-conflict and no read first. A worker dying before that commit leaves nothing behind
and the stream entries are read again; dying after it, the entries are read again too, their
messages are then duplicates, and the deliveries they left PENDING are handed on
(``redelivered``). A message remembered within the dedupe window is a producer duplicate and
creates nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from integrations import metrics
from integrations.enums import Ordering
from integrations.models import EntityChange, field_path
from integrations.store import (
    DeliveryStatus,
    IngestBatch,
    NewDelivery,
    Store,
    delivery_id_for,
)
from rules.fields import FieldView
from worker.events import BrokenEvent, EventCache, LiveEvent
from worker.ordering import (
    Ordered,
    entity_key,
    ordering_key,
    sequence_of,
    ticket_of,
    turns,
)

log = logging.getLogger(__name__)


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line summary naming each bad field and its problem."""
    return "; ".join(f"{field_path(err['loc']) or 'message'}: {err['msg']}" for err in exc.errors())


#: The entity's own id, which keys its captured values and its ticket's order.
entity_id = ticket_of


#: How a dead letter's status message begins, by error class.
DEAD_LETTER_LABELS = {
    "malformed_message": "malformed message",
    "oversized_message": "oversized message",
    "unknown_tenant": "unknown tenant",
}

#: The longest message a worker parses (characters). Each delivery row keeps its message, so
#: a 50 MB change fanned out to 30 events would write 1.5 GB; an entity change is a record,
#: not a file. A longer one is a dead letter that keeps its first :data:`KEPT_CHARS`.
MAX_MESSAGE_CHARS = 1024 * 1024
KEPT_CHARS = 64 * 1024


def oversized_row(raw: str) -> NewDelivery:
    """The dead letter of a message over :data:`MAX_MESSAGE_CHARS`, never parsed whole.

    It belongs to no tenant (``herald dead-letters`` shows it to operators): without a parse,
    a ``tenantId`` found in the text may be a nested one, which would show one tenant's
    data to another.
    """
    head = raw[:KEPT_CHARS]
    row = dead_letter_row(
        head,
        f"{len(raw):,} characters (at most {MAX_MESSAGE_CHARS:,}); the first "
        f"{KEPT_CHARS:,} are kept: publish it again within the limit",
        error_class="oversized_message",
        tenant="",
    )
    # Its id is the whole message's: the same message published twice is one dead letter.
    return dataclasses.replace(row, id=_dlq_id(raw))


def _dlq_id(raw: str) -> str:
    return "DLQ-" + hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:32]


def dead_letter_row(
    raw: str, reason: str, *, error_class: str = "malformed_message", tenant: str | None = None
) -> NewDelivery:
    """An unprocessable message, kept with the reason where the activity API shows it.

    ``herald dead-letters`` lists it, and the API's replay sends it again once corrected.
    """
    if tenant is None:
        tenant = ""
        try:
            parsed = json.loads(raw)
            if isinstance(parsed, dict) and isinstance(parsed.get("tenantId"), str):
                tenant = parsed["tenantId"][:256]
        except (ValueError, RecursionError):
            pass
    dlq_id = _dlq_id(raw)
    label = DEAD_LETTER_LABELS.get(error_class, error_class.replace("_", " "))
    log.warning("dead-lettered %s %s: %s", label, dlq_id, reason)
    return NewDelivery(
        id=dlq_id,
        tenant_id=tenant,
        message=raw,
        status=DeliveryStatus.FAILED,
        status_message=f"{label}: {reason}",
        error_class=error_class,
    )


@dataclass(frozen=True)
class Planned:
    """A delivery whose first attempt the batch makes, once the store has created it."""

    delivery_id: str
    live: LiveEvent
    change: EntityChange
    entity_id: str | None
    #: How per-ticket ordering sees it (:mod:`worker.ordering`).
    order: Ordered
    #: The row the store created for it.
    row: NewDelivery


@dataclass
class Plan:
    """What a batch of raw messages asks the store for."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    rows: list[NewDelivery] = field(default_factory=list)
    first_attempts: list[Planned] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    #: ``(tenant, entity, matched)`` of each valid change, for the metrics.
    routed: list[tuple[str, str, bool]] = field(default_factory=list)


def _parse(
    plan: Plan, raws: Sequence[str], entry_ids: Sequence[str]
) -> list[tuple[EntityChange, str]]:
    """The valid changes of ``raws`` with their entry ids; the others become dead letters."""
    parsed: list[tuple[EntityChange, str]] = []
    for raw, entry in zip(raws, entry_ids, strict=True):
        if len(raw) > MAX_MESSAGE_CHARS:
            row = oversized_row(raw)
            plan.rows.append(row)
            plan.dead_letters.append(row.id)
            continue
        try:
            parsed.append((EntityChange.model_validate_json(raw), entry))
        except ValidationError as exc:
            row = dead_letter_row(raw, describe_validation_error(exc))
            plan.rows.append(row)
            plan.dead_letters.append(row.id)
    return parsed


def plan_batch(
    raws: Sequence[str],
    events: EventCache,
    entry_ids: Sequence[str] | None = None,
    *,
    now: Callable[[], float] = time.time,
) -> Plan:
    """Validate each message and find the events it matches (no store writes yet).

    ``entry_ids``: the stream entries of ``raws``, which give their order; messages from
    elsewhere are ordered by the time they are processed.
    """
    plan = Plan()
    if entry_ids is None:
        ms = int(now() * 1000)
        entry_ids = [f"{ms}-{i}" for i in range(len(raws))]
    parsed = _parse(plan, raws, entry_ids)
    known = events.known_tenants(c.tenantId for c, _ in parsed)
    for change, _ in parsed:
        if change.tenantId in known:
            continue
        # Not remembered as a message either: once the tenant exists, a replay goes through.
        raw = change.model_dump_json()
        reason = f"no tenant {change.tenantId!r} exists (message {change.id!r})"
        row = dead_letter_row(raw, reason, error_class="unknown_tenant")
        plan.rows.append(row)
        plan.dead_letters.append(row.id)
    changes = [(c, sequence_of(e, c.occurredAt)) for c, e in parsed if c.tenantId in known]
    candidates = events.candidates((c.tenantId, c.entity, c.eventType) for c, _ in changes)
    seen: set[tuple[str, str]] = set()
    for change, sequence in changes:
        key = (change.tenantId, change.id)
        plan.messages.append(key)
        if key in seen:
            continue  # the same message twice in one batch: the store counts the duplicate
        seen.add(key)
        stored: str | None = None
        ent_id = entity_id(change.data)
        entity = change.entity.value
        coarse = entity_key(change.tenantId, entity, ent_id) if ent_id is not None else None
        # One view per change: each field is case-folded once, however many events read it.
        view = FieldView(change.data)
        rows_before = len(plan.rows)
        for candidate in candidates[(change.tenantId, change.entity, change.eventType)]:
            failure: str | None = None
            if isinstance(candidate, BrokenEvent):
                event_id, installed_id, failure = candidate.event_id, None, candidate.reason
            else:
                event_id, installed_id = candidate.event.id, candidate.event.installed_id
                try:
                    if not candidate.matcher.matches(view):
                        continue
                except Exception as exc:  # a rule that breaks on this data fails visibly
                    failure = f"integration event {event_id} could not be evaluated: {exc}"
            stored = stored or change.model_dump_json()
            ticket = (
                ordering_key(change.tenantId, installed_id, entity, ent_id)
                if installed_id
                else None
            )
            live = candidate if isinstance(candidate, LiveEvent) else None
            # An event that reads captured values always waits for the deliveries that
            # capture them, whatever its ``ordering``.
            waits = live is not None and (
                live.event.spec.ordering is not Ordering.NONE or live.needs_captures
            )
            row = NewDelivery(
                id=delivery_id_for(change.tenantId, change.id, event_id),
                tenant_id=change.tenantId,
                event_id=event_id,
                installed_id=installed_id,
                message_id=change.id,
                entity=change.entity.value,
                event_type=change.eventType.value,
                entity_id=ent_id,
                message=stored,
                status=DeliveryStatus.FAILED if failure else DeliveryStatus.PENDING,
                status_message=failure or "",
                error_class="event_error" if failure else None,
                ordering_key=ticket,
                sequence=sequence,
                ordered=waits,
            )
            plan.rows.append(row)
            if failure is None and live is not None:
                order = Ordered(row.id, ticket, sequence, waits, coarse)
                plan.first_attempts.append(Planned(row.id, live, change, ent_id, order, row))
        plan.routed.append((change.tenantId, entity, len(plan.rows) > rows_before))
    return plan


def ingest(
    store: Store, plan: Plan, *, dedupe_window: float, tickets: Iterable[str] = ()
) -> IngestBatch:
    """Remember the plan's messages and create its deliveries, in one transaction (which
    also reads the unfinished deliveries of ``tickets``)."""
    result = store.ingest_batch(plan.messages, plan.rows, dedupe_window, tickets)
    metrics.received(plan.routed, dead_letters=len(plan.dead_letters))
    return result


@dataclass(frozen=True)
class FanOut:
    """What processing one message produced (the single-message path: ingest retries)."""

    deliveries: list[str]
    duplicate: bool = False
    dead_letter: str | None = None


def fan_out(store: Store, events: EventCache, raw: str, *, dedupe_window: float) -> FanOut:
    """Validate one raw message and create a delivery per matching event.

    Returns every delivery of the message still to be attempted: those just created, or, for
    a duplicate, those an interrupted earlier run left PENDING.
    """
    plan = plan_batch([raw], events)
    result = ingest(store, plan, dedupe_window=dedupe_window)
    if plan.dead_letters:
        return FanOut([], dead_letter=plan.dead_letters[0])
    created = [p.delivery_id for p in plan.first_attempts if p.delivery_id in result.created]
    redelivered = [d.id for d in result.redelivered]
    duplicate = not result.fresh
    if duplicate:
        log.info("dropped duplicate message %s of tenant %s", *plan.messages[0])
    return FanOut(sorted(created + redelivered), duplicate=duplicate)


def dependency_rounds(todo: list[Planned]) -> list[list[Planned]]:
    """The batch's first attempts in turns (:func:`worker.ordering.turns`), each stored
    before the next is prepared: one ticket's deliveries go in the order of their changes,
    and a delivery reading captured values renders with what the earlier ones captured.
    Most batches are one turn."""
    rounds: list[list[Planned]] = []
    for planned, turn in zip(todo, turns([p.order for p in todo]), strict=True):
        while len(rounds) <= turn:
            rounds.append([])
        rounds[turn].append(planned)
    return rounds
