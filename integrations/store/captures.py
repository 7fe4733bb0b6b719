"""Values captured from third parties' responses (a remote ticket id...), per entity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from integrations.store.engine import StoreBase, chunks, upsert
from integrations.store.records import StoredEvent
from integrations.tables import CapturedValueRow, IntegrationEventRow, utcnow


def upsert_captured(s: Session, captures: Iterable[tuple[str, str, Mapping[str, str]]]) -> None:
    """Insert or overwrite ``(event_id, entity_id, values)`` in ``s``'s transaction.

    Insert-on-conflict-update, so two deliveries capturing for one entity at once cannot
    clash, and no read comes before the write.
    """
    now = utcnow()
    # Keyed, so a batch that captures one key twice writes it once (the last value wins).
    rows = {
        (event_id, entity_id, key): value
        for event_id, entity_id, values in captures
        for key, value in values.items()
    }
    if not rows:
        return
    stmt = upsert(s, CapturedValueRow)
    stmt = stmt.on_conflict_do_update(
        index_elements=["event_id", "entity_id", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    )
    s.execute(
        stmt,
        [
            {"event_id": e, "entity_id": n, "key": k, "value": v, "updated_at": now}
            for (e, n, k), v in sorted(rows.items())  # one lock order for every writer
        ],
    )


class CaptureStore(StoreBase):
    """Captured response values, read by later deliveries about the same entity."""

    def save_captured(self, event_id: str, entity_id: str, values: Mapping[str, str]) -> None:
        """Keep values captured from a response for later deliveries about the same entity."""
        if values:
            with self.session() as s:
                upsert_captured(s, [(event_id, entity_id, values)])

    def captured_for_entity(self, event: StoredEvent, entity_id: str) -> dict[str, str]:
        """Values captured for an entity by the events of ``event``'s installed integration.

        A CREATE event captures the remote ticket's id; the UPDATE event of the same
        integration then addresses that ticket. The event's own captures win over its
        siblings', and newer over older.
        """
        return self.captured_for_entities([(event, entity_id)])[(event.id, entity_id)]

    def captured_for_entities(
        self, wanted: Iterable[tuple[StoredEvent, str]]
    ) -> dict[tuple[str, str], dict[str, str]]:
        """:meth:`captured_for_entity` for many ``(event, entity_id)`` at once, in one query
        (``ix_captured_entity``); keyed by ``(event id, entity id)``."""
        pairs = list(dict.fromkeys((e.id, e.installed_id, n) for e, n in wanted))
        out: dict[tuple[str, str], dict[str, str]] = {(e, n): {} for e, _, n in pairs}
        if not pairs:
            return out
        scopes = sorted({(installed, n) for _, installed, n in pairs})
        found: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        with self.session() as s:
            for chunk in chunks(scopes):
                rows = s.execute(
                    select(
                        IntegrationEventRow.installed_id,
                        CapturedValueRow.entity_id,
                        CapturedValueRow.key,
                        CapturedValueRow.value,
                        CapturedValueRow.event_id,
                    )
                    .join(IntegrationEventRow, IntegrationEventRow.id == CapturedValueRow.event_id)
                    .where(
                        tuple_(IntegrationEventRow.installed_id, CapturedValueRow.entity_id).in_(
                            chunk
                        )
                    )
                    .order_by(CapturedValueRow.updated_at)
                ).all()
                for installed, entity_id, key, value, owner in rows:
                    found.setdefault((installed, entity_id), []).append((key, value, owner))
        for event_id, installed, entity_id in pairs:
            rows_of = found.get((installed, entity_id), [])
            values = {key: value for key, value, owner in rows_of if owner != event_id}
            values.update({key: value for key, value, owner in rows_of if owner == event_id})
            out[(event_id, entity_id)] = values
        return out
