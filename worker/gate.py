"""Per-ticket ordering at the edges: the stream read, the store's queries, the schedule.

The decisions are :mod:`worker.ordering`'s; this module only fetches what they need and
applies what they decide. Its order of reads is what makes the ordering race-free (see
:mod:`worker.ordering`): the stream first, then the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import cast

import redis

from integrations.redis_keys import RedisKeys
from integrations.store import Delivery, DeliveryStatus, Store, Unfinished
from worker.fanout import MAX_MESSAGE_CHARS
from worker.ingest import GROUP, entry_text
from worker.ordering import (
    ANY_ENTITY,
    Ordered,
    Wait,
    earlier_failed_note,
    entity_key,
    entry_bound,
    failed_note,
    hold,
    next_up,
    unstored_entity,
)
from worker.schedule import RetrySchedule

log = logging.getLogger(__name__)

#: The most unstored earlier entries read at once; past it, a delivery later than the last
#: one read waits as if one of them were its entity's (it is looked at again in a second).
SCAN = 1000

Entries = list[tuple[bytes, dict[bytes, bytes]]]


def unstored(entries: Entries, *, complete: bool) -> dict[str, str]:
    """Entity key -> the earliest sequence among ``entries`` (stream entries not stored).

    ``complete``: whether ``entries`` are all there are; if not, :data:`ANY_ENTITY` maps to
    the last one read, so that nothing later is taken for unrelated.
    """
    earliest: dict[str, str] = {}
    last: str | None = None
    for entry_id, fields in entries:
        text = entry_text(fields)
        if len(text) > MAX_MESSAGE_CHARS:
            continue  # never parsed: a dead letter, with no delivery to wait for
        found = unstored_entity(entry_id.decode(), text)
        if found is None:
            continue
        entity, sequence = found
        last = max(last or sequence, sequence)
        if entity not in earliest or sequence < earliest[entity]:
            earliest[entity] = sequence
    if not complete and entries:
        earliest[ANY_ENTITY] = last or "0"
    return earliest


class OrderGate:
    """Holds deliveries behind earlier ones of their ticket, and wakes them; one per process."""

    def __init__(
        self,
        store: Store,
        client: redis.Redis,
        keys: RedisKeys,
        schedule: RetrySchedule,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.redis = client
        self.keys = keys
        self.schedule = schedule
        self.now = now

    def settle(self, entry_ids: Sequence[str], created: Sequence[str], lease: float) -> None:
        """Once a batch's rows are committed: acknowledge and delete its entries, and lease
        its new deliveries in the retry schedule (for ``lease`` seconds: if this process dies
        before their outcomes are stored, the retry path takes them); one round trip."""
        if not entry_ids and not created:
            return
        pipe = self.redis.pipeline(transaction=False)
        if entry_ids:
            pipe.xack(self.keys.stream, GROUP, *entry_ids)
            pipe.xdel(self.keys.stream, *entry_ids)
        if created:
            due = int((self.now() + lease) * 1000)
            pipe.zadd(self.keys.retry, dict.fromkeys(created, due))
        pipe.execute()

    def unstored_before(
        self,
        sequence: str,
        *,
        besides: Iterable[str] = (),
        entries: Entries | None = None,
    ) -> dict[str, str]:
        """:func:`unstored` for the entries earlier than ``sequence`` (but ``besides``, a
        batch's own, still in the stream until it is stored). ``entries``: those entries,
        when the caller read them already (:func:`worker.ingest.read_batch`)."""
        if entries is None:
            bound = "(" + entry_bound(sequence)
            entries = cast(Entries, self.redis.xrange(self.keys.stream, "-", bound, count=SCAN))
        complete = len(entries) < SCAN
        own = {e.encode() for e in besides}
        return unstored([e for e in entries if e[0] not in own], complete=complete)

    def holds(
        self,
        items: Sequence[Ordered],
        unstored: dict[str, str],
        *,
        besides: Iterable[str] = (),
        unfinished: Sequence[Unfinished] | None = None,
    ) -> dict[str, Wait]:
        """Which of ``items`` must wait, and for what. ``besides``: deliveries the caller
        orders itself (a batch's own), left out of the store's answer; ``unfinished``: that
        answer, when the caller read it already (in its own transaction)."""
        waiting = [i for i in items if i.waits and i.key is not None]
        if not waiting:
            return {}
        mine = set(besides)
        if unfinished is None:
            unfinished = self.store.unfinished_of(i.key for i in waiting if i.key)
        rows = [u for u in unfinished if u.id not in mine]
        now = self.now()
        held = (hold(i, rows, unstored, now=now) for i in waiting)
        return {w.id: w for w in held if w is not None}

    def hold_one(self, delivery: Delivery) -> Wait | None:
        """Whether a stored delivery must wait before its attempt (the retry path)."""
        key, sequence = delivery.ordering_key, delivery.sequence
        if key is None or sequence is None or not delivery.ordered:
            return None
        entity = None
        if delivery.entity is not None and delivery.entity_id is not None:
            entity = entity_key(delivery.tenant_id, delivery.entity, delivery.entity_id)
        item = Ordered(delivery.id, key, sequence, True, entity)
        # The stream first, then the store (worker.ordering says why).
        return self.holds([item], self.unstored_before(sequence)).get(delivery.id)

    def wait(self, waits: Iterable[Wait]) -> None:
        """Hold deliveries: in the schedule first (the recheck fires even if this process
        dies before the store has them), then WAITING in the store."""
        waits = list(waits)
        if not waits:
            return
        now = self.now()
        due = {w.id: now + w.recheck for w in waits}
        self.redis.zadd(self.keys.retry, {d: int(t * 1000) for d, t in due.items()})
        self.store.hold(
            [(w.id, w.waits_on, w.reason, datetime.fromtimestamp(due[w.id], UTC)) for w in waits]
        )

    def wake(
        self,
        keys: Iterable[str],
        *,
        done: Sequence[str] = (),
        unfinished: Sequence[Unfinished] | None = None,
    ) -> list[str]:
        """After outcomes are stored: drop the finished deliveries ``done`` from the
        schedule and dispatch, now, the deliveries of ``keys`` whose turn it is
        (``unfinished``: those tickets' unfinished deliveries, if the caller read them)."""
        wanted = {k for k in keys if k}
        if unfinished is None:
            unfinished = self.store.unfinished_of(wanted) if wanted else []
        woken = next_up([u for u in unfinished if u.key in wanted])
        if not done and not woken:
            return []
        pipe = self.redis.pipeline(transaction=False)
        if done:
            pipe.zrem(self.keys.retry, *done)
        if woken:
            due = int(self.now() * 1000)
            pipe.zadd(self.keys.retry, dict.fromkeys(woken, due))
        pipe.execute()
        return woken

    def failure_note(self, key: str | None, sequence: str | None) -> str | None:
        """For a delivery that could not be built (a value missing that an earlier delivery
        of its ticket would have captured, say): the ticket's last earlier failure."""
        if key is None or sequence is None:
            return None
        found = self.store.last_failed_before(key, sequence)
        return None if found is None else earlier_failed_note(*found)

    def waited_note(self, delivery: Delivery) -> str | None:
        """What the row of a delivery that waited says of the one it waited for, if that
        one failed (its outcome explains a missing captured value, say)."""
        if delivery.waits_on is None:
            return None
        earlier = self.store.get_delivery(delivery.waits_on)
        if earlier is None or earlier.status != DeliveryStatus.FAILED:
            return None
        return failed_note(earlier.id, earlier.status_message)
