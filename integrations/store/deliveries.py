"""The activity log: deliveries and their attempts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from integrations.store.captures import upsert_captured
from integrations.store.engine import StoreBase, owned, table_of, upsert
from integrations.store.ordering import unfinished_in
from integrations.store.outcomes import EXCERPT_CHARS, attempt_row, record_all
from integrations.store.records import (
    Attempt,
    AttemptRecord,
    Delivery,
    DeliveryStatus,
    NewDelivery,
    Unfinished,
)
from integrations.tables import AttemptRow, DeliveryRow, utcnow

#: The activity log's fields a query may ask to equal a value, by their API names.
ACTIVITY_FIELDS: dict[str, Any] = {
    "eventId": DeliveryRow.event_id,
    "installedIntgId": DeliveryRow.installed_id,
    "status": DeliveryRow.status,
    "messageId": DeliveryRow.message_id,
    "entityId": DeliveryRow.entity_id,
    "entity": DeliveryRow.entity,
    "eventType": DeliveryRow.event_type,
    "errorClass": DeliveryRow.error_class,
}
#: What the activity log may be sorted by (``sortName``).
ACTIVITY_SORTS: dict[str, Any] = {
    "createdTime": DeliveryRow.created_at,
    "processedTime": DeliveryRow.processed_time,
    "status": DeliveryRow.status,
    "eventId": DeliveryRow.event_id,
}


def to_delivery(row: DeliveryRow) -> Delivery:
    """The activity-log record of a row (its attempts loaded with it)."""
    return Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        event_id=row.event_id,
        installed_id=row.installed_id,
        message_id=row.message_id,
        entity=row.entity,
        event_type=row.event_type,
        entity_id=row.entity_id,
        status=DeliveryStatus(row.status),
        status_message=row.status_message,
        error_class=row.error_class,
        request_url=row.request_url,
        req_payload=row.req_payload,
        res_payload=row.res_payload,
        http_status=row.http_status,
        attempts=row.attempts,
        attempts_base=row.attempts_base or 0,
        warnings=json.loads(row.warnings or "[]"),
        captured=json.loads(row.captured or "{}"),
        message=row.message,
        created_at=row.created_at,
        processed_time=row.processed_time,
        next_attempt_at=row.next_attempt_at,
        ordering_key=row.ordering_key,
        sequence=row.sequence,
        ordered=row.ordered if row.ordered is not None else True,
        waits_on=row.waits_on,
        attempt_log=[
            Attempt(
                number=a.number,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                outcome=a.outcome,
                http_status=a.http_status,
                error_class=a.error_class,
                reason=a.reason,
                response_excerpt=a.response_excerpt,
            )
            for a in row.attempt_log
        ],
    )


def insert_deliveries(s: Session, rows: Sequence[NewDelivery]) -> set[str]:
    """Insert the deliveries that do not exist yet; returns the ids inserted.

    One insert-on-conflict-do-nothing for them all: an existing id (the same message
    processed twice) is skipped by the database, with no read before the write.
    """
    if not rows:
        return set()
    now = utcnow()
    params = [
        {
            "id": d.id,
            "tenant_id": d.tenant_id,
            "event_id": d.event_id,
            "installed_id": d.installed_id,
            "message_id": d.message_id,
            "entity": d.entity,
            "event_type": d.event_type,
            "entity_id": d.entity_id,
            "status": str(d.status),
            "status_message": d.status_message,
            "error_class": d.error_class,
            "message": d.message,
            "created_at": now,
            "processed_time": now if d.status in DeliveryStatus.TERMINAL else None,
            "ordering_key": d.ordering_key,
            "sequence": d.sequence,
            "ordered": d.ordered,
        }
        for d in sorted(rows, key=lambda d: d.id)  # one lock order for every writer
    ]
    stmt = upsert(s, DeliveryRow).on_conflict_do_nothing(index_elements=["id"])
    return set(s.scalars(stmt.returning(table_of(DeliveryRow).c.id), params))


def _apply(s: Session, record: AttemptRecord, *, guarded: bool) -> int | None:
    """Update the delivery with ``record``; its new attempt count, or None if no row matched.

    ``guarded``: only if the delivery still has ``record.previous_attempts`` attempts.
    """
    excerpt = (record.res_payload or "")[:EXCERPT_CHARS]
    values: dict[str, Any] = {
        "attempts": DeliveryRow.attempts + 1,
        "status": str(record.status),
        "status_message": record.status_message,
        "http_status": record.http_status,
        "error_class": record.error_class,
        "request_url": record.request_url,
        "req_payload": record.req_payload,
        "res_payload": excerpt,
        "warnings": json.dumps(list(record.warnings)),
        "processed_time": utcnow(),
        "next_attempt_at": record.next_attempt_at,
    }
    if record.captured:
        values["captured"] = json.dumps(dict(record.captured))
    stmt = update(DeliveryRow).where(DeliveryRow.id == record.delivery_id)
    if guarded and record.previous_attempts is not None:
        stmt = stmt.where(DeliveryRow.attempts == record.previous_attempts)
    stmt = stmt.values(values).returning(DeliveryRow.attempts)
    number = s.execute(stmt, execution_options={"synchronize_session": False}).scalar()
    return None if number is None else int(number)


def _captures(records: Iterable[AttemptRecord]) -> list[tuple[str, str, Any]]:
    return [(*r.capture_for, r.captured) for r in records if r.capture_for and r.captured]


class DeliveryStore(StoreBase):
    """Deliveries, their attempts, replays and dead letters."""

    def create_delivery(
        self,
        *,
        delivery_id: str,
        tenant_id: str,
        message: str,
        event_id: str | None = None,
        installed_id: str | None = None,
        message_id: str | None = None,
        entity: str | None = None,
        event_type: str | None = None,
        entity_id: str | None = None,
        status: DeliveryStatus = DeliveryStatus.PENDING,
        status_message: str = "",
        error_class: str | None = None,
    ) -> bool:
        """Create a delivery row; ``False`` if one with this id exists (idempotent)."""
        row = NewDelivery(
            id=delivery_id,
            tenant_id=tenant_id,
            message=message,
            event_id=event_id,
            installed_id=installed_id,
            message_id=message_id,
            entity=entity,
            event_type=event_type,
            entity_id=entity_id,
            status=status,
            status_message=status_message,
            error_class=error_class,
        )
        with self.session() as s:
            return bool(insert_deliveries(s, [row]))

    def get_delivery(self, delivery_id: str, tenant_id: str | None = None) -> Delivery | None:
        """A delivery by id (restricted to ``tenant_id`` when given)."""
        with self.session() as s:
            row = owned(s, DeliveryRow, delivery_id, tenant_id)
            return to_delivery(row) if row is not None else None

    def record_attempt(self, record: AttemptRecord) -> int:
        """Append an attempt and update the delivery's status; returns the attempt number.

        Unconditional (``previous_attempts`` is not checked); captured values are kept under
        ``record.capture_for`` in the same transaction. :class:`LookupError` if the delivery
        does not exist.
        """
        with self.session() as s:
            number = _apply(s, record, guarded=False)
            if number is None:
                raise LookupError(record.delivery_id)
            s.execute(insert(AttemptRow), [attempt_row(record, number)])
            upsert_captured(s, _captures([record]))
            return number

    def record_attempts(
        self,
        records: Sequence[AttemptRecord],
        follow_ups: Mapping[str, NewDelivery] | None = None,
    ) -> list[bool]:
        """:meth:`record_and_read`, without the read."""
        return self.record_and_read(records, follow_ups)[0]

    def record_and_read(
        self,
        records: Sequence[AttemptRecord],
        follow_ups: Mapping[str, NewDelivery] | None = None,
        tickets: Iterable[str] = (),
    ) -> tuple[list[bool], list[Unfinished]]:
        """Record a batch of outcomes in ONE transaction; which of them were recorded.

        Optimistic: a delivery is updated only if its attempt count still equals the record's
        ``previous_attempts``. ``False`` means another worker recorded that attempt first (or
        the delivery is gone): nothing is written for it, no attempt row, no capture.
        ``follow_ups``: deliveries to create, in the same transaction, for the records (by
        delivery id) that are recorded: a ``depEvent``'s call, once its first call succeeded.
        ``tickets``: ordering keys whose unfinished deliveries to read after the writes, in
        the same transaction (which of them to wake).
        """
        if not records:
            return [], []
        # Rows are written in id order, so concurrent batches lock them in one order (no
        # deadlock for PostgreSQL to break); the answer, and which capture wins when two
        # records capture one key, keep the caller's order.
        order = sorted(range(len(records)), key=lambda i: records[i].delivery_id)
        ordered = [records[i] for i in order]
        recorded = [True] * len(records)
        with self.session() as s:
            # The common case: every row matches, two statements for the whole batch.
            if not record_all(s, ordered):
                numbers = [_apply(s, r, guarded=True) for r in ordered]
                attempts = [
                    attempt_row(r, n)
                    for r, n in zip(ordered, numbers, strict=True)
                    if n is not None
                ]
                if attempts:
                    s.execute(insert(AttemptRow), attempts)
                for i, number in zip(order, numbers, strict=True):
                    recorded[i] = number is not None
            won = [r for r, ok in zip(records, recorded, strict=True) if ok]
            upsert_captured(s, _captures(won))
            if follow_ups:
                insert_deliveries(
                    s, [follow_ups[r.delivery_id] for r in won if r.delivery_id in follow_ups]
                )
            unfinished = unfinished_in(s, tickets)
        return recorded, unfinished

    def fail_delivery(self, delivery_id: str, reason: str, error_class: str) -> None:
        """Mark a delivery FAILED without an attempt (its event was deleted, say)."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is not None:
                row.status = DeliveryStatus.FAILED
                row.status_message = reason
                row.error_class = error_class
                row.processed_time = utcnow()
                row.next_attempt_at = None

    def defer(self, delivery_id: str, until: datetime, reason: str) -> None:
        """Note that a delivery waits (an open circuit breaker) without spending an attempt."""
        self.defer_many([(delivery_id, until, reason)])

    def defer_many(self, waits: Sequence[tuple[str, datetime, str]]) -> None:
        """:meth:`defer` for a batch, in one statement: behind an open breaker, a batch's
        every delivery waits."""
        if not waits:
            return
        table = table_of(DeliveryRow)
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("p_id"),
                # Spelled out: an IN list cannot be bound in an executemany.
                table.c.status != str(DeliveryStatus.SUCCESS),
                table.c.status != str(DeliveryStatus.FAILED),
            )
            .values(status_message=bindparam("p_reason"), next_attempt_at=bindparam("p_until"))
        )
        with self.session() as s:
            s.connection().execute(
                stmt,
                [{"p_id": i, "p_until": until, "p_reason": why} for i, until, why in waits],
            )

    def reset_for_replay(self, delivery_id: str) -> Delivery | None:
        """Put a delivery back to PENDING for a replay; its attempt history is kept."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                return None
            row.status = DeliveryStatus.PENDING
            row.status_message = "replay requested"
            row.attempts_base = row.attempts
            row.next_attempt_at = None
            s.flush()
            return to_delivery(row)

    def pending_deliveries(self, tenant_id: str, message_id: str) -> list[Delivery]:
        """Deliveries of one message that have not been attempted yet."""
        with self.session() as s:
            return pending_of(s, tenant_id, [message_id])

    def list_deliveries(
        self,
        tenant_id: str,
        *,
        event_id: str | None = None,
        status: str | None = None,
        message_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 100,
        equal: Mapping[str, str] | None = None,
        sort: str = "createdTime",
        descending: bool = True,
    ) -> tuple[list[Delivery], int]:
        """A page of the tenant's activity log (newest first by default), and the total.

        ``equal``: more ``{field: value}`` conditions, by their API names
        (:data:`ACTIVITY_FIELDS`); ``sort``: one of :data:`ACTIVITY_SORTS`.
        """
        wanted = dict(equal or {})
        for name, value in (("eventId", event_id), ("status", status), ("messageId", message_id)):
            if value:
                wanted[name] = value
        conds = [DeliveryRow.tenant_id == tenant_id]
        conds += [ACTIVITY_FIELDS[name] == value for name, value in wanted.items()]
        if since:
            conds.append(DeliveryRow.created_at >= since)
        if until:
            conds.append(DeliveryRow.created_at <= until)
        column = ACTIVITY_SORTS[sort]
        # Rows not processed yet (no processedTime) come last newest-first, first oldest-first,
        # on both databases (their defaults differ).
        order = column.desc().nulls_last() if descending else column.asc().nulls_first()
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(DeliveryRow).where(*conds)) or 0
            rows = s.scalars(
                select(DeliveryRow)
                .where(*conds)
                .order_by(order, DeliveryRow.id)
                .offset(offset)
                .limit(limit)
            )
            return [to_delivery(r) for r in rows], int(total)

    def dead_letters(self, limit: int = 100) -> list[Delivery]:
        """Malformed queue messages kept for an operator, any tenant, newest first."""
        with self.session() as s:
            rows = s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.event_id.is_(None))
                .order_by(DeliveryRow.created_at.desc())
                .limit(limit)
            )
            return [to_delivery(r) for r in rows]


def pending_of(s: Session, tenant_id: str, message_ids: Sequence[str]) -> list[Delivery]:
    """The PENDING deliveries of these messages of one tenant (``ix_deliveries_message``)."""
    rows = s.scalars(
        select(DeliveryRow).where(
            DeliveryRow.tenant_id == tenant_id,
            DeliveryRow.message_id.in_(message_ids),
            DeliveryRow.status == DeliveryStatus.PENDING,
        )
    )
    return [to_delivery(r) for r in rows]
