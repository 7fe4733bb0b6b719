"""Per-ticket ordering in the store: a ticket's unfinished deliveries, and holding one.

Every statement goes through ``ix_deliveries_ticket`` (ticket, status, sequence): a ticket's
long history of finished deliveries does not make them slower.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from integrations.store.engine import StoreBase, chunks, table_of
from integrations.store.records import DeliveryStatus, Unfinished
from integrations.tables import UNFINISHED_CLAUSE, DeliveryRow

_DELIVERIES = table_of(DeliveryRow)

_HOLD = (
    update(_DELIVERIES)
    .where(
        _DELIVERIES.c.id == bindparam("p_id"),
        # Never a finished one: its outcome was stored while this decision was made.
        UNFINISHED_CLAUSE,
    )
    .values(
        status=str(DeliveryStatus.WAITING),
        waits_on=bindparam("p_waits_on"),
        status_message=bindparam("p_reason"),
        next_attempt_at=bindparam("p_until"),
    )
)


def unfinished_in(s: Session, keys: Iterable[str]) -> list[Unfinished]:
    """:meth:`OrderingStore.unfinished_of` in ``s``'s transaction (one ``IN`` per 500)."""
    wanted = sorted(set(keys))
    c = _DELIVERIES.c
    out: list[Unfinished] = []
    for part in chunks(wanted):
        rows = s.execute(
            select(c.ordering_key, c.sequence, c.id, c.status, c.next_attempt_at).where(
                c.ordering_key.in_(part), UNFINISHED_CLAUSE
            )
        )
        out.extend(
            Unfinished(key, seq, id_, status, due.timestamp() if due else None)
            for key, seq, id_, status, due in rows
        )
    return out


class OrderingStore(StoreBase):
    """The store's side of :mod:`worker.ordering`."""

    def unfinished_of(self, keys: Iterable[str]) -> list[Unfinished]:
        """Every unfinished delivery of these tickets (any order)."""
        with self.session() as s:
            return unfinished_in(s, keys)

    def last_failed_before(self, key: str, sequence: str) -> tuple[str, str] | None:
        """``(id, reason)`` of the ticket's latest FAILED delivery before ``sequence``."""
        c = _DELIVERIES.c
        with self.session() as s:
            row = s.execute(
                select(c.id, c.status_message)
                .where(
                    c.ordering_key == key,
                    c.status == str(DeliveryStatus.FAILED),
                    c.sequence < sequence,
                )
                .order_by(c.sequence.desc())
                .limit(1)
            ).first()
        return None if row is None else (row[0], row[1])

    def hold(self, waits: Sequence[tuple[str, str | None, str, datetime]]) -> None:
        """Mark deliveries WAITING: ``(id, the delivery it waits on, reason, recheck time)``.

        No attempt is counted; a delivery that finished meanwhile is left as it is.
        """
        if not waits:
            return
        with self.session() as s:
            s.connection().execute(
                _HOLD,
                [
                    {"p_id": i, "p_waits_on": on, "p_reason": why, "p_until": until}
                    for i, on, why, until in sorted(waits)  # one lock order for every writer
                ],
            )
