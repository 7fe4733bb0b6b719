"""No hot-path query scans a table, on SQLite and PostgreSQL, however long the history.

The statements are the real ones: captured with ``before_cursor_execute`` while the hot-path
methods run, then handed to the database's planner (``EXPLAIN QUERY PLAN`` on SQLite;
``EXPLAIN`` with sequential scans disabled on PostgreSQL, so any table without a usable index
still shows a ``Seq Scan``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect

from integrations.enums import Entity, EventType
from integrations.models import IntegrationEventIn, Notifier
from integrations.store import AttemptRecord, DeliveryStatus, NewDelivery, Store, delivery_id_for
from integrations.tables import Base
from tests.support.seed import sample_request

TENANT = "client_9"
_DML = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}

Captured = tuple[str, Any]


@contextmanager
def _capture(store: Store) -> Iterator[list[Captured]]:
    seen: list[Captured] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, many: bool) -> None:
        if statement.split(None, 1)[0].upper() in _DML:
            # An executemany's parameter sets; but insertmanyvalues batches arrive flagged
            # "many" with the parameters of the one batched statement (flat, or a mapping).
            if many and isinstance(params, list | tuple) and isinstance(params[0], tuple | dict):
                params = params[0]
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def _pg_nodes(node: dict[str, Any]) -> Iterator[str]:
    """One line per scan in a PostgreSQL JSON plan: ``<type> on <table> using <index> cond
    <Index Cond>``."""
    kind = node["Node Type"]
    if "Scan" in kind and ("Relation Name" in node or "Index Name" in node):
        yield (
            f"{kind} on {node.get('Relation Name', '?')} using {node.get('Index Name')}"
            f" cond {node.get('Index Cond', '')}"
        )
    for child in node.get("Plans", ()):
        yield from _pg_nodes(child)


def _leading_columns(store: Store) -> dict[str, str]:
    """The first column of every index (primary keys and unique constraints included)."""
    inspector = inspect(store.engine)
    leading: dict[str, str] = {}
    for table in inspector.get_table_names():
        pk = inspector.get_pk_constraint(table)
        named: list[tuple[str | None, list[Any]]] = [(pk.get("name"), pk["constrained_columns"])]
        named += [(i["name"], list(i["column_names"])) for i in inspector.get_indexes(table)]
        named += [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)]
        for name, columns in named:
            if name is not None and columns and columns[0]:
                leading[name] = str(columns[0])
    return leading


def _plans(store: Store, statements: list[Captured]) -> list[tuple[str, str]]:
    """``(plan line, statement)`` for every line of the plans of ``statements``."""
    lines: list[tuple[str, str]] = []
    with store.engine.connect() as c:
        postgres = c.dialect.name == "postgresql"
        if postgres:
            c.exec_driver_sql("SET enable_seqscan = off")
        prefix = "EXPLAIN (FORMAT JSON) " if postgres else "EXPLAIN QUERY PLAN "
        for statement, params in statements:
            rows = c.exec_driver_sql(prefix + statement, params).fetchall()
            if postgres:
                found = [line for plan in rows[0][0] for line in _pg_nodes(plan["Plan"])]
            else:
                found = [str(row[-1]) for row in rows]
            lines.extend((line, statement) for line in found)
    return lines


def _scans(store: Store, plans: list[tuple[str, str]]) -> list[str]:
    """The plan lines that read a whole table or index.

    SQLite: a ``SCAN`` of a table, or an automatic index (built by reading the table).
    PostgreSQL: a ``Seq Scan``, or an index scan whose condition does not constrain the
    index's first column (PostgreSQL then walks the whole index, filtering as it goes).
    """
    tables = set(inspect(store.engine).get_table_names())
    leading = _leading_columns(store) if store.engine.dialect.name == "postgresql" else {}
    found = []
    for line, statement in plans:
        if leading:
            kind, _, rest = line.partition(" on ")
            index, _, cond = rest.partition(" using ")[2].partition(" cond ")
            bad = kind == "Seq Scan" or (
                "Index" in kind and not re.search(rf"\b{leading.get(index, '-')}\b", cond)
            )
        else:
            scanned = re.match(r"SCAN (\w+)", line)
            bad = bool(scanned and scanned.group(1) in tables and "INDEX" not in line)
            bad = bad or "AUTOMATIC" in line
        if bad:
            found.append(f"{line}  <-  {statement}")
    return found


def _history(store: Store) -> tuple[str, str]:
    """An installed integration with a base notifier, two events, and some deliveries."""
    installed = store.install(TENANT, "CUSTOM", "Ticketing").id
    store.set_base_notifier(
        TENANT, installed, Notifier.model_validate({"type": "REST_API", "baseURI": "https://x.io"})
    )
    spec = IntegrationEventIn.model_validate(sample_request(1))
    events = [store.create_event(TENANT, installed, spec).id for _ in range(2)]
    messages = [(TENANT, f"old-{i}") for i in range(20)]
    rows = [
        NewDelivery(
            id=delivery_id_for(TENANT, m, e),
            tenant_id=TENANT,
            message="{}",
            event_id=e,
            installed_id=installed,
            message_id=m,
            entity_id="INC-1",
            ordering_key="T-ticket",
            sequence=f"{i:015d}",
        )
        for i, (_, m) in enumerate(messages)
        for e in events
    ]
    store.ingest_batch(messages, rows, 86400.0)
    return installed, events[0]


def _hot_paths(store: Store, installed: str, event_id: str) -> list[tuple[str, Callable[[], Any]]]:
    new = [(TENANT, "new-1"), (TENANT, "old-1")]  # one new, one duplicate
    rows = [
        NewDelivery(
            id=delivery_id_for(TENANT, m, event_id),
            tenant_id=TENANT,
            message="{}",
            event_id=event_id,
            installed_id=installed,
            message_id=m,
            entity_id="INC-1",
        )
        for _, m in new
    ]
    started = datetime(2026, 12, 1, tzinfo=UTC)
    records = [
        AttemptRecord(
            delivery_id=delivery_id_for(TENANT, f"old-{i}", event_id),
            started_at=started,
            duration_ms=1.0,
            outcome="success",
            status=DeliveryStatus.SUCCESS,
            status_message="ok",
            captured={"ticket": f"T-{i}"},
            previous_attempts=0,
            capture_for=(event_id, "INC-1"),
        )
        for i in range(2, 4)
    ]
    loaded = store.load_event(event_id)
    assert loaded is not None
    return [
        ("ingest_batch", lambda: store.ingest_batch(new, rows, 86400.0)),
        ("record_attempts", lambda: store.record_attempts(records)),
        ("load_events", lambda: store.load_events([event_id, "missing"])),
        ("candidate_keys", lambda: store.candidate_keys(TENANT, Entity.INCIDENT, EventType.CREATE)),
        ("get_delivery", lambda: store.get_delivery(records[0].delivery_id, TENANT)),
        ("captured_for_entity", lambda: store.captured_for_entity(loaded, "INC-1")),
        ("pending_deliveries", lambda: store.pending_deliveries(TENANT, "old-5")),
        ("config_version", store.config_version),
        ("unfinished_of", lambda: store.unfinished_of(["T-ticket", "T-other"])),
        ("last_failed_before", lambda: store.last_failed_before("T-ticket", "9" * 15)),
        ("hold", lambda: store.hold([(records[0].delivery_id, None, "wait", started)])),
    ]


#: The indexes revision 0002 added for the history, each used by some hot path.
HISTORY_INDEXES = {
    "ix_attempts_delivery",
    "ix_filter_rules_criteria",
    "ix_deliveries_message",
    "ix_captured_entity",
}


def _run(store: Store, installed: str, event_id: str) -> dict[str, list[tuple[str, str]]]:
    plans = {}
    for name, call in _hot_paths(store, installed, event_id):
        with _capture(store) as statements:
            call()
        assert statements, f"{name} issued no statement: the capture is broken"
        plans[name] = _plans(store, statements)
    return plans


def test_no_hot_path_query_scans_a_table(any_store: Store) -> None:
    installed, event_id = _history(any_store)
    plans = _run(any_store, installed, event_id)
    scans = {name: found for name, lines in plans.items() if (found := _scans(any_store, lines))}
    assert scans == {}
    used = " ".join(line for lines in plans.values() for line, _ in lines)
    assert {ix for ix in HISTORY_INDEXES | {"ix_deliveries_ticket"} if ix not in used} == set()
    # A duplicate's pending deliveries come from its message's index, not by reading the
    # tenant's whole activity log.
    assert "ix_deliveries_tenant_time" not in used


def test_without_the_history_indexes_the_check_sees_the_scans(any_store: Store) -> None:
    """The plan reading is not vacuous: at the baseline's schema (no history indexes) the
    same hot paths scan attempts, rules and captured values."""
    installed, event_id = _history(any_store)
    dropped = HISTORY_INDEXES | {"ix_events_installed"}
    with any_store.engine.begin() as c:
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                if index.name in dropped:
                    index.drop(c)
    any_store.engine.dispose()  # pooled SQLite connections keep prepared plans
    plans = _run(any_store, installed, event_id)
    scans = {
        name: " ".join(found.split("  <-  ")[0] for found in _scans(any_store, lines))
        for name, lines in plans.items()
    }
    assert "attempts" in scans["get_delivery"]
    assert "filter_rules" in scans["load_events"]
    # Whichever side the planner starts from, one of the two tables is read whole.
    assert "captured_values" in scans["captured_for_entity"] or (
        "integration_events" in scans["captured_for_entity"]
    )
    assert "deliveries" in scans["pending_deliveries"] or "attempts" in scans["pending_deliveries"]
