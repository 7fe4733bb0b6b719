"""Bulk rows for the fan-out and history measures, cloned from rows Herald itself wrote.

Creating 100,000 events through ``Store.create_event`` takes minutes, and a million earlier
deliveries cannot be produced by delivering them. So the bench lets Herald write a few real
rows (events through the store, sealing and all; deliveries through a real worker), then
copies them with new keys in a few large transactions. Tables are reflected from the
database, so every column, present or added later, is copied exactly as Herald stored it;
only keys, owners and times are rewritten.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, MetaData, Table, func, select
from sqlalchemy.engine import Engine

Row = dict[str, Any]


def reflect(engine: Engine, *names: str) -> dict[str, Table]:
    """The tables ``names`` as the database has them (a missing one is left out)."""
    meta = MetaData()
    meta.reflect(engine, only=lambda name, _: name in names)
    return dict(meta.tables)


def retarget(row: Mapping[str, Any], **changes: Any) -> Row:
    """A copy of ``row`` with ``changes`` applied (only to columns it has)."""
    out = dict(row)
    for key, value in changes.items():
        if key in out:
            out[key] = value
    return out


def _rows(conn: Connection, table: Table, where: Any) -> list[Row]:
    return [dict(r._mapping) for r in conn.execute(select(table).where(where))]


def _next_id(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


@dataclass(frozen=True)
class EventTemplate:
    """One tenant's events as the store wrote them, ready to be copied to other tenants."""

    tenant: list[Row]
    installed: list[Row]
    events: list[Row]
    criteria: list[Row]
    rules: list[Row]


def read_tenant(engine: Engine, tenant_id: str) -> EventTemplate:
    """Every configuration row of ``tenant_id``."""
    t = reflect(
        engine,
        "tenants",
        "installed_integrations",
        "integration_events",
        "filter_criteria",
        "filter_rules",
    )
    with engine.connect() as conn:
        events = _rows(
            conn, t["integration_events"], t["integration_events"].c.tenant_id == tenant_id
        )
        ids = [e["id"] for e in events]
        criteria = _rows(conn, t["filter_criteria"], t["filter_criteria"].c.event_id.in_(ids))
        crit_ids = [c["id"] for c in criteria]
        return EventTemplate(
            tenant=_rows(conn, t["tenants"], t["tenants"].c.client_id == tenant_id)
            if "tenants" in t
            else [],
            installed=_rows(
                conn,
                t["installed_integrations"],
                t["installed_integrations"].c.tenant_id == tenant_id,
            ),
            events=events,
            criteria=criteria,
            rules=_rows(conn, t["filter_rules"], t["filter_rules"].c.criteria_id.in_(crit_ids)),
        )


def clone_tenants(engine: Engine, template: EventTemplate, tenants: Sequence[str]) -> int:
    """Give each of ``tenants`` a copy of ``template``'s rows; how many events were made.

    One transaction per 500 tenants, each an ``executemany`` per table.
    """
    t = reflect(
        engine,
        "tenants",
        "installed_integrations",
        "integration_events",
        "filter_criteria",
        "filter_rules",
    )
    made = 0
    for start in range(0, len(tenants), 500):
        group = tenants[start : start + 500]
        out: dict[str, list[Row]] = {name: [] for name in t}
        with engine.begin() as conn:
            crit_id = _next_id(conn, t["filter_criteria"])
            rule_id = _next_id(conn, t["filter_rules"])
            for tenant in group:
                out["tenants"] += [retarget(r, client_id=tenant) for r in template.tenant]
                installed = {r["id"]: f"INTG-{uuid.uuid4()}" for r in template.installed}
                out["installed_integrations"] += [
                    retarget(r, id=installed[r["id"]], tenant_id=tenant) for r in template.installed
                ]
                event_ids = {e["id"]: f"INTG-EVENT-{uuid.uuid4()}" for e in template.events}
                out["integration_events"] += [
                    retarget(
                        e,
                        id=event_ids[e["id"]],
                        tenant_id=tenant,
                        installed_id=installed.get(e["installed_id"], e["installed_id"]),
                    )
                    for e in template.events
                ]
                crit_ids = {}
                for c in template.criteria:
                    crit_ids[c["id"]] = crit_id
                    out["filter_criteria"].append(
                        retarget(c, id=crit_id, event_id=event_ids[c["event_id"]])
                    )
                    crit_id += 1
                for r in template.rules:
                    out["filter_rules"].append(
                        retarget(r, id=rule_id, criteria_id=crit_ids[r["criteria_id"]])
                    )
                    rule_id += 1
                made += len(template.events)
            # Parents before children, for the foreign keys.
            for name in (
                "tenants",
                "installed_integrations",
                "integration_events",
                "filter_criteria",
                "filter_rules",
            ):
                if name in t and out[name]:
                    conn.execute(t[name].insert(), out[name])
    return made


