"""Entity-change message ids, to drop producer duplicates; and the batch ingest.

Dedupe writes first and never reads before: an insert-on-conflict either inserts the id (a
new message), refreshes a row older than the window (new again), or leaves a recent row alone
(a duplicate), and ``RETURNING`` says which happened.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from integrations.store.deliveries import insert_deliveries, pending_of, to_delivery
from integrations.store.engine import StoreBase, chunks, table_of, upsert
from integrations.store.ordering import unfinished_in
from integrations.store.records import Delivery, DeliveryStatus, IngestBatch, NewDelivery
from integrations.tables import DeliveryRow, MessageRow, utcnow

#: One call in this many also forgets ids older than twice the window, so the table holds
#: about a window's worth of ids instead of growing forever.
_FORGET_ONE_IN = 500

MessageKey = tuple[str, str]


def _remember(
    s: Session, keys: Sequence[MessageKey], now: datetime, cutoff: datetime
) -> set[MessageKey]:
    """Insert these message ids; returns those that were new, or older than ``cutoff``."""
    messages = table_of(MessageRow)
    # One statement with bound parameters, run as an executemany (SQLAlchemy's
    # insertmanyvalues keeps RETURNING): it compiles once and is cached, where a multi-row
    # VALUES list compiled anew for every batch (about 0.5 ms per message).
    stmt = upsert(s, MessageRow)
    returning = stmt.on_conflict_do_update(
        index_elements=["tenant_id", "message_id"],
        set_={"received_at": stmt.excluded.received_at},
        where=messages.c.received_at < bindparam("cutoff", type_=messages.c.received_at.type),
    ).returning(messages.c.tenant_id, messages.c.message_id, sort_by_parameter_order=True)
    fresh: set[MessageKey] = set()
    for chunk in chunks(keys):
        params = [
            {"tenant_id": t, "message_id": m, "received_at": now, "duplicates": 0, "cutoff": cutoff}
            for t, m in chunk
        ]
        fresh.update((t, m) for t, m in s.execute(returning, params))
    return fresh


def _count_duplicates(s: Session, extra: dict[MessageKey, int]) -> None:
    if not extra:
        return
    messages = table_of(MessageRow)
    s.execute(
        update(messages)
        .where(
            messages.c.tenant_id == bindparam("b_tenant"),
            messages.c.message_id == bindparam("b_message"),
        )
        .values(duplicates=messages.c.duplicates + bindparam("b_count")),
        [{"b_tenant": t, "b_message": m, "b_count": n} for (t, m), n in extra.items()],
    )


class MessageStore(StoreBase):
    """Message ids seen within the dedupe window, and the batch ingest built on them."""

    def _forget_now_and_then(self, window: float) -> None:
        if secrets.randbelow(_FORGET_ONE_IN) == 0:
            with self.session() as s:
                s.execute(
                    delete(MessageRow).where(
                        MessageRow.received_at < utcnow() - timedelta(seconds=2 * window)
                    )
                )

    def seen_recently(self, tenant_id: str, message_id: str, window: float) -> bool:
        """Whether this message id was fully processed within ``window`` seconds.

        A sighting counts as a duplicate on the first one's row, so an operator can see how
        often a producer re-sends.
        """
        cutoff = utcnow() - timedelta(seconds=window)
        with self.session() as s:
            counted = s.execute(
                update(table_of(MessageRow))
                .where(
                    MessageRow.tenant_id == tenant_id,
                    MessageRow.message_id == message_id,
                    MessageRow.received_at >= cutoff,
                )
                .values(duplicates=MessageRow.duplicates + 1)
            )
            return bool(counted.rowcount)  # type: ignore[attr-defined]

    def remember_message(self, tenant_id: str, message_id: str, window: float = 86400.0) -> None:
        """Record that a message was fully processed (its deliveries exist)."""
        self._forget_now_and_then(window)
        now = utcnow()
        with self.session() as s:
            # A cutoff in the future refreshes any existing row: it was processed again now.
            _remember(s, [(tenant_id, message_id)], now, now + timedelta(days=1))

    def duplicate_count(self, tenant_id: str) -> int:
        """How many producer duplicates of this tenant's messages were dropped."""
        with self.session() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(MessageRow.duplicates), 0)).where(
                    MessageRow.tenant_id == tenant_id
                )
            )
            return int(total or 0)

    def ingest_batch(
        self,
        messages: Sequence[MessageKey],
        deliveries: Sequence[NewDelivery],
        window: float,
        tickets: Iterable[str] = (),
    ) -> IngestBatch:
        """Remember a batch's messages and create their deliveries, in ONE transaction.

        ``messages`` are ``(tenant_id, message_id)``; one remembered within ``window`` seconds
        is a duplicate (its row's ``duplicates`` goes up) and its deliveries are not created;
        the same message twice in the batch is one new and one duplicate. ``deliveries`` of
        new messages, and dead letters (``message_id`` None), are inserted unless they exist.
        ``redelivered`` holds the PENDING deliveries of the duplicates and of new messages
        whose deliveries existed already (an interrupted earlier run left them).
        ``tickets``: ordering keys whose unfinished deliveries to read in the same
        transaction (``unfinished``), saving per-ticket ordering a round trip.
        """
        self._forget_now_and_then(window)
        now = utcnow()
        counts = Counter(messages)
        with self.session() as s:
            # Sorted: two workers writing overlapping batches take the rows' locks in one
            # order, so PostgreSQL never has to break a deadlock between them.
            fresh = _remember(s, sorted(counts), now, now - timedelta(seconds=window))
            _count_duplicates(
                s, {k: n - (k in fresh) for k, n in counts.items() if n - (k in fresh)}
            )
            wanted = [
                d
                for d in deliveries
                if d.message_id is None or (d.tenant_id, d.message_id) in fresh
            ]
            created = insert_deliveries(s, wanted)
            redelivered = _redelivered(
                s,
                [k for k in counts if k not in fresh],
                [d.id for d in wanted if d.id not in created and d.message_id is not None],
            )
            unfinished = unfinished_in(s, tickets)
        return IngestBatch(
            frozenset(fresh), frozenset(created), tuple(redelivered), tuple(unfinished)
        )


def _redelivered(
    s: Session, duplicates: Sequence[MessageKey], existing: Sequence[str]
) -> list[Delivery]:
    by_tenant: defaultdict[str, list[str]] = defaultdict(list)
    for tenant_id, message_id in duplicates:
        by_tenant[tenant_id].append(message_id)
    found: dict[str, Delivery] = {}
    for tenant_id, message_ids in by_tenant.items():
        for chunk in chunks(message_ids):
            found.update((d.id, d) for d in pending_of(s, tenant_id, chunk))
    for ids in chunks(existing):
        rows = s.scalars(
            select(DeliveryRow).where(
                DeliveryRow.id.in_(ids), DeliveryRow.status == DeliveryStatus.PENDING
            )
        )
        found.update((r.id, to_delivery(r)) for r in rows)
    return sorted(found.values(), key=lambda d: d.id)
