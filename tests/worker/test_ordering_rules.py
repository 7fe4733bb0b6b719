"""The pure decisions of per-ticket ordering (:mod:`worker.ordering`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from worker.ordering import (
    ANY_ENTITY,
    RECHECK,
    RECHECK_UNSTORED,
    BatchTurns,
    Ordered,
    Unfinished,
    entity_key,
    entry_bound,
    hold,
    next_up,
    ordering_key,
    sequence_now,
    sequence_of,
    turns,
    unstored_entity,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_sequences_sort_in_stream_order_and_occurred_at_breaks_ties_within_a_millisecond() -> None:
    later_in_time = T0 + timedelta(hours=1)
    # Stream order wins over occurredAt across milliseconds...
    assert sequence_of("1000-0", later_in_time) < sequence_of("1001-0", T0)
    assert sequence_of("1000-9", T0) < sequence_of("10000-0", T0)  # numeric, not text
    # ...and within one millisecond (two producers), occurredAt decides.
    assert sequence_of("1000-1", T0) < sequence_of("1000-0", later_in_time)
    assert sequence_of("1000-0", T0) < sequence_of("1000-1", T0)
    assert entry_bound(sequence_of("1796140870680-7", T0)) == "1796140870680-7"
    # A change from outside the stream goes after what the stream held at that time.
    assert sequence_of("1000-5", T0) < sequence_now(1.5, T0)


def test_tickets_are_per_installed_integration_and_entity() -> None:
    key = ordering_key("t", "INTG-1", "INCIDENT", "INC-1")
    assert key == ordering_key("t", "INTG-1", "INCIDENT", "INC-1")
    assert key != ordering_key("t", "INTG-2", "INCIDENT", "INC-1")
    assert key != ordering_key("t", "INTG-1", "ALERT", "INC-1")
    assert ordering_key("t", "INTG-1", "INCIDENT", None) is None


def test_an_unstored_entry_is_read_as_its_entity_and_anything_else_is_ignored() -> None:
    raw = json.dumps(
        {
            "tenantId": "t",
            "entity": "incident",
            "occurredAt": "2026-12-01T12:00:00Z",
            "data": {"ID": "INC-1"},
        }
    )
    assert unstored_entity("5-0", raw) == (
        entity_key("t", "INCIDENT", "INC-1"),
        sequence_of("5-0", T0),
    )
    for bad in ["not json", "[]", '{"tenantId": "t"}', json.dumps({"data": {}}), "[" * 10000]:
        assert unstored_entity("5-0", bad) is None


def _item(sequence: str, *, waits: bool = True, key: str = "K", id_: str = "me") -> Ordered:
    return Ordered(id_, key, sequence, waits, "E")


def test_hold_waits_for_the_latest_earlier_unfinished_delivery_of_the_ticket() -> None:
    rows = [
        Unfinished("K", "1", "first", "RETRYING", due=1000.0),
        Unfinished("K", "2", "second", "WAITING"),
        Unfinished("K", "9", "later", "PENDING"),
        Unfinished("OTHER", "1", "unrelated", "RETRYING"),
    ]
    wait = hold(_item("5"), rows, {}, now=0.0)
    assert wait is not None and wait.waits_on == "second" and wait.recheck == RECHECK
    # Its recheck comes after the one it waits for is due again.
    wait = hold(_item("2"), rows, {}, now=0.0)
    assert wait is not None and wait.waits_on == "first" and wait.recheck > 1000
    assert hold(_item("1"), rows, {}, now=0.0) is None  # nothing earlier
    assert hold(_item("5", waits=False), rows, {}, now=0.0) is None  # ordering: NONE
    assert hold(_item("5", key="NEW"), rows, {}, now=0.0) is None


def test_hold_waits_for_an_earlier_change_of_the_entity_still_being_stored() -> None:
    wait = hold(_item("5"), [], {"E": "3"}, now=0.0)
    assert wait is not None and wait.waits_on is None and wait.recheck == RECHECK_UNSTORED
    assert hold(_item("5"), [], {"E": "7", "OTHER": "1"}, now=0.0) is None
    # More unstored entries than were read: anything later than the last read may wait.
    assert hold(_item("5"), [], {ANY_ENTITY: "4"}, now=0.0) is not None
    assert hold(_item("3"), [], {ANY_ENTITY: "4"}, now=0.0) is None


def test_the_earliest_unfinished_delivery_of_a_ticket_is_woken_if_it_waits() -> None:
    rows = [
        Unfinished("A", "2", "a2", "WAITING"),
        Unfinished("A", "3", "a3", "WAITING"),
        Unfinished("B", "1", "b1", "RETRYING"),
        Unfinished("B", "2", "b2", "WAITING"),
    ]
    assert next_up(rows) == ["a2"]


def test_turns_put_one_tickets_changes_one_after_another() -> None:
    items = [
        Ordered("c", "K", "1", True),
        Ordered("u-event1", "K", "2", True),
        Ordered("u-event2", "K", "2", True),  # the same change, another event: together
        Ordered("x", "OTHER", "2", True),
        Ordered("loose", "K", "3", False),  # ordering: NONE goes at once
        Ordered("u2", "K", "4", True),
        Ordered("noid", None, None, True),
    ]
    assert turns(items) == [0, 1, 1, 0, 0, 2, 0]


def test_batch_turns_hold_a_delivery_behind_an_unfinished_earlier_one_and_note_failures() -> None:
    items = [Ordered("c", "K", "1", True), Ordered("u", "K", "2", True)]
    t = BatchTurns(items, {})
    assert t.admit(items[0], 0, now=0.0) == (True, ())
    t.ended_with("c", None, due=500.0)  # retrying
    assert t.admit(items[1], 1, now=0.0) == (False, ())
    assert t.waits["u"].waits_on == "c" and t.waits["u"].recheck > 500

    t = BatchTurns(items, {})
    t.ended_with("c", "HTTP 400", due=None)  # failed
    go, notes = t.admit(items[1], 1, now=0.0)
    assert go and notes == ("waited for delivery c, which failed: HTTP 400",)
