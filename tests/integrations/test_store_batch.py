"""The store's batch methods, on SQLite and PostgreSQL: one transaction per batch, dedupe by
insert-on-conflict, optimistic attempt records, events loaded in a fixed number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from integrations.models import IntegrationEventIn, Notifier
from integrations.store import (
    TERMINAL_STATUSES,
    AttemptRecord,
    DeliveryStatus,
    NewDelivery,
    Store,
    StoredEvent,
    delivery_id_for,
)
from integrations.tables import AttemptRow, MessageRow
from tests.support.seed import sample_request

TENANT = "client_9"
DAY = 86400.0
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _event(store: Store, installed: str | None = None) -> StoredEvent:
    if installed is None:
        installed = store.install(TENANT, "CUSTOM", "Ticketing").id
    return store.create_event(
        TENANT, installed, IntegrationEventIn.model_validate(sample_request(1))
    )


def _row(message_id: str | None, event_id: str = "E1", **kw: Any) -> NewDelivery:
    if message_id is None:
        return NewDelivery(
            id=f"DLQ-{uuid.uuid4().hex}",
            tenant_id=TENANT,
            message="not json",
            status=DeliveryStatus.FAILED,
            status_message="malformed",
            error_class="malformed_message",
        )
    return NewDelivery(
        id=delivery_id_for(TENANT, message_id, event_id),
        tenant_id=TENANT,
        message="{}",
        event_id=event_id,
        message_id=message_id,
        **kw,
    )


def _record(delivery_id: str, previous: int | None, **kw: Any) -> AttemptRecord:
    fields: dict[str, Any] = {
        "outcome": "success",
        "status": DeliveryStatus.SUCCESS,
        "status_message": "delivered: HTTP 200",
        "http_status": 200,
        **kw,
    }
    return AttemptRecord(
        delivery_id=delivery_id,
        started_at=T0,
        duration_ms=1.5,
        previous_attempts=previous,
        **fields,
    )


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}:
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", record)


def test_delivery_status_is_a_str_enum_with_its_terminal_set() -> None:
    assert DeliveryStatus("SUCCESS") is DeliveryStatus.SUCCESS
    assert [s.value for s in DeliveryStatus] == [
        "PENDING",
        "RETRYING",
        "WAITING",
        "SUCCESS",
        "FAILED",
    ]
    assert DeliveryStatus.TERMINAL == TERMINAL_STATUSES
    assert DeliveryStatus.FAILED in DeliveryStatus.TERMINAL and "SUCCESS" in TERMINAL_STATUSES
    assert DeliveryStatus.RETRYING not in DeliveryStatus.TERMINAL
    # Every status is either finished or still to be sent (a later delivery waits for it).
    unfinished = set(DeliveryStatus.UNFINISHED)
    assert unfinished | set(DeliveryStatus.TERMINAL) == {s.value for s in DeliveryStatus}
    assert not unfinished & set(DeliveryStatus.TERMINAL)
    assert f"{DeliveryStatus.PENDING}" == "PENDING"


def test_ingest_creates_new_messages_deliveries_and_dead_letters(any_store: Store) -> None:
    dead = _row(None)
    result = any_store.ingest_batch(
        [(TENANT, "m1"), (TENANT, "m2")], [_row("m1"), _row("m1", "E2"), _row("m2"), dead], DAY
    )
    assert result.fresh == {(TENANT, "m1"), (TENANT, "m2")}
    assert result.created == {
        delivery_id_for(TENANT, "m1", "E1"),
        delivery_id_for(TENANT, "m1", "E2"),
        delivery_id_for(TENANT, "m2", "E1"),
        dead.id,
    }
    assert result.redelivered == ()
    letter = any_store.get_delivery(dead.id)
    assert letter is not None and letter.status is DeliveryStatus.FAILED
    assert letter.processed_time is not None  # terminal from the start
    assert any_store.duplicate_count(TENANT) == 0


def test_a_duplicate_creates_nothing_and_hands_back_its_pending_deliveries(
    any_store: Store,
) -> None:
    any_store.ingest_batch([(TENANT, "m1")], [_row("m1"), _row("m1", "E2")], DAY)
    done = delivery_id_for(TENANT, "m1", "E2")
    assert any_store.record_attempts([_record(done, 0)]) == [True]
    again = any_store.ingest_batch([(TENANT, "m1")], [_row("m1"), _row("m1", "E3")], DAY)
    assert again.fresh == frozenset() and again.created == frozenset()
    assert [d.id for d in again.redelivered] == [delivery_id_for(TENANT, "m1", "E1")]
    assert any_store.get_delivery(delivery_id_for(TENANT, "m1", "E3")) is None
    assert any_store.duplicate_count(TENANT) == 1


def test_the_same_message_twice_in_one_batch_is_one_new_and_one_duplicate(
    any_store: Store,
) -> None:
    result = any_store.ingest_batch([(TENANT, "m1"), (TENANT, "m1")], [_row("m1")], DAY)
    assert result.fresh == {(TENANT, "m1")}
    assert result.created == {delivery_id_for(TENANT, "m1", "E1")}
    assert any_store.duplicate_count(TENANT) == 1
    # Twice more, both duplicates now.
    any_store.ingest_batch([(TENANT, "m1"), (TENANT, "m1")], [], DAY)
    assert any_store.duplicate_count(TENANT) == 3


def test_a_message_older_than_the_window_is_new_again(any_store: Store) -> None:
    any_store.ingest_batch([(TENANT, "m1")], [_row("m1")], DAY)
    with any_store.session() as s:  # remembered two days ago
        s.execute(update(MessageRow).values(received_at=datetime.now(UTC) - timedelta(days=2)))
    result = any_store.ingest_batch([(TENANT, "m1")], [_row("m1"), _row("m1", "E2")], DAY)
    assert result.fresh == {(TENANT, "m1")}
    assert result.created == {delivery_id_for(TENANT, "m1", "E2")}
    # The delivery that existed is not created twice; still PENDING, it is handed back.
    assert [d.id for d in result.redelivered] == [delivery_id_for(TENANT, "m1", "E1")]
    assert any_store.seen_recently(TENANT, "m1", DAY)  # refreshed: recent again
    assert any_store.duplicate_count(TENANT) == 1


def test_seen_recently_and_remember_message(any_store: Store) -> None:
    assert not any_store.seen_recently(TENANT, "m1", DAY)
    any_store.remember_message(TENANT, "m1", DAY)
    any_store.remember_message(TENANT, "m1", DAY)  # processed again: no error, no duplicate
    assert any_store.duplicate_count(TENANT) == 0
    assert any_store.seen_recently(TENANT, "m1", DAY)
    assert any_store.duplicate_count(TENANT) == 1
    with any_store.session() as s:
        s.execute(update(MessageRow).values(received_at=datetime.now(UTC) - timedelta(days=2)))
    assert not any_store.seen_recently(TENANT, "m1", DAY)


def test_create_delivery_is_idempotent(any_store: Store) -> None:
    kw: dict[str, Any] = {
        "delivery_id": "D1",
        "tenant_id": TENANT,
        "message": "{}",
        "message_id": "m1",
    }
    assert any_store.create_delivery(**kw)
    assert not any_store.create_delivery(**kw)


def test_record_attempts_is_optimistic(any_store: Store) -> None:
    any_store.ingest_batch([(TENANT, "m1"), (TENANT, "m2")], [_row("m1"), _row("m2")], DAY)
    d1, d2 = delivery_id_for(TENANT, "m1", "E1"), delivery_id_for(TENANT, "m2", "E1")
    retry_at = T0 + timedelta(seconds=30)
    first = [
        _record(d1, 0, captured={"ticket": "T-1"}, capture_for=("E1", "INC-1")),
        _record(
            d2,
            0,
            outcome="retryable",
            status=DeliveryStatus.RETRYING,
            http_status=503,
            status_message="attempt 1 failed",
            error_class="http_5xx",
            next_attempt_at=retry_at,
            res_payload="x" * 5000,
            warnings=("w",),
        ),
    ]
    assert any_store.record_attempts(first) == [True, True]
    # Another worker's record of the same first attempts arrives late: nothing is written.
    late = [
        _record(d1, 0, captured={"ticket": "T-2"}, capture_for=("E1", "INC-1")),
        _record(d2, 1, status_message="attempt 2 ok"),
        _record("DLV-gone", 0),
    ]
    assert any_store.record_attempts(late) == [False, True, False]
    one, two = any_store.get_delivery(d1), any_store.get_delivery(d2)
    assert one is not None and two is not None
    assert (one.status, one.attempts, one.captured) == ("SUCCESS", 1, {"ticket": "T-1"})
    assert [a.number for a in one.attempt_log] == [1]
    assert (two.status, two.attempts, two.status_message) == ("SUCCESS", 2, "attempt 2 ok")
    assert [(a.number, a.outcome, a.http_status) for a in two.attempt_log] == [
        (1, "retryable", 503),
        (2, "success", 200),
    ]
    assert len(two.attempt_log[0].response_excerpt) == 2048
    assert two.next_attempt_at is None
    with any_store.session() as s:
        assert s.query(AttemptRow).count() == 3
    assert any_store.record_attempts([]) == []


def test_record_attempts_upserts_captured_values(any_store: Store) -> None:
    create = _event(any_store)
    sibling = _event(any_store, create.installed_id)
    any_store.ingest_batch(
        [(TENANT, "m1"), (TENANT, "m2")], [_row("m1", create.id), _row("m2", create.id)], DAY
    )
    d1, d2 = (delivery_id_for(TENANT, m, create.id) for m in ("m1", "m2"))
    capture = (create.id, "INC-1")
    assert any_store.record_attempts(
        [
            _record(d1, 0, captured={"ticket": "T-1", "url": "u1"}, capture_for=capture),
            _record(d2, 0, captured={"ticket": "T-2"}, capture_for=capture),
        ]
    ) == [True, True]
    assert any_store.captured_for_entity(sibling, "INC-1") == {"ticket": "T-2", "url": "u1"}


def test_record_attempt_keeps_todays_semantics(any_store: Store) -> None:
    assert any_store.create_delivery(delivery_id="D1", tenant_id=TENANT, message="{}")
    assert any_store.record_attempt(_record("D1", None, status=DeliveryStatus.RETRYING)) == 1
    # Unconditional: a stale previous_attempts does not stop it.
    assert (
        any_store.record_attempt(_record("D1", 0, captured={"k": "v"}, capture_for=("E", "N"))) == 2
    )
    d = any_store.get_delivery("D1")
    assert d is not None and d.attempts == 2 and d.captured == {"k": "v"}
    with pytest.raises(LookupError):
        any_store.record_attempt(_record("nope", None))


def test_load_events_reads_any_number_in_a_fixed_number_of_queries(any_store: Store) -> None:
    installed = any_store.install(TENANT, "CUSTOM", "Ticketing").id
    base = Notifier.model_validate(
        {
            "type": "REST_API",
            "baseURI": "https://example.com",
            "authType": "BASIC",
            "userName": "u",
            "password": "s3cret",
        }
    )
    any_store.set_base_notifier(TENANT, installed, base)
    events = [_event(any_store, installed) for _ in range(6)]
    with _statements(any_store) as one:
        assert set(any_store.load_events([events[0].id])) == {events[0].id}
    with _statements(any_store) as many:
        loaded = any_store.load_events([e.id for e in events] + ["missing"])
    assert len(many) == len(one) == 4  # events, criteria, rules, base notifiers
    assert set(loaded) == {e.id for e in events}
    got = loaded[events[3].id]
    assert got.spec == any_store.get_event(TENANT, events[3].id).spec  # type: ignore[union-attr]
    assert got.spec.filterCriteria is not None and len(got.spec.filterCriteria.rules) == 2
    assert got.base_notifier is not None and got.base_notifier.password == "s3cret"
    assert any_store.load_events([]) == {}


def test_every_configuration_change_bumps_the_version(any_store: Store) -> None:
    versions = [any_store.config_version()]
    installed = any_store.install(TENANT, "CUSTOM", "Ticketing").id
    event_ = _event(any_store, installed)
    versions.append(any_store.config_version())
    any_store.set_event_active(event_.id, False, "failing for days")
    versions.append(any_store.config_version())
    base = Notifier.model_validate({"type": "REST_API", "baseURI": "https://example.com"})
    any_store.set_base_notifier(TENANT, installed, base)
    versions.append(any_store.config_version())
    any_store.delete_event(TENANT, event_.id)
    versions.append(any_store.config_version())
    assert versions == [0, 1, 2, 3, 4]
    # Deliveries and attempts are not configuration.
    any_store.ingest_batch([(TENANT, "m1")], [_row("m1")], DAY)
    any_store.record_attempts([_record(delivery_id_for(TENANT, "m1", "E1"), 0)])
    assert not any_store.delete_event(TENANT, event_.id)
    assert any_store.config_version() == 4


def test_sqlite_connections_are_not_pinged_but_postgresql_ones_are(any_store: Store) -> None:
    """A SQLite connection is a file handle: a pre-ping would only cost a ``SELECT 1`` per
    checkout. A PostgreSQL one can go stale behind a restart, so it is pinged."""
    postgres = any_store.engine.dialect.name == "postgresql"
    assert any_store.engine.pool._pre_ping is postgres


def test_record_attempts_answers_in_the_callers_order(any_store: Store) -> None:
    """Rows are written in id order (one lock order for concurrent batches); the answer is
    still one flag per record, in the order given."""
    for d in ("D-a", "D-b", "D-c"):
        assert any_store.create_delivery(delivery_id=d, tenant_id=TENANT, message="{}")
    records = [_record("D-c", 0), _record("D-b", 5), _record("D-a", 0), _record("D-0", 0)]
    assert any_store.record_attempts(records) == [True, False, True, False]
    attempts = {d: any_store.get_delivery(d) for d in ("D-a", "D-b", "D-c")}
    assert {d: x.attempts for d, x in attempts.items() if x} == {"D-a": 1, "D-b": 0, "D-c": 1}