@dataclass(frozen=True)
class DeliveryTemplate:
    """One finished delivery as the worker wrote it: its row, its attempts, its message."""

    delivery: Row
    attempts: list[Row]
    message: Row | None


def read_delivery(engine: Engine, tenant_id: str) -> DeliveryTemplate:
    """The most recent finished delivery of ``tenant_id``."""
    t = reflect(engine, "deliveries", "attempts", "messages")
    d, a, m = t["deliveries"], t["attempts"], t.get("messages")
    with engine.connect() as conn:
        row = conn.execute(
            select(d).where(d.c.tenant_id == tenant_id).order_by(d.c.created_at.desc()).limit(1)
        ).first()
        if row is None:
            raise LookupError(f"no delivery of {tenant_id} to copy")
        delivery = dict(row._mapping)
        attempts = _rows(conn, a, a.c.delivery_id == delivery["id"])
        message = None
        if m is not None:
            found = _rows(
                conn,
                m,
                (m.c.tenant_id == tenant_id) & (m.c.message_id == delivery["message_id"]),
            )
            message = found[0] if found else None
    return DeliveryTemplate(delivery, attempts, message)


def _shift(value: Any, by: timedelta) -> Any:
    return value - by if isinstance(value, datetime) else value


def clone_history(
    engine: Engine,
    template: DeliveryTemplate,
    count: int,
    *,
    chunk: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Insert ``count`` earlier deliveries of the template's tenant; how many were made.

    Each copy gets its own message id and delivery id, and times 1 ms apart going back from
    the template's, so they are the tenant's past: ``attempts`` and ``messages`` rows follow
    their delivery. One transaction per ``chunk`` deliveries keeps SQLite's write lock short.
    """
    t = reflect(engine, "deliveries", "attempts", "messages")
    d, a = t["deliveries"], t["attempts"]
    time_columns = ("created_at", "processed_time", "next_attempt_at", "started_at", "received_at")

    def copies(first: int, last: int) -> Iterator[tuple[Row, list[Row], Row | None]]:
        for i in range(first, last):
            by = timedelta(milliseconds=count - i)
            mid = f"hist-{i}"
            did = f"DLV-{uuid.uuid4().hex}"
            shifted = {c: _shift(template.delivery.get(c), by) for c in time_columns}
            delivery = retarget(template.delivery, id=did, message_id=mid, **shifted)
            attempts = [
                {
                    **retarget(r, delivery_id=did, started_at=_shift(r.get("started_at"), by)),
                }
                for r in template.attempts
            ]
            for r in attempts:
                r.pop("id", None)  # autoincrement
            message = None
            if template.message is not None:
                message = retarget(
                    template.message,
                    message_id=mid,
                    received_at=_shift(template.message.get("received_at"), by),
                )
            yield delivery, attempts, message

    made = 0
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        batch = list(copies(first, last))
        tables = [
            (d, [b[0] for b in batch]),
            (a, [r for b in batch for r in b[1]]),
            (t.get("messages"), [b[2] for b in batch if b[2] is not None]),
        ]
        if engine.dialect.name == "sqlite":
            insert_sqlite(engine, [(tb.name, rows) for tb, rows in tables if tb is not None])
        else:
            with engine.begin() as conn:
                for table, rows in tables:
                    if table is not None and rows:
                        conn.execute(table.insert(), rows)
        made += len(batch)
        if progress is not None:
            progress(made)
    return made


#: How SQLAlchemy's SQLite dialect stores a ``DateTime`` (the copies must read back alike).
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def sqlite_value(value: Any) -> Any:
    """``value`` as SQLAlchemy would bind it to SQLite (datetimes as its text format)."""
    if isinstance(value, datetime):
        return value.strftime(SQLITE_DATETIME)
    return value


def insert_sqlite(engine: Engine, tables: list[tuple[str, list[Row]]]) -> None:
    """Insert rows through the DB-API in one transaction, bypassing per-row SQLAlchemy work.

    A million deliveries through ``Connection.execute`` take minutes, most of it binding
    parameters in Python; ``sqlite3``'s ``executemany`` takes seconds.
    """
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, rows in tables:
            if not rows:
                continue
            columns = list(rows[0])
            quoted = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            sql = f'INSERT INTO "{name}" ({quoted}) VALUES ({marks})'
            get = operator.itemgetter(*columns)
            # A copy's columns have the template's types: only its datetimes need converting.
            times = [i for i, c in enumerate(columns) if isinstance(rows[0][c], datetime)]
            values: list[Any] = []
            for row in rows:
                value = list(get(row)) if len(columns) > 1 else [get(row)]
                for i in times:
                    value[i] = sqlite_value(value[i])
                values.append(value)
            cur.executemany(sql, values)
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
